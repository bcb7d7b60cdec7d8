//! Throughput of the add pipeline's pure stages on in-memory data, each as a
//! ratio against SHA-256 alone measured in the same run (the machines are
//! noisy; ratios are stable). `cargo bench -p mediagit-pipeline`.
use std::time::Instant;

use mediagit_format::config::ChunkingConfig;
use mediagit_format::ObjectId;
use mediagit_pipeline::{compress_chunk, Chunker, CompressionHint};

const SIZE: usize = 256 << 20;

fn data(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = vec![0u8; SIZE];
    for c in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    v
}

/// Best of 3 runs, in GB/s.
fn measure(bytes: usize, mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            bytes as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

fn main() {
    let random = data(7);
    let text: Vec<u8> = b"frame 0001 timecode 00:00:00:01 exposure 1/125 iso 400 \n"
        .iter()
        .copied()
        .cycle()
        .take(64 << 20)
        .collect();
    let cfg = ChunkingConfig::default();
    let mut sink = 0u64;

    let sha = measure(SIZE, || sink ^= ObjectId::hash(&random).0[0] as u64);
    let cdc = measure(SIZE, || {
        let mut c = Chunker::new(&random[..], cfg);
        while let Some(ch) = c.next_chunk().unwrap() {
            sink = sink.wrapping_add(ch.len() as u64);
        }
    });
    let cdc_sha = measure(SIZE, || {
        let mut c = Chunker::new(&random[..], cfg);
        while let Some(ch) = c.next_chunk().unwrap() {
            sink ^= ObjectId::hash(ch).0[0] as u64;
        }
    });
    let mut out = Vec::new();
    let choose_random = measure(SIZE, || {
        for ch in random.chunks(cfg.avg_size as usize) {
            sink += compress_chunk(ch, CompressionHint::Try, 3, &mut out).unwrap() as u64;
        }
    });
    let zstd_text = measure(text.len(), || {
        for ch in text.chunks(cfg.avg_size as usize) {
            sink += compress_chunk(ch, CompressionHint::Try, 3, &mut out).unwrap() as u64;
        }
    });
    println!(
        "{:<44} {:>8} {:>10}",
        "stage (256 MiB in memory, one core)", "GB/s", "vs sha256"
    );
    for (name, v) in [
        ("sha256 (reference)", sha),
        ("fastcdc cut points", cdc),
        ("chunk + sha256 of every chunk", cdc_sha),
        ("codec choice, incompressible, sampled", choose_random),
        ("codec choice + zstd-3, compressible text", zstd_text),
    ] {
        println!("{name:<44} {v:>8.2} {:>10.2}", v / sha);
    }
    println!("(checksum {sink})");
}
