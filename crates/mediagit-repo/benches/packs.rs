//! Pack write and read throughput against plain file write/read of the same
//! bytes in the same run. `cargo bench -p mediagit-repo`.
use std::time::Instant;

use mediagit_format::pack::Codec;
use mediagit_format::{ObjectId, ObjectKind};
use mediagit_repo::{InitOptions, Repository};

const CHUNK: usize = 512 << 10;
const COUNT: usize = 512; // 256 MiB

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x9E3779B97F4A7C15u64;
    let chunks: Vec<Vec<u8>> = (0..COUNT)
        .map(|_| {
            (0..CHUNK)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect();
    let ids: Vec<ObjectId> = chunks.iter().map(|c| ObjectId::hash(c)).collect();
    let total = (CHUNK * COUNT) as f64;

    // Reference: the same bytes written to one file, fsynced, and read back.
    let plain = dir.path().join("plain.bin");
    let t = Instant::now();
    {
        use std::io::Write;
        let mut f =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&plain).unwrap());
        for c in &chunks {
            f.write_all(c).unwrap();
        }
        f.into_inner().unwrap().sync_all().unwrap();
    }
    let plain_write = total / t.elapsed().as_secs_f64() / 1e9;
    let t = Instant::now();
    let back = std::fs::read(&plain).unwrap();
    let plain_read = total / t.elapsed().as_secs_f64() / 1e9;
    assert_eq!(back.len(), CHUNK * COUNT);

    let repo = Repository::init(&dir.path().join("repo"), &InitOptions::default()).unwrap();
    let odb = repo.odb().unwrap();
    let t = Instant::now();
    let mut s = odb.session();
    for (c, id) in chunks.iter().zip(&ids) {
        s.put_encoded(ObjectKind::Chunk, *id, Codec::Raw, c.len(), c)
            .unwrap();
    }
    s.finish().unwrap();
    let pack_write = total / t.elapsed().as_secs_f64() / 1e9;
    let t = Instant::now();
    let mut n = 0;
    for id in &ids {
        n += odb.read_raw(id, ObjectKind::Chunk).unwrap().len();
    }
    let pack_read = total / t.elapsed().as_secs_f64() / 1e9;
    assert_eq!(n, CHUNK * COUNT);

    println!(
        "{:<40} {:>8} {:>12}",
        "256 MiB of 512 KiB chunks", "GB/s", "vs plain file"
    );
    println!(
        "{:<40} {plain_write:>8.2} {:>12.2}",
        "plain file write + fsync (reference)", 1.0
    );
    println!(
        "{:<40} {pack_write:>8.2} {:>12.2}",
        "pack write + index + fsync",
        pack_write / plain_write
    );
    println!(
        "{:<40} {plain_read:>8.2} {:>12.2}",
        "plain file read (reference)", 1.0
    );
    println!(
        "{:<40} {pack_read:>8.2} {:>12.2}",
        "pack read, verified (SHA-256 per chunk)",
        pack_read / plain_read
    );
}
