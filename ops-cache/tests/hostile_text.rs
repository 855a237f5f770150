//! Hostile text in the parsers of server answers (`INFO`, `CLIENT LIST`): nothing panics.

use ops_cache::{parse_client_list, parse_info};
use proptest::prelude::*;

fn answers() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(# [A-Za-z]+\r\n)?([a-z_0-9]{1,20}:[a-z0-9=,.:-]{0,20}\r?\n){0,12}",
        "(id=[0-9-]{1,5} addr=[0-9.:]{0,21} name=[a-z]{0,5} age=[0-9-]{0,5} idle=[0-9x]{0,5} db=[0-9]{0,3} cmd=[a-z|]{0,8} user=[a-z]{0,4}\n){0,5}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_answers_never_panic_the_parsers(text in answers()) {
        let _ = parse_info(&text);
        let _ = parse_client_list(&text);
    }
}
