//! Who a request comes from and what it may do: the auth file.
//!
//! ```toml
//! [[users]]
//! name = "alice"
//! token_sha256 = "<hex SHA-256 of the token>"
//! repos = { "team/*" = "write", "team/archive" = "read", "*" = "none" }
//!
//! [anonymous]                 # optional: requests without a token
//! repos = { "public/*" = "read" }
//! ```
//!
//! Tokens are never stored, only their SHA-256 (a token is a long random
//! string, so a plain hash is enough: there is nothing to brute-force).
//! Of the patterns that match a repository name, the longest wins (so
//! `team/archive` overrides `team/*` whatever the order in the file).
use std::collections::BTreeMap;
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};
use mediagit_protocol::wire::Right;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Largest auth file read.
const MAX_AUTH_FILE: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("auth file {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    token_sha256: String,
    #[serde(default)]
    repos: BTreeMap<String, Right>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAnonymous {
    #[serde(default)]
    repos: BTreeMap<String, Right>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: Vec<FileUser>,
    anonymous: Option<FileAnonymous>,
}

/// Rights by repository pattern.
#[derive(Debug, Clone, Default)]
struct Grants(Vec<(String, GlobMatcher, Right)>);

impl Grants {
    fn new(
        repos: BTreeMap<String, Right>,
        bad: &dyn Fn(String) -> AuthFileError,
    ) -> Result<Grants, AuthFileError> {
        let mut out = Vec::new();
        for (pattern, right) in repos {
            let g = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| bad(format!("pattern {pattern:?}: {e}")))?;
            out.push((pattern, g.compile_matcher(), right));
        }
        // Longest first: the first match is the most specific.
        out.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Ok(Grants(out))
    }

    fn right(&self, repo: &str) -> Right {
        self.0
            .iter()
            .find(|(_, g, _)| g.is_match(repo))
            .map(|(_, _, r)| *r)
            .unwrap_or(Right::None)
    }
}

#[derive(Debug, Clone)]
struct User {
    name: String,
    token_sha256: [u8; 32],
    grants: Grants,
}

/// The users a server knows, or nobody (no auth file: every request is
/// `anonymous` with every right; the server then listens on loopback only
/// unless told `--insecure`).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    users: Option<Vec<User>>,
    anonymous: Grants,
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User(String),
    /// A token was sent that no user has.
    BadToken,
}

impl Identity {
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous | Identity::BadToken => "anonymous",
            Identity::User(n) => n,
        }
    }
}

/// Hex SHA-256 of a token, as the auth file holds it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Auth {
    /// No auth file: everyone may do everything.
    pub fn open() -> Auth {
        Auth::default()
    }

    pub fn is_open(&self) -> bool {
        self.users.is_none()
    }

    pub fn load(path: &Path) -> Result<Auth, AuthFileError> {
        let bad = |message: String| AuthFileError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_AUTH_FILE {
            return Err(bad(format!(
                "{} bytes; at most {MAX_AUTH_FILE}",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Auth::parse(&text).map_err(bad)
    }

    pub fn parse(text: &str) -> Result<Auth, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut users = Vec::new();
        let mut seen_names = std::collections::HashSet::new();
        let mut seen_tokens = std::collections::HashSet::new();
        for u in f.users {
            if u.name.is_empty()
                || u.name == "anonymous"
                || u.name.len() > 200
                || u.name.chars().any(char::is_control)
            {
                return Err(format!("user name {:?} is not allowed", u.name));
            }
            if !seen_names.insert(u.name.clone()) {
                return Err(format!("user {:?} is listed twice", u.name));
            }
            let mut h = [0u8; 32];
            hex::decode_to_slice(u.token_sha256.trim(), &mut h).map_err(|_| {
                format!(
                    "user {:?}: token_sha256 must be 64 hex digits (the SHA-256 of the token: `printf %s TOKEN | sha256sum`)",
                    u.name
                )
            })?;
            if !seen_tokens.insert(h) {
                return Err(format!("user {:?} has the token of another user", u.name));
            }
            let name = u.name.clone();
            let grants = Grants::new(u.repos, &|m| AuthFileError::Invalid {
                path: String::new(),
                message: m,
            })
            .map_err(|e| format!("user {name:?}: {e}"))?;
            users.push(User {
                name: u.name,
                token_sha256: h,
                grants,
            });
        }
        let anonymous = match f.anonymous {
            Some(a) => Grants::new(a.repos, &|m| AuthFileError::Invalid {
                path: String::new(),
                message: m,
            })
            .map_err(|e| format!("[anonymous]: {e}"))?,
            None => Grants::default(),
        };
        Ok(Auth {
            users: Some(users),
            anonymous,
        })
    }

    /// Who a request with this bearer token (or none) is.
    pub fn identify(&self, token: Option<&str>) -> Identity {
        let Some(users) = &self.users else {
            return Identity::Anonymous;
        };
        let Some(token) = token else {
            return Identity::Anonymous;
        };
        let h: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compared in constant time over every user, so timing tells
        // nothing about which hashes are near.
        let mut found = None;
        for u in users {
            let diff = u
                .token_sha256
                .iter()
                .zip(h.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(u.name.clone());
            }
        }
        match found {
            Some(n) => Identity::User(n),
            None => Identity::BadToken,
        }
    }

    /// What `who` may do to `repo`.
    pub fn right(&self, who: &Identity, repo: &str) -> Right {
        let Some(users) = &self.users else {
            return Right::Admin;
        };
        match who {
            Identity::BadToken => Right::None,
            Identity::Anonymous => self.anonymous.right(repo),
            Identity::User(n) => users
                .iter()
                .find(|u| &u.name == n)
                .map(|u| u.grants.right(repo).max(self.anonymous.right(repo)))
                .unwrap_or(Right::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_pattern_wins_and_tokens_are_hashed() {
        let text = format!(
            r#"
[[users]]
name = "alice"
token_sha256 = "{}"
repos = {{ "team/*" = "write", "team/archive" = "read", "ops/**" = "admin" }}

[anonymous]
repos = {{ "public/*" = "read" }}
"#,
            hash_token("s3cret")
        );
        let a = Auth::parse(&text).unwrap();
        let alice = a.identify(Some("s3cret"));
        assert_eq!(alice, Identity::User("alice".into()));
        assert_eq!(a.right(&alice, "team/film"), Right::Write);
        assert_eq!(a.right(&alice, "team/archive"), Right::Read);
        assert_eq!(
            a.right(&alice, "team/a/b"),
            Right::None,
            "* does not cross /"
        );
        assert_eq!(a.right(&alice, "ops/a/b"), Right::Admin);
        assert_eq!(a.right(&alice, "public/x"), Right::Read);
        assert_eq!(a.identify(Some("wrong")), Identity::BadToken);
        assert_eq!(a.right(&Identity::BadToken, "public/x"), Right::None);
        assert_eq!(a.right(&Identity::Anonymous, "public/x"), Right::Read);
        assert_eq!(a.right(&Identity::Anonymous, "team/film"), Right::None);
        assert!(Auth::open().right(&Identity::Anonymous, "x") == Right::Admin);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let e = Auth::parse("[[users]]\nname='a'\ntoken_sha256='xyz'\n").unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
        let h = hash_token("t");
        let e = Auth::parse(&format!(
            "[[users]]\nname='a'\ntoken_sha256='{h}'\n[[users]]\nname='b'\ntoken_sha256='{h}'\n"
        ))
        .unwrap_err();
        assert!(e.contains("token of another user"), "{e}");
        let e = Auth::parse(&format!(
            "[[users]]\nname='a'\ntoken_sha256='{h}'\nrepos={{'a'='owner'}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("owner") || e.contains("unknown variant"), "{e}");
        let e = Auth::parse("[[users]]\nname='a'\ntoken='x'\n").unwrap_err();
        assert!(e.contains("token"), "{e}");
    }
}
