//! Operations an on-call engineer runs on demand rather than in answer to a symptom: a
//! database backup, a cache backup and a cache purge by pattern. Each is a run like any runbook: journaled,
//! planned in a dry run, approved in execute mode.

use std::path::Path;
use std::time::Duration;

use super::Targets;
use super::cache::{purge_outcome, purge_step};
use crate::cache::SnapshotFile;
use crate::database::{BackupInfo, BackupOptions};
use crate::error::{ErrorKind, OpsError};
use crate::platform::WorkloadStatus;
use crate::refs::{Identifier, KeyPattern};
use crate::refs::{InstanceRef, WorkloadRef};
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// Back up `database` into `dir` (`pg_dump -Fc` to a temp file, fsynced, renamed, with a
/// `.sha256` sidecar, in `ops-db`), then verify the file against its checksum.
///
/// The backup is a disruptive step: it writes a file and loads the server for as long as
/// the dump runs, so a dry run plans it (naming the database and the folder) and execute
/// mode asks first. The outcome is [`RunOutcome::Recovered`] when the verified file exists
/// ("done"), [`RunOutcome::Planned`] in a dry run, [`RunOutcome::Unresolved`] when denied.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a database; errors of the backup or of its
/// verification.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{database_backup, Targets};
/// use ops_core::testing::{FakeDatabase, FakePlatform};
/// let db = Arc::new(FakeDatabase::default());
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?)
///     .with_database(db.clone());
/// let report = database_backup(&RunContext::builder().build(), &t, &"app".parse()?, "/backups".as_ref()).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert!(db.mutations().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "database_backup", target = %database, mode = %ctx.mode()))]
pub async fn database_backup(
    ctx: &RunContext,
    t: &Targets,
    database: &Identifier,
    dir: &Path,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("database_backup", database).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let verified = match backup_and_verify(&run, t, database, dir).await? {
            Ok(verified) => verified,
            Err(outcome) => return Ok(outcome),
        };
        run.summary(format!(
            "Database {database} backed up to {}.",
            verified.path.display()
        ));
        Ok(RunOutcome::Recovered)
    })
    .await;
    run.conclude(body).await
}

/// The backup step and the check of its file, shared by `database_backup` and
/// `planned_maintenance`: `Ok(verified file)` when the backup was made and verified,
/// `Err(outcome)` when it was only planned ([`RunOutcome::Planned`]) or denied
/// ([`RunOutcome::Unresolved`], the denial in the summary).
pub(crate) async fn backup_and_verify(
    run: &Run<'_>,
    t: &Targets,
    database: &Identifier,
    dir: &Path,
) -> Result<Result<BackupInfo, RunOutcome>, OpsError> {
    let db = t.database()?;
    let step = Step::disruptive("backup")
        .describe(format!(
            "dump database {database} with pg_dump -Fc into {} (with a .sha256 sidecar)",
            dir.display()
        ))
        .target(database)
        .change(format!(
            "new file {}/{database}-<time>.dump and its .sha256",
            dir.display()
        ))
        .timeout(std::time::Duration::from_hours(2));
    let opts = BackupOptions::new(database.clone(), dir);
    let info = match made(run, run.act(step, || db.backup(&opts)).await?, "No backup") {
        Ok(info) => info,
        Err(outcome) => return Ok(Err(outcome)),
    };
    Ok(Ok(verified(run, "backup", &info.path, || {
        db.verify_backup(&info.path)
    })
    .await?))
}

/// Purge the keys matching `pattern` from the cache: count and sample them (read-only), then
/// unlink them with SCAN + UNLINK in batches through the gate (never `KEYS`, never `FLUSHDB`).
/// The plan states how many keys match and shows a sample. A pattern that matches every key
/// is refused unless `config.cache.allow_match_all` is set.
///
/// Outcome: [`RunOutcome::Healthy`] when no key matches, [`RunOutcome::Recovered`] when they
/// were purged, [`RunOutcome::Planned`] in a dry run, [`RunOutcome::Unresolved`] when denied.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a cache or for a match-all pattern; errors of
/// the purge (its detail says how many keys were deleted; rerunning finishes the job).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{cache_purge, Targets};
/// use ops_core::testing::{FakeCache, FakePlatform};
/// let cache = Arc::new(FakeCache::default().with_keys("model:", 4).with_keys("session:", 2));
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/statefulset/redis".parse()?).with_cache(cache.clone());
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("oncall")).build();
/// let report = cache_purge(&ctx, &t, &"model:*".parse()?).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// assert_eq!(cache.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "cache_purge", target = %pattern, mode = %ctx.mode()))]
pub async fn cache_purge(
    ctx: &RunContext,
    t: &Targets,
    pattern: &KeyPattern,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("cache_purge", pattern).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.cache()?;
        Ok(purge_outcome(&purge_step(&run, t, "purge", pattern).await?))
    })
    .await;
    run.conclude(body).await
}

/// Back up the cache's data: `BGSAVE` (waiting until `LASTSAVE` moves), copy the RDB file the
/// server wrote out of the cache's instance (`targets.workload`), check it is an RDB file and
/// write it into `dir` with a `.sha256` sidecar (fsynced; an existing file is never replaced),
/// then verify the written file against its checksum.
///
/// The snapshot and copy are one disruptive step (the server forks and writes its file), so a
/// dry run plans it and execute mode asks first. When the server has `appendonly` on, the
/// report says so: the server loads its AOF at start, not the RDB, and the summary gives the
/// restore steps. Cluster mode and caches with several instances are refused with the steps to
/// take by hand (which node's file is in which instance is not known here). Outcome:
/// [`RunOutcome::Recovered`] when the verified file exists, [`RunOutcome::Planned`] in a dry
/// run, [`RunOutcome::Unresolved`] when denied.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a cache; [`crate::ErrorKind::Unsupported`] when
/// the server does not say where its file is (`CONFIG` disabled) or the cache has several
/// nodes or instances; errors of the snapshot, of the copy (the platform's `copy_from_into`), of
/// the write and of the verification.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{cache_backup, Targets};
/// use ops_core::testing::{FakeCache, FakePlatform};
/// let redis: ops_core::WorkloadRef = "prod/statefulset/redis".parse()?;
/// let platform = FakePlatform::default()
///     .with_workload(WorkloadStatus::healthy(redis.clone(), 1))
///     .with_file(&redis.instance("redis-0")?, "/data/dump.rdb", b"REDIS0011 data");
/// let t = Targets::new(Arc::new(platform), redis).with_cache(Arc::new(FakeCache::default()));
/// let dir = std::env::temp_dir().join(format!("opsbook-doc-cache-backup-{}", std::process::id()));
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("oncall")).build();
/// let report = cache_backup(&ctx, &t, &dir).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "cache_backup", target = %t.workload, mode = %ctx.mode()))]
pub async fn cache_backup(ctx: &RunContext, t: &Targets, dir: &Path) -> Result<Report, RunFailure> {
    let run = ctx.begin("cache_backup", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let cache = t.cache()?;
        let status = run
            .read(
                Step::read_only("cache_instances").target(&t.workload),
                || t.platform.workload(&t.workload),
            )
            .await?;
        let instance = only_instance(t, &status)?;
        let step = Step::disruptive("snapshot_and_copy")
            .describe(format!(
                "BGSAVE on the cache (it forks and writes its RDB file; no key changes), then copy \
                 the file out of {instance} into {}",
                dir.display()
            ))
            .target(&instance)
            .change(format!(
                "new file {}/{}-<time>.rdb and its .sha256",
                dir.display(),
                t.workload.name()
            ))
            .timeout(Duration::from_mins(30));
        let copy = || async {
            let snapshot = cache.snapshot(Duration::from_mins(10)).await?;
            let file = single_file(&t.workload, &snapshot.files)?;
            let path = file.rdb_path.clone().ok_or_else(|| {
                unsupported(
                    &t.workload,
                    "the server refuses CONFIG GET dir/dbfilename: copy its RDB file by hand",
                )
            })?;
            let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
            let name = format!("{}-{stamp}.rdb", t.workload.name());
            // Streamed into the record as it arrives: a multi-GB file never sits in memory,
            // and a file that does not start `REDIS` is refused on its first bytes.
            let mut out = crate::artifact::ArtifactWriter::create(dir, &name)
                .await?
                .with_header(b"REDIS");
            let copied = t.platform.copy_from_into(&instance, &path, &mut out).await;
            match (copied, out.header_matches()) {
                (_, Some(false)) | (Ok(_), None) => {
                    return Err(OpsError::new(
                        ErrorKind::Backend,
                        t.platform.backend(),
                        "cache_backup",
                        format!("{instance}:{path}"),
                    )
                    .with_detail("the copied file is not an RDB file (no REDIS header)"));
                }
                (Err(e), _) => return Err(e),
                (Ok(_), Some(true)) => {}
            }
            let info = out.finish().await?;
            Ok((info, file.clone()))
        };
        let (info, file) = match made(&run, run.act(step, copy).await?, "No cache backup") {
            Ok(done) => done,
            Err(outcome) => return Ok(outcome),
        };
        let verified = verified(&run, "cache backup", &info.path, || {
            crate::artifact::verify(&info.path)
        })
        .await?;
        let mut summary = format!(
            "Cache {} backed up to {}.",
            t.workload,
            verified.path.display()
        );
        if let Some(caveat) = file.caveat() {
            run.finding(Finding::warning(caveat.clone()));
            summary = format!("{summary} Note: {caveat}.");
        }
        run.summary(summary);
        Ok(RunOutcome::Recovered)
    })
    .await;
    run.conclude(body).await
}

/// What an approved backup step made, or the run's outcome when it was only planned
/// ([`RunOutcome::Planned`]) or denied ([`RunOutcome::Unresolved`], the summary saying
/// "`nothing` was made" and why).
pub(super) fn made<T>(run: &Run<'_>, acted: Acted<T>, nothing: &str) -> Result<T, RunOutcome> {
    match acted {
        Acted::Done(done) => Ok(done),
        Acted::Planned => Err(RunOutcome::Planned),
        Acted::Denied { reason } => {
            run.summary(format!("{nothing} was made: {reason}."));
            Err(RunOutcome::Unresolved)
        }
    }
}

/// The read step that checks a written backup against its checksum, and the finding saying so.
pub(super) async fn verified<F, Fut>(
    run: &Run<'_>,
    what: &str,
    path: &Path,
    verify: F,
) -> Result<BackupInfo, OpsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<BackupInfo, OpsError>>,
{
    let verified = run
        .read(
            Step::read_only("verify_backup").target(path.display()),
            verify,
        )
        .await?;
    run.finding(Finding::info(format!(
        "{what} {} verified ({} bytes, sha256 {})",
        verified.path.display(),
        verified.bytes,
        verified.sha256
    )));
    Ok(verified)
}

/// The one instance the cache runs in; several are refused (which one holds the primary's file
/// is not known here).
fn only_instance(t: &Targets, status: &WorkloadStatus) -> Result<InstanceRef, OpsError> {
    match status.instances.as_slice() {
        [one] => t.workload.instance(one.name.as_str()),
        [] => Err(OpsError::new(
            ErrorKind::Unavailable,
            t.platform.backend(),
            "cache_backup",
            t.workload.to_string(),
        )
        .with_detail("the cache has no instance to copy its file from")),
        many => Err(unsupported(
            &t.workload,
            &format!(
                "the cache runs in {} instances; back up the primary's file by hand (BGSAVE on \
                 it, then copy its dir/dbfilename)",
                many.len()
            ),
        )),
    }
}

/// The snapshot's one file; cluster mode (a file per node) is refused.
fn single_file<'a>(
    workload: &WorkloadRef,
    files: &'a [SnapshotFile],
) -> Result<&'a SnapshotFile, OpsError> {
    match files {
        [one] => Ok(one),
        [] => Err(unsupported(
            workload,
            "the cache backend does not say which file its snapshot wrote",
        )),
        many => Err(unsupported(
            workload,
            &format!(
                "cluster mode: {} nodes each wrote their own file; copy each node's file by hand",
                many.len()
            ),
        )),
    }
}

fn unsupported(workload: &WorkloadRef, why: &str) -> OpsError {
    OpsError::new(
        ErrorKind::Unsupported,
        "runbook",
        "cache_backup",
        workload.to_string(),
    )
    .with_detail(why)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::ErrorKind;
    use crate::run::{ActionStatus, ApprovalPolicy, Mode};
    use crate::testing::{FakeCache, FakeDatabase, FakePlatform};

    fn targets() -> Targets {
        Targets::new(
            Arc::new(FakePlatform::default()),
            "prod/deployment/api".parse().unwrap(),
        )
    }

    fn execute(approver: ApprovalPolicy) -> RunContext {
        RunContext::builder()
            .mode(Mode::Execute)
            .allow_volatile_journal()
            .approver(approver)
            .build()
    }

    #[tokio::test]
    async fn backup_dry_run_plans_and_never_mutates() {
        let db = Arc::new(FakeDatabase::default());
        let t = targets().with_database(Arc::clone(&db) as _);
        let report = database_backup(
            &RunContext::builder().build(),
            &t,
            &"app".parse().unwrap(),
            Path::new("/backups"),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Planned);
        assert!(db.mutations().is_empty());
        assert_eq!(report.actions[0].step, "backup");
        assert!(report.actions[0].changes[0].contains("/backups/app-"));
    }

    #[tokio::test]
    async fn backup_executes_then_verifies_the_file() {
        let db = Arc::new(FakeDatabase::default());
        let t = targets().with_database(Arc::clone(&db) as _);
        let report = database_backup(
            &execute(ApprovalPolicy::approve_all("oncall")),
            &t,
            &"app".parse().unwrap(),
            Path::new("/backups"),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Recovered, "{report:?}");
        assert_eq!(db.mutations(), ["backup app"]);
        assert!(report.step("verify_backup").is_some());
    }

    #[tokio::test]
    async fn backup_denied_makes_nothing_and_is_unresolved() {
        let db = Arc::new(FakeDatabase::default());
        let t = targets().with_database(Arc::clone(&db) as _);
        let report = database_backup(
            &execute(ApprovalPolicy::DenyAll),
            &t,
            &"app".parse().unwrap(),
            Path::new("/backups"),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Unresolved);
        assert!(db.mutations().is_empty());
        assert_eq!(report.actions[0].status, ActionStatus::Denied);
    }

    #[tokio::test]
    async fn backup_without_a_database_fails_with_its_report() {
        let failure = database_backup(
            &RunContext::builder().build(),
            &targets(),
            &"app".parse().unwrap(),
            Path::new("/backups"),
        )
        .await
        .unwrap_err();
        assert_eq!(failure.error().kind(), ErrorKind::InvalidInput);
        assert_eq!(failure.report().outcome, RunOutcome::Failed);
    }

    #[tokio::test]
    async fn purge_dry_run_counts_and_never_deletes() {
        let cache = Arc::new(FakeCache::default().with_keys("model:", 7));
        let t = targets().with_cache(Arc::clone(&cache) as _);
        let report = cache_purge(
            &RunContext::builder().build(),
            &t,
            &"model:*".parse().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Planned);
        assert_eq!(cache.len(), 7);
        assert!(report.actions[0].changes[0].starts_with("unlink 7 keys matching model:*"));
    }

    #[tokio::test]
    async fn purge_deletes_only_the_pattern_and_refuses_match_all() {
        let cache = Arc::new(
            FakeCache::default()
                .with_keys("model:", 3)
                .with_keys("session:", 2),
        );
        let t = targets().with_cache(Arc::clone(&cache) as _);
        let ctx = execute(ApprovalPolicy::approve_all("oncall"));
        let report = cache_purge(&ctx, &t, &"model:*".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(report.outcome, RunOutcome::Recovered);
        assert_eq!(cache.len(), 2);
        let nothing = cache_purge(&ctx, &t, &"model:*".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(nothing.outcome, RunOutcome::Healthy);
        let all = cache_purge(&ctx, &t, &KeyPattern::match_all())
            .await
            .unwrap_err();
        assert_eq!(all.error().kind(), ErrorKind::InvalidInput);
        assert_eq!(cache.len(), 2);
    }

    fn redis_targets(replicas: u32, cache: Arc<FakeCache>) -> (Targets, Arc<FakePlatform>) {
        let redis: WorkloadRef = "prod/statefulset/redis".parse().unwrap();
        let platform = Arc::new(
            FakePlatform::default()
                .with_workload(WorkloadStatus::healthy(redis.clone(), replicas))
                .with_file(
                    &redis.instance("redis-0").unwrap(),
                    "/data/dump.rdb",
                    b"REDIS0011 the dump",
                ),
        );
        let t = Targets::new(Arc::clone(&platform) as _, redis).with_cache(cache as _);
        (t, platform)
    }

    #[tokio::test]
    async fn cache_backup_copies_the_snapshot_and_a_dry_run_changes_nothing() {
        let cache = Arc::new(FakeCache::default());
        let (t, _) = redis_targets(1, Arc::clone(&cache));
        let dir = tempfile::tempdir().unwrap();
        let planned = cache_backup(&RunContext::builder().build(), &t, dir.path())
            .await
            .unwrap();
        assert_eq!(planned.outcome, RunOutcome::Planned);
        assert!(cache.mutations().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let report = cache_backup(
            &execute(ApprovalPolicy::approve_all("oncall")),
            &t,
            dir.path(),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Recovered, "{report:?}");
        assert_eq!(cache.mutations(), vec!["snapshot"]);
        let rdb: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rdb"))
            .collect();
        assert_eq!(rdb.len(), 1);
        assert_eq!(std::fs::read(&rdb[0]).unwrap(), b"REDIS0011 the dump");
        assert!(crate::artifact::sidecar_path(&rdb[0]).exists());
        assert!(!report.summary.contains("appendonly"));
    }

    #[tokio::test]
    async fn cache_backup_says_when_the_server_loads_its_aof_instead() {
        let mut info = crate::cache::CacheInfo::default();
        info.persistence.aof_enabled = true;
        info.persistence.last_bgsave_ok = true;
        let (t, _) = redis_targets(1, Arc::new(FakeCache::default().with_info(info)));
        let dir = tempfile::tempdir().unwrap();
        let report = cache_backup(
            &execute(ApprovalPolicy::approve_all("oncall")),
            &t,
            dir.path(),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Recovered);
        assert!(
            report.summary.contains("appendonly on"),
            "{}",
            report.summary
        );
    }

    #[tokio::test]
    async fn cache_backup_refuses_several_instances_and_denied_makes_nothing() {
        let cache = Arc::new(FakeCache::default());
        let (t, _) = redis_targets(3, Arc::clone(&cache));
        let dir = tempfile::tempdir().unwrap();
        let err = cache_backup(
            &execute(ApprovalPolicy::approve_all("oncall")),
            &t,
            dir.path(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error().kind(), ErrorKind::Unsupported);
        assert!(cache.mutations().is_empty());

        let (t, _) = redis_targets(1, Arc::clone(&cache));
        let denied = cache_backup(&execute(ApprovalPolicy::DenyAll), &t, dir.path())
            .await
            .unwrap();
        assert_eq!(denied.outcome, RunOutcome::Unresolved);
        assert!(cache.mutations().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn cache_backup_refuses_a_file_that_is_not_an_rdb() {
        let redis: WorkloadRef = "prod/statefulset/redis".parse().unwrap();
        let platform = FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(redis.clone(), 1))
            .with_file(
                &redis.instance("redis-0").unwrap(),
                "/data/dump.rdb",
                b"<html>",
            );
        let t = Targets::new(Arc::new(platform), redis).with_cache(Arc::new(FakeCache::default()));
        let dir = tempfile::tempdir().unwrap();
        let err = cache_backup(
            &execute(ApprovalPolicy::approve_all("oncall")),
            &t,
            dir.path(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error().kind(), ErrorKind::Backend);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
