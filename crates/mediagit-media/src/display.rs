//! Human-readable views of a [`Metadata`]: the field list of `show`, the
//! one-column summary of `ls-files --media`, and the change list of `diff`.

use crate::{AudioTrack, Kind, Metadata};

/// Layer names listed in a field value before "+N more".
const SHOWN_LAYERS: usize = 20;

/// A number with at most `decimals` decimals, trailing zeros removed.
pub(crate) fn num(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// "8.0 s", "2 min 05 s", "1 h 02 min 05 s".
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let t = secs.round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else {
        format!("{m} min {s:02} s")
    }
}

/// "48 kHz", "44.1 kHz", "800 Hz".
pub(crate) fn sample_rate(hz: u32) -> String {
    if hz >= 1000 {
        format!("{} kHz", num(f64::from(hz) / 1000.0, 3))
    } else {
        format!("{hz} Hz")
    }
}

fn bit_rate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{} Mb/s", num(bps as f64 / 1e6, 1))
    } else {
        format!("{} kb/s", num(bps as f64 / 1e3, 0))
    }
}

fn dims(m: &Metadata) -> Option<String> {
    Some(format!("{}x{}", m.width?, m.height?))
}

/// "Canon EOS R5" from make "Canon" and model "EOS R5" (or model "Canon
/// EOS R5": the make is not repeated).
pub(crate) fn camera(m: &Metadata) -> Option<String> {
    match (m.camera_make.as_deref(), m.camera_model.as_deref()) {
        (Some(make), Some(model)) => {
            let first = make.split_whitespace().next().unwrap_or(make);
            if model.to_lowercase().starts_with(&first.to_lowercase()) {
                Some(model.to_string())
            } else {
                Some(format!("{make} {model}"))
            }
        }
        (Some(x), None) | (None, Some(x)) => Some(x.to_string()),
        (None, None) => None,
    }
}

fn gps(m: &Metadata) -> Option<String> {
    let g = m.gps.as_ref()?;
    let mut s = format!("{:.4}, {:.4}", g.lat, g.lon);
    if let Some(a) = g.alt {
        s.push_str(&format!(", {} m", num(a, 1)));
    }
    Some(s)
}

/// "AAC, 2 ch, 48 kHz" (", 24-bit" for lossless and PCM tracks).
fn audio_track(a: &AudioTrack) -> String {
    let mut parts = Vec::new();
    parts.push(a.codec.clone().unwrap_or_else(|| "?".into()));
    if let Some(c) = a.channels {
        parts.push(format!("{c} ch"));
    }
    if let Some(r) = a.sample_rate {
        parts.push(sample_rate(r));
    }
    if let Some(b) = a.bit_depth {
        parts.push(format!("{b}-bit"));
    }
    parts.join(", ")
}

fn layers(m: &Metadata) -> Option<String> {
    let count = m.layer_count.unwrap_or(m.layers.len() as u32);
    if count == 0 && m.layers.is_empty() {
        return m.layer_count.map(|c| c.to_string());
    }
    let mut names: Vec<String> = m
        .layers
        .iter()
        .take(SHOWN_LAYERS)
        .map(|l| {
            let n = if l.name.is_empty() {
                "(unnamed)"
            } else {
                &l.name
            };
            if l.visible {
                n.to_string()
            } else {
                format!("{n} (hidden)")
            }
        })
        .collect();
    if (count as usize) > SHOWN_LAYERS {
        names.push(format!("+{} more", count as usize - SHOWN_LAYERS));
    }
    if names.is_empty() {
        Some(count.to_string())
    } else {
        Some(format!("{count}: {}", names.join(", ")))
    }
}

/// The fields of a record for display, in display order, with human
/// values: ("kind", "video"), ("dimensions", "3840x2160"), ("duration",
/// "8.0 s"), ("audio", "AAC, 2 ch, 48 kHz") (one per track)...
pub fn fields(m: &Metadata) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut push = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k, v));
        }
    };
    push("kind", Some(m.kind.as_str().into()));
    push("format", m.format.clone());
    push("type", m.mime.clone());
    push("dimensions", dims(m));
    push("duration", m.duration.map(duration));
    if m.container.as_deref() != m.format.as_deref() {
        push("container", m.container.clone());
    }
    push("video codec", m.video_codec.clone());
    push(
        "frame rate",
        m.frame_rate.map(|f| format!("{} fps", num(f, 3))),
    );
    push("bit rate", m.bit_rate.map(bit_rate));
    for a in m.audio.iter().take(crate::MAX_AUDIO_TRACKS) {
        push("audio", Some(audio_track(a)));
    }
    push("color space", m.color_space.clone());
    push("color mode", m.color_mode.clone());
    push("bit depth", m.bit_depth.map(|b| format!("{b}-bit")));
    push("orientation", m.orientation.map(|o| o.to_string()));
    push("camera", camera(m));
    push("lens", m.lens.clone());
    push("taken", m.taken.clone());
    push("exposure", m.exposure.as_ref().map(|e| format!("{e} s")));
    push("aperture", m.f_number.map(|f| format!("f/{}", num(f, 1))));
    push("iso", m.iso.map(|i| i.to_string()));
    push("gps", gps(m));
    push("created", m.created.clone());
    push("title", m.title.clone());
    push("artist", m.artist.clone());
    push("album", m.album.clone());
    push("layers", layers(m));
    push("pages", m.pages.map(|p| p.to_string()));
    push("unreadable metadata", m.unreadable.clone());
    out
}

/// One short column for `ls-files --media`: "image 6000x4000 Canon EOS R5",
/// "video 3840x2160 HEVC 8.0 s", "audio 48 kHz 2 ch 5.0 s", "design
/// 2000x1000 3 layers", "document 12 pages"; "-" for other files.
pub fn summary(m: &Metadata) -> String {
    let mut parts: Vec<String> = Vec::new();
    match m.kind {
        Kind::Other => return "-".into(),
        Kind::Image => {
            parts.extend(dims(m));
            parts.extend(camera(m));
        }
        Kind::Video => {
            parts.extend(dims(m));
            parts.extend(m.video_codec.clone());
            parts.extend(m.duration.map(duration));
        }
        Kind::Audio => {
            if let Some(a) = m.audio.first() {
                parts.extend(a.sample_rate.map(sample_rate));
                parts.extend(a.channels.map(|c| format!("{c} ch")));
            }
            parts.extend(m.duration.map(duration));
        }
        Kind::Design => {
            parts.extend(dims(m));
            if let Some(n) = m.layer_count {
                parts.push(format!("{n} layer{}", if n == 1 { "" } else { "s" }));
            }
        }
        Kind::Document => {
            if let Some(n) = m.pages {
                parts.push(format!("{n} page{}", if n == 1 { "" } else { "s" }));
            }
        }
    }
    if m.unreadable.is_some() {
        parts.push("(unreadable)".into());
    }
    let mut s = m.kind.as_str().to_string();
    for p in parts {
        s.push(' ');
        s.push_str(&p);
    }
    s
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "(none)".into())
}

/// What changed between two records, one line per change: "1920x1080 ->
/// 3840x2160", "H.264 -> HEVC", "5.0 s -> 8.0 s", "48 kHz -> 44.1 kHz",
/// "EXIF: date taken changed", "GPS removed", "camera: Canon EOS R5 ->
/// Sony A7", "layers: +Glow, -Old logo", "layer Logo hidden", "pages: 10 ->
/// 12". Empty when nothing differs.
pub fn changes(old: &Metadata, new: &Metadata) -> Vec<String> {
    let mut out = Vec::new();
    // (label or "" for self-explanatory values, old, new)
    let mut cmp = |label: &str, a: Option<String>, b: Option<String>| {
        if a != b {
            let line = format!("{} -> {}", opt(a), opt(b));
            out.push(if label.is_empty() {
                line
            } else {
                format!("{label}: {line}")
            });
        }
    };
    cmp(
        "kind",
        Some(old.kind.as_str().into()),
        Some(new.kind.as_str().into()),
    );
    cmp("format", old.format.clone(), new.format.clone());
    cmp("", dims(old), dims(new));
    cmp("", old.video_codec.clone(), new.video_codec.clone());
    cmp("", old.duration.map(duration), new.duration.map(duration));
    cmp(
        "frame rate",
        old.frame_rate.map(|f| format!("{} fps", num(f, 3))),
        new.frame_rate.map(|f| format!("{} fps", num(f, 3))),
    );
    // Audio: the first track's parameters, then the track count.
    let (a, b) = (old.audio.first(), new.audio.first());
    cmp(
        "audio codec",
        a.and_then(|t| t.codec.clone()),
        b.and_then(|t| t.codec.clone()),
    );
    cmp(
        "",
        a.and_then(|t| t.sample_rate).map(sample_rate),
        b.and_then(|t| t.sample_rate).map(sample_rate),
    );
    cmp(
        "channels",
        a.and_then(|t| t.channels).map(|c| c.to_string()),
        b.and_then(|t| t.channels).map(|c| c.to_string()),
    );
    if old.audio.len() != new.audio.len() && a.is_some() && b.is_some() {
        cmp(
            "audio tracks",
            Some(old.audio.len().to_string()),
            Some(new.audio.len().to_string()),
        );
    }
    cmp(
        "color space",
        old.color_space.clone(),
        new.color_space.clone(),
    );
    cmp("color mode", old.color_mode.clone(), new.color_mode.clone());
    cmp(
        "bit depth",
        old.bit_depth.map(|b| format!("{b}-bit")),
        new.bit_depth.map(|b| format!("{b}-bit")),
    );
    cmp(
        "orientation",
        old.orientation.map(|o| o.to_string()),
        new.orientation.map(|o| o.to_string()),
    );
    cmp("camera", camera(old), camera(new));
    cmp("lens", old.lens.clone(), new.lens.clone());
    cmp("exposure", old.exposure.clone(), new.exposure.clone());
    cmp(
        "aperture",
        old.f_number.map(|f| format!("f/{}", num(f, 1))),
        new.f_number.map(|f| format!("f/{}", num(f, 1))),
    );
    cmp(
        "ISO",
        old.iso.map(|i| i.to_string()),
        new.iso.map(|i| i.to_string()),
    );
    cmp("created", old.created.clone(), new.created.clone());
    cmp("title", old.title.clone(), new.title.clone());
    cmp("artist", old.artist.clone(), new.artist.clone());
    cmp("album", old.album.clone(), new.album.clone());
    match (&old.taken, &new.taken) {
        (Some(a), Some(b)) if a != b => out.push("EXIF: date taken changed".into()),
        (Some(_), None) => out.push("EXIF: date taken removed".into()),
        (None, Some(_)) => out.push("EXIF: date taken added".into()),
        _ => {}
    }
    match (&old.gps, &new.gps) {
        (Some(_), None) => out.push("GPS removed".into()),
        (None, Some(_)) => out.push("GPS added".into()),
        (Some(a), Some(b)) if a != b => out.push(format!(
            "GPS: {} -> {}",
            gps(old).unwrap_or_default(),
            gps(new).unwrap_or_default()
        )),
        _ => {}
    }
    layer_changes(old, new, &mut out);
    if old.pages != new.pages {
        out.push(format!(
            "pages: {} -> {}",
            opt(old.pages.map(|p| p.to_string())),
            opt(new.pages.map(|p| p.to_string()))
        ));
    }
    match (&old.unreadable, &new.unreadable) {
        (None, Some(r)) => out.push(format!("metadata now unreadable: {r}")),
        (Some(_), None) => out.push("metadata readable again".into()),
        _ => {}
    }
    out
}

fn cap_layers(m: &Metadata) -> &[crate::Layer] {
    &m.layers[..m.layers.len().min(crate::MAX_LAYERS)]
}

fn layer_changes(old: &Metadata, new: &Metadata, out: &mut Vec<String>) {
    // Names added and removed (as multisets), then visibility of the
    // layers present in both (matched by name, in order).
    // (Records are capped at MAX_LAYERS layers when extracted; a record
    // from elsewhere is cut to that here, which keeps this quadratic
    // matching cheap.)
    let (old_layers, new_layers) = (cap_layers(old), cap_layers(new));
    let mut removed: Vec<&str> = old_layers.iter().map(|l| l.name.as_str()).collect();
    let mut added: Vec<&str> = Vec::new();
    for l in new_layers {
        if let Some(i) = removed.iter().position(|n| *n == l.name) {
            removed.remove(i);
        } else {
            added.push(&l.name);
        }
    }
    if !added.is_empty() || !removed.is_empty() {
        let mut items: Vec<String> = added.iter().map(|n| format!("+{n}")).collect();
        items.extend(removed.iter().map(|n| format!("-{n}")));
        if items.len() > SHOWN_LAYERS {
            let more = items.len() - SHOWN_LAYERS;
            items.truncate(SHOWN_LAYERS);
            items.push(format!("and {more} more"));
        }
        out.push(format!("layers: {}", items.join(", ")));
    } else if old.layer_count != new.layer_count {
        out.push(format!(
            "layers: {} -> {}",
            opt(old.layer_count.map(|c| c.to_string())),
            opt(new.layer_count.map(|c| c.to_string()))
        ));
    }
    let mut used = vec![false; new_layers.len()];
    let mut flips = 0;
    for l in old_layers {
        let hit = new_layers
            .iter()
            .enumerate()
            .position(|(i, n)| !used[i] && n.name == l.name);
        if let Some(i) = hit {
            used[i] = true;
            let n = &new_layers[i];
            if n.visible != l.visible {
                flips += 1;
                if flips <= SHOWN_LAYERS {
                    out.push(format!(
                        "layer {} {}",
                        n.name,
                        if n.visible { "shown" } else { "hidden" }
                    ));
                }
            }
        }
    }
    if flips > SHOWN_LAYERS {
        out.push(format!(
            "{} more layers shown or hidden",
            flips - SHOWN_LAYERS
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(num(25.0, 3), "25");
        assert_eq!(num(29.97002997, 3), "29.97");
        assert_eq!(duration(8.0), "8.0 s");
        assert_eq!(duration(125.2), "2 min 05 s");
        assert_eq!(duration(3725.0), "1 h 02 min 05 s");
        assert_eq!(sample_rate(44_100), "44.1 kHz");
        assert_eq!(sample_rate(48_000), "48 kHz");
        assert_eq!(sample_rate(22_050), "22.05 kHz");
        assert_eq!(bit_rate(128_000), "128 kb/s");
        assert_eq!(bit_rate(5_260_000), "5.3 Mb/s");
    }
}
