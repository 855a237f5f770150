//! The part of a compose file opsbook reads: each service's `depends_on`. docker-compose 1.29
//! writes no `com.docker.compose.depends_on` label (compose v2 does), so start-up order for
//! its projects comes from the files named in `com.docker.compose.project.config_files`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The largest compose file read (a compose file is a few KiB; this bounds a mistake).
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    services: Option<BTreeMap<String, Option<Service>>>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    depends_on: Option<DependsOn>,
}

/// `depends_on: [db]` or `depends_on: {db: {condition: service_healthy}}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum DependsOn {
    List(Vec<String>),
    #[allow(
        clippy::zero_sized_map_values,
        reason = "the map form's keys are read, its values (conditions) skipped"
    )]
    Map(BTreeMap<String, serde::de::IgnoredAny>),
}

/// Every service of one compose file with the services it depends on.
///
/// # Errors
/// The YAML error, in words, when the text is not a compose file.
pub(crate) fn depends_on(text: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    Ok(file
        .services
        .unwrap_or_default()
        .into_iter()
        .map(|(name, service)| {
            let deps = match service.and_then(|s| s.depends_on) {
                Some(DependsOn::List(l)) => l.into_iter().collect(),
                Some(DependsOn::Map(m)) => m.into_keys().collect(),
                None => BTreeSet::new(),
            };
            (name, deps)
        })
        .collect())
}

/// The paths in a `com.docker.compose.project.config_files` label, relative ones taken from
/// the `working_dir` label's directory.
pub(crate) fn config_paths(files: &str, working_dir: Option<&str>) -> Vec<PathBuf> {
    files
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match working_dir {
            Some(dir) if Path::new(f).is_relative() => Path::new(dir).join(f),
            _ => PathBuf::from(f),
        })
        .collect()
}

/// `depends_on` of every service across the project's compose files (later files add to
/// earlier ones, as compose merges them). `Err` says which file could not be read or parsed.
pub(crate) fn read_depends_on(
    paths: &[PathBuf],
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut all: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in paths {
        let len = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if len > MAX_FILE_BYTES {
            return Err(format!(
                "{}: {len} bytes, more than a compose file",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (service, deps) in depends_on(&text).map_err(|e| format!("{}: {e}", path.display()))? {
            all.entry(service).or_default().extend(deps);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn both_depends_on_forms_are_read() {
        let text = "version: '2.4'\nservices:\n  db:\n    image: pg\n  cache:\n  api:\n    image: x\n    depends_on:\n      db:\n        condition: service_healthy\n      cache:\n        condition: service_started\n  worker:\n    depends_on: [api]\nnetworks:\n  back: {}\n";
        let deps = depends_on(text).unwrap();
        assert_eq!(
            deps,
            BTreeMap::from([
                (
                    "api".to_owned(),
                    BTreeSet::from(["cache".to_owned(), "db".to_owned()])
                ),
                ("cache".to_owned(), BTreeSet::new()),
                ("db".to_owned(), BTreeSet::new()),
                ("worker".to_owned(), BTreeSet::from(["api".to_owned()])),
            ])
        );
    }

    #[test]
    fn relative_config_files_are_taken_from_the_working_dir() {
        assert_eq!(
            config_paths("compose.yml,/etc/x/override.yml", Some("/srv/shop")),
            [
                PathBuf::from("/srv/shop/compose.yml"),
                PathBuf::from("/etc/x/override.yml")
            ]
        );
    }

    #[test]
    fn not_a_compose_file_is_an_error() {
        assert!(depends_on("services: [a, b]").is_err());
        assert!(depends_on("services:\n  api:\n    depends_on: 3\n").is_err());
    }

    /// Service names as compose accepts them, leaving out the words YAML reads as booleans
    /// or null (compose itself refuses those as keys).
    fn service_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_-]{0,8}".prop_filter("a YAML keyword", |n| {
            !["true", "false", "null", "y", "n", "yes", "no", "on", "off"].contains(&n.as_str())
        })
    }

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,200}") {
            let _ = depends_on(&text);
        }

        #[test]
        fn what_is_written_is_read_back(
            services in proptest::collection::btree_map(
                service_name(),
                (proptest::collection::btree_set(service_name(), 0..4), any::<bool>()),
                0..6,
            )
        ) {
            let mut text = String::from("services:\n");
            for (name, (deps, as_map)) in &services {
                let _ = writeln!(text, "  {name}:\n    image: x");
                if deps.is_empty() {
                    continue;
                }
                text.push_str("    depends_on:\n");
                for d in deps {
                    if *as_map {
                        let _ = writeln!(text, "      {d}:\n        condition: service_started");
                    } else {
                        let _ = writeln!(text, "      - {d}");
                    }
                }
            }
            let read = depends_on(&text).unwrap();
            let expected: BTreeMap<String, BTreeSet<String>> =
                services.into_iter().map(|(n, (d, _))| (n, d)).collect();
            prop_assert_eq!(read, expected);
        }
    }
}
