//! Branches and tags.
use std::collections::{HashSet, VecDeque};

use mediagit_format::{ObjectId, ObjectKind, Signature, Tag};

use crate::error::{RepoError, Result};
use crate::refs::{branch_ref, tag_ref, validate_new_ref_name, Head, ReflogEntry};
use crate::repo::Repository;

#[derive(Debug, Clone, serde::Serialize)]
pub struct BranchInfo {
    pub name: String,
    pub commit: ObjectId,
    pub current: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TagInfo {
    pub name: String,
    /// The commit the tag names (peeled).
    pub commit: ObjectId,
    /// The annotated tag object, if any.
    #[serde(serialize_with = "serialize_annotation")]
    pub annotation: Option<(ObjectId, Tag)>,
}

/// `{"id": TAG OBJECT, "tagger": ..., "message": ...}` or null.
fn serialize_annotation<S: serde::Serializer>(
    a: &Option<(ObjectId, Tag)>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    struct Annotation<'a> {
        id: &'a ObjectId,
        tagger: &'a mediagit_format::Signature,
        message: &'a str,
    }
    match a {
        None => s.serialize_none(),
        Some((id, t)) => s.serialize_some(&Annotation {
            id,
            tagger: &t.tagger,
            message: &t.message,
        }),
    }
}

impl Repository {
    /// For each commit a branch or tag (peeled) or HEAD points at, the full
    /// names of those refs (`HEAD`, `refs/heads/B`, `refs/tags/T`), HEAD
    /// first, then branches, then tags, each sorted: what `log` and `show`
    /// decorate commits with.
    pub fn refs_by_commit(&self) -> Result<std::collections::HashMap<ObjectId, Vec<String>>> {
        let mut m: std::collections::HashMap<ObjectId, Vec<String>> = Default::default();
        if let Some(h) = self.head_commit()? {
            m.entry(h).or_default().push("HEAD".into());
        }
        for b in self.branches()? {
            m.entry(b.commit)
                .or_default()
                .push(crate::refs::branch_ref(&b.name));
        }
        // A tag that does not peel to a commit (fetched from someone
        // else: a chain too long, a missing target) decorates nothing,
        // rather than failing every `log`; `tag` and `fsck` name it.
        for (name, id) in self.list_refs("refs/tags/")? {
            if let Ok(c) = self.peel(id) {
                m.entry(c).or_default().push(format!("refs/tags/{name}"));
            }
        }
        Ok(m)
    }

    /// Remote-tracking branches (`refs/remotes/NAME/BRANCH`), named
    /// `NAME/BRANCH` (as `list_refs` strips the prefix).
    pub fn remote_branches(&self) -> Result<Vec<BranchInfo>> {
        Ok(self
            .list_refs("refs/remotes/")?
            .into_iter()
            .map(|(name, commit)| BranchInfo {
                current: false,
                name,
                commit,
            })
            .collect())
    }

    pub fn branches(&self) -> Result<Vec<BranchInfo>> {
        let cur = self.current_branch()?;
        Ok(self
            .list_refs("refs/heads/")?
            .into_iter()
            .map(|(name, commit)| BranchInfo {
                current: cur.as_deref() == Some(name.as_str()),
                name,
                commit,
            })
            .collect())
    }

    pub fn create_branch(
        &self,
        name: &str,
        start: ObjectId,
        who: &Signature,
        reason: &str,
    ) -> Result<()> {
        validate_new_ref_name("branch", name)?;
        let lock = self.lock_local()?;
        self.create_branch_locked(lock.as_ref(), name, start, who, reason)
    }

    /// [`Self::create_branch`] under a lock the caller holds.
    pub(crate) fn create_branch_locked(
        &self,
        _held: Option<&crate::repo::RepoLock>,
        name: &str,
        start: ObjectId,
        who: &Signature,
        reason: &str,
    ) -> Result<()> {
        // (Both callers checked `name` before taking the lock.)
        let r = branch_ref(name);
        if self.read_ref(&r)?.is_some() {
            return Err(RepoError::BranchExists(name.into()));
        }
        self.check_ref_clash("branch", "refs/heads/", name)?;
        self.cas_ref(&r, None, Some(start))?;
        self.log_ref(
            &r,
            &ReflogEntry {
                old: ObjectId::ZERO,
                new: start,
                who: who.clone(),
                message: reason.into(),
            },
        )
    }

    /// Deletes a branch. Refuses the checked-out branch, and a branch whose
    /// commits are not reachable from HEAD unless `force`. The branch's reflog
    /// is kept (with a final "deleted" record) so it can be recovered.
    pub fn delete_branch(&self, name: &str, force: bool, who: &Signature) -> Result<ObjectId> {
        let lock = self.lock_local()?;
        self.delete_branch_locked(lock.as_ref(), name, force, who)
    }

    /// [`Self::delete_branch`] under a lock the caller holds.
    pub(crate) fn delete_branch_locked(
        &self,
        _held: Option<&crate::repo::RepoLock>,
        name: &str,
        force: bool,
        who: &Signature,
    ) -> Result<ObjectId> {
        let r = branch_ref(name);
        let tip = self
            .read_ref(&r)?
            .ok_or_else(|| RepoError::BranchNotFound(name.into()))?;
        if self.current_branch()?.as_deref() == Some(name) {
            return Err(RepoError::DeleteCurrentBranch(name.into()));
        }
        if !force {
            let head = self.head_commit()?;
            let merged = match head {
                Some(h) => self.is_ancestor(tip, h)?,
                None => false,
            };
            if !merged {
                return Err(RepoError::BranchNotMerged {
                    branch: name.into(),
                    into: "HEAD".into(),
                });
            }
        }
        self.cas_ref(&r, Some(tip), None)?;
        self.log_ref(
            &r,
            &ReflogEntry {
                old: tip,
                new: ObjectId::ZERO,
                who: who.clone(),
                message: format!("branch: deleted {name} at {}", tip.short(12)),
            },
        )?;
        Ok(tip)
    }

    pub fn rename_branch(&self, old: &str, new: &str, who: &Signature) -> Result<()> {
        validate_new_ref_name("branch", new)?;
        let _lock = self.lock_local()?;
        if self.workspace_opt().is_none() && self.current_branch()?.as_deref() == Some(old) {
            // The store's HEAD would name a branch that is gone.
            return Err(RepoError::Invalid(format!(
                "{old} is the branch the store's HEAD names; rename it from a working tree"
            )));
        }
        let (ro, rn) = (branch_ref(old), branch_ref(new));
        let tip = self
            .read_ref(&ro)?
            .ok_or_else(|| RepoError::BranchNotFound(old.into()))?;
        if self.read_ref(&rn)?.is_some() {
            return Err(RepoError::BranchExists(new.into()));
        }
        if !new.starts_with(&format!("{old}/")) && !old.starts_with(&format!("{new}/")) {
            self.check_ref_clash("branch", "refs/heads/", new)?;
        }
        self.cas_ref(&rn, None, Some(tip))?;
        self.cas_ref(&ro, Some(tip), None)?;
        let entry = |old_id, new_id, message: String| ReflogEntry {
            old: old_id,
            new: new_id,
            who: who.clone(),
            message,
        };
        self.log_ref(
            &rn,
            &entry(
                ObjectId::ZERO,
                tip,
                format!("branch: renamed {old} to {new}"),
            ),
        )?;
        self.log_ref(
            &ro,
            &entry(
                tip,
                ObjectId::ZERO,
                format!("branch: renamed {old} to {new}"),
            ),
        )?;
        if self.current_branch()?.as_deref() == Some(old) {
            if let Some(ws) = self.workspace_opt() {
                ws.set_head(&Head::Branch(new.into()))?;
            }
        }
        Ok(())
    }

    /// `a/b` and `a` cannot both exist (one would be a directory of the other).
    pub(crate) fn check_ref_clash(
        &self,
        what: &'static str,
        prefix: &str,
        name: &str,
    ) -> Result<()> {
        for (other, _) in self.list_refs(prefix)? {
            if other.starts_with(&format!("{name}/")) || name.starts_with(&format!("{other}/")) {
                return Err(RepoError::RefClash {
                    what,
                    name: name.into(),
                    other,
                });
            }
        }
        Ok(())
    }

    /// Whether `a` is `b` or an ancestor of `b`.
    pub fn is_ancestor(&self, a: ObjectId, b: ObjectId) -> Result<bool> {
        let odb = self.odb()?;
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([b]);
        while let Some(c) = queue.pop_front() {
            if c == a {
                return Ok(true);
            }
            if !seen.insert(c) {
                continue;
            }
            queue.extend(odb.read_commit(&c)?.parents);
        }
        Ok(false)
    }

    pub fn tags(&self) -> Result<Vec<TagInfo>> {
        let mut out = Vec::new();
        for (name, id) in self.list_refs("refs/tags/")? {
            let annotation = match self.odb()?.locate(&id) {
                Some((_, l)) if l.kind == ObjectKind::Tag => Some((id, self.odb()?.read_tag(&id)?)),
                _ => None,
            };
            out.push(TagInfo {
                commit: self.peel(id)?,
                name,
                annotation,
            });
        }
        Ok(out)
    }

    /// Creates a tag; annotated (a tag object) when `message` is given.
    pub fn create_tag(
        &self,
        name: &str,
        target: ObjectId,
        message: Option<&str>,
        tagger: &Signature,
    ) -> Result<ObjectId> {
        validate_new_ref_name("tag", name)?;
        let _lock = self.lock_local()?;
        let r = tag_ref(name);
        if self.read_ref(&r)?.is_some() {
            return Err(RepoError::TagExists(name.into()));
        }
        self.check_ref_clash("tag", "refs/tags/", name)?;
        let id = match message {
            Some(m) => {
                let tag = Tag {
                    target,
                    name: name.into(),
                    tagger: tagger.clone(),
                    message: format!("{}\n", m.trim_end()),
                };
                let mut s = self.odb()?.session();
                let id = s.put_object(ObjectKind::Tag, &tag.encode())?;
                s.finish()?;
                id
            }
            None => target,
        };
        self.cas_ref(&r, None, Some(id))?;
        Ok(id)
    }

    pub fn delete_tag(&self, name: &str) -> Result<ObjectId> {
        let _lock = self.lock_local()?;
        let r = tag_ref(name);
        let id = self
            .read_ref(&r)?
            .ok_or_else(|| RepoError::TagNotFound(name.into()))?;
        self.cas_ref(&r, Some(id), None)?;
        Ok(id)
    }
}
