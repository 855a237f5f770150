//! Operations an on-call engineer runs on demand rather than in answer to a symptom: a
//! database backup and a cache purge by pattern. Each is a run like any runbook: journaled,
//! planned in a dry run, approved in execute mode.

use std::path::Path;

use super::Targets;
use super::cache::{purge_outcome, purge_step};
use crate::database::{BackupInfo, BackupOptions};
use crate::error::OpsError;
use crate::refs::{Identifier, KeyPattern};
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
        let Some(verified) = backup_and_verify(&run, t, database, dir).await? else {
            return Ok(if run.mode() == crate::run::Mode::DryRun {
                RunOutcome::Planned
            } else {
                RunOutcome::Unresolved
            });
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
/// `planned_maintenance`: `Some(verified file)` when the backup was made and verified,
/// `None` when it was planned (dry run) or denied (the denial is in the summary).
pub(crate) async fn backup_and_verify(
    run: &Run<'_>,
    t: &Targets,
    database: &Identifier,
    dir: &Path,
) -> Result<Option<BackupInfo>, OpsError> {
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
    let info = match run.act(step, || db.backup(&opts)).await? {
        Acted::Done(info) => info,
        Acted::Planned => return Ok(None),
        Acted::Denied { reason } => {
            run.summary(format!("No backup was made: {reason}."));
            return Ok(None);
        }
    };
    let verified = run
        .read(
            Step::read_only("verify_backup").target(info.path.display()),
            || db.verify_backup(&info.path),
        )
        .await?;
    run.finding(Finding::info(format!(
        "backup {} verified ({} bytes, sha256 {})",
        verified.path.display(),
        verified.bytes,
        verified.sha256
    )));
    Ok(Some(verified))
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
}
