//! Hostile text in every public parser and constructor of ops-core: nothing panics (unicode,
//! control characters, NULs, 100 000 characters); everything accepted round-trips through
//! `Display`/`FromStr` and serde; every error quoting the input is bounded and carries no raw
//! control character; `PromQL` built from arguments keeps its shape; secrets are redacted in
//! every encoding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns"
)]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use ops_core::incident::{Severity, SeverityScale};
use ops_core::metrics::{MetricQuery, MetricWindow};
use ops_core::platform::{ExecCommand, LogFilter};
use ops_core::run::{Mode, RunId};
use ops_core::testing::assert_safe_error;
use ops_core::text::{self, Redactor};
use ops_core::{
    Identifier, InstanceRef, KeyPattern, Namespace, OpsError, Pid, ResourceName, TableRef,
    WorkloadKind, WorkloadRef,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Text an attacker would try: anything, name-like text with every special character, control
/// characters and invisible ones, and 100 000 characters.
fn hostile() -> impl Strategy<Value = String> {
    let nasty = prop_oneof![
        Just('\r'),
        Just('\n'),
        Just('\u{1b}'),
        Just('\0'),
        Just('\u{85}'),
        Just('\u{202e}'),
        Just('\u{2028}'),
        Just('"'),
        Just('.'),
        Just('/'),
        Just('*'),
        any::<char>(),
    ];
    prop_oneof![
        4 => any::<String>(),
        6 => "[a-zA-Z0-9._/:*?^\\[\\]\\\\\"'` -]{0,48}",
        4 => "[a-z0-9_-]{1,12}/(deployment|statefulset|daemonset|service|deploy|svc)/[a-zA-Z0-9._-]{1,24}(/[a-zA-Z0-9._-]{1,24})?",
        2 => proptest::collection::vec(nasty, 0..48).prop_map(|v| v.into_iter().collect()),
        1 => (any::<char>(), 100_000..100_016usize).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

/// Parse `input`; when accepted it round-trips through Display/FromStr and serde, when
/// refused the error is safe.
fn round_trips<T>(input: &str)
where
    T: FromStr<Err = OpsError> + Display + Debug + PartialEq + Serialize + DeserializeOwned,
{
    match input.parse::<T>() {
        Ok(value) => {
            let shown = value.to_string();
            assert_eq!(
                shown.parse::<T>().unwrap(),
                value,
                "Display/FromStr of {shown:?}"
            );
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(
                serde_json::from_str::<T>(&json).unwrap(),
                value,
                "serde of {json}"
            );
        }
        Err(e) => assert_safe_error(&e),
    }
    // serde goes through the same validation and never panics.
    let _ = serde_json::from_value::<T>(serde_json::Value::String(input.to_owned()));
}

/// Like [`round_trips`] for a constructor.
fn constructs<T: Display + FromStr<Err = OpsError> + PartialEq + Debug>(made: Result<T, OpsError>) {
    match made {
        Ok(value) => assert_eq!(value.to_string().parse::<T>().unwrap(), value),
        Err(e) => assert_safe_error(&e),
    }
}

fn refused(made: Result<impl Debug, OpsError>) {
    if let Err(e) = made {
        assert_safe_error(&e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn refs_never_panic_and_round_trip(input in hostile()) {
        round_trips::<Namespace>(&input);
        round_trips::<ResourceName>(&input);
        round_trips::<WorkloadKind>(&input);
        round_trips::<WorkloadRef>(&input);
        round_trips::<InstanceRef>(&input);
        round_trips::<Identifier>(&input);
        round_trips::<TableRef>(&input);
        round_trips::<KeyPattern>(&input);
        round_trips::<Pid>(&input);
        constructs(KeyPattern::new(&input));
        constructs(KeyPattern::prefix(&input));
        constructs(Identifier::new(&input));
        for kind in [WorkloadKind::Deployment, WorkloadKind::Service] {
            constructs(WorkloadRef::new(&input, kind, "api"));
            constructs(WorkloadRef::new("prod", kind, &input));
        }
    }

    #[test]
    fn run_incident_and_metric_parsers_never_panic_and_round_trip(input in hostile()) {
        round_trips::<Mode>(&input);
        round_trips::<RunId>(&input);
        round_trips::<Severity>(&input);
        round_trips::<MetricWindow>(&input);
        refused(SeverityScale::default().parse(&input));
        refused(LogFilter::new(&input));
        refused(ExecCommand::new([input.as_str()]));
        match MetricQuery::new(&input) {
            Ok(q) => {
                let json = serde_json::to_string(&q).unwrap();
                prop_assert_eq!(serde_json::from_str::<MetricQuery>(&json).unwrap(), q);
            }
            Err(e) => assert_safe_error(&e),
        }
    }

    #[test]
    fn tables_with_any_names_round_trip(
        schema in proptest::option::of("[a-z.\"]{1,8}|[^\\p{Cc}]{1,8}"),
        table in "[a-z.\"]{1,8}|[^\\p{Cc}]{1,8}",
    ) {
        let (Ok(table), Ok(schema)) = (Identifier::new(&table), schema.map(|s| Identifier::new(&s)).transpose()) else {
            return Ok(());
        };
        let t = TableRef::new(schema, table);
        prop_assert_eq!(t.to_string().parse::<TableRef>().unwrap(), t.clone());
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(serde_json::from_str::<TableRef>(&json).unwrap(), t);
    }

    #[test]
    fn quoting_is_bounded_escaped_and_idempotent(input in hostile()) {
        let q = text::quote(&input);
        prop_assert!(q.chars().count() <= text::QUOTE_MAX);
        prop_assert!(!q.chars().any(text::must_escape));
        prop_assert_eq!(text::quote(&q), q.clone());
        if input.chars().count() <= text::QUOTE_MAX && !input.chars().any(text::must_escape) {
            prop_assert_eq!(q, input);
        }
    }

    #[test]
    fn redacted_text_never_holds_the_secret(
        secret in "[A-Za-z0-9_.~+/=%@:-]{4,40}",
        before in any::<String>(),
        after in any::<String>(),
    ) {
        // Markers are constant text: whatever letters they share with a secret is no leak.
        let outside_markers = |s: &str| s.replace(text::REDACTED, "\u{1}");
        let r = Redactor::new().with_secret(&secret).with_url(&format!("https://h/{secret}?t={secret}"));
        let peer = format!("{before}{secret}{after}");
        let shown = outside_markers(&r.redact(&peer));
        prop_assert!(!shown.contains(&secret), "{shown:?}");
        let answer = r.peer_text(peer.as_bytes(), true);
        prop_assert!(answer.chars().count() <= text::PEER_MAX);
        prop_assert!(!answer.chars().any(text::must_escape));
        // Escapes and the length suffix are made of letters too; compare where they are absent.
        let plain = !peer.chars().any(text::must_escape) && peer.chars().count() < 200;
        if plain {
            prop_assert!(!outside_markers(&answer).contains(&secret), "{answer:?}");
        }
        // Read only in part, the beginning of the secret at the cut is dropped too.
        let half = &secret[..secret.len().div_ceil(2)];
        let cut = r.peer_text(half.as_bytes(), false);
        prop_assert!(!outside_markers(&cut).contains(half), "{cut:?}");
    }

    #[test]
    fn promql_arguments_cannot_change_the_query_shape(
        job in prop_oneof![any::<String>(), hostile()],
        window in prop_oneof![hostile(), "[0-9]{1,4}(y|w|d|h|m|s|ms)([0-9]{1,3}(s|ms))?"],
    ) {
        let window = window.parse::<MetricWindow>().unwrap_or_default();
        prop_assert!(window.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
        for (query, template) in [
            (MetricQuery::error_rate(&job, &window), MetricQuery::error_rate("J", &window)),
            (MetricQuery::p95_latency(&job, &window), MetricQuery::p95_latency("J", &window)),
        ] {
            let (shape, values) = promql_strings(query.as_str());
            let (template_shape, _) = promql_strings(template.as_str());
            prop_assert_eq!(shape, template_shape);
            for (label, value) in values {
                if label == "job" {
                    prop_assert_eq!(&value, &job);
                }
            }
            prop_assert!(MetricQuery::new(query.as_str()).is_ok());
        }
    }
}

/// Splits `PromQL` into its shape (every string literal replaced by `"…"`) and the
/// `(label, value)` of each string literal, unescaped by `PromQL`'s (Go's) rules. Panics on
/// an unterminated string or a raw newline in one, as Prometheus would refuse it.
fn promql_strings(q: &str) -> (String, Vec<(String, String)>) {
    let mut shape = String::new();
    let mut values = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            shape.push(c);
            continue;
        }
        let label: String = shape
            .chars()
            .rev()
            .skip_while(|c| matches!(c, '=' | '~' | '!'))
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated PromQL string") {
                '"' => break,
                '\n' => panic!("raw newline in a PromQL string"),
                '\\' => match chars.next().expect("dangling escape") {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'u' => {
                        let hex: String = (0..4).map(|_| chars.next().unwrap()).collect();
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    other => panic!("escape \\{other} is not produced"),
                },
                other => value.push(other),
            }
        }
        shape.push_str("\"…\"");
        values.push((label, value));
    }
    (shape, values)
}

#[test]
fn hostile_examples_from_the_issue_are_refused_safely() {
    let long = "x".repeat(100_000);
    for input in ["run\r\nFAKE ENTRY", "\u{1b}[2Jp0", long.as_str()] {
        for err in [
            input.parse::<RunId>().unwrap_err(),
            input.parse::<Severity>().unwrap_err(),
            MetricQuery::new(&format!("{input}\u{7}")).unwrap_err(),
            input.parse::<MetricWindow>().unwrap_err(),
        ] {
            assert_safe_error(&err);
            assert!(err.to_string().len() < 400, "{}", err.to_string().len());
        }
    }
}
