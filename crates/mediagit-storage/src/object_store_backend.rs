//! Object stores (S3 and S3-compatible, Azure Blob, Google Cloud Storage,
//! Backblaze B2) through OpenDAL.
//!
//! The [`Storage`] trait is synchronous; this backend owns a small Tokio
//! runtime and blocks on OpenDAL's futures, so the repository code above stays
//! the same for every store. OpenDAL's retry layer retries transient errors
//! (timeouts, 5xx, throttling) with a short exponential backoff, so a dead
//! endpoint fails within seconds instead of hanging.
//!
//! Compare-and-swap is a conditional write: `If-None-Match: *` to create,
//! `If-Match: <etag>` (S3, Azure) or `ifGenerationMatch` (GCS) to replace or
//! delete. Stores that ignore those conditions (native B2, some emulators and
//! older S3 clones) are detected by [`ObjectStoreBackend::probe_conditional_writes`];
//! on them compare-and-swap is a plain read-compare-write and two clients
//! racing on one ref can lose an update. The repository records the probe's
//! answer and warns.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};

use crate::backend::{validate_key, CasOutcome, RemoteErrorKind, Storage, StorageError};
use crate::redact::Secrets;

/// Which cloud API to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    S3,
    Azure,
    Gcs,
    B2,
}

impl Cloud {
    pub fn name(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Azure => "azure",
            Cloud::Gcs => "gcs",
            Cloud::B2 => "b2",
        }
    }
}

/// Where a repository lives in an object store. Holds no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStoreSpec {
    pub cloud: Cloud,
    /// Bucket, or container for Azure.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub bucket_id: Option<String>,
}

/// The environment variables that carry credentials and endpoints, collected
/// by the caller (the library never reads the environment itself; OpenDAL's
/// own credential chains may still read the standard files, such as
/// `~/.aws/credentials`).
pub type CloudEnv = BTreeMap<String, String>;

/// Names of the variables [`CloudEnv`] may carry.
pub const CLOUD_ENV_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
    "B2_APPLICATION_KEY_ID",
    "B2_APPLICATION_KEY",
];

/// Every object is opaque bytes (and some servers answer a missing content
/// type with a JSON null that clients choke on).
const CONTENT_TYPE: &str = "application/octet-stream";

/// Uploads larger than this go up in parts of this size.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once per upload.
const PART_CONCURRENCY: usize = 4;

/// One stored version of a key ([`ObjectStoreBackend::versions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    pub version: String,
    /// A delete marker (S3), not data.
    pub deleted: bool,
    /// The version a plain read returns.
    pub current: bool,
    pub size: u64,
    /// The service's content tag: equal tags, equal bytes.
    pub etag: Option<String>,
    pub modified: Option<SystemTime>,
}

impl KeyVersion {
    fn of(m: &opendal::Metadata) -> Option<KeyVersion> {
        Some(KeyVersion {
            version: m.version()?.to_string(),
            deleted: m.is_deleted(),
            current: m.is_current().unwrap_or(false),
            size: m.content_length(),
            etag: m.etag().map(|t| t.trim_matches('"').to_string()),
            modified: m.last_modified().map(SystemTime::from),
        })
    }
}

/// A key's data versions (delete markers left out), oldest first.
/// Listings give versions newest first, and times may tie (to the
/// second): of equal times, the later listed is the older.
pub fn data_versions(versions: &[KeyVersion]) -> Vec<&KeyVersion> {
    let mut data: Vec<&KeyVersion> = versions.iter().rev().filter(|v| !v.deleted).collect();
    data.sort_by_key(|v| v.modified);
    data
}

/// Of a key's versions: the oldest data version, when the key holds more
/// than one content and its newest version is not a delete marker (a key
/// written once, then written over by someone else).
pub fn first_of_rewritten(versions: &[KeyVersion]) -> Option<&KeyVersion> {
    let newest = versions
        .iter()
        .enumerate()
        .max_by_key(|(i, v)| (v.current, v.modified, std::cmp::Reverse(*i)))?
        .1;
    if newest.deleted {
        return None;
    }
    let oldest = *data_versions(versions).first()?;
    let differs = versions
        .iter()
        .filter(|v| !v.deleted)
        .any(|v| v.etag.is_none() || v.etag != oldest.etag);
    differs.then_some(oldest)
}

/// How [`ObjectStoreBackend::connect_with`] sets up the client; the
/// defaults are what [`ObjectStoreBackend::connect`] uses.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Retries of a transient error (timeouts, 5xx, throttling, refused
    /// connections), with exponential backoff from 200 ms to 2 s.
    pub retries: usize,
    /// Per request (stat, list, delete) and per read or write call.
    pub request_timeout: Duration,
    /// Per transfer call: a write call can carry a whole 8 MiB part or, on
    /// stores without multipart uploads, a whole pack.
    pub io_timeout: Duration,
    /// Check with one listing request that the bucket exists and the
    /// credentials are accepted.
    pub check_reachable: bool,
    /// Tests only: send every HTTP request to this `http://host:port`
    /// (path and query kept), for services whose API address is fixed
    /// (native B2).
    #[doc(hidden)]
    pub redirect_to: Option<String>,
    /// Tests only: keep error messages whole instead of cutting them at 400
    /// characters, so a test sees everything redaction had to clean.
    #[doc(hidden)]
    pub whole_messages: bool,
    /// Send `Content-MD5` with every upload, each in one request: what an
    /// S3 bucket with Object Lock requires (see [`crate::object_lock`]).
    /// Memory then holds one whole object per upload in flight.
    pub content_md5: bool,
    /// Read the first version of a key that was written over (a bucket
    /// with versioning whose keys are written once: a backup target under
    /// S3 Object Lock). Costs one version listing per key read.
    pub first_versions: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            retries: 4,
            request_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(300),
            check_reachable: true,
            redirect_to: None,
            whole_messages: false,
            content_md5: false,
            first_versions: false,
        }
    }
}

/// Makes every [`StorageError::Remote`] this backend returns: the one place
/// a message enters an error, so none escapes redaction (OpenDAL's messages
/// hold request URLs, whose query strings can carry a SAS signature, and
/// servers' answers, which can echo the request).
#[derive(Clone, Debug)]
struct Reporter {
    /// The backend's description, itself redacted (an endpoint may hold
    /// userinfo).
    backend: String,
    secrets: Secrets,
    /// Cut messages at 400 characters.
    cut: bool,
}

impl Reporter {
    fn new(spec: &ObjectStoreSpec, env: &CloudEnv) -> Self {
        let secrets = Secrets::from_env(env);
        Reporter {
            backend: secrets.redact(&describe(spec)),
            secrets,
            cut: true,
        }
    }

    fn remote(
        &self,
        op: &'static str,
        key: &str,
        kind: RemoteErrorKind,
        message: &str,
    ) -> StorageError {
        StorageError::Remote {
            backend: self.backend.clone(),
            op,
            key: key.to_string(),
            kind,
            message: shorten(&self.secrets.redact(message), self.cut),
        }
    }
}

pub struct ObjectStoreBackend {
    op: Operator,
    /// Private I/O runtime; `None` only while being dropped.
    rt: Option<tokio::runtime::Runtime>,
    spec: ObjectStoreSpec,
    reporter: Reporter,
    /// Whether the store enforces conditional writes (see the module docs).
    conditional: bool,
    /// Set once the server answered a multipart upload with "not
    /// implemented" (some emulators): later uploads go up in one request.
    no_multipart: std::sync::atomic::AtomicBool,
    /// An S3 bucket's address and static credentials, for the bucket
    /// requests of [`crate::object_lock`].
    s3: Option<crate::object_lock::S3Bucket>,
    /// With [`ConnectOptions::first_versions`]: the version each key read
    /// so far is read at (`None`: as it is).
    pins: Option<std::sync::Mutex<std::collections::HashMap<String, Option<String>>>>,
    /// [`ConnectOptions::content_md5`].
    md5: bool,
}

impl Drop for ObjectStoreBackend {
    /// Dropping a runtime blocks until its workers stop, which panics inside
    /// an async context; every request has completed by now, so nothing is
    /// lost by letting the workers go in the background.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl ObjectStoreBackend {
    /// Builds the client and checks, with one listing request, that the
    /// bucket exists and the credentials are accepted.
    pub fn connect(spec: &ObjectStoreSpec, env: &CloudEnv) -> Result<Self, StorageError> {
        Self::connect_with(spec, env, &ConnectOptions::default())
    }

    /// [`Self::connect`] with other retries, timeouts or checks.
    pub fn connect_with(
        spec: &ObjectStoreSpec,
        env: &CloudEnv,
        options: &ConnectOptions,
    ) -> Result<Self, StorageError> {
        let reporter = Reporter {
            cut: !options.whole_messages,
            ..Reporter::new(spec, env)
        };
        let config_err =
            |message: String| reporter.remote("configure", "", RemoteErrorKind::Config, &message);
        let root = format!("/{}", spec.prefix);
        let var = |k: &str| env.get(k).filter(|v| !v.is_empty()).map(String::as_str);
        // One operator per root: the store's prefix, and the bucket's root
        // for server-side copies between prefixes (S3).
        let s3_region = spec
            .region
            .as_deref()
            .or(var("AWS_REGION"))
            .or(var("AWS_DEFAULT_REGION"))
            .unwrap_or("us-east-1");
        let op = match spec.cloud {
            Cloud::S3 => {
                let mut b = opendal::services::S3::default()
                    .bucket(&spec.bucket)
                    .root(&root)
                    .disable_ec2_metadata();
                b = b.region(s3_region);
                if let Some(e) = spec.endpoint.as_deref().or(var("AWS_ENDPOINT_URL")) {
                    b = b.endpoint(e.trim_end_matches('/'));
                }
                if let (Some(k), Some(s)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
                {
                    b = b.access_key_id(k).secret_access_key(s);
                    if let Some(t) = var("AWS_SESSION_TOKEN") {
                        b = b.session_token(t);
                    }
                }
                if let Some(p) = var("AWS_PROFILE") {
                    b = b.profile(p);
                }
                if options.content_md5 {
                    b = b.checksum_algorithm("md5");
                }
                Operator::new(b)
            }
            Cloud::Azure => {
                let mut b = match var("AZURE_STORAGE_CONNECTION_STRING") {
                    Some(cs) => opendal::services::Azblob::from_connection_string(cs)
                        .map_err(|e| config_err(format!("AZURE_STORAGE_CONNECTION_STRING: {e}")))?,
                    None => opendal::services::Azblob::default(),
                };
                b = b.container(&spec.bucket).root(&root);
                let account = spec
                    .account
                    .as_deref()
                    .or(var("AZURE_STORAGE_ACCOUNT"));
                if let Some(a) = account {
                    b = b.account_name(a);
                }
                if let Some(k) = var("AZURE_STORAGE_KEY") {
                    b = b.account_key(k);
                }
                if let Some(t) = var("AZURE_STORAGE_SAS_TOKEN") {
                    b = b.sas_token(t);
                }
                match (spec.endpoint.as_deref(), account) {
                    (Some(e), _) => b = b.endpoint(e.trim_end_matches('/')),
                    (None, Some(a)) if var("AZURE_STORAGE_CONNECTION_STRING").is_none() => {
                        b = b.endpoint(&format!("https://{a}.blob.core.windows.net"))
                    }
                    (None, None) if var("AZURE_STORAGE_CONNECTION_STRING").is_none() => {
                        return Err(config_err(
                            "no storage account: set AZURE_STORAGE_ACCOUNT (and AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN), AZURE_STORAGE_CONNECTION_STRING, or account = \"...\" in [storage]".into(),
                        ))
                    }
                    _ => {}
                }
                Operator::new(b)
            }
            Cloud::Gcs => {
                let mut b = opendal::services::Gcs::default()
                    .bucket(&spec.bucket)
                    .root(&root)
                    .disable_vm_metadata();
                let endpoint = spec.endpoint.as_deref().or(var("STORAGE_EMULATOR_HOST"));
                if let Some(e) = endpoint {
                    let e = e.trim_end_matches('/');
                    if e.starts_with("http://") || e.starts_with("https://") {
                        b = b.endpoint(e);
                    } else {
                        b = b.endpoint(&format!("http://{e}"));
                    }
                }
                match var("GOOGLE_APPLICATION_CREDENTIALS") {
                    Some(p) => b = b.credential_path(p),
                    // An emulator takes no credentials.
                    None if endpoint.is_some() => b = b.skip_signature(),
                    None => {}
                }
                Operator::new(b)
            }
            Cloud::B2 => {
                let (Some(id), Some(key)) = (var("B2_APPLICATION_KEY_ID"), var("B2_APPLICATION_KEY"))
                else {
                    return Err(config_err(
                        "set B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY".into(),
                    ));
                };
                let Some(bucket_id) = spec.bucket_id.as_deref() else {
                    return Err(config_err("[storage] bucket_id is missing".into()));
                };
                let b = opendal::services::B2::default()
                    .bucket(&spec.bucket)
                    .bucket_id(bucket_id)
                    .application_key_id(id)
                    .application_key(key)
                    .root(&root);
                Operator::new(b)
            }
        }
        .map_err(|e| config_err(e.to_string()))?;
        let op = match &options.redirect_to {
            Some(to) => op.with_context(opendal::OperationContext::new().with_http_transport(
                opendal::HttpTransporter::new(Redirect {
                    to: to.trim_end_matches('/').to_string(),
                    inner: opendal::HttpTransporter::default(),
                }),
            )),
            None => op,
        };
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(options.request_timeout)
                    .with_io_timeout(options.io_timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(options.retries)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(2))
                    .with_jitter(),
            );
        let s3 = if let Cloud::S3 = spec.cloud {
            let region = s3_region;
            Some(crate::object_lock::S3Bucket {
                endpoint: match spec.endpoint.as_deref().or(var("AWS_ENDPOINT_URL")) {
                    Some(e) => e.trim_end_matches('/').to_string(),
                    None => format!("https://s3.{region}.amazonaws.com"),
                },
                region: region.to_string(),
                bucket: spec.bucket.clone(),
                keys: match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                    (Some(k), Some(s)) => Some((
                        k.to_string(),
                        s.to_string(),
                        var("AWS_SESSION_TOKEN").map(str::to_string),
                    )),
                    _ => None,
                },
            })
        } else {
            None
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mediagit-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Io {
                backend: reporter.backend.clone(),
                op: "start I/O runtime",
                key: String::new(),
                source: e,
            })?;
        let backend = ObjectStoreBackend {
            op,
            rt: Some(rt),
            spec: spec.clone(),
            reporter,
            conditional: true,
            // Object Lock buckets: OpenDAL sends no MD5 with multipart.
            no_multipart: std::sync::atomic::AtomicBool::new(options.content_md5),
            s3,
            pins: options.first_versions.then(Default::default),
            md5: options.content_md5,
        };
        if options.check_reachable {
            backend.check_reachable()?;
        }
        Ok(backend)
    }

    /// A signed `?object-lock` request to the bucket (S3 only).
    fn lock_request(
        &self,
        op: &'static str,
        method: http::Method,
        body: Option<String>,
    ) -> Result<crate::object_lock::Answer, StorageError> {
        let Some(b) = &self.s3 else {
            return Err(self.reporter.remote(
                op,
                "",
                RemoteErrorKind::Unsupported,
                "S3 Object Lock needs an s3:// store",
            ));
        };
        let transport = self.op.context().http_transport().clone();
        let kind = |m: &str| {
            if m.contains("AWS_ACCESS_KEY_ID") {
                // (Not NoCredentials, whose hint offers profiles.)
                RemoteErrorKind::Config
            } else {
                RemoteErrorKind::Unavailable
            }
        };
        self.run(b.object_lock_request(&transport, method, body))
            .map_err(|m| self.reporter.remote(op, "", kind(&m), &m))
    }

    /// An S3 error answer as an error of `op`.
    fn answer_err(&self, op: &'static str, a: &crate::object_lock::Answer) -> StorageError {
        let code = crate::object_lock::error_code(&a.body).unwrap_or("");
        let kind = match a.status {
            401 | 403 => RemoteErrorKind::PermissionDenied,
            404 if code == "NoSuchBucket" => RemoteErrorKind::NoSuchBucket,
            429 | 503 if code == "SlowDown" => RemoteErrorKind::Throttled,
            501 => RemoteErrorKind::Unsupported,
            500..=599 => RemoteErrorKind::Unavailable,
            _ => RemoteErrorKind::Other,
        };
        // Code and Message only: S3 error documents may echo the request's
        // signature (SignatureDoesNotMatch: SignatureProvided, StringToSign).
        let text = crate::object_lock::error_message(&a.body).unwrap_or("");
        let message = match crate::object_lock::error_code(&a.body) {
            Some(c) => format!("HTTP {} {c}: {text}", a.status),
            None => format!("HTTP {} (no S3 error document)", a.status),
        };
        self.reporter.remote(op, "", kind, &message)
    }

    /// Every stored version of `key` (S3, Azure and GCS buckets with
    /// versioning), newest first as the store lists them, with delete
    /// markers. An attacker who can write can add versions but, under S3
    /// Object Lock, not remove locked ones: a key MediaGit wrote once and
    /// that has several versions was written over.
    pub fn versions(&self, key: &str) -> Result<Vec<KeyVersion>, StorageError> {
        validate_key(key)?;
        let entries = self
            .run(self.op.list_with(key).versions(true).deleted(true))
            .map_err(|e| self.err("list versions of", key, e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.path() == key)
            .filter_map(|e| KeyVersion::of(e.metadata()))
            .collect())
    }

    /// The version of `key` reads use: with [`ConnectOptions::first_versions`]
    /// and a key written over, its first version ([`first_of_rewritten`]).
    fn pinned(&self, key: &str) -> Result<Option<String>, StorageError> {
        let Some(pins) = &self.pins else {
            return Ok(None);
        };
        if let Some(p) = pins.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(p.clone());
        }
        let versions = self.versions(key)?;
        let pin = first_of_rewritten(&versions).map(|v| v.version.clone());
        pins.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), pin.clone());
        Ok(pin)
    }

    /// A stat of the version reads use.
    fn stat_pinned(&self, key: &str) -> opendal::Result<opendal::Metadata> {
        match self.pinned(key) {
            Ok(Some(v)) => self.run(self.op.stat_with(key).version(&v)),
            Ok(None) => self.run(self.op.stat(key)),
            Err(e) => Err(opendal::Error::new(ErrorKind::Unexpected, e.to_string())),
        }
    }

    /// Deletes one version of `key` for good (S3: refused, as permission
    /// denied, while Object Lock retains it).
    pub fn delete_version(&self, key: &str, version: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.run(self.op.delete_with(key).version(version))
            .map_err(|e| self.err("delete a version of", key, e))
    }

    /// Reads one version of `key`.
    pub fn get_version(&self, key: &str, version: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        self.run(self.op.read_with(key).version(version))
            .map(|b| b.to_vec())
            .map_err(|e| self.err("read a version of", key, e))
    }

    /// Tells the backend whether the store enforces conditional writes (the
    /// answer of [`Self::probe_conditional_writes`], usually recorded at init).
    pub fn with_conditional_writes(mut self, enforced: bool) -> Self {
        self.conditional = enforced;
        self
    }

    /// Blocks on one OpenDAL request. Called from inside an async runtime
    /// (a server's handler using the synchronous `Storage` trait), where
    /// blocking this thread on another runtime would panic, it waits on a
    /// helper thread instead.
    fn run<F>(&self, f: F) -> F::Output
    where
        F: std::future::IntoFuture,
        F::IntoFuture: Send,
        F::Output: Send,
    {
        let Some(rt) = self.rt.as_ref() else {
            unreachable!("the runtime is only taken by Drop");
        };
        let fut = f.into_future();
        if tokio::runtime::Handle::try_current().is_err() {
            return rt.block_on(fut);
        }
        std::thread::scope(|s| match s.spawn(|| rt.block_on(fut)).join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }

    pub fn spec(&self) -> &ObjectStoreSpec {
        &self.spec
    }

    /// One listing request: fails clearly on a missing bucket, refused
    /// credentials or an unreachable endpoint.
    fn check_reachable(&self) -> Result<(), StorageError> {
        let r = self.run(async {
            self.op.list("/").await?;
            Ok::<(), opendal::Error>(())
        });
        r.map_err(|e| {
            let text = e.to_string();
            let missing = e.kind() == ErrorKind::NotFound
                || ["NoSuchBucket", "ContainerNotFound", "status: 404"]
                    .iter()
                    .any(|m| text.contains(m));
            if missing {
                return self.reporter.remote(
                    "list",
                    "",
                    RemoteErrorKind::NoSuchBucket,
                    &format!(
                        "{} {:?} does not exist",
                        bucket_word(self.spec.cloud),
                        self.spec.bucket
                    ),
                );
            }
            self.err("list", "", e)
        })
    }

    /// Finds out whether the store really enforces conditional writes: a
    /// second create-if-absent of the same key must be refused, and so must a
    /// replace that names a wrong version.
    pub fn probe_conditional_writes(&self) -> Result<bool, StorageError> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let key = format!("locks/probe-{}-{nanos}", std::process::id());
        let first = self.run(
            self.op
                .write_with(&key, b"1".to_vec())
                .content_type(CONTENT_TYPE)
                .if_not_exists(true),
        );
        match first {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Unsupported => return Ok(false),
            Err(e) => return Err(self.err("write", &key, e)),
        }
        let second = self.run(
            self.op
                .write_with(&key, b"2".to_vec())
                .content_type(CONTENT_TYPE)
                .if_not_exists(true),
        );
        let enforced = match second {
            Err(e) if e.kind() == ErrorKind::ConditionNotMatch => true,
            Err(e) if e.kind() == ErrorKind::Unsupported => false,
            Err(e) => {
                let _ = self.delete(&key);
                return Err(self.err("write", &key, e));
            }
            Ok(_) => false,
        };
        let enforced = enforced && {
            // A replace naming a version that is not the current one.
            let stale = Token::Etag("\"00000000000000000000000000000000\"".into());
            let stale = match self.spec.cloud {
                Cloud::Gcs => Token::Version("1".into()),
                _ => stale,
            };
            // Only a refusal or a clear "unsupported" answers the question;
            // any other error (throttling, a timeout) must not be recorded
            // as "this store ignores conditions".
            match self.write_if(&key, b"3", Some(&stale)) {
                Ok(refused) => !refused,
                Err(StorageError::Remote {
                    kind: RemoteErrorKind::Unsupported,
                    ..
                }) => false,
                Err(e) => {
                    let _ = self.delete(&key);
                    return Err(e);
                }
            }
        };
        self.delete(&key)?;
        Ok(enforced)
    }

    fn err(&self, op: &'static str, key: &str, e: opendal::Error) -> StorageError {
        let kind = match e.kind() {
            ErrorKind::NotFound => {
                return StorageError::NotFound {
                    backend: self.describe(),
                    key: key.to_string(),
                }
            }
            _ if e.to_string().contains("failed to load signing credential") => {
                RemoteErrorKind::NoCredentials
            }
            ErrorKind::PermissionDenied => RemoteErrorKind::PermissionDenied,
            ErrorKind::RateLimited => RemoteErrorKind::Throttled,
            ErrorKind::ConfigInvalid => RemoteErrorKind::Config,
            ErrorKind::Unsupported => RemoteErrorKind::Unsupported,
            // 501 Not Implemented: e.g. a server without multipart uploads.
            _ if e.to_string().contains("status: 501") => RemoteErrorKind::Unsupported,
            _ if e.is_temporary() => RemoteErrorKind::Unavailable,
            // The retry layer marks what it gave up on as persistent;
            // a request that never got an answer is still "unreachable".
            ErrorKind::Unexpected if e.to_string().contains("send http request") => {
                RemoteErrorKind::Unavailable
            }
            _ => RemoteErrorKind::Other,
        };
        self.reporter.remote(op, key, kind, &e.to_string())
    }

    /// The current value of `key` and the token that names this version.
    fn read_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Token)>, StorageError> {
        for _ in 0..20 {
            let meta = match self.run(self.op.stat(key)) {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.err("stat", key, e)),
            };
            let token = match (self.spec.cloud, meta.version(), meta.etag()) {
                (Cloud::Gcs, Some(v), _) => Token::Version(v.to_string()),
                (_, _, Some(etag)) => Token::Etag(etag.to_string()),
                _ => Token::None,
            };
            let read = match &token {
                Token::Etag(t) if self.conditional => self.run(self.op.read_with(key).if_match(t)),
                Token::Version(v) if self.conditional => {
                    self.run(self.op.read_with(key).if_version_match(v))
                }
                _ => self.run(self.op.read(key)),
            };
            match read {
                Ok(buf) => return Ok(Some((buf.to_vec(), token))),
                // Changed between stat and read, or deleted: look again.
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConditionNotMatch | ErrorKind::NotFound) =>
                {
                    continue
                }
                Err(e) => return Err(self.err("read", key, e)),
            }
        }
        Err(self.reporter.remote(
            "read",
            key,
            RemoteErrorKind::Unavailable,
            "the object kept changing while being read",
        ))
    }

    /// Writes `data` if the key is still at version `token` (`None` = absent).
    /// `Ok(false)`: the condition failed.
    fn write_if(
        &self,
        key: &str,
        data: &[u8],
        token: Option<&Token>,
    ) -> Result<bool, StorageError> {
        let w = self
            .op
            .write_with(key, data.to_vec())
            .content_type(CONTENT_TYPE);
        let w = match (token, self.conditional) {
            (None, true) => w.if_not_exists(true),
            (Some(Token::Etag(t)), true) => w.if_match(t),
            (Some(Token::Version(v)), true) => w.if_version_match(v),
            _ => w,
        };
        match self.run(w) {
            Ok(_) => Ok(true),
            // Refused: another client changed the key (409 on some stores;
            // a key deleted meanwhile may answer 404).
            Err(e) if is_refusal(&e) => Ok(false),
            Err(e) => Err(self.err("write", key, e)),
        }
    }

    fn delete_if(&self, key: &str, token: &Token) -> Result<bool, StorageError> {
        let d = self.op.delete_with(key);
        let d = match (token, self.conditional) {
            (Token::Etag(t), true) => d.if_match(t),
            (Token::Version(v), true) => d.if_version_match(v),
            _ => d,
        };
        match self.run(d) {
            Ok(()) => Ok(true),
            Err(e) if is_refusal(&e) => Ok(false),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }

    /// One request. Holds the file in memory: used for files up to one part,
    /// and on servers without multipart uploads.
    fn upload_whole(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        let data = std::fs::read(file).map_err(|e| StorageError::Io {
            backend: self.describe(),
            op: "read local file for",
            key: key.to_string(),
            source: e,
        })?;
        self.put_single(key, data)
    }

    /// One plain PUT of `data`.
    fn put_single(&self, key: &str, data: Vec<u8>) -> Result<(), StorageError> {
        self.run(self.op.write_with(key, data).content_type(CONTENT_TYPE))
            .map(|_| ())
            .map_err(|e| self.err("write", key, e))
    }

    /// A multipart upload, `PART_CONCURRENCY` parts in flight; memory stays
    /// at about that many parts whatever the file size. Parts are invisible
    /// until the upload completes, and an abort removes them.
    fn upload_parts(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        let io_err = |op, e| StorageError::Io {
            backend: self.describe(),
            op,
            key: key.to_string(),
            source: e,
        };
        let mut f = std::fs::File::open(file).map_err(|e| io_err("open local file for", e))?;
        self.run(async {
            let mut w = self
                .op
                .writer_with(key)
                .content_type(CONTENT_TYPE)
                .chunk(PART_SIZE)
                .concurrent(PART_CONCURRENCY)
                .await
                .map_err(|e| self.err("write", key, e))?;
            loop {
                let mut buf = vec![0u8; PART_SIZE];
                let mut filled = 0;
                while filled < buf.len() {
                    match f.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = w.abort().await;
                            return Err(io_err("read local file for", e));
                        }
                    }
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                if let Err(e) = w.write(buf).await {
                    let _ = w.abort().await;
                    return Err(self.err("write", key, e));
                }
            }
            if let Err(e) = w.close().await {
                let _ = w.abort().await;
                return Err(self.err("write", key, e));
            }
            Ok(())
        })
    }

    fn conflict(&self, key: &str) -> Result<CasOutcome, StorageError> {
        Ok(CasOutcome::Conflict {
            actual: self.read_versioned(key)?.map(|(v, _)| v),
        })
    }
}

/// What names one version of an object for a conditional request.
#[derive(Clone, Debug)]
enum Token {
    Etag(String),
    /// GCS generation number.
    Version(String),
    None,
}

fn bucket_word(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Azure => "container",
        _ => "bucket",
    }
}

fn describe(spec: &ObjectStoreSpec) -> String {
    let mut s = format!(
        "{} {} {:?}",
        spec.cloud.name(),
        bucket_word(spec.cloud),
        spec.bucket
    );
    if !spec.prefix.is_empty() {
        s.push_str(&format!(" prefix {:?}", spec.prefix));
    }
    if let Some(e) = &spec.endpoint {
        s.push_str(&format!(" at {e}"));
    }
    s
}

/// A conditional request the store refused because the key changed.
fn is_refusal(e: &opendal::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConditionNotMatch
            | ErrorKind::AlreadyExists
            | ErrorKind::Conflict
            | ErrorKind::NotFound
    )
}

/// The directory OpenDAL lists for a key prefix: object stores list by key
/// prefix, OpenDAL by directory, so callers list this and filter.
fn listing_dir(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "/",
    }
}

/// OpenDAL's errors carry the whole request context; keep the useful head,
/// on one line. (Cut after redaction, which must see whole secrets.)
fn shorten(message: &str, cut: bool) -> String {
    let mut m = message.replace(['\r', '\n'], " ");
    if cut && m.len() > 400 {
        let mut cut = 400;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push_str("...");
    }
    m
}

/// Sends every request to another address (see
/// [`ConnectOptions::redirect_to`]).
struct Redirect {
    to: String,
    inner: opendal::HttpTransporter,
}

impl opendal::HttpTransport for Redirect {
    async fn fetch(
        &self,
        mut req: http::Request<opendal::Buffer>,
    ) -> opendal::Result<http::Response<opendal::HttpBody>> {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri: http::Uri = format!("{}{path}", self.to).parse().map_err(|e| {
            opendal::Error::new(ErrorKind::Unexpected, "redirect address is invalid").set_source(e)
        })?;
        *req.uri_mut() = uri;
        self.inner.fetch(req).await
    }
}

impl Storage for ObjectStoreBackend {
    fn location(&self) -> Option<crate::StoreLocation> {
        let b = self.s3.as_ref()?;
        Some(crate::StoreLocation {
            service: "s3",
            endpoint: b.endpoint.clone(),
            bucket: b.bucket.clone(),
            prefix: self.spec.prefix.trim_matches('/').to_string(),
        })
    }

    fn copy_in(
        &self,
        from: &crate::StoreLocation,
        src_key: &str,
        key: &str,
        if_match: &str,
    ) -> Result<bool, StorageError> {
        validate_key(src_key)?;
        validate_key(key)?;
        let Some(here) = self.location() else {
            return Ok(false);
        };
        if here.service != from.service || here.endpoint != from.endpoint {
            return Ok(false);
        }
        // Signed here (OpenDAL's copy takes no source condition): without
        // static credentials the bytes are copied instead.
        let Some(b) = self.s3.as_ref().filter(|b| b.keys.is_some()) else {
            return Ok(false);
        };
        let join = |prefix: &str, k: &str| match prefix {
            "" => k.to_string(),
            p => format!("{p}/{k}"),
        };
        let (src, dst) = (join(&from.prefix, src_key), join(&here.prefix, key));
        let transport = self.op.context().http_transport().clone();
        let Ok(a) = self.run(b.copy_object(
            &transport,
            &from.bucket,
            &src,
            &dst,
            if_match.trim_matches('"'),
            self.md5,
        )) else {
            return Ok(false);
        };
        // 200 without an error document (CopyObject may answer 200 and
        // fail in the body); anything else (the source changed: 412; no
        // right: 403; no CopyObject: 501; a failure) leaves it to the
        // byte copy, which reports what is really wrong.
        Ok(a.status == 200 && crate::object_lock::error_code(&a.body).is_none())
    }

    fn etag(&self, key: &str) -> Result<Option<String>, StorageError> {
        validate_key(key)?;
        match self.stat_pinned(key) {
            Ok(m) => Ok(m.etag().map(|t| t.trim_matches('"').to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat", key, e)),
        }
    }

    fn list_versions(
        &self,
        prefix: &str,
    ) -> Result<Option<Vec<(String, KeyVersion)>>, StorageError> {
        if self.s3.is_none() {
            return Ok(None);
        }
        let entries = self
            .run(
                self.op
                    .list_with(prefix)
                    .versions(true)
                    .deleted(true)
                    .recursive(true),
            )
            .map_err(|e| self.err("list versions of", prefix, e))?;
        Ok(Some(
            entries
                .into_iter()
                .filter(|e| !e.path().ends_with('/'))
                .filter_map(|e| Some((e.path().to_string(), KeyVersion::of(e.metadata())?)))
                .collect(),
        ))
    }

    fn object_lock(&self) -> Result<Option<crate::ObjectLock>, StorageError> {
        if self.s3.is_none() {
            return Ok(None);
        }
        let op = "read the object lock configuration of";
        let a = self.lock_request(op, http::Method::GET, None)?;
        match a.status {
            200 => crate::object_lock::parse_configuration(&a.body)
                .map(Some)
                .map_err(|m| self.reporter.remote(op, "", RemoteErrorKind::Other, &m)),
            404 if crate::object_lock::error_code(&a.body)
                == Some("ObjectLockConfigurationNotFoundError") =>
            {
                Ok(None)
            }
            _ => Err(self.answer_err(op, &a)),
        }
    }

    fn set_object_lock(&self, mode: crate::LockMode, days: u32) -> Result<(), StorageError> {
        let op = "set the default retention of";
        let body = crate::object_lock::configuration_xml(mode, days);
        let a = self.lock_request(op, http::Method::PUT, Some(body))?;
        match a.status {
            200 | 204 => Ok(()),
            _ => Err(self.answer_err(op, &a)),
        }
    }

    fn describe(&self) -> String {
        self.reporter.backend.clone()
    }

    fn is_remote(&self) -> bool {
        true
    }
    fn conditional_writes_probe(&self) -> Option<Result<bool, StorageError>> {
        Some(self.probe_conditional_writes())
    }

    fn first_key(&self, prefix: &str) -> Result<Option<String>, StorageError> {
        use futures::TryStreamExt;
        let dir = listing_dir(prefix);
        let r = self.run(async {
            let mut lister = self.op.lister_with(dir).recursive(true).limit(100).await?;
            while let Some(e) = lister.try_next().await? {
                let k = e.path().trim_start_matches('/');
                if !e.path().ends_with('/') && k.starts_with(prefix) {
                    return Ok(Some(k.to_string()));
                }
            }
            Ok::<_, opendal::Error>(None)
        });
        match r {
            Ok(k) => Ok(k),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("list", prefix, e)),
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        validate_key(key)?;
        if data.len() <= PART_SIZE || self.no_multipart.load(Ordering::Relaxed) {
            return self.put_single(key, data.to_vec());
        }
        let w = self
            .op
            .write_with(key, data.to_vec())
            .content_type(CONTENT_TYPE)
            .chunk(PART_SIZE)
            .concurrent(PART_CONCURRENCY);
        match self.run(w).map_err(|e| self.err("write", key, e)) {
            Ok(_) => Ok(()),
            Err(StorageError::Remote {
                kind: RemoteErrorKind::Unsupported,
                ..
            }) => {
                self.no_multipart.store(true, Ordering::Relaxed);
                self.put_single(key, data.to_vec())
            }
            Err(e) => Err(e),
        }
    }

    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        validate_key(key)?;
        let io_err = |op, e| StorageError::Io {
            backend: self.describe(),
            op,
            key: key.to_string(),
            source: e,
        };
        let len = std::fs::metadata(file)
            .map_err(|e| io_err("stat local file for", e))?
            .len();
        let single = len <= PART_SIZE as u64 || self.no_multipart.load(Ordering::Relaxed);
        let r = if single {
            self.upload_whole(key, file)
        } else {
            match self.upload_parts(key, file) {
                Err(StorageError::Remote {
                    kind: RemoteErrorKind::Unsupported,
                    ..
                }) => {
                    self.no_multipart.store(true, Ordering::Relaxed);
                    self.upload_whole(key, file)
                }
                r => r,
            }
        };
        r?;
        std::fs::remove_file(file).map_err(|e| io_err("remove uploaded local file for", e))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let r = match self.pinned(key)? {
            Some(v) => self.run(self.op.read_with(key).version(&v)),
            None => self.run(self.op.read(key)),
        };
        r.map(|b| b.to_vec()).map_err(|e| self.err("read", key, e))
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        if buf.is_empty() {
            return Ok(());
        }
        let Some(end) = offset.checked_add(buf.len() as u64) else {
            return Err(StorageError::ShortRead {
                backend: self.describe(),
                key: key.to_string(),
                offset,
                len: buf.len(),
                size: u64::MAX,
            });
        };
        let short = |size| StorageError::ShortRead {
            backend: self.describe(),
            key: key.to_string(),
            offset,
            len: buf.len(),
            size,
        };
        let pin = self.pinned(key)?;
        let read = match &pin {
            Some(v) => self.run(self.op.read_with(key).range(offset..end).version(v)),
            None => self.run(self.op.read_with(key).range(offset..end)),
        };
        match read {
            Ok(data) if data.len() == buf.len() => {
                let mut at = 0;
                for part in data {
                    buf[at..at + part.len()].copy_from_slice(&part);
                    at += part.len();
                }
                Ok(())
            }
            Ok(data) if data.len() > buf.len() => Err(self.reporter.remote(
                "ranged read",
                key,
                RemoteErrorKind::Unsupported,
                &format!(
                    "asked for {} bytes at {offset}, got {}: the server ignores Range requests",
                    buf.len(),
                    data.len()
                ),
            )),
            Ok(data) => Err(short(offset + data.len() as u64)),
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => {
                Err(short(self.size(key)?.unwrap_or(0)))
            }
            Err(e) => Err(self.err("read", key, e)),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        match self.stat_pinned(key) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat", key, e)),
        }
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        validate_key(key)?;
        match self.stat_pinned(key) {
            Ok(m) => Ok(Some(
                m.last_modified()
                    .map(SystemTime::from)
                    .unwrap_or_else(SystemTime::now),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat", key, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let dir = listing_dir(prefix);
        let entries = self.run(self.op.list_with(dir).recursive(true));
        let entries = match entries {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.err("list", prefix, e)),
        };
        let mut keys: Vec<String> = entries
            .into_iter()
            .filter(|e| !e.path().ends_with('/'))
            .map(|e| e.path().trim_start_matches('/').to_string())
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn list_meta(&self, prefix: &str) -> Result<Vec<crate::ListedKey>, StorageError> {
        let dir = listing_dir(prefix);
        let entries = match self.run(self.op.list_with(dir).recursive(true)) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.err("list", prefix, e)),
        };
        let mut out: Vec<crate::ListedKey> = Vec::new();
        for e in entries {
            if e.path().ends_with('/') {
                continue;
            }
            let key = e.path().trim_start_matches('/').to_string();
            if !key.starts_with(prefix) {
                continue;
            }
            let m = e.metadata();
            let listed = match m.last_modified() {
                Some(t) => Some(crate::ListedKey {
                    key,
                    size: m.content_length(),
                    modified: SystemTime::from(t),
                }),
                // A listing without times (a service that leaves them
                // out): ask for this key alone.
                None => match (self.size(&key)?, self.modified(&key)?) {
                    (Some(size), Some(modified)) => Some(crate::ListedKey {
                        key,
                        size,
                        modified,
                    }),
                    _ => None,
                },
            };
            out.extend(listed);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        match self.run(self.op.delete(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError> {
        validate_key(key)?;
        let current = self.read_versioned(key)?;
        let actual = current.as_ref().map(|(v, _)| v.as_slice());
        if actual != expected {
            return Ok(CasOutcome::Conflict {
                actual: actual.map(<[u8]>::to_vec),
            });
        }
        let token = current.map(|(_, t)| t);
        if self.conditional && matches!(token, Some(Token::None)) {
            return Err(self.reporter.remote(
                "compare-and-swap",
                key,
                RemoteErrorKind::Unsupported,
                "the store returned no ETag or generation for the key, so it cannot be replaced atomically",
            ));
        }
        let done = match (new, &token) {
            (Some(data), t) => self.write_if(key, data, t.as_ref())?,
            (None, Some(t)) => self.delete_if(key, t)?,
            (None, None) => true,
        };
        // Refused. (A retried request whose first attempt landed is refused
        // by its own effect; the caller sees the value it wanted as the
        // conflicting one. Deciding that this was "our" write is the
        // caller's business: here it could also be another client's equal
        // value, and a counter would lose an increment.)
        if done {
            Ok(CasOutcome::Swapped)
        } else {
            self.conflict(key)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every message that enters an error goes through [`super::Reporter`]:
    /// no other code in this file builds a `Remote` error (patterns that
    /// match one, with `..`, are fine).
    #[test]
    fn remote_errors_are_built_in_one_place() {
        let src = include_str!("object_store_backend.rs");
        let src = &src[..src.rfind("#[cfg(test)]").unwrap()];
        let needle = ["Remote", " {"].concat();
        let mut built = 0;
        for (at, _) in src.match_indices(&needle) {
            let body = &src[at..];
            let body = &body[..body.find('}').unwrap()];
            if !body.contains("..") {
                built += 1;
            }
        }
        assert_eq!(
            built, 1,
            "StorageError::Remote built outside Reporter::remote"
        );
        let reporter = &src[src.find("impl Reporter").unwrap()..];
        let reporter = &reporter[..reporter.find("\n}\n").unwrap()];
        assert!(reporter.contains(&needle));
        assert!(reporter.contains("message: shorten(&self.secrets.redact(message), self.cut)"));
    }

    #[test]
    fn reporter_redacts_before_cutting() {
        use super::*;
        let spec = ObjectStoreSpec {
            cloud: Cloud::Azure,
            bucket: "media".into(),
            prefix: "film".into(),
            endpoint: Some("http://user:hunter2hunter2@127.0.0.1:1".into()),
            region: None,
            account: None,
            bucket_id: None,
        };
        let env: CloudEnv = [(
            "AZURE_STORAGE_SAS_TOKEN".to_string(),
            "sv=2022-11-02&sig=SUPERSECRETSIG".to_string(),
        )]
        .into();
        let r = Reporter::new(&spec, &env);
        // The bare secret straddles the cut at 400 characters.
        let raw = format!(
            "{} SUPERSECRETSIG, url: http://127.0.0.1:1/media?sv=2022-11-02&sig=SUPERSECRETSIG\nmore",
            "x".repeat(390)
        );
        let e = r.remote("read", "packs/a", RemoteErrorKind::Other, &raw);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("SUPERSEC"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("azure container \"media\""), "{shown}");
        assert!(shown.contains("packs/a"), "{shown}");
        let StorageError::Remote { message, .. } = e else {
            panic!("{e}")
        };
        assert!(message.len() <= 403 && !message.contains('\n'), "{message}");
    }
}
