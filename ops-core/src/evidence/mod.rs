//! Evidence capture (issue 14 §evidence): the logs of every container of every instance
//! (previous containers too), the workloads' state and events, and the namespace's objects
//! ([`Platform::export`]), written atomically to a directory with a `SHA256SUMS` manifest
//! that `sha256sum -c` checks, optionally also as a tarball with a `.sha256` sidecar.
//!
//! Capture only reads from the platform. Nothing secret goes in: exports carry secret key
//! names only (the backends' rule), and every log line and event message passes through
//! [`crate::text::redact_credentials`] (passwords, tokens, `Authorization` headers, private
//! keys), which `bundle.json` says.
//!
//! # Layout
//! ```text
//! <dest>/bundle.json                           namespace, time, workloads, warnings
//! <dest>/workloads/<workload>.json             status with instances
//! <dest>/events/<workload>.json                events, oldest first
//! <dest>/logs/<workload>/<instance>[.<container>].log            current containers
//! <dest>/logs/<workload>/<instance>[.<container>].previous.log   previous containers
//! <dest>/export/<kind>-<name>.json             exported objects (notes in export/notes.txt)
//! <dest>/SHA256SUMS                            `<sha256>  <path>` for every file above
//! ```

mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{ErrorKind, OpsError};
use crate::platform::{EventOptions, ExportOptions, LogLine, LogOptions, Platform};
use crate::refs::{Namespace, WorkloadRef};

/// What [`capture`] collects.
///
/// # Examples
/// ```
/// let o = ops_core::evidence::EvidenceOptions::default().with_tail(500).with_tarball(true);
/// assert_eq!(o.log_tail, Some(500));
/// assert!(o.tarball);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvidenceOptions {
    /// Last N log lines per instance and container (default 10 000; `None`: all).
    pub log_tail: Option<u32>,
    /// Also write `<dest>.tar` with a `<dest>.tar.sha256` sidecar (default false).
    pub tarball: bool,
    /// Include the namespace export (default true; skipped with a warning where the platform
    /// cannot export).
    pub export: bool,
}

impl Default for EvidenceOptions {
    fn default() -> Self {
        Self {
            log_tail: Some(10_000),
            tarball: false,
            export: true,
        }
    }
}

impl EvidenceOptions {
    /// Last `n` lines per instance and container.
    #[must_use]
    pub fn with_tail(mut self, n: u32) -> Self {
        self.log_tail = Some(n);
        self
    }

    /// Also write a tarball.
    #[must_use]
    pub fn with_tarball(mut self, tarball: bool) -> Self {
        self.tarball = tarball;
        self
    }

    /// Include the namespace export or not.
    #[must_use]
    pub fn with_export(mut self, export: bool) -> Self {
        self.export = export;
        self
    }
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EvidenceFile {
    /// Path inside the bundle, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// What [`capture`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EvidenceBundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Every file in `SHA256SUMS`, by path.
    pub files: Vec<EvidenceFile>,
    /// The tarball and its SHA-256, when asked for.
    pub tarball: Option<write::Tarball>,
    /// What could not be collected (a previous container that does not exist, a platform
    /// without export), in words.
    pub warnings: Vec<String>,
}

impl EvidenceBundle {
    /// The SHA-256 of the `SHA256SUMS` manifest itself (one value that pins the bundle, for a
    /// report or a ticket).
    pub fn manifest_sha256(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == write::MANIFEST)
            .map(|f| f.sha256.as_str())
    }
}

#[derive(Serialize)]
struct BundleInfo<'a> {
    namespace: &'a Namespace,
    captured_at: jiff::Timestamp,
    backend: &'static str,
    workloads: Vec<String>,
    redaction: &'static str,
    warnings: &'a [String],
}

/// Collect evidence about `workloads` (empty: every workload of `namespace`) into the new
/// directory `dest`, whose parent must exist and which must not.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when a workload is outside `namespace` or `dest` has no file
/// name; [`ErrorKind::Conflict`] when `dest` (or the tarball) exists;
/// [`ErrorKind::Unavailable`] when writing fails (nothing is left at `dest`); the platform's
/// errors for the workload list, status and current logs (events, previous logs and the
/// export only warn).
///
/// # Examples
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use ops_core::evidence::{capture, EvidenceOptions};
/// use ops_core::platform::{LogLine, WorkloadStatus};
/// use ops_core::testing::FakePlatform;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let p = FakePlatform::default()
///     .with_workload(WorkloadStatus::healthy(api.clone(), 1))
///     .with_logs(&api, vec![LogLine::new("api-0".parse()?, None, "GET / 200")]);
/// let tmp = std::env::temp_dir().join(format!("doc-evidence-{}", std::process::id()));
/// std::fs::create_dir_all(&tmp).unwrap();
/// let bundle = capture(&p, api.namespace(), &[], &tmp.join("bundle"), &EvidenceOptions::default()).await?;
/// assert!(bundle.files.iter().any(|f| f.path == "logs/api/api-0.log"));
/// assert!(p.mutations().is_empty());
/// # std::fs::remove_dir_all(&tmp).unwrap();
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(level = "debug", skip_all, fields(target = %namespace))]
pub async fn capture(
    platform: &dyn Platform,
    namespace: &Namespace,
    workloads: &[WorkloadRef],
    dest: &Path,
    opts: &EvidenceOptions,
) -> Result<EvidenceBundle, OpsError> {
    if let Some(outside) = workloads.iter().find(|w| w.namespace() != namespace) {
        return Err(OpsError::invalid(
            "evidence",
            outside.to_string(),
            format!("not in namespace {namespace}"),
        ));
    }
    write::check_destination(dest, opts.tarball)?;
    let workloads = if workloads.is_empty() {
        platform.list_workloads(namespace).await?
    } else {
        workloads.to_vec()
    };
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for w in &workloads {
        collect_workload(platform, w, opts, &mut files, &mut warnings).await?;
    }
    if opts.export {
        match platform.export(namespace, ExportOptions::default()).await {
            Ok(export) => {
                for o in &export.objects {
                    files.insert(format!("export/{}", o.file_name()), to_json(&o.object)?);
                }
                let mut notes = export.notes.join("\n");
                notes.push('\n');
                files.insert("export/notes.txt".to_owned(), notes.into_bytes());
            }
            Err(e) => warnings.push(format!("export: {e}")),
        }
    }
    let info = BundleInfo {
        namespace,
        captured_at: jiff::Timestamp::now(),
        backend: platform.backend(),
        workloads: workloads.iter().map(ToString::to_string).collect(),
        redaction: "log lines and event messages pass through opsbook's credential redaction; secrets are exported as key names only",
        warnings: &warnings,
    };
    files.insert("bundle.json".to_owned(), to_json(&info)?);
    let target = dest.to_owned();
    let tarball = opts.tarball;
    let (files, tarball) =
        tokio::task::spawn_blocking(move || write::write_bundle(&target, &files, tarball))
            .await
            .map_err(|e| {
                OpsError::new(ErrorKind::Backend, "evidence", "write", "bundle").with_source(e)
            })??;
    Ok(EvidenceBundle {
        dir: dest.to_owned(),
        files,
        tarball,
        warnings,
    })
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, OpsError> {
    let mut out = serde_json::to_vec_pretty(value).map_err(|e| {
        OpsError::new(ErrorKind::Backend, "evidence", "serialize", "bundle").with_source(e)
    })?;
    out.push(b'\n');
    Ok(out)
}

/// Status, events and logs (current and previous) of one workload.
async fn collect_workload(
    platform: &dyn Platform,
    w: &WorkloadRef,
    opts: &EvidenceOptions,
    files: &mut BTreeMap<String, Vec<u8>>,
    warnings: &mut Vec<String>,
) -> Result<(), OpsError> {
    let name = w.name().as_str();
    let status = platform.workload(w).await?;
    files.insert(format!("workloads/{name}.json"), to_json(&status)?);
    match platform.events(w, EventOptions::default()).await {
        Ok(mut events) => {
            for e in &mut events {
                e.message = crate::text::redact_credentials(&e.message);
            }
            files.insert(format!("events/{name}.json"), to_json(&events)?);
        }
        Err(e) => warnings.push(format!("events of {w}: {e}")),
    }
    let mut current = LogOptions::default().with_timestamps(true);
    current.tail = opts.log_tail;
    let lines = platform.logs(w, current.clone()).await?;
    write_logs(name, "log", &lines, files);
    // Previous containers: per instance, since an instance without one makes the platform
    // refuse the whole read.
    for instance in &status.instances {
        let previous = current
            .clone()
            .with_instance(instance.name.clone())
            .with_previous(true);
        match platform.logs(w, previous).await {
            Ok(lines) => write_logs(name, "previous.log", &lines, files),
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::InvalidInput => {}
            Err(e) => warnings.push(format!(
                "previous logs of {w} instance {}: {e}",
                instance.name
            )),
        }
    }
    Ok(())
}

/// One file per instance and container: `<timestamp> <stream> <text>` per line, redacted.
fn write_logs(
    workload: &str,
    suffix: &str,
    lines: &[LogLine],
    files: &mut BTreeMap<String, Vec<u8>>,
) {
    for line in lines {
        let container = line
            .container
            .as_deref()
            .map(|c| format!(".{}", clean(c)))
            .unwrap_or_default();
        let path = format!(
            "logs/{workload}/{}{container}.{suffix}",
            clean(line.instance.as_str())
        );
        let at = line.timestamp.map(|t| t.to_string()).unwrap_or_default();
        let stream = match line.stream {
            crate::platform::LogStream::Stdout => "stdout",
            crate::platform::LogStream::Stderr => "stderr",
        };
        let text = crate::text::redact_credentials(&line.text);
        let file = files.entry(path).or_default();
        file.extend_from_slice(format!("{at} {stream} {text}\n").as_bytes());
    }
}

/// A path component from a platform name: `a-z A-Z 0-9 . _ -` kept, anything else `_`, never
/// `.` or `..` alone.
fn clean(name: &str) -> String {
    let out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().all(|c| c == '.') {
        out.replace('.', "_")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_makes_a_path_separator_or_a_dot_name() {
        assert_eq!(clean("../x"), ".._x");
        assert_eq!(clean(".."), "__");
        assert_eq!(clean("a/b"), "a_b");
        assert_eq!(clean("api-0"), "api-0");
    }
}
