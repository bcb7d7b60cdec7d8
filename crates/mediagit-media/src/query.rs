//! The query language of `mediagit find --where EXPR`:
//!
//! ```text
//! expr   := term ("or" term)*
//! term   := factor ("and" factor)*
//! factor := "not" factor | "(" expr ")" | FIELD OP VALUE | FIELD
//! OP     := "=" | "!=" | "<" | "<=" | ">" | ">=" | "~"
//! ```
//!
//! A bare FIELD is true when the field is present. VALUE is a bare word
//! (up to a space, a parenthesis or an operator character) or a
//! double-quoted string (`\"` and `\\` escape). Keywords and field names
//! are case-insensitive; so are string comparisons. Numeric fields compare
//! numerically (durations in seconds; `exposure<1/100` takes a fraction);
//! other fields compare as strings, so ISO dates order correctly
//! (`taken>=2024-01-01`). `~` is a case-insensitive substring test on any
//! field. A comparison on an absent field is false (`not camera` finds
//! files without one). Fields with several values (`layer`, the audio
//! fields) match when any value does; `!=` when none is equal.

use crate::display::{camera, num};
use crate::Metadata;

/// Longest accepted query, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not`.
pub const MAX_QUERY_DEPTH: usize = 64;

/// A query parse error. Positions are 1-based character columns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("empty query")]
    Empty,
    #[error("query too long: {len} bytes (at most {max})")]
    TooLong { len: usize, max: usize },
    #[error("query nested more than {max} levels deep at position {pos}")]
    TooDeep { pos: usize, max: usize },
    #[error("unknown field '{field}' at position {pos}; known fields: {known}")]
    UnknownField {
        pos: usize,
        field: String,
        known: String,
    },
    #[error("expected {expected} at position {pos}, found {found}")]
    Expected {
        pos: usize,
        expected: &'static str,
        found: String,
    },
    #[error("unterminated string starting at position {pos}")]
    UnterminatedString { pos: usize },
    #[error("unexpected character '{ch}' at position {pos}")]
    UnexpectedChar { pos: usize, ch: char },
    #[error("field '{field}' is numeric, but '{value}' at position {pos} is not a number")]
    NotANumber {
        pos: usize,
        field: String,
        value: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Op(Op),
    Word(String),
    Str(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "end of query".into(),
        Some(Tok::LParen) => "'('".into(),
        Some(Tok::RParen) => "')'".into(),
        Some(Tok::Op(op)) => format!("operator '{}'", op_str(*op)),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(s)) => format!("\"{s}\""),
    }
}

fn op_str(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Contains => "~",
    }
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

fn lex(s: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '=' => (Tok::Op(Op::Eq), 1),
            '~' => (Tok::Op(Op::Contains), 1),
            '!' if next == Some('=') => (Tok::Op(Op::Ne), 2),
            '!' => return Err(QueryError::UnexpectedChar { pos, ch: c }),
            '<' if next == Some('=') => (Tok::Op(Op::Le), 2),
            '<' => (Tok::Op(Op::Lt), 1),
            '>' if next == Some('=') => (Tok::Op(Op::Ge), 2),
            '>' => (Tok::Op(Op::Gt), 1),
            '"' => {
                let mut v = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(QueryError::UnterminatedString { pos }),
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(j + 1), Some('"') | Some('\\')) => {
                            v.push(chars[j + 1]);
                            j += 2;
                        }
                        Some(&ch) => {
                            v.push(ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Str(v), j + 1 - i)
            }
            _ => {
                let mut j = i;
                while j < chars.len()
                    && !chars[j].is_whitespace()
                    && !is_op_char(chars[j])
                    && !matches!(chars[j], '(' | ')' | '"')
                {
                    j += 1;
                }
                (Tok::Word(chars[i..j].iter().collect()), j - i)
            }
        };
        out.push(Token { tok, pos });
        i += len;
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Kind,
    Mime,
    Format,
    Path,
    Width,
    Height,
    Orientation,
    ColorSpace,
    Depth,
    Camera,
    Make,
    Model,
    Lens,
    Taken,
    Exposure,
    FNumber,
    Iso,
    Gps,
    Lat,
    Lon,
    Duration,
    Container,
    Codec,
    Fps,
    Bitrate,
    Created,
    AudioCodec,
    Channels,
    SampleRate,
    Title,
    Artist,
    Album,
    ColorMode,
    Layers,
    Layer,
    Pages,
    Unreadable,
}

/// (name, field, numeric); the first name of each field is the one listed
/// in error messages, the others are accepted aliases.
const FIELDS: &[(&str, Field, bool)] = &[
    ("kind", Field::Kind, false),
    ("mime", Field::Mime, false),
    ("format", Field::Format, false),
    ("path", Field::Path, false),
    ("width", Field::Width, true),
    ("height", Field::Height, true),
    ("orientation", Field::Orientation, true),
    ("colorspace", Field::ColorSpace, false),
    ("depth", Field::Depth, true),
    ("camera", Field::Camera, false),
    ("make", Field::Make, false),
    ("model", Field::Model, false),
    ("lens", Field::Lens, false),
    ("taken", Field::Taken, false),
    ("exposure", Field::Exposure, true),
    ("fnumber", Field::FNumber, true),
    ("iso", Field::Iso, true),
    ("gps", Field::Gps, false),
    ("lat", Field::Lat, true),
    ("lon", Field::Lon, true),
    ("duration", Field::Duration, true),
    ("container", Field::Container, false),
    ("codec", Field::Codec, false),
    ("fps", Field::Fps, true),
    ("bitrate", Field::Bitrate, true),
    ("created", Field::Created, false),
    ("audio_codec", Field::AudioCodec, false),
    ("channels", Field::Channels, true),
    ("samplerate", Field::SampleRate, true),
    ("title", Field::Title, false),
    ("artist", Field::Artist, false),
    ("album", Field::Album, false),
    ("colormode", Field::ColorMode, false),
    ("layers", Field::Layers, true),
    ("layer", Field::Layer, false),
    ("pages", Field::Pages, true),
    ("unreadable", Field::Unreadable, false),
    // aliases
    ("type", Field::Mime, false),
    ("color_space", Field::ColorSpace, false),
    ("bit_depth", Field::Depth, true),
    ("lens_model", Field::Lens, false),
    ("f_number", Field::FNumber, true),
    ("aperture", Field::FNumber, true),
    ("video_codec", Field::Codec, false),
    ("frame_rate", Field::Fps, true),
    ("bit_rate", Field::Bitrate, true),
    ("sample_rate", Field::SampleRate, true),
    ("color_mode", Field::ColorMode, false),
    ("layer_count", Field::Layers, true),
];
const CANONICAL: usize = 37;

fn known_fields() -> String {
    FIELDS[..CANONICAL]
        .iter()
        .map(|f| f.0)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug, PartialEq)]
struct Value {
    lower: String,
    num: Option<f64>,
}

/// A number, or a fraction "1/250".
fn parse_number(s: &str) -> Option<f64> {
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
            (b != 0.0).then(|| a / b)?
        }
        None => s.parse::<f64>().ok()?,
    };
    v.is_finite().then_some(v)
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Present(Field),
    Cmp(Field, Op, Value),
}

/// A parsed `--where` expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Query(Expr);

struct Parser {
    toks: Vec<Token>,
    i: usize,
    end_pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }
    fn pos(&self) -> usize {
        self.peek().map_or(self.end_pos, |t| t.pos)
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }
    fn expected(&self, expected: &'static str) -> QueryError {
        QueryError::Expected {
            pos: self.pos(),
            expected,
            found: describe(self.peek()),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut terms = vec![self.term(depth)?];
        while self.keyword("or") {
            self.i += 1;
            terms.push(self.term(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn term(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut factors = vec![self.factor(depth)?];
        while self.keyword("and") {
            self.i += 1;
            factors.push(self.factor(depth)?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Expr::And(factors)
        })
    }

    fn factor(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if depth >= MAX_QUERY_DEPTH {
            return Err(QueryError::TooDeep {
                pos: self.pos(),
                max: MAX_QUERY_DEPTH,
            });
        }
        if self.keyword("not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.factor(depth + 1)?)));
        }
        let Some(t) = self.peek().cloned() else {
            return Err(self.expected("a field, 'not' or '('"));
        };
        match t.tok {
            Tok::LParen => {
                self.i += 1;
                let e = self.expr(depth + 1)?;
                if self.peek().map(|t| &t.tok) != Some(&Tok::RParen) {
                    return Err(self.expected("')'"));
                }
                self.i += 1;
                Ok(e)
            }
            Tok::Word(ref w) if !w.eq_ignore_ascii_case("and") && !w.eq_ignore_ascii_case("or") => {
                let lw = w.to_ascii_lowercase();
                let Some(&(_, field, numeric)) = FIELDS.iter().find(|f| f.0 == lw) else {
                    return Err(QueryError::UnknownField {
                        pos: t.pos,
                        field: w.clone(),
                        known: known_fields(),
                    });
                };
                self.i += 1;
                let Some(Token {
                    tok: Tok::Op(op), ..
                }) = self.peek().cloned()
                else {
                    return Ok(Expr::Present(field));
                };
                self.i += 1;
                let vpos = self.pos();
                let text = match self.peek().map(|t| &t.tok) {
                    Some(Tok::Word(v)) | Some(Tok::Str(v)) => v.clone(),
                    _ => return Err(self.expected("a value")),
                };
                self.i += 1;
                let num = parse_number(&text);
                if numeric && op != Op::Contains && num.is_none() {
                    return Err(QueryError::NotANumber {
                        pos: vpos,
                        field: lw,
                        value: text,
                    });
                }
                Ok(Expr::Cmp(
                    field,
                    op,
                    Value {
                        lower: text.to_lowercase(),
                        num,
                    },
                ))
            }
            _ => Err(self.expected("a field, 'not' or '('")),
        }
    }
}

enum FV {
    Num(f64),
    Str(String),
}

impl FV {
    fn lower(&self) -> String {
        match self {
            FV::Num(n) => num(*n, 6),
            FV::Str(s) => s.to_lowercase(),
        }
    }
}

fn values(f: Field, m: &Metadata, path: &str) -> Vec<FV> {
    let s = |v: &Option<String>| v.iter().map(|x| FV::Str(x.clone())).collect::<Vec<_>>();
    let n = |v: Option<f64>| v.into_iter().map(FV::Num).collect::<Vec<_>>();
    match f {
        Field::Kind => vec![FV::Str(m.kind.as_str().into())],
        Field::Mime => s(&m.mime),
        Field::Format => s(&m.format),
        Field::Path => vec![FV::Str(path.into())],
        Field::Width => n(m.width.map(f64::from)),
        Field::Height => n(m.height.map(f64::from)),
        Field::Orientation => n(m.orientation.map(f64::from)),
        Field::ColorSpace => s(&m.color_space),
        Field::Depth => n(m.bit_depth.map(f64::from)),
        Field::Camera => s(&camera(m)),
        Field::Make => s(&m.camera_make),
        Field::Model => s(&m.camera_model),
        Field::Lens => s(&m.lens),
        Field::Taken => s(&m.taken),
        Field::Exposure => n(m.exposure.as_deref().and_then(parse_number)),
        Field::FNumber => n(m.f_number),
        Field::Iso => n(m.iso.map(f64::from)),
        Field::Gps => m
            .gps
            .iter()
            .map(|g| FV::Str(format!("{:.6}, {:.6}", g.lat, g.lon)))
            .collect(),
        Field::Lat => n(m.gps.as_ref().map(|g| g.lat)),
        Field::Lon => n(m.gps.as_ref().map(|g| g.lon)),
        Field::Duration => n(m.duration),
        Field::Container => s(&m.container),
        Field::Codec => s(&m.video_codec),
        Field::Fps => n(m.frame_rate),
        Field::Bitrate => n(m.bit_rate.map(|b| b as f64)),
        Field::Created => s(&m.created),
        Field::AudioCodec => m
            .audio
            .iter()
            .filter_map(|a| a.codec.clone().map(FV::Str))
            .collect(),
        Field::Channels => m
            .audio
            .iter()
            .filter_map(|a| a.channels.map(|c| FV::Num(f64::from(c))))
            .collect(),
        Field::SampleRate => m
            .audio
            .iter()
            .filter_map(|a| a.sample_rate.map(|r| FV::Num(f64::from(r))))
            .collect(),
        Field::Title => s(&m.title),
        Field::Artist => s(&m.artist),
        Field::Album => s(&m.album),
        Field::ColorMode => s(&m.color_mode),
        Field::Layers => n(m.layer_count.map(f64::from)),
        Field::Layer => m.layers.iter().map(|l| FV::Str(l.name.clone())).collect(),
        Field::Pages => n(m.pages.map(f64::from)),
        Field::Unreadable => s(&m.unreadable),
    }
}

fn compare(x: &FV, op: Op, v: &Value) -> bool {
    use std::cmp::Ordering;
    if op == Op::Contains {
        return x.lower().contains(&v.lower);
    }
    let ord = match (x, v.num) {
        (FV::Num(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(x.lower().as_str().cmp(v.lower.as_str())),
    };
    let Some(ord) = ord else { return false };
    match op {
        Op::Eq | Op::Ne => ord == Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Contains => false,
    }
}

fn eval(e: &Expr, m: &Metadata, path: &str) -> bool {
    match e {
        Expr::Or(v) => v.iter().any(|e| eval(e, m, path)),
        Expr::And(v) => v.iter().all(|e| eval(e, m, path)),
        Expr::Not(e) => !eval(e, m, path),
        Expr::Present(f) => !values(*f, m, path).is_empty(),
        Expr::Cmp(f, Op::Ne, v) => {
            let vals = values(*f, m, path);
            !vals.is_empty() && !vals.iter().any(|x| compare(x, Op::Ne, v))
        }
        Expr::Cmp(f, op, v) => values(*f, m, path).iter().any(|x| compare(x, *op, v)),
    }
}

impl Query {
    /// Parses an expression; errors name the position and the offending
    /// token (and list the known fields for an unknown one).
    pub fn parse(s: &str) -> Result<Query, QueryError> {
        if s.len() > MAX_QUERY_LEN {
            return Err(QueryError::TooLong {
                len: s.len(),
                max: MAX_QUERY_LEN,
            });
        }
        let toks = lex(s)?;
        if toks.is_empty() {
            return Err(QueryError::Empty);
        }
        let mut p = Parser {
            toks,
            i: 0,
            end_pos: s.chars().count() + 1,
        };
        let e = p.expr(0)?;
        if p.peek().is_some() {
            return Err(p.expected("'and', 'or' or the end of the query"));
        }
        Ok(Query(e))
    }

    /// Whether the file at `path` with metadata `m` matches.
    pub fn matches(&self, m: &Metadata, path: &str) -> bool {
        eval(&self.0, m, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_cover_every_field() {
        assert_eq!(FIELDS[CANONICAL].0, "type");
        let mut seen: Vec<Field> = FIELDS[..CANONICAL].iter().map(|f| f.1).collect();
        seen.dedup();
        assert_eq!(seen.len(), CANONICAL);
    }

    #[test]
    fn lexing() {
        let t = lex(r#"a>=1 and (b~"x \"y\"")"#).unwrap();
        assert_eq!(t.len(), 9);
        assert_eq!(t[1].tok, Tok::Op(Op::Ge));
        assert_eq!(t[8].tok, Tok::RParen);
        assert_eq!(t[7].tok, Tok::Str("x \"y\"".into()));
        assert_eq!(t[7].pos, 13);
    }
}
