//! `KeyPattern::matches` against the real thing: a property test that generates keys and
//! patterns (escapes, classes, ranges, `^` negation, unterminated brackets, multi-byte
//! characters, binary keys), writes the keys to a real Redis and compares what
//! `SCAN … MATCH` returns with what `KeyPattern::matches_bytes` says. A dry run's plan (the
//! fakes and client-side counts use `matches`) and the act (`SCAN` + `UNLINK` on the server)
//! can therefore never disagree about which keys a pattern names.
#![allow(
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use ops_core::KeyPattern;
use ops_tests::{require, scan_keys, start_redis};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Key bytes: mostly the pattern alphabet (so patterns match often), glob specials, the two
/// bytes of `é`, and any byte at all.
fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(b"abzA09-^][\\*?".to_vec()),
            1 => proptest::sample::select(vec![0xc3u8, 0xa9, 0xff, 0x80, 0x00, b' ']),
            1 => any::<u8>(),
        ],
        0..7,
    )
}

/// Pattern pieces: literals, wildcards, escapes, classes with ranges and negation, classes
/// left open, `[a-]`, multi-byte characters.
fn pattern() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "a", "b", "z", "A", "0", "9", "-", "^", "]", "*", "?", "\\", "\\*", "\\?", "\\[",
            "\\]", "\\\\", "\\a", "[", "[^", "[a-z]", "[z-a]", "[^a-b]", "[a-]", "[]", "[^]",
            "[\\]]", "[\\", "[-a]", "[ab", "é", "[é]", "[^é]", "[a-z", "[9-0]x", " ",
        ]),
        1..6,
    )
    .prop_map(|parts| parts.concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pattern_matches_exactly_what_redis_scan_matches() {
    let redis = require!(start_redis().await);
    let conn = redis.connection().await.expect("connection");
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    let strategy = (
        proptest::collection::vec(key(), 1..24),
        proptest::collection::vec(pattern(), 1..6),
    );
    // The runner is synchronous: it runs on this worker thread, out of the async context.
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(keys, patterns)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let prefix = format!("{}p{n}:", redis.prefix());
            let mut conn = conn.clone();
            let full: BTreeSet<Vec<u8>> = keys
                .iter()
                .map(|k| [prefix.as_bytes(), k].concat())
                .collect();
            runtime.block_on(async {
                let mut mset = redis::cmd("MSET");
                for k in &full {
                    mset.arg(k.as_slice()).arg("v");
                }
                let () = mset.query_async(&mut conn).await.expect("mset");
                for p in &patterns {
                    let text = format!("{prefix}{p}");
                    let Ok(pattern) = KeyPattern::new(&text) else {
                        // Refused patterns never reach a server; the only refusal these
                        // generators can hit is a range with a non-ASCII end.
                        prop_assert!(p.contains('é') && p.contains('-'), "{text:?} refused");
                        continue;
                    };
                    let ours: BTreeSet<Vec<u8>> = full
                        .iter()
                        .filter(|k| pattern.matches_bytes(k))
                        .cloned()
                        .collect();
                    let theirs =
                        tokio::time::timeout(Duration::from_secs(30), scan_keys(&mut conn, &text))
                            .await
                            .expect("SCAN finished in time")
                            .expect("scan");
                    prop_assert_eq!(
                        &ours,
                        &theirs,
                        "pattern {:?} disagrees with SCAN MATCH on keys {:?}",
                        text,
                        full
                    );
                }
                let _: u64 = redis::cmd("UNLINK")
                    .arg(full.iter().map(Vec::as_slice).collect::<Vec<_>>())
                    .query_async(&mut conn)
                    .await
                    .expect("unlink");
                Ok::<(), TestCaseError>(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
