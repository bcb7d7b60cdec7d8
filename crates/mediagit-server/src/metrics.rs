//! Counters for `GET /metrics` (Prometheus text format 0.0.4).
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the transfer duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The backups of one repository (`serve --backup`).
#[derive(Default, Clone)]
struct BackupStat {
    /// Unix seconds of the last run that ended well (nothing to do counts).
    last_success: Option<f64>,
    /// Seconds the last run took.
    last_duration: f64,
    bytes: u64,
    failures: u64,
}

#[derive(Default)]
pub struct Metrics {
    /// repository -> its backups.
    backups: Mutex<BTreeMap<String, BackupStat>>,
    /// (route, method, status) -> requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// direction -> durations of whole object transfers.
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// error code -> answers with that code.
    errors: Mutex<BTreeMap<String, u64>>,
    /// lock operation -> count.
    lock_ops: Mutex<BTreeMap<String, u64>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub active_transfers: AtomicI64,
    pub verify_failures: AtomicU64,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    if let Ok(mut m) = m.lock() {
        *m.entry(k).or_default() += 1;
    }
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts an object transfer while it runs.
pub struct Transfer<'a>(&'a Metrics);

impl Drop for Transfer<'_> {
    fn drop(&mut self) {
        self.0.active_transfers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn request(&self, route: &str, method: &str, status: u16) {
        bump(
            &self.requests,
            (route.to_string(), method.to_string(), status),
        );
    }

    /// A whole object transfer (`upload` or `download`) ended after `took`.
    pub fn transfer_done(&self, direction: &str, took: Duration) {
        if let Ok(mut m) = self.durations.lock() {
            let h = m.entry(direction.to_string()).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
    }

    pub fn error(&self, code: &str) {
        bump(&self.errors, code.to_string());
    }

    /// A backup run of `repository` ended (`ok`), after `took`, having
    /// copied `bytes`, at `now` (Unix seconds).
    pub fn backup_done(&self, repository: &str, ok: bool, took: Duration, bytes: u64, now: f64) {
        if let Ok(mut m) = self.backups.lock() {
            let e = m.entry(repository.to_string()).or_default();
            e.last_duration = took.as_secs_f64();
            if ok {
                e.last_success = Some(now);
                e.bytes += bytes;
            } else {
                e.failures += 1;
            }
        }
    }

    pub fn lock_op(&self, op: &str) {
        bump(&self.lock_ops, op.to_string());
    }

    pub fn transfer(&self) -> Transfer<'_> {
        self.active_transfers.fetch_add(1, Ordering::Relaxed);
        Transfer(self)
    }

    /// The text `GET /metrics` answers; `repositories`: how many
    /// repositories this server has opened since it started.
    pub fn render(&self, repositories: usize) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP mediagit_requests_total Requests answered, by route, method and status."
        );
        let _ = writeln!(o, "# TYPE mediagit_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((r, meth, s), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "mediagit_requests_total{{route=\"{}\",method=\"{}\",status=\"{s}\"}} {n}",
                    label(r),
                    label(meth)
                );
            }
        }
        let _ = writeln!(o, "# HELP mediagit_transfer_duration_seconds Durations of object uploads and downloads, first byte to last.");
        let _ = writeln!(o, "# TYPE mediagit_transfer_duration_seconds histogram");
        if let Ok(m) = self.durations.lock() {
            for (r, h) in m.iter() {
                let r = label(r);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "mediagit_transfer_duration_seconds_bucket{{direction=\"{r}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "mediagit_transfer_duration_seconds_bucket{{direction=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "mediagit_transfer_duration_seconds_sum{{direction=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "mediagit_transfer_duration_seconds_count{{direction=\"{r}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP mediagit_errors_total Error answers, by error code."
        );
        let _ = writeln!(o, "# TYPE mediagit_errors_total counter");
        if let Ok(m) = self.errors.lock() {
            for (c, n) in m.iter() {
                let _ = writeln!(o, "mediagit_errors_total{{code=\"{}\"}} {n}", label(c));
            }
        }
        let _ = writeln!(
            o,
            "# HELP mediagit_lock_operations_total File lock operations, by operation."
        );
        let _ = writeln!(o, "# TYPE mediagit_lock_operations_total counter");
        if let Ok(m) = self.lock_ops.lock() {
            for (c, n) in m.iter() {
                let _ = writeln!(
                    o,
                    "mediagit_lock_operations_total{{op=\"{}\"}} {n}",
                    label(c)
                );
            }
        }
        if let Ok(m) = self.backups.lock() {
            if !m.is_empty() {
                type Get = fn(&BackupStat) -> Option<String>;
                let series: [(&str, &str, &str, Get); 4] = [
                    (
                        "mediagit_backup_last_success_timestamp_seconds",
                        "When the last backup of each repository ended well (Unix time); alert when it is too old.",
                        "gauge",
                        |b| b.last_success.map(|t| format!("{t:.3}")),
                    ),
                    (
                        "mediagit_backup_duration_seconds",
                        "How long the last backup run of each repository took.",
                        "gauge",
                        |b| Some(format!("{:.3}", b.last_duration)),
                    ),
                    (
                        "mediagit_backup_bytes_total",
                        "Bytes copied to the backup target, by repository.",
                        "counter",
                        |b| Some(b.bytes.to_string()),
                    ),
                    (
                        "mediagit_backup_failures_total",
                        "Backup runs that failed, by repository.",
                        "counter",
                        |b| Some(b.failures.to_string()),
                    ),
                ];
                for (name, help, kind, get) in series {
                    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
                    for (r, b) in m.iter() {
                        if let Some(v) = get(b) {
                            let _ = writeln!(o, "{name}{{repository=\"{}\"}} {v}", label(r));
                        }
                    }
                }
            }
        }
        for (name, help, kind, v) in [
            (
                "mediagit_bytes_received_total",
                "Object bytes received in request bodies.",
                "counter",
                self.bytes_in.load(Ordering::Relaxed) as i64,
            ),
            (
                "mediagit_bytes_sent_total",
                "Object bytes sent in answers.",
                "counter",
                self.bytes_out.load(Ordering::Relaxed) as i64,
            ),
            (
                "mediagit_active_transfers",
                "Object uploads and downloads running now.",
                "gauge",
                self.active_transfers.load(Ordering::Relaxed),
            ),
            (
                "mediagit_pack_verify_failures_total",
                "Uploaded packs refused by verification.",
                "counter",
                self.verify_failures.load(Ordering::Relaxed) as i64,
            ),
            (
                "mediagit_repositories",
                "Repositories this server has opened since it started.",
                "gauge",
                repositories as i64,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        o
    }
}
