//! Removing credentials from error messages.
//!
//! OpenDAL's errors carry the request context: the full URL (an Azure SAS
//! token or an S3/GCS presigned signature travels in its query string), and
//! a refusing server's answer, which may echo the request. [`redact`] strips
//! what has the shape of a credential; [`Secrets`] also removes the exact
//! values a backend was configured with, wherever they appear. Every message
//! [`crate::ObjectStoreBackend`] puts into an error goes through both.
//!
//! The scanner is deliberately greedy: losing part of a message is better
//! than printing a signature.

use crate::object_store_backend::CloudEnv;

/// What a removed value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Names whose value is a credential in `name=value` (query strings, SAS
/// tokens, connection strings, form bodies) and in quoted `"name": "value"`
/// (JSON, debug output). Compared case-insensitively, on whole names.
const SECRET_NAMES: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "x-goog-security-token",
    "credential",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "sas",
    "sas_token",
    "sastoken",
    "accountkey",
    "account_key",
    "sharedaccesssignature",
    "sharedaccesskey",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "secret_access_key",
    "secretaccesskey",
    "aws_secret_access_key",
    "session_token",
    "sessiontoken",
    "aws_session_token",
    "private_key",
    "private_key_id",
    "authorizationtoken",
    "authorization_token",
    "application_key",
    "applicationkey",
    "b2_application_key",
    "azure_storage_key",
    "azure_storage_sas_token",
    "azure_storage_connection_string",
    "api_key",
    "apikey",
];

/// Header names whose value (to the end of the line) is a credential, also
/// in the unquoted `Name: value` form of an HTTP request or response head.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-ms-copy-source-authorization",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
    "x-goog-security-token",
];

/// Authorization schemes: the word after them is a credential.
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "sharedkey", "sharedkeylite"];

/// Secret values shorter than this are not searched for: no real credential
/// is that short, and replacing every occurrence of a few letters would
/// garble the message.
pub const MIN_SECRET_LEN: usize = 8;

/// Removes credential-shaped text: every URL query string (`?...` becomes
/// `?<redacted>`) and userinfo (`https://user:pass@` becomes
/// `https://<redacted>@`), the value of every `name=value` whose name is a
/// credential parameter (`sig`, `X-Amz-Signature`, `X-Amz-Credential`,
/// `X-Amz-Security-Token`, `X-Goog-Signature`, `access_token`, `token`,
/// `AccountKey`, ...), the values of `Authorization:`-like headers, the
/// credential after `Bearer`/`Basic`/`SharedKey`, and Azure's echo of a
/// request's signature. Never panics; text without credentials comes back
/// unchanged.
pub fn redact(text: &str) -> String {
    let t = strip_userinfo(text);
    let t = strip_queries(&t);
    let t = strip_named_values(&t);
    let t = strip_auth_schemes(&t);
    let mut t = strip_azure_signature_echo(&t);
    // A value cut by two rules (a known secret inside a query string).
    let twice = [REDACTED, REDACTED].concat();
    while t.contains(&twice) {
        t = t.replace(&twice, REDACTED);
    }
    t
}

/// The exact secret values a backend was configured with, removed from a
/// message wherever they appear (also percent-encoded or -decoded) before
/// [`redact`] runs. Its `Debug` shows only how many it holds.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Longest first, so a secret containing another goes whole.
    values: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// The secrets among a backend's environment: AWS secret key and session
    /// token, Azure account key, SAS token (and its signature) and connection
    /// string (and its account key and SAS), the B2 application key (and the
    /// Basic credential made from it), and the private key and tokens in the
    /// file `GOOGLE_APPLICATION_CREDENTIALS` names.
    pub fn from_env(env: &CloudEnv) -> Self {
        let mut s = Secrets::new();
        let var = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AZURE_STORAGE_KEY",
            "B2_APPLICATION_KEY",
        ] {
            if let Some(v) = var(k) {
                s.add(v);
            }
        }
        if let Some(sas) = var("AZURE_STORAGE_SAS_TOKEN") {
            s.add_sas(sas);
        }
        if let Some(cs) = var("AZURE_STORAGE_CONNECTION_STRING") {
            s.add(cs);
            for part in cs.split(';') {
                let Some((k, v)) = part.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "accountkey" | "sharedaccesskey" => s.add(v.trim()),
                    "sharedaccesssignature" => s.add_sas(v.trim()),
                    _ => {}
                }
            }
        }
        if let (Some(id), Some(key)) = (var("B2_APPLICATION_KEY_ID"), var("B2_APPLICATION_KEY")) {
            s.add(&base64(format!("{id}:{key}").as_bytes()));
        }
        if let Some(path) = var("GOOGLE_APPLICATION_CREDENTIALS") {
            if let Ok(json) = std::fs::read_to_string(path) {
                for name in [
                    "private_key",
                    "private_key_id",
                    "client_secret",
                    "refresh_token",
                ] {
                    if let Some(v) = json_string_value(&json, name) {
                        s.add(v);
                        let unescaped = v.replace("\\n", "\n").replace("\\/", "/");
                        // A PEM key also goes line by line: a message may
                        // hold a piece of it.
                        for line in unescaped.lines() {
                            if !line.starts_with("-----") {
                                s.add(line.trim());
                            }
                        }
                        s.add(&unescaped);
                    }
                }
            }
        }
        s
    }

    /// Adds one secret value (and its percent-encoded and -decoded forms).
    /// Values shorter than [`MIN_SECRET_LEN`] are ignored.
    pub fn add(&mut self, value: &str) {
        for v in [
            value.to_string(),
            percent_encode(value),
            percent_decode(value),
        ] {
            if v.len() >= MIN_SECRET_LEN && !self.values.contains(&v) {
                self.values.push(v);
            }
        }
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// A SAS token: the whole of it and its signature.
    fn add_sas(&mut self, sas: &str) {
        let sas = sas.trim().trim_start_matches('?');
        self.add(sas);
        for pair in sas.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if k.eq_ignore_ascii_case("sig") {
                    self.add(v);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` without these secrets, then through [`redact`].
    pub fn redact(&self, text: &str) -> String {
        let mut t = text.to_string();
        for v in &self.values {
            if t.contains(v.as_str()) {
                t = t.replace(v.as_str(), REDACTED);
            }
        }
        redact(&t)
    }
}

/// Where a URL (its authority or query string) ends in free text.
fn ends_url(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\'' | b'`' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'\\'
        )
}

/// Where a `name=value` value ends.
fn ends_value(b: u8) -> bool {
    ends_url(b) || matches!(b, b'&' | b';' | b',')
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `scheme://user:pass@host` becomes `scheme://<redacted>@host`.
fn strip_userinfo(t: &str) -> String {
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut last = 0;
    let mut i = 0;
    while let Some(p) = t[i..].find("://") {
        let start = i + p + 3;
        let mut end = start;
        while end < b.len() && !ends_url(b[end]) && !matches!(b[end], b'/' | b'?' | b'#') {
            end += 1;
        }
        if let Some(at) = t[start..end].rfind('@') {
            if at > 0 {
                out.push_str(&t[last..start]);
                out.push_str(REDACTED);
                last = start + at;
            }
        }
        // Not past `end`: "https://u@h://..." has its next "://" inside.
        i = start;
    }
    out.push_str(&t[last..]);
    out
}

/// `...?anything` becomes `...?<redacted>`, up to where the URL ends. A `?`
/// right after `<` (`<?xml`) or before a space or the end is left alone.
/// A `,` or `.` directly before a space or the end closes the URL (it is
/// the sentence's, and redacted anyway if not).
fn strip_queries(t: &str) -> String {
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'?' || (i > 0 && b[i - 1] == b'<') || i + 1 >= b.len() || ends_url(b[i + 1]) {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < b.len() && !ends_url(b[end]) {
            end += 1;
        }
        if end > i + 2
            && matches!(b[end - 1], b',' | b'.' | b';')
            && (end == b.len() || b[end].is_ascii_whitespace())
        {
            end -= 1;
        }
        out.push_str(&t[last..=i]);
        out.push_str(REDACTED);
        last = end;
        i = end;
    }
    out.push_str(&t[last..]);
    out
}

/// The value of `name=value`, `"name": "value"` and `Header: value` for the
/// names above.
fn strip_named_values(t: &str) -> String {
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if !is_name_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        let name = t[start..i].to_ascii_lowercase();
        let header = SECRET_HEADERS.contains(&name.as_str());
        if !header && !SECRET_NAMES.contains(&name.as_str()) {
            continue;
        }
        // A quoted name ("name": ..., 'name': ..., \"name\": ...).
        let mut j = i;
        let opening = quote_before(b, start);
        let quoted = match opening {
            Some(q) if b[j..].starts_with(q) => {
                j += q.len();
                true
            }
            _ => false,
        };
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        let Some(&sep) = b.get(j) else { break };
        if !(sep == b'=' || (sep == b':' && (header || quoted))) {
            continue;
        }
        j += 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        let (from, to) = match value_quote(b, j) {
            Some(q) => {
                let from = j + q.len();
                (
                    from,
                    closing_quote(b, from, q).unwrap_or_else(|| line_end(b, from)),
                )
            }
            None if header => {
                let mut end = j;
                while end < b.len() && !matches!(b[end], b'\r' | b'\n' | b'"' | b'\\') {
                    end += 1;
                }
                (j, end)
            }
            None => {
                let mut end = j;
                while end < b.len() && !ends_value(b[end]) {
                    end += 1;
                }
                (j, end)
            }
        };
        if to > from && &t[from..to] != REDACTED {
            out.push_str(&t[last..from]);
            out.push_str(REDACTED);
            last = to;
        }
        i = to.max(i);
    }
    out.push_str(&t[last..]);
    out
}

/// The quote right before a name, if any: `"`, `'` or an escaped `\"`.
fn quote_before(b: &[u8], start: usize) -> Option<&'static [u8]> {
    match start.checked_sub(1).map(|p| b[p]) {
        Some(b'"') if start >= 2 && b[start - 2] == b'\\' => Some(b"\\\""),
        Some(b'"') => Some(b"\""),
        Some(b'\'') => Some(b"'"),
        _ => None,
    }
}

/// The quote a value starts with at `j`, if any.
fn value_quote(b: &[u8], j: usize) -> Option<&'static [u8]> {
    let rest = b.get(j..)?;
    if rest.starts_with(b"\\\"") {
        Some(b"\\\"")
    } else if rest.starts_with(b"\"") {
        Some(b"\"")
    } else if rest.starts_with(b"'") {
        Some(b"'")
    } else {
        None
    }
}

/// Where the quoted value starting at `from` ends (the closing quote's
/// index): an unescaped `q`, or `\"` for an escaped opening quote.
fn closing_quote(b: &[u8], from: usize, q: &[u8]) -> Option<usize> {
    let mut k = from;
    while k < b.len() {
        if q == b"\\\"" {
            if b[k..].starts_with(q) {
                return Some(k);
            }
        } else if b[k] == b'\\' {
            k += 1;
        } else if b[k] == q[0] {
            return Some(k);
        }
        k += 1;
    }
    None
}

fn line_end(b: &[u8], from: usize) -> usize {
    let mut k = from;
    while k < b.len() && !matches!(b[k], b'\r' | b'\n') {
        k += 1;
    }
    k
}

/// `Bearer X`, `Basic X`, `SharedKey account:X`: the credential word goes
/// (when it is long enough to be one). So do bare OAuth access tokens
/// (`ya29.`) and JWTs (`eyJ....`).
fn strip_auth_schemes(t: &str) -> String {
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut last = 0;
    let mut i = 0;
    let word_end = |from: usize| {
        let mut end = from;
        while end < b.len() && !ends_value(b[end]) {
            end += 1;
        }
        end
    };
    while i < b.len() {
        if !is_name_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        let word = &t[start..i];
        // A bare token.
        if b.get(i) == Some(&b'.')
            && (word == "ya29" || (word.starts_with("eyJ") && word.len() > 8))
        {
            let end = word_end(i);
            let jwt_like = word == "ya29" || t[start..end].matches('.').count() >= 2;
            if jwt_like && (start == 0 || !is_name_byte(b[start - 1])) {
                out.push_str(&t[last..start]);
                out.push_str(REDACTED);
                last = end;
                i = end;
                continue;
            }
        }
        if !AUTH_SCHEMES.iter().any(|s| word.eq_ignore_ascii_case(s)) {
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j == i {
            continue;
        }
        let end = word_end(j);
        if looks_like_credential(&t[j..end]) {
            out.push_str(&t[last..j]);
            out.push_str(REDACTED);
            last = end;
            i = end;
        }
    }
    out.push_str(&t[last..]);
    out
}

/// A word after an authorization scheme that is a credential rather than
/// prose ("Basic authentication failed"): long enough, and with a digit,
/// punctuation or several capitals.
fn looks_like_credential(w: &str) -> bool {
    let upper = w.bytes().filter(u8::is_ascii_uppercase).count();
    w.len() >= MIN_SECRET_LEN
        && w != REDACTED
        && (upper >= 2
            || w.bytes()
                .any(|c| c.is_ascii_digit() || b"+/=:_-.~%".contains(&c)))
}

/// Azure's refusal of a Shared Key request quotes the request's signature:
/// "The MAC signature found in the HTTP request '...' is not the same as
/// any computed signature."
fn strip_azure_signature_echo(t: &str) -> String {
    const MARK: &str = "signature found in the http request '";
    let lower = t.to_ascii_lowercase();
    let mut out = String::with_capacity(t.len());
    let mut last = 0;
    let mut i = 0;
    while let Some(p) = lower[i..].find(MARK) {
        let from = i + p + MARK.len();
        let to = t[from..].find('\'').map_or(t.len(), |q| from + q);
        if to > from {
            out.push_str(&t[last..from]);
            out.push_str(REDACTED);
            last = to;
        }
        i = to.max(from);
    }
    out.push_str(&t[last..]);
    out
}

/// RFC 3986 unreserved characters stay, everything else becomes `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, &c)| n | (c as u32) << (16 - 8 * k));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The raw (still JSON-escaped) value of a top-level string field.
fn json_string_value<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\"");
    let at = json.find(&key)? + key.len();
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let b = rest.as_bytes();
    let end = closing_quote(b, 0, b"\"")?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn clean(text: &str, secrets: &[&str]) -> String {
        let out = redact(text);
        for s in secrets {
            assert!(!out.contains(s), "{s:?} left in {out:?} (from {text:?})");
        }
        out
    }

    #[test]
    fn s3_presigned_url() {
        let url = "https://media.s3.us-east-1.amazonaws.com/film/packs/a.pack?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdefdeadbeef";
        let text = format!("Unexpected (temporary) at read, context: {{ url: {url}, called: reqwest::send }} => send http request");
        let out = clean(
            &text,
            &[
                "AKIAIOSFODNN7EXAMPLE",
                "EXAMPLETOKEN",
                "deadbeef",
                "X-Amz-Date",
            ],
        );
        assert!(
            out.contains("https://media.s3.us-east-1.amazonaws.com/film/packs/a.pack?<redacted>"),
            "{out}"
        );
        assert!(out.contains(", called: reqwest::send"), "{out}");
        // The same parameters outside a URL.
        clean(
            "X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE/x",
            &["deadbeefcafe", "AKIAIOSFODNN7EXAMPLE"],
        );
    }

    #[test]
    fn azure_sas() {
        let text = "PermissionDenied (permanent) at list, context: { uri: http://127.0.0.1:10000/devstoreaccount1/media?restype=container&comp=list&sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=SUPERSECRETSIG%3D, response: Parts { status: 403 } }";
        let out = clean(text, &["SUPERSECRETSIG", "sv=2022", "sp=rl"]);
        assert!(
            out.contains("/devstoreaccount1/media?<redacted>, response"),
            "{out}"
        );
        // A bare SAS token, and a connection string.
        clean(
            "sas token sv=2022-11-02&sig=SUPERSECRETSIG&se=x",
            &["SUPERSECRETSIG"],
        );
        clean(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5c2VjcmV0a2V5==;EndpointSuffix=core.windows.net",
            &["c2VjcmV0a2V5c2VjcmV0a2V5"],
        );
        clean(
            "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=SUPERSECRETSIG",
            &["SUPERSECRETSIG"],
        );
        clean(
            "<AuthenticationErrorDetail>The MAC signature found in the HTTP request 'c2lnbmF0dXJlc2lnbmF0dXJl' is not the same as any computed signature.</AuthenticationErrorDetail>",
            &["c2lnbmF0dXJlc2lnbmF0dXJl"],
        );
    }

    #[test]
    fn gcs_signed_url_and_tokens() {
        let text = "GET https://storage.googleapis.com/media/film/x?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40proj.iam.gserviceaccount.com%2F20240101%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=8a2f9b0c1d3e4f5a6b7c HTTP/1.1";
        let out = clean(text, &["8a2f9b0c1d3e4f5a6b7c", "gserviceaccount"]);
        assert!(out.ends_with("/film/x?<redacted> HTTP/1.1"), "{out}");
        clean(
            r#"{"access_token": "ya29.a0AfH6SMBsecretsecret", "expires_in": 3599}"#,
            &["a0AfH6SMBsecretsecret"],
        );
        clean(
            "token: ya29.a0AfH6SMBsecretsecret expired",
            &["a0AfH6SMBsecretsecret"],
        );
        clean(
            r#"debug: "{\"access_token\":\"secretsecretsecret\"}""#,
            &["secretsecretsecret"],
        );
        clean(
            "access_token=secretsecretsecret&x=1",
            &["secretsecretsecret"],
        );
    }

    #[test]
    fn userinfo() {
        let out = clean(
            "error sending request for url (https://admin:hunter2hunter2@minio.local:9000/media?list-type=2)",
            &["hunter2hunter2", "admin", "list-type"],
        );
        assert_eq!(
            out,
            "error sending request for url (https://<redacted>@minio.local:9000/media?<redacted>)"
        );
        assert_eq!(
            redact("http://u:p@[::1]:9000/x"),
            "http://<redacted>@[::1]:9000/x"
        );
    }

    #[test]
    fn authorization_headers() {
        let head = "GET /media?list-type=2 HTTP/1.1\r\nhost: 127.0.0.1\r\nx-amz-security-token: SESSIONTOKENSESSION\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=f00dfacef00dface\r\nx-amz-date: 20240101T000000Z\r\n\r\n";
        let out = clean(
            head,
            &["SESSIONTOKENSESSION", "AKIDEXAMPLE", "f00dfacef00dface"],
        );
        assert!(out.contains("\r\nhost: 127.0.0.1\r\n"), "{out}");
        assert!(out.contains("\r\nx-amz-date: 20240101T000000Z"), "{out}");
        clean(
            "Authorization: SharedKey devstoreaccount1:c2lnbmF0dXJlc2lnbmF0dXJl",
            &["c2lnbmF0dXJlc2lnbmF0dXJl"],
        );
        clean(
            r#"headers: {"authorization": "Bearer ya29.secretsecret", "host": "x"}"#,
            &["secretsecret"],
        );
        clean(
            "sent with SharedKey devstoreaccount1:c2lnbmF0dXJlc2lnbmF0dXJl,",
            &["c2lnbmF0dXJlc2lnbmF0dXJl"],
        );
        clean(
            "Basic a2V5aWQ6YXBwbGljYXRpb25rZXk=",
            &["a2V5aWQ6YXBwbGljYXRpb25rZXk"],
        );
    }

    #[test]
    fn known_secrets_anywhere() {
        let mut env = CloudEnv::new();
        env.insert(
            "AWS_SECRET_ACCESS_KEY".into(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        );
        env.insert(
            "AZURE_STORAGE_SAS_TOKEN".into(),
            "?sv=2022-11-02&sig=SUPER%2BSECRET%3D".into(),
        );
        env.insert("B2_APPLICATION_KEY_ID".into(), "0012345".into());
        env.insert(
            "B2_APPLICATION_KEY".into(),
            "K001applicationkeyvalue".into(),
        );
        env.insert(
            "AZURE_STORAGE_CONNECTION_STRING".into(),
            "AccountName=a;AccountKey=Y29ubmVjdGlvbmtleQ==".into(),
        );
        let s = Secrets::from_env(&env);
        let out = s.redact(
            "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY or wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY, sig SUPER+SECRET= / SUPER%2BSECRET%3D, b2 K001applicationkeyvalue MDAxMjM0NTpLMDAxYXBwbGljYXRpb25rZXl2YWx1ZQ== Y29ubmVjdGlvbmtleQ==",
        );
        for leak in [
            "EXAMPLEKEY",
            "SUPER",
            "K001",
            "MDAxMjM0",
            "Y29ubmVjdGlvbmtleQ",
        ] {
            assert!(!out.contains(leak), "{leak} in {out}");
        }
        assert!(!format!("{s:?}").contains("EXAMPLEKEY"));
        // Short values are not hunted down (they would garble everything).
        let mut short = Secrets::new();
        short.add("s");
        assert_eq!(short.redact("status: 403"), "status: 403");
    }

    #[test]
    fn google_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        std::fs::write(
            &path,
            r#"{"type": "service_account", "private_key_id": "abcdef0123456789", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nSECONDLINEOFTHEKEYSECONDLINE\n-----END PRIVATE KEY-----\n", "client_email": "a@b.iam.gserviceaccount.com"}"#,
        )
        .unwrap();
        let mut env = CloudEnv::new();
        env.insert(
            "GOOGLE_APPLICATION_CREDENTIALS".into(),
            path.to_string_lossy().into_owned(),
        );
        let s = Secrets::from_env(&env);
        let out = s.redact("bad key MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7 then SECONDLINEOFTHEKEYSECONDLINE, id abcdef0123456789");
        assert!(!out.contains("MIIEvQ"), "{out}");
        assert!(!out.contains("SECONDLINE"), "{out}");
        assert!(!out.contains("abcdef0123456789"), "{out}");
    }

    #[test]
    fn ordinary_text_is_kept() {
        for t in [
            "s3 bucket \"media\" prefix \"film\" at http://127.0.0.1:9000: list failed: PermissionDenied (permanent) at list => status: 403",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code></Error>",
            "what? nothing",
            "failed to load signing credential",
            "the object kept changing while being read",
            "",
        ] {
            assert_eq!(redact(t), t);
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(base64(b"id:key"), "aWQ6a2V5");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
        assert_eq!(percent_decode("a%2Bb%2Fc%3D%"), "a+b/c=%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    /// Where a secret can sit in a message, `{}` standing for it.
    const CONTEXTS: &[&str] = &[
        "https://acct.blob.core.windows.net/c/k?sv=2022-11-02&sig={}&se=x",
        "http://127.0.0.1:9000/b/k?X-Amz-Credential=AK%2F1&X-Amz-Signature={}",
        "/b/k?X-Goog-Signature={}",
        "sv=2022-11-02&sig={}",
        "X-Amz-Signature={}",
        "x-amz-security-token={}",
        "access_token={};",
        "AccountKey={};EndpointSuffix=x",
        "https://user:{}@host/x",
        "Authorization: Bearer {}",
        "authorization: AWS4-HMAC-SHA256 Credential=A/B, Signature={}",
        "\"authorization\": \"Basic {}\"",
        "{\"access_token\": \"{}\"}",
        "Authorization: SharedKey acct:{}",
        "x-amz-security-token: {}",
        "'token': '{}'",
    ];

    fn text_around() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ -~\\n\\r]{0,40}").unwrap()
    }

    proptest! {
        #[test]
        fn planted_secret_never_survives(
            secret in "[A-Za-z0-9]{12,40}",
            context in 0..CONTEXTS.len(),
            before in text_around(),
            after in text_around(),
            known in any::<bool>(),
        ) {
            let planted = CONTEXTS[context].replacen("{}", &secret, 1);
            let text = format!("{before} {planted} {after}");
            let out = if known {
                let mut s = Secrets::new();
                s.add(&secret);
                s.redact(&text)
            } else {
                redact(&text)
            };
            prop_assert!(!out.contains(&secret), "{:?} -> {:?}", text, out);
        }

        #[test]
        fn known_secret_never_survives(
            // Printable, without space and the `<>` of the marker.
            secret in "[!-;=?-~]{8,40}",
            before in text_around(),
            after in text_around(),
        ) {
            let mut s = Secrets::new();
            s.add(&secret);
            let out = s.redact(&format!("{before}{secret}{after}"));
            prop_assert!(!out.contains(&secret), "{:?}", out);
        }

        #[test]
        fn never_panics_and_is_stable(
            text in "(sig|token|authorization|Bearer |SharedKey |https://|u:p@|ya29.|eyJhbGciOi|[?=&:;,.@ \"'\\\\<>\n\r{}()]|[a-zA-Z0-9]{1,12}|\\PC){0,60}"
        ) {
            let once = redact(&text);
            prop_assert_eq!(redact(&once), once);
        }
    }
}
