//! `upgrade`: converts a repository to the newest format version in place.
//!
//! Format version 2 differs from version 1 only in `config.toml` (feature
//! lists, docs/FORMAT.md §1): every pack, index, object and ref a version-1
//! repository holds is also valid in version 2. So an upgrade rewrites the
//! settings and nothing else: the store's `config.toml` (what every client
//! of a shared store reads) and then the working tree's, each written
//! atomically. Killed at any point, the repository is either still version
//! 1 (both builds open it) or version 2 (the new build opens it; an old one
//! refuses with "upgrade mediagit"), and running `upgrade` again finishes.

use mediagit_format::config::{RepoConfig, FORMAT_VERSION, WRITTEN_OPTIONAL_FEATURES};
use serde::Serialize;

use crate::error::{RepoError, Result};
use crate::repo::{read_store_config, write_atomic, Repository};

/// What `upgrade` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    /// The version found.
    pub from: u32,
    /// The version written (equal to `from` when nothing was to do).
    pub to: u32,
    pub dry_run: bool,
    /// Whether the settings were (or would be) rewritten.
    pub changed: bool,
    /// Whether that includes a store's `config.toml` (shared by every
    /// working tree of the store).
    pub store: bool,
    /// Optional features the new settings declare.
    pub features_added: Vec<String>,
}

impl Repository {
    /// Converts the repository to format [`FORMAT_VERSION`] in place.
    pub fn upgrade(&self, dry_run: bool) -> Result<UpgradeReport> {
        let _lock = if dry_run {
            None
        } else {
            Some(self.lock_local()?)
        };
        let current = self.config().format.clone();
        let mut format = current.clone();
        format.version = FORMAT_VERSION;
        let mut added = Vec::new();
        for f in WRITTEN_OPTIONAL_FEATURES {
            if !format.has_feature(f) {
                format.optional_features.push(f.to_string());
                added.push(f.to_string());
            }
        }
        // The working tree's own file too: a kill between the two writes
        // leaves the store upgraded and this file not, and running
        // `upgrade` again finishes it.
        // (A store opened alone has only the store's.)
        let local = match self.workspace_opt() {
            Some(ws) => {
                let path = ws.dir().join("config.toml");
                let text = crate::repo::read_config_text(&path)?;
                let cfg = RepoConfig::from_toml(&text)
                    .map_err(|e| RepoError::format(path.display().to_string(), e))?;
                Some((path, cfg))
            }
            None => None,
        };
        let local_version = local
            .as_ref()
            .map_or(current.version, |(_, c)| c.format.version);
        let changed = current.version < FORMAT_VERSION || local_version < FORMAT_VERSION;
        let report = UpgradeReport {
            from: current.version.min(local_version),
            to: if changed {
                FORMAT_VERSION
            } else {
                current.version
            },
            dry_run,
            changed,
            store: current.version < FORMAT_VERSION
                && (self.config().storage.is_some() || local.is_none()),
            features_added: if changed { added } else { Vec::new() },
        };
        if !changed || dry_run {
            return Ok(report);
        }
        // The store's settings first: they decide for every client.
        if self.config().storage.is_some() || local.is_none() {
            let storage = self.uncached_storage();
            let mut sc = read_store_config(storage.as_ref())?;
            if sc.format.version < FORMAT_VERSION {
                sc.format = format.clone();
                storage.put("config.toml", sc.to_toml().as_bytes())?;
            }
            crate::failpoint::hit("write:upgrade-store-config");
        }
        if let Some((path, mut local)) = local {
            local.format = format;
            write_atomic(&path, local.to_toml().as_bytes())?;
        }
        Ok(report)
    }
}
