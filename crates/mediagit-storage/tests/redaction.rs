//! No credential reaches an error message, on any object store backend.
//!
//! Each backend is configured with made-up secrets and pointed at 127.0.0.1:
//! once at a port nothing listens on (the error then carries OpenDAL's
//! request URL, where an Azure SAS token travels), once at a tiny server
//! that answers every request with 403 and a body echoing the request (head
//! and body: signed URLs, `Authorization` headers, OAuth form bodies). The
//! errors of connect, get, put and list must name the backend and the key,
//! and neither their `Display` nor their `Debug` may hold a secret or a
//! signature the server saw (messages are kept whole here, so that no
//! secret is hidden by the usual cut at 400 characters alone). No retries,
//! so each test takes well under a second.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mediagit_storage::{
    Cloud, CloudEnv, ConnectOptions, ObjectStoreBackend, ObjectStoreSpec, Storage, StorageError,
};

const KEY: &str = "packs/redaction-test.pack";

/// A server answering every request with `403` and the request as body.
struct EchoServer {
    url: String,
    /// Every request received, head and body.
    seen: Arc<Mutex<Vec<String>>>,
}

fn echo_server() -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                let mut need = None;
                loop {
                    if let Some(head) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        let n = *need.get_or_insert_with(|| {
                            let head = String::from_utf8_lossy(&req[..head]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            head.len() + 4 + len
                        });
                        if req.len() >= n {
                            break;
                        }
                    }
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                log.lock().unwrap().push(text.clone());
                let text = credentials_first(&text);
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    EchoServer { url, seen }
}

/// The request with its credential headers and its body (an OAuth form)
/// moved right after the request line, where a cut message still shows them.
fn credentials_first(req: &str) -> String {
    let (head, body) = req.split_once("\r\n\r\n").unwrap_or((req, ""));
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let (secret, other): (Vec<&str>, Vec<&str>) = lines.partition(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("authorization:") || l.starts_with("x-amz-security-token:")
    });
    let mut out = vec![first];
    out.extend(secret);
    out.push(body);
    out.extend(other);
    out.join("\r\n")
}

/// An address nothing listens on.
fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn spec(cloud: Cloud, endpoint: Option<String>) -> ObjectStoreSpec {
    ObjectStoreSpec {
        cloud,
        bucket: "media".into(),
        prefix: "film".into(),
        endpoint,
        region: None,
        account: None,
        bucket_id: (cloud == Cloud::B2).then(|| "b2bucketid".into()),
    }
}

fn env(pairs: &[(&str, &str)]) -> CloudEnv {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn options(redirect_to: Option<&str>, check_reachable: bool) -> ConnectOptions {
    ConnectOptions {
        retries: 0,
        request_timeout: Duration::from_secs(10),
        io_timeout: Duration::from_secs(10),
        check_reachable,
        redirect_to: redirect_to.map(str::to_string),
        // Uncut, so every byte the server echoed must pass redaction.
        whole_messages: true,
        content_md5: false,
        first_versions: false,
    }
}

/// Credentials the server saw that were not configured as such: the
/// signature in an `Authorization` header and in a query string.
fn seen_credentials(seen: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for req in seen {
        for line in req.lines() {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("authorization:") {
                let v = &line[line.len() - v.len()..];
                // The scheme's credential: after the scheme word, and after
                // "account:" for Shared Key.
                let cred = v.trim().split_once(' ').map_or(v, |(_, c)| c);
                let cred = cred.trim().trim_end_matches('=');
                let cred = cred.rsplit([':', '=']).next().unwrap_or(cred);
                found.push(cred.trim().to_string());
            }
        }
        let request_line = req.lines().next().unwrap_or("");
        for pair in request_line.split(['?', '&', ' ']) {
            if let Some((k, v)) = pair.split_once('=') {
                if k.eq_ignore_ascii_case("sig") || k.eq_ignore_ascii_case("x-amz-signature") {
                    found.push(v.to_string());
                }
            }
        }
    }
    found.retain(|s| s.len() >= 8);
    found
}

/// The error names the backend (and the key) and holds no secret.
fn assert_clean(what: &str, err: &StorageError, cloud: Cloud, key: &str, secrets: &[String]) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    eprintln!("{what}: {display}");
    for s in secrets {
        assert!(!display.contains(s.as_str()), "{what}: {s:?} in {display}");
        assert!(!debug.contains(s.as_str()), "{what}: {s:?} in {debug}");
    }
    assert!(
        display.starts_with(&format!("{} ", cloud.name())),
        "{what}: backend not named: {display}"
    );
    assert!(
        display.contains("\"media\""),
        "{what}: bucket not named: {display}"
    );
    if !key.is_empty() {
        assert!(
            display.contains(&format!("{key:?}")),
            "{what}: key not named: {display}"
        );
    }
    assert!(
        matches!(err, StorageError::Remote { .. }),
        "{what}: {debug}"
    );
}

/// Connect (with its listing), then get, put and list, each failing; with
/// the endpoint in the spec, or every request redirected (B2, GCS OAuth).
fn run(cloud: Cloud, env: &CloudEnv, secrets: &[&str], redirect: bool, endpoint_userinfo: &str) {
    let mut secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    let server = echo_server();
    for (target, echo) in [(dead_endpoint(), false), (server.url.clone(), true)] {
        let endpoint = target.replacen("http://", &format!("http://{endpoint_userinfo}"), 1);
        let (spec, redirect_to) = match redirect {
            true => (spec(cloud, None), Some(target.as_str())),
            false => (spec(cloud, Some(endpoint)), None),
        };
        let label = |op: &str| {
            format!(
                "{} {op} ({})",
                cloud.name(),
                if echo { "403 echo" } else { "dead" }
            )
        };
        let err = ObjectStoreBackend::connect_with(&spec, env, &options(redirect_to, true))
            .err()
            .expect("connect fails");
        let mut errors = vec![(label("connect"), err, String::new())];
        let b = ObjectStoreBackend::connect_with(&spec, env, &options(redirect_to, false))
            .unwrap_or_else(|e| panic!("{}: {e}", label("connect unchecked")));
        // An object store says it is remote, through a cache too: packs
        // and parallelism are sized by the backend, not by a setting.
        assert!(b.is_remote());
        let cache = tempfile::tempdir().unwrap();
        let cached = mediagit_storage::CacheBackend::new(
            std::sync::Arc::new(
                ObjectStoreBackend::connect_with(&spec, env, &options(redirect_to, false)).unwrap(),
            ),
            cache.path().to_path_buf(),
            |_| true,
        );
        assert!(cached.is_remote());
        assert!(!mediagit_storage::LocalBackend::new(cache.path()).is_remote());
        errors.push((label("get"), b.get(KEY).unwrap_err(), KEY.into()));
        errors.push((label("put"), b.put(KEY, b"data").unwrap_err(), KEY.into()));
        errors.push((
            label("list"),
            b.list("packs/").unwrap_err(),
            "packs/".into(),
        ));
        if matches!(cloud, Cloud::S3) {
            // The Object Lock bucket requests, signed outside OpenDAL.
            errors.push((
                label("object lock"),
                b.object_lock().unwrap_err(),
                String::new(),
            ));
            errors.push((
                label("set object lock"),
                b.set_object_lock(mediagit_storage::LockMode::Governance, 1)
                    .unwrap_err(),
                String::new(),
            ));
        }
        if echo {
            let seen = server.seen.lock().unwrap().clone();
            assert!(!seen.is_empty(), "the server saw no request");
            secrets.extend(seen_credentials(&seen));
        }
        for (what, err, key) in &errors {
            assert_clean(what, err, cloud, key, &secrets);
        }
    }
}

#[test]
fn s3_errors_hold_no_secrets() {
    let key = "SUPERSECRETKEY0123456789abcdefghijklmnopq";
    let token = "SUPERSECRETSESSIONTOKEN0123456789+/=";
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDREDACTIONTEST"),
        ("AWS_SECRET_ACCESS_KEY", key),
        ("AWS_SESSION_TOKEN", token),
    ]);
    run(Cloud::S3, &e, &[key, token, "SUPERSECRET"], false, "");
}

#[test]
fn azure_sas_errors_hold_no_secrets() {
    let e = env(&[(
        "AZURE_STORAGE_SAS_TOKEN",
        "sv=2022-11-02&sig=SUPERSECRETSIG",
    )]);
    run(Cloud::Azure, &e, &["SUPERSECRETSIG"], false, "");
}

#[test]
fn azure_shared_key_errors_hold_no_secrets() {
    // base64 of "SUPERSECRETACCOUNTKEYSUPERSECRETACCOUNTKEY".
    let key = "U1VQRVJTRUNSRVRBQ0NPVU5US0VZU1VQRVJTRUNSRVRBQ0NPVU5US0VZ";
    let e = env(&[
        ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
        ("AZURE_STORAGE_KEY", key),
    ]);
    run(Cloud::Azure, &e, &[key], false, "");
}

#[test]
fn gcs_oauth_errors_hold_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("adc.json");
    std::fs::write(
        &creds,
        r#"{"type": "authorized_user", "client_id": "1234.apps.googleusercontent.com", "client_secret": "SUPERSECRETCLIENTSECRET", "refresh_token": "1//SUPERSECRETREFRESHTOKEN"}"#,
    )
    .unwrap();
    let e = env(&[("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())]);
    // The token request goes to Google's fixed address: redirect it.
    run(
        Cloud::Gcs,
        &e,
        &["SUPERSECRETCLIENTSECRET", "SUPERSECRETREFRESHTOKEN"],
        true,
        "",
    );
}

#[test]
fn gcs_endpoint_userinfo_is_not_shown() {
    // An emulator behind a proxy that wants a password in the URL.
    run(
        Cloud::Gcs,
        &CloudEnv::new(),
        &["SUPERSECRETPASS", "gcsuser"],
        false,
        "gcsuser:SUPERSECRETPASS@",
    );
}

#[test]
fn b2_errors_hold_no_secrets() {
    let key = "K001SUPERSECRETAPPLICATIONKEY";
    let e = env(&[
        ("B2_APPLICATION_KEY_ID", "0012345abcdef0000000001"),
        ("B2_APPLICATION_KEY", key),
    ]);
    // The native API's address is fixed: redirect every request.
    run(Cloud::B2, &e, &[key], true, "");
}

/// A server's async handler may use the synchronous `Storage` trait from
/// inside its own Tokio runtime: requests fail or succeed normally, and
/// neither a request nor dropping the backend panics ("cannot start a
/// runtime from within a runtime").
#[test]
fn usable_and_droppable_inside_an_async_runtime() {
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDRUNTIMETEST"),
        ("AWS_SECRET_ACCESS_KEY", "runtime-test-secret-0123456789"),
    ]);
    let outer = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    outer.block_on(async {
        let b = ObjectStoreBackend::connect_with(
            &spec(Cloud::S3, Some(dead_endpoint())),
            &e,
            &options(None, false),
        )
        .unwrap();
        let err = b.get(KEY).unwrap_err();
        assert!(matches!(err, StorageError::Remote { .. }), "{err:?}");
        drop(b);
    });
}
