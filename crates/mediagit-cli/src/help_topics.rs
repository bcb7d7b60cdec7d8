//! `mediagit help TOPIC`: concepts explained by the documentation itself.
//! The sections are embedded from docs/ when the binary is built, so what
//! `help` says cannot drift from the documents (a test checks that every
//! section a topic names still exists).

const CLI: &str = include_str!("../../../docs/CLI.md");
const BACKENDS: &str = include_str!("../../../docs/BACKENDS.md");
const FORMAT: &str = include_str!("../../../docs/FORMAT.md");

/// A concept and the sections of the docs that explain it.
pub struct Topic {
    pub name: &'static str,
    pub summary: &'static str,
    doc: &'static str,
    file: &'static str,
    /// Headings (whole lines, or their beginning) of the sections to print.
    sections: &'static [&'static str],
}

pub const TOPICS: &[Topic] = &[
    Topic {
        name: "revisions",
        summary: "naming commits: branches, tags, HEAD, ids, REV~N, REV^N",
        doc: CLI,
        file: "docs/CLI.md",
        sections: &["## Revisions"],
    },
    Topic {
        name: "ignore",
        summary: ".mediagitignore: which files add -A and status leave out",
        doc: CLI,
        file: "docs/CLI.md",
        sections: &["## Ignore rules"],
    },
    Topic {
        name: "storage",
        summary: "repositories in S3, Azure, GCS, B2 or a directory; credentials; several machines",
        doc: BACKENDS,
        file: "docs/BACKENDS.md",
        sections: &[
            "# Storage backends",
            "## Creating and joining a repository in a store",
            "## Credentials",
            "## What each backend does",
            "## Several machines on one store",
        ],
    },
    Topic {
        name: "format",
        summary: "the on-disk format: versions, layout, integrity guarantees",
        doc: FORMAT,
        file: "docs/FORMAT.md",
        sections: &[
            "# MediaGit repository format",
            "## 1. Versioning",
            "## 2. Layout",
            "## 11. Integrity and recovery guarantees",
        ],
    },
];

pub fn find(name: &str) -> Option<&'static Topic> {
    TOPICS.iter().find(|t| t.name == name)
}

impl Topic {
    /// The topic's text: its sections, in order, then where the whole
    /// document is. `None` when a section is missing (a test keeps that
    /// from shipping).
    pub fn text(&self) -> Option<String> {
        let mut out = String::new();
        for heading in self.sections {
            out.push_str(section(self.doc, heading)?.trim_end());
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "(From {} in the MediaGit sources; `mediagit help` lists the commands and topics.)\n",
            self.file
        ));
        Some(out)
    }
}

/// The section of `doc` whose heading line starts with `heading`: up to
/// the next heading of the same or a higher level (a title, `# `, stops
/// at the first `## `). Lines inside ``` fences are never headings.
fn section<'a>(doc: &'a str, heading: &str) -> Option<&'a str> {
    let level = heading.bytes().take_while(|&b| b == b'#').count();
    let mut start = None;
    let mut fenced = false;
    let mut at = 0;
    for line in doc.split_inclusive('\n') {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        let is_heading = !fenced && hashes > 0 && line.as_bytes().get(hashes) == Some(&b' ');
        match start {
            None if is_heading && line.starts_with(heading) => start = Some(at),
            Some(s) if is_heading && (hashes <= level || level == 1) => return Some(&doc[s..at]),
            _ => {}
        }
        at += line.len();
    }
    start.map(|s| &doc[s..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_finds_all_its_sections() {
        for t in TOPICS {
            let text = t
                .text()
                .unwrap_or_else(|| panic!("topic {} lost a section", t.name));
            for h in t.sections {
                assert!(text.contains(h), "{}: {h}", t.name);
            }
            assert!(text.len() > 300, "{}: {text}", t.name);
        }
    }

    #[test]
    fn a_section_ends_at_the_next_heading_of_its_level_and_skips_fences() {
        let doc = "# T\nintro\n## A\na\n```\n## not a heading\n```\n### sub\nx\n## B\nb\n";
        assert_eq!(section(doc, "# T"), Some("# T\nintro\n"));
        assert_eq!(
            section(doc, "## A"),
            Some("## A\na\n```\n## not a heading\n```\n### sub\nx\n")
        );
        assert_eq!(section(doc, "## B"), Some("## B\nb\n"));
        assert_eq!(section(doc, "## C"), None);
    }
}
