//! The server over a real socket, with the real client: the storage
//! conformance suite through HTTP, and TLS.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mediagit_protocol::{HttpBackend, HttpOptions};
use mediagit_server::{app, Auth, Hosting, Limits, Repos, ServerState};
use mediagit_storage::{CasOutcome, ListedKey, Storage, StorageError};

/// A running server; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(root: &Path, auth: Auth, tls: Option<(std::path::PathBuf, std::path::PathBuf)>) -> Server {
    start_with(root, auth, tls, Limits::default())
}

fn start_with(
    root: &Path,
    auth: Auth,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    limits: Limits,
) -> Server {
    let repos = Repos::new(
        Hosting::Root(root.to_path_buf()),
        root.join(".mediagit-serve-tmp"),
    );
    let state = Arc::new(ServerState::new(repos, auth, true, limits));
    let tls = tls.map(|(c, k)| mediagit_server::tls_config(&c, &k).unwrap());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            mediagit_server::serve(
                l,
                app(state),
                tls,
                async {
                    let _ = stop_rx.await;
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    Server {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// The conformance suite writes keys of every shape; a server serves
/// store keys only. This maps each key under `refs/` (an admin may put
/// anything there), so the suite tests the transport itself.
struct UnderRefs(HttpBackend);

fn k(key: &str) -> String {
    format!("refs/{key}")
}

impl Storage for UnderRefs {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.put(&k(key), data)
    }
    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.put_file(&k(key), file)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.get(&k(key))
    }
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.read_at(&k(key), offset, buf)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.size(&k(key))
    }
    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.modified(&k(key))
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.list_meta(prefix)?.into_iter().map(|l| l.key).collect())
    }
    fn list_meta(&self, prefix: &str) -> Result<Vec<ListedKey>, StorageError> {
        Ok(self
            .0
            .list_meta(&k(prefix))?
            .into_iter()
            .map(|mut l| {
                l.key = l.key["refs/".len()..].to_string();
                l
            })
            .collect())
    }
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.delete(&k(key))
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError> {
        mediagit_storage::validate_key(key)?;
        self.0.compare_and_swap(&k(key), expected, new)
    }
}

fn make_repo(root: &Path, name: &str) {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.toml"), "[format]\nversion = 2\n").unwrap();
}

#[test]
fn the_storage_conformance_suite_passes_over_http() {
    let dir = tempfile::tempdir().unwrap();
    make_repo(dir.path(), "team/film");
    let server = start(dir.path(), Auth::open(), None);
    let url = format!("http://{}/team/film", server.addr);
    let a = UnderRefs(HttpBackend::new(&url, &HttpOptions::default()).unwrap());
    let b = UnderRefs(HttpBackend::new(&url, &HttpOptions::default()).unwrap());
    mediagit_storage::conformance::run_all_clients(&a, &b, true);
}

#[test]
fn tls_with_a_private_ca_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    make_repo(dir.path(), "film");
    std::fs::write(dir.path().join("film/HEAD"), "ref: refs/heads/main\n").unwrap();
    let ca =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    std::fs::write(&cert, ca.cert.pem()).unwrap();
    std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
    let auth = Auth::parse(&format!(
        "[[users]]\nname='alice'\ntoken_sha256='{}'\nrepos={{'film'='read'}}\n",
        mediagit_server::hash_token("tok-alice")
    ))
    .unwrap();
    let server = start(dir.path(), auth, Some((cert.clone(), key)));
    let url = format!("https://localhost:{}/film", server.addr.port());
    // Not trusted without the CA: a clear error that says what to do.
    let untrusted = HttpBackend::new(
        &url,
        &HttpOptions {
            attempts: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let e = untrusted.get("HEAD").unwrap_err().to_string();
    assert!(e.contains("MEDIAGIT_CA_FILE"), "{e}");
    let opts = HttpOptions {
        ca_file: Some(cert.clone()),
        attempts: Some(1),
        ..Default::default()
    };
    // Trusted, but no token: 401, naming where the token comes from.
    let anon = HttpBackend::new(
        &url,
        &HttpOptions {
            token_source: Some("MEDIAGIT_TOKEN".into()),
            ..opts.clone()
        },
    )
    .unwrap();
    let e = anon.get("HEAD").unwrap_err();
    assert!(
        matches!(
            e,
            StorageError::Remote {
                kind: mediagit_storage::RemoteErrorKind::PermissionDenied,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("MEDIAGIT_TOKEN is not set"), "{e}");
    let alice = HttpBackend::new(
        &url,
        &HttpOptions {
            token: Some("tok-alice".into()),
            token_source: Some("MEDIAGIT_TOKEN".into()),
            ..opts
        },
    )
    .unwrap();
    assert_eq!(alice.get("HEAD").unwrap(), b"ref: refs/heads/main\n");
    let info = alice.info().unwrap();
    assert_eq!(info.user, "alice");
    assert!(info.exists);
    // Reading is all alice may do.
    let e = alice
        .compare_and_swap("refs/heads/main", None, Some(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs the write right") && e.contains("user alice has only the read right"),
        "{e}"
    );
    assert!(!format!("{alice:?}").contains("tok-alice"));
    assert!(!e.contains("tok-alice"));
}

#[test]
fn stalled_downloads_are_bounded_per_client_and_others_still_get_answers() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    make_repo(dir.path(), "film");
    std::fs::create_dir_all(dir.path().join("film/refs/heads")).unwrap();
    let big: Vec<u8> = (0..(8u32 << 20)).map(|i| (i * 13) as u8).collect();
    std::fs::write(dir.path().join("film/refs/heads/big"), &big).unwrap();
    let limits = Limits {
        max_transfers_per_client: 2,
        idle: Duration::from_secs(5),
        ..Limits::default()
    };
    let server = start_with(dir.path(), Auth::open(), None, limits);
    let get = |s: &mut std::net::TcpStream| {
        write!(
            s,
            "GET /v1/object?repo=film&key=refs/heads/big HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
    };
    // Two downloads that are never read hold this client's two slots ...
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        get(&mut s);
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    // ... so a third is told the server is busy (clients retry) ...
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    get(&mut s);
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 503", "{}", String::from_utf8_lossy(&head));
    // ... while requests that move no object bytes are answered.
    let url = format!("http://{}/film", server.addr);
    let c = HttpBackend::new(
        &url,
        &HttpOptions {
            attempts: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(c.info().unwrap().exists);
    // When the stalled clients go, the slots come back.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.get("refs/heads/big").unwrap().len(), big.len());
}
