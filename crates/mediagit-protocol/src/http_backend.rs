//! The client: one repository on a MediaGit server, as a `Storage`.
//!
//! Every answer is bounded before it is read into memory (listings,
//! compare-and-swap answers, error bodies, whole-object gets by the size
//! the caller asked for); object bodies stream. Requests that cannot have
//! had an effect when they failed (reads, puts of immutable keys) are
//! retried with backoff; a compare-and-swap is retried only when it never
//! reached the server.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mediagit_storage::{
    validate_key, CasOutcome, ListedKey, RemoteErrorKind, Storage, StorageError,
};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;

use crate::wire::{
    self, CasAnswer, CasRequest, ErrorBody, ListEntry, LockRecord, RepoInfo, ServerUrl,
};

/// How to reach a server.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Sent as `Authorization: Bearer TOKEN`; never printed.
    pub token: Option<String>,
    /// Where the token came from, for error messages ("MEDIAGIT_TOKEN").
    pub token_source: Option<String>,
    /// A PEM file of extra CA certificates to trust (besides the system's).
    pub ca_file: Option<PathBuf>,
    /// Attempts for a request that failed without an answer or with 5xx.
    pub attempts: Option<u32>,
}

pub struct HttpBackend {
    url: ServerUrl,
    client: Client,
    token: Option<String>,
    token_source: Option<String>,
    attempts: u32,
}

/// Most bytes of an error answer's body that are read.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Most bytes of a listing answer (about 100 bytes a key).
const MAX_LIST_BODY: u64 = 1 << 30;

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("HttpBackend")
            .field("url", &self.url.url())
            .finish()
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl HttpBackend {
    /// A client for the repository at `url` (`http(s)://HOST[:PORT]/NAME`).
    /// Nothing is sent yet.
    pub fn new(url: &str, opts: &HttpOptions) -> Result<HttpBackend, StorageError> {
        let config = |message: String| StorageError::Remote {
            backend: format!("MediaGit server {}", wire::redact_url(url)),
            op: "open",
            key: String::new(),
            kind: RemoteErrorKind::Config,
            message,
        };
        let parsed = ServerUrl::parse(url).map_err(config)?;
        let mut b = Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // Per request: a ranged read is at most a few MiB, a put of a
            // pack streams for as long as it needs (no overall limit), but
            // a server that stops answering is given up on.
            .timeout(None::<Duration>)
            .user_agent(concat!("mediagit/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &opts.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| config(format!("CA file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| config(format!("CA file {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(config(format!(
                    "CA file {}: no PEM certificate in it",
                    ca.display()
                )));
            }
            b = b.tls_certs_merge(certs);
        }
        let client = b.build().map_err(|e| config(e.to_string()))?;
        Ok(HttpBackend {
            url: parsed,
            client,
            token: opts.token.clone(),
            token_source: opts.token_source.clone(),
            attempts: opts.attempts.unwrap_or(4).max(1),
        })
    }

    pub fn url(&self) -> String {
        self.url.url()
    }

    fn endpoint(&self, op: &str, key: Option<(&str, &str)>) -> String {
        let mut u = format!(
            "{}{}/{op}?repo={}",
            self.url.base,
            wire::API,
            wire::encode_query(&self.url.repo)
        );
        if let Some((name, v)) = key {
            u.push_str(&format!("&{name}={}", wire::encode_query(v)));
        }
        u
    }

    fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends a request built by `make` (again for each attempt). `retry`:
    /// whether a request that may have reached the server may be sent
    /// again (idempotent). Answers other than 2xx (and 404 for reads)
    /// become errors.
    fn send(
        &self,
        op: &'static str,
        key: &str,
        retry: bool,
        make: &dyn Fn() -> Result<RequestBuilder, StorageError>,
    ) -> Result<Response, StorageError> {
        let mut delay = Duration::from_millis(200);
        let mut last = None;
        for attempt in 1..=self.attempts {
            match self.authed(make()?).send() {
                Ok(resp) if resp.status().is_server_error() && retry => {
                    last = Some(self.error_of(op, key, resp));
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let unsent = e.is_connect();
                    last = Some(self.transport_error(op, key, &e));
                    if !retry && !unsent {
                        break;
                    }
                }
            }
            if attempt < self.attempts {
                std::thread::sleep(delay);
                delay = (delay * 3).min(Duration::from_secs(5));
            }
        }
        Err(last
            .unwrap_or_else(|| self.remote(op, key, RemoteErrorKind::Other, "no attempt".into())))
    }

    fn remote(
        &self,
        op: &'static str,
        key: &str,
        kind: RemoteErrorKind,
        message: String,
    ) -> StorageError {
        StorageError::Remote {
            backend: self.describe(),
            op,
            key: key.to_string(),
            kind,
            message,
        }
    }

    fn transport_error(&self, op: &'static str, key: &str, e: &reqwest::Error) -> StorageError {
        // The error's chain says why (refused, certificate not trusted...);
        // reqwest's URL is ours and holds no credential.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        let kind = if msg.contains("certificate") || msg.contains("UnknownIssuer") {
            RemoteErrorKind::Config
        } else {
            RemoteErrorKind::Unavailable
        };
        if kind == RemoteErrorKind::Config {
            let lower = msg.to_ascii_lowercase();
            if lower.contains("expired") || lower.contains("notvalidyet") {
                msg.push_str(" (the server's TLS certificate is expired or not yet valid: its admin must renew it; check this machine's clock too)");
            } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                msg.push_str(" (the server's TLS certificate is for another name: use the host name it was issued for)");
            } else {
                msg.push_str(" (the server's TLS certificate is not trusted: set MEDIAGIT_CA_FILE to the CA that signed it)");
            }
        }
        self.remote(op, key, kind, msg)
    }

    /// Turns an answer that is not a success into the error it says.
    fn error_of(&self, op: &'static str, key: &str, resp: Response) -> StorageError {
        let status = resp.status();
        let mut text = String::new();
        let _ = resp.take(MAX_ERROR_BODY).read_to_string(&mut text);
        let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
        let message = body.as_ref().map(|b| b.message.clone()).unwrap_or_else(|| {
            format!(
                "HTTP {status}: {}",
                text.trim().chars().take(200).collect::<String>()
            )
        });
        let code = body.as_ref().map(|b| b.code.as_str()).unwrap_or("");
        match status {
            StatusCode::UNAUTHORIZED => {
                let how = match (&self.token, &self.token_source) {
                    (None, Some(v)) => format!("no token was sent ({v} is not set)"),
                    (None, None) => {
                        "no token was sent (set MEDIAGIT_TOKEN, or token_env of the remote)".into()
                    }
                    (Some(_), Some(v)) => format!("the token in {v} was not accepted"),
                    (Some(_), None) => "the token was not accepted".into(),
                };
                self.remote(
                    op,
                    key,
                    RemoteErrorKind::PermissionDenied,
                    format!("{message}: {how}"),
                )
            }
            StatusCode::FORBIDDEN => {
                self.remote(op, key, RemoteErrorKind::PermissionDenied, message)
            }
            StatusCode::NOT_FOUND if code == "no-repository" => {
                self.remote(op, key, RemoteErrorKind::NoSuchBucket, message)
            }
            StatusCode::NOT_FOUND => StorageError::NotFound {
                backend: self.describe(),
                key: key.to_string(),
            },
            StatusCode::TOO_MANY_REQUESTS => {
                self.remote(op, key, RemoteErrorKind::Throttled, message)
            }
            s if s.is_server_error() => self.remote(op, key, RemoteErrorKind::Unavailable, message),
            _ => self.remote(op, key, RemoteErrorKind::Other, message),
        }
    }

    fn check(&self, op: &'static str, key: &str, resp: Response) -> Result<Response, StorageError> {
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.error_of(op, key, resp))
        }
    }

    /// `GET /v1/info`: whether the repository exists, who the server takes
    /// this client for, and what it may do.
    pub fn info(&self) -> Result<RepoInfo, StorageError> {
        let resp = self.send("info", "", true, &|| {
            Ok(self.client.get(self.endpoint("info", None)))
        })?;
        let resp = self.check("info", "", resp)?;
        self.json("info", "", resp, MAX_ERROR_BODY)
    }

    /// `GET /v1/locks`: the repository's file locks (or the lock of
    /// `path`), sorted by path.
    pub fn locks(&self, path: Option<&str>) -> Result<Vec<LockRecord>, StorageError> {
        let mut url = self.endpoint("locks", None);
        if let Some(p) = path {
            url.push_str(&format!("&path={}", wire::encode_query(p)));
        }
        let resp = self.send("list locks", "", true, &|| Ok(self.client.get(url.clone())))?;
        let resp = self.check("list locks", "", resp)?;
        self.json("list locks", "", resp, MAX_LIST_BODY)
    }

    /// `POST /v1/locks`: locks `path` for the token's user (`owner`: the
    /// name a server without users records). Locked by someone else: an
    /// error that names them.
    pub fn lock(&self, path: &str, owner: Option<&str>) -> Result<LockRecord, StorageError> {
        let body = serde_json::to_vec(&wire::LockRequest {
            path: path.to_string(),
            owner: owner.map(str::to_string),
        })
        .map_err(|e| self.remote("lock", path, RemoteErrorKind::Other, e.to_string()))?;
        // Not idempotent (a second try would find its own lock): sent
        // again only when it never reached the server.
        let resp = self.send("lock", path, false, &|| {
            Ok(self
                .client
                .post(self.endpoint("locks", None))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone()))
        })?;
        let resp = self.check("lock", path, resp)?;
        self.json("lock", path, resp, MAX_ERROR_BODY)
    }

    /// `DELETE /v1/locks`: removes the lock of `path` (another user's only
    /// with `force` and the admin right). Returns the removed lock.
    /// Releases the lock of `path`. `owner`: the name this client locks as
    /// on a server without users (where it is the only way to tell owners
    /// apart); `force`: another user's lock (the admin right).
    pub fn unlock(
        &self,
        path: &str,
        force: bool,
        owner: Option<&str>,
    ) -> Result<LockRecord, StorageError> {
        let mut url = format!(
            "{}&path={}",
            self.endpoint("locks", None),
            wire::encode_query(path)
        );
        if force {
            url.push_str("&force=true");
        }
        if let Some(o) = owner {
            url.push_str(&format!("&owner={}", wire::encode_query(o)));
        }
        let resp = self.send("unlock", path, false, &|| {
            Ok(self.client.delete(url.clone()))
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(match self.error_of("unlock", path, resp) {
                StorageError::NotFound { .. } => self.remote(
                    "unlock",
                    path,
                    RemoteErrorKind::Other,
                    format!("{path} is not locked"),
                ),
                e => e,
            });
        }
        let resp = self.check("unlock", path, resp)?;
        self.json("unlock", path, resp, MAX_ERROR_BODY)
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: &str,
        resp: Response,
        max: u64,
    ) -> Result<T, StorageError> {
        let mut buf = Vec::new();
        resp.take(max + 1)
            .read_to_end(&mut buf)
            .map_err(|e| self.remote(op, key, RemoteErrorKind::Unavailable, e.to_string()))?;
        if buf.len() as u64 > max {
            return Err(self.remote(
                op,
                key,
                RemoteErrorKind::Other,
                format!("answer longer than {max} bytes"),
            ));
        }
        serde_json::from_slice(&buf).map_err(|e| {
            self.remote(
                op,
                key,
                RemoteErrorKind::Other,
                format!("malformed answer: {e}"),
            )
        })
    }

    /// Reads a body of exactly `buf.len()` bytes.
    fn read_exact_body(
        &self,
        op: &'static str,
        key: &str,
        resp: Response,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        let mut r = resp.take(buf.len() as u64 + 1);
        let mut got = 0;
        while got < buf.len() {
            let n = r
                .read(&mut buf[got..])
                .map_err(|e| self.remote(op, key, RemoteErrorKind::Unavailable, e.to_string()))?;
            if n == 0 {
                return Err(self.remote(
                    op,
                    key,
                    RemoteErrorKind::Unavailable,
                    format!("answer ended after {got} of {} bytes", buf.len()),
                ));
            }
            got += n;
        }
        let mut extra = [0u8; 1];
        if r.read(&mut extra).unwrap_or(0) != 0 {
            return Err(self.remote(
                op,
                key,
                RemoteErrorKind::Other,
                format!("answer longer than the {} bytes asked for", buf.len()),
            ));
        }
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<(u64, SystemTime)>, StorageError> {
        validate_key(key)?;
        let resp = self.send("stat", key, true, &|| {
            Ok(self
                .client
                .head(self.endpoint("object", Some(("key", key)))))
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            // Absent, also when the whole repository is (`info` tells
            // that apart; a store without config.toml holds no repository).
            return Ok(None);
        }
        let resp = self.check("stat", key, resp)?;
        let size = resp
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                self.remote(
                    "stat",
                    key,
                    RemoteErrorKind::Other,
                    "answer without a Content-Length".into(),
                )
            })?;
        let ms = resp
            .headers()
            .get(wire::MODIFIED_MS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Some((size, from_millis(ms))))
    }

    fn upload(
        &self,
        key: &str,
        body: &dyn Fn() -> Result<reqwest::blocking::Body, StorageError>,
    ) -> Result<(), StorageError> {
        validate_key(key)?;
        let resp = self.send("put", key, true, &|| {
            Ok(self
                .client
                .put(self.endpoint("object", Some(("key", key))))
                .body(body()?))
        })?;
        self.check("put", key, resp).map(|_| ())
    }
}

impl Storage for HttpBackend {
    fn describe(&self) -> String {
        format!("MediaGit server {}", self.url.url())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.upload(key, &|| Ok(reqwest::blocking::Body::from(data.to_vec())))
    }

    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        let io = |e: std::io::Error| StorageError::Io {
            backend: self.describe(),
            op: "read",
            key: key.to_string(),
            source: e,
        };
        self.upload(key, &|| {
            let f = std::fs::File::open(file).map_err(io)?;
            let len = f.metadata().map_err(io)?.len();
            Ok(reqwest::blocking::Body::sized(f, len))
        })?;
        // Consumed, as the trait says.
        let _ = std::fs::remove_file(file);
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let resp = self.send("get", key, true, &|| {
            Ok(self.client.get(self.endpoint("object", Some(("key", key)))))
        })?;
        let resp = self.check("get", key, resp)?;
        let len = resp.content_length().ok_or_else(|| {
            self.remote(
                "get",
                key,
                RemoteErrorKind::Other,
                "answer without a Content-Length".into(),
            )
        })?;
        // Whole-object gets are for small keys (settings, refs, indexes,
        // key files); their callers bound the size first. Still, never
        // trust a length to allocate by: grow as bytes arrive.
        let mut buf = Vec::with_capacity(len.min(16 << 20) as usize);
        resp.take(len + 1)
            .read_to_end(&mut buf)
            .map_err(|e| self.remote("get", key, RemoteErrorKind::Unavailable, e.to_string()))?;
        if buf.len() as u64 != len {
            return Err(self.remote(
                "get",
                key,
                RemoteErrorKind::Unavailable,
                format!("answer of {} bytes, {len} announced", buf.len()),
            ));
        }
        Ok(buf)
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64 - 1;
        let mut delay = Duration::from_millis(200);
        let mut last = None;
        // Retried as a whole: an answer cut off midway is read again.
        for attempt in 1..=self.attempts {
            let r = self
                .send("read", key, true, &|| {
                    Ok(self
                        .client
                        .get(self.endpoint("object", Some(("key", key))))
                        .header(reqwest::header::RANGE, format!("bytes={offset}-{end}")))
                })
                .and_then(|resp| {
                    if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                        let size = self.head(key)?.map(|(s, _)| s).unwrap_or(0);
                        return Err(StorageError::ShortRead {
                            backend: self.describe(),
                            key: key.to_string(),
                            offset,
                            len: buf.len(),
                            size,
                        });
                    }
                    let resp = self.check("read", key, resp)?;
                    if resp.status() != StatusCode::PARTIAL_CONTENT {
                        return Err(self.remote(
                            "read",
                            key,
                            RemoteErrorKind::Other,
                            format!("ranged read answered with {}", resp.status()),
                        ));
                    }
                    self.read_exact_body("read", key, resp, buf)
                });
            match r {
                Err(StorageError::Remote {
                    kind: RemoteErrorKind::Unavailable,
                    ..
                }) if attempt < self.attempts => {
                    last = Some(r);
                    std::thread::sleep(delay);
                    delay = (delay * 3).min(Duration::from_secs(5));
                }
                r => return r,
            }
        }
        last.unwrap_or(Ok(()))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.head(key)?.map(|(s, _)| s))
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        Ok(self.head(key)?.map(|(_, m)| m))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.list_meta(prefix)?.into_iter().map(|k| k.key).collect())
    }

    fn list_meta(&self, prefix: &str) -> Result<Vec<ListedKey>, StorageError> {
        let resp = self.send("list", prefix, true, &|| {
            Ok(self
                .client
                .get(self.endpoint("list", Some(("prefix", prefix)))))
        })?;
        let resp = self.check("list", prefix, resp)?;
        let entries: Vec<ListEntry> = self.json("list", prefix, resp, MAX_LIST_BODY)?;
        if entries.len() > wire::MAX_LIST_KEYS {
            return Err(self.remote(
                "list",
                prefix,
                RemoteErrorKind::Other,
                "too many keys".into(),
            ));
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            // A server could answer anything: keys outside the prefix or
            // not valid keys are refused, the order is checked.
            validate_key(&e.key)?;
            if !e.key.starts_with(prefix) {
                return Err(self.remote(
                    "list",
                    prefix,
                    RemoteErrorKind::Other,
                    format!("listing holds {:?}, outside the prefix", e.key),
                ));
            }
            out.push(ListedKey {
                key: e.key,
                size: e.size,
                modified: from_millis(e.modified_ms),
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let resp = self.send("delete", key, true, &|| {
            Ok(self
                .client
                .delete(self.endpoint("object", Some(("key", key)))))
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            let e = self.error_of("delete", key, resp);
            return if e.is_not_found() { Ok(()) } else { Err(e) };
        }
        self.check("delete", key, resp).map(|_| ())
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError> {
        validate_key(key)?;
        let req = CasRequest {
            expected: expected.map(hex::encode),
            new: new.map(hex::encode),
        };
        let body = serde_json::to_vec(&req).map_err(|e| {
            self.remote(
                "compare-and-swap",
                key,
                RemoteErrorKind::Other,
                e.to_string(),
            )
        })?;
        // Not idempotent: sent again only when it never reached the server.
        let resp = self.send("compare-and-swap", key, false, &|| {
            Ok(self
                .client
                .post(self.endpoint("cas", Some(("key", key))))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone()))
        })?;
        let resp = self.check("compare-and-swap", key, resp)?;
        let a: CasAnswer = self.json("compare-and-swap", key, resp, MAX_ERROR_BODY * 4)?;
        if a.swapped {
            return Ok(CasOutcome::Swapped);
        }
        let actual = match a.actual {
            None => None,
            Some(h) => {
                let v = hex::decode(&h).map_err(|e| {
                    self.remote(
                        "compare-and-swap",
                        key,
                        RemoteErrorKind::Other,
                        format!("malformed answer: {e}"),
                    )
                })?;
                if v.len() > wire::MAX_CAS_VALUE {
                    return Err(self.remote(
                        "compare-and-swap",
                        key,
                        RemoteErrorKind::Other,
                        "value too long".into(),
                    ));
                }
                Some(v)
            }
        };
        Ok(CasOutcome::Conflict { actual })
    }
}

/// Exposed for the server's tests: the Unix-millisecond form of a time.
pub fn unix_millis(t: SystemTime) -> u64 {
    millis(t)
}
