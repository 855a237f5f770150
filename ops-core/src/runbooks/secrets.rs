//! `secret_rotation` on platforms that keep Secrets of their own (Kubernetes): a new Secret
//! beside the old one, every workload that uses the old one pointed at it, rolled out and
//! verified, and only then the old one deleted. On any failure the workloads are pointed back
//! and the new Secret deleted, so nothing is left half-done; the seed's delete-then-create,
//! which breaks every pod that restarts in between, never happens.

use super::Targets;
use super::verify::{verify_healthy, wait_rollout};
use crate::error::OpsError;
use crate::incident::Signals;
use crate::platform::{SecretCopy, next_secret_name};
use crate::refs::{ResourceName, WorkloadRef};
use crate::run::{Acted, Finding, Run, RunOutcome, Step};

use super::SecretRotation;

/// The rotation of `rotation.key` in the Secret `old` by a new Secret.
#[allow(
    clippy::too_many_lines,
    reason = "one procedure: create, repoint, verify, then delete or undo, in order"
)]
pub(super) async fn rotate_by_new_secret(
    run: &Run<'_>,
    t: &Targets,
    rotation: &SecretRotation,
    old: &ResourceName,
) -> Result<RunOutcome, OpsError> {
    let ns = t.workload.namespace();
    let users = run
        .read(
            Step::read_only("secret_users").target(format!("{ns}/secret/{old}")),
            || t.platform.secret_users(ns, old),
        )
        .await?;
    if !users.contains(&t.workload) {
        run.finding(Finding::critical(format!(
            "{} does not use secret {old}: nothing to rotate there",
            t.workload
        )));
        return Ok(RunOutcome::Unresolved);
    }
    let new = next_secret_name(old)?;
    run.finding(Finding::info(format!(
        "secret {old} is used by {}; its new version will be {new}",
        names(&users)
    )));

    // 1. The new Secret, beside the old one.
    let create = Step::disruptive("create_secret")
        .describe(format!(
            "create secret {new} from {old} with a new value for {}",
            rotation.key
        ))
        .target(format!("{ns}/secret/{new}"))
        .change(format!(
            "{ns}/secret/{new}: created, every key of {old}, {} replaced (value not shown)",
            rotation.key
        ));
    let mut copy = SecretCopy::new(old.clone(), new.clone());
    copy.set
        .insert(rotation.key.clone(), rotation.value.clone());
    let repoint_step =
        || {
            Step::disruptive("repoint_workloads")
                .describe(format!(
                    "point every workload using {old} at {new} (a rollout each)"
                ))
                .target(format!("{ns}/secret/{old}"))
                .changes_all(users.iter().map(|w| {
                    format!("{w}: references to {old} now name {new}; instances replaced")
                }))
        };
    let delete_old = || {
        Step::disruptive("delete_old_secret")
            .describe(format!("delete {old} once nothing uses it"))
            .target(format!("{ns}/secret/{old}"))
            .change(format!("{ns}/secret/{old}: deleted"))
    };
    match run.act(create, || t.platform.copy_secret(ns, copy)).await? {
        Acted::Done(made) => run.finding(Finding::info(format!(
            "created {new} with keys {}",
            made.keys.join(", ")
        ))),
        Acted::Planned => {
            // The rest of the plan, so the dry run shows every change in its order.
            let _ = run.act(repoint_step(), || async { Ok(()) }).await?;
            let _ = run.act(delete_old(), || async { Ok(()) }).await?;
            return Ok(RunOutcome::Planned);
        }
        Acted::Denied { .. } => return Ok(RunOutcome::Unresolved),
    }

    // 2. Every user pointed at the new Secret; a failure part-way points back those done.
    let mut repointed: Vec<WorkloadRef> = Vec::new();
    let outcome = run
        .act(repoint_step(), || async {
            for w in &users {
                t.platform.repoint_secret(w, old, &new).await?;
                repointed.push(w.clone());
            }
            Ok::<_, OpsError>(())
        })
        .await;
    let healthy = match outcome {
        Ok(Acted::Done(())) => rolled_out_and_healthy(run, t, &users).await?,
        // A dry run returned at the first step: nothing later is planned.
        Ok(Acted::Planned) => false,
        Ok(Acted::Denied { .. }) => {
            run.finding(Finding::warning(format!(
                "repointing was denied: {new} is removed again, {old} stays in use"
            )));
            false
        }
        Err(e) => {
            run.finding(
                Finding::critical(format!("pointing the workloads at {new} failed"))
                    .with_evidence(e.chain()),
            );
            false
        }
    };
    if !healthy {
        undo(run, t, old, &new, &repointed).await;
        run.observe(Signals::default().with_critical_feature_down(true));
        run.summary(format!(
            "{} was not rotated: the workloads point at {old} again and {new} is deleted; \
             nothing else changed. Check the new value at its issuer before trying again.",
            rotation.key
        ));
        return Ok(RunOutcome::Unresolved);
    }

    // 3. Only now, with every user on the new Secret and healthy, the old one goes.
    match run
        .act(delete_old(), || t.platform.delete_secret(ns, old))
        .await?
    {
        Acted::Done(()) => {
            run.summary(format!(
                "{} rotated: {} use {new}, {old} is deleted; revoke the old value at its issuer now.",
                rotation.key,
                names(&users)
            ));
        }
        // A dry run returned at the first step.
        Acted::Planned => {}
        Acted::Denied { .. } => {
            run.finding(Finding::warning(format!(
                "{old} was kept (deleting it was denied); nothing uses it any more"
            )));
            run.summary(format!(
                "{} rotated: {} use {new}; {old} is kept, unused. Delete it and revoke the old value when ready.",
                rotation.key,
                names(&users)
            ));
        }
    }
    Ok(RunOutcome::Recovered)
}

fn names(users: &[WorkloadRef]) -> String {
    users
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every user rolled out, then the service probed healthy.
async fn rolled_out_and_healthy(
    run: &Run<'_>,
    t: &Targets,
    users: &[WorkloadRef],
) -> Result<bool, OpsError> {
    for w in users {
        let tw = Targets {
            workload: w.clone(),
            ..t.clone()
        };
        if !wait_rollout(run, &tw, "wait_rolled_out").await? {
            return Ok(false);
        }
    }
    verify_healthy(run, t, "verify_health").await
}

/// Point `repointed` back at `old` and delete `new`: undo steps of this run, never asked
/// again; a failure of either is a critical finding naming the state left.
async fn undo(
    run: &Run<'_>,
    t: &Targets,
    old: &ResourceName,
    new: &ResourceName,
    repointed: &[WorkloadRef],
) {
    let ns = t.workload.namespace();
    // A workload whose repoint failed may have changed anyway (a lost answer): point back
    // every user; one without references to the new Secret is left as it is.
    let users = match t.platform.secret_users(ns, new).await {
        Ok(users) => users,
        Err(_) => repointed.to_vec(),
    };
    let back = Step::disruptive("repoint_workloads_back")
        .undoing("repoint_workloads")
        .describe(format!("point the workloads back at {old}"))
        .target(format!("{ns}/secret/{new}"))
        .changes_all(
            users
                .iter()
                .map(|w| format!("{w}: references to {new} name {old} again")),
        );
    let result = if users.is_empty() {
        Ok(Acted::Done(()))
    } else {
        run.act(back, || async {
            for w in &users {
                t.platform.repoint_secret(w, new, old).await?;
            }
            Ok::<_, OpsError>(())
        })
        .await
    };
    if let Err(e) = result {
        run.finding(
            Finding::critical(format!(
                "pointing the workloads back at {old} failed: {new} is kept, still in use"
            ))
            .with_evidence(e.chain()),
        );
        return;
    }
    for w in &users {
        let tw = Targets {
            workload: w.clone(),
            ..t.clone()
        };
        // Best effort: the old Secret is intact, the rollout back is the platform's.
        let _ = wait_rollout(run, &tw, "wait_rolled_back").await;
    }
    let delete_new = Step::disruptive("delete_new_secret")
        .undoing("create_secret")
        .describe(format!("delete {new}, which nothing uses again"))
        .target(format!("{ns}/secret/{new}"))
        .change(format!("{ns}/secret/{new}: deleted"));
    if let Err(e) = run
        .act(delete_new, || t.platform.delete_secret(ns, new))
        .await
    {
        run.finding(
            Finding::critical(format!("{new} could not be deleted: delete it by hand"))
                .with_evidence(e.chain()),
        );
    }
}
