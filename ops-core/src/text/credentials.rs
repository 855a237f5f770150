//! [`redact_credentials`]: credentials in text from a system under diagnosis.
//!
//! [`super::Redactor`] strips secrets opsbook itself sent. Text read from the systems it
//! diagnoses — session queries from `pg_stat_activity`, slow-query text, container log lines,
//! events — carries secrets nobody told us about: `ALTER ROLE app PASSWORD '…'`, a
//! connection string, an `Authorization` header a service logged. They are recognised by
//! their shape and replaced before the text reaches a finding, a report or a notification.

use super::REDACTED;

/// Key names (lowercase substrings) whose value is a credential: `password=`, `"api_key":`,
/// `db_password:`, `X-Auth-Token:`, `--secret=`…
const SECRET_KEY_PARTS: [&str; 19] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "accesskey",
    "private_key",
    "privatekey",
    "credential",
    "requirepass",
    "masterauth",
    "sessionid",
    "session_id",
    "signature",
];

/// Key names that are credentials only as a whole word (`pass=`, `auth:`).
const SECRET_KEYS: [&str; 3] = ["pass", "auth", "sig"];

/// Keys whose value runs to the end of the line (header values hold spaces).
const LINE_KEYS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Keys whose value may follow a space instead of `=` or `:` (Redis configuration
/// directives): `CONFIG SET requirepass s3cret`.
const SPACED_KEYS: [&str; 2] = ["requirepass", "masterauth"];

/// `text` with every credential it recognises replaced by `[redacted]`:
///
/// - SQL password literals: `PASSWORD 'x'` (also `E'…'`, `U&'…'`, `$$…$$`, `$tag$…$tag$`, a
///   literal cut off at the end of the text), as in `ALTER ROLE … PASSWORD`,
///   `CREATE USER … ENCRYPTED PASSWORD`, user mappings;
/// - values of credential-like keys: `password=…` (libpq connection strings, URL queries,
///   `KEY=value` environment lines), `"api_key": "…"` (JSON), `db_password: …` (YAML, logs),
///   `--token=…` / `--password …` (command lines), `requirepass …` (Redis); a quoted value
///   is replaced inside its quotes, an unquoted one up to the next white space;
/// - `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` values to the end of
///   the line (the scheme, `Bearer` or `Basic`, is kept), and the token after any `Bearer`;
/// - the password of a URL's user info (`postgres://app:…@db/app`), up to the last `@`
///   before the next white space, so a password holding `@` or `/` goes too;
/// - the body of a PEM `PRIVATE KEY` block.
///
/// It errs on the side of hiding: a value that merely sits where a credential would
/// (`tokens=5`, a URL whose query holds an e-mail address) is hidden too. Quotes and
/// keys stay, so the text still reads. Idempotent, never panics; the result is not
/// escaped or shortened (see [`super::evidence`] for that).
///
/// # Examples
/// ```
/// use ops_core::text::redact_credentials;
/// assert_eq!(
///     redact_credentials("ALTER ROLE app PASSWORD 'hunter2'"),
///     "ALTER ROLE app PASSWORD '[redacted]'"
/// );
/// assert_eq!(
///     redact_credentials("connect host=db user=app password=s3cr3t dbname=app"),
///     "connect host=db user=app password=[redacted] dbname=app"
/// );
/// assert_eq!(
///     redact_credentials("GET / Authorization: Bearer eyJhbGciOi.x.y"),
///     "GET / Authorization: Bearer [redacted]"
/// );
/// assert_eq!(
///     redact_credentials("dial postgres://app:p@ss/w0rd@db:5432/app failed"),
///     "dial postgres://app:[redacted]@db:5432/app failed"
/// );
/// assert_eq!(redact_credentials("SELECT password FROM users"), "SELECT password FROM users");
/// ```
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    // Everything before `copied` is in `out` already.
    let mut copied = 0;
    while i < bytes.len() {
        // What to hide from here, if anything, and where to look next if nothing.
        let (found, next) = if bytes[i..].starts_with(b"://") {
            (url_password(text, i + 3), i + 3)
        } else if bytes[i..].starts_with(b"-----BEGIN ") {
            (pem_private_key(text, i), i + 1)
        } else if (i == 0 || !is_key_byte(bytes[i - 1])) && is_key_start(bytes[i]) {
            let end = key_end(bytes, i);
            (value_of(text, &text[i..end], end), end)
        } else {
            (None, i + 1)
        };
        match found {
            Some(value) => {
                out.push_str(&text[copied..value.from]);
                out.push_str(&value.replacement);
                copied = value.to;
                i = value.to;
            }
            None => i = next,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Bytes of a key name: ASCII letters, digits, `_`, `-`, `.`.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

fn key_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < bytes.len() && is_key_byte(bytes[end]) {
        end += 1;
    }
    // A trailing dot ends a sentence, not a key.
    while end > start + 1 && bytes[end - 1] == b'.' {
        end -= 1;
    }
    end
}

/// Where a value to hide starts and ends, and what goes there.
struct Value {
    from: usize,
    to: usize,
    replacement: String,
}

/// How a key is written, once its leading dashes are gone and it is lowercased.
fn key_kind(key: &str) -> Option<KeyKind> {
    let flag = key.starts_with('-');
    let name = key.trim_start_matches('-').to_ascii_lowercase();
    if name == "bearer" {
        return Some(KeyKind::Bearer);
    }
    if LINE_KEYS.contains(&name.as_str()) {
        return Some(KeyKind::Line);
    }
    if SPACED_KEYS.contains(&name.as_str()) || flag && is_secret_name(&name) {
        return Some(KeyKind::Spaced);
    }
    if name == "password" {
        return Some(KeyKind::SqlPassword);
    }
    is_secret_name(&name).then_some(KeyKind::Assigned)
}

fn is_secret_name(name: &str) -> bool {
    SECRET_KEYS.contains(&name) || SECRET_KEY_PARTS.iter().any(|p| name.contains(p))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// `key=value`, `key: value`, `"key": "value"`.
    Assigned,
    /// `password=value` or SQL's `PASSWORD 'literal'`.
    SqlPassword,
    /// `key=value` or `key value` (command-line flags, Redis directives).
    Spaced,
    /// `Header: value to the end of the line`.
    Line,
    /// `Bearer token`.
    Bearer,
}

/// The value after `key` (which ends at `end`), if `key` names a credential and has one.
fn value_of(text: &str, key: &str, end: usize) -> Option<Value> {
    let kind = key_kind(key)?;
    let bytes = text.as_bytes();
    let mut i = end;
    if kind == KeyKind::Bearer {
        let start = skip_blanks(bytes, i);
        if start == i {
            return None;
        }
        let to = token_end(bytes, start);
        return (to > start).then(|| Value {
            from: start,
            to,
            replacement: REDACTED.to_owned(),
        });
    }
    // The closing quote of a quoted key (`"password":`, `\"password\":`).
    let mut quotes = 0;
    while quotes < 2 && i < bytes.len() && matches!(bytes[i], b'"' | b'\'' | b'\\') {
        i += 1;
        quotes += 1;
    }
    let before_sep = skip_blanks(bytes, i);
    let separator = [&b"=>"[..], b":=", b"=", b":"]
        .into_iter()
        .find(|s| bytes[before_sep..].starts_with(s));
    let start = if let Some(sep) = separator {
        skip_blanks(bytes, before_sep + sep.len())
    } else {
        // No `=` or `:`: only a space-separated value, and only where that is the syntax.
        if before_sep == end || quotes > 0 {
            return None;
        }
        match kind {
            KeyKind::SqlPassword if quoted_start(bytes, before_sep).is_some() => before_sep,
            KeyKind::Spaced
                if before_sep < bytes.len()
                    && !bytes[before_sep].is_ascii_whitespace()
                    && bytes[before_sep] != b'-' =>
            {
                before_sep
            }
            _ => return None,
        }
    };
    if start >= bytes.len() || matches!(bytes[start], b'\n' | b'\r') {
        return None;
    }
    if let Some(quoted) = quoted_value(text, start) {
        return Some(quoted);
    }
    let to = if kind == KeyKind::Line {
        line_end(bytes, start)
    } else {
        token_end(bytes, start)
    };
    if is_placeholder(&bytes[start..to]) {
        return None;
    }
    let mut from = start;
    if kind == KeyKind::Line {
        // Keep the scheme of `Authorization: Bearer xyz` so the text still says what it was.
        let word = bytes[start..to]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if word > 0
            && bytes
                .get(start + word)
                .is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            from = skip_blanks(bytes, start + word);
        }
    }
    (to > from).then(|| Value {
        from,
        to,
        replacement: REDACTED.to_owned(),
    })
}

/// A bind parameter, not a value: `$1`, `?`, `%s` (with a trailing `,`, `)` or `;`).
fn is_placeholder(value: &[u8]) -> bool {
    let mut end = value.len();
    while end > 0 && matches!(value[end - 1], b',' | b')' | b';') {
        end -= 1;
    }
    match &value[..end] {
        [b'?'] | [b'%', b's'] => true,
        [b'$', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Spaces and tabs (not line breaks) from `i` on.
fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// The end of the run of non-white-space bytes starting at `i`.
fn token_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn line_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
        i += 1;
    }
    // Trailing blanks are not part of the value.
    while i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    i
}

/// How a quoted value opens at `i`: the prefix length (`E`, `U&`) and the quote, or a
/// dollar-quote tag (`$$`, `$tag$`).
fn quoted_start(bytes: &[u8], i: usize) -> Option<Quote> {
    let rest = &bytes[i..];
    match rest {
        [b'\'' | b'"', ..] => Some(Quote::Char(0, rest[0])),
        [b'E' | b'e', b'\'', ..] => Some(Quote::Char(1, b'\'')),
        [b'U' | b'u', b'&', b'\'', ..] => Some(Quote::Char(2, b'\'')),
        [b'$', ..] => {
            let tag = rest[1..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            let first_ok = tag == 0 || !rest[1].is_ascii_digit();
            (first_ok && rest.get(1 + tag) == Some(&b'$')).then_some(Quote::Dollar(tag + 2))
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Quote {
    /// Prefix length, quote byte.
    Char(usize, u8),
    /// Length of the `$tag$` delimiter.
    Dollar(usize),
}

/// A quoted value at `start`, replaced inside its quotes. An unterminated one runs to the
/// end of the text (a query cut at `track_activity_query_size` still hides its password).
fn quoted_value(text: &str, start: usize) -> Option<Value> {
    let bytes = text.as_bytes();
    match quoted_start(bytes, start)? {
        Quote::Char(prefix, quote) => {
            let from = start + prefix + 1;
            // Whether a backslash escapes depends on a setting we cannot see
            // (`standard_conforming_strings`, libpq vs SQL, JSON): end where the later of
            // the two readings ends, so the value is hidden whichever one is right.
            let to = closing_quote(bytes, from, quote, true)
                .max(closing_quote(bytes, from, quote, false));
            Some(hidden(from, to))
        }
        Quote::Dollar(len) => {
            let delimiter = &text[start..start + len];
            let from = start + len;
            let to = text[from..]
                .find(delimiter)
                .map_or(text.len(), |n| from + n);
            Some(hidden(from, to))
        }
    }
}

/// The quoted value `from..to`, hidden (an empty one stays empty).
fn hidden(from: usize, to: usize) -> Value {
    Value {
        from,
        to,
        replacement: if to > from { REDACTED } else { "" }.to_owned(),
    }
}

/// Where a value quoted with `quote` and starting at `from` ends (the closing quote, or the
/// end of the text): a doubled quote is one quote; with `backslash`, `\` escapes the next byte.
fn closing_quote(bytes: &[u8], from: usize, quote: u8, backslash: bool) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The password of the URL user info starting at `start` (just after `://`), as a range.
///
/// The user info ends at the last `@` before the next white space: a password may hold `@`,
/// `/` or `:` unescaped, and hiding too much beats showing part of it. The user name (before
/// the first `:`) must look like one: no `/`, `?`, `#` or quote in it.
fn url_password(text: &str, start: usize) -> Option<Value> {
    let bytes = text.as_bytes();
    let end = token_end(bytes, start);
    let at = start + text[start..end].rfind('@')?;
    let colon = start + text[start..at].find(':')?;
    let user = &bytes[start..colon];
    if user
        .iter()
        .any(|b| matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`'))
    {
        return None;
    }
    (at > colon + 1).then(|| hidden(colon + 1, at))
}

/// The body of a `-----BEGIN … PRIVATE KEY-----` block starting at `start`, to its `-----END`
/// line or the end of the text.
fn pem_private_key(text: &str, start: usize) -> Option<Value> {
    let header_end = start + 11 + text[start + 11..].find("-----")?;
    let label = &text[start + 11..header_end];
    if !label.ends_with("PRIVATE KEY") || label.len() > 40 {
        return None;
    }
    let from = header_end + 5;
    let to = text[from..]
        .find("-----END")
        .map_or(text.len(), |n| from + n);
    (to > from).then(|| hidden(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_password_literals_in_every_quoting() {
        for (input, shown) in [
            (
                "ALTER ROLE app WITH PASSWORD 'it''s-s3cret'",
                "ALTER ROLE app WITH PASSWORD '[redacted]'",
            ),
            (
                "CREATE USER u ENCRYPTED PASSWORD E'a\\'b' VALID UNTIL 'infinity'",
                "CREATE USER u ENCRYPTED PASSWORD E'[redacted]' VALID UNTIL 'infinity'",
            ),
            (
                "alter role x password $pw$s3cr3t$pw$;",
                "alter role x password $pw$[redacted]$pw$;",
            ),
            (
                "ALTER ROLE x PASSWORD $$a$$",
                "ALTER ROLE x PASSWORD $$[redacted]$$",
            ),
            (
                "ALTER ROLE x PASSWORD U&'d\\0061t'",
                "ALTER ROLE x PASSWORD U&'[redacted]'",
            ),
            (
                "ALTER ROLE x PASSWORD 'cut-off-by-track_act",
                "ALTER ROLE x PASSWORD '[redacted]",
            ),
            (
                "OPTIONS (user 'bob', password 'pw-42')",
                "OPTIONS (user 'bob', password '[redacted]')",
            ),
            (
                "SELECT dblink_connect('host=h password=s3cr3t dbname=x')",
                "SELECT dblink_connect('host=h password=[redacted] dbname=x')",
            ),
            (
                "WHERE password = 'hunter2'",
                "WHERE password = '[redacted]'",
            ),
        ] {
            assert_eq!(redact_credentials(input), shown, "{input}");
        }
    }

    #[test]
    fn keys_headers_urls_and_keys_blocks() {
        for (input, shown) in [
            (
                r#"{"password":"p\"w","user":"u"}"#,
                r#"{"password":"[redacted]","user":"u"}"#,
            ),
            ("PGPASSWORD=abc pg_dump", "PGPASSWORD=[redacted] pg_dump"),
            ("x-api-key: k-123", "x-api-key: [redacted]"),
            (
                "run --token=abc --verbose",
                "run --token=[redacted] --verbose",
            ),
            (
                "run --password abc --verbose",
                "run --password [redacted] --verbose",
            ),
            (
                "CONFIG SET requirepass s3",
                "CONFIG SET requirepass [redacted]",
            ),
            (
                "Authorization: Basic dXNlcjpwdw==\nnext",
                "Authorization: Basic [redacted]\nnext",
            ),
            ("Cookie: a=1; b=2", "Cookie: [redacted]"),
            ("sent bearer abc.def to x", "sent bearer [redacted] to x"),
            (
                "GET /x?user=a&password=b&v=1 200",
                "GET /x?user=a&password=[redacted] 200",
            ),
            (
                "redis://:pw@cache:6379/0",
                "redis://:[redacted]@cache:6379/0",
            ),
            ("https://u@host/x", "https://u@host/x"),
            ("https://host:8443/x", "https://host:8443/x"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY-----[redacted]-----END RSA PRIVATE KEY-----",
            ),
        ] {
            assert_eq!(redact_credentials(input), shown, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in [
            "",
            "SELECT password FROM users WHERE id = $1",
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            "password authentication failed for user \"app\"",
            "connection refused (os error 111)",
            "https://api.example/v1/health?verbose=1",
            "see http://10.0.0.1:8080/x for details",
            "tokens",
            "a bearer",
            "ERROR:  relation \"x\" does not exist at character 15",
        ] {
            assert_eq!(redact_credentials(s), s);
        }
    }
}
