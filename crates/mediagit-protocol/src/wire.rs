//! Request and answer types of protocol version 1 (docs/PROTOCOL.md).
use serde::{Deserialize, Serialize};

/// The path every request of version 1 starts with.
pub const API: &str = "/v1";
/// Header a client sends its token in (as `Authorization: Bearer TOKEN`).
pub const AUTHORIZATION: &str = "authorization";
/// Response header: the object's time of storing, in milliseconds since
/// the Unix epoch (HTTP dates have whole seconds only).
pub const MODIFIED_MS: &str = "x-mediagit-modified-ms";
/// Response header: the protocol version the server speaks.
pub const PROTOCOL_VERSION: &str = "x-mediagit-protocol";
pub const VERSION: u32 = 1;

/// Most bytes a compare-and-swap value may have (a ref value: a commit id
/// or, encrypted, a sealed one; a lock record).
pub const MAX_CAS_VALUE: usize = 64 * 1024;
/// Most bytes of a request body that is JSON (compare-and-swap, lock).
pub const MAX_JSON_BODY: usize = 256 * 1024;
/// Longest repository name.
pub const MAX_REPO_NAME: usize = 200;
/// Most `/`-separated parts of a repository name.
pub const MAX_REPO_DEPTH: usize = 8;
/// Most keys one listing answer may hold (a client refuses more).
pub const MAX_LIST_KEYS: usize = 10_000_000;

/// Names a repository uses for its own keys and files: no part of a
/// repository name may be one of them, so that no repository's keys can
/// be another repository's.
pub const RESERVED_PARTS: &[&str] = &[
    "refs",
    "packs",
    "keys",
    "locks",
    "freshen",
    "damaged-objects",
    "damaged",
    "HEAD",
    "config.toml",
    "check",
    "logs",
    "tmp",
    "cache",
    "index",
    "lock",
    "cas.lock",
    "last-key",
    "BASE",
    "add-journal",
];

/// `url` without a user name or password (for messages).
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, String::new()));
            let host = host.rsplit('@').next().unwrap_or(host);
            let cut = if rest.split_once('/').map_or(rest, |x| x.0).contains('@') {
                "***@"
            } else {
                ""
            };
            format!("{scheme}://{cut}{host}{path}")
        }
        None => url.to_string(),
    }
}

/// What a repository name may be: 1 to 8 `/`-separated parts of ASCII
/// letters, digits, `.`, `_` and `-`, none starting with `.` or `-`
/// (so no `..`, no hidden directories, no options), at most 200 bytes in
/// all. Returns why not.
pub fn check_repo_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_REPO_NAME {
        return Err("longer than 200 bytes");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > MAX_REPO_DEPTH {
        return Err("more than 8 parts");
    }
    for p in parts {
        // Without regard to case: a server's directory may be on a
        // case-insensitive file system.
        if RESERVED_PARTS.iter().any(|r| r.eq_ignore_ascii_case(p)) {
            // A repository at `film/refs` would lie among the keys of a
            // repository at `film` (and the other way round).
            return Err(
                "a part is a name a repository uses inside itself (refs, packs, keys, locks, ...)",
            );
        }
        if p.is_empty() {
            return Err("an empty part (a leading, trailing or doubled '/')");
        }
        if p.starts_with('.') || p.starts_with('-') {
            return Err("a part starts with '.' or '-'");
        }
        if !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return Err("only ASCII letters, digits, '.', '_', '-' and '/' are allowed");
        }
    }
    Ok(())
}

/// A server URL split into the server's base (`http://host:port`) and the
/// repository name (the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `http://host:port` or `https://host:port`, no trailing slash.
    pub base: String,
    pub repo: String,
}

impl ServerUrl {
    /// Parses `http(s)://HOST[:PORT]/NAME`. No user name, password, query
    /// or fragment (a token in a URL would end up in config files and
    /// logs): the token comes from the environment.
    pub fn parse(url: &str) -> Result<ServerUrl, String> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            ("http", r)
        } else if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else {
            return Err("a server URL starts with http:// or https://".into());
        };
        if rest.contains(['?', '#']) {
            return Err("a server URL has no query or fragment".into());
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err("no host".into());
        }
        if host.contains('@') {
            return Err(
                "no user or password in a server URL: the token comes from MEDIAGIT_TOKEN or the remote's token_env".into(),
            );
        }
        let repo = path.trim_end_matches('/');
        check_repo_name(repo).map_err(|why| format!("repository name {repo:?}: {why}"))?;
        Ok(ServerUrl {
            base: format!("{scheme}://{host}"),
            repo: repo.to_string(),
        })
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.base, self.repo)
    }
}

/// Percent-encodes a query value: everything but unreserved characters.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rights, in order: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Nothing (an auth file may say so, to exclude a repository).
    None,
    /// Clone, fetch, list refs and locks.
    Read,
    /// Push (new objects, ref updates by compare-and-swap), lock, unlock
    /// one's own locks.
    Write,
    /// Also: create repositories, write settings and keys, delete any key,
    /// unlock others' locks.
    Admin,
}

impl Right {
    pub fn name(self) -> &'static str {
        match self {
            Right::None => "none",
            Right::Read => "read",
            Right::Write => "write",
            Right::Admin => "admin",
        }
    }
}

/// `GET /v1/info?repo=NAME`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoInfo {
    pub repo: String,
    /// Whether a repository is there (its `config.toml` is stored).
    pub exists: bool,
    /// The user the token names (`anonymous` without an auth file).
    pub user: String,
    pub right: Right,
    /// Whether a push may create the repository (the server runs with
    /// `--create-on-push` and the user may write it).
    pub may_create: bool,
}

/// One key of `GET /v1/list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// `POST /v1/cas`: values hex-encoded; `None` = absent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CasRequest {
    pub expected: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CasAnswer {
    pub swapped: bool,
    /// On a conflict: what the key holds (hex), `None` if absent.
    pub actual: Option<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable name: `unauthenticated`, `forbidden`, `no-repository`,
    /// `not-found`, `bad-request`, `too-large`, `refused`, `verify-failed`,
    /// `locked`, `timeout`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
    /// For `forbidden`: the right the request needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Right>,
}

/// One file lock (`GET /v1/locks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockRecord {
    pub path: String,
    pub owner: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
}

/// `POST /v1/locks?repo=R`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockRequest {
    /// The file, relative to the working tree's root, `/`-separated.
    pub path: String,
    /// Used as the owner's name only by a server without users (no auth
    /// file); otherwise the owner is the token's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Where lock records are stored in a repository.
pub const LOCKS_PREFIX: &str = "locks/files/";

/// Longest path a lock may name.
pub const MAX_LOCK_PATH: usize = 4096;

/// The storage key of the lock of `path` (`locks/files/<hex SHA-256 of
/// the path>`: any path, one flat key), after checking that `path` is a
/// working-tree path: relative, `/`-separated, no empty, `.` or `..` part,
/// no NUL or other control character, at most 4096 bytes.
pub fn lock_key(path: &str) -> Result<String, String> {
    if path.is_empty() || path.len() > MAX_LOCK_PATH {
        return Err(format!("a locked path is 1 to {MAX_LOCK_PATH} bytes"));
    }
    if path.starts_with('/') || path.chars().any(char::is_control) || path.contains('\\') {
        return Err(format!("{path:?} is not a path inside the working tree"));
    }
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!("{path:?}: empty, '.' or '..' part"));
    }
    use sha2::Digest;
    Ok(format!(
        "{LOCKS_PREFIX}{}",
        hex::encode(sha2::Sha256::digest(path.as_bytes()))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        for ok in ["film", "team/film", "a.b_c-d/x9", "a/b/c/d/e/f/g/h"] {
            assert_eq!(check_repo_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "a/../b",
            "/abs",
            "a//b",
            "a/",
            ".hidden",
            "-opt",
            "a b",
            "a\\b",
            "ü",
            "a/b/c/d/e/f/g/h/i",
            "%2e%2e",
            "film/refs",
            "film/REFS",
            "film/Config.toml",
            "film/locks",
            "a/packs/b",
        ] {
            assert!(check_repo_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_repo_name(&"a".repeat(201)).is_err());
    }

    #[test]
    fn urls() {
        let u = ServerUrl::parse("http://127.0.0.1:8420/team/film/").unwrap();
        assert_eq!(u.base, "http://127.0.0.1:8420");
        assert_eq!(u.repo, "team/film");
        assert_eq!(u.url(), "http://127.0.0.1:8420/team/film");
        assert!(ServerUrl::parse("https://u:p@h/x").is_err());
        assert!(ServerUrl::parse("http://h/../x").is_err());
        assert!(ServerUrl::parse("http://h/").is_err());
        assert!(ServerUrl::parse("http://h/x?t=1").is_err());
        assert!(ServerUrl::parse("ftp://h/x").is_err());
        assert_eq!(redact_url("https://ann:tok@h:1/x"), "https://***@h:1/x");
        assert_eq!(redact_url("http://h/x"), "http://h/x");
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode_query("refs/heads/a b&c=d"),
            "refs/heads/a%20b%26c%3Dd"
        );
        assert_eq!(encode_query("é"), "%C3%A9");
    }
}
