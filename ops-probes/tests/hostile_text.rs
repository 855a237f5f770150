//! Hostile text in every parser and builder of ops-probes: nothing panics; accepted
//! conditions read back as themselves; every error is bounded and escaped; names taken from
//! input never carry control characters into results.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] fns")]

use ops_core::testing::{assert_safe_error, assert_safe_message};
use ops_core::{OpsError, Probe, text};
use ops_probes::condition::parse_duration;
use ops_probes::{Condition, HttpProbe, PrometheusMetricsBuilder, TcpProbe, TlsProbe};
use proptest::prelude::*;

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "\\[(STATUS|BODY|RESPONSE_TIME|CERTIFICATE_EXPIRATION|CONNECTED|X\u{1b})\\][./a-z0-9\\[\\]]{0,8} ?(==|!=|<|>|<=|>=)? ?(pat|re|any)?\\(?[a-z0-9*?,\"\\\\()\\[\\]\\n\\r ]{0,16}\\)?",
        3 => "[a-z0-9.:_\\[\\]-]{0,40}",
        2 => proptest::collection::vec(prop_oneof![Just('\r'), Just('\n'), Just('\u{1b}'), Just('\0'), any::<char>()], 0..40)
            .prop_map(|v| v.into_iter().collect()),
        1 => (any::<char>(), 100_000..100_008usize).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

fn safe(err: ops_probes::Error) {
    assert_safe_message(&err.to_string());
    assert_safe_error(&OpsError::from(err));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conditions_never_panic_and_read_back(input in hostile()) {
        match input.parse::<Condition>() {
            Ok(c) => {
                let again: Condition = c.to_string().parse().unwrap();
                prop_assert_eq!(again.to_string(), c.to_string());
            }
            Err(e) => {
                assert_safe_message(&e.to_string());
                // Two lines, the input and the caret, and nothing raw in either.
                let rendered = e.render();
                prop_assert_eq!(rendered.lines().count(), 2);
                prop_assert!(!rendered.lines().any(|l| l.chars().any(text::must_escape)));
                safe(ops_probes::Error::Condition(e));
            }
        }
        let _ = parse_duration(&input);
    }

    #[test]
    fn builders_never_panic_and_refuse_safely(input in hostile(), port in any::<u16>()) {
        let http = HttpProbe::builder(&input)
            .with_method(&input)
            .with_header(input.clone(), "v")
            .json_eq(&input, "ok")
            .json_matches("/x", &input)
            .body_matches(&input)
            .with_condition(&input)
            .build();
        if let Err(e) = http {
            safe(e);
        }
        if let Err(e) = HttpProbe::builder("http://127.0.0.1/").with_header("x-k", input.clone()).build() {
            safe(e);
        }
        match TcpProbe::new(&input, port) {
            Ok(p) => prop_assert!(!p.name().chars().any(text::must_escape)),
            Err(e) => safe(e),
        }
        match TlsProbe::new(&input, port) {
            Ok(p) => {
                prop_assert!(!p.name().chars().any(text::must_escape));
                if let Err(e) = p.with_server_name(&input) {
                    safe(e);
                }
            }
            Err(e) => safe(e),
        }
        if let Err(e) = TlsProbe::new("example.com", 443).unwrap().with_ca_pem(input.as_bytes()) {
            safe(e);
        }
        if let Err(e) = PrometheusMetricsBuilder::new(&input).build() {
            safe(e);
        }
    }
}

#[test]
fn a_ca_bundle_that_is_not_pem_fails_when_the_probe_is_built() {
    for pem in [&b"not a certificate"[..], b""] {
        let err = HttpProbe::builder("https://127.0.0.1/")
            .with_ca_pem(pem)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("invalid configuration"), "{err}");
        assert!(
            TlsProbe::new("example.com", 443)
                .unwrap()
                .with_ca_pem(pem)
                .is_err()
        );
    }
}
