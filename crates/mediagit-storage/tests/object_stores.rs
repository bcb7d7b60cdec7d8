//! The conformance suite against real local servers: moto (S3), Azurite
//! (Azure Blob) and gcp-storage-emulator (GCS), started by
//! `scripts/test-servers.sh`, which exports `MEDIAGIT_TEST_S3`,
//! `MEDIAGIT_TEST_AZURE` and `MEDIAGIT_TEST_GCS` (endpoints; each server has
//! a bucket or container named `mediagit-test`) and the credentials. Without
//! them these tests say so and pass, unless `MEDIAGIT_REQUIRE_SERVERS=1`
//! (set by `scripts/test.sh`) makes a missing server a failure.
use std::time::{Duration, Instant};

use mediagit_storage::{
    conformance, Cloud, CloudEnv, ObjectStoreBackend, ObjectStoreSpec, RemoteErrorKind, Storage,
    StorageError,
};

fn env() -> CloudEnv {
    mediagit_storage::object_store_backend::CLOUD_ENV_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("MEDIAGIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "{var} is not set but MEDIAGIT_REQUIRE_SERVERS=1: start the servers with scripts/test-servers.sh"
            );
            eprintln!("{var} not set: skipping (run through scripts/test.sh)");
            None
        }
    }
}

fn unique(name: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("conformance/{name}-{}-{n}", std::process::id())
}

fn spec(cloud: Cloud, endpoint: &str, bucket: &str, prefix: String) -> ObjectStoreSpec {
    ObjectStoreSpec {
        cloud,
        bucket: bucket.into(),
        prefix,
        endpoint: Some(endpoint.into()),
        region: None,
        account: None,
        bucket_id: None,
    }
}

fn conformance_on(cloud: Cloud, var: &str, expect_conditional: Option<bool>) {
    let Some(endpoint) = server(var) else { return };
    let s = spec(cloud, &endpoint, "mediagit-test", unique(cloud.name()));
    let a = ObjectStoreBackend::connect(&s, &env()).unwrap();
    let conditional = a.probe_conditional_writes().unwrap();
    if let Some(want) = expect_conditional {
        assert_eq!(
            conditional,
            want,
            "{}: conditional writes probe",
            a.describe()
        );
    }
    let a = a.with_conditional_writes(conditional);
    let b = ObjectStoreBackend::connect(&s, &env())
        .unwrap()
        .with_conditional_writes(conditional);
    conformance::run_all_clients(&a, &b, conditional);
    // Nothing the suite wrote may stay behind... except what it meant to keep.
    assert!(a.list("locks/").unwrap().is_empty(), "probe keys removed");
}

#[test]
fn s3_conformance() {
    conformance_on(Cloud::S3, "MEDIAGIT_TEST_S3", Some(true));
}

#[test]
fn azure_conformance() {
    conformance_on(Cloud::Azure, "MEDIAGIT_TEST_AZURE", Some(true));
}

/// gcp-storage-emulator ignores `ifGenerationMatch` (real GCS enforces it), so
/// the probe must notice and the race is skipped there; see docs/BACKENDS.md.
#[test]
fn gcs_conformance() {
    conformance_on(Cloud::Gcs, "MEDIAGIT_TEST_GCS", Some(false));
}

fn remote_kind(e: &StorageError) -> Option<RemoteErrorKind> {
    match e {
        StorageError::Remote { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[test]
fn missing_bucket_is_named() {
    let Some(endpoint) = server("MEDIAGIT_TEST_S3") else {
        return;
    };
    let s = spec(Cloud::S3, &endpoint, "no-such-bucket-here", String::new());
    let err = ObjectStoreBackend::connect(&s, &env())
        .err()
        .expect("missing bucket refused");
    assert_eq!(
        remote_kind(&err),
        Some(RemoteErrorKind::NoSuchBucket),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("no-such-bucket-here"), "{msg}");
    assert!(msg.contains("s3"), "{msg}");
}

#[test]
fn unreachable_endpoint_fails_within_seconds() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for cloud in [Cloud::S3, Cloud::Gcs] {
        let s = spec(
            cloud,
            &format!("http://127.0.0.1:{port}"),
            "media",
            "p".into(),
        );
        let mut e = env();
        e.insert("AWS_ACCESS_KEY_ID".into(), "k".into());
        e.insert("AWS_SECRET_ACCESS_KEY".into(), "s".into());
        let t = Instant::now();
        let err = ObjectStoreBackend::connect(&s, &e)
            .err()
            .expect("unreachable endpoint refused");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{cloud:?} took {:?}",
            t.elapsed()
        );
        assert_eq!(
            remote_kind(&err),
            Some(RemoteErrorKind::Unavailable),
            "{err}"
        );
        assert!(err.to_string().contains("media"), "{err}");
    }
}

#[test]
fn wrong_credentials_are_refused() {
    let Some(endpoint) = server("MEDIAGIT_TEST_AZURE") else {
        return;
    };
    let s = spec(Cloud::Azure, &endpoint, "mediagit-test", "p".into());
    let mut e = env();
    // Same length and alphabet as the real key, different bytes.
    e.insert(
        "AZURE_STORAGE_KEY".into(),
        "Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFy".into(),
    );
    let err = ObjectStoreBackend::connect(&s, &e)
        .err()
        .expect("wrong key refused");
    assert_eq!(
        remote_kind(&err),
        Some(RemoteErrorKind::PermissionDenied),
        "{err}"
    );
    assert!(err.to_string().contains("mediagit-test"), "{err}");
}

/// Native B2 has no local server: what can be checked without one is.
#[test]
fn b2_configuration_errors_are_named() {
    let mut s = spec(Cloud::B2, "unused", "media", "film".into());
    s.endpoint = None;
    let err = ObjectStoreBackend::connect(&s, &CloudEnv::new())
        .err()
        .expect("no B2 keys refused");
    assert_eq!(remote_kind(&err), Some(RemoteErrorKind::Config), "{err}");
    assert!(err.to_string().contains("B2_APPLICATION_KEY_ID"), "{err}");
    assert!(err.to_string().contains("b2 bucket \"media\""), "{err}");
    let mut e = CloudEnv::new();
    e.insert("B2_APPLICATION_KEY_ID".into(), "id".into());
    e.insert("B2_APPLICATION_KEY".into(), "key".into());
    let err = ObjectStoreBackend::connect(&s, &e)
        .err()
        .expect("no bucket id refused");
    assert!(err.to_string().contains("bucket_id"), "{err}");
}

/// A proxy in front of the S3 server that answers every other new
/// connection's first request with 503 and closes it, and pipes the others
/// through: transient server errors must be retried, not reported.
fn flaky_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let target = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut client) = conn else { continue };
            if i % 2 == 0 {
                // Read the request head, answer 503, close.
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && client.read(&mut b).unwrap_or(0) == 1 {
                    head.push(b[0]);
                }
                let _ = client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                count.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c1, mut s1) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, refused)
}

#[test]
fn transient_errors_are_retried() {
    let Some(endpoint) = server("MEDIAGIT_TEST_S3") else {
        return;
    };
    let (proxy, refused) = flaky_proxy(&endpoint);
    let s = spec(Cloud::S3, &proxy, "mediagit-test", unique("flaky"));
    let b = ObjectStoreBackend::connect(&s, &env()).expect("connect through the flaky proxy");
    let big: Vec<u8> = (0..(20u32 << 20)).map(|i| ((i * 31) >> 7) as u8).collect();
    for i in 0..5 {
        let k = format!("x/{i}");
        b.put(&k, &big[..(i + 1) << 20]).unwrap();
        assert_eq!(b.get(&k).unwrap(), &big[..(i + 1) << 20]);
    }
    b.put("x/big", &big).unwrap();
    assert!(b.get("x/big").unwrap() == big);
    assert_eq!(b.list("x/").unwrap().len(), 6);
    assert!(
        refused.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the proxy refused nothing: the test tested nothing"
    );
}
