//! Branches, tags, HEAD and the reflog.
//!
//! Refs live in storage (`refs/heads/<name>`, `refs/tags/<name>`), each holding
//! a hex id and a newline, and change only by compare-and-swap. HEAD is local
//! (`.mediagit/HEAD`): `ref: refs/heads/<name>` or a detached commit id.
//! Every movement of HEAD or a branch is appended to the reflog under
//! `.mediagit/logs/`, and a deleted branch keeps its log so it can be recovered.

use mediagit_format::{ObjectId, Signature};

use crate::error::{RepoError, Result};
use crate::repo::Repository;

/// In JSON: `{"branch": NAME}` or `{"detached": ID}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// On a branch (which may have no commits yet).
    Branch(String),
    Detached(ObjectId),
}

impl Head {
    /// Parses a HEAD file: `ref: refs/heads/NAME` or a commit id.
    pub fn parse(text: &str) -> std::result::Result<Head, mediagit_format::FormatError> {
        let s = text.trim();
        if let Some(r) = s.strip_prefix("ref: refs/heads/") {
            return Ok(Head::Branch(r.to_string()));
        }
        s.parse::<ObjectId>().map(Head::Detached)
    }
}

pub fn validate_ref_name(what: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(RepoError::InvalidRefName {
            what,
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.starts_with('-') {
        return bad("starts with '-'");
    }
    if name == "HEAD" || name == "@" {
        return bad("reserved name");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return bad("contains '..', '@{' or '//'");
    }
    if name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with('.')
        || name.ends_with(".lock")
    {
        return bad("starts or ends with '/', ends with '.' or '.lock'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return bad("contains a space, control character or one of ~ ^ : ? * [ \\");
    }
    if name.split('/').any(|c| c.starts_with('.')) {
        return bad("a component starts with '.'");
    }
    // Refs are files on disk: a component must fit a file name (255 bytes
    // on most filesystems; found by fuzzing), and the whole a path.
    if name.split('/').any(|c| c.len() > 200) || name.len() > 1000 {
        return bad("longer than 200 bytes per component or 1000 in all");
    }
    Ok(())
}

/// [`validate_ref_name`] for a name being created (a branch, a tag, a
/// rename): also refuses invisible characters that change how a name looks
/// (bidi overrides, zero-width spaces, soft hyphen), so that no new branch
/// shows as `main` while being another. Existing refs with such names
/// (earlier builds made them) stay listed and protected from gc.
pub fn validate_new_ref_name(what: &'static str, name: &str) -> Result<()> {
    validate_ref_name(what, name)?;
    if name.chars().any(is_invisible_format) {
        return Err(RepoError::InvalidRefName {
            what,
            name: name.to_string(),
            reason: "contains an invisible formatting character (zero-width or bidirectional)",
        });
    }
    Ok(())
}

/// Unicode format characters that render as nothing or reorder text.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// Checks a key under `refs/` as found in a store (which anyone who can
/// write the store could have planted): `refs/heads/NAME`, `refs/tags/NAME`
/// or `refs/<namespace>/NAME` with NAME a valid ref name. Keys that fail
/// (`refs/heads/a/../../../evil`, a name with `ESC[31m`) are skipped by every
/// listing, so they never block `branch`, `gc`, `fsck --repair` or `clone`
/// for the other refs.
pub fn check_ref_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(RepoError::InvalidRefName {
            what: "ref",
            name: key.into(),
            reason,
        })
    };
    let Some(rest) = key.strip_prefix("refs/") else {
        return bad("not under refs/");
    };
    let Some((ns, name)) = rest.split_once('/') else {
        return bad("no namespace (refs/heads/, refs/tags/...)");
    };
    if validate_ref_name("ref", ns).is_err() {
        return bad("bad namespace");
    }
    let what = match ns {
        "heads" => "branch",
        "tags" => "tag",
        _ => "ref",
    };
    validate_ref_name(what, name)
}

/// One reflog record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReflogEntry {
    pub old: ObjectId,
    pub new: ObjectId,
    pub who: Signature,
    pub message: String,
}

impl ReflogEntry {
    pub fn to_line(&self) -> String {
        let tz = self.who.tz_offset_minutes;
        let sign = if tz < 0 { '-' } else { '+' };
        format!(
            "{} {} {} {}{:02}{:02} {} <{}>\t{}\n",
            self.old,
            self.new,
            self.who.time,
            sign,
            tz.abs() / 60,
            tz.abs() % 60,
            self.who.name.replace(['\n', '<', '>'], " "),
            self.who.email.replace(['\n', '<', '>'], " "),
            self.message.replace(['\n', '\t'], " ")
        )
    }

    /// Parses one reflog line (`to_line`'s format); `None` for anything
    /// else. The one reflog parser: `reflog`, `gc`'s roots and `reflog
    /// expire` all read records through it. Never panics (fuzzed:
    /// `fuzz/fuzz_targets/reflog_line.rs`).
    pub fn parse(line: &str) -> Option<ReflogEntry> {
        let (head, message) = line.split_once('\t')?;
        let mut it = head.splitn(5, ' ');
        let old = it.next()?.parse().ok()?;
        let new = it.next()?.parse().ok()?;
        let time = it.next()?.parse().ok()?;
        let tz = it.next()?.as_bytes();
        let rest = it.next()?;
        let sign = match tz.first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        if tz.len() != 5 || !tz[1..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |a: u8, b: u8| i32::from(a - b'0') * 10 + i32::from(b - b'0');
        let tz_offset_minutes = sign * (num(tz[1], tz[2]) * 60 + num(tz[3], tz[4]));
        let (name, email) = rest.rsplit_once(" <")?;
        Some(ReflogEntry {
            old,
            new,
            who: Signature {
                name: name.to_string(),
                email: email.trim_end_matches('>').to_string(),
                time,
                tz_offset_minutes,
            },
            message: message.to_string(),
        })
    }
}

pub fn branch_ref(name: &str) -> String {
    format!("refs/heads/{name}")
}
pub fn tag_ref(name: &str) -> String {
    format!("refs/tags/{name}")
}

#[cfg(test)]
mod reflog_parse_tests {
    use super::*;

    #[test]
    fn ref_names_that_cannot_be_file_names_are_refused() {
        assert!(validate_ref_name("branch", &"a".repeat(200)).is_ok());
        assert!(validate_ref_name("branch", &"a".repeat(201)).is_err());
        assert!(validate_ref_name("branch", &["b"; 600].join("/")).is_err());
        assert!(check_ref_key("refs/heads/a/../../../evil").is_err());
        assert!(check_ref_key("refs/heads/ok/name").is_ok());
    }

    #[test]
    fn hostile_reflog_lines_are_refused_not_a_panic() {
        let id = "0".repeat(64);
        for tz in ["+aéb", "+12é", "é", "+1", "+123456", "x0000", "+12 3"] {
            let line = format!("{id} {id} 1700000000 {tz} N <e>\tm");
            assert_eq!(ReflogEntry::parse(&line), None, "{tz:?}");
        }
        let line = format!("{id} {id} 1700000000 -0130 N <e>\tm");
        let e = ReflogEntry::parse(&line).unwrap();
        assert_eq!(e.who.tz_offset_minutes, -90);
        assert_eq!(
            ReflogEntry::parse(e.to_line().trim_end_matches('\n')),
            Some(e)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflog_line_round_trip() {
        let e = ReflogEntry {
            old: ObjectId::ZERO,
            new: ObjectId::hash(b"x"),
            who: Signature {
                name: "Ann Lee".into(),
                email: "ann@example.com".into(),
                time: 1_700_000_000,
                tz_offset_minutes: -330,
            },
            message: "commit: first".into(),
        };
        assert_eq!(ReflogEntry::parse(e.to_line().trim_end()).unwrap(), e);
    }

    #[test]
    fn ref_names() {
        for ok in [
            "main",
            "feature/x",
            "v1.0",
            "milestone-3",
            "café",
            "étape/ü",
        ] {
            validate_ref_name("branch", ok).unwrap();
        }
        for bad in [
            "", "-x", "a..b", "a b", "x.lock", "a/", "HEAD", "a~1", "a:b", ".hidden",
        ] {
            assert!(validate_ref_name("branch", bad).is_err(), "{bad}");
        }
        // Look-alikes (invisible characters that show as nothing or
        // reorder the text) are refused for new names, still read.
        for look_alike in [
            "main\u{200B}",
            "x\u{202E}y",
            "a\u{2066}b",
            "\u{FEFF}main",
            "so\u{00AD}ft",
        ] {
            assert!(
                validate_new_ref_name("branch", look_alike).is_err(),
                "{look_alike}"
            );
            validate_ref_name("branch", look_alike).unwrap();
        }
        validate_new_ref_name("branch", "café").unwrap();
    }
}

impl Repository {
    /// Records a ref's move in the working tree's reflog; a repository
    /// opened from its store alone keeps none (its store's refs are the
    /// record; a server that wants a journal keeps its own).
    pub(crate) fn log_ref(&self, name: &str, entry: &ReflogEntry) -> Result<()> {
        match self.workspace_opt() {
            Some(ws) => ws.append_reflog(name, entry),
            None => Ok(()),
        }
    }

    /// What HEAD names: the working tree's, or the store's own when the
    /// repository was opened from its store alone.
    pub fn head(&self) -> Result<Head> {
        self.head_opt()?
            .ok_or_else(|| RepoError::Invalid(format!("{} has no HEAD", self.storage().describe())))
    }

    /// [`Repository::head`], `None` for a store alone that has no HEAD.
    pub fn head_opt(&self) -> Result<Option<Head>> {
        match self.workspace_opt() {
            Some(ws) => match ws.head() {
                Err(RepoError::SealedHead { .. }) if ws.is_bare() => self.store().head(),
                r => r.map(Some),
            },
            None => self.store().head(),
        }
    }

    /// The commit HEAD points to, or `None` on an unborn branch.
    ///
    /// In a working tree of a shared store, the branch ref can move under
    /// it (another machine commits); what this working tree and its index
    /// are based on is then `.mediagit/BASE`, not the ref. Using BASE here
    /// makes `commit` fail by compare-and-swap instead of silently undoing
    /// the other machine's changes, and makes `switch BRANCH` bring the
    /// working tree up to the ref (a fast-forward that keeps local edits
    /// where they do not collide).
    pub fn head_commit(&self) -> Result<Option<ObjectId>> {
        let Some(head) = self.head_opt()? else {
            return Ok(None);
        };
        match head {
            Head::Branch(b) => {
                if let Some(ws) = self.workspace_opt().filter(|w| w.tracks_base()) {
                    if let Some(base) = ws.read_base()? {
                        return Ok(base);
                    }
                }
                self.read_ref(&branch_ref(&b))
            }
            Head::Detached(id) => Ok(Some(id)),
        }
    }

    /// The branch ref's value in the store, when it moved away from what
    /// this working tree is based on: `(base, tip)`.
    pub fn branch_moved(&self) -> Result<Option<(Option<ObjectId>, Option<ObjectId>)>> {
        let Head::Branch(b) = self.head()? else {
            return Ok(None);
        };
        let Some(ws) = self.workspace_opt().filter(|w| w.tracks_base()) else {
            return Ok(None);
        };
        let Some(base) = ws.read_base()? else {
            return Ok(None);
        };
        let tip = self.read_ref(&branch_ref(&b))?;
        Ok((base != tip).then_some((base, tip)))
    }

    /// Whether the store's branch went *back*: `tip` is an ancestor of
    /// `base`, the commit this working tree last saw there, so commits
    /// were taken off the branch (a reset forced from another working
    /// tree, the store restored from an older copy, or someone able to
    /// write to the store rolling the branch back; FORMAT.md §13.7). A
    /// move forward or to a diverged history is not; nor is anything
    /// that cannot be read to decide.
    pub fn branch_moved_back(&self, base: ObjectId, tip: ObjectId) -> bool {
        base != tip
            && !self.is_ancestor(base, tip).unwrap_or(true)
            && self.is_ancestor(tip, base).unwrap_or(false)
    }

    /// Moves a branch (or detached HEAD) and records it in the reflogs.
    /// `branch = None` means detached HEAD.
    pub fn update_head_target(
        &self,
        old: Option<ObjectId>,
        new: ObjectId,
        who: &Signature,
        message: &str,
    ) -> Result<()> {
        let ws = self.workspace()?;
        let entry = ReflogEntry {
            old: old.unwrap_or(ObjectId::ZERO),
            new,
            who: who.clone(),
            message: message.into(),
        };
        match self.head()? {
            Head::Branch(b) => {
                let name = branch_ref(&b);
                self.cas_ref(&name, old, Some(new))?;
                ws.write_base(Some(new))?;
                ws.append_reflog(&name, &entry)?;
            }
            Head::Detached(_) => ws.set_head(&Head::Detached(new))?,
        }
        ws.append_reflog("HEAD", &entry)
    }
}
