//! A directory backed up out of every instance of a workload (seed 004's Weaviate data,
//! `kubectl exec … tar` then `kubectl cp`), as one checked tar per instance with its sha256.

use std::path::Path;
use std::time::Duration;

use super::Targets;
use super::on_demand::{made, verified};
use crate::archive::{check_archive, split_dir};
use crate::database::BackupInfo;
use crate::error::OpsError;
use crate::refs::InstanceRef;
use crate::run::{Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// Copy the directory `path` out of every instance of `targets.workload` as a tar archive
/// (members named `BASE/…`), check each archive (readable, nothing outside the directory, no
/// devices) and write it into `dir` as `<instance>-<base>-<time>.tar` with a `.sha256`
/// sidecar (fsynced; nothing is ever replaced), then verify each written file.
///
/// Copying reads only, but it loads the instances and writes files, so it is one disruptive
/// step: a dry run plans it (naming every instance) and execute mode asks first. The archive
/// is taken while the application runs: for data an application writes continuously, stop
/// writes first or use the application's own backup (the summary says so). Outcome:
/// [`RunOutcome::Recovered`] when every archive is written and verified,
/// [`RunOutcome::Planned`] in a dry run, [`RunOutcome::Unresolved`] when denied.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for a path that is not an absolute directory (or is
/// `/`); [`crate::ErrorKind::Unavailable`] when the workload has no instance; errors of the
/// copy ([`crate::Platform::archive_from`]), of the checks and of the writes. Archives
/// written before a failure stay (complete and checksummed) and are named in the error.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{directory_backup, Targets};
/// use ops_core::testing::FakePlatform;
/// let db: ops_core::WorkloadRef = "prod/statefulset/weaviate".parse()?;
/// let platform = FakePlatform::default()
///     .with_workload(WorkloadStatus::healthy(db.clone(), 1))
///     .with_file(&db.instance("weaviate-0")?, "/var/lib/weaviate/data.bin", b"vectors");
/// let t = Targets::new(Arc::new(platform), db);
/// let dir = std::env::temp_dir().join(format!("opsbook-doc-dir-backup-{}", std::process::id()));
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("oncall")).build();
/// let report = directory_backup(&ctx, &t, "/var/lib/weaviate", &dir).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "directory_backup", target = %t.workload, mode = %ctx.mode()))]
pub async fn directory_backup(
    ctx: &RunContext,
    t: &Targets,
    path: &str,
    dir: &Path,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("directory_backup", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let (_, base) = split_dir(path)?;
        let status = run
            .read(Step::read_only("instances").target(&t.workload), || {
                t.platform.workload(&t.workload)
            })
            .await?;
        let instances = status
            .instances
            .iter()
            .map(|i| t.workload.instance(i.name.as_str()))
            .collect::<Result<Vec<InstanceRef>, OpsError>>()?;
        if instances.is_empty() {
            return Err(OpsError::new(
                crate::ErrorKind::Unavailable,
                t.platform.backend(),
                "directory_backup",
                t.workload.to_string(),
            )
            .with_detail("the workload has no instance to copy from"));
        }
        let names: Vec<String> = instances.iter().map(|i| i.name().to_string()).collect();
        let step = Step::disruptive("archive_directory")
            .describe(format!(
                "copy {path} out of {} as tar archives into {}",
                names.join(", "),
                dir.display()
            ))
            .target(&t.workload)
            .change(format!(
                "new files {}/<instance>-{base}-<time>.tar and their .sha256, one per instance",
                dir.display()
            ))
            .timeout(Duration::from_hours(1));
        let copy_all = || archive_each(&run, t, &instances, path, dir);
        let written = match made(&run, run.act(step, copy_all).await?, "No archive") {
            Ok(written) => written,
            Err(outcome) => return Ok(outcome),
        };
        for info in &written {
            verified(&run, "archive", &info.path, || {
                crate::artifact::verify(&info.path)
            })
            .await?;
        }
        run.summary(format!(
            "{path} of {} archived into {} ({} file(s), each with a .sha256). The copy was \
             taken while the instances ran: for data written continuously, prefer the \
             application's own backup or stop writes first.",
            t.workload,
            dir.display(),
            written.len()
        ));
        Ok(RunOutcome::Recovered)
    })
    .await;
    run.conclude(body).await
}

/// Archive `path` of each instance into `dir`, one checked file each. A failure after the
/// first archive names the archives already written (they stay: complete, checksummed).
async fn archive_each(
    run: &Run<'_>,
    t: &Targets,
    instances: &[InstanceRef],
    path: &str,
    dir: &Path,
) -> Result<Vec<BackupInfo>, OpsError> {
    let (_, base) = split_dir(path)?;
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    let mut written: Vec<BackupInfo> = Vec::new();
    for instance in instances {
        let one = async {
            let tar = t.platform.archive_from(instance, path).await?;
            let summary = check_archive(&tar, base)?;
            let name = format!("{}-{base}-{stamp}.tar", instance.name());
            let info = crate::artifact::write_verified(dir, &name, tar).await?;
            Ok::<_, OpsError>((info, summary))
        };
        match one.await {
            Ok((info, summary)) => {
                run.finding(Finding::info(format!(
                    "{instance}: {path} archived to {} ({} files, {} directories, {} links, \
                     {} bytes of contents)",
                    info.path.display(),
                    summary.files,
                    summary.directories,
                    summary.links,
                    summary.bytes
                )));
                written.push(info);
            }
            Err(e) if written.is_empty() => return Err(e),
            Err(e) => {
                let kept: Vec<String> = written
                    .iter()
                    .map(|w| w.path.display().to_string())
                    .collect();
                let detail = format!(
                    "{}; archives already written (complete, checksummed): {}",
                    e.detail().unwrap_or("failed"),
                    kept.join(", ")
                );
                return Err(e.with_detail(detail));
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ErrorKind;
    use crate::platform::WorkloadStatus;
    use crate::refs::WorkloadRef;
    use crate::run::{ApprovalPolicy, Mode};
    use crate::testing::FakePlatform;

    fn execute() -> RunContext {
        RunContext::builder()
            .mode(Mode::Execute)
            .allow_volatile_journal()
            .approver(ApprovalPolicy::approve_all("oncall"))
            .build()
    }

    fn weaviate(replicas: u32) -> (Targets, Arc<FakePlatform>) {
        let w: WorkloadRef = "prod/statefulset/weaviate".parse().unwrap();
        let mut platform =
            FakePlatform::default().with_workload(WorkloadStatus::healthy(w.clone(), replicas));
        for i in 0..replicas {
            let pod = w.instance(&format!("weaviate-{i}")).unwrap();
            platform = platform
                .with_file(
                    &pod,
                    "/var/lib/weaviate/schema.json",
                    format!("schema {i}").as_bytes(),
                )
                .with_file(&pod, "/var/lib/weaviate/shards/a.db", b"vectors");
        }
        let platform = Arc::new(platform);
        (Targets::new(Arc::clone(&platform) as _, w), platform)
    }

    fn tars(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        found.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "tar"));
        found.sort();
        found
    }

    #[tokio::test]
    async fn every_instance_gets_its_own_checked_archive_and_a_dry_run_writes_none() {
        let (t, platform) = weaviate(2);
        let dir = tempfile::tempdir().unwrap();
        let plan = directory_backup(
            &RunContext::builder().build(),
            &t,
            "/var/lib/weaviate/",
            dir.path(),
        )
        .await
        .unwrap();
        assert_eq!(plan.outcome, RunOutcome::Planned);
        assert!(
            plan.actions[0]
                .description
                .contains("weaviate-0, weaviate-1"),
            "{plan:?}"
        );
        assert!(tars(dir.path()).is_empty());
        assert!(platform.mutations().is_empty());

        let report = directory_backup(&execute(), &t, "/var/lib/weaviate", dir.path())
            .await
            .unwrap();
        assert_eq!(report.outcome, RunOutcome::Recovered, "{report:?}");
        let written = tars(dir.path());
        assert_eq!(written.len(), 2);
        let mut archive = tar::Archive::new(std::fs::File::open(&written[1]).unwrap());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["weaviate/", "weaviate/schema.json", "weaviate/shards/a.db"]
        );
        assert!(platform.mutations().is_empty(), "a copy changes nothing");
    }

    #[tokio::test]
    async fn a_missing_directory_or_a_bad_path_writes_nothing() {
        let (t, _) = weaviate(1);
        let dir = tempfile::tempdir().unwrap();
        let missing = directory_backup(&execute(), &t, "/var/lib/nothing", dir.path())
            .await
            .unwrap_err();
        assert_eq!(missing.error().kind(), ErrorKind::NotFound);
        for bad in ["/", "relative/dir", "/var/../etc"] {
            let err = directory_backup(&execute(), &t, bad, dir.path())
                .await
                .unwrap_err();
            assert_eq!(err.error().kind(), ErrorKind::InvalidInput, "{bad}");
        }
        assert!(tars(dir.path()).is_empty());
    }
}
