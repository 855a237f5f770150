//! Hostile text in the name checks and label parsers of ops-compose: nothing panics, the
//! rules are ops-core's, and every refusal is bounded and escaped.

use ops_compose::labels::{
    parse_depends_on, validate_container, validate_project, validate_service,
};
use ops_core::names::NameRule;
use ops_core::testing::{assert_safe_error, assert_safe_message};
use ops_core::{OpsError, WorkloadRef};
use proptest::prelude::*;

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._:,/ -]{0,40}",
        proptest::collection::vec(
            prop_oneof![
                Just('\r'),
                Just('\n'),
                Just('\u{1b}'),
                Just('\0'),
                any::<char>()
            ],
            0..40
        )
        .prop_map(|v| v.into_iter().collect()),
        (any::<char>(), 100_000..100_008usize)
            .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn names_follow_ops_core_rules_and_refuse_safely(input in hostile()) {
        for (checked, rule) in [
            (validate_project(&input), NameRule::ComposeProject),
            (validate_service(&input), NameRule::ComposeService),
            (validate_container(&input), NameRule::ContainerName),
        ] {
            prop_assert_eq!(checked.is_ok(), rule.check(&input));
            if let Err(e) = checked {
                assert_safe_message(&e.to_string());
                assert_safe_error(&OpsError::from(e));
            }
        }
        // A compose workload ref accepts exactly the names compose accepts.
        let as_service = WorkloadRef::compose_service("shop", &input);
        prop_assert_eq!(as_service.is_ok(), NameRule::ComposeService.check(&input));
    }

    #[test]
    fn depends_on_labels_never_panic(input in hostile()) {
        for service in parse_depends_on(&input) {
            prop_assert!(!service.is_empty());
        }
    }
}
