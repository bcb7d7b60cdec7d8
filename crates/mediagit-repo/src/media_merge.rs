//! Media-aware merging: what a photographer and a retoucher expect when
//! one of them re-tagged a photo and the other retouched it. A JPEG whose
//! metadata (APPn segments: EXIF, XMP, IPTC, ICC; comments) changed on one
//! side and whose image data (tables, frame, scans) changed on the other
//! is combined: the metadata of one, the image data of the other, checked
//! by decoding the result. An XMP sidecar (`.xmp`) merges property by
//! property. Anything else goes to the next strategy (a conflict by
//! default). Only files both sides changed reach here, so the content read
//! is that of a few files.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;

use mediagit_format::index::IndexKind;

use crate::error::{RepoError, Result};
use crate::merge::{Decision, MergeStrategy};
use crate::repo::Repository;
use crate::tree::FlatEntry;

/// Largest file read to combine (larger ones go to the next strategy).
const MAX_COMBINED: u64 = 256 << 20;
/// Largest XMP sidecar merged.
const MAX_XMP: u64 = 16 << 20;

/// The media-aware strategy, in front of `rest`.
pub struct MediaStrategy<'r> {
    repo: &'r Repository,
    rest: Box<dyn MergeStrategy + 'r>,
    /// Paths this strategy combined, for the report.
    combined: RefCell<Vec<String>>,
}

impl<'r> MediaStrategy<'r> {
    pub fn new(repo: &'r Repository, rest: Box<dyn MergeStrategy + 'r>) -> MediaStrategy<'r> {
        MediaStrategy {
            repo,
            rest,
            combined: RefCell::new(Vec::new()),
        }
    }

    /// The paths combined so far.
    pub fn combined(&self) -> Vec<String> {
        self.combined.borrow().clone()
    }

    fn read(&self, e: &FlatEntry, limit: u64) -> Result<Vec<u8>> {
        if e.size > limit {
            return Err(RepoError::Invalid(format!(
                "{} bytes: too large to merge",
                e.size
            )));
        }
        let mut out = Vec::with_capacity(e.size as usize);
        let mut r = crate::media::ContentReader::open(self.repo.odb()?, &e.manifest)?;
        r.by_ref()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|err| RepoError::io("read", "merge input", err))?;
        if out.len() as u64 != e.size {
            return Err(RepoError::Invalid("size differs from the tree's".into()));
        }
        Ok(out)
    }

    /// Stores `bytes` as a new file version like `like` (mode).
    fn store(&self, bytes: &[u8], like: &FlatEntry, path: &str) -> Result<FlatEntry> {
        let mut session = self.repo.odb()?.session();
        let e = crate::media::put_file(
            &mut |k, b| session.put_object(k, b),
            self.repo.config().chunking,
            bytes,
            &mut Vec::new(),
        )?;
        session.finish()?;
        // Its media record, as `add` would store it (best effort).
        let record = crate::media::sanitized(mediagit_media::extract(
            &mut std::io::Cursor::new(bytes),
            bytes.len() as u64,
            Some(path),
        ));
        let _ = self
            .repo
            .store_media_records(&BTreeMap::from([(e.content, record)]));
        Ok(FlatEntry {
            kind: like.kind,
            mtime: like.mtime,
            ..e
        })
    }

    fn merge_jpeg(
        &self,
        b: &FlatEntry,
        o: &FlatEntry,
        t: &FlatEntry,
        path: &str,
    ) -> Result<Option<FlatEntry>> {
        let (bb, ob, tb) = (
            self.read(b, MAX_COMBINED)?,
            self.read(o, MAX_COMBINED)?,
            self.read(t, MAX_COMBINED)?,
        );
        let (Some(bp), Some(op), Some(tp)) = (split_jpeg(&bb), split_jpeg(&ob), split_jpeg(&tb))
        else {
            return Ok(None);
        };
        let (meta_from, data_from, like) =
            if op.data == bp.data && op.meta != bp.meta && tp.meta == bp.meta && tp.data != bp.data
            {
                (&op, &tp, o)
            } else if tp.data == bp.data
                && tp.meta != bp.meta
                && op.meta == bp.meta
                && op.data != bp.data
            {
                (&tp, &op, o)
            } else {
                return Ok(None);
            };
        let mut merged = Vec::with_capacity(2 + meta_from.meta.len() + data_from.data.len());
        merged.extend_from_slice(&[0xFF, 0xD8]);
        // A JFIF APP0 stays right after the start of image, where readers
        // look for it; then the metadata, then the rest of the image data.
        let app0 = match data_from.data.get(..4) {
            Some([0xFF, 0xE0, hi, lo]) => 2 + usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 0,
        };
        merged.extend_from_slice(&data_from.data[..app0]);
        merged.extend_from_slice(&meta_from.meta);
        merged.extend_from_slice(&data_from.data[app0..]);
        // Checked by decoding: the result must decode to exactly the
        // pixels the image data's side decodes to (compared by hash: one
        // decoded image in memory at a time).
        let decoded = |bytes: &[u8]| {
            let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
            d.decode().ok().map(|px| {
                let info = d
                    .info()
                    .map(|i| (i.width, i.height, format!("{:?}", i.pixel_format)));
                (crate::codec::content_id(&px), info)
            })
        };
        let want = decoded(if std::ptr::eq(data_from, &op) {
            &ob
        } else {
            &tb
        });
        match (decoded(&merged), want) {
            (Some(got), Some(want)) if got == want => {}
            _ => return Ok(None),
        }
        Ok(Some(self.store(&merged, like, path)?))
    }

    fn merge_xmp(
        &self,
        b: &FlatEntry,
        o: &FlatEntry,
        t: &FlatEntry,
        path: &str,
    ) -> Result<Option<FlatEntry>> {
        let text = |e: &FlatEntry| -> Result<Option<String>> {
            Ok(String::from_utf8(self.read(e, MAX_XMP)?).ok())
        };
        let (Some(bt), Some(ot), Some(tt)) = (text(b)?, text(o)?, text(t)?) else {
            return Ok(None);
        };
        match merge_xmp_text(&bt, &ot, &tt) {
            Some(merged) => Ok(Some(self.store(merged.as_bytes(), o, path)?)),
            None => Ok(None),
        }
    }
}

impl MergeStrategy for MediaStrategy<'_> {
    fn name(&self) -> &str {
        "media"
    }

    fn decide(
        &self,
        path: &str,
        base: Option<&FlatEntry>,
        ours: Option<&FlatEntry>,
        theirs: Option<&FlatEntry>,
    ) -> Decision {
        if let (Some(b), Some(o), Some(t)) = (base, ours, theirs) {
            let files = [b, o, t].iter().all(|e| e.kind != IndexKind::Symlink);
            let lower = path.to_ascii_lowercase();
            let r = if !files {
                Ok(None)
            } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
                self.merge_jpeg(b, o, t, path)
            } else if lower.ends_with(".xmp") {
                self.merge_xmp(b, o, t, path)
            } else {
                Ok(None)
            };
            // A file that cannot be read or combined is left to the rest
            // (a conflict the user settles), never an error of the merge.
            if let Ok(Some(e)) = r {
                self.combined.borrow_mut().push(path.to_string());
                return Decision::Take(Some(e));
            }
        }
        self.rest.decide(path, base, ours, theirs)
    }
}

/// A JPEG as metadata (its APPn and COM segments, in order) and the rest
/// (every other segment, then the scans to the end of the file).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JpegParts {
    pub meta: Vec<u8>,
    pub data: Vec<u8>,
}

/// Splits a JPEG (`None`: not one, or a segment runs past the end).
pub(crate) fn split_jpeg(b: &[u8]) -> Option<JpegParts> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return None;
    }
    let mut parts = JpegParts {
        meta: Vec::new(),
        data: Vec::new(),
    };
    let mut pos = 2usize;
    loop {
        if *b.get(pos)? != 0xFF {
            return None;
        }
        // Fill bytes before a marker.
        while *b.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        let code = *b.get(pos + 1)?;
        match code {
            // Start of scan: the rest of the file is image data.
            0xDA => {
                parts.data.extend_from_slice(&b[pos..]);
                return Some(parts);
            }
            0x00 | 0xD8 | 0xD9 => return None,
            0x01 | 0xD0..=0xD7 => {
                parts.data.extend_from_slice(&b[pos..pos + 2]);
                pos += 2;
            }
            _ => {
                let len = usize::from(u16::from_be_bytes([*b.get(pos + 2)?, *b.get(pos + 3)?]));
                if len < 2 {
                    return None;
                }
                let end = pos.checked_add(2 + len)?;
                let seg = b.get(pos..end)?;
                // APP0 (JFIF) and APP14 (Adobe: the colour transform)
                // change how the scans decode: image data, not metadata.
                let meta = matches!(code, 0xE1..=0xED | 0xEF | 0xFE);
                if meta {
                    parts.meta.extend_from_slice(seg);
                } else {
                    parts.data.extend_from_slice(seg);
                }
                pos = end;
            }
        }
    }
}

/// One piece of an XMP document: a property (an attribute of an
/// `rdf:Description` on its own line, a one-line element, or an element
/// spanning lines up to its closing tag), or any other line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Field { key: String, text: String },
    Line(String),
}

/// The name `ns:Name` of a property line: `ns:Name="..."` or
/// `<ns:Name>...` / `<ns:Name ...>` (not `rdf:` structure, not closing).
fn property_key(line: &str) -> Option<(String, bool)> {
    let t = line.trim_start();
    let is_name = |s: &str| {
        let mut parts = s.splitn(2, ':');
        let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        ok(a) && ok(b) && !s.starts_with("rdf:") && !s.starts_with("x:") && !s.starts_with("xmlns")
    };
    if let Some(rest) = t.strip_prefix('<') {
        if rest.starts_with('/') || rest.starts_with('?') || rest.starts_with('!') {
            return None;
        }
        let name: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        return is_name(&name).then_some((name, false));
    }
    let eq = t.find("=\"")?;
    let name = &t[..eq];
    is_name(name).then(|| (name.to_string(), true))
}

/// Cuts an XMP document into pieces; `None` when a property's element
/// does not close.
fn pieces(text: &str) -> Option<Vec<Piece>> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        match property_key(line) {
            Some((key, true)) => {
                // An attribute; a `>` or `/>` closing the start tag stays
                // structure, apart from the value.
                let body = line.trim_end_matches(['\n', '\r']);
                let (field, tail) = match body.rfind('"') {
                    Some(q) => (&body[..=q], &body[q + 1..]),
                    None => return None,
                };
                out.push(Piece::Field {
                    key,
                    text: format!("{field}\n"),
                });
                if !tail.trim().is_empty() {
                    out.push(Piece::Line(format!(
                        "{}{}\n",
                        leading_ws(line),
                        tail.trim()
                    )));
                }
                i += 1;
            }
            Some((key, false)) => {
                let t = line.trim();
                let self_closed = t.ends_with("/>") || t.contains(&format!("</{key}>"));
                let mut text = String::from(line);
                let mut j = i + 1;
                if !self_closed {
                    let close = format!("</{key}>");
                    loop {
                        let l = lines.get(j)?;
                        text.push_str(l);
                        j += 1;
                        if l.contains(&close) {
                            break;
                        }
                    }
                }
                out.push(Piece::Field { key, text });
                i = j;
            }
            None => {
                out.push(Piece::Line(line.to_string()));
                i += 1;
            }
        }
    }
    Some(out)
}

fn leading_ws(s: &str) -> &str {
    &s[..s.len() - s.trim_start().len()]
}

/// Three-way merge of XMP documents property by property: each property
/// takes the side that changed it; a property both changed differently
/// fails the merge (`None`), as does a change to the document's other
/// lines on both sides. The result is `ours` with `theirs`' changes.
pub(crate) fn merge_xmp_text(base: &str, ours: &str, theirs: &str) -> Option<String> {
    // One description per document: with several, one property can sit in
    // either (as an attribute of one, an element of the other), which a
    // merge by name would not see.
    if [base, ours, theirs]
        .iter()
        .any(|t| t.matches("<rdf:Description").count() > 1)
    {
        return None;
    }
    let (bp, op, tp) = (pieces(base)?, pieces(ours)?, pieces(theirs)?);
    let fields = |ps: &[Piece]| -> Option<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        for p in ps {
            if let Piece::Field { key, text } = p {
                // A property twice (in two descriptions): not merged here.
                if m.insert(key.clone(), text.clone()).is_some() {
                    return None;
                }
            }
        }
        Some(m)
    };
    let structure = |ps: &[Piece]| -> Vec<String> {
        ps.iter()
            .filter_map(|p| match p {
                Piece::Line(l) => Some(l.trim().to_string()),
                Piece::Field { .. } => None,
            })
            .collect()
    };
    let (bf, of, tf) = (fields(&bp)?, fields(&op)?, fields(&tp)?);
    // The skeleton is ours; theirs may not have changed it differently.
    let (bs, os, ts) = (structure(&bp), structure(&op), structure(&tp));
    if ts != bs && os != ts {
        return None;
    }
    let mut result: BTreeMap<String, Option<String>> = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> =
        bf.keys().chain(of.keys()).chain(tf.keys()).collect();
    for k in keys {
        let (b, o, t) = (bf.get(k), of.get(k), tf.get(k));
        let norm = |v: Option<&String>| v.map(|s| s.trim().to_string());
        let chosen = if norm(o) == norm(t) || norm(t) == norm(b) {
            o.cloned()
        } else if norm(o) == norm(b) {
            t.cloned()
        } else {
            return None;
        };
        result.insert(k.clone(), chosen);
    }
    // Ours, each property replaced or removed as chosen; a property only
    // theirs has comes after the nearest property of its kind before it in
    // theirs that ours has too.
    // Attributes and elements are placed apart: an attribute only among
    // attributes (inside a start tag), an element only among elements (a
    // `>` closing a start tag lies between the two kinds).
    let is_attr = |ps: &[Piece], k: &str| {
        ps.iter().any(|p| matches!(p, Piece::Field { key, text } if key == k && !text.trim_start().starts_with('<')))
    };
    let mut groups: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    let (mut attr_anchor, mut elem_anchor): (Option<String>, Option<String>) = (None, None);
    for p in &tp {
        if let Piece::Field { key, text } = p {
            let attr = !text.trim_start().starts_with('<');
            if of.contains_key(key) {
                if is_attr(&op, key) != attr {
                    return None;
                }
                match attr {
                    true => attr_anchor = Some(key.clone()),
                    false => elem_anchor = Some(key.clone()),
                }
            } else if let Some(Some(t)) = result.get(key) {
                let anchor = match attr {
                    true => attr_anchor.clone(),
                    false => elem_anchor.clone(),
                };
                // With no property of its kind before it in ours, there is
                // no safe place: left to the next strategy.
                let anchor = anchor?;
                groups.entry(Some(anchor)).or_default().push(t.clone());
            }
        }
    }
    let mut out = String::new();
    for p in &op {
        match p {
            Piece::Line(l) => out.push_str(l),
            Piece::Field { key, text } => {
                match result.get(key) {
                    Some(Some(chosen)) if chosen.trim() != text.trim() => out.push_str(chosen),
                    Some(None) => {}
                    _ => out.push_str(text),
                }
                for t in groups.remove(&Some(key.clone())).unwrap_or_default() {
                    out.push_str(&t);
                }
            }
        }
    }
    // Every added property must have found its place, and the result
    // must still be well formed.
    if !groups.is_empty() || !well_formed(&out) {
        return None;
    }
    Some(out)
}

/// Whether `xml`'s tags nest and close properly (names matched; no `<`
/// inside a tag outside a quoted value). Not a full XML parser: the check
/// that a merge did not break the document's structure.
pub(crate) fn well_formed(xml: &str) -> bool {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        // The tag's end: the first `>` outside quotes, with no `<` before.
        let (mut quote, mut end) = (None, None);
        for (i, c) in rest.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '<') => return false,
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { return false };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let name_of = |t: &'_ str| -> String {
            t.trim_start_matches('/')
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect()
        };
        if tag.starts_with('/') {
            let name = name_of(tag);
            match stack.pop() {
                Some(open) if name_of(open) == name => {}
                _ => return false,
            }
        } else if !tag.ends_with('/') {
            stack.push(tag);
        }
    }
    stack.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    xmp:Rating="3"
    xmp:Label="Red"
    crs:Exposure2012="+0.50"
    crs:Contrast2012="+10">
   <dc:subject>
    <rdf:Bag>
     <rdf:li>beach</rdf:li>
    </rdf:Bag>
   </dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"#;

    #[test]
    fn xmp_merges_property_by_property_even_on_adjacent_lines() {
        let ours = BASE.replace(r#"xmp:Rating="3""#, r#"xmp:Rating="5""#);
        let theirs = BASE.replace(r#"xmp:Label="Red""#, r#"xmp:Label="Green""#);
        let m = merge_xmp_text(BASE, &ours, &theirs).unwrap();
        assert!(m.contains(r#"xmp:Rating="5""#), "{m}");
        assert!(m.contains(r#"xmp:Label="Green""#), "{m}");
        assert!(m.contains(r#"crs:Contrast2012="+10""#), "{m}");
        // The last attribute's `>` still closes the start tag.
        assert!(
            m.contains("crs:Contrast2012=\"+10\"\n") && m.contains(">\n   <dc:subject>"),
            "{m}"
        );
        // A keyword block changed on one side, a value on the other.
        let theirs = BASE.replace(
            "<rdf:li>beach</rdf:li>",
            "<rdf:li>beach</rdf:li>\n     <rdf:li>sunset</rdf:li>",
        );
        let m = merge_xmp_text(BASE, &ours, &theirs).unwrap();
        assert!(
            m.contains("sunset") && m.contains(r#"xmp:Rating="5""#),
            "{m}"
        );
        // Added and removed properties.
        let theirs = BASE.replace(
            "    xmp:Label=\"Red\"\n",
            "    xmp:Label=\"Red\"\n    xmp:CreatorTool=\"darktable\"\n",
        );
        let ours2 = BASE.replace("    crs:Exposure2012=\"+0.50\"\n", "");
        let m = merge_xmp_text(BASE, &ours2, &theirs).unwrap();
        assert!(
            m.contains("darktable") && !m.contains("Exposure2012"),
            "{m}"
        );
        let pos = |s: &str| m.find(s).unwrap();
        assert!(
            pos("xmp:Label") < pos("CreatorTool") && pos("CreatorTool") < pos("Contrast2012"),
            "{m}"
        );
    }

    #[test]
    fn an_added_element_never_lands_inside_a_start_tag() {
        let base = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n <rdf:RDF>\n  <rdf:Description rdf:about=\"\"\n    xmp:Label=\"Red\"\n    xmp:Rating=\"3\">\n   <dc:title>T</dc:title>\n  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n";
        assert!(well_formed(base));
        let ours = base.replace("xmp:Rating=\"3\"", "xmp:Rating=\"5\"");
        let theirs = base.replace(
            "   <dc:title>T</dc:title>\n",
            "   <dc:subject><rdf:Bag><rdf:li>kw</rdf:li></rdf:Bag></dc:subject>\n   <dc:title>T</dc:title>\n",
        );
        // The new element has no element of ours before it: not merged.
        assert!(merge_xmp_text(base, &ours, &theirs).is_none());
        // After an element it is placed among the elements.
        let theirs = base.replace(
            "   <dc:title>T</dc:title>\n",
            "   <dc:title>T</dc:title>\n   <dc:subject><rdf:Bag><rdf:li>kw</rdf:li></rdf:Bag></dc:subject>\n",
        );
        let m = merge_xmp_text(base, &ours, &theirs).unwrap();
        assert!(well_formed(&m), "{m}");
        assert!(
            m.contains("xmp:Rating=\"5\"") && m.contains("<rdf:li>kw</rdf:li>"),
            "{m}"
        );
        assert!(
            m.find("<dc:subject>").unwrap() > m.find("<dc:title>").unwrap(),
            "{m}"
        );
        // The checker itself.
        assert!(!well_formed("<a x=\"1\"\n<b/>\n>"));
        assert!(!well_formed("<a><b></a></b>"));
        assert!(well_formed("<?xpacket begin=\"\"?><a y=\"<>\"><b/></a>"));
    }

    #[test]
    fn xmp_conflicts_when_both_change_one_property() {
        let ours = BASE.replace(r#"xmp:Rating="3""#, r#"xmp:Rating="5""#);
        let theirs = BASE.replace(r#"xmp:Rating="3""#, r#"xmp:Rating="1""#);
        assert!(merge_xmp_text(BASE, &ours, &theirs).is_none());
        // Two descriptions: one property may live in either; not merged.
        let two = BASE.replace(
            "  </rdf:Description>\n",
            "  </rdf:Description>\n  <rdf:Description rdf:about=\"\">\n  </rdf:Description>\n",
        );
        let ours2 = two.replace(r#"xmp:Rating="3""#, r#"xmp:Rating="4""#);
        let theirs2 = two.replace(r#"xmp:Label="Red""#, r#"xmp:Label="Blue""#);
        assert!(merge_xmp_text(&two, &ours2, &theirs2).is_none());
        // The same change on both sides is no conflict.
        assert!(merge_xmp_text(BASE, &ours, &ours).is_some());
        // Garbage never panics.
        assert!(merge_xmp_text("<a:b>\n", "<a:b>\n", "x").is_none());
    }

    #[test]
    fn jpeg_splits_into_metadata_and_data() {
        let seg = |code: u8, body: &[u8]| {
            let mut v = vec![0xFF, code];
            v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            v.extend_from_slice(body);
            v
        };
        let mut j = vec![0xFF, 0xD8];
        j.extend(seg(0xE1, b"Exif\0\0abc"));
        j.extend(seg(0xDB, b"tables"));
        j.extend(seg(0xFE, b"comment"));
        j.extend(seg(0xDA, b"scan"));
        j.extend_from_slice(b"entropy\xFF\xD9");
        let p = split_jpeg(&j).unwrap();
        assert_eq!(
            p.meta,
            [seg(0xE1, b"Exif\0\0abc"), seg(0xFE, b"comment")].concat()
        );
        assert!(p.data.starts_with(&seg(0xDB, b"tables")));
        assert!(p.data.ends_with(b"entropy\xFF\xD9"));
        assert!(split_jpeg(&j[..10]).is_none());
        assert!(split_jpeg(b"not a jpeg").is_none());
    }
}
