//! Formatting helpers: sizes, dates, modes.
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use mediagit_format::index::IndexKind;
use mediagit_format::object::Timestamp;
use mediagit_format::Signature;

pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

pub fn mode_str(k: IndexKind) -> &'static str {
    match k {
        IndexKind::File => "100644",
        IndexKind::Executable => "100755",
        IndexKind::Symlink => "120000",
    }
}

/// Git-style date: `Mon Nov 23 13:45:04 2026 +0100`.
pub fn sig_date(s: &Signature) -> String {
    match signature_time(s) {
        Some(t) => t.format("%a %b %e %H:%M:%S %Y %z").to_string(),
        None => s.time.to_string(),
    }
}

/// ISO 8601 date with offset, for the reflog.
pub fn sig_date_iso(s: &Signature) -> String {
    match signature_time(s) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %z").to_string(),
        None => s.time.to_string(),
    }
}

fn signature_time(s: &Signature) -> Option<DateTime<FixedOffset>> {
    let off = FixedOffset::east_opt(s.tz_offset_minutes * 60)?;
    off.timestamp_opt(s.time, 0).single()
}

/// mtime as UTC RFC 3339 with nanoseconds: `2026-11-23T13:45:04.123456789Z`.
pub fn mtime_str(t: &Timestamp) -> String {
    match Utc.timestamp_opt(t.secs, t.nanos).single() {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        None => format!("{}.{:09}", t.secs, t.nanos),
    }
}

/// A signature for "now" in the local time zone.
pub fn now_signature(name: String, email: String) -> Signature {
    let now = chrono::Local::now();
    Signature {
        name,
        email,
        time: now.timestamp(),
        tz_offset_minutes: now.offset().local_minus_utc() / 60,
    }
}
