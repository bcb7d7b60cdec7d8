//! Resolving revisions: branch and tag names, `HEAD`, `HEAD~N`, `REV^N`,
//! remote-tracking branches (`origin/main`), full ids and unique id
//! prefixes of at least 4 hex digits.
use mediagit_format::{ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::refs::{branch_ref, tag_ref, Head};
use crate::repo::Repository;

/// How many annotated tags may name each other before a commit.
pub const MAX_TAG_CHAIN: usize = 10_000;

impl Repository {
    /// Resolves `rev` to a commit id.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId> {
        let unknown = || RepoError::UnknownRevision { rev: rev.into() };
        let split = rev.find(['~', '^']).unwrap_or(rev.len());
        let (base, mut suffix) = rev.split_at(split);
        let mut id = self.resolve_base(base, rev)?;
        while !suffix.is_empty() {
            let op = suffix.as_bytes()[0];
            // Only `~` and `^` are operators (`HEAD~1x`, `HEAD~1é` are no
            // revisions); both are one byte, so slicing after them is safe.
            if op != b'~' && op != b'^' {
                return Err(unknown());
            }
            suffix = &suffix[1..];
            let digits_end = suffix
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(suffix.len());
            let (digits, rest) = suffix.split_at(digits_end);
            suffix = rest;
            let n: usize = if digits.is_empty() {
                1
            } else {
                digits.parse().map_err(|_| unknown())?
            };
            if op == b'~' {
                for _ in 0..n {
                    let c = self.odb()?.read_commit(&id)?;
                    id = *c.parents.first().ok_or(RepoError::NoSuchParent {
                        rev: rev.into(),
                        n: 1,
                    })?;
                }
            } else if n > 0 {
                let c = self.odb()?.read_commit(&id)?;
                id = *c
                    .parents
                    .get(n - 1)
                    .ok_or(RepoError::NoSuchParent { rev: rev.into(), n })?;
            }
        }
        Ok(id)
    }

    fn resolve_base(&self, base: &str, rev: &str) -> Result<ObjectId> {
        let unknown = || RepoError::UnknownRevision { rev: rev.into() };
        if base.is_empty() {
            return Err(unknown());
        }
        if base == "HEAD" || base == "@" {
            return match self.head_commit()? {
                Some(id) => Ok(id),
                None => match self.head()? {
                    Head::Branch(b) => Err(RepoError::UnbornBranch(b)),
                    Head::Detached(_) => Err(unknown()),
                },
            };
        }
        if base.starts_with("refs/") {
            if let Some(id) = self.read_ref(base)? {
                return self.peel(id);
            }
        }
        if crate::refs::validate_ref_name("branch", base).is_ok() {
            if let Some(id) = self.read_ref(&branch_ref(base))? {
                return Ok(id);
            }
            if let Some(id) = self.read_ref(&tag_ref(base))? {
                return self.peel(id);
            }
            // `origin/main`: a remote-tracking branch.
            if base.contains('/') {
                if let Some(id) = self.read_ref(&format!("refs/remotes/{base}"))? {
                    return self.peel(id);
                }
            }
        }
        if base.len() >= 4 && base.len() <= 64 && base.chars().all(|c| c.is_ascii_hexdigit()) {
            let prefix = base.to_ascii_lowercase();
            let found = self
                .odb()?
                .find_prefix(&prefix, &[ObjectKind::Commit, ObjectKind::Tag]);
            return match found.as_slice() {
                [] => Err(unknown()),
                [(id, _)] => self.peel(*id),
                many => Err(RepoError::AmbiguousRevision {
                    rev: rev.into(),
                    candidates: many
                        .iter()
                        .map(|(id, k)| format!("{} ({})", id.short(12), k.name()))
                        .collect(),
                }),
            };
        }
        Err(unknown())
    }

    /// Follows annotated tags to the commit they name (a loop, not
    /// recursion: a crafted chain of tags is as long as its author likes).
    pub fn peel(&self, id: ObjectId) -> Result<ObjectId> {
        let odb = self.odb()?;
        let mut id = id;
        for _ in 0..=MAX_TAG_CHAIN {
            match odb.locate(&id) {
                Some((_, loc)) if loc.kind == ObjectKind::Tag => id = odb.read_tag(&id)?.target,
                Some((_, loc)) if loc.kind == ObjectKind::Commit => return Ok(id),
                Some((_, loc)) => {
                    return Err(RepoError::WrongKind {
                        id,
                        expected: "commit",
                        actual: loc.kind.name(),
                    })
                }
                None => {
                    return Err(RepoError::MissingObject {
                        id,
                        kind: "commit",
                        context: None,
                    })
                }
            }
        }
        Err(RepoError::Invalid(format!(
            "a chain of more than {MAX_TAG_CHAIN} tags, each naming the next, before a commit (stopped at {id})"
        )))
    }
}
