//! The HTTP API (docs/PROTOCOL.md): `fn app(state) -> Router`.
//!
//! Every storage call runs on the blocking pool (the storage trait is
//! synchronous). Object bodies stream both ways in pieces of at most
//! [`PIECE`] bytes: an upload is spooled to a temporary file and stored
//! whole when its last byte has arrived (a store never holds half an
//! object), a download is read piece by piece. Memory per transfer is a
//! few pieces, whatever the object's size.
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use mediagit_protocol::wire::{
    self, CasAnswer, CasRequest, ErrorBody, ListEntry, LockRecord, LockRequest, RepoInfo, Right,
};
use mediagit_storage::{CasOutcome, Storage, StorageError};
use serde::Deserialize;

use crate::auth::{Auth, Identity};
use crate::hosting::{HostingError, Repos};
use crate::metrics::Metrics;
use crate::policy::{self, KeyClass};

/// Longest key served (a ref name is far shorter; the file system's own
/// limits are not the client's business).
const MAX_KEY: usize = 1024;
/// Most `/`-separated parts of a key.
const MAX_KEY_PARTS: usize = 32;

/// Bytes per piece of a streamed download.
pub const PIECE: usize = 1 << 20;
/// Pieces in flight per download.
const PIECES_IN_FLIGHT: usize = 1;

/// Limits a server applies.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest object (pack) a PUT may store.
    pub max_object: u64,
    /// A transfer whose client sends or takes nothing for this long is
    /// abandoned.
    pub idle: Duration,
    /// Object uploads and downloads at once, in all (more get 503 `busy`).
    pub max_transfers: usize,
    /// ... and from one client address.
    pub max_transfers_per_client: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_object: 16 << 30,
            idle: Duration::from_secs(120),
            max_transfers: 64,
            max_transfers_per_client: 16,
        }
    }
}

/// Everything a request handler needs; shared by every connection.
pub struct ServerState {
    pub repos: Repos,
    pub auth: Auth,
    /// Whether a writer may create a repository by pushing to it.
    pub create_on_push: bool,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Repositories known to exist, and since when (saves one stat of
    /// `config.toml` per request; re-checked after [`EXISTS_TTL`]).
    exists: Mutex<HashMap<String, Instant>>,
    /// Transfer slots (see [`Limits::max_transfers`]).
    transfers: Arc<tokio::sync::Semaphore>,
    per_client: Mutex<HashMap<std::net::IpAddr, usize>>,
    /// Serialize storing a pack and checking and storing its index (by
    /// repository and pack name, striped), so that a pack upload still
    /// running when its index is verified cannot replace the verified pack.
    pack_stripes: Vec<Mutex<()>>,
}

/// The client's address, set per connection by [`crate::serve`].
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

/// A transfer slot; given back when dropped.
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    client: Option<(std::net::IpAddr, Arc<ServerState>)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, st)) = &self.client {
            if let Ok(mut m) = st.per_client.lock() {
                if let Some(n) = m.get_mut(ip) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(ip);
                    }
                }
            }
        }
    }
}

fn busy(message: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
}

/// Takes a transfer slot, or answers 503 `busy` (clients retry with
/// backoff).
fn transfer_slot(state: &AppState, peer: Option<Peer>) -> ApiResult<Slot> {
    let permit = state.transfers.clone().try_acquire_owned().map_err(|_| {
        busy("the server is moving as many objects as it allows at once; try again")
    })?;
    let client = match peer {
        Some(Peer(ip)) => {
            let mut m = state
                .per_client
                .lock()
                .map_err(|_| ApiError::internal("lock poisoned"))?;
            let n = m.entry(ip).or_default();
            if *n >= state.limits.max_transfers_per_client {
                return Err(busy(
                    "too many transfers from this address at once; try again",
                ));
            }
            *n += 1;
            Some((ip, state.clone()))
        }
        None => None,
    };
    Ok(Slot {
        _permit: permit,
        client,
    })
}

const EXISTS_TTL: Duration = Duration::from_secs(30);

impl ServerState {
    pub fn new(repos: Repos, auth: Auth, create_on_push: bool, limits: Limits) -> ServerState {
        ServerState {
            repos,
            auth,
            create_on_push,
            metrics: Metrics::default(),
            exists: Mutex::new(HashMap::new()),
            transfers: Arc::new(tokio::sync::Semaphore::new(limits.max_transfers.max(1))),
            per_client: Mutex::new(HashMap::new()),
            pack_stripes: (0..64).map(|_| Mutex::new(())).collect(),
            limits,
        }
    }
}

pub type AppState = Arc<ServerState>;

/// The router: `/healthz`, `/metrics` and the version-1 API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/info", get(info))
        .route(
            "/v1/object",
            get(get_object)
                .head(head_object)
                .put(put_object)
                .delete(delete_object),
        )
        .route("/v1/list", get(list))
        .route("/v1/cas", post(cas))
        .route("/v1/locks", get(list_locks).post(lock).delete(unlock))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "no such endpoint (this server speaks protocol version 1: /v1/...)",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// An error answer: status, stable code, message (docs/PROTOCOL.md).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                needs: None,
            },
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.body.code.clone();
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&code) {
            r.headers_mut().insert("x-mediagit-error", v);
        }
        r
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        match &e {
            StorageError::NotFound { key, .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no key {key:?}"),
            ),
            StorageError::BadKey { .. } => ApiError::bad(e.to_string()),
            // A key that runs into a file (`refs/heads/main/x`): absent.
            StorageError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotADirectory =>
            {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such key")
            }
            _ => {
                // The details (paths on the server, the store's answer)
                // go to the log, not to the client.
                tracing::error!(error = %e, "storage error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server's store failed (the server's log says why); try again later",
                )
            }
        }
    }
}

impl From<HostingError> for ApiError {
    fn from(e: HostingError) -> ApiError {
        match e {
            HostingError::BadName { .. } => ApiError::bad(e.to_string()),
            HostingError::Storage(s) => s.into(),
            HostingError::Repo(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs a storage call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
}

#[derive(Deserialize)]
struct RepoQuery {
    repo: String,
}

#[derive(Deserialize)]
struct KeyQuery {
    repo: String,
    key: String,
}

#[derive(Deserialize)]
struct ListQuery {
    repo: String,
    #[serde(default)]
    prefix: String,
}

/// Who sent the request and what they may do to the repository.
struct Access {
    who: Identity,
    right: Right,
}

fn bearer(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "malformed Authorization header",
        )
    })?;
    // The scheme is case-insensitive (RFC 7235).
    let token = v
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t);
    match token {
        Some(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the Authorization header must be `Bearer TOKEN`",
        )),
    }
}

fn access(state: &ServerState, headers: &HeaderMap, repo: &str) -> ApiResult<Access> {
    wire::check_repo_name(repo)
        .map_err(|why| ApiError::bad(format!("repository name {repo:?}: {why}")))?;
    let token = bearer(headers)?;
    let who = state.auth.identify(token.as_deref());
    if who == Identity::BadToken {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the token was not accepted",
        ));
    }
    let right = state.auth.right(&who, repo);
    Ok(Access { who, right })
}

/// Refuses unless `a` includes `needs`: 401 for someone without a token
/// (a token might help), 403 for a known user.
fn require(a: &Access, repo: &str, needs: Right, what: &str) -> ApiResult<()> {
    if a.right >= needs {
        return Ok(());
    }
    let (status, code) = match a.who {
        Identity::User(_) => (StatusCode::FORBIDDEN, "forbidden"),
        _ => (StatusCode::UNAUTHORIZED, "unauthenticated"),
    };
    let has = match a.right {
        Right::None => "no right".to_string(),
        r => format!("only the {} right", r.name()),
    };
    let mut e = ApiError::new(
        status,
        code,
        format!(
            "{what} in repository {repo} needs the {} right; {} has {has}",
            needs.name(),
            match &a.who {
                Identity::User(n) => format!("user {n}"),
                _ => "a request without a token".into(),
            }
        ),
    );
    e.body.needs = Some(needs);
    Err(e)
}

fn no_repository(repo: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-repository",
        format!("no repository {repo} on this server (an admin creates it with `mediagit init --bare`, or the server runs with --create-on-push)"),
    )
}

/// Whether the repository exists (cached for a while once it does).
async fn exists(state: &AppState, repo: &str, storage: &Arc<dyn Storage>) -> ApiResult<bool> {
    if let Ok(m) = state.exists.lock() {
        if m.get(repo).is_some_and(|t| t.elapsed() < EXISTS_TTL) {
            return Ok(true);
        }
    }
    let s = storage.clone();
    let yes = blocking(move || Ok(s.size("config.toml")?.is_some())).await?;
    if yes {
        if let Ok(mut m) = state.exists.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(repo.to_string(), Instant::now());
        }
    }
    Ok(yes)
}

async fn open(state: &AppState, repo: &str) -> ApiResult<Arc<dyn Storage>> {
    let st = state.clone();
    let name = repo.to_string();
    blocking(move || Ok(st.repos.storage(&name)?)).await
}

/// A key the API may touch, with its class.
fn served_key(key: &str) -> ApiResult<KeyClass> {
    if key.len() > MAX_KEY || key.split('/').count() > MAX_KEY_PARTS {
        return Err(ApiError::bad(format!(
            "a key is at most {MAX_KEY} bytes in {MAX_KEY_PARTS} parts"
        )));
    }
    mediagit_storage::validate_key(key).map_err(|e| ApiError::bad(e.to_string()))?;
    policy::classify(key).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("key {key:?} is not served"),
        )
    })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.repos.open_count());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Counts and logs every request.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    // Only the methods the API has are named (a client can send any
    // token as a method: it must not become a label or fill the log).
    let method = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        _ => "other",
    };
    // Only the parameters the API has (repository, key, prefix, path),
    // never anything else a client put in the query.
    let query: String = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            matches!(k, "repo" | "key" | "prefix" | "path" | "force" | "owner")
        })
        .map(|kv| kv.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join("&");
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert(wire::PROTOCOL_VERSION, HeaderValue::from(wire::VERSION));
    let status = resp.status().as_u16();
    state.metrics.request(&route, method, status);
    if let Some(code) = resp
        .headers()
        .get("x-mediagit-error")
        .and_then(|v| v.to_str().ok())
    {
        state.metrics.error(code);
    }
    tracing::info!(
        method = %method,
        route = %route,
        query = %query,
        status,
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RepoQuery>,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    // A push creates a repository only on a server run with
    // --create-on-push (an admin may also write its keys by hand).
    let may_create = state.create_on_push && a.right >= Right::Write;
    if a.right < Right::Read && !may_create {
        require(&a, &q.repo, Right::Read, "reading")?;
    }
    let storage = open(&state, &q.repo).await?;
    let exists = exists(&state, &q.repo, &storage).await?;
    Ok(axum::Json(RepoInfo {
        repo: q.repo,
        exists,
        user: a.who.name().to_string(),
        right: a.right,
        may_create,
    })
    .into_response())
}

/// Checks read access to a served key of an existing repository.
async fn readable(
    state: &AppState,
    headers: &HeaderMap,
    q: &KeyQuery,
) -> ApiResult<(Arc<dyn Storage>, KeyClass)> {
    let a = access(state, headers, &q.repo)?;
    require(&a, &q.repo, Right::Read, "reading")?;
    let class = served_key(&q.key)?;
    let storage = open(state, &q.repo).await?;
    Ok((storage, class))
}

/// The answer to a read of an absent key: `no-repository` when the
/// repository itself is missing.
async fn absent(state: &AppState, repo: &str, storage: &Arc<dyn Storage>, key: &str) -> ApiError {
    match exists(state, repo, storage).await {
        Ok(false) => no_repository(repo),
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no key {key:?} in repository {repo}"),
        ),
    }
}

fn object_headers(size: u64, modified: std::time::SystemTime) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        wire::MODIFIED_MS,
        HeaderValue::from(mediagit_protocol::http_backend::unix_millis(modified)),
    );
    h
}

async fn stat(
    storage: &Arc<dyn Storage>,
    key: &str,
) -> ApiResult<Option<(u64, std::time::SystemTime)>> {
    let s = storage.clone();
    let k = key.to_string();
    blocking(move || {
        let Some(size) = s.size(&k)? else {
            return Ok(None);
        };
        let modified = s.modified(&k)?.unwrap_or(std::time::UNIX_EPOCH);
        Ok(Some((size, modified)))
    })
    .await
}

async fn head_object(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Response> {
    let (storage, _) = readable(&state, &headers, &q).await?;
    match stat(&storage, &q.key).await? {
        Some((size, modified)) => {
            Ok((StatusCode::OK, object_headers(size, modified)).into_response())
        }
        None => Err(absent(&state, &q.repo, &storage, &q.key).await),
    }
}

/// `bytes=A-B` or `bytes=A-` of an object of `size` bytes: the inclusive
/// range, `Ok(None)` without a Range header, `Err` if not satisfiable.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || ApiError::bad("malformed Range header (one range, bytes=A-B or bytes=A-)");
    let v = v.to_str().map_err(|_| bad())?;
    let spec = v.strip_prefix("bytes=").ok_or_else(bad)?;
    if spec.contains(',') {
        return Err(bad());
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = match b.trim() {
        "" => size.saturating_sub(1),
        b => b.parse().map_err(|_| bad())?,
    };
    if start >= size {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "not-found",
            format!("range starts at {start}; the object has {size} bytes"),
        ));
    }
    if end < start {
        return Err(bad());
    }
    Ok(Some((start, end.min(size - 1))))
}

async fn get_object(
    State(state): State<AppState>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Response> {
    let (storage, _) = readable(&state, &headers, &q).await?;
    let Some((size, modified)) = stat(&storage, &q.key).await? else {
        return Err(absent(&state, &q.repo, &storage, &q.key).await);
    };
    let range = match parse_range(&headers, size) {
        Err(e) if e.status == StatusCode::RANGE_NOT_SATISFIABLE => {
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        r => r?,
    };
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    let mut h = object_headers(len, modified);
    let status = match range {
        Some(_) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    if len == 0 {
        return Ok((status, h).into_response());
    }
    // Large objects take a transfer slot; a download waits for its
    // client on the runtime, holding a blocking thread only while it
    // reads a piece from the store.
    let slot = match len > PIECE as u64 {
        true => Some(transfer_slot(&state, peer.map(|p| p.0))?),
        false => None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(PIECES_IN_FLIGHT);
    let st = state.clone();
    let key = q.key.clone();
    let idle = state.limits.idle;
    tokio::spawn(async move {
        let _slot = slot;
        let _t = st.metrics.transfer();
        let began = Instant::now();
        let mut off = start;
        let stop = start + len;
        while off < stop {
            let n = ((stop - off) as usize).min(PIECE);
            let (s2, k) = (storage.clone(), key.clone());
            let piece = match tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                s2.read_at(&k, off, &mut buf).map(|_| Bytes::from(buf))
            })
            .await
            {
                Ok(Ok(b)) => Ok(b),
                Ok(Err(e)) => {
                    tracing::error!(key = %key, error = %e, "read failed midway");
                    Err(std::io::Error::other("the server's store failed"))
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = piece.is_err();
            // A client that takes nothing for `idle` is given up on.
            match tokio::time::timeout(idle, tx.send(piece)).await {
                Ok(Ok(())) if !failed => {}
                _ => return,
            }
            st.metrics.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
            off += n as u64;
        }
        st.metrics.transfer_done("download", began.elapsed());
    });
    let stream = tokio_stream_from(rx);
    Ok((status, h, Body::from_stream(stream)).into_response())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Receives a request body into a temporary file in `dir`, at most `max`
/// bytes, giving up when nothing arrives for `idle`.
async fn spool(
    state: &AppState,
    body: Body,
    max: u64,
    key: &str,
) -> ApiResult<(tempfile::TempPath, u64)> {
    let dir = state.repos.tmp_dir().to_path_buf();
    let (file, path) = blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| {
            ApiError::internal(format!("temporary directory {}: {e}", dir.display()))
        })?;
        let f = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&dir)
            .map_err(|e| ApiError::internal(format!("temporary file in {}: {e}", dir.display())))?;
        Ok(f.into_parts())
    })
    .await?;
    let mut out = std::io::BufWriter::with_capacity(PIECE, file);
    let mut stream = body.into_data_stream();
    let mut n: u64 = 0;
    loop {
        let next = tokio::time::timeout(state.limits.idle, stream.next())
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    format!(
                        "upload of {key}: nothing arrived for {} s",
                        state.limits.idle.as_secs()
                    ),
                )
            })?;
        let Some(piece) = next else { break };
        let piece = piece.map_err(|e| ApiError::bad(format!("upload of {key} broke off: {e}")))?;
        n += piece.len() as u64;
        if n > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("{key}: more than {max} bytes (this server's limit for it)"),
            ));
        }
        state
            .metrics
            .bytes_in
            .fetch_add(piece.len() as u64, Ordering::Relaxed);
        // Small writes into a buffer; the buffer's flushes block briefly.
        tokio::task::block_in_place(|| out.write_all(&piece))
            .map_err(|e| ApiError::internal(format!("spooling {key}: {e}")))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| ApiError::internal(format!("spooling {key}: {e}")))?;
    let path = blocking(move || {
        file.sync_all()
            .map_err(|e| ApiError::internal(format!("spooling: {e}")))?;
        Ok(path)
    })
    .await?;
    Ok((path, n))
}

async fn put_object(
    State(state): State<AppState>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
    body: Body,
) -> ApiResult<Response> {
    let began = Instant::now();
    let a = access(&state, &headers, &q.repo)?;
    let class = served_key(&q.key)?;
    let storage = open(&state, &q.repo).await?;
    let existed = exists(&state, &q.repo, &storage).await?;
    if !existed {
        // Creating a repository: its key files, HEAD and config.toml
        // (last: its presence makes the repository), by an admin or, with
        // --create-on-push, by a writer.
        let may_create =
            a.right >= Right::Admin || (state.create_on_push && a.right >= Right::Write);
        let creating_key =
            matches!(q.key.as_str(), "config.toml" | "HEAD") || q.key.starts_with("keys/");
        if !may_create || (!creating_key && a.right < Right::Admin) {
            if a.right >= Right::Read {
                return Err(no_repository(&q.repo));
            }
            require(&a, &q.repo, Right::Write, "pushing")?;
        }
        let st = state.clone();
        let name = q.repo.clone();
        blocking(move || Ok(st.repos.check_creatable(&name)?)).await?;
    } else {
        require(
            &a,
            &q.repo,
            policy::put_right(class),
            &format!("writing {}", q.key),
        )?;
    }
    let _slot = match class {
        KeyClass::Pack | KeyClass::Index => Some(transfer_slot(&state, peer.map(|p| p.0))?),
        _ => None,
    };
    let _t = state.metrics.transfer();
    // Immutable keys are stored once: a second upload is a no-op (a pack
    // counts as stored once its index is; before that it is invisible and
    // may be replaced).
    let skip_if = match class {
        KeyClass::Pack => Some(q.key.replace(".pack", ".idx")),
        KeyClass::Index | KeyClass::Marker => Some(q.key.clone()),
        _ => None,
    };
    if let Some(k) = skip_if {
        if stat(&storage, &k).await?.is_some() {
            return Ok(StatusCode::OK.into_response());
        }
    }
    let max = match class {
        KeyClass::Pack => state.limits.max_object,
        KeyClass::Index => policy::MAX_INDEX,
        // An admin may put back anything (a restore); others write only
        // small values there.
        _ if a.right >= Right::Admin => state.limits.max_object,
        _ => policy::MAX_SMALL_OBJECT,
    };
    let (path, n) = spool(&state, body, max, &q.key).await?;
    if class == KeyClass::Marker && n != 0 {
        return Err(ApiError::bad(format!("{}: a marker is empty", q.key)));
    }
    let key = q.key.clone();
    let repo = q.repo.clone();
    let st = state.clone();
    let who = a.who.name().to_string();
    let stored = blocking(move || {
        // A pack and its index are stored under one stripe lock: a pack
        // whose index appeared while it was being received is not stored
        // (the verified pack stays), and an index is checked against the
        // pack as it is while no upload of that pack can replace it.
        // (Servers sharing a bucket do not share this lock: there a pack
        // upload racing its own index's check within one request's time
        // remains possible; readers verify every entry they read.)
        let stripe = match class {
            KeyClass::Pack | KeyClass::Index => {
                let id = key
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .split('.')
                    .next()
                    .unwrap_or("");
                let mut h: usize = 0;
                for b in repo.bytes().chain(id.bytes()) {
                    h = h.wrapping_mul(31).wrapping_add(b as usize);
                }
                Some(&st.pack_stripes[h % st.pack_stripes.len()])
            }
            _ => None,
        };
        let _guard = match stripe {
            Some(m) => Some(m.lock().map_err(|_| ApiError::internal("lock poisoned"))?),
            None => None,
        };
        if class == KeyClass::Pack && storage.size(&key.replace(".pack", ".idx"))?.is_some() {
            return Ok(false);
        }
        if class == KeyClass::Index {
            verify_index(&st, &storage, &repo, &key, &path)?;
        }
        if !existed && matches!(key.as_str(), "HEAD" | "config.toml") {
            let bytes = std::fs::read(&path).map_err(|e| ApiError::internal(e.to_string()))?;
            create_only(storage.as_ref(), &repo, &key, &bytes, &who)?;
            return Ok(true);
        }
        if !existed && key.starts_with("keys/") {
            check_claim(storage.as_ref(), &repo, &who)?;
        }
        let p: PathBuf = path.to_path_buf();
        storage.put_file(&key, &p)?;
        drop(path);
        Ok(true)
    })
    .await?;
    if !stored {
        return Ok(StatusCode::OK.into_response());
    }
    state.metrics.transfer_done("upload", began.elapsed());
    tracing::info!(repo = %q.repo, key = %q.key, bytes = n, user = %a.who.name(), "stored");
    Ok(StatusCode::CREATED.into_response())
}

/// How long a HEAD without a config.toml is taken for a creation under
/// way (after that: one that was interrupted, replaced by the next).
const CREATING: std::time::Duration = std::time::Duration::from_secs(60);

/// Writes `HEAD` or `config.toml` of a repository being created by
/// conditional writes, so that of two clients creating one name at once
/// exactly one does: the second finds the HEAD of the first (409; clients
/// write HEAD first, so it has written nothing), or its config.toml (409).
/// A HEAD left by a creation interrupted more than [`CREATING`] ago is
/// replaced, and that creation's key files deleted.
fn create_only(
    storage: &dyn Storage,
    repo: &str,
    key: &str,
    bytes: &[u8],
    who: &str,
) -> ApiResult<()> {
    let busy = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("repository {repo} is being created by another client right now, or exists"),
        )
    };
    if key == "config.toml" {
        // Only by the client that claimed the name, and only settings
        // that read (a name must not end up "existing" but unusable).
        check_claim(storage, repo, who)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::bad(format!("repository {repo}: config.toml is not UTF-8")))?;
        mediagit_format::config::RepoConfig::from_toml(text)
            .map_err(|e| ApiError::bad(format!("repository {repo}: config.toml: {e}")))?;
        return match storage.compare_and_swap(key, None, Some(bytes))? {
            CasOutcome::Swapped => {
                let _ = storage.delete(CLAIM);
                Ok(())
            }
            CasOutcome::Conflict { .. } => Err(busy()),
        };
    }
    match storage.get(key) {
        Err(e) if e.is_not_found() => {}
        Ok(old) => {
            let age = storage
                .modified(key)?
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if age < CREATING {
                return Err(busy());
            }
            // An interrupted creation. Taken over by one client only: the
            // stale HEAD is removed by a compare-and-swap first (a second
            // client taking over at once finds it gone), then its key
            // files go (a repository made now must not hold another
            // one's keys).
            if let CasOutcome::Conflict { .. } = storage.compare_and_swap(key, Some(&old), None)? {
                return Err(busy());
            }
            for k in storage.list("keys/")? {
                storage.delete(&k)?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    match storage.compare_and_swap(key, None, Some(bytes))? {
        CasOutcome::Swapped => {
            // Who claimed the name: only they write its key files and
            // config.toml (on a server without users every client is the
            // same anonymous admin).
            storage.put(CLAIM, who.as_bytes())?;
            Ok(())
        }
        CasOutcome::Conflict { .. } => Err(busy()),
    }
}

/// Where the server notes who claimed a repository being created (its
/// `HEAD` written, no `config.toml` yet); removed once it exists.
const CLAIM: &str = "locks/creating";

/// Writes to a repository being created come from the client that
/// claimed it: its HEAD is there, fresh, and the claim is this user's.
fn check_claim(storage: &dyn Storage, repo: &str, who: &str) -> ApiResult<()> {
    let fresh = storage
        .modified("HEAD")?
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < CREATING);
    if !fresh {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("repository {repo} is not being created: a creation writes HEAD first (compare-and-swap expecting it absent)"),
        ));
    }
    match storage.get(CLAIM) {
        Ok(c) if c != who.as_bytes() => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("repository {repo} is being created by another client right now"),
        )),
        Ok(_) => Ok(()),
        // (A HEAD written by a server before claims were noted.)
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A compare-and-swap of `HEAD` or `config.toml` expecting it absent: a
/// client creating a repository claims the name ([`create_only`]). Where
/// a repository exists, or another client is creating one, the answer is
/// "not swapped".
async fn create_by_cas(
    state: &AppState,
    a: &Access,
    q: &KeyQuery,
    storage: Arc<dyn Storage>,
    existed: bool,
    new: Option<Vec<u8>>,
) -> ApiResult<Response> {
    let may_create = a.right >= Right::Admin || (state.create_on_push && a.right >= Right::Write);
    if !may_create {
        if a.right >= Right::Read && !existed {
            return Err(no_repository(&q.repo));
        }
        require(a, &q.repo, Right::Admin, &format!("creating {}", q.key))?;
    }
    let Some(new) = new else {
        return Err(ApiError::bad(
            "creating a repository writes a value (\"new\")",
        ));
    };
    let not_swapped = || {
        axum::Json(CasAnswer {
            swapped: false,
            actual: None,
        })
        .into_response()
    };
    if existed {
        let (s2, key) = (storage.clone(), q.key.clone());
        let actual = blocking(move || Ok(s2.get(&key).ok())).await?;
        return Ok(axum::Json(CasAnswer {
            swapped: false,
            actual: actual.map(hex::encode),
        })
        .into_response());
    }
    let st = state.clone();
    let name = q.repo.clone();
    blocking(move || Ok(st.repos.check_creatable(&name)?)).await?;
    let (repo, key) = (q.repo.clone(), q.key.clone());
    let who = a.who.name().to_string();
    match blocking(move || create_only(storage.as_ref(), &repo, &key, &new, &who)).await {
        Ok(()) => {
            tracing::info!(repo = %q.repo, key = %q.key, user = %a.who.name(), "creating");
            Ok(axum::Json(CasAnswer {
                swapped: true,
                actual: None,
            })
            .into_response())
        }
        Err(e) if e.status == StatusCode::CONFLICT => Ok(not_swapped()),
        Err(e) => Err(e),
    }
}

/// Before an uploaded index makes its pack visible: the pack is checked
/// against it (plaintext repositories); a pack that fails is deleted.
fn verify_index(
    st: &ServerState,
    storage: &Arc<dyn Storage>,
    repo: &str,
    key: &str,
    path: &tempfile::TempPath,
) -> ApiResult<()> {
    let config = mediagit_repo::repo::read_store_config(storage.as_ref()).map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            "refused",
            format!("repository {repo}: {e}"),
        )
    })?;
    let bytes = std::fs::read(path)
        .map_err(|e| ApiError::internal(format!("reading the spooled index: {e}")))?;
    let id_hex = key
        .strip_prefix("packs/")
        .and_then(|k| k.strip_suffix(".idx"))
        .unwrap_or_default();
    let id: mediagit_format::ObjectId = id_hex
        .parse()
        .map_err(|_| ApiError::bad(format!("{key}: not a pack index key")))?;
    let why = mediagit_repo::odb::verify_uploaded_pack(storage.as_ref(), &config, id, &bytes)
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("verifying pack {id_hex}: {e}"),
            )
        })?;
    if let Some(why) = why {
        st.metrics.verify_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(repo, pack = id_hex, reason = %why, "uploaded pack refused");
        let _ = storage.delete(&format!("packs/{id_hex}.pack"));
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "verify-failed",
            format!("pack {id_hex} refused by the server's check, and removed: {why}"),
        ));
    }
    Ok(())
}

async fn delete_object(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    require(&a, &q.repo, Right::Admin, &format!("deleting {}", q.key))?;
    served_key(&q.key)?;
    let storage = open(&state, &q.repo).await?;
    let key = q.key.clone();
    blocking(move || Ok(storage.delete(&key)?)).await?;
    tracing::info!(repo = %q.repo, key = %q.key, user = %a.who.name(), "deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    require(&a, &q.repo, Right::Read, "reading")?;
    if q.prefix.len() > MAX_KEY || mediagit_storage::validate_prefix(&q.prefix).is_err() {
        return Err(ApiError::bad(format!(
            "prefix {:?} is not a key prefix",
            q.prefix
        )));
    }
    let storage = open(&state, &q.repo).await?;
    if !exists(&state, &q.repo, &storage).await? {
        return Err(no_repository(&q.repo));
    }
    if !policy::servable_prefix(&q.prefix) {
        return Ok(axum::Json(Vec::<ListEntry>::new()).into_response());
    }
    let prefix = q.prefix.clone();
    let entries = blocking(move || {
        Ok(storage
            .list_meta(&prefix)?
            .into_iter()
            .filter(|k| policy::classify(&k.key).is_some())
            .map(|k| ListEntry {
                key: k.key,
                size: k.size,
                modified_ms: mediagit_protocol::http_backend::unix_millis(k.modified),
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(axum::Json(entries).into_response())
}

async fn cas(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
    body: Body,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    let class = served_key(&q.key)?;
    // `HEAD` or `config.toml` expected absent: creating a repository
    // (rights checked below, once the request is read).
    let creation_key = matches!(q.key.as_str(), "HEAD" | "config.toml");
    if !creation_key {
        require(
            &a,
            &q.repo,
            policy::cas_right(class),
            &format!("moving {}", q.key),
        )?;
    }
    let body = axum::body::to_bytes(body, wire::MAX_JSON_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!(
                    "a compare-and-swap request is at most {} bytes",
                    wire::MAX_JSON_BODY
                ),
            )
        })?;
    // Both fields must be there (a client that dropped `new` must not
    // delete the key by accident).
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("malformed compare-and-swap request: {e}")))?;
    if v.get("expected").is_none() || v.get("new").is_none() {
        return Err(ApiError::bad(
            "a compare-and-swap request names both \"expected\" and \"new\" (null: absent)",
        ));
    }
    let req: CasRequest = serde_json::from_value(v)
        .map_err(|e| ApiError::bad(format!("malformed compare-and-swap request: {e}")))?;
    let decode = |v: Option<String>| -> ApiResult<Option<Vec<u8>>> {
        match v {
            None => Ok(None),
            Some(h) => {
                let b =
                    hex::decode(h).map_err(|e| ApiError::bad(format!("value is not hex: {e}")))?;
                if b.len() > wire::MAX_CAS_VALUE {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too-large",
                        format!("a value is at most {} bytes", wire::MAX_CAS_VALUE),
                    ));
                }
                Ok(Some(b))
            }
        }
    };
    let expected = decode(req.expected)?;
    let new = decode(req.new)?;
    let storage = open(&state, &q.repo).await?;
    let existed = exists(&state, &q.repo, &storage).await?;
    if creation_key && expected.is_none() {
        return create_by_cas(&state, &a, &q, storage, existed, new).await;
    }
    if creation_key {
        require(
            &a,
            &q.repo,
            policy::cas_right(class),
            &format!("moving {}", q.key),
        )?;
    }
    if !existed {
        return Err(no_repository(&q.repo));
    }
    // (An admin may put back anything: a restore.)
    if class == KeyClass::Ref && a.right < Right::Admin {
        check_ref_write(&storage, &q.key, new.as_deref()).await?;
    }
    let key = q.key.clone();
    let outcome = blocking(move || {
        Ok(storage.compare_and_swap(&key, expected.as_deref(), new.as_deref())?)
    })
    .await?;
    let answer = match outcome {
        CasOutcome::Swapped => {
            tracing::info!(repo = %q.repo, key = %q.key, user = %a.who.name(), "ref moved");
            CasAnswer {
                swapped: true,
                actual: None,
            }
        }
        CasOutcome::Conflict { actual } => CasAnswer {
            swapped: false,
            actual: actual.map(hex::encode),
        },
    };
    if class == KeyClass::Lock {
        state.metrics.lock_op("cas");
    }
    Ok(axum::Json(answer).into_response())
}

#[derive(Deserialize)]
struct LockQuery {
    repo: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    force: bool,
    /// Unlocking on a server without users: who asks (the owner a lock
    /// records there is the name its client sent).
    #[serde(default)]
    owner: Option<String>,
}

/// A ref moved by a writer must be what a client can read back: in a
/// plaintext repository `refs/heads|tags|remotes|notes/NAME` holding `<64 hex>\n`,
/// in an encrypted one `refs/<64 hex>` (its value is sealed: opaque here).
async fn check_ref_write(
    storage: &Arc<dyn Storage>,
    key: &str,
    new: Option<&[u8]>,
) -> ApiResult<()> {
    let s = storage.clone();
    let config = blocking(move || {
        mediagit_repo::repo::read_store_config(s.as_ref()).map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the repository's settings do not read",
            )
        })
    })
    .await?;
    let hex64 =
        |b: &[u8]| b.len() == 64 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if config.format.is_encrypted() {
        let name = key.strip_prefix("refs/").unwrap_or_default();
        if !hex64(name.as_bytes()) {
            return Err(ApiError::bad(format!(
                "{key}: refs of an encrypted repository are refs/<64 hex>"
            )));
        }
        return Ok(());
    }
    // (refs/notes/media: the media records, FORMAT.md §14.)
    let ok_name = ["refs/heads/", "refs/tags/", "refs/remotes/", "refs/notes/"]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|n| !n.is_empty()));
    if !ok_name {
        return Err(ApiError::bad(format!(
            "{key}: a ref is refs/heads/, refs/tags/, refs/remotes/ or refs/notes/ NAME"
        )));
    }
    if let Some(v) = new {
        if !(v.len() == 65 && v[64] == b'\n' && hex64(&v[..64])) {
            return Err(ApiError::bad(format!(
                "{key}: a ref's value is an object id (64 hex digits and a newline)"
            )));
        }
    }
    Ok(())
}

/// Most locks one repository holds (a new lock past it is refused) and
/// a listing answers.
const MAX_LOCKS: usize = 10_000;

fn lock_conflict(r: &LockRecord) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "locked",
        format!(
            "{} is locked by {} (since {})",
            r.path,
            r.owner,
            chrono::DateTime::from_timestamp(r.created, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| r.created.to_string())
        ),
    )
}

/// The lock record stored at `key`, if any (bounded; a record that does
/// not parse is an error naming the key).
fn read_lock(storage: &dyn Storage, key: &str) -> ApiResult<Option<(Vec<u8>, LockRecord)>> {
    match storage.size(key)? {
        None => return Ok(None),
        Some(n) if n as usize > wire::MAX_CAS_VALUE => {
            return Err(ApiError::internal(format!(
                "lock record {key} is {n} bytes"
            )))
        }
        _ => {}
    }
    let bytes = match storage.get(key) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let r: LockRecord = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("lock record {key} does not parse: {e}")))?;
    Ok(Some((bytes, r)))
}

async fn list_locks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LockQuery>,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    require(&a, &q.repo, Right::Read, "listing locks")?;
    let storage = open(&state, &q.repo).await?;
    if !exists(&state, &q.repo, &storage).await? {
        return Err(no_repository(&q.repo));
    }
    state.metrics.lock_op("list");
    let only = q.path.clone();
    let records = blocking(move || {
        if let Some(p) = only {
            let key = wire::lock_key(&p).map_err(ApiError::bad)?;
            return Ok(read_lock(storage.as_ref(), &key)?
                .map(|(_, r)| r)
                .into_iter()
                .collect());
        }
        let mut keys = storage.list(wire::LOCKS_PREFIX)?;
        if keys.len() > MAX_LOCKS {
            // Only an admin writes past the cap; the first ones are listed.
            tracing::warn!(count = keys.len(), "more locks than the listing answers");
            keys.truncate(MAX_LOCKS);
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            // A record that does not read (only an admin can write one) is
            // skipped, not a failure of every listing and every push.
            match read_lock(storage.as_ref(), &k) {
                Ok(Some((_, r))) => out.push(r),
                Ok(None) => {}
                Err(e) => tracing::warn!(key = %k, error = ?e.body.message, "lock record skipped"),
            }
        }
        out.sort_by(|a: &LockRecord, b| a.path.cmp(&b.path));
        Ok(out)
    })
    .await?;
    Ok(axum::Json(records).into_response())
}

async fn lock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LockQuery>,
    body: Body,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    require(&a, &q.repo, Right::Write, "locking files")?;
    if !state.auth.is_open() && !matches!(a.who, Identity::User(_)) {
        // Nobody could tell one anonymous owner from another.
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a lock needs an owner: send a user's token",
        ));
    }
    let body = axum::body::to_bytes(body, wire::MAX_JSON_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "lock request too large",
            )
        })?;
    let req: LockRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("malformed lock request: {e}")))?;
    let key = wire::lock_key(&req.path).map_err(ApiError::bad)?;
    // The owner is who the token says; a server without users (loopback,
    // one person's machine) takes the name the client gives.
    // A nameless lock there would be everyone's and no one's: refused.
    let owner = match (&a.who, state.auth.is_open(), &req.owner) {
        (Identity::User(n), _, _) => n.clone(),
        (_, true, Some(o))
            if !o.trim().is_empty()
                && o.len() <= 200
                && !o.chars().any(char::is_control)
                && !o.trim().eq_ignore_ascii_case(a.who.name()) =>
        {
            o.clone()
        }
        (_, true, _) => {
            return Err(ApiError::bad(
                "a lock on a server without users names its owner (\"owner\": the locker's name, not empty, at most 200 bytes, no control character, not \"anonymous\")",
            ))
        }
        _ => a.who.name().to_string(),
    };
    let storage = open(&state, &q.repo).await?;
    if !exists(&state, &q.repo, &storage).await? {
        return Err(no_repository(&q.repo));
    }
    state.metrics.lock_op("lock");
    let s2 = storage.clone();
    let held = blocking(move || Ok(s2.list(wire::LOCKS_PREFIX)?.len())).await?;
    if held >= MAX_LOCKS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too-many-locks",
            format!(
                "repository {} holds {held} locks, the most it may; unlock some first",
                q.repo
            ),
        ));
    }
    let record = LockRecord {
        path: req.path.clone(),
        owner,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    let value = serde_json::to_vec(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    let r = record.clone();
    blocking(
        move || match storage.compare_and_swap(&key, None, Some(&value))? {
            CasOutcome::Swapped => Ok(()),
            CasOutcome::Conflict { actual } => {
                let held = actual
                    .and_then(|b| serde_json::from_slice::<LockRecord>(&b).ok())
                    .unwrap_or(LockRecord {
                        path: r.path.clone(),
                        owner: "someone".into(),
                        created: 0,
                    });
                Err(lock_conflict(&held))
            }
        },
    )
    .await?;
    tracing::info!(repo = %q.repo, path = %record.path, owner = %record.owner, "locked");
    Ok((StatusCode::CREATED, axum::Json(record)).into_response())
}

async fn unlock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LockQuery>,
) -> ApiResult<Response> {
    let a = access(&state, &headers, &q.repo)?;
    require(&a, &q.repo, Right::Write, "unlocking files")?;
    let path = q
        .path
        .clone()
        .ok_or_else(|| ApiError::bad("which path? (path=...)"))?;
    let key = wire::lock_key(&path).map_err(ApiError::bad)?;
    let storage = open(&state, &q.repo).await?;
    state.metrics.lock_op("unlock");
    let who = a.who.clone();
    let right = a.right;
    let open_server = state.auth.is_open();
    let force = q.force;
    let asker = q.owner.clone();
    let repo = q.repo.clone();
    let removed = blocking(move || {
        let Some((bytes, r)) = read_lock(storage.as_ref(), &key)? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{path} is not locked"),
            ));
        };
        // Without users, owners are the names clients send: the one
        // asking must name the lock's owner (or break it with force).
        let mine = match &who {
            Identity::User(n) => *n == r.owner,
            _ => {
                open_server
                    && asker.as_deref().is_some_and(|o| {
                        o == r.owner && !o.trim().eq_ignore_ascii_case("anonymous")
                    })
            }
        };
        let may_break = force && right >= Right::Admin;
        if !(mine || may_break) {
            let mut e = ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} is locked by {}; {}",
                    r.path,
                    r.owner,
                    if force {
                        format!("breaking another user's lock needs the admin right on {repo}")
                    } else {
                        "only its owner unlocks it (an admin may with --force)".to_string()
                    }
                ),
            );
            e.body.needs = Some(Right::Admin);
            return Err(e);
        }
        match storage.compare_and_swap(&key, Some(&bytes), None)? {
            CasOutcome::Swapped => Ok(r),
            CasOutcome::Conflict { .. } => Err(ApiError::new(
                StatusCode::CONFLICT,
                "locked",
                format!("the lock of {} changed meanwhile; try again", r.path),
            )),
        }
    })
    .await?;
    tracing::info!(repo = %q.repo, path = %removed.path, owner = %removed.owner, by = %a.who.name(), "unlocked");
    Ok(axum::Json(removed).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn state(root: &std::path::Path, auth: Auth) -> AppState {
        let repos = Repos::new(
            crate::hosting::Hosting::Root(root.to_path_buf()),
            root.join(".mediagit-serve-tmp"),
        );
        Arc::new(ServerState::new(repos, auth, false, Limits::default()))
    }

    async fn send(
        app: &Router,
        req: axum::http::Request<Body>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let h = r.headers().clone();
        let b = axum::body::to_bytes(r.into_body(), 1 << 30)
            .await
            .unwrap()
            .to_vec();
        (status, h, b)
    }

    fn req(method: &str, uri: &str, body: Vec<u8>) -> axum::http::Request<Body> {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body))
            .unwrap()
    }

    /// Of two clients creating one name, the second's HEAD is refused
    /// while the first is under way; a HEAD left by a creation interrupted
    /// long ago is replaced; a config.toml is never overwritten.
    #[tokio::test(flavor = "multi_thread")]
    async fn creating_a_repository_is_create_only() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(state(dir.path(), Auth::open()));
        let put = |key: &str, body: &[u8]| {
            req(
                "PUT",
                &format!("/v1/object?repo=film&key={key}"),
                body.to_vec(),
            )
        };
        let (s, _, _) = send(&app, put("HEAD", b"ref: refs/heads/a\n")).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _, b) = send(&app, put("HEAD", b"ref: refs/heads/b\n")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&b));
        assert!(String::from_utf8_lossy(&b).contains("being created by another client"));
        let head = dir.path().join("film/HEAD");
        assert_eq!(std::fs::read(&head).unwrap(), b"ref: refs/heads/a\n");
        // Interrupted two minutes ago (with a key file of its own): the
        // next creation replaces it, and its key file goes with it.
        let (s, _, _) = send(&app, put("keys/0123abcd", b"a key file")).await;
        assert_eq!(s, StatusCode::CREATED);
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(&head)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let (s, _, _) = send(&app, put("HEAD", b"ref: refs/heads/c\n")).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(std::fs::read(&head).unwrap(), b"ref: refs/heads/c\n");
        assert!(!dir.path().join("film/keys/0123abcd").exists());
        // Settings that do not read never make a repository.
        let (s, _, _) = send(&app, put("config.toml", b"junk = [")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(!dir.path().join("film/config.toml").exists());
        let cfg = mediagit_format::config::RepoConfig::new(true).to_toml();
        let (s, _, b) = send(&app, put("config.toml", cfg.as_bytes())).await;
        assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
        assert!(!dir.path().join("film/locks/creating").exists());
        // Key files and settings of a name nobody claimed (no HEAD): refused.
        let put2 = |key: &str, body: &[u8]| {
            req(
                "PUT",
                &format!("/v1/object?repo=other&key={key}"),
                body.to_vec(),
            )
        };
        for key in ["keys/0123abcd", "config.toml"] {
            let (s, _, b) = send(&app, put2(key, cfg.as_bytes())).await;
            assert_eq!(
                s,
                StatusCode::CONFLICT,
                "{key}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        assert!(!dir.path().join("other/keys").exists());
        // Two take-overs of one interrupted creation with the same bytes:
        // one wins.
        let (s, _, _) = send(&app, put2("HEAD", b"ref: refs/heads/main\n")).await;
        assert_eq!(s, StatusCode::CREATED);
        let head2 = dir.path().join("other/HEAD");
        std::fs::File::options()
            .write(true)
            .open(&head2)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let (s1, _, _) = send(&app, put2("HEAD", b"ref: refs/heads/main\n")).await;
        let (s2, _, _) = send(&app, put2("HEAD", b"ref: refs/heads/main\n")).await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CONFLICT));
        // Created: now the writes of an existing repository (an admin's
        // put of HEAD replaces it, as a restore may).
        let (s, _, _) = send(&app, put("HEAD", b"ref: refs/heads/d\n")).await;
        assert_eq!(s, StatusCode::CREATED);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn objects_ranges_and_hidden_keys() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("team/film");
        std::fs::create_dir_all(repo.join("logs")).unwrap();
        std::fs::write(repo.join("config.toml"), "[format]\nversion = 2\n").unwrap();
        std::fs::write(repo.join("logs/HEAD"), "secret reflog").unwrap();
        std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let app = app(state(dir.path(), Auth::open()));
        let (s, h, b) = send(
            &app,
            req("GET", "/v1/object?repo=team/film&key=HEAD", vec![]),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"ref: refs/heads/main\n");
        assert_eq!(h.get(wire::PROTOCOL_VERSION).unwrap(), "1");
        let r = axum::http::Request::builder()
            .uri("/v1/object?repo=team/film&key=HEAD")
            .header("range", "bytes=5-8")
            .body(Body::empty())
            .unwrap();
        let (s, h, b) = send(&app, r).await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        assert_eq!(b, b"refs");
        assert_eq!(h.get("content-range").unwrap(), "bytes 5-8/21");
        let r = axum::http::Request::builder()
            .uri("/v1/object?repo=team/film&key=HEAD")
            .header("range", "bytes=21-")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, r).await.0, StatusCode::RANGE_NOT_SATISFIABLE);
        // Local files of a bare repository are not served, nor listed.
        let (s, _, b) = send(
            &app,
            req("GET", "/v1/object?repo=team/film&key=logs/HEAD", vec![]),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&b));
        let (_, _, b) = send(&app, req("GET", "/v1/list?repo=team/film&prefix=", vec![])).await;
        let l: Vec<ListEntry> = serde_json::from_slice(&b).unwrap();
        let keys: Vec<_> = l.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["HEAD", "config.toml"]);
        // Names that would escape the root.
        for bad in ["..", "../x", "team/../..", "%2e%2e/x", "/etc", "team//film"] {
            let (s, _, b) = send(
                &app,
                req("GET", &format!("/v1/object?repo={bad}&key=HEAD"), vec![]),
            )
            .await;
            assert_eq!(
                s,
                StatusCode::BAD_REQUEST,
                "{bad}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        // A missing repository is told apart from a missing key.
        let (s, h, _) = send(&app, req("GET", "/v1/object?repo=other&key=HEAD", vec![])).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(h.get("x-mediagit-error").unwrap(), "no-repository");
        let (s, h, _) = send(
            &app,
            req("GET", "/v1/object?repo=team/film&key=refs/heads/x", vec![]),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(h.get("x-mediagit-error").unwrap(), "not-found");
    }

    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread")]
    async fn a_symlinked_repository_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(
            outside.path().join("config.toml"),
            "[format]\nversion = 2\n",
        )
        .unwrap();
        std::fs::write(outside.path().join("HEAD"), "outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let app = app(state(dir.path(), Auth::open()));
        let (s, _, b) = send(&app, req("GET", "/v1/object?repo=link&key=HEAD", vec![])).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&b).contains("symlink"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rights_are_enforced_per_operation() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("film");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("config.toml"), "[format]\nversion = 2\n").unwrap();
        let auth = Auth::parse(&format!(
            "[[users]]\nname='reader'\ntoken_sha256='{}'\nrepos={{'*'='read'}}\n[[users]]\nname='writer'\ntoken_sha256='{}'\nrepos={{'*'='write'}}\n",
            crate::auth::hash_token("rtok"),
            crate::auth::hash_token("wtok")
        ))
        .unwrap();
        let app = app(state(dir.path(), auth));
        let with = |m: &str, uri: &str, tok: Option<&str>, body: &[u8]| {
            let mut b = axum::http::Request::builder().method(m).uri(uri);
            if let Some(t) = tok {
                b = b.header("authorization", format!("Bearer {t}"));
            }
            b.body(Body::from(body.to_vec())).unwrap()
        };
        let (s, _, _) = send(
            &app,
            with("GET", "/v1/object?repo=film&key=config.toml", None, b""),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = send(
            &app,
            with(
                "GET",
                "/v1/object?repo=film&key=config.toml",
                Some("nope"),
                b"",
            ),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = send(
            &app,
            with(
                "GET",
                "/v1/object?repo=film&key=config.toml",
                Some("rtok"),
                b"",
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let id = format!("{}\n", "ab".repeat(32));
        let cas = serde_json::to_vec(&CasRequest {
            expected: None,
            new: Some(hex::encode(&id)),
        })
        .unwrap();
        let (s, _, b) = send(
            &app,
            with(
                "POST",
                "/v1/cas?repo=film&key=refs/heads/main",
                Some("rtok"),
                &cas,
            ),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let e: ErrorBody = serde_json::from_slice(&b).unwrap();
        assert_eq!(e.needs, Some(Right::Write));
        assert!(
            e.message.contains("user reader has only the read right"),
            "{}",
            e.message
        );
        let (s, _, b) = send(
            &app,
            with(
                "POST",
                "/v1/cas?repo=film&key=refs/heads/main",
                Some("wtok"),
                &cas,
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        // A writer cannot rewrite settings, delete, or write refs without
        // compare-and-swap.
        for (m, uri) in [
            ("PUT", "/v1/object?repo=film&key=config.toml"),
            ("PUT", "/v1/object?repo=film&key=refs/heads/main"),
            ("DELETE", "/v1/object?repo=film&key=refs/heads/main"),
            ("PUT", "/v1/object?repo=film&key=keys/k"),
        ] {
            let (s, _, _) = send(&app, with(m, uri, Some("wtok"), b"x")).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{m} {uri}");
        }
        assert_eq!(
            std::fs::read(repo.join("refs/heads/main")).unwrap(),
            id.as_bytes()
        );
        // Only object ids go into refs, only under refs/heads|tags|remotes,
        // and a request must say what it wants ("new" absent is no delete).
        for (key, body) in [
            (
                "refs/heads/x",
                r#"{"expected":null,"new":"00"}"#.to_string(),
            ),
            (
                "refs/odd",
                format!(r#"{{"expected":null,"new":"{}"}}"#, hex::encode(&id)),
            ),
            (
                "refs/heads/main",
                format!(r#"{{"expected":"{}"}}"#, hex::encode(&id)),
            ),
        ] {
            let (s, _, b) = send(
                &app,
                with(
                    "POST",
                    &format!("/v1/cas?repo=film&key={key}"),
                    Some("wtok"),
                    body.as_bytes(),
                ),
            )
            .await;
            assert_eq!(
                s,
                StatusCode::BAD_REQUEST,
                "{key} {body}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        assert_eq!(
            std::fs::read(repo.join("refs/heads/main")).unwrap(),
            id.as_bytes()
        );
        // A listing never climbs out of the repository.
        for prefix in ["refs/../../", "../", "refs//x", "/etc", "refs/.."] {
            let (s, _, b) = send(
                &app,
                with(
                    "GET",
                    &format!("/v1/list?repo=film&prefix={prefix}"),
                    Some("rtok"),
                    b"",
                ),
            )
            .await;
            assert_eq!(
                s,
                StatusCode::BAD_REQUEST,
                "{prefix}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        // No repository inside another one's keys.
        let (s, _, _) = send(
            &app,
            with("GET", "/v1/info?repo=film/refs", Some("wtok"), b""),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // Any method name: counted as "other".
        let (s, _, _) = send(&app, with("FOOBARBAZ", "/v1/info?repo=film", None, b"")).await;
        assert_ne!(s, StatusCode::OK);
        // Markers are empty.
        let (s, _, _) = send(
            &app,
            with(
                "PUT",
                "/v1/object?repo=film&key=freshen/p-1-2",
                Some("wtok"),
                b"junk",
            ),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // No repository is created without --create-on-push.
        let (s, h, _) = send(
            &app,
            with(
                "PUT",
                "/v1/object?repo=new&key=config.toml",
                Some("wtok"),
                b"x",
            ),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(h.get("x-mediagit-error").unwrap(), "no-repository");
        assert!(!dir.path().join("new").exists());
        let (_, _, b) = send(&app, req("GET", "/metrics", vec![])).await;
        let m = String::from_utf8(b).unwrap();
        assert!(
            m.contains(
                "mediagit_requests_total{route=\"/v1/cas\",method=\"POST\",status=\"403\"} 1"
            ),
            "{m}"
        );
        assert!(
            m.contains("mediagit_errors_total{code=\"forbidden\"}"),
            "{m}"
        );
        assert!(
            !m.contains("FOOBARBAZ") && m.contains("method=\"other\""),
            "{m}"
        );
    }
}
