//! `opsbook check-config` as a user runs it: the seeds' five systems validate, and a broken
//! file gets one line per error with its line, column and key. System-file parsing never
//! panics, whatever the text.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

use ops_examples::system::System;
use proptest::prelude::*;

fn systems_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systems")
}

fn opsbook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_opsbook"))
        .args(args)
        .env_remove("OPSBOOK_SYSTEM")
        .output()
        .expect("run opsbook")
}

#[test]
fn the_seeds_five_systems_all_validate() {
    let mut names: Vec<String> = std::fs::read_dir(systems_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let out = opsbook(&["--system", p.to_str().unwrap(), "check-config"]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {stdout}{}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(" is valid: "), "{stdout}");
            System::load(&p).unwrap().name
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "agentic-platform",
            "enterprise-rag",
            "netopsai-gateway",
            "orchestrix",
            "rag7"
        ]
    );
}

#[test]
fn the_example_systems_map_the_seeds_thresholds() {
    let s = System::load(&systems_dir().join("agentic-platform.toml")).unwrap();
    assert!((s.incident.thresholds.error_rate_high - 0.10).abs() < f64::EPSILON);
    let tiers: Vec<Vec<String>> = s
        .recovery_order()
        .tiers()
        .iter()
        .map(|t| t.iter().map(|w| w.name().to_string()).collect())
        .collect();
    assert_eq!(
        tiers,
        [vec!["postgres", "redis"], vec!["api"], vec!["nginx"]]
    );
    let s = System::load(&systems_dir().join("orchestrix.toml")).unwrap();
    assert_eq!(
        s.incident.thresholds.p95_high,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(s.config.metrics_window.to_string(), "2m");
}

#[test]
fn the_incident_table_sets_the_scale_cadence_and_ladder_of_the_seeds() {
    use ops_core::incident::Severity;
    use std::time::Duration;
    // Seed 003 labels on P1–P4: its "5xx > 1 %" P2 is the high level, P1 is a service down.
    let s = System::load(&systems_dir().join("netopsai-gateway.toml")).unwrap();
    assert_eq!(s.incident.scale.label(Severity::Critical), "P1");
    assert_eq!(s.incident.scale.label(Severity::Low), "P4");
    assert!((s.incident.thresholds.error_rate_high - 0.01).abs() < f64::EPSILON);
    assert_eq!(s.incident.cadence.critical, Duration::from_mins(15));
    assert_eq!(s.incident.cadence.high, Duration::from_hours(1));
    assert_eq!(
        s.incident.cadence.low,
        Duration::from_hours(4),
        "the default kept"
    );
    let path = systems_dir().join("netopsai-gateway.toml");
    let out = opsbook(&["--system", path.to_str().unwrap(), "check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("; severities P1–P4; P1 escalates to level 1 (team lead) after 30 min"),
        "{stdout}"
    );
    // Seed 002's path: the team lead for everything, the director for P0/P1, the CTO for P0.
    let s = System::load(&systems_dir().join("agentic-platform.toml")).unwrap();
    let contacts = |sev| -> Vec<String> {
        s.incident
            .escalation
            .levels_for(sev)
            .iter()
            .map(|l| l.contact.clone())
            .collect()
    };
    assert_eq!(
        contacts(Severity::Critical),
        ["team lead", "director of engineering", "CTO"]
    );
    assert_eq!(
        contacts(Severity::High),
        ["team lead", "director of engineering"]
    );
    assert_eq!(contacts(Severity::Low), ["team lead"]);
    let due = s
        .incident
        .escalation
        .due(Duration::from_mins(90), Severity::High)
        .unwrap();
    assert_eq!(
        (due.level, due.contact.as_str()),
        (2, "director of engineering")
    );
    // Seed 004 escalates P0 only.
    let s = System::load(&systems_dir().join("orchestrix.toml")).unwrap();
    assert_eq!(
        s.incident.escalation.levels_for(Severity::Critical).len(),
        3
    );
    assert!(s.incident.escalation.levels_for(Severity::High).is_empty());
}

#[test]
fn severity_labels_are_read_on_the_configured_scale() {
    use ops_core::incident::Severity;
    let base = "name = \"shop\"\n[platform]\nkind = \"compose\"\nproject = \"shop\"\n[services.api]\n\
                [[notifiers]]\nkind = \"console\"\nseverities = [\"P4\"]\n";
    let p1p4 = System::parse(
        &format!("{base}[incident]\nscale = \"P1-P4\"\n"),
        Path::new("x.toml"),
    )
    .unwrap();
    assert_eq!(p1p4.notifiers[0].severities, [Severity::Low]);
    let err = System::parse(base, Path::new("x.toml")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "notifiers.severities: \"P4\" is not a severity on this scale: P0, P1, P2, P3"
        ),
        "{text}"
    );
}

#[test]
fn a_wrong_incident_table_names_each_mistake() {
    let text = r#"name = "shop"
[platform]
kind = "compose"
project = "shop"
[services.api]
[incident]
scale = "sev1-sev5"
updates = { P9 = "15m", P1 = "soon" }

[[incident.escalation]]
after = "1h"
contact = "lead"

[[incident.escalation]]
after = "30m"
contact = " "
severities = ["P7"]
"#;
    let err = System::parse(text, Path::new("x.toml")).unwrap_err();
    let got: Vec<(usize, String)> = err
        .errors
        .iter()
        .map(|e| (e.line, format!("{}: {}", e.key, e.message)))
        .collect();
    let want = [
        (7, "incident.scale: \"sev1-sev5\" is not a severity scale"),
        (
            8,
            "incident.updates.P9: \"P9\" is not a severity on this scale",
        ),
        (8, "incident.updates.P1: \"soon\""),
        (
            15,
            "incident.escalation.after: levels fall due in the order they are written",
        ),
        (16, "incident.escalation.contact: say who is notified"),
        (
            17,
            "incident.escalation.severities: \"P7\" is not a severity",
        ),
    ];
    for (line, start) in want {
        assert!(
            got.iter().any(|(l, m)| *l == line && m.starts_with(start)),
            "{line}: {start:?} missing from {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

const BROKEN: &str = r#"name = "shop"

[platform]
kind = "compose"
project = "shop"

[services.api]
health = "http://admin:hunter2@127.0.0.1:8080/health"
depends_on = ["db"]

[database]
url_env = "postgres://app:secret@db/app"

[thresholds]
rollout_timeout = "5 fortnights"
memory_warn = 80.0

[approval]
allow = ["restart"]
"#;

#[test]
fn check_config_names_the_line_and_key_of_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("opsbook.toml");
    std::fs::write(&file, BROKEN).unwrap();
    let out = opsbook(&["--system", file.to_str().unwrap(), "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let path = file.display().to_string();
    for expected in [
        format!("{path}:8:10: services.api.health: credentials do not belong in the system file"),
        format!("{path}:9:15: services.api.depends_on: no service \"db\""),
        format!("{path}:12:11: database.url_env: this is a URL, not the name of a variable"),
        format!("{path}:15:19: thresholds.rollout_timeout: \"5 fortnights\" is not"),
        format!("{path}:16:15: thresholds.memory_warn: 80 is not a fraction"),
        format!("{path}:19:10: approval.allow: not a rule"),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(stderr.contains("opsbook: 6 error(s)"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "a secret in an error: {stderr}"
    );

    // --json: the same errors as data on stdout.
    let out = opsbook(&["--json", "--system", file.to_str().unwrap(), "check-config"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 6);
    assert_eq!(v["errors"][0]["line"], 8);
    assert_eq!(v["errors"][0]["key"], "services.api.health");
}

#[test]
fn unknown_keys_and_bad_toml_point_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("opsbook.toml");
    let text = "name = \"shop\"\n[platform]\nkind = \"compose\"\nproject = \"shop\"\n[services.api]\nhelth_check = \"x\"\n";
    std::fs::write(&file, text).unwrap();
    let out = opsbook(&["--system", file.to_str().unwrap(), "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains(":6:1: services.api.helth_check: unknown field `helth_check`"),
        "{stderr}"
    );
    std::fs::write(&file, "name = \"shop\"\n[platform\n").unwrap();
    let out = opsbook(&["--system", file.to_str().unwrap(), "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("opsbook.toml:2:"), "{stderr}");
    let out = opsbook(&["--system", "/nonexistent/opsbook.toml", "check-config"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the system file"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = System::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn parsing_toml_shaped_text_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                "\\[\\[?(platform|services\\.[a-z]{1,4}|thresholds(\\.db|\\.cache)?|approval|checks|notifiers|database|cache|metrics)\\]\\]?",
                "(name|kind|project|namespace|health|url_env|url_file|rollout_timeout|p95|error_rate|allow|depends_on|tcp|tls|http|timeout|memory_warn|primary|window|severities) = (\"[^\"\\n]{0,12}\"|-?[0-9]{1,4}(\\.[0-9])?|\\[\"[a-z:*@_]{0,8}\"\\]|\\{ high = \"[0-9a-z]{0,3}\", medium = 0.5, low = \"1s\" \\})",
            ],
            0..24,
        )
    ) {
        let text = lines.join("\n");
        if let Err(e) = System::parse(&text, Path::new("fuzz.toml")) {
            for err in &e.errors {
                prop_assert!(err.line <= text.lines().count() + 1, "{err:?}");
            }
        }
    }
}

#[test]
fn help_shows_examples_and_exit_statuses_and_completions_print() {
    let help = opsbook(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0));
    assert!(text.starts_with("The on-call engineer's command"), "{text}");
    assert!(text.contains("Exit status: 0 healthy"), "{text}");
    let sub = opsbook(&["help", "cache-purge"]);
    assert!(String::from_utf8_lossy(&sub.stdout).contains("opsbook cache-purge --pattern"));
    for shell in ["bash", "zsh", "fish"] {
        let out = opsbook(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            script.contains("check-config") && script.contains("api-down"),
            "{shell}: {script}"
        );
    }
    let usage = opsbook(&["api-down", "--no-such-flag"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn the_readme_system_file_validates() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("## Use it from a terminal")
        .nth(1)
        .expect("README has the section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section shows a system file");
    let system = System::parse(toml, Path::new("README.md")).unwrap();
    assert_eq!(system.name, "shop");
    assert_eq!(system.primary, "api");
}
