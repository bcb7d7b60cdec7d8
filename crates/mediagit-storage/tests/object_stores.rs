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
