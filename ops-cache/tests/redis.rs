//! `RedisCache` against real Redis servers in containers (the locally built `opsbook/redis:7`,
//! `OPSBOOK_IMAGE_REDIS`), or `OPSBOOK_TEST_REDIS_URL` for the tests that need no container
//! of their own. Outside CI a missing engine or image skips the test; with `CI=true` it fails.

#![allow(
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::error::Error as _;
use std::time::Duration;

use ops_cache::{Error, RedisCache, RedisCacheBuilder};
use ops_core::cache::{ClientFilter, FlushScope, PurgeOptions};
use ops_core::testing::conformance;
use ops_core::{Cache, ErrorKind, KeyPattern};
use ops_tests::{ServiceError, Stack, require, scan_keys, start_redis};
use secrecy::SecretString;
use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(120);

fn cache_for(url: &str) -> RedisCache {
    RedisCacheBuilder::new()
        .with_url(url)
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("valid config")
}

/// `SET` `n` keys named `{prefix}{i}` with 16-byte values, pipelined.
async fn seed(conn: &mut redis::aio::MultiplexedConnection, prefix: &str, n: u64) {
    let mut start = 0;
    while start < n {
        let end = (start + 5_000).min(n);
        let mut pipe = redis::pipe();
        let mut mset = redis::cmd("MSET");
        for i in start..end {
            mset.arg(format!("{prefix}{i}")).arg("0123456789abcdef");
        }
        pipe.add_command(mset).ignore();
        let () = pipe.query_async(conn).await.expect("seed");
        start = end;
    }
}

async fn count_matching(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> u64 {
    scan_keys(conn, pattern).await.expect("scan").len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn info_parses_the_real_server_output() {
    let redis = require!(start_redis().await);
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{}info:", redis.prefix()), 10).await;
    let cache = cache_for(redis.url());
    let info = tokio::time::timeout(LIMIT, cache.info())
        .await
        .expect("bounded")
        .expect("info");
    assert!(info.version.starts_with('7'), "version {}", info.version);
    assert_eq!(info.role, "master");
    assert!(info.memory.used_bytes > 0);
    assert!(info.connected_clients >= 1);
    assert!(info.max_clients > 0);
    assert!(!info.memory.policy.is_empty());
    assert!(info.keyspace.get(&0).is_some_and(|db| db.keys >= 10));
    assert!(info.persistence.last_bgsave_ok);
    assert!(cache.ping().await.expect("ping") < Duration::from_secs(5));
    assert!(!cache.memory_doctor().await.expect("doctor").is_empty());
    let _ = cache.slowlog(10).await.expect("slowlog");
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_passes_against_redis() {
    let redis = require!(start_redis().await);
    let prefix = format!("{}conf:", redis.prefix());
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{prefix}keep:"), 40).await;
    seed(&mut conn, &format!("{prefix}drop:"), 250).await;
    seed(&mut conn, &format!("{prefix}slow:"), 60).await;
    let cache = cache_for(redis.url());
    // The client the suite lists and kills: opened here, idle, under its own name.
    let mut idle = redis.connection().await.expect("connect");
    let name = "opsbook-conformance-idle";
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query_async(&mut idle)
        .await
        .expect("client setname");
    let run = conformance::cache::run_all(&cache, &prefix, 40, 250, name);
    tokio::time::timeout(LIMIT, run).await.expect("bounded");
    let options = conformance::cache::purge_honours_its_options(&cache, &prefix, 60);
    tokio::time::timeout(LIMIT, options).await.expect("bounded");
}

/// A server told to write its dump slowly (`rdb-key-save-delay`, a second a key) cannot land a
/// snapshot within 2 s: `Timeout`, at the timeout. Only in a container of its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_slower_than_its_timeout_is_timeout() {
    let redis = require!(start_redis().await);
    let Some(_) = redis.service() else {
        eprintln!("skipping test: slows the server's saves, needs its own container");
        return;
    };
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{}slow-save:", redis.prefix()), 20).await;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg("1000000")
        .query_async(&mut conn)
        .await
        .expect("config set rdb-key-save-delay");
    let cache = cache_for(redis.url());
    let check = conformance::cache::slow_snapshot_is_timeout(&cache, Duration::from_secs(2));
    tokio::time::timeout(LIMIT, check).await.expect("bounded");
}

/// A snapshot asked while another RDB save runs (here a slow `BGSAVE` of our own; in
/// production a `save` point, a replica's full sync or `redis-cli --rdb`) waits for it and
/// then lands a save of its own, instead of failing with "Background save already in
/// progress". Only in a container of its own: it slows the server's saves.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_waits_for_a_save_already_running_and_takes_its_own() {
    let redis = require!(start_redis().await);
    let Some(_) = redis.service() else {
        eprintln!("skipping test: slows the server's saves, needs its own container");
        return;
    };
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{}busy-save:", redis.prefix()), 10).await;
    let saves = |info: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("rdb_saves:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("rdb_saves in INFO persistence")
    };
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut conn)
        .await
        .expect("info");
    let before = saves(&info);
    // Ten keys at 0.1 s each: the other save runs for about a second.
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg("100000")
        .query_async(&mut conn)
        .await
        .expect("config set rdb-key-save-delay");
    let started: String = redis::cmd("BGSAVE")
        .query_async(&mut conn)
        .await
        .expect("the other save starts");
    assert!(started.contains("started"), "{started}");
    let cache = cache_for(redis.url());
    let snapshot = tokio::time::timeout(LIMIT, cache.snapshot(Duration::from_secs(30)))
        .await
        .expect("bounded")
        .expect("the snapshot waits for the other save instead of failing");
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut conn)
        .await
        .expect("info");
    assert_eq!(
        saves(&info),
        before + 2,
        "the other save and then one of the snapshot's own: {info}"
    );
    assert!(info.contains("rdb_bgsave_in_progress:0"), "{info}");
    assert!(
        snapshot.duration >= Duration::from_millis(500),
        "{snapshot:?}"
    );
}

/// A connection to logical database `db` of the server at `url`.
async fn connection_to(url: &str, db: u32) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("{url}/{db}"))
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// `FLUSHDB` empties the cache's logical database (1) and leaves database 2's keys;
/// `FLUSHALL` empties both. Only in a container of its own: a flush would take other tests'
/// keys on a shared server.
#[tokio::test(flavor = "multi_thread")]
async fn flush_empties_exactly_its_scope() {
    let redis = require!(start_redis().await);
    let Some(_) = redis.service() else {
        eprintln!("skipping test: flushes, needs its own container");
        return;
    };
    let prefix = redis.prefix().to_owned();
    let (mut one, mut two) = (
        connection_to(redis.url(), 1).await,
        connection_to(redis.url(), 2).await,
    );
    let (cache, other) = (
        cache_for(&format!("{}/1", redis.url())),
        cache_for(&format!("{}/2", redis.url())),
    );
    for scope in [FlushScope::Database, FlushScope::All] {
        seed(&mut one, &format!("{prefix}flush:"), 50).await;
        seed(&mut two, &format!("{prefix}flush:"), 50).await;
        let check =
            conformance::cache::flush_empties_exactly_its_scope(&cache, &other, &prefix, 50, scope);
        tokio::time::timeout(LIMIT, check).await.expect("bounded");
    }
}

/// Every key under the literal prefix `group`, as a raw `SCAN MATCH` pattern.
fn in_scope(group: &str) -> String {
    format!("{}*", KeyPattern::escape(group))
}

/// Each of `groups` still holds its 20 seeded keys.
async fn assert_untouched(conn: &mut redis::aio::MultiplexedConnection, groups: &[String]) {
    for group in groups {
        assert_eq!(count_matching(conn, &in_scope(group)).await, 20, "{group}");
    }
}

/// A cache scoped to a key prefix (here with glob specials in it, `t[1]:`) never reaches a
/// key outside it: both flushes are refused as `Unsupported` before anything is sent, so
/// every key survives them, its own and the other tenants'; count, sample and purge with
/// patterns that start with a wildcard name only keys under the prefix; and purging
/// `match_all`, the refusal's advice, empties the prefix and nothing else. Safe on a shared
/// server: nothing is flushed.
#[tokio::test(flavor = "multi_thread")]
async fn a_prefixed_cache_never_reaches_keys_outside_its_prefix() {
    let redis = require!(start_redis().await);
    let base = redis.prefix().to_owned();
    let mine = format!("{base}t[1]:");
    // Another tenant; what the prefix would match unescaped; the prefix inside a key.
    let others = [
        format!("{base}t[2]:"),
        format!("{base}t1:"),
        format!("{base}xt[1]:"),
    ];
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &mine, 30).await;
    for other in &others {
        seed(&mut conn, other, 20).await;
    }
    let cache = RedisCacheBuilder::new()
        .with_url(redis.url())
        .with_timeout(Duration::from_secs(10))
        .with_key_prefix(mine.clone())
        .build()
        .expect("config");
    assert!(!cache.capabilities().flush);

    for scope in [FlushScope::Database, FlushScope::All] {
        let err = cache
            .flush(scope)
            .await
            .expect_err("a prefixed flush is refused");
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{}", err.chain());
        assert!(
            err.detail().is_some_and(|d| d.contains("match_all")),
            "{}",
            err.chain()
        );
        assert_eq!(count_matching(&mut conn, &in_scope(&mine)).await, 30);
        assert_untouched(&mut conn, &others).await;
    }

    let opts = PurgeOptions::default().with_batch_size(7);
    let rests: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    for text in [
        "*", "*1", "?", "*[0-9]", "*:*", "*t1:*", "[^x]*", "\\*", "**0",
    ] {
        let pattern = if text == "*" {
            KeyPattern::match_all()
        } else {
            KeyPattern::new(text).expect("pattern")
        };
        let expected = rests.iter().filter(|r| pattern.matches(r)).count() as u64;
        let count = cache.count(&pattern, &opts).await.expect("count");
        assert_eq!(count.matched, expected, "count {text}");
        let sample = cache.sample(&pattern, 100).await.expect("sample");
        assert_eq!(sample.len() as u64, expected, "sample {text}");
        assert!(
            sample.iter().all(|k| k.starts_with(&mine)),
            "{text}: {sample:?}"
        );
    }
    // A purge whose pattern starts with a wildcard deletes only under the prefix.
    let ones = KeyPattern::new("*1").expect("pattern");
    let ones_expected = rests.iter().filter(|r| ones.matches(r)).count() as u64;
    let done = cache.purge(&ones, &opts).await.expect("purge");
    assert_eq!(done.deleted, ones_expected);
    // What the refusal advises: purge everything under the prefix.
    let done = cache
        .purge(&KeyPattern::match_all(), &opts)
        .await
        .expect("purge the prefix");
    assert_eq!(done.deleted, 30 - ones_expected);
    assert_eq!(count_matching(&mut conn, &in_scope(&mine)).await, 0);
    assert_untouched(&mut conn, &others).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_over_100k_keys_deletes_exactly_the_matching_keys() {
    let redis = require!(start_redis().await);
    let prefix = redis.prefix().to_owned();
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{prefix}session:"), 100_000).await;
    seed(&mut conn, &format!("{prefix}sessions:"), 5_000).await;
    seed(&mut conn, &format!("{prefix}user:"), 15_000).await;
    let () = redis::cmd("MSET")
        .arg(format!("{prefix}session"))
        .arg("no colon")
        .arg(format!("{prefix}Session:1"))
        .arg("other case")
        .query_async(&mut conn)
        .await
        .expect("edge keys");
    // The key prefix scopes the cache to this test's keys.
    let cache = RedisCacheBuilder::new()
        .with_url(redis.url())
        .with_key_prefix(prefix.clone())
        .build()
        .expect("config");
    let sessions = KeyPattern::new("session:*").expect("pattern");
    let opts = PurgeOptions::default();

    let count = cache.count(&sessions, &opts).await.expect("count");
    assert_eq!(count.matched, 100_000);
    assert!(count.scanned >= 120_002);
    let sample = cache.sample(&sessions, 7).await.expect("sample");
    assert_eq!(sample.len(), 7);
    assert!(
        sample
            .iter()
            .all(|k| k.starts_with(&format!("{prefix}session:")))
    );

    let outcome = tokio::time::timeout(LIMIT, cache.purge(&sessions, &opts))
        .await
        .expect("bounded")
        .expect("purge");
    assert_eq!(outcome.matched, 100_000);
    assert_eq!(outcome.deleted, 100_000);
    assert!(outcome.scanned >= 120_002);
    if redis.service().is_some() {
        // Our own server: prove the purge used SCAN + UNLINK and never KEYS.
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("commandstats");
        assert!(!stats.contains("cmdstat_keys:"), "{stats}");
        assert!(stats.contains("cmdstat_scan:") && stats.contains("cmdstat_unlink:"));
    }

    let p = KeyPattern::escape(&prefix);
    assert_eq!(count_matching(&mut conn, &format!("{p}session:*")).await, 0);
    assert_eq!(
        count_matching(&mut conn, &format!("{p}sessions:*")).await,
        5_000
    );
    assert_eq!(
        count_matching(&mut conn, &format!("{p}user:*")).await,
        15_000
    );
    let edge: (Option<String>, Option<String>) = redis::cmd("MGET")
        .arg(format!("{prefix}session"))
        .arg(format!("{prefix}Session:1"))
        .query_async(&mut conn)
        .await
        .expect("mget");
    assert_eq!(edge, (Some("no colon".into()), Some("other case".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_respects_the_rate_limit() {
    let redis = require!(start_redis().await);
    let prefix = redis.prefix().to_owned();
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{prefix}slow:"), 3_000).await;
    let cache = cache_for(redis.url());
    let pattern = KeyPattern::prefix(&format!("{prefix}slow:")).unwrap();
    let opts = PurgeOptions::default().with_max_keys_per_sec(5_000);
    let outcome = tokio::time::timeout(LIMIT, cache.purge(&pattern, &opts))
        .await
        .expect("bounded")
        .expect("purge");
    assert_eq!(outcome.deleted, 3_000);
    // 3 000 keys at 5 000/s in batches of 500 (a tenth of a second's worth): the last batch
    // may start only after 2 500 deletions, i.e. at 0.5 s.
    assert!(
        outcome.duration >= Duration::from_millis(450),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_mid_purge_reports_deleted_so_far_and_a_rerun_finishes() {
    let redis = require!(start_redis().await);
    let Some(service) = redis.service() else {
        eprintln!("skipping test: needs its own container (OPSBOOK_TEST_REDIS_URL is set)");
        return;
    };
    let prefix = redis.prefix().to_owned();
    let mut conn = redis.connection().await.expect("connect");
    // Save on shutdown so the keys survive the restart.
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("3600 1")
        .query_async(&mut conn)
        .await
        .expect("config set save");
    seed(&mut conn, &format!("{prefix}session:"), 100_000).await;
    seed(&mut conn, &format!("{prefix}other:"), 10_000).await;
    let cache = cache_for(redis.url());
    let sessions = KeyPattern::prefix(&format!("{prefix}session:")).unwrap();
    let slow = PurgeOptions::default()
        .with_batch_size(500)
        .with_max_keys_per_sec(20_000);

    let purge = {
        let cache = cache.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move { cache.purge(&sessions, &slow).await })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    service.restart().await.expect("restart");
    let err = tokio::time::timeout(LIMIT, purge)
        .await
        .expect("bounded")
        .expect("task")
        .expect_err("the restart interrupts the purge");
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{}",
        err.chain()
    );
    assert_eq!(err.operation(), "purge");
    assert!(
        err.detail().is_some_and(|d| d.contains("deleted")),
        "{}",
        err.chain()
    );
    let typed = err
        .source()
        .and_then(|s| s.downcast_ref::<Error>())
        .expect("typed ops_cache::Error as source");
    let first = typed.deleted_so_far().expect("PurgeInterrupted");
    assert!(
        first > 0 && first < 100_000,
        "deleted {first} before the restart"
    );

    redis.wait_ready(LIMIT).await.expect("ready after restart");
    // The connection manager reconnects; the server may still be loading for a moment.
    let rerun = async {
        loop {
            match cache.purge(&sessions, &PurgeOptions::default()).await {
                Ok(done) => return done,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("rerun failed: {}", e.chain()),
            }
        }
    };
    let second = tokio::time::timeout(LIMIT, rerun).await.expect("bounded");
    // An UNLINK applied just before the shutdown may have lost its reply.
    assert!(first + second.deleted <= 100_000);
    assert!(
        first + second.deleted >= 100_000 - 1_000,
        "{first} + {second:?}"
    );
    let mut conn = redis.connection().await.expect("reconnect");
    let p = KeyPattern::escape(&prefix);
    assert_eq!(count_matching(&mut conn, &format!("{p}session:*")).await, 0);
    assert_eq!(
        count_matching(&mut conn, &format!("{p}other:*")).await,
        10_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_user_authenticates_and_is_never_printed() {
    let redis = require!(start_redis().await);
    let mut conn = redis.connection().await.expect("connect");
    let user = format!("ops{}", redis.prefix().trim_end_matches(':'));
    let limited = format!("{user}ro");
    let password = "correct-horse-battery";
    for (name, rules) in [
        (&user, vec!["on", "~*", "&*", "+@all"]),
        (&limited, vec!["on", "~*", "+ping", "+info"]),
    ] {
        let () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(name)
            .arg("reset")
            .arg(format!(">{password}"))
            .arg(&rules)
            .query_async(&mut conn)
            .await
            .expect("acl setuser");
    }
    let base = redis.url().to_owned();
    let with = |name: &str, pw: &str| {
        RedisCacheBuilder::new()
            .with_url(base.clone())
            .with_username(name)
            .with_password(SecretString::from(pw.to_owned()))
            .with_timeout(Duration::from_secs(5))
            .build()
            .expect("config")
    };

    let cache = with(&user, password);
    cache.ping().await.expect("ACL user pings");
    let me: Vec<_> = cache
        .clients(&ClientFilter::default())
        .await
        .expect("clients")
        .into_iter()
        .filter(|c| c.user.as_deref() == Some(user.as_str()))
        .collect();
    assert!(
        !me.is_empty(),
        "our connection is listed under the ACL user"
    );

    let wrong = with(&user, "wrong-password-value");
    let err = wrong.ping().await.expect_err("wrong password");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());
    let shown = format!("{err:?} {} {wrong:?}", err.chain());
    assert!(!shown.contains("wrong-password-value"), "{shown}");
    assert!(!shown.contains(password), "{shown}");

    let ro = with(&limited, password);
    ro.ping().await.expect("limited user pings");
    let err = ro
        .clients(&ClientFilter::default())
        .await
        .expect_err("CLIENT is not allowed");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());

    for name in [&user, &limited] {
        let _: u64 = redis::cmd("ACL")
            .arg("DELUSER")
            .arg(name)
            .query_async(&mut conn)
            .await
            .expect("deluser");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_clients_kills_only_the_approved_ids_and_never_our_own_connection() {
    let redis = require!(start_redis().await);
    let Some(_) = redis.service() else {
        eprintln!("skipping test: kills clients, needs its own container");
        return;
    };
    let victim = redis::Client::open(redis.url()).expect("url");
    let mut victim = victim
        .get_multiplexed_async_connection()
        .await
        .expect("victim");
    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("victim")
        .query_async(&mut victim)
        .await
        .expect("setname");
    let cache = cache_for(redis.url());
    let mut everyone_but_us = ClientFilter::default();
    everyone_but_us.name = Some("victim".into());
    let approved = ids(&cache, &everyone_but_us).await;
    assert_eq!(approved.len(), 1);
    // A client that arrives with the same name after the approval is not touched.
    let mut newcomer = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("newcomer");
    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("victim")
        .query_async(&mut newcomer)
        .await
        .expect("setname");
    let killed = cache
        .kill_clients(&approved, &everyone_but_us)
        .await
        .expect("kill");
    assert_eq!(killed, approved);
    let () = redis::cmd("PING")
        .query_async(&mut newcomer)
        .await
        .expect("the newcomer survives");
    // An unbounded guard is refused; every client, said explicitly, kills the others but
    // never our own connection.
    assert_eq!(
        cache
            .kill_clients(&[], &ClientFilter::default())
            .await
            .unwrap_err()
            .kind(),
        ops_core::ErrorKind::InvalidInput
    );
    let everyone = ids(&cache, &ClientFilter::all()).await;
    let _ = cache
        .kill_clients(&everyone, &ClientFilter::all())
        .await
        .expect("kill all");
    cache.ping().await.expect("our connection survives");
}

/// A raw connection that sends `commands` (inline protocol) and reads nothing back: a
/// subscriber or a blocked consumer without a client library's timeouts in the way.
async fn raw_client(redis_url: &str, commands: &[&str]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let addr = redis_url.trim_start_matches("redis://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    for command in commands {
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("send");
    }
    stream
}

/// INFO `section` of the server at `url`.
async fn info(url: &str, section: &str) -> String {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn)
        .await
        .expect("info")
}

/// Waits (bounded) until `check` holds for the clients `cache` lists with `filter`.
async fn until_clients(
    cache: &RedisCache,
    filter: &ClientFilter,
    what: &str,
    check: impl Fn(&[ops_core::cache::ClientInfo]) -> bool + Send + Sync,
) -> Vec<ops_core::cache::ClientInfo> {
    tokio::time::timeout(LIMIT, async {
        loop {
            let clients = cache.clients(filter).await.expect("client list");
            if check(&clients) {
                return clients;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited for {what}"))
}

/// The ids of the clients `cache` lists with `filter`.
async fn ids(cache: &RedisCache, filter: &ClientFilter) -> Vec<u64> {
    cache
        .clients(filter)
        .await
        .expect("client list")
        .iter()
        .map(|c| c.id)
        .collect()
}

fn named<'a>(
    clients: &'a [ops_core::cache::ClientInfo],
    name: &str,
) -> Option<&'a ops_core::cache::ClientInfo> {
    clients.iter().find(|c| c.name.as_deref() == Some(name))
}

#[tokio::test(flavor = "multi_thread")]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: every kind of busy client"
)]
async fn clients_in_use_are_never_listed_as_idle_nor_killed() {
    let stack = Stack::new();
    let (master, replica) = tokio::join!(stack.redis(), stack.redis());
    let master = require!(master);
    let replica = require!(replica);
    let (Some(master_service), Some(_)) = (master.service(), replica.service()) else {
        eprintln!("skipping test: kills clients and replicates, needs its own containers");
        return;
    };
    // Busy clients that send nothing while they serve, and one really idle client.
    let _subscriber = raw_client(
        master.url(),
        &["CLIENT SETNAME busy-subscriber", "SUBSCRIBE news"],
    )
    .await;
    let _blpop = raw_client(master.url(), &["CLIENT SETNAME busy-blpop", "BLPOP jobs 0"]).await;
    let _xread = raw_client(
        master.url(),
        &[
            "CLIENT SETNAME busy-xread",
            "XREAD BLOCK 0 STREAMS events $",
        ],
    )
    .await;
    let _monitor = raw_client(master.url(), &["CLIENT SETNAME busy-monitor", "MONITOR"]).await;
    let _idle = raw_client(master.url(), &["CLIENT SETNAME plain-idle"]).await;
    // A replica on the same network: its link is `S` on the master and `M` on the replica.
    let (host, port) = master_service
        .internal_addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("host:port");
    let mut to_replica = replica.connection().await.expect("replica");
    let () = redis::cmd("REPLICAOF")
        .arg(&host)
        .arg(&port)
        .query_async(&mut to_replica)
        .await
        .expect("replicaof");
    tokio::time::timeout(LIMIT, async {
        while !info(replica.url(), "replication")
            .await
            .contains("master_link_status:up")
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the replica syncs");

    let cache = cache_for(master.url());
    let everyone = ClientFilter::all().including_in_use();
    let all = until_clients(&cache, &everyone, "every busy client", |c| {
        named(c, "busy-subscriber").is_some_and(|c| c.flags.pubsub)
            && named(c, "busy-blpop").is_some_and(|c| c.flags.blocked)
            && named(c, "busy-xread").is_some_and(|c| c.flags.blocked)
            && named(c, "busy-monitor").is_some_and(|c| c.flags.monitor)
            && named(c, "plain-idle").is_some()
            && c.iter().any(|c| c.flags.replica)
    })
    .await;
    let busy: Vec<u64> = all
        .iter()
        .filter(|c| c.flags.in_use())
        .map(|c| c.id)
        .collect();
    assert_eq!(busy.len(), 5, "{all:#?}");
    let plain = named(&all, "plain-idle").expect("listed").id;

    // Idle for a while: the busy ones too, by Redis's count.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let idle = ClientFilter::default().idle_longer_than(Duration::from_secs(1));
    let listed = ids(&cache, &idle).await;
    assert!(listed.contains(&plain), "{listed:?}");
    assert!(
        !listed.iter().any(|id| busy.contains(id)),
        "busy clients listed as idle: {listed:?} / {busy:?}"
    );

    // Even approved by id under a match-everything guard, a busy client is not killed.
    let every_id: Vec<u64> = all.iter().map(|c| c.id).collect();
    let killed = cache
        .kill_clients(&every_id, &ClientFilter::all())
        .await
        .expect("kill");
    assert!(killed.contains(&plain), "{killed:?}");
    assert!(
        !killed.iter().any(|id| busy.contains(id)),
        "killed busy clients: {killed:?}"
    );
    let after = cache.clients(&everyone).await.expect("list");
    for id in &busy {
        assert!(
            after.iter().any(|c| c.id == *id),
            "busy client {id} was killed"
        );
    }
    // They still work: the subscriber hears, the consumer wakes, the replica follows.
    let mut conn = master.connection().await.expect("connect");
    let heard: u64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query_async(&mut conn)
        .await
        .expect("publish");
    assert_eq!(heard, 1, "the subscriber is still subscribed");
    assert!(
        info(master.url(), "replication")
            .await
            .contains("connected_slaves:1")
    );

    // On the replica, the master link is in use too.
    let replica_cache = cache_for(replica.url());
    let links = until_clients(&replica_cache, &everyone, "the master link", |c| {
        c.iter().any(|c| c.flags.master)
    })
    .await;
    let link_ids: Vec<u64> = links.iter().map(|c| c.id).collect();
    let killed = replica_cache
        .kill_clients(&link_ids, &ClientFilter::all())
        .await
        .expect("kill on the replica");
    assert!(
        !links
            .iter()
            .any(|c| c.flags.master && killed.contains(&c.id)),
        "the master link was killed"
    );
    assert!(
        info(replica.url(), "replication")
            .await
            .contains("master_link_status:up")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_waits_for_lastsave_and_flush_empties_the_db() {
    let redis = require!(start_redis().await);
    let Some(_) = redis.service() else {
        eprintln!("skipping test: flushes, needs its own container");
        return;
    };
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, "snap:", 1_000).await;
    let cache = cache_for(redis.url());
    let first = cache.snapshot(LIMIT).await.expect("snapshot");
    let second = cache
        .snapshot(LIMIT)
        .await
        .expect("second snapshot in the same second");
    assert!(second.saved_at >= first.saved_at);
    // The snapshot names the file the server wrote, as CONFIG GET says.
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query_async(&mut conn)
        .await
        .expect("config get dir");
    let file: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dbfilename")
        .query_async(&mut conn)
        .await
        .expect("config get dbfilename");
    assert_eq!(first.files.len(), 1, "{first:?}");
    assert_eq!(
        first.files[0].rdb_path.as_deref(),
        Some(format!("{}/{}", dir[1].trim_end_matches('/'), file[1]).as_str())
    );
    assert!(!first.files[0].aof_enabled);
    cache.flush(FlushScope::Database).await.expect("flush");
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("dbsize");
    assert_eq!(size, 0);
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query_async(&mut conn)
        .await
        .expect("aof on");
    // Turning AOF on starts a rewrite; ours may be refused while it runs, never hang.
    let _ = tokio::time::timeout(LIMIT, cache.rewrite_aof())
        .await
        .expect("bounded");
    // With appendonly on, the snapshot says the server loads its AOF, not this RDB.
    let with_aof = cache.snapshot(LIMIT).await.expect("snapshot with AOF on");
    assert!(with_aof.files[0].aof_enabled, "{with_aof:?}");
    assert!(with_aof.files[0].caveat().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_unavailable_within_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let cache = RedisCacheBuilder::new()
        .with_url(format!("redis://:pw-not-shown@127.0.0.1:{port}"))
        .with_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_millis(500))
        .build()
        .expect("config");
    let err = tokio::time::timeout(Duration::from_secs(10), cache.ping())
        .await
        .expect("bounded by the deadline")
        .expect_err("nothing listens");
    assert!(err.is_retryable(), "{}", err.chain());
    assert!(!err.chain().contains("pw-not-shown"));
    assert_eq!(err.target(), format!("127.0.0.1:{port}"));
}

/// A container from the Redis image with extra server arguments and files; a missing image
/// is "unavailable" (skip outside CI).
async fn start_custom(
    args: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
    host_network: bool,
    host_port: Option<u16>,
) -> Result<ContainerAsync<GenericImage>, ServiceError> {
    let images = ops_tests::Images::from_env();
    let image = images.redis;
    let mut request = GenericImage::new(image.name.clone(), image.tag.clone())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .with_cmd(args)
        .with_startup_timeout(Duration::from_secs(60));
    for (path, bytes) in files {
        request = request.with_copy_to(path, bytes);
    }
    if host_network {
        request = request.with_network("host");
    }
    if let Some(port) = host_port {
        request = request.with_mapped_port(port, 6379.tcp());
    }
    request.start().await.map_err(|e| {
        let text = e.to_string();
        if text.contains("No such image") || text.contains("pull") || text.contains("not found") {
            ServiceError::Unavailable(format!("image {image} is not available ({text})"))
        } else if text.contains("docker") || text.contains("Docker") || text.contains("socket") {
            ServiceError::Unavailable(format!("no Docker engine ({text})"))
        } else {
            ServiceError::Failed(format!("cannot start {image}: {text}"))
        }
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");

    let port = free_port();
    let args = [
        "--port",
        "0",
        "--tls-port",
        "6379",
        "--tls-cert-file",
        "/tls/server.crt",
        "--tls-key-file",
        "/tls/server.key",
        "--tls-ca-cert-file",
        "/tls/ca.crt",
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-secret-pw",
    ]
    .map(str::to_owned)
    .to_vec();
    let files = vec![
        ("/tls/server.crt".to_owned(), server_cert.pem().into_bytes()),
        (
            "/tls/server.key".to_owned(),
            server_key.serialize_pem().into_bytes(),
        ),
        ("/tls/ca.crt".to_owned(), ca_cert.pem().into_bytes()),
    ];
    let _container = require!(start_custom(args, files, false, Some(port)).await);

    let cache = RedisCacheBuilder::new()
        .with_url(format!("rediss://:tls-secret-pw@127.0.0.1:{port}"))
        .with_ca_cert_pem(ca_cert.pem().into_bytes())
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("config");
    let info = tokio::time::timeout(LIMIT, cache.info())
        .await
        .expect("bounded")
        .unwrap_or_else(|e| panic!("info over TLS: {}", e.chain()));
    assert!(info.version.starts_with('7'));
    assert!(!format!("{cache:?}").contains("tls-secret-pw"));

    // Without our CA the server is not trusted.
    let untrusted = RedisCacheBuilder::new()
        .with_url(format!("rediss://:tls-secret-pw@127.0.0.1:{port}"))
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("config");
    let err = untrusted.ping().await.expect_err("unknown CA");
    assert!(!err.chain().contains("tls-secret-pw"));
}

#[tokio::test(flavor = "multi_thread")]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: build a cluster, seed it, purge it"
)]
async fn cluster_of_three_primaries_scans_every_primary() {
    // Host networking: the nodes announce 127.0.0.1:<port>, which both the test and the other
    // nodes can reach (container IPs are not reachable from the test here).
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for port in &ports {
        let args = [
            "--port".to_owned(),
            port.to_string(),
            "--cluster-enabled".to_owned(),
            "yes".to_owned(),
            "--cluster-config-file".to_owned(),
            format!("nodes-{port}.conf"),
            "--cluster-announce-ip".to_owned(),
            "127.0.0.1".to_owned(),
        ]
        .to_vec();
        nodes.push(require!(start_custom(args, Vec::new(), true, None).await));
    }
    // Slots split three ways, then MEET.
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (port, (lo, hi)) in ports.iter().zip(ranges) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect node");
        let () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(lo)
            .arg(hi)
            .query_async(&mut conn)
            .await
            .expect("addslots");
        let () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(ports[0])
            .query_async(&mut conn)
            .await
            .expect("meet");
    }
    // Every node, not only the first, must see the whole cluster before a client maps the
    // slots: a node that does not know its peers yet answers with a partial slot map.
    let ok = async {
        for port in &ports {
            let node = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
            let mut admin = node
                .get_multiplexed_async_connection()
                .await
                .expect("admin");
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut admin)
                    .await
                    .expect("cluster info");
                let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut admin)
                    .await
                    .expect("cluster slots");
                if info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:3")
                    && slots.len() == 3
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    tokio::time::timeout(LIMIT, ok)
        .await
        .expect("cluster becomes ok");

    let seeds = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let seeder = redis::cluster::ClusterClient::new(seeds.split(',').collect::<Vec<_>>())
        .expect("cluster client");
    let mut seed_conn = seeder.get_async_connection().await.expect("cluster conn");
    let seed_all = async {
        for (prefix, n) in [("session:", 3_000u32), ("other:", 1_000)] {
            for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
                let sets = chunk.iter().map(|i| {
                    let mut conn = seed_conn.clone();
                    async move {
                        let () = redis::cmd("SET")
                            .arg(format!("{prefix}{i}"))
                            .arg("0123456789abcdef")
                            .query_async(&mut conn)
                            .await
                            .expect("set");
                    }
                });
                futures::future::join_all(sets).await;
            }
        }
    };
    tokio::time::timeout(LIMIT, seed_all).await.expect("seeded");
    let _ = &mut seed_conn;

    let cache = RedisCacheBuilder::new()
        .with_url(seeds)
        .with_cluster(true)
        .build()
        .expect("config");
    assert!(cache.capabilities().cluster);
    let sessions = KeyPattern::new("session:*").expect("pattern");
    let opts = PurgeOptions::default().with_batch_size(200);
    let run = async {
        conformance::cache::ping_and_info(&cache).await;
        let info = cache.info().await.expect("info");
        assert_eq!(
            info.total_keys(),
            4_000,
            "keyspace summed over the primaries"
        );
        let count = cache.count(&sessions, &opts).await.expect("count");
        assert_eq!(count.matched, 3_000);
        assert_eq!(count.scanned, 4_000);
        let outcome = cache.purge(&sessions, &opts).await.expect("purge");
        assert_eq!((outcome.matched, outcome.deleted), (3_000, 3_000));
        let left = cache.count(&sessions, &opts).await.expect("count");
        assert_eq!(left.matched, 0);
        let others = cache
            .count(&KeyPattern::new("other:*").expect("pattern"), &opts)
            .await
            .expect("count");
        assert_eq!(others.matched, 1_000);
        let clients = cache
            .clients(&ClientFilter::default())
            .await
            .expect("clients");
        assert!(!clients.is_empty(), "clients of every primary are listed");
    };
    tokio::time::timeout(LIMIT, run).await.expect("bounded");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_past_its_deadline_reports_what_it_deleted() {
    let redis = require!(start_redis().await);
    let prefix = redis.prefix().to_owned();
    let mut conn = redis.connection().await.expect("connect");
    seed(&mut conn, &format!("{prefix}late:"), 5_000).await;
    let cache = cache_for(redis.url());
    let pattern = KeyPattern::prefix(&format!("{prefix}late:")).unwrap();
    let mut opts = PurgeOptions::default().with_max_keys_per_sec(2_000);
    opts.timeout = Some(Duration::from_millis(600));
    let err = tokio::time::timeout(LIMIT, cache.purge(&pattern, &opts))
        .await
        .expect("bounded")
        .expect_err("5 000 keys at 2 000/s cannot finish in 0.6 s");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}", err.chain());
    let deleted = err
        .source()
        .and_then(|s| s.downcast_ref::<Error>())
        .and_then(Error::deleted_so_far)
        .expect("deleted so far");
    assert!(deleted > 0 && deleted < 5_000, "{deleted}");
    let left = cache
        .count(&pattern, &PurgeOptions::default())
        .await
        .expect("count");
    assert_eq!(left.matched, 5_000 - deleted);
}
