//! S3 Object Lock: reading and setting a bucket's default retention, the
//! one S3 setting a backup target needs that OpenDAL has no call for.
//!
//! Why a bucket default and not per-object headers: OpenDAL cannot send
//! `x-amz-object-lock-*` headers with a write, and a header added after
//! signing is refused by S3. With a default retention every object put into
//! the bucket is locked by S3 itself, whoever writes it. Such a bucket
//! refuses a PUT without `Content-MD5` (or an SDK checksum header), so a
//! backend that knows its bucket is locked sends `Content-MD5` and uploads
//! each object in one request (OpenDAL has no MD5 for multipart uploads).
//!
//! The bucket requests are signed with AWS Signature V4 by `reqsign` (the
//! signer OpenDAL itself uses) with the static credentials of the
//! environment, and sent through the operator's own HTTP transport.

use std::fmt;

/// Retention mode (S3's names): who may shorten or lift a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may delete a locked
    /// version or shorten its retention; nobody else.
    Governance,
    /// Nobody, the account's root user included, until it ends.
    Compliance,
}

impl LockMode {
    pub fn as_s3(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    /// `governance` or `compliance`, any case.
    pub fn parse(s: &str) -> Option<LockMode> {
        match s.to_ascii_lowercase().as_str() {
            "governance" => Some(LockMode::Governance),
            "compliance" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        })
    }
}

/// A bucket's Object Lock configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLock {
    /// Object Lock is on (it can only be turned on, never off).
    pub enabled: bool,
    /// The default retention new objects get: mode and days (a rule in
    /// years counts 365 days each).
    pub default_retention: Option<(LockMode, u32)>,
}

/// The text between `<tag>` and `</tag>`, the first time it appears.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(xml[start..start + len].trim())
}

/// Parses a GetObjectLockConfiguration answer. Bounded by its caller (the
/// body is at most [`MAX_ANSWER`] bytes); unknown elements are ignored.
pub fn parse_configuration(xml: &str) -> Result<ObjectLock, String> {
    let enabled = element(xml, "ObjectLockEnabled") == Some("Enabled");
    let default_retention = match element(xml, "DefaultRetention") {
        None => None,
        Some(rule) => {
            let mode = element(rule, "Mode")
                .and_then(LockMode::parse)
                .ok_or_else(|| format!("a default retention without a known mode: {rule:?}"))?;
            let num = |t: &str| -> Result<Option<u32>, String> {
                element(rule, t)
                    .map(|v| {
                        v.parse::<u32>()
                            .map_err(|_| format!("{t} {v:?} is not a number of {t}"))
                    })
                    .transpose()
            };
            // (Some servers also send the other one as 0.)
            let days = match (num("Days")?, num("Years")?) {
                (Some(d), None | Some(0)) if d > 0 => d,
                (None | Some(0), Some(y)) if y > 0 => y.saturating_mul(365),
                _ => {
                    return Err(format!(
                        "a default retention with neither or both of Days and Years: {rule:?}"
                    ))
                }
            };
            Some((mode, days))
        }
    };
    Ok(ObjectLock {
        enabled,
        default_retention,
    })
}

/// The body of a PutObjectLockConfiguration request.
pub fn configuration_xml(mode: LockMode, days: u32) -> String {
    format!(
        "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
<Mode>{}</Mode><Days>{days}</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
        mode.as_s3()
    )
}

/// Longest answer read from a bucket request: a lock configuration or an
/// error document is a few hundred bytes.
pub const MAX_ANSWER: usize = 64 << 10;

/// What a signed bucket request needs.
#[derive(Clone)]
pub(crate) struct S3Bucket {
    /// `scheme://host[:port]`, path-style requests (`/BUCKET?...`), as
    /// OpenDAL's S3 service sends them by default.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Static credentials from the environment, if any.
    pub keys: Option<(String, String, Option<String>)>,
}

impl fmt::Debug for S3Bucket {
    /// Never prints the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Bucket")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// An answer: status and (bounded) body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl S3Bucket {
    /// Sends `method /BUCKET?object-lock` signed, with `body` (and its
    /// Content-MD5, which S3 requires for this PUT).
    pub async fn object_lock_request(
        &self,
        transport: &opendal::HttpTransporter,
        method: http::Method,
        body: Option<String>,
    ) -> Result<Answer, String> {
        if self.keys.is_none() {
            return Err("S3 Object Lock settings are read and set with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment, and they are not set".into());
        }
        let body = body.unwrap_or_default();
        let md5 = !body.is_empty();
        let path = format!("/{}?object-lock=", self.bucket);
        self.signed(transport, method, &path, &[], body, md5).await
    }

    /// CopyObject of `src_bucket/src_key` onto `dst_key` in this bucket
    /// (keys are full keys in their buckets; MediaGit keys need no
    /// escaping: they are checked by `validate_key`). `md5`: send the
    /// empty body's Content-MD5, which a bucket with a default retention
    /// may ask of every PUT.
    pub async fn copy_object(
        &self,
        transport: &opendal::HttpTransporter,
        src_bucket: &str,
        src_key: &str,
        dst_key: &str,
        if_match: &str,
        md5: bool,
    ) -> Result<Answer, String> {
        if self.keys.is_none() {
            return Err("no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".into());
        }
        // Percent-encoded once (a prefix may hold spaces, '?', '#', '%'
        // or other bytes): the source header and the request path alike.
        let source = uri_encode(&format!("/{src_bucket}/{src_key}"));
        let path = uri_encode(&format!("/{}/{dst_key}", self.bucket));
        self.signed(
            transport,
            http::Method::PUT,
            &path,
            &[
                ("x-amz-copy-source", source),
                // Only the bytes the caller verified.
                ("x-amz-copy-source-if-match", format!("\"{if_match}\"")),
            ],
            String::new(),
            md5,
        )
        .await
    }

    /// One request, path-style, signed with the static credentials.
    async fn signed(
        &self,
        transport: &opendal::HttpTransporter,
        method: http::Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: String,
        md5: bool,
    ) -> Result<Answer, String> {
        use reqsign_aws_v4::{Credential, RequestSigner, StaticCredentialProvider};
        let Some((ak, sk, token)) = &self.keys else {
            return Err("no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".into());
        };
        let uri = format!("{}{path_and_query}", self.endpoint);
        let mut req = http::Request::builder().method(method).uri(&uri);
        req = req.header(http::header::CONTENT_LENGTH, body.len());
        if !body.is_empty() {
            req = req.header(http::header::CONTENT_TYPE, "application/xml");
        }
        if md5 {
            req = req.header(
                "content-md5",
                opendal::raw::format_content_md5(body.as_bytes()),
            );
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(opendal::Buffer::from(body))
            .map_err(|e| format!("cannot build the request {uri}: {e}"))?;
        let mut provider = StaticCredentialProvider::new(ak, sk);
        if let Some(t) = token {
            provider = provider.with_session_token(t);
        }
        let signer: reqsign_core::Signer<Credential> = reqsign_core::Signer::new(
            reqsign_core::Context::new(),
            provider,
            RequestSigner::new("s3", &self.region),
        );
        let (mut parts, body) = req.into_parts();
        signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| format!("cannot sign the request: {e}"))?;
        // The transport sets Host from the URI (as OpenDAL's S3 service does).
        parts.headers.remove(http::header::HOST);
        let resp = transport
            .send(http::Request::from_parts(parts, body))
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let raw = resp.into_body().to_bytes();
        let cut = &raw[..raw.len().min(MAX_ANSWER)];
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(cut).into_owned(),
        })
    }
}

/// A path percent-encoded as SigV4 and S3 want it: every byte but
/// `A-Z a-z 0-9 - _ . ~` and `/` as `%XX`.
pub(crate) fn uri_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `<Code>` of an S3 error document, if any.
pub(crate) fn error_code(body: &str) -> Option<&str> {
    element(body, "Code")
}

/// The `<Message>` of an S3 error document, if any (at most 300 bytes).
pub(crate) fn error_message(body: &str) -> Option<&str> {
    let m = element(body, "Message")?;
    let mut end = m.len().min(300);
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    Some(&m[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse_and_bad_ones_are_refused() {
        let none = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
        assert_eq!(
            parse_configuration(none).unwrap(),
            ObjectLock {
                enabled: true,
                default_retention: None
            }
        );
        let days = configuration_xml(LockMode::Compliance, 30);
        assert_eq!(
            parse_configuration(&days).unwrap().default_retention,
            Some((LockMode::Compliance, 30))
        );
        let years = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(
            parse_configuration(years).unwrap().default_retention,
            Some((LockMode::Governance, 730))
        );
        for bad in [
            "<DefaultRetention><Mode>SOMETIMES</Mode><Days>1</Days></DefaultRetention>",
            "<DefaultRetention><Mode>GOVERNANCE</Mode><Days>-1</Days></DefaultRetention>",
            "<DefaultRetention><Mode>GOVERNANCE</Mode></DefaultRetention>",
            "<DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention>",
            "<DefaultRetention><Mode>GOVERNANCE</Mode><Days>99999999999</Days></DefaultRetention>",
        ] {
            assert!(parse_configuration(bad).is_err(), "{bad}");
        }
        let moto = "<DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>0</Years></DefaultRetention>";
        assert_eq!(
            parse_configuration(moto).unwrap().default_retention,
            Some((LockMode::Governance, 1))
        );
        assert!(parse_configuration(
            "<DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days><Years>0</Years></DefaultRetention>"
        )
        .is_err());
        assert!(!parse_configuration("<x/>").unwrap().enabled);
        assert_eq!(
            error_code("<Error><Code>AccessDenied</Code></Error>"),
            Some("AccessDenied")
        );
        assert_eq!(LockMode::parse("Governance"), Some(LockMode::Governance));
        assert_eq!(LockMode::parse("legal"), None);
        assert_eq!(
            uri_encode("/b/a b?c#d%41é/k.pack"),
            "/b/a%20b%3Fc%23d%2541%C3%A9/k.pack"
        );
    }
}
