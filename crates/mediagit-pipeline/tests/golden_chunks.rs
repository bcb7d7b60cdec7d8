//! Golden chunk boundaries: given these bytes and these parameters, the
//! chunker cuts exactly here. Chunk boundaries decide chunk ids, so a
//! change here would stop new content from deduplicating against every
//! repository already written: it needs a new chunking version in the
//! config (FORMAT.md §10), never a silent change.
use mediagit_format::config::ChunkingConfig;
use mediagit_pipeline::Chunker;

/// Deterministic bytes (a 64-bit LCG), the same on every machine.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn boundaries(bytes: &[u8], cfg: ChunkingConfig, cut: Option<u64>) -> Vec<usize> {
    let mut c = Chunker::new(bytes, cfg);
    if let Some(at) = cut {
        c.cut_at(at);
    }
    let mut ends = Vec::new();
    let mut at = 0;
    while let Some(chunk) = c.next_chunk().unwrap() {
        at += chunk.len();
        ends.push(at);
    }
    assert_eq!(at, bytes.len());
    ends
}

fn check(name: &str, got: &[usize], want: &[usize]) {
    if want.is_empty() || std::env::var_os("MEDIAGIT_PRINT_GOLDEN").is_some() {
        println!("{name}: {got:?}");
    }
    assert_eq!(got, want, "{name}: chunk boundaries changed");
}

#[test]
fn default_parameters_cut_where_they_always_have() {
    let bytes = data(6 << 20, 1);
    let got = boundaries(&bytes, ChunkingConfig::default(), None);
    check(
        "default",
        &got,
        &[
            201661, 948010, 1208424, 1754531, 2519820, 3247482, 3936726, 4098312, 4232457, 4787108,
            6291456,
        ],
    );
}

#[test]
fn small_parameters_and_a_forced_cut_cut_where_they_always_have() {
    let cfg = ChunkingConfig {
        min_size: 2048,
        avg_size: 8192,
        max_size: 16384,
    };
    let bytes = data(100_000, 7);
    check(
        "small",
        &boundaries(&bytes, cfg, None),
        &[
            8080, 11073, 25348, 28508, 37311, 46031, 56523, 65007, 67189, 74365, 82766, 94078,
            100000,
        ],
    );
    check(
        "small+cut",
        &boundaries(&bytes, cfg, Some(5000)),
        &[
            5000, 8080, 11073, 25348, 28508, 37311, 46031, 56523, 65007, 67189, 74365, 82766,
            94078, 100000,
        ],
    );
}
