//! [`Redactor`]: strips the secrets a client sent from what a peer answers.

use std::fmt;

use super::{PEER_MAX, REDACTED, bounded};

/// What a secret is replaced with.
const MARK: &str = REDACTED;

/// Query values, fragments and user names shorter than this are not secrets (`?v=1`).
const MIN_URL_PART: usize = 4;

/// Query keys whose values are credentials, whatever they look like.
const CREDENTIAL_KEYS: [&str; 10] = [
    "token", "key", "sig", "secret", "pass", "auth", "code", "session", "cred", "jwt",
];

/// Whether a path segment or query value looks generated rather than chosen: 8 or more
/// characters with a digit, or 16 or more. Words such as `health` or `degraded` are not, so
/// what a server says about them stays readable; the whole path and query always count.
fn looks_like_token(s: &str) -> bool {
    let n = s.chars().count();
    n >= 8 && s.bytes().any(|b| b.is_ascii_digit()) || n >= 16
}

/// The secrets one client sends, and how to strip them from what a peer answers.
///
/// A receiver's 404 page may quote the request path (a Slack webhook's secret), a 400 may
/// quote the body (a PagerDuty routing key), a proxy may echo a header. Every client that
/// sends a credential builds a `Redactor` from it when it is built, and passes anything the
/// peer sends back through [`Redactor::peer_text`] (or [`Redactor::scrub`]) before it goes
/// into an error, a log, a report or a notification.
///
/// Each secret is recognised as sent and in the encodings a peer may echo it in: percent-
/// encoded and decoded, form-encoded, JSON- and HTML-escaped. `Debug` shows only how many
/// secrets it holds.
///
/// # Examples
/// ```
/// use ops_core::text::Redactor;
/// let r = Redactor::new()
///     .with_url("https://events.example/v2/enqueue?token=CANARY-7f3a9")
///     .with_secret("R0UTING-KEY");
/// let answer = br#"{"error":"bad key R0UTING-KEY for /v2/enqueue?token=CANARY-7f3a9"}"#;
/// let shown = r.peer_text(answer, true);
/// assert!(!shown.contains("R0UTING-KEY") && !shown.contains("CANARY"));
/// assert!(shown.contains("[redacted]"));
/// assert_eq!(format!("{r:?}"), "Redactor { secrets: 5, .. }");
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first.
    needles: Vec<String>,
    /// Secrets as given (for the count shown by `Debug`).
    secrets: usize,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The needles are the secrets: only their number is shown.
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor that knows no secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a secret (a token, a routing key, a password, a header value). Empty text is
    /// ignored. A header value of the form `Scheme credentials` (`Bearer abc`) also adds the
    /// credentials alone.
    ///
    /// # Examples
    /// ```
    /// let r = ops_core::text::Redactor::new().with_secret("Bearer s3cr3t-token");
    /// assert_eq!(r.redact("echo: s3cr3t-token"), "echo: [redacted]");
    /// ```
    #[must_use]
    pub fn with_secret(mut self, secret: &str) -> Self {
        self.add(secret, 1);
        if let Some((scheme, credentials)) = secret.split_once(' ')
            && !scheme.is_empty()
            && scheme.bytes().all(|b| b.is_ascii_alphabetic())
        {
            self.add(credentials.trim(), 1);
        }
        self
    }

    /// Add the secret parts of a URL: the password (and the `Basic` credentials built from
    /// it), the user name, the whole path, the path with its query, the query, the fragment,
    /// and on their own the path segments and query values that look generated (8 or more
    /// characters with a digit, or 16 or more) or follow a credential-like key (`token`,
    /// `key`, `sig`, `secret`, `pass`, `auth`, `code`, `session`, `cred`, `jwt`). Scheme,
    /// host and port are not secrets (they are what messages show), and neither are words
    /// such as `health`, so what a server says about them stays readable.
    ///
    /// # Examples
    /// ```
    /// let r = ops_core::text::Redactor::new()
    ///     .with_url("https://u:pw@hooks.example/services/T00/XXXXsecret42XX?sig=abcd&v=true");
    /// assert_eq!(r.redact("POST /services/T00/XXXXsecret42XX?sig=abcd&v=true failed"), "POST [redacted] failed");
    /// assert_eq!(r.redact("token XXXXsecret42XX"), "token [redacted]");
    /// assert_eq!(r.redact("signature abcd"), "signature [redacted]");
    /// assert_eq!(r.redact("services are true at hooks.example:443"), "services are true at hooks.example:443");
    /// ```
    #[must_use]
    pub fn with_url(mut self, url: &str) -> Self {
        let parts = UrlParts::split(url);
        if let Some(password) = parts.password {
            self.add(password, 1);
            let user = percent_decode(parts.user.unwrap_or_default());
            let basic = base64(format!("{user}:{}", percent_decode(password)).as_bytes());
            self.add(&basic, 1);
        }
        if let Some(user) = parts.user {
            self.add(user, MIN_URL_PART);
        }
        self.add(parts.path, 2);
        for segment in parts.path.split('/').filter(|s| looks_like_token(s)) {
            self.add(segment, 1);
        }
        if let Some(query) = parts.query {
            self.add(&format!("{}?{query}", parts.path), 2);
            self.add(query, MIN_URL_PART);
            for pair in query.split('&') {
                let (key, value) = pair.split_once('=').unwrap_or(("", pair));
                let key = percent_decode(key).to_ascii_lowercase();
                if looks_like_token(value) || CREDENTIAL_KEYS.iter().any(|k| key.contains(k)) {
                    self.add(value, MIN_URL_PART);
                }
            }
        }
        if let Some(fragment) = parts.fragment {
            self.add(fragment, MIN_URL_PART);
        }
        self
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every known secret, in every form, replaced by `[redacted]`.
    ///
    /// One pass, longest secret first at each position: what is left of the text after a
    /// replacement is never a secret (unless a secret contains `[` or `]` and so can be made
    /// of a marker and its neighbours).
    pub fn redact(&self, text: &str) -> String {
        if !self.needles.iter().any(|n| text.contains(n.as_str())) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while let Some(c) = rest.chars().next() {
            for needle in &self.needles {
                if let Some(after) = rest.strip_prefix(needle.as_str()) {
                    out.push_str(MARK);
                    rest = after;
                    continue 'scan;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// What a peer answered, fit for an error, a log or a report: decoded lossily as UTF-8,
    /// every known secret redacted, control characters escaped and cut to [`PEER_MAX`]
    /// characters.
    ///
    /// Pass `complete = false` when only the start of the answer was read: a secret cut at
    /// the end of what was read is recognised by its beginning and dropped too.
    ///
    /// # Examples
    /// ```
    /// let r = ops_core::text::Redactor::new().with_secret("CANARY-7f3a9");
    /// assert_eq!(r.peer_text(b"bad key CANARY-7f3a9\r\n", true), r"bad key [redacted]\r\n");
    /// assert_eq!(r.peer_text(b"bad key CANAR", false), "bad key ");
    /// ```
    pub fn peer_text(&self, body: &[u8], complete: bool) -> String {
        let text = String::from_utf8_lossy(body);
        let mut redacted = self.redact(&text);
        if !complete {
            let keep = redacted.len() - self.partial_tail(&redacted);
            redacted.truncate(keep);
        }
        bounded(&redacted, PEER_MAX)
    }

    /// Like [`Redactor::peer_text`] for text already decoded, cut to `max` characters.
    ///
    /// # Examples
    /// ```
    /// let r = ops_core::text::Redactor::new().with_secret("CANARY-7f3a9");
    /// assert_eq!(r.scrub("got \"CANARY-7f3a9\"\n", 80), r#"got "[redacted]"\n"#);
    /// ```
    pub fn scrub(&self, text: &str, max: usize) -> String {
        bounded(&self.redact(text), max)
    }

    /// The length of the longest end of `text` that begins some secret.
    fn partial_tail(&self, text: &str) -> usize {
        self.needles
            .iter()
            .flat_map(|n| {
                (1..n.len())
                    .rev()
                    .filter(|&k| n.is_char_boundary(k) && text.ends_with(&n[..k]))
                    .take(1)
            })
            .max()
            .unwrap_or(0)
    }

    /// Add `secret` in every form a peer may echo it, unless shorter than `min` bytes.
    fn add(&mut self, secret: &str, min: usize) {
        if secret.trim().len() < min.max(1) {
            return;
        }
        self.secrets += 1;
        let decoded = percent_decode(secret);
        for form in [secret, decoded.as_str()] {
            for variant in [
                form.to_owned(),
                percent_encode(form, false),
                percent_encode(form, true),
                percent_encode(form, false).replace("%20", "+"),
                json_escape(form),
                html_escape(form),
            ] {
                if !variant.is_empty() && !self.needles.contains(&variant) {
                    self.needles.push(variant);
                }
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }
}

/// The parts of `scheme://user:password@host:port/path?query#fragment`, split by hand so
/// that even a URL the `url` crate would refuse is taken apart.
struct UrlParts<'a> {
    user: Option<&'a str>,
    password: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Self {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (user, password) = match authority.rsplit_once('@') {
            Some((info, _)) => match info.split_once(':') {
                Some((u, p)) => (Some(u), Some(p)),
                None => (Some(info), None),
            },
            None => (None, None),
        };
        Self {
            user,
            password,
            path,
            query,
            fragment,
        }
    }
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(s: &str, lower: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if lower {
            let _ = write!(out, "%{b:02x}");
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decode the `%XX` escapes of a URL component (`+` stays `+`; invalid UTF-8 is replaced).
///
/// # Examples
/// ```
/// assert_eq!(ops_core::text::percent_decode("p%40s+s%zz"), "p@s+s%zz");
/// ```
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` as it appears inside a JSON string.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// `s` as it appears in an HTML page.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Standard base64 with padding (what `Authorization: Basic` carries).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-7f3a9";

    #[test]
    fn every_encoding_of_a_secret_is_redacted() {
        let r = Redactor::new().with_secret("p@ss word/+");
        for echoed in [
            "p@ss word/+",
            "p%40ss%20word%2F%2B",
            "p%40ss+word%2F%2B",
            "p%40ss%20word%2f%2b",
            "p@ss word/+",
        ] {
            assert_eq!(r.redact(&format!("<{echoed}>")), "<[redacted]>", "{echoed}");
        }
        let r = Redactor::new().with_secret("a\"b<c");
        assert_eq!(r.redact(r#"{"k":"a\"b<c"}"#), r#"{"k":"[redacted]"}"#);
        assert_eq!(r.redact("a&quot;b&lt;c"), "[redacted]");
    }

    #[test]
    fn url_secrets_are_path_query_userinfo_and_basic_credentials() {
        let url = format!(
            "http://ops:{CANARY}@127.0.0.1:9/hook/{CANARY}?token={CANARY}&v=1#frag-{CANARY}"
        );
        let r = Redactor::new().with_url(&url);
        let basic = base64(format!("ops:{CANARY}").as_bytes());
        for echoed in [
            url.clone(),
            format!("/hook/{CANARY}"),
            format!("Authorization: Basic {basic}"),
            format!("token={CANARY}"),
        ] {
            let shown = r.redact(&echoed);
            assert!(
                !shown.contains(CANARY) && !shown.contains(&basic),
                "{shown}"
            );
        }
        assert_eq!(r.redact("127.0.0.1:9 v=1"), "127.0.0.1:9 v=1");
    }

    #[test]
    fn a_secret_cut_by_the_read_limit_is_dropped() {
        let r = Redactor::new().with_secret(CANARY);
        let body = format!("quoted: {CANARY} and {}", &CANARY[..7]);
        assert_eq!(
            r.peer_text(body.as_bytes(), false),
            "quoted: [redacted] and "
        );
        assert_eq!(
            r.peer_text(body.as_bytes(), true),
            "quoted: [redacted] and CANARY-"
        );
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
