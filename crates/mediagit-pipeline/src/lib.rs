//! # mediagit-pipeline
//!
//! Pure transforms between a file's bytes and what gets stored: content-defined
//! chunking (FastCDC v2020), chunk hashing, and the choice of codec per chunk.
//!
//! Why content-defined chunking: media files are edited in place (a re-encoded
//! tail, rewritten EXIF, a few inserted bytes); cutting at content-defined
//! boundaries means an edit only changes the chunks it touches, so the next
//! version stores only those. Why a codec choice: most media is already
//! compressed, so zstd is tried on a sample first and skipped where it does
//! not pay. Nothing here does I/O beyond reading the `Read` it is given.

pub mod chunker;
pub mod compress;
pub mod media;

pub use chunker::Chunker;
pub use compress::{compress_chunk, decompress, CompressionHint};
