//! `mediagit serve`: repositories hosted for push, fetch and clone over
//! HTTP(S).
//!
//! Why the server is so thin: a repository is its storage keys (FORMAT.md
//! §2.1), immutable packs named by their checksum plus refs moved by
//! compare-and-swap. The server therefore exposes each repository as a
//! store ([`app`]: get, ranged get, list, put, compare-and-swap), and the
//! client ([`mediagit_protocol::HttpBackend`]) is one more `Storage`
//! under the same transfer code that copies between any two stores. What
//! the server adds is what a bucket cannot do: who may do what to which
//! repository ([`auth`], [`policy`]: writers can only add objects and move
//! refs by compare-and-swap; only admins delete or rewrite settings),
//! verification of every uploaded plaintext pack before its index makes it
//! visible, names that cannot escape the hosting root, bounded memory per
//! transfer, metrics, and TLS.
//!
//! The server keeps no state of its own: refs and locks are conditional
//! writes in the store, so several servers on one bucket serve the same
//! repositories consistently. The library never prints; it logs through
//! `tracing` and the CLI decides where logs go.
pub mod app;
pub mod auth;
pub mod hosting;
pub mod metrics;
pub mod policy;
pub mod serve;

pub use app::{app, AppState, Limits, ServerState};
pub use auth::{hash_token, Auth, AuthFileError};
pub use hosting::{Hosting, Repos};
pub use serve::{serve, tls_config, TlsError};
