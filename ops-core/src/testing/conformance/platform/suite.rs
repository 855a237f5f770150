//! The whole [`Platform`] suite against one running workload: [`run_all`].
//!
//! Every trait method is called. Reads must find what the [`PlatformFixture`] guarantees
//! (never "all of nothing"); every write the backend's [`Platform::capabilities`] claims is
//! made and its effect read back; every capability the backend says it lacks is called and
//! must be refused with [`ErrorKind::Unsupported`]; unknown workloads and instances are
//! [`ErrorKind::NotFound`], bad input [`ErrorKind::InvalidInput`] and stale expectations
//! [`ErrorKind::Conflict`].

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt as _;

use crate::error::{ErrorKind, OpsError};
use crate::platform::{
    AutoscalerSpec, ConfigTarget, ConfigUpdate, ContainerSelector, DeleteOptions, EventOptions,
    ExecCommand, ExportOptions, ImageRef, ImageUpdate, InspectOptions, LockdownId, LockdownOptions,
    LockdownScope, LogFilter, LogOptions, MemoryQuantity, Platform, PlatformExt as _,
    ResourceUpdate, RestartOptions, RollbackOptions, RolloutOptions, ScaleChange, ScaleOptions,
    SecretCopy, StopOptions, WorkloadStatus,
};
use crate::refs::{InstanceRef, ResourceName, WorkloadRef};
use crate::testing::conformance::{lockdown, resources};

/// What the test arranged before calling [`run_all`]: a running, rolled-out workload whose
/// every instance has logged a line containing `log_line`.
///
/// What a claimed capability needs besides: `set_image` a second image; `resources` a
/// container of the workload with a CPU or memory request or limit set (the suite doubles
/// them and puts them back); `autoscaling` a second workload with replicas and no autoscaler
/// (the trait has no call to remove one, so it ends with the one the check made);
/// `secret_versions` a Secret the workload uses (rotated away and back).
///
/// # Examples
/// ```
/// use ops_core::testing::conformance::platform::PlatformFixture;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let fx = PlatformFixture::new(api, "listening on :8080")
///     .with_other_image("shop/api:2".parse()?)
///     .with_secret("api-creds".parse()?)
///     .with_autoscaled("prod/deployment/worker".parse()?)
///     .with_scratch_dir("/tmp");
/// assert_eq!(fx.scratch_dir, "/tmp");
/// assert_eq!(fx.secret.as_ref().map(|s| s.as_str()), Some("api-creds"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlatformFixture {
    /// The running workload (at least one instance).
    pub workload: WorkloadRef,
    /// Text that every instance of the workload has logged (and keeps in its recent logs).
    pub log_line: String,
    /// A second image the workload runs as well (for [`Platform::set_image`] and
    /// [`Platform::rollback`]); required when the backend claims `set_image`.
    pub other_image: Option<ImageRef>,
    /// An absolute directory writable in every instance (for the copy checks).
    pub scratch_dir: String,
    /// How long a rollout may take.
    pub deadline: Duration,
    /// A Secret the workload uses (env, `envFrom` or a volume); required when the backend
    /// claims `secret_versions`. The suite rotates the workload to a copy and back: it ends
    /// on a Secret of this name with the same keys.
    pub secret: Option<ResourceName>,
    /// A second workload with replicas and no autoscaler, in the same namespace; required
    /// when the backend claims `autoscaling`. It ends with an autoscaler of 3..10 replicas.
    pub autoscaled: Option<WorkloadRef>,
}

impl PlatformFixture {
    /// `workload`, whose instances all logged `log_line`; scratch directory `/tmp`, rollouts
    /// within 60 s, no second image.
    pub fn new(workload: WorkloadRef, log_line: impl Into<String>) -> Self {
        Self {
            workload,
            log_line: log_line.into(),
            other_image: None,
            scratch_dir: "/tmp".to_owned(),
            deadline: Duration::from_secs(60),
            secret: None,
            autoscaled: None,
        }
    }

    /// The second image for the release checks.
    #[must_use]
    pub fn with_other_image(mut self, image: ImageRef) -> Self {
        self.other_image = Some(image);
        self
    }

    /// The writable directory for the copy checks.
    #[must_use]
    pub fn with_scratch_dir(mut self, dir: impl Into<String>) -> Self {
        self.scratch_dir = dir.into();
        self
    }

    /// The Secret the workload uses, for the rotation check.
    #[must_use]
    pub fn with_secret(mut self, secret: ResourceName) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The second workload, for the autoscaler check.
    #[must_use]
    pub fn with_autoscaled(mut self, workload: WorkloadRef) -> Self {
        self.autoscaled = Some(workload);
        self
    }

    /// How long a rollout may take.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    fn marker(&self) -> LogFilter {
        LogFilter::new(&regex::escape(&self.log_line)).unwrap_or_else(|e| panic!("{}", e.chain()))
    }
}

/// The value, or a panic naming the call and the error chain.
pub(super) fn ok<T>(call: &str, r: Result<T, OpsError>) -> T {
    r.unwrap_or_else(|e| panic!("{call} failed: {}", e.chain()))
}

/// Assert `r` failed with `kind`.
#[track_caller]
pub(super) fn refused<T: Debug>(call: &str, r: Result<T, OpsError>, kind: ErrorKind) {
    match r {
        Ok(v) => panic!("{call}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{call}: expected {kind:?}: {}", e.chain()),
    }
}

/// Whether the platform keeps history for `workload`: `revisions` answers (with the current
/// revision first when it lists any), or is `Unsupported` for this workload only, which
/// [`crate::platform::PlatformCapabilities::rollback`] allows (Compose knows a previous image
/// only after a release). Any other error fails.
async fn history_known(platform: &dyn Platform, workload: &WorkloadRef) -> bool {
    match platform.revisions(workload).await {
        Ok(revisions) => {
            assert!(
                revisions.iter().filter(|r| r.current).count() <= 1,
                "at most one current revision: {revisions:?}"
            );
            true
        }
        Err(e) if e.kind() == ErrorKind::Unsupported => false,
        Err(e) => panic!("revisions failed: {}", e.chain()),
    }
}

pub(super) async fn status(platform: &dyn Platform, workload: &WorkloadRef) -> WorkloadStatus {
    ok("workload", platform.workload(workload).await)
}

/// Wait for the rollout, then until every wanted instance is listed, ready and healthy.
pub(super) async fn settle(platform: &dyn Platform, fx: &PlatformFixture) -> WorkloadStatus {
    let opts = RolloutOptions::default()
        .with_timeout(fx.deadline)
        .with_poll_interval(Duration::from_millis(200));
    ok(
        "wait_rolled_out",
        platform.wait_rolled_out(&fx.workload, opts).await,
    );
    let until = tokio::time::Instant::now() + fx.deadline;
    loop {
        let s = status(platform, &fx.workload).await;
        if s.is_healthy() && s.instances.len() == s.desired as usize {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{} not healthy with {} instances after {:?}: {s:?}",
            fx.workload,
            s.desired,
            fx.deadline
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn first_instance(fx: &PlatformFixture, s: &WorkloadStatus) -> InstanceRef {
    let name = s
        .instances
        .first()
        .unwrap_or_else(|| panic!("{} has an instance: {s:?}", fx.workload));
    ok("instance", fx.workload.instance(name.name.as_str()))
}

pub(super) fn missing_workload(fx: &PlatformFixture) -> WorkloadRef {
    ok(
        "missing workload",
        WorkloadRef::new(
            fx.workload.namespace().as_str(),
            fx.workload.kind(),
            "opsbook-no-such-workload",
        ),
    )
}

/// Reads find what the fixture guarantees: the workload listed with instances and rolled
/// out; lines with the fixture's text from every instance, in time order, also with `since`,
/// with one instance chosen and through a followed stream; `tail 1` gives one line per
/// instance at most and not none; and every read the capabilities claim answers (usage for
/// every instance, resources, revisions, autoscaler, lockdowns, a non-empty export,
/// inspection, secret users).
///
/// # Panics
/// When a read fails or comes back empty where the fixture guarantees something.
#[allow(clippy::too_many_lines, reason = "one check per method, in turn")]
pub async fn reads_find_the_fixture(platform: &dyn Platform, fx: &PlatformFixture) {
    let w = &fx.workload;
    let caps = platform.capabilities();
    let listed = ok(
        "list_workloads",
        platform.list_workloads(w.namespace()).await,
    );
    assert!(listed.contains(w), "{w} is listed: {listed:?}");
    let s = status(platform, w).await;
    assert_eq!(&s.workload, w);
    assert!(!s.instances.is_empty(), "{w} has instances: {s:?}");
    let rollout = ok("rollout_status", platform.rollout_status(w).await);
    assert!(rollout.done, "the fixture is rolled out: {rollout:?}");

    let marker = fx.marker();
    let lines = ok(
        "logs",
        platform
            .logs(
                w,
                LogOptions::default()
                    .with_filter(marker.clone())
                    .with_tail(1000),
            )
            .await,
    );
    assert!(
        !lines.is_empty(),
        "every instance logged {:?}, none came back",
        fx.log_line
    );
    assert!(lines.iter().all(|l| marker.is_match(&l.text)));
    let from: BTreeSet<&str> = lines.iter().map(|l| l.instance.as_str()).collect();
    for i in &s.instances {
        assert!(
            from.contains(i.name.as_str()),
            "{} logged {:?} but no such line came back: {lines:?}",
            i.name,
            fx.log_line
        );
    }
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.timestamp);
    assert_eq!(sorted, lines, "lines are merged in time order");

    let tailed = ok(
        "logs tail 1",
        platform.logs(w, LogOptions::default().with_tail(1)).await,
    );
    assert!(!tailed.is_empty(), "tail 1 of logging instances is a line");
    let per: BTreeSet<&str> = tailed.iter().map(|l| l.instance.as_str()).collect();
    assert_eq!(per.len(), tailed.len(), "tail 1 is one line per instance");
    assert!(tailed.len() <= s.instances.len());

    let recent = ok(
        "logs since",
        platform
            .logs(
                w,
                LogOptions::default()
                    .with_since(Duration::from_secs(6 * 3600))
                    .with_filter(marker.clone()),
            )
            .await,
    );
    assert!(!recent.is_empty(), "the fixture's lines are recent");

    let one = &s.instances[0].name;
    let theirs = ok(
        "logs of one instance",
        platform
            .logs(
                w,
                LogOptions::default()
                    .with_instance(one.clone())
                    .with_filter(marker.clone()),
            )
            .await,
    );
    assert!(!theirs.is_empty(), "{one} logged the fixture's line");
    assert!(
        theirs.iter().all(|l| &l.instance == one),
        "only {one}'s lines: {theirs:?}"
    );

    if caps.follow_logs {
        let mut stream = ok(
            "follow_logs",
            platform
                .follow_logs(
                    w,
                    LogOptions::default()
                        .with_tail(1000)
                        .with_filter(marker.clone()),
                )
                .await,
        );
        let first = tokio::time::timeout(fx.deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("a followed stream gives the fixture's lines"));
        let line = ok(
            "follow_logs line",
            first.unwrap_or_else(|| panic!("the followed stream ended without a line")),
        );
        assert!(marker.is_match(&line.text), "{line:?}");
    }
    if caps.resource_usage {
        let usage = ok("resource_usage", platform.resource_usage(w).await);
        for i in &s.instances {
            assert!(
                usage.iter().any(|u| u.instance == i.name),
                "usage of {}: {usage:?}",
                i.name
            );
        }
    }
    if caps.resources {
        let r = ok("resources", platform.resources(w).await);
        assert!(!r.is_empty(), "a workload has a container: {r:?}");
    }
    if caps.rollback {
        history_known(platform, w).await;
    }
    if caps.autoscaling {
        ok("autoscaler", platform.autoscaler(w).await);
    }
    if caps.lockdown {
        ok("lockdowns", platform.lockdowns(w.namespace()).await);
    }
    if caps.export {
        let e = ok(
            "export",
            platform
                .export(w.namespace(), ExportOptions::default())
                .await,
        );
        assert!(
            !e.objects.is_empty(),
            "the namespace of a running workload exports something"
        );
    }
    if caps.inspect {
        ok(
            "inspect",
            platform
                .inspect(w.namespace(), InspectOptions::default())
                .await,
        );
    }
    if caps.secret_versions {
        let name = ok("secret name", ResourceName::new("opsbook-no-such-secret"));
        let users = ok(
            "secret_users",
            platform.secret_users(w.namespace(), &name).await,
        );
        assert!(users.is_empty(), "nobody uses a secret that does not exist");
    }
}

/// Unknown workloads and instances are `NotFound` for every call that names one; a relative
/// archive path is `InvalidInput`; a scale whose expectation is stale is `Conflict` and
/// changes nothing; a revision that does not exist is `NotFound`.
///
/// # Panics
/// When a call answers otherwise.
#[allow(clippy::too_many_lines, reason = "one check per method, in turn")]
pub async fn errors_are_typed(platform: &dyn Platform, fx: &PlatformFixture) {
    let caps = platform.capabilities();
    let w = &fx.workload;
    let missing = missing_workload(fx);
    refused(
        "workload",
        platform.workload(&missing).await,
        ErrorKind::NotFound,
    );
    refused(
        "rollout_status",
        platform.rollout_status(&missing).await,
        ErrorKind::NotFound,
    );
    refused(
        "logs",
        platform.logs(&missing, LogOptions::default()).await,
        ErrorKind::NotFound,
    );
    if caps.rollout_restart {
        refused(
            "rollout_restart",
            platform
                .rollout_restart(&missing, RestartOptions::default())
                .await,
            ErrorKind::NotFound,
        );
    }
    if caps.scale {
        refused(
            "scale",
            platform.scale(&missing, 1, ScaleOptions::default()).await,
            ErrorKind::NotFound,
        );
        let before = status(platform, w).await;
        refused(
            "scale with a stale expectation",
            platform
                .scale(
                    w,
                    before.desired + 1,
                    ScaleOptions::default().expecting(before.desired + 7),
                )
                .await,
            ErrorKind::Conflict,
        );
        assert_eq!(
            status(platform, w).await.desired,
            before.desired,
            "a refused scale changes nothing"
        );
    }
    let s = status(platform, w).await;
    let ghost = ok("instance", w.instance("opsbook-no-such-instance"));
    refused(
        "logs of an unknown instance",
        platform
            .logs(w, LogOptions::default().with_instance(ghost.name().clone()))
            .await,
        ErrorKind::NotFound,
    );
    if caps.delete_instance {
        refused(
            "delete_instance",
            platform
                .delete_instance(&ghost, DeleteOptions::default())
                .await,
            ErrorKind::NotFound,
        );
    }
    if caps.exec {
        let echo = ok("exec command", ExecCommand::new(["echo", "x"]));
        refused(
            "exec",
            platform.exec(&ghost, &echo).await,
            ErrorKind::NotFound,
        );
    }
    if caps.copy {
        let inst = first_instance(fx, &s);
        let nothing = format!("{}/opsbook-no-such-file", fx.scratch_dir);
        refused(
            "copy_from a missing file",
            platform.copy_from(&inst, &nothing).await,
            ErrorKind::NotFound,
        );
        refused(
            "copy_from an unknown instance",
            platform.copy_from(&ghost, &nothing).await,
            ErrorKind::NotFound,
        );
        refused(
            "archive_from a relative path",
            platform.archive_from(&inst, "tmp").await,
            ErrorKind::InvalidInput,
        );
    }
    if caps.rollback {
        let r = platform
            .rollback(w, RollbackOptions::default().to_revision(999_999))
            .await;
        // Without history for this workload (Compose before any release) rollback is
        // refused as a whole, as `revisions` is.
        let kind = if history_known(platform, w).await {
            ErrorKind::NotFound
        } else {
            ErrorKind::Unsupported
        };
        refused("rollback to no such revision", r, kind);
        assert_eq!(
            status(platform, w).await.images,
            s.images,
            "a refused rollback changes nothing"
        );
    }
    if caps.set_image {
        let image = ok("image", "opsbook/conformance:none".parse::<ImageRef>());
        let update = ok(
            "image update",
            ImageUpdate::new(image).in_container("opsbook-no-such-container"),
        );
        refused(
            "set_image of an unknown container",
            platform.set_image(w, update).await,
            ErrorKind::NotFound,
        );
    }
}

/// Every capability the backend says it lacks is refused with `Unsupported` when called
/// (dry runs included), so `capabilities()` and behaviour agree both ways: the other half is
/// that the claimed ones work ([`reads_find_the_fixture`], [`writes_take_effect`]).
///
/// # Panics
/// When a call the backend disclaims does not fail with `Unsupported`.
#[allow(clippy::too_many_lines, reason = "one check per method, in turn")]
pub async fn lacking_capabilities_are_unsupported(platform: &dyn Platform, fx: &PlatformFixture) {
    let caps = platform.capabilities();
    let w = &fx.workload;
    let ns = w.namespace();
    let s = status(platform, w).await;
    let inst = first_instance(fx, &s);
    let u = ErrorKind::Unsupported;
    if !caps.dry_run {
        let r = platform
            .rollout_restart(w, RestartOptions::default().with_dry_run(true))
            .await;
        refused("dry-run restart", r, u);
        let r = platform
            .scale(
                w,
                s.desired,
                ScaleOptions {
                    dry_run: true,
                    ..ScaleOptions::default()
                },
            )
            .await;
        refused("dry-run scale", r, u);
    }
    if !caps.rollout_restart {
        let r = platform.rollout_restart(w, RestartOptions::default()).await;
        refused("rollout_restart", r, u);
    }
    if !caps.scale {
        let r = platform.scale(w, s.desired, ScaleOptions::default()).await;
        refused("scale", r, u);
    }
    if !caps.stop_start {
        refused("stop", platform.stop(w, StopOptions::default()).await, u);
        refused("start", platform.start(w, StopOptions::default()).await, u);
    }
    if !caps.rollback {
        refused("revisions", platform.revisions(w).await, u);
        let r = platform.rollback(w, RollbackOptions::default()).await;
        refused("rollback", r, u);
    }
    if !caps.delete_instance {
        let r = platform
            .delete_instance(&inst, DeleteOptions::default())
            .await;
        refused("delete_instance", r, u);
    }
    if !caps.follow_logs {
        let r = platform
            .follow_logs(w, LogOptions::default())
            .await
            .map(|_| "a stream");
        refused("follow_logs", r, u);
    }
    if !caps.events {
        let r = platform.events(w, EventOptions::default()).await;
        refused("events", r, u);
    }
    if !caps.exec {
        let echo = ok("exec command", ExecCommand::new(["echo", "x"]));
        refused("exec", platform.exec(&inst, &echo).await, u);
    }
    if !caps.copy {
        let path = format!("{}/opsbook-conformance", fx.scratch_dir);
        refused("copy_from", platform.copy_from(&inst, &path).await, u);
        let r = platform.copy_to(&inst, &path, b"x".to_vec()).await;
        refused("copy_to", r, u);
        let r = platform.archive_from(&inst, &fx.scratch_dir).await;
        refused("archive_from", r, u);
    }
    if !caps.resource_usage {
        refused("resource_usage", platform.resource_usage(w).await, u);
    }
    if !caps.update_config {
        let update = ConfigUpdate::new(ConfigTarget::Env).set("OPSBOOK_CONFORMANCE", "1");
        let r = platform.update_config(w, update).await;
        refused("update_config", r, u);
    }
    if !caps.resources {
        refused("resources", platform.resources(w).await, u);
        let update = ResourceUpdate::new(ContainerSelector::All)
            .limit_memory(MemoryQuantity::from_bytes(512 << 20));
        refused("set_resources", platform.set_resources(w, update).await, u);
    } else if !caps.dry_run {
        let update = ResourceUpdate::new(ContainerSelector::All)
            .limit_memory(MemoryQuantity::from_bytes(512 << 20))
            .with_dry_run(true);
        refused(
            "dry-run set_resources",
            platform.set_resources(w, update).await,
            u,
        );
    }
    if !caps.autoscaling {
        refused("autoscaler", platform.autoscaler(w).await, u);
        let spec = ok("autoscaler spec", AutoscalerSpec::new(1, 2));
        refused("set_autoscaler", platform.set_autoscaler(w, spec).await, u);
    }
    if !caps.set_image {
        let image = ok("image", "opsbook/conformance:none".parse::<ImageRef>());
        let r = platform.set_image(w, ImageUpdate::new(image)).await;
        refused("set_image", r, u);
    }
    if !caps.lockdown {
        refused("lockdowns", platform.lockdowns(ns).await, u);
        let scope = ok("lockdown scope", LockdownScope::workloads(vec![w.clone()]));
        let r = platform.lockdown(&scope, LockdownOptions::default()).await;
        refused("lockdown", r, u);
        let id = LockdownId::generate(jiff::Timestamp::now());
        refused("lift_lockdown", platform.lift_lockdown(ns, &id).await, u);
    }
    if !caps.export {
        let r = platform.export(ns, ExportOptions::default()).await;
        refused("export", r, u);
    }
    if !caps.inspect {
        let r = platform.inspect(ns, InspectOptions::default()).await;
        refused("inspect", r, u);
    }
    if !caps.secret_versions {
        let name = ok("secret name", ResourceName::new("opsbook-conformance"));
        let to = ok("secret name", ResourceName::new("opsbook-conformance-v2"));
        refused("secret_users", platform.secret_users(ns, &name).await, u);
        let copy = SecretCopy::new(name.clone(), to.clone());
        refused("copy_secret", platform.copy_secret(ns, copy).await, u);
        let r = platform.repoint_secret(w, &name, &to).await;
        refused("repoint_secret", r, u);
        refused("delete_secret", platform.delete_secret(ns, &name).await, u);
    }
    assert_eq!(
        status(platform, w).await.desired,
        s.desired,
        "refused calls change nothing"
    );
}

/// `echo` runs in an instance; bytes written with `copy_to` come back from `copy_from` and
/// inside `archive_from` of their directory (when the capabilities claim exec and copy).
///
/// # Panics
/// When output or bytes differ.
pub async fn exec_and_copy_round_trip(platform: &dyn Platform, fx: &PlatformFixture) {
    let caps = platform.capabilities();
    let s = status(platform, &fx.workload).await;
    let inst = first_instance(fx, &s);
    if caps.exec {
        let echo = ok(
            "exec command",
            ExecCommand::new(["echo", "opsbook-conformance"]),
        );
        let out = ok("exec", platform.exec(&inst, &echo).await);
        assert_eq!(out.exit_code, Some(0), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "opsbook-conformance\n",
            "echo's output comes back"
        );
    }
    if caps.copy {
        let file = format!("opsbook-conformance-{}.bin", fastrand::u32(..));
        let path = format!("{}/{file}", fx.scratch_dir.trim_end_matches('/'));
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        ok(
            "copy_to",
            platform.copy_to(&inst, &path, data.clone()).await,
        );
        assert_eq!(
            ok("copy_from", platform.copy_from(&inst, &path).await),
            data,
            "copy_from gives back what copy_to wrote"
        );
        streamed_copy_matches_copy_from(platform, fx, &inst, &path).await;
        let tar = ok(
            "archive_from",
            platform.archive_from(&inst, &fx.scratch_dir).await,
        );
        let base = fx
            .scratch_dir
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let wanted = format!("{base}/{file}");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut found = None;
        for entry in ok(
            "archive entries",
            archive.entries().map_err(|e| {
                OpsError::new(ErrorKind::Backend, "conformance", "archive", e.to_string())
            }),
        ) {
            let mut entry = ok(
                "archive entry",
                entry.map_err(|e| {
                    OpsError::new(ErrorKind::Backend, "conformance", "archive", e.to_string())
                }),
            );
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == wanted {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap_or_default();
                found = Some(bytes);
            }
        }
        assert_eq!(
            found,
            Some(data),
            "{wanted} is in the archive of its directory"
        );
    }
}

/// Each write the capabilities claim takes effect and is read back: scale up and back (with
/// the change reported), a rolling restart, a deleted instance replaced, stop then start,
/// a new image then a rollback to the old one, a configuration change (said to need
/// persisting exactly when `durable_config` is false), and dry runs that change nothing.
///
/// # Panics
/// When an effect is not seen.
#[allow(clippy::too_many_lines, reason = "one check per method, in turn")]
pub async fn writes_take_effect(platform: &dyn Platform, fx: &PlatformFixture) {
    let caps = platform.capabilities();
    let w = &fx.workload;
    let start = settle(platform, fx).await;
    let n = start.desired;
    if caps.dry_run {
        ok(
            "dry-run scale",
            platform
                .scale(
                    w,
                    n + 1,
                    ScaleOptions {
                        dry_run: true,
                        ..ScaleOptions::default()
                    },
                )
                .await,
        );
        assert_eq!(
            status(platform, w).await.desired,
            n,
            "a dry run scales nothing"
        );
    }
    if caps.scale {
        let change = ok(
            "scale up",
            platform
                .scale(w, n + 1, ScaleOptions::default().expecting(n))
                .await,
        );
        assert_eq!(change, ScaleChange::new(n, n + 1));
        let up = settle(platform, fx).await;
        assert_eq!(
            (up.desired, up.instances.len()),
            (n + 1, n as usize + 1),
            "scaled up: {up:?}"
        );
        let change = ok(
            "scale down",
            platform.scale(w, n, ScaleOptions::default()).await,
        );
        assert_eq!(change, ScaleChange::new(n + 1, n));
        let down = settle(platform, fx).await;
        assert_eq!(down.instances.len(), n as usize, "scaled back: {down:?}");
    }
    if caps.rollout_restart {
        restart_then_ready(platform, fx).await;
    }
    if caps.delete_instance {
        let before = settle(platform, fx).await;
        // The last instance: Compose numbers containers and sees a gap below the highest
        // number as a missing container, but not the highest one's removal.
        let victim = before
            .instances
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("{w} has an instance: {before:?}"));
        let inst = ok("instance", w.instance(victim.name.as_str()));
        ok(
            "delete_instance",
            platform
                .delete_instance(&inst, DeleteOptions::default())
                .await,
        );
        // A deleted instance may linger while it terminates (graceful deletion): wait,
        // within the fixture's deadline, until it is gone or a fresh one stands in its place.
        let started = std::time::Instant::now();
        loop {
            let after = status(platform, w).await;
            let same = after
                .instances
                .iter()
                .find(|i| i.name == victim.name)
                .cloned();
            if same
                .as_ref()
                .is_none_or(|i| i.started_at != victim.started_at || !i.ready)
            {
                break;
            }
            assert!(
                started.elapsed() < fx.deadline,
                "{} was deleted: it is gone or a fresh instance, not {same:?}",
                victim.name
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let replaced = settle(platform, fx).await;
        if replaced.instances.len() < n as usize {
            // No controller replaces it (Compose): scale back up to where the fixture was.
            assert!(
                caps.scale,
                "without a controller nor scale the fixture shrinks"
            );
            ok(
                "scale back",
                platform.scale(w, n, ScaleOptions::default()).await,
            );
            settle(platform, fx).await;
        }
    }
    if caps.stop_start {
        ok(
            "stop",
            platform
                .stop(
                    w,
                    StopOptions::default().with_timeout(Duration::from_secs(5)),
                )
                .await,
        );
        // Kubernetes stops asynchronously (scaled to zero, pods then go): wait for it.
        let until = tokio::time::Instant::now() + fx.deadline;
        loop {
            let s = status(platform, w).await;
            if s.ready == 0 && s.instances.iter().all(|i| !i.ready) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "stopped: no instance may serve {:?} after stop: {s:?}",
                fx.deadline
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ok("start", platform.start(w, StopOptions::default()).await);
        let started = settle(platform, fx).await;
        assert_eq!(started.desired, n, "start brings back {n}");
    }
    if caps.set_image {
        release_then_rollback(platform, fx).await;
    }
    if caps.update_config {
        let update = ConfigUpdate::new(ConfigTarget::Env).set("OPSBOOK_CONFORMANCE", "1");
        let change = ok("update_config", platform.update_config(w, update).await);
        assert_eq!(change.keys_set, ["OPSBOOK_CONFORMANCE"]);
        assert!(change.rolled_out, "rolled out by default");
        assert_eq!(
            change.persist_in.is_some(),
            !caps.durable_config,
            "a change must be persisted elsewhere exactly when config is not durable: {change:?}"
        );
        settle(platform, fx).await;
        if caps.exec {
            let s = status(platform, w).await;
            let printenv = ok(
                "exec command",
                ExecCommand::new(["printenv", "OPSBOOK_CONFORMANCE"]),
            );
            let out = ok(
                "exec printenv",
                platform.exec(&first_instance(fx, &s), &printenv).await,
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "1\n",
                "the new value is what instances see"
            );
        }
    }
    if caps.events {
        let events = ok("events", platform.events(w, EventOptions::default()).await);
        assert!(
            !events.is_empty(),
            "after scaling, restarting and stopping there are events about {w}"
        );
    }
}

/// A rolling restart is accepted, the workload is rolled out and healthy within the fixture's
/// deadline, and every instance is a new one: a new name, or the same name started later
/// (so a restart that only says yes fails).
async fn restart_then_ready(platform: &dyn Platform, fx: &PlatformFixture) {
    let before = settle(platform, fx).await;
    ok(
        "rollout_restart",
        platform
            .rollout_restart(&fx.workload, RestartOptions::default())
            .await,
    );
    let after = settle(platform, fx).await;
    assert!(after.is_healthy(), "healthy after the restart: {after:?}");
    for instance in &after.instances {
        let old = before.instances.iter().find(|b| b.name == instance.name);
        let renewed = old.is_none_or(|b| match (b.started_at, instance.started_at) {
            (Some(then), Some(now)) => now > then,
            (None, Some(_)) => true,
            _ => false,
        });
        assert!(
            renewed,
            "instance {} was not restarted: started {:?} before and after",
            instance.name, instance.started_at
        );
    }
}

/// `set_image` with the fixture's second image rolls out and is read back; with rollback
/// claimed, there is then a revision to go back to and `rollback` restores the first image.
async fn release_then_rollback(platform: &dyn Platform, fx: &PlatformFixture) {
    let caps = platform.capabilities();
    let w = &fx.workload;
    let other = fx.other_image.clone().unwrap_or_else(|| {
        panic!(
            "{} claims set_image: the fixture must name a second image",
            platform.backend()
        )
    });
    let before = settle(platform, fx).await;
    let update = ok(
        "image update",
        ImageUpdate::new(other.clone()).with_change_cause("opsbook conformance"),
    );
    let change = ok("set_image", platform.set_image(w, update).await);
    assert!(!change.container.is_empty(), "{change:?}");
    let after = settle(platform, fx).await;
    assert!(
        after.images.iter().any(|i| i.ends_with(&other.to_string())),
        "runs {other}: {after:?}"
    );
    assert_ne!(after.images, before.images);
    if caps.rollback {
        let revisions = ok("revisions", platform.revisions(w).await);
        assert!(
            revisions.iter().any(|r| !r.current),
            "after set_image there is a revision to go back to: {revisions:?}"
        );
        ok(
            "rollback",
            platform.rollback(w, RollbackOptions::default()).await,
        );
        let back = settle(platform, fx).await;
        assert_eq!(back.images, before.images, "rolled back to the first image");
    }
}

/// A dry-run lockdown of `w` changes nothing when dry runs are claimed, and is refused as
/// `Unsupported` when they are not.
async fn dry_run_lockdown(platform: &dyn Platform, w: &WorkloadRef, dry_run: bool) {
    let ns = w.namespace();
    let scope = ok("lockdown scope", LockdownScope::workloads(vec![w.clone()]));
    let before = ok("lockdowns", platform.lockdowns(ns).await);
    let opts = LockdownOptions {
        dry_run: true,
        ..LockdownOptions::default()
    };
    let r = platform.lockdown(&scope, opts).await;
    if dry_run {
        ok("dry-run lockdown", r);
        assert_eq!(
            ok("lockdowns", platform.lockdowns(ns).await),
            before,
            "a dry-run lockdown changes nothing"
        );
    } else {
        refused("dry-run lockdown", r, ErrorKind::Unsupported);
    }
}

/// The claimed writes with checks of their own, each undone: resources doubled and put back
/// ([`resources::resources_changed_and_restored`], with a dry run first when claimed), a
/// lockdown made, listed and lifted ([`lockdown::isolate_list_lift`], after a dry run that
/// changes nothing or is `Unsupported`), the fixture's Secret rotated away and back
/// ([`super::secrets_rotate_and_come_back`]); and an autoscaler created and raised on the
/// fixture's second workload ([`resources::autoscaler_create_then_raise_min`]), which keeps
/// it.
///
/// # Panics
/// When a check fails, or the fixture lacks what a claimed capability needs.
pub async fn guarded_writes_are_undone(platform: &dyn Platform, fx: &PlatformFixture) {
    let caps = platform.capabilities();
    let w = &fx.workload;
    if caps.resources {
        resources::resources_changed_and_restored(platform, w, caps.dry_run).await;
        settle(platform, fx).await;
    }
    if caps.lockdown {
        dry_run_lockdown(platform, w, caps.dry_run).await;
        let id = LockdownId::generate(jiff::Timestamp::now());
        lockdown::isolate_list_lift(platform, w, &id).await;
        settle(platform, fx).await;
    }
    super::secrets_rotate_and_come_back(platform, fx).await;
    if caps.autoscaling {
        let other = fx.autoscaled.as_ref().unwrap_or_else(|| {
            panic!(
                "{} claims autoscaling: the fixture must name a second workload",
                platform.backend()
            )
        });
        resources::autoscaler_create_then_raise_min(platform, other).await;
        let hpa = ok(
            "autoscaler of the fixture's workload",
            platform.autoscaler(w).await,
        );
        assert_eq!(hpa, None, "the second workload's autoscaler is not {w}'s");
    }
}

/// Every check, in an order that leaves the fixture's workload as it was (same instance
/// count, resources and Secret; same image when rollback is claimed); the second workload
/// ends with an autoscaler.
///
/// # Panics
/// When any check fails.
pub async fn run_all(platform: &dyn Platform, fx: &PlatformFixture) {
    reads_find_the_fixture(platform, fx).await;
    errors_are_typed(platform, fx).await;
    lacking_capabilities_are_unsupported(platform, fx).await;
    exec_and_copy_round_trip(platform, fx).await;
    writes_take_effect(platform, fx).await;
    guarded_writes_are_undone(platform, fx).await;
    settle(platform, fx).await;
}

/// [`Platform::copy_from_into`] writes into its sink the bytes [`Platform::copy_from`] gives
/// for `path` (an existing file) and returns their count; a missing file is
/// [`ErrorKind::NotFound`] and the scratch directory [`ErrorKind::InvalidInput`], both
/// before a byte reaches the sink.
async fn streamed_copy_matches_copy_from(
    platform: &dyn Platform,
    fx: &PlatformFixture,
    inst: &InstanceRef,
    path: &str,
) {
    let whole = ok("copy_from", platform.copy_from(inst, path).await);
    let mut sink = Vec::new();
    let n = ok(
        "copy_from_into",
        platform.copy_from_into(inst, path, &mut sink).await,
    );
    assert!(
        sink == whole && n == whole.len() as u64,
        "copy_from_into streams the bytes copy_from gives ({n} bytes reported, {} written, {} expected)",
        sink.len(),
        whole.len()
    );
    let missing = format!(
        "{}/opsbook-no-such-file",
        fx.scratch_dir.trim_end_matches('/')
    );
    let mut sink = Vec::new();
    refused(
        "copy_from_into a missing file",
        platform.copy_from_into(inst, &missing, &mut sink).await,
        ErrorKind::NotFound,
    );
    let mut dir_sink = Vec::new();
    refused(
        "copy_from_into a directory",
        platform
            .copy_from_into(inst, &fx.scratch_dir, &mut dir_sink)
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(
        sink.is_empty() && dir_sink.is_empty(),
        "copy_from_into writes nothing for a missing file or a directory"
    );
}
