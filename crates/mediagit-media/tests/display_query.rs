//! `fields`, `summary`, `changes` and the `--where` query language.

use mediagit_media::{
    changes, fields, summary, AudioTrack, Gps, Kind, Layer, Metadata, Query, QueryError,
};

fn photo() -> Metadata {
    Metadata {
        kind: Kind::Image,
        mime: Some("image/jpeg".into()),
        format: Some("JPEG".into()),
        width: Some(6000),
        height: Some(4000),
        orientation: Some(6),
        color_space: Some("sRGB".into()),
        bit_depth: Some(8),
        camera_make: Some("Canon".into()),
        camera_model: Some("EOS R5".into()),
        lens: Some("RF24-70mm F2.8 L IS USM".into()),
        taken: Some("2024-05-01T12:34:56".into()),
        exposure: Some("1/250".into()),
        f_number: Some(2.8),
        iso: Some(400),
        gps: Some(Gps {
            lat: 48.858_37,
            lon: 2.294_481,
            alt: None,
        }),
        ..Metadata::default()
    }
}

fn video() -> Metadata {
    Metadata {
        kind: Kind::Video,
        mime: Some("video/mp4".into()),
        format: Some("MP4".into()),
        container: Some("MP4".into()),
        width: Some(3840),
        height: Some(2160),
        duration: Some(8.0),
        video_codec: Some("HEVC".into()),
        frame_rate: Some(25.0),
        bit_rate: Some(45_000_000),
        audio: vec![AudioTrack {
            codec: Some("AAC".into()),
            channels: Some(2),
            sample_rate: Some(48_000),
            bit_depth: None,
        }],
        title: Some("Sunset".into()),
        ..Metadata::default()
    }
}

fn design() -> Metadata {
    let layer = |name: &str, visible| Layer {
        name: name.into(),
        visible,
    };
    Metadata {
        kind: Kind::Design,
        format: Some("PSD".into()),
        width: Some(2000),
        height: Some(1000),
        color_mode: Some("RGB".into()),
        layer_count: Some(3),
        layers: vec![
            layer("Background", true),
            layer("Glow", false),
            layer("Logo", true),
        ],
        ..Metadata::default()
    }
}

fn get<'a>(f: &'a [(&'static str, String)], k: &str) -> Vec<&'a str> {
    f.iter()
        .filter(|(key, _)| *key == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn field_list() {
    let f = fields(&video());
    assert_eq!(f[0], ("kind", "video".to_string()));
    assert_eq!(get(&f, "dimensions"), ["3840x2160"]);
    assert_eq!(get(&f, "duration"), ["8.0 s"]);
    assert_eq!(get(&f, "video codec"), ["HEVC"]);
    assert_eq!(get(&f, "frame rate"), ["25 fps"]);
    assert_eq!(get(&f, "audio"), ["AAC, 2 ch, 48 kHz"]);
    assert_eq!(get(&f, "bit rate"), ["45 Mb/s"]);
    assert!(get(&f, "container").is_empty(), "same as the format");
    let keys: Vec<&str> = f.iter().map(|(k, _)| *k).collect();
    let pos = |k| keys.iter().position(|x| *x == k).unwrap();
    assert!(pos("kind") < pos("dimensions") && pos("dimensions") < pos("duration"));

    let f = fields(&photo());
    assert_eq!(get(&f, "camera"), ["Canon EOS R5"]);
    assert_eq!(get(&f, "taken"), ["2024-05-01T12:34:56"]);
    assert_eq!(get(&f, "gps"), ["48.8584, 2.2945"]);
    assert_eq!(get(&f, "exposure"), ["1/250 s"]);
    assert_eq!(get(&f, "aperture"), ["f/2.8"]);
    assert_eq!(get(&f, "iso"), ["400"]);

    let f = fields(&design());
    assert_eq!(get(&f, "layers"), ["3: Background, Glow (hidden), Logo"]);

    let doc = Metadata {
        kind: Kind::Document,
        pages: Some(12),
        unreadable: Some("PDF: no %%EOF marker (truncated?)".into()),
        ..Metadata::default()
    };
    let f = fields(&doc);
    assert_eq!(get(&f, "pages"), ["12"]);
    assert_eq!(
        get(&f, "unreadable metadata"),
        ["PDF: no %%EOF marker (truncated?)"]
    );
    assert_eq!(
        fields(&Metadata::default()),
        [("kind", "other".to_string())]
    );

    // Many layers: the list is capped.
    let mut many = design();
    many.layers = (0..500)
        .map(|i| Layer {
            name: format!("L{i}"),
            visible: true,
        })
        .collect();
    many.layer_count = Some(500);
    let f = fields(&many);
    assert!(get(&f, "layers")[0].ends_with("L19, +480 more"));
}

#[test]
fn summaries() {
    assert_eq!(summary(&photo()), "image 6000x4000 Canon EOS R5");
    assert_eq!(summary(&video()), "video 3840x2160 HEVC 8.0 s");
    let audio = Metadata {
        kind: Kind::Audio,
        duration: Some(5.0),
        audio: vec![AudioTrack {
            sample_rate: Some(48_000),
            channels: Some(2),
            ..AudioTrack::default()
        }],
        ..Metadata::default()
    };
    assert_eq!(summary(&audio), "audio 48 kHz 2 ch 5.0 s");
    assert_eq!(summary(&design()), "design 2000x1000 3 layers");
    let doc = Metadata {
        kind: Kind::Document,
        pages: Some(12),
        ..Metadata::default()
    };
    assert_eq!(summary(&doc), "document 12 pages");
    assert_eq!(summary(&Metadata::default()), "-");
    let broken = Metadata {
        kind: Kind::Image,
        unreadable: Some("x".into()),
        ..Metadata::default()
    };
    assert_eq!(summary(&broken), "image (unreadable)");
}

#[test]
fn change_lists() {
    assert!(changes(&video(), &video()).is_empty());
    assert!(changes(&Metadata::default(), &Metadata::default()).is_empty());

    let old = Metadata {
        width: Some(1920),
        height: Some(1080),
        video_codec: Some("H.264".into()),
        duration: Some(5.0),
        audio: vec![AudioTrack {
            codec: Some("AAC".into()),
            channels: Some(2),
            sample_rate: Some(48_000),
            bit_depth: None,
        }],
        ..video()
    };
    let mut new = video();
    new.audio[0].sample_rate = Some(44_100);
    let c = changes(&old, &new);
    for want in [
        "1920x1080 -> 3840x2160",
        "H.264 -> HEVC",
        "5.0 s -> 8.0 s",
        "48 kHz -> 44.1 kHz",
    ] {
        assert!(c.contains(&want.to_string()), "{want} in {c:?}");
    }
    assert_eq!(c.len(), 4, "{c:?}");

    let mut p2 = photo();
    p2.taken = Some("2024-05-02T00:00:00".into());
    p2.gps = None;
    p2.camera_make = Some("Sony".into());
    p2.camera_model = Some("A7".into());
    let c = changes(&photo(), &p2);
    assert!(c.contains(&"EXIF: date taken changed".to_string()), "{c:?}");
    assert!(c.contains(&"GPS removed".to_string()));
    assert!(c.contains(&"camera: Canon EOS R5 -> Sony A7".to_string()));
    assert!(changes(&p2, &photo()).contains(&"GPS added".to_string()));

    let mut d2 = design();
    d2.layers.retain(|l| l.name != "Glow");
    d2.layers.push(Layer {
        name: "Old logo".into(),
        visible: true,
    });
    let c = changes(&d2, &design());
    assert!(c.contains(&"layers: +Glow, -Old logo".to_string()), "{c:?}");
    let mut d3 = design();
    d3.layers[2].visible = false;
    assert_eq!(changes(&design(), &d3), ["layer Logo hidden"]);
    assert_eq!(changes(&d3, &design()), ["layer Logo shown"]);

    let doc = |n| Metadata {
        kind: Kind::Document,
        pages: Some(n),
        ..Metadata::default()
    };
    assert_eq!(changes(&doc(10), &doc(12)), ["pages: 10 -> 12"]);
}

fn q(s: &str) -> Query {
    Query::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn query_matching() {
    let (p, v, d) = (photo(), video(), design());
    assert!(q("kind=image").matches(&p, "a.jpg"));
    assert!(!q("kind=image").matches(&v, "a.mp4"));
    assert!(q("KIND = Video AND codec=hevc").matches(&v, "a.mp4"));
    assert!(q("width>=3840 and height>2000").matches(&v, ""));
    // numeric, not lexical: "900" > "1000" as strings
    assert!(q("width>900").matches(&v, ""));
    assert!(!q("width<900").matches(&v, ""));
    assert!(q("duration>7.5 and duration<=8").matches(&v, ""));
    assert!(q("fps=25 and samplerate=48000 and channels=2").matches(&v, ""));
    assert!(q("audio_codec=aac").matches(&v, ""));
    // dates compare lexically
    assert!(q("taken>=2024-01-01").matches(&p, ""));
    assert!(!q("taken<2024-05-01").matches(&p, ""));
    assert!(q("taken<2024-05-02").matches(&p, ""));
    assert!(q(r#"camera="Canon EOS R5""#).matches(&p, ""));
    assert!(q("camera~canon and make=Canon and model~r5").matches(&p, ""));
    assert!(q("exposure<1/100 and fnumber<=2.8 and iso=400").matches(&p, ""));
    assert!(q("gps and lat>48 and lon<3").matches(&p, ""));
    assert!(!q("gps").matches(&v, ""));
    assert!(q("not gps").matches(&v, ""));
    assert!(q("path~.PSD").matches(&d, "art/Poster.psd"));
    assert!(q("layer~logo and layers=3").matches(&d, ""));
    assert!(!q("layer=logos").matches(&d, ""));
    assert!(q("layer!=Nothing").matches(&d, ""));
    assert!(!q("layer!=Glow").matches(&d, ""));
    // absent fields: false for every comparison
    assert!(!q("camera!=Canon").matches(&v, ""));
    assert!(q("not camera").matches(&v, ""));
    assert!(q("title=sunset").matches(&v, ""));
    assert!(q("unreadable").matches(
        &Metadata {
            unreadable: Some("x".into()),
            ..Metadata::default()
        },
        ""
    ));
}

#[test]
fn query_precedence() {
    let v = video();
    // and binds tighter than or
    assert!(q("kind=image and width>1 or kind=video").matches(&v, ""));
    assert!(!q("kind=image and (width>1 or kind=video)").matches(&v, ""));
    assert!(q("kind=video or kind=image and width>99999").matches(&v, ""));
    // not binds tightest
    assert!(!q("not kind=video or kind=image").matches(&v, ""));
    assert!(q("not (kind=image or kind=audio)").matches(&v, ""));
    assert!(q("not not kind=video").matches(&v, ""));
    assert!(q("(((kind=video)))").matches(&v, ""));
}

#[test]
fn query_errors() {
    let err = |s: &str| Query::parse(s).unwrap_err();
    match err("kind=video and colour=red") {
        QueryError::UnknownField { pos, field, known } => {
            assert_eq!((pos, field.as_str()), (16, "colour"));
            assert!(known.contains("colorspace") && known.contains("layer"));
        }
        e => panic!("{e:?}"),
    }
    let msg = err("kind=video and colour=red").to_string();
    assert!(
        msg.contains("position 16")
            && msg.contains("colour")
            && msg.contains("known fields: kind, mime"),
        "{msg}"
    );
    let msg = err("width>").to_string();
    assert!(
        msg.contains("expected a value at position 7, found end of query"),
        "{msg}"
    );
    let msg = err("(kind=video").to_string();
    assert!(msg.contains("expected ')' at position 12"), "{msg}");
    let msg = err("kind=video)").to_string();
    assert!(msg.contains("position 11") && msg.contains("')'"), "{msg}");
    let msg = err("kind=video video").to_string();
    assert!(
        msg.contains("position 12") && msg.contains("'video'"),
        "{msg}"
    );
    let msg = err("width>wide").to_string();
    assert!(
        msg.contains("numeric") && msg.contains("'wide'") && msg.contains("position 7"),
        "{msg}"
    );
    let msg = err("title=\"open").to_string();
    assert!(
        msg.contains("unterminated string starting at position 7"),
        "{msg}"
    );
    let msg = err("kind ! video").to_string();
    assert!(msg.contains("'!' at position 6"), "{msg}");
    let msg = err("and kind=video").to_string();
    assert!(msg.contains("position 1") && msg.contains("'and'"), "{msg}");
    assert!(matches!(err("   "), QueryError::Empty));
    assert!(matches!(err(&"(".repeat(100)), QueryError::TooDeep { .. }));
    assert!(matches!(
        err(&"not ".repeat(100)),
        QueryError::TooDeep { .. }
    ));
    let long = format!("title={}", "x".repeat(5000));
    assert!(matches!(err(&long), QueryError::TooLong { .. }));
    // 64 levels are fine
    let deep = format!("{}kind=video{}", "(".repeat(63), ")".repeat(63));
    assert!(q(&deep).matches(&video(), ""));
    // keyword-looking values are values
    assert!(q("title=and").matches(
        &Metadata {
            title: Some("AND".into()),
            ..Metadata::default()
        },
        ""
    ));
}
