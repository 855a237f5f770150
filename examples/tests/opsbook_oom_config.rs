//! Issue 14, resources: the system file's `[thresholds.oom]` reaches `oom` (step, ceiling,
//! far-below fraction), and a bad step or ceiling is an error naming its key and line.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::Path;

use ops_examples::system::System;

#[test]
fn the_example_system_sets_the_oom_step_and_ceiling() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systems/enterprise-rag.toml");
    let s = System::load(&path).unwrap();
    assert_eq!(s.config.oom.step.to_string(), "x1.5");
    assert_eq!(s.config.oom.ceiling.unwrap().to_string(), "4Gi");
    assert!((s.config.oom.far_below - 0.5).abs() < f64::EPSILON);
}

#[test]
fn a_bad_step_or_ceiling_names_its_key() {
    let text = r#"name = "shop"

[platform]
kind = "compose"
project = "shop"

[thresholds.oom]
step = "0.5"
ceiling = "2GB"
far_below = 5.0
"#;
    let err = System::parse(text, Path::new("opsbook.toml")).unwrap_err();
    let shown = err.to_string();
    for (line, key) in [
        (8, "thresholds.oom.step"),
        (9, "thresholds.oom.ceiling"),
        (10, "thresholds.oom.far_below"),
    ] {
        assert!(
            err.errors.iter().any(|e| e.line == line && e.key == key),
            "{key} at line {line} missing from {shown}"
        );
    }
}
