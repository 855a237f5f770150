//! Hostile text in the parsers and builders of ops-notify: nothing panics, every error is
//! bounded and escaped and never shows the URL or key it was given.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] fns")]

use ops_core::OpsError;
use ops_core::testing::{assert_safe_error, assert_safe_message};
use ops_notify::{PagerDutyNotifier, SlackNotifier, WebhookNotifier, retry_after};
use proptest::prelude::*;
use secrecy::SecretString;

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?|ftp)://[a-z0-9.:@%/?&=_\\[\\]-]{0,40}",
        "[0-9]{0,12}|[A-Za-z,: 0-9]{0,40}",
        proptest::collection::vec(
            prop_oneof![Just('\r'), Just('\n'), Just('\u{1b}'), any::<char>()],
            0..40
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn safe(err: ops_notify::Error, input: &str) {
    let shown = [err.to_string(), format!("{err:?}")];
    let ops = OpsError::from(err);
    assert_safe_error(&ops);
    for s in shown {
        assert_safe_message(&s);
        // The URL or key is never repeated (beyond a few characters it may share by chance).
        if input.len() >= 12 {
            assert!(!s.contains(input), "{s}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn builders_never_panic_nor_repeat_their_secrets(input in hostile()) {
        let secret = || SecretString::from(input.clone());
        if let Err(e) = SlackNotifier::builder().with_webhook_url(secret()).build() {
            safe(e, &input);
        }
        if let Err(e) = PagerDutyNotifier::builder().with_routing_key(secret()).with_events_url(secret()).build() {
            safe(e, &input);
        }
        if let Err(e) = WebhookNotifier::builder(secret()).with_signing_secret(secret()).build() {
            safe(e, &input);
        }
    }

    #[test]
    fn retry_after_never_panics(input in hostile()) {
        let _ = retry_after(&input);
    }
}
