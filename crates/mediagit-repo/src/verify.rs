//! `verify`: re-read and re-hash the content of a revision and report every
//! file that would not restore byte-exactly.
use mediagit_format::id::Hasher;
use mediagit_format::index::IndexKind;
use mediagit_format::ObjectId;

use crate::error::Result;
use crate::ingest::parallel_map_n;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::worktree::path_is_under;

#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub files: usize,
    pub bytes: u64,
    /// Files that would not restore exactly.
    pub bad: Vec<BadFile>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BadFile {
    pub path: String,
    pub reason: String,
}

impl Repository {
    pub fn verify(
        &self,
        rev: ObjectId,
        paths: &[String],
        progress: &dyn Progress,
    ) -> Result<VerifyReport> {
        let odb = self.odb()?;
        let tree = self.commit_tree(&rev)?;
        let files: Vec<_> = tree
            .into_iter()
            .filter(|(p, _)| paths.is_empty() || paths.iter().any(|q| path_is_under(p, q)))
            .collect();
        if files.is_empty() && !paths.is_empty() {
            return Err(crate::RepoError::PathspecNoMatch {
                path: paths.join(", "),
                what: "files in that revision",
            });
        }
        let total: u64 = files.iter().map(|(_, e)| e.size).sum();
        progress.start("verifying", total, files.len() as u64);
        let results = parallel_map_n(&files, self.read_workers(), |(_, e)| {
            let r = if e.kind == IndexKind::Symlink {
                let t = e.target.clone().unwrap_or_default();
                (crate::codec::content_id(t.as_bytes()) != e.content)
                    .then(|| "symlink target does not match its id".to_string())
            } else {
                let mut h = HashWriter(Hasher::new(), 0);
                match odb.write_file_to(&e.manifest, &mut h, &|n| progress.bytes(n)) {
                    Err(err) => Some(err.to_string()),
                    Ok(m) => {
                        let (sum, n) = (h.0.finish(), h.1);
                        if n != e.size {
                            Some(format!("restores {n} bytes, tree says {}", e.size))
                        } else if sum != e.content || m.content != e.content {
                            Some(format!("restores content {sum}, expected {}", e.content))
                        } else {
                            None
                        }
                    }
                }
            };
            progress.file_done();
            Ok(r)
        });
        progress.finish();
        let mut report = VerifyReport {
            files: files.len(),
            bytes: total,
            bad: vec![],
        };
        for ((p, _), r) in files.iter().zip(results?) {
            if let Some(why) = r {
                report.bad.push(BadFile {
                    path: p.clone(),
                    reason: why,
                });
            }
        }
        Ok(report)
    }
}

struct HashWriter(Hasher, u64);
impl std::io::Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        self.1 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
