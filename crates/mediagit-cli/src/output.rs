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

/// A writer for text meant for a terminal that escapes control characters
/// (C0 but newline and tab, DEL, and the C1 range U+0080..U+009F, which
/// some terminals also obey) as `\u001b`: file names, branch names and
/// messages from a repository or a store may be hostile, and `ESC[2J` in a
/// file name must not clear the user's screen. The escape is also valid
/// inside JSON strings. Raw file content (`cat`) does not go through it.
pub struct SafeText<W: std::io::Write> {
    inner: W,
    /// A 0xC2 byte ended the last write: the start of a C1 control, or not.
    pending_c2: bool,
}

impl<W: std::io::Write> SafeText<W> {
    pub fn new(inner: W) -> Self {
        SafeText {
            inner,
            pending_c2: false,
        }
    }

    /// Writes `s` as it is, not escaped: only for text MediaGit made
    /// itself, such as [`color::paint`]'s (whose own text is escaped).
    pub fn raw(&mut self, s: &str) -> std::io::Result<()> {
        if self.pending_c2 {
            self.pending_c2 = false;
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.write_all(s.as_bytes())
    }
}

fn is_c0_control(b: u8) -> bool {
    (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f
}

impl<W: std::io::Write> std::io::Write for SafeText<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut start = 0;
        let mut i = 0;
        if self.pending_c2 {
            self.pending_c2 = false;
            match buf.first() {
                Some(&b) if (0x80..=0x9f).contains(&b) => {
                    write!(self.inner, "\\u{b:04x}")?;
                    start = 1;
                    i = 1;
                }
                _ => self.inner.write_all(&[0xc2])?,
            }
        }
        while i < buf.len() {
            let b = buf[i];
            if is_c0_control(b) {
                self.inner.write_all(&buf[start..i])?;
                write!(self.inner, "\\u{b:04x}")?;
                i += 1;
                start = i;
                continue;
            }
            if b == 0xc2 {
                match buf.get(i + 1) {
                    None => {
                        self.inner.write_all(&buf[start..i])?;
                        self.pending_c2 = true;
                        return Ok(buf.len());
                    }
                    Some(&c) if (0x80..=0x9f).contains(&c) => {
                        self.inner.write_all(&buf[start..i])?;
                        write!(self.inner, "\\u{c:04x}")?;
                        i += 2;
                        start = i;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            i += 1;
        }
        self.inner.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending_c2 {
            self.pending_c2 = false;
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

/// One JSON document, pretty-printed, then a newline. `out` is normally a
/// [`SafeText`]: serde_json escapes C0 controls itself; DEL and C1 controls
/// (left raw by JSON) become `\u007f`-style escapes, still valid JSON.
pub fn write_json(out: &mut impl std::io::Write, v: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

/// One JSON Lines record: a compact document on one line.
pub fn write_json_line(
    out: &mut impl std::io::Write,
    v: &impl serde::Serialize,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)
}

/// [`SafeText`] for one string (error messages, warnings).
pub fn safe(s: &str) -> String {
    let mut w = SafeText::new(Vec::with_capacity(s.len()));
    // Writing to a Vec cannot fail.
    let _ = std::io::Write::write_all(&mut w, s.as_bytes());
    let _ = std::io::Write::flush(&mut w);
    String::from_utf8(w.inner)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn control_characters_are_escaped_even_across_writes() {
        assert_eq!(safe("a\u{1b}[2Jb\tc\n"), "a\\u001b[2Jb\tc\n");
        assert_eq!(safe("x\u{9b}31m\u{7f}\r"), "x\\u009b31m\\u007f\\u000d");
        assert_eq!(safe("café ünï"), "café ünï");
        let mut w = SafeText::new(Vec::new());
        let csi = "\u{9b}".as_bytes();
        w.write_all(&[b'a', csi[0]]).unwrap();
        w.write_all(&[csi[1], b'b']).unwrap();
        w.write_all("é".as_bytes()).unwrap();
        w.flush().unwrap();
        assert_eq!(String::from_utf8(w.inner).unwrap(), "a\\u009bbé");
    }
}

/// Colour in what MediaGit prints, decided once at start (before any
/// pager replaces stdout): `--color=always|never`, else (`auto`) when the
/// stream is a terminal, `NO_COLOR` is unset or empty (no-color.org) and
/// `TERM` is not `dumb`.
pub mod color {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};

    static STDOUT: AtomicBool = AtomicBool::new(false);
    static STDERR: AtomicBool = AtomicBool::new(false);

    #[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
    pub enum When {
        Auto,
        Always,
        Never,
    }

    /// Decides for stdout and stderr.
    pub fn init(when: When) {
        let env_allows = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let (out, err) = match when {
            When::Always => (true, true),
            When::Never => (false, false),
            When::Auto => (
                env_allows && std::io::stdout().is_terminal(),
                env_allows && std::io::stderr().is_terminal(),
            ),
        };
        STDOUT.store(out, Ordering::Relaxed);
        STDERR.store(err, Ordering::Relaxed);
    }

    /// Styles, as Git colours the same things.
    #[derive(Clone, Copy)]
    pub enum Style {
        /// Staged changes, the current branch, additions.
        Green,
        /// Unstaged and untracked files, conflicts, deletions, `error:`.
        Red,
        /// Commit ids, `hint:`, modifications.
        Yellow,
        /// Ref names in log decorations.
        Cyan,
    }

    fn code(s: Style) -> &'static str {
        match s {
            Style::Green => "\x1b[32m",
            Style::Red => "\x1b[31m",
            Style::Yellow => "\x1b[33m",
            Style::Cyan => "\x1b[36m",
        }
    }

    fn wrap(on: bool, s: Style, text: &str) -> String {
        if on && !text.is_empty() {
            format!("{}{text}\x1b[m", code(s))
        } else {
            text.to_string()
        }
    }

    /// `text`, escaped as [`super::SafeText`] does, in style `s` when
    /// stdout is coloured: written with [`super::SafeText::raw`] (written
    /// through the escaping writer, the colour codes themselves would be
    /// escaped).
    pub fn paint(s: Style, text: &str) -> String {
        wrap(STDOUT.load(Ordering::Relaxed), s, &super::safe(text))
    }

    /// Whether stderr is coloured.
    pub fn stderr_on() -> bool {
        STDERR.load(Ordering::Relaxed)
    }

    /// [`paint`] for stderr.
    pub fn paint_err(s: Style, text: &str) -> String {
        wrap(STDERR.load(Ordering::Relaxed), s, &super::safe(text))
    }
}

/// Unix seconds as a local time, `2026-12-03 17:45:04 +0100`.
pub fn unix_local(secs: u64) -> String {
    match chrono::Local
        .timestamp_opt(secs.min(i64::MAX as u64) as i64, 0)
        .single()
    {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %z").to_string(),
        None => secs.to_string(),
    }
}
