//! Secret rotation by a new Secret ([`Platform::copy_secret`], [`Platform::repoint_secret`],
//! [`Platform::delete_secret`], read back with [`Platform::secret_users`]) on the fixture's
//! Secret, which ends as it began.

use crate::error::ErrorKind;
use crate::platform::{Platform, SecretCopy};
use crate::refs::{Namespace, ResourceName, WorkloadRef};

use super::PlatformFixture;
use super::suite::{missing_workload, ok, refused, settle};

/// A name no Secret of the namespace has: `old` with a random suffix.
fn fresh(old: &ResourceName, what: &str) -> ResourceName {
    ok(
        "secret name",
        ResourceName::new(&format!("{old}-{what}-{:08x}", fastrand::u32(..))),
    )
}

async fn users(platform: &dyn Platform, ns: &Namespace, name: &ResourceName) -> Vec<WorkloadRef> {
    ok("secret_users", platform.secret_users(ns, name).await)
}

/// Point `w` from `from` to `to`, wait for the rollout, and find `w` among `to`'s users and
/// not among `from`'s.
async fn repoint(
    platform: &dyn Platform,
    fx: &PlatformFixture,
    from: &ResourceName,
    to: &ResourceName,
) {
    let w = &fx.workload;
    let ns = w.namespace();
    let change = ok("repoint_secret", platform.repoint_secret(w, from, to).await);
    assert_eq!(&change.workload, w, "{change:?}");
    assert!(
        change.references >= 1,
        "{w} uses {from}: at least one reference changes: {change:?}"
    );
    settle(platform, fx).await;
    let on_to = users(platform, ns, to).await;
    assert!(
        on_to.contains(w),
        "after repoint_secret {w} uses {to}: {on_to:?}"
    );
    let on_from = users(platform, ns, from).await;
    assert!(
        !on_from.contains(w),
        "after repoint_secret {w} no longer uses {from}: {on_from:?}"
    );
}

/// With `secret_versions` claimed, rotate the workload off the fixture's Secret and back:
///
/// - typed errors: copying a missing Secret and deleting one are `NotFound`, copying onto an
///   existing name is `Conflict`, repointing an unknown workload is `NotFound`;
/// - a copy with a key set holds the old keys and that key, nobody uses it, and deleting it
///   while unused succeeds (a second delete is `NotFound`);
/// - copy to a new name, repoint the workload, wait for the rollout: `secret_users` names
///   the workload for the new Secret and not for the old; deleting the new one while in use
///   is `Conflict`; deleting the old one succeeds and it is gone;
/// - back: copy the new Secret to the old name (proving the refused delete kept it), repoint
///   back, delete the new one; a repoint without references changes nothing.
///
/// The workload ends on a Secret of the fixture's name with the same keys. These calls
/// have no dry run.
///
/// # Panics
/// When the fixture names no Secret the workload uses, or a step does not behave so.
#[allow(clippy::too_many_lines, reason = "one rotation, step by step")]
pub async fn secrets_rotate_and_come_back(platform: &dyn Platform, fx: &PlatformFixture) {
    if !platform.capabilities().secret_versions {
        return;
    }
    let w = &fx.workload;
    let ns = w.namespace();
    let old = fx.secret.clone().unwrap_or_else(|| {
        panic!(
            "{} claims secret_versions: the fixture must name a Secret {w} uses",
            platform.backend()
        )
    });
    let first = users(platform, ns, &old).await;
    assert!(first.contains(w), "the fixture's {w} uses {old}: {first:?}");

    let missing = fresh(&old, "missing");
    let new = fresh(&old, "rotated");
    refused(
        "copy_secret of a missing Secret",
        platform
            .copy_secret(ns, SecretCopy::new(missing.clone(), new.clone()))
            .await,
        ErrorKind::NotFound,
    );
    refused(
        "copy_secret onto an existing Secret",
        platform
            .copy_secret(ns, SecretCopy::new(old.clone(), old.clone()))
            .await,
        ErrorKind::Conflict,
    );
    refused(
        "delete_secret of a missing Secret",
        platform.delete_secret(ns, &missing).await,
        ErrorKind::NotFound,
    );
    refused(
        "repoint_secret of an unknown workload",
        platform
            .repoint_secret(&missing_workload(fx), &old, &new)
            .await,
        ErrorKind::NotFound,
    );

    // A copy with a key set: old keys plus that key; unused, so it can go.
    let spare = fresh(&old, "spare");
    let made = ok(
        "copy_secret with a key set",
        platform
            .copy_secret(
                ns,
                SecretCopy::new(old.clone(), spare.clone()).set("OPSBOOK_CONFORMANCE", "1"),
            )
            .await,
    );
    assert_eq!(made.name, spare);
    assert!(
        made.keys.iter().any(|k| k == "OPSBOOK_CONFORMANCE"),
        "the key set is in the copy: {made:?}"
    );
    assert!(
        users(platform, ns, &spare).await.is_empty(),
        "nobody uses a fresh copy"
    );
    ok(
        "delete_secret unused",
        platform.delete_secret(ns, &spare).await,
    );
    refused(
        "delete_secret of a deleted Secret",
        platform.delete_secret(ns, &spare).await,
        ErrorKind::NotFound,
    );

    // Rotate: copy, repoint, the old one goes; the one in use stays.
    let copy = ok(
        "copy_secret",
        platform
            .copy_secret(ns, SecretCopy::new(old.clone(), new.clone()))
            .await,
    );
    assert!(
        made.keys
            .iter()
            .filter(|k| *k != "OPSBOOK_CONFORMANCE")
            .eq(copy.keys.iter()),
        "a copy holds the old keys: {copy:?} and {made:?}"
    );
    repoint(platform, fx, &old, &new).await;
    refused(
        "delete_secret of a Secret in use",
        platform.delete_secret(ns, &new).await,
        ErrorKind::Conflict,
    );
    ok(
        "delete_secret of the old Secret",
        platform.delete_secret(ns, &old).await,
    );
    refused(
        "delete_secret of the deleted old Secret",
        platform.delete_secret(ns, &old).await,
        ErrorKind::NotFound,
    );

    // Back to the fixture's name.
    ok(
        "copy_secret back (the Secret in use was kept)",
        platform
            .copy_secret(ns, SecretCopy::new(new.clone(), old.clone()))
            .await,
    );
    repoint(platform, fx, &new, &old).await;
    let idle = ok(
        "repoint_secret without references",
        platform.repoint_secret(w, &new, &old).await,
    );
    assert_eq!(idle.references, 0, "{w} no longer uses {new}: {idle:?}");
    ok(
        "delete_secret of the rotated Secret",
        platform.delete_secret(ns, &new).await,
    );
}
