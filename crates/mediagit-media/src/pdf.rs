//! PDF page count, by a heuristic that reads at most the first and the last
//! MiB of the file and never parses the object graph:
//!
//! * every object whose dictionary has `/Type /Pages` is a node of the page
//!   tree, and its `/Count` is the number of pages below it; the root
//!   node's is the largest, so the answer is the largest such `/Count`;
//! * failing that, a linearized file's first object says `/N pages`.
//!
//! The page tree normally sits at the start (linearized files, most
//! writers) or at the end (incrementally updated files) of the file. It is
//! missed when it is in the middle of a large file or inside a compressed
//! object stream (PDF 1.5+); the page count is then left unset, which is
//! not reported as an error. A file without `%%EOF` near its end is
//! reported as truncated.

use std::io::{Read, Seek};

use crate::io::{find, PErr, PResult, Src};
use crate::Metadata;

const WINDOW: u64 = 1 << 20;

pub(crate) fn parse<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    m: &mut Metadata,
) -> PResult<()> {
    m.format = Some("PDF".into());
    let head = src.read_upto(0, WINDOW as usize)?;
    // Readers accept the header anywhere in the first KiB.
    if find(&head[..head.len().min(1024)], b"%PDF-", 0).is_none() {
        return Err(PErr("no %PDF- header".into()));
    }
    let tail_start = src.len.saturating_sub(WINDOW).max(head.len() as u64);
    let tail = if tail_start < src.len {
        src.read_vec(tail_start, (src.len - tail_start) as usize)?
    } else {
        Vec::new()
    };
    let best = [&head, &tail]
        .iter()
        .filter_map(|b| pages_count(b))
        .max()
        .or_else(|| linearized_pages(&head));
    m.pages = best;
    // A complete file ends with %%EOF (in its last KiB, by convention).
    let last = if tail.is_empty() { &head } else { &tail };
    if find(&last[last.len().saturating_sub(1024)..], b"%%EOF", 0).is_none() {
        return Err(PErr("no %%EOF marker (truncated?)".into()));
    }
    Ok(())
}

fn is_delim(c: u8) -> bool {
    c.is_ascii_whitespace() || b"/<>[]()%".contains(&c)
}

/// A non-negative integer after `/Key` at `pos` (after optional whitespace).
fn number_after(b: &[u8], pos: usize) -> Option<u32> {
    let mut p = pos;
    while b.get(p).is_some_and(u8::is_ascii_whitespace) {
        p += 1;
    }
    let start = p;
    while b.get(p).is_some_and(u8::is_ascii_digit) && p - start < 9 {
        p += 1;
    }
    std::str::from_utf8(b.get(start..p)?).ok()?.parse().ok()
}

/// The largest `/Count` of an object that is a `/Type /Pages` node. The
/// buffer is cut at every "obj" (which also ends "endobj"), so each piece
/// is at most one object's body; the scan is linear in the buffer.
fn pages_count(b: &[u8]) -> Option<u32> {
    let mut best: Option<u32> = None;
    let mut start = 0;
    loop {
        let end = find(b, b"obj", start).unwrap_or(b.len());
        let seg = &b[start..end];
        if is_pages_node(seg) {
            let mut c = 0;
            while let Some(i) = find(seg, b"/Count", c) {
                c = i + 6;
                if let Some(n) = number_after(seg, c) {
                    best = Some(best.map_or(n, |b| b.max(n)));
                }
            }
        }
        if end >= b.len() {
            break;
        }
        start = end + 3;
    }
    best
}

fn is_pages_node(seg: &[u8]) -> bool {
    let mut from = 0;
    while let Some(t) = find(seg, b"/Type", from) {
        from = t + 5;
        let mut p = from;
        while seg.get(p).is_some_and(u8::is_ascii_whitespace) {
            p += 1;
        }
        if seg.get(p..p + 6) == Some(b"/Pages") && seg.get(p + 6).is_none_or(|&c| is_delim(c)) {
            return true;
        }
    }
    false
}

fn linearized_pages(head: &[u8]) -> Option<u32> {
    let window = &head[..head.len().min(4096)];
    let l = find(window, b"/Linearized", 0)?;
    let end = find(window, b">>", l).unwrap_or(window.len());
    let dict = &window[l..end];
    let n = find(dict, b"/N", 0)?;
    if dict.get(n + 2).is_some_and(|&c| !is_delim(c)) {
        return None;
    }
    number_after(dict, n + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let pdf = b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
                    2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 12 >> endobj\n\
                    4 0 obj <</Type/Pages/Parent 2 0 R/Count 5>> endobj\n\
                    9 0 obj << /Type /Outlines /Count 40 >> endobj";
        assert_eq!(pages_count(pdf), Some(12));
        assert_eq!(pages_count(b"<< /Type /PagesX /Count 3 >>"), None);
        assert_eq!(pages_count(b"/Type /Pages"), None);
        assert_eq!(
            pages_count(&b"/Type /Pages /Count 2 ".repeat(100_000)),
            Some(2)
        );
        let lin = b"%PDF-1.4\n1 0 obj <</Linearized 1/L 1000/N 7/T 900>> endobj";
        assert_eq!(linearized_pages(lin), Some(7));
    }
}
