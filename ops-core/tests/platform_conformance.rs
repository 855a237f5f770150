//! The whole Platform conformance suite ([`conformance::platform::run_all`]) on the fake, with
//! every capability and with Compose's, and proof that the suite fails: each `broken_*` test
//! runs it against a fake that drops one behaviour and expects the suite to panic.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use ops_core::platform::*;
use ops_core::testing::FakePlatform;
use ops_core::testing::conformance::platform::{PlatformFixture, run_all};
use ops_core::{ErrorKind, InstanceRef, Namespace, OpsError, ResourceName, WorkloadRef};

const LINE: &str = "listening on :8080";

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn worker() -> WorkloadRef {
    "prod/deployment/worker".parse().unwrap()
}

fn creds() -> ResourceName {
    "api-creds".parse().unwrap()
}

/// The fake seeded as the fixture promises: `api` with two instances that both logged
/// [`LINE`], an event, scripted `echo` / `printenv` answers on its instances, requests and
/// limits on its container and the Secret `api-creds` it uses; and a second workload
/// `worker` for the autoscaler.
fn fake(caps: PlatformCapabilities) -> FakePlatform {
    let api = api();
    let mut status = WorkloadStatus::healthy(api.clone(), 2);
    status.images = vec!["shop/api:1".to_owned()];
    let now = jiff::Timestamp::now();
    let mut lines = Vec::new();
    for (i, instance) in status.instances.iter().enumerate() {
        let at = now - jiff::SignedDuration::from_secs(60 - i64::try_from(i).unwrap());
        lines.push(LogLine::new(instance.name.clone(), Some(at), LINE));
        lines.push(LogLine::new(
            instance.name.clone(),
            Some(at + jiff::SignedDuration::from_secs(1)),
            "GET /health 200",
        ));
    }
    let mut p = FakePlatform::default()
        .with_workload(status.clone())
        .ready_after(1)
        .with_logs(&api, lines)
        .with_events(
            &api,
            vec![PlatformEvent::new(
                "ScalingReplicaSet",
                "Scaled up",
                "deployment/api",
            )],
        )
        .with_workload(WorkloadStatus::healthy(worker(), 1))
        .with_resources(
            &api,
            vec![
                ContainerResources::new("app")
                    .with_limits(
                        ResourceValues::default()
                            .with_cpu("500m".parse().unwrap())
                            .with_memory("256Mi".parse().unwrap()),
                    )
                    .with_requests(ResourceValues::default().with_memory("128Mi".parse().unwrap())),
            ],
        )
        .with_secret(api.namespace(), &creds(), &[("password", "s3cr3t")])
        .with_secret_user(&api, &creds())
        .with_capabilities(caps);
    for instance in &status.instances {
        let i = api.instance(instance.name.as_str()).unwrap();
        p = p
            .with_exec(
                &i,
                ["echo", "opsbook-conformance"],
                ExecOutput::new(Some(0), b"opsbook-conformance\n".to_vec(), Vec::new()),
            )
            .with_exec(
                &i,
                ["printenv", "OPSBOOK_CONFORMANCE"],
                ExecOutput::new(Some(0), b"1\n".to_vec(), Vec::new()),
            );
    }
    p
}

fn fixture() -> PlatformFixture {
    PlatformFixture::new(api(), LINE)
        .with_other_image("shop/api:2".parse().unwrap())
        .with_secret(creds())
        .with_autoscaled(worker())
        .with_deadline(Duration::from_secs(30))
}

/// What Compose says it can do: no dry run, durable config, secrets nor autoscaling.
fn compose_like() -> PlatformCapabilities {
    let mut caps = PlatformCapabilities::all();
    caps.dry_run = false;
    caps.durable_config = false;
    caps.secret_versions = false;
    caps.autoscaling = false;
    caps
}

#[tokio::test(start_paused = true)]
async fn fake_with_every_capability_passes_the_whole_suite() {
    run_all(&fake(PlatformCapabilities::all()), &fixture()).await;
}

#[tokio::test(start_paused = true)]
async fn fake_with_compose_capabilities_passes_the_whole_suite() {
    run_all(&fake(compose_like()), &fixture()).await;
}

#[tokio::test(start_paused = true)]
async fn fake_with_no_write_capability_refuses_every_write_as_unsupported() {
    let mut caps = PlatformCapabilities::default();
    caps.inspect = true;
    let p = fake(caps);
    run_all(&p, &fixture()).await;
    assert_eq!(p.status(&api()).unwrap().desired, 2, "nothing was changed");
    assert_eq!(p.mutations(), Vec::<String>::new(), "nothing was changed");
}

/// The whole suite leaves `api` as it was: its count, image, resources and Secret.
#[tokio::test(start_paused = true)]
async fn the_suite_leaves_the_fixture_as_it_was() {
    let p = fake(PlatformCapabilities::all());
    let before = (
        p.status(&api()).unwrap().desired,
        p.status(&api()).unwrap().images,
        p.resources(&api()).await.unwrap(),
        p.secret(api().namespace(), &creds()),
    );
    run_all(&p, &fixture()).await;
    let after = (
        p.status(&api()).unwrap().desired,
        p.status(&api()).unwrap().images,
        p.resources(&api()).await.unwrap(),
        p.secret(api().namespace(), &creds()),
    );
    assert_eq!(after, before);
    assert_eq!(p.secrets_used_by(&api()), [creds()].into());
    let rotated: Vec<String> = p
        .mutations()
        .into_iter()
        .filter(|m| m.contains("secret"))
        .collect();
    assert!(
        rotated.len() >= 6,
        "copied, repointed and deleted: {rotated:?}"
    );
    assert!(p.autoscaler(&worker()).await.unwrap().is_some());
}

/// One behaviour the broken fake drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ScaleDoesNothing,
    StopDoesNothing,
    DeleteDoesNothing,
    RollbackDoesNothing,
    LogsEmpty,
    CopyLosesBytes,
    NoEvents,
    ExecDisclaimedButWorks,
    RollbackClaimedButUnsupported,
    UnknownIsBackendError,
    RepointDoesNothing,
    DeleteSecretInUse,
    SetResourcesNotReadBack,
    RestartDoesNothing,
    DryRunAutoscalerApplies,
    StreamedCopyWritesNothing,
}

#[derive(Debug)]
struct Broken {
    inner: FakePlatform,
    fault: Fault,
}

async fn broken(fault: Fault) {
    let p = Broken {
        inner: fake(PlatformCapabilities::all()),
        fault,
    };
    run_all(&p, &fixture()).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "scaled up")]
async fn broken_scale_that_does_nothing_fails_the_suite() {
    broken(Fault::ScaleDoesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "stopped")]
async fn broken_stop_that_does_nothing_fails_the_suite() {
    broken(Fault::StopDoesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "was deleted")]
async fn broken_delete_that_does_nothing_fails_the_suite() {
    broken(Fault::DeleteDoesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "rolled back to the first image")]
async fn broken_rollback_that_does_nothing_fails_the_suite() {
    broken(Fault::RollbackDoesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "none came back")]
async fn broken_empty_logs_fail_the_suite() {
    broken(Fault::LogsEmpty).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "copy_from gives back what copy_to wrote")]
async fn broken_copy_that_loses_a_byte_fails_the_suite() {
    broken(Fault::CopyLosesBytes).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "there are events")]
async fn broken_events_that_are_always_empty_fail_the_suite() {
    broken(Fault::NoEvents).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "exec: expected Unsupported")]
async fn broken_capabilities_that_disclaim_a_working_exec_fail_the_suite() {
    broken(Fault::ExecDisclaimedButWorks).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "revisions failed")]
async fn broken_capabilities_that_claim_an_unsupported_rollback_fail_the_suite() {
    broken(Fault::RollbackClaimedButUnsupported).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected NotFound")]
async fn broken_unknown_workload_reported_as_a_backend_error_fails_the_suite() {
    broken(Fault::UnknownIsBackendError).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "after repoint_secret")]
async fn broken_repoint_that_does_nothing_fails_the_suite() {
    broken(Fault::RepointDoesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "delete_secret of a Secret in use: expected Conflict")]
async fn broken_delete_of_a_secret_in_use_fails_the_suite() {
    broken(Fault::DeleteSecretInUse).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "set_resources is read back")]
async fn broken_set_resources_that_is_not_read_back_fails_the_suite() {
    broken(Fault::SetResourcesNotReadBack).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "was not restarted")]
async fn broken_restart_that_does_nothing_fails_the_suite() {
    broken(Fault::RestartDoesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "copy_from_into streams the bytes copy_from gives")]
async fn broken_streamed_copy_that_writes_nothing_fails_the_suite() {
    broken(Fault::StreamedCopyWritesNothing).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "a dry-run create made an autoscaler")]
async fn broken_dry_run_autoscaler_that_applies_fails_the_suite() {
    broken(Fault::DryRunAutoscalerApplies).await;
}

#[async_trait]
#[rustfmt::skip]
impl Platform for Broken {
    fn backend(&self) -> &'static str { self.inner.backend() }
    fn capabilities(&self) -> PlatformCapabilities { let mut c = self.inner.capabilities(); c.exec &= self.fault != Fault::ExecDisclaimedButWorks; c.rollback |= self.fault == Fault::RollbackClaimedButUnsupported; c }
    async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError> { self.inner.list_workloads(namespace).await }
    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError> { match (self.fault, self.inner.workload(workload).await) { (Fault::UnknownIsBackendError, Err(e)) => Err(OpsError::new(ErrorKind::Backend, "broken", "workload", e.to_string())), (_, r) => r } }
    async fn rollout_restart(&self, workload: &WorkloadRef, opts: RestartOptions) -> Result<(), OpsError> { if self.fault == Fault::RestartDoesNothing { self.inner.workload(workload).await?; return Ok(()); } self.inner.rollout_restart(workload, opts).await }
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError> { self.inner.rollout_status(workload).await }
    async fn scale(&self, workload: &WorkloadRef, replicas: u32, opts: ScaleOptions) -> Result<ScaleChange, OpsError> { if self.fault == Fault::ScaleDoesNothing { let from = self.inner.workload(workload).await?.desired; if opts.expect_current.is_some_and(|e| e != from) { return Err(OpsError::new(ErrorKind::Conflict, "broken", "scale", workload.to_string())); } return Ok(ScaleChange::new(from, replicas)); } self.inner.scale(workload, replicas, opts).await }
    async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> { if self.fault == Fault::StopDoesNothing { return Ok(()); } self.inner.stop(workload, opts).await }
    async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> { self.inner.start(workload, opts).await }
    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> { if self.fault == Fault::RollbackClaimedButUnsupported { return Err(OpsError::new(ErrorKind::Unsupported, "broken", "revisions", workload.to_string())); } self.inner.revisions(workload).await }
    async fn rollback(&self, workload: &WorkloadRef, opts: RollbackOptions) -> Result<RollbackChange, OpsError> { match self.fault { Fault::RollbackClaimedButUnsupported => Err(OpsError::new(ErrorKind::Unsupported, "broken", "rollback", workload.to_string())), Fault::RollbackDoesNothing if opts.revision.is_none() => Ok(RollbackChange::new(None, 1)), _ => self.inner.rollback(workload, opts).await } }
    async fn delete_instance(&self, instance: &InstanceRef, opts: DeleteOptions) -> Result<(), OpsError> { if self.fault == Fault::DeleteDoesNothing { let s = self.inner.workload(instance.workload()).await?; if s.instances.iter().any(|i| &i.name == instance.name()) { return Ok(()); } } self.inner.delete_instance(instance, opts).await }
    async fn logs(&self, workload: &WorkloadRef, opts: LogOptions) -> Result<Vec<LogLine>, OpsError> { let lines = self.inner.logs(workload, opts).await?; Ok(if self.fault == Fault::LogsEmpty { Vec::new() } else { lines }) }
    async fn follow_logs(&self, workload: &WorkloadRef, opts: LogOptions) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError> { self.inner.follow_logs(workload, opts).await }
    async fn events(&self, workload: &WorkloadRef, opts: EventOptions) -> Result<Vec<PlatformEvent>, OpsError> { let events = self.inner.events(workload, opts).await?; Ok(if self.fault == Fault::NoEvents { Vec::new() } else { events }) }
    async fn exec(&self, instance: &InstanceRef, command: &ExecCommand) -> Result<ExecOutput, OpsError> { self.inner.exec(instance, command).await }
    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> { self.inner.copy_from(instance, path).await }
    async fn copy_from_into(&self, instance: &InstanceRef, path: &str, sink: &mut ops_core::platform::CopySink) -> Result<u64, OpsError> { if self.fault == Fault::StreamedCopyWritesNothing { return Ok(self.inner.copy_from(instance, path).await?.len() as u64); } self.inner.copy_from_into(instance, path, sink).await }
    async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> { self.inner.archive_from(instance, path).await }
    async fn copy_to(&self, instance: &InstanceRef, path: &str, contents: Vec<u8>) -> Result<(), OpsError> { let mut contents = contents; if self.fault == Fault::CopyLosesBytes { contents.pop(); } self.inner.copy_to(instance, path, contents).await }
    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> { self.inner.resource_usage(workload).await }
    async fn update_config(&self, workload: &WorkloadRef, update: ConfigUpdate) -> Result<ConfigChange, OpsError> { self.inner.update_config(workload, update).await }
    async fn resources(&self, workload: &WorkloadRef) -> Result<Vec<ContainerResources>, OpsError> { self.inner.resources(workload).await }
    async fn set_resources(&self, workload: &WorkloadRef, update: ResourceUpdate) -> Result<ResourceChange, OpsError> { let dry = update.dry_run || self.fault == Fault::SetResourcesNotReadBack; self.inner.set_resources(workload, update.with_dry_run(dry)).await }
    async fn autoscaler(&self, workload: &WorkloadRef) -> Result<Option<Autoscaler>, OpsError> { self.inner.autoscaler(workload).await }
    async fn set_autoscaler(&self, workload: &WorkloadRef, spec: AutoscalerSpec) -> Result<AutoscalerChange, OpsError> { let spec = if self.fault == Fault::DryRunAutoscalerApplies { spec.with_dry_run(false) } else { spec }; self.inner.set_autoscaler(workload, spec).await }
    async fn set_image(&self, workload: &WorkloadRef, update: ImageUpdate) -> Result<ImageChange, OpsError> { self.inner.set_image(workload, update).await }
    async fn lockdown(&self, scope: &LockdownScope, opts: LockdownOptions) -> Result<Lockdown, OpsError> { self.inner.lockdown(scope, opts).await }
    async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> { self.inner.lockdowns(namespace).await }
    async fn lift_lockdown(&self, namespace: &Namespace, id: &LockdownId) -> Result<Lockdown, OpsError> { self.inner.lift_lockdown(namespace, id).await }
    async fn export(&self, namespace: &Namespace, opts: ExportOptions) -> Result<NamespaceExport, OpsError> { self.inner.export(namespace, opts).await }
    async fn inspect(&self, namespace: &Namespace, opts: InspectOptions) -> Result<Inspection, OpsError> { self.inner.inspect(namespace, opts).await }
    async fn secret_users(&self, namespace: &Namespace, name: &ResourceName) -> Result<Vec<WorkloadRef>, OpsError> { self.inner.secret_users(namespace, name).await }
    async fn copy_secret(&self, namespace: &Namespace, copy: SecretCopy) -> Result<SecretCreated, OpsError> { self.inner.copy_secret(namespace, copy).await }
    async fn repoint_secret(&self, workload: &WorkloadRef, from: &ResourceName, to: &ResourceName) -> Result<SecretRepoint, OpsError> { if self.fault == Fault::RepointDoesNothing { self.inner.workload(workload).await?; return Ok(SecretRepoint::new(workload.clone(), 1)); } self.inner.repoint_secret(workload, from, to).await }
    async fn delete_secret(&self, namespace: &Namespace, name: &ResourceName) -> Result<(), OpsError> { match (self.fault, self.inner.delete_secret(namespace, name).await) { (Fault::DeleteSecretInUse, Err(e)) if e.kind() == ErrorKind::Conflict => Ok(()), (_, r) => r } }
}
