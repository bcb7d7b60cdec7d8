//! MediaGit's wire protocol, version 1 (docs/PROTOCOL.md).
//!
//! Why a protocol this small: everything that makes push, fetch and clone
//! correct (which objects are missing, verifying each one, write order,
//! compare-and-swap of refs) is already written once, against the
//! `Storage` trait, in `mediagit-repo`. A MediaGit server therefore serves
//! each repository as *storage*: get, ranged read, list, put and
//! compare-and-swap of keys, with authentication, rights per repository,
//! limits and verification of what a client uploads added on the server
//! side. A client reaches it through [`HttpBackend`], which is a `Storage`
//! like the local disk or a bucket, so a remote behind a server behaves
//! exactly like a remote in a bucket, and an encrypted repository's server
//! only ever holds ciphertext (it is given the same sealed keys a bucket
//! would hold).
//!
//! This crate holds the types both sides share ([`wire`]) and the client
//! ([`http_backend`]). It never prints and never reads the environment:
//! the caller passes the token and the extra CA certificate.
pub mod http_backend;
pub mod wire;

pub use http_backend::{HttpBackend, HttpOptions};
