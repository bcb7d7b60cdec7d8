//! `.mediagit/config.toml`: the repository configuration.
use serde::{Deserialize, Serialize};

use crate::FormatError;

/// The repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub format: FormatSection,
    #[serde(default)]
    pub chunking: ChunkingConfig,
    #[serde(default)]
    pub compression: CompressionConfig,
    #[serde(default)]
    pub core: CoreConfig,
    #[serde(default, skip_serializing_if = "AuthorConfig::is_empty")]
    pub author: AuthorConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatSection {
    pub version: u32,
    /// The function that names chunks: `"sha256"` (plain SHA-256 of the bytes).
    /// Encrypted repositories will name a keyed function here.
    #[serde(default = "default_chunk_id")]
    pub chunk_id: String,
}

fn default_chunk_id() -> String {
    "sha256".into()
}

/// FastCDC (v2020, normalization level 1) parameters, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingConfig {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        ChunkingConfig {
            min_size: 128 * 1024,
            avg_size: 512 * 1024,
            max_size: 2 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressionConfig {
    /// zstd level used for content that compresses.
    pub level: i32,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig { level: 3 }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// A bare repository has no working tree.
    #[serde(default)]
    pub bare: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl AuthorConfig {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none()
    }
}

impl RepoConfig {
    pub fn new(bare: bool) -> RepoConfig {
        RepoConfig {
            format: FormatSection {
                version: FORMAT_VERSION,
                chunk_id: default_chunk_id(),
            },
            chunking: ChunkingConfig::default(),
            compression: CompressionConfig::default(),
            core: CoreConfig { bare },
            author: AuthorConfig::default(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes to TOML")
    }

    /// Parses and validates a config; refuses format versions this build does not know.
    pub fn from_toml(s: &str) -> Result<RepoConfig, FormatError> {
        // Check the version before the rest, so a newer format with new
        // fields gets the "upgrade" message rather than a parse error.
        let raw: toml::Value = toml::from_str(s).map_err(|e| FormatError::Config(e.to_string()))?;
        let version = raw
            .get("format")
            .and_then(|f| f.get("version"))
            .and_then(|v| v.as_integer())
            .ok_or_else(|| FormatError::Config("missing [format] version".into()))?;
        if version != FORMAT_VERSION as i64 {
            return Err(FormatError::UnknownVersion {
                what: "repository",
                found: version.clamp(0, u32::MAX as i64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let cfg: RepoConfig = toml::from_str(s).map_err(|e| FormatError::Config(e.to_string()))?;
        if cfg.format.chunk_id != "sha256" {
            return Err(FormatError::Config(format!(
                "[format] chunk_id = {:?} is not supported by this build (supported: \"sha256\")",
                cfg.format.chunk_id
            )));
        }
        let c = cfg.chunking;
        let sizes_ok = (64..=1 << 20).contains(&c.min_size)
            && (256..=4 << 20).contains(&c.avg_size)
            && (1024..=16 << 20).contains(&c.max_size)
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size;
        if !sizes_ok {
            return Err(FormatError::Config(format!(
                "[chunking] sizes out of range: need 64 <= min_size <= 1 MiB, 256 <= avg_size <= 4 MiB, 1 KiB <= max_size <= 16 MiB and min <= avg <= max (got {}/{}/{})",
                c.min_size, c.avg_size, c.max_size
            )));
        }
        if !(1..=22).contains(&cfg.compression.level) {
            return Err(FormatError::Config(format!(
                "[compression] level = {} must be between 1 and 22",
                cfg.compression.level
            )));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let c = RepoConfig::new(false);
        assert_eq!(RepoConfig::from_toml(&c.to_toml()).unwrap(), c);
        let newer = c.to_toml().replace("version = 1", "version = 2");
        let err = RepoConfig::from_toml(&newer).unwrap_err().to_string();
        assert!(err.contains("unknown format version 2"), "{err}");
        let bad = c.to_toml().replace("min_size = 131072", "min_size = 1");
        assert!(RepoConfig::from_toml(&bad).is_err());
    }
}
