//! `opsbook check-config`: validate the system file, print every error with its line and key.

use ops_core::incident::Severity;
use std::path::Path;

use crate::system::{PlatformSpec, System};

use super::Exit;

/// Validate the file at `path`; say what it describes, or every error. With `json`, stdout
/// gets `{"valid": bool, "errors": [{line, column, key, message}], "warnings": [...]}`.
pub(crate) fn check_config(path: &Path, json: bool) -> Exit {
    match System::load(path) {
        Ok(system) => {
            let warnings = system.warnings();
            for w in &warnings {
                eprintln!("{}: note: {w}", path.display());
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"valid": true, "system": system.name, "errors": [], "warnings": warnings})
                );
            } else {
                println!("{}: {}", path.display(), describe(&system));
            }
            Exit::Ok
        }
        Err(errors) => {
            if json {
                let list: Vec<serde_json::Value> = errors
                    .errors
                    .iter()
                    .map(|e| serde_json::json!({"line": e.line, "column": e.column, "key": e.key, "message": e.message}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "errors": list, "warnings": []})
                );
            }
            eprintln!("{errors}");
            eprintln!(
                "opsbook: {} error(s) in {}",
                errors.errors.len(),
                path.display()
            );
            Exit::Config
        }
    }
}

/// One line saying what the file describes.
fn describe(s: &System) -> String {
    let platform = match &s.platform {
        PlatformSpec::Compose { project } => format!("compose project {project}"),
        PlatformSpec::Kubernetes { namespace, .. } => format!("kubernetes namespace {namespace}"),
    };
    let services: Vec<&str> = s.services.iter().map(|x| x.name.as_str()).collect();
    let mut parts = vec![
        platform,
        format!("services {} (primary {})", services.join(", "), s.primary),
    ];
    if let Some(db) = &s.database {
        parts.push(format!("database from {}", db.url.describe()));
    }
    if let Some(c) = &s.cache {
        parts.push(format!("cache from {}", c.url.describe()));
    }
    if !s.checks.is_empty() {
        parts.push(format!("{} check(s)", s.checks.len()));
    }
    if !s.notifiers.is_empty() {
        parts.push(format!("{} notifier(s)", s.notifiers.len()));
    }
    let scale = &s.incident.scale;
    let (most, least) = (scale.label(Severity::Critical), scale.label(Severity::Low));
    parts.push(format!("severities {most}–{least}"));
    let ladder: Vec<String> = s
        .incident
        .escalation
        .levels_for(Severity::Critical)
        .iter()
        .map(ToString::to_string)
        .collect();
    if !ladder.is_empty() {
        parts.push(format!("{most} escalates to {}", ladder.join(", ")));
    }
    format!("system {} is valid: {}", s.name, parts.join("; "))
}
