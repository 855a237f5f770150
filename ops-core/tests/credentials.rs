//! `text::redact_credentials` and `text::evidence` as properties: a generated secret, written
//! in any of the shapes a system under diagnosis shows credentials in (SQL literals in every
//! quoting, connection strings, URLs, headers, JSON, command lines, Redis directives) never
//! survives, even cut by the evidence length; redaction is idempotent and never panics; and
//! no credential reaches a report through `Run::finding`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns"
)]

use ops_core::run::{Finding, RunContext, RunOutcome};
use ops_core::text::{self, redact_credentials};
use proptest::prelude::*;

/// A secret: a recognisable head, then any printable ASCII but white space (what password
/// generators produce), quotes, backslashes, `@`, `/` and `:` included.
fn secret() -> impl Strategy<Value = String> {
    "[!-~]{4,24}".prop_map(|tail| format!("S3cr3t{tail}"))
}

/// A secret without the characters a given syntax cannot hold unescaped.
fn plain_secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#%*+,./;<=>?@^_{|}~-]{4,24}".prop_map(|tail| format!("S3cr3t{tail}"))
}

fn sql_quote(s: &str) -> String {
    s.replace('\'', "''")
}

fn e_quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

fn json_quote(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Every shape `secret` may be shown in.
fn shapes(secret: &str, plain: &str) -> Vec<String> {
    vec![
        format!("ALTER ROLE app WITH PASSWORD '{}'", sql_quote(secret)),
        format!(
            "alter user app encrypted password E'{}' valid until 'infinity'",
            e_quote(secret)
        ),
        format!("CREATE ROLE r LOGIN PASSWORD $pw${plain}$pw$"),
        format!("ALTER ROLE app PASSWORD '{}", sql_quote(secret)),
        format!("SELECT dblink_connect('host=db password={plain} dbname=app')"),
        format!(
            "host=db user=app password='{}' sslmode=require",
            e_quote(secret)
        ),
        format!("postgres://app:{plain}@db.internal:5432/app?sslmode=require"),
        format!("GET /v1/items?user=a&password={plain}&page=2 HTTP/1.1"),
        format!("Authorization: Bearer {plain}\r\nHost: api"),
        format!("proxy-authorization: Basic {plain}"),
        format!("retrying with bearer {plain} after 401"),
        format!(
            r#"{{"user":"app","password":"{}","db":"x"}}"#,
            json_quote(secret)
        ),
        format!("DB_PASSWORD={plain} ./start.sh"),
        format!("worker --api-key {plain} --verbose"),
        format!("CONFIG SET requirepass {plain}"),
        format!("level=error msg=\"auth failed\" token={plain}"),
        format!("client_secret: {plain}"),
    ]
}

/// Whether any five characters in a row of `secret` appear in `shown` (a partly hidden
/// secret is a leaked one).
fn leaks(secret: &str, shown: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(5)
        .any(|w| shown.contains(&w.iter().collect::<String>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_secret_never_survives_in_any_shape(secret in secret(), plain in plain_secret(), cut in 20usize..200) {
        for shown in shapes(&secret, &plain) {
            let redacted = redact_credentials(&shown);
            for s in [&secret, &plain] {
                prop_assert!(!leaks(s, &redacted), "{shown:?} -> {redacted:?}");
                // Cut by the evidence length, no part of it remains either.
                let evidence = text::evidence(&shown, cut);
                prop_assert!(!evidence.contains("S3cr3t"), "{shown:?} -> {evidence:?}");
            }
            prop_assert!(redacted.contains(text::REDACTED), "{redacted:?}");
        }
    }

    #[test]
    fn redaction_is_idempotent_and_total(input in any::<String>(), secret in secret()) {
        let once = redact_credentials(&input);
        prop_assert_eq!(redact_credentials(&once), once.clone());
        for shown in shapes(&secret, "S3cr3tplain") {
            let mixed = format!("{input} {shown} {input}");
            let once = redact_credentials(&mixed);
            prop_assert_eq!(redact_credentials(&once), once.clone());
        }
    }

    #[test]
    fn text_without_credential_shapes_is_unchanged(words in proptest::collection::vec(
        prop_oneof![
            Just("SELECT"), Just("password"), Just("FROM"), Just("users"), Just("WHERE"),
            Just("id=$1"), Just("$1"), Just("'x'"), Just("timeout"), Just("error:"),
            Just("https://api.example/health"), Just("user@example.com"), Just("42"),
            Just("connection"), Just("refused"), Just("Bearer"), Just("tokens"),
        ],
        0..16,
    )) {
        let line = words.join(" ");
        // `password 'x'` and `Bearer <word>` are credential shapes by design.
        prop_assume!(!line.contains("password '"));
        prop_assume!(!line.contains("Bearer "));
        prop_assert_eq!(redact_credentials(&line), line);
    }
}

#[tokio::test]
async fn findings_never_carry_credentials_into_the_report() {
    let ctx = RunContext::builder().build();
    let run = ctx.begin("demo", "db").await;
    run.finding(
        Finding::warning("session ALTER ROLE app PASSWORD 'CANARY-f00d'")
            .with_evidence("pid 7: postgres://app:CANARY-f00d@db/app")
            .with_evidence("Authorization: Bearer CANARY-f00d"),
    );
    let report = run.finish(RunOutcome::Healthy).await;
    let shown = format!("{}{}", report.to_markdown(), report.to_json().unwrap());
    assert!(!shown.contains("CANARY-f00d"), "{shown}");
    assert!(shown.contains("PASSWORD '[redacted]'"), "{shown}");
}
