//! The drill's own messages when it cannot run (README: "Each provisions what it needs by
//! itself"; where provisioning cannot help, one sentence says what to do).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::process::Command;

#[test]
fn a_silent_docker_host_gets_one_sentence_not_a_backtrace_or_an_install() {
    let journal = std::env::temp_dir().join(format!("drill-cli-{:08x}.db", fastrand::u32(..)));
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .env("DOCKER_HOST", "unix:///nonexistent/opsbook-no-engine.sock")
        .env("RUST_BACKTRACE", "1")
        .env("OPSBOOK_JOURNAL", &journal)
        .output()
        .expect("run the drill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("drill: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    let error = errors[0];
    for needle in [
        "DOCKER_HOST=unix:///nonexistent/opsbook-no-engine.sock",
        "start that engine",
        "unset DOCKER_HOST",
    ] {
        assert!(error.contains(needle), "{needle:?} missing from {error:?}");
    }
    for absent in [
        "panicked",
        "Caused by",
        "stack backtrace",
        "[provision]",
        "installing",
    ] {
        assert!(!stderr.contains(absent), "{absent:?} in: {stderr}");
    }
    assert!(
        stderr.lines().count() <= 2,
        "a banner and one error line at most: {stderr}"
    );
    assert!(
        !journal.exists(),
        "nothing is written before the engine answers"
    );
}
