//! Progress reporting. The library reports; the CLI decides whether and how
//! to draw (a bar on a terminal, nothing otherwise).

pub trait Progress: Sync {
    /// A phase starts ("adding", "checking out") with known totals.
    fn start(&self, _phase: &str, _total_bytes: u64, _total_files: u64) {}
    fn bytes(&self, _n: u64) {}
    fn file_done(&self) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
