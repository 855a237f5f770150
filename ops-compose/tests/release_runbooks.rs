//! The release runbooks on the real Docker engine (Compose platform), with the engine's own
//! view as the oracle: `deployment_failure` on a service whose release crash loops (it reads
//! the crash loop, the warning events and the previous containers' logs, rolls back to the
//! image opsbook replaced and verifies), and `planned_maintenance` (notify, scale down to the
//! window's count, release, scale back, verify; and a release that crashes rolled back with
//! the count restored). The window has no database, so the runbook's backup step does not
//! run. Skips (prints why) without an engine or images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ops_core::platform::{ImageUpdate, RolloutOptions};
use ops_core::run::{ActionStatus, ApprovalPolicy, Mode, Report, RunContext, RunOutcome};
use ops_core::runbooks::{MaintenancePlan, deployment_failure, planned_maintenance};
use ops_core::testing::RecordingNotifier;
use ops_core::{Platform as _, PlatformExt as _};
use support::{Project, Spec, Tag, demo_image, project_containers, runbook_targets};

const WAIT: Duration = Duration::from_secs(180);

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("bounded wait")
}

fn rollout() -> RolloutOptions {
    RolloutOptions::default()
        .with_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(250))
}

/// As compose services usually run: restarted by the engine when they exit.
fn always() -> Spec {
    Spec {
        restart: Some("always"),
        ..Spec::default()
    }
}

/// A running, healthy service of `n` containers.
async fn service_of(p: &Project, n: u32) -> (ops_core::WorkloadRef, String) {
    let api = p.service("api");
    let mut first = String::new();
    for number in 1..=n {
        let id = p.add("api", number, &always()).await;
        if number == 1 {
            first = id;
        }
    }
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    (api, first)
}

fn execute(notifier: &Arc<RecordingNotifier>) -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .notifier(Arc::clone(notifier) as _)
        .build()
}

/// What the engine runs for the project, as `docker ps -a` lists it: (name, image, state),
/// sorted by name.
async fn engine_view(p: &Project) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = p
        .containers()
        .await
        .into_iter()
        .map(|c| {
            (
                c.names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                c.image.unwrap_or_default(),
                c.state.map(|s| s.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The engine's view once every container of the service is `running` with `image`, `n`
/// of them named `project-api-1..n`; panics with the last view after the bound.
async fn engine_runs(p: &Project, image: &str, n: u32) -> Vec<(String, String, String)> {
    let want: Vec<_> = (1..=n)
        .map(|i| {
            (
                format!("{}-api-{i}", p.name),
                image.to_owned(),
                "running".to_owned(),
            )
        })
        .collect();
    let mut last = Vec::new();
    for _ in 0..120 {
        last = engine_view(p).await;
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the engine runs {last:?}, not {want:?}");
}

/// The report has a finding titled with `title` whose evidence mentions `text`.
fn assert_evidence(report: &Report, title: &str, text: &str) {
    let found = report
        .findings
        .iter()
        .filter(|f| f.title.contains(title))
        .any(|f| f.evidence.iter().any(|e| e.contains(text)));
    assert!(
        found,
        "no finding {title:?} with {text:?}: {}",
        report.to_markdown()
    );
}

/// Steps of the report's actions with `status`, in order, notifications included.
fn steps(report: &Report, status: ActionStatus) -> Vec<&str> {
    report
        .actions
        .iter()
        .filter(|a| a.status == status)
        .map(|a| a.step.as_str())
        .collect()
}

/// As [`steps`], without the notifications.
fn changes(report: &Report, status: ActionStatus) -> Vec<&str> {
    let mut out = steps(report, status);
    out.retain(|s| *s != "notify");
    out
}

/// Watches the number of the project's containers (`docker ps -a`) until dropped: the
/// fewest seen, so a test can tell whether the window really ran with fewer.
struct CountWatch {
    fewest: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl CountWatch {
    fn start(p: &Project) -> Self {
        let fewest = Arc::new(AtomicUsize::new(usize::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let (docker, project) = (p.docker.clone(), p.name.clone());
        let (f, s) = (Arc::clone(&fewest), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(list) = project_containers(&docker, &project).await {
                    f.fetch_min(list.len(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { fewest, stop, task }
    }

    async fn fewest(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.fewest.load(Ordering::Relaxed)
    }
}

/// A release that crash loops, made as opsbook deploys one (`set_image`): it stops at the
/// first container, whose image crashes at start and which the engine keeps restarting.
/// Returns once the engine has restarted it twice: from then on the platform calls it
/// crash looping in every state it passes through (restarting, or briefly running again),
/// while after one restart a read that lands in its short run sees it running.
async fn crash_looping_release(p: &Project, api: &ops_core::WorkloadRef, bad: &Tag) {
    let err = bounded(
        p.platform
            .set_image(api, ImageUpdate::new(bad.0.parse().unwrap())),
    )
    .await
    .expect_err("a release that crashes at start never becomes ready");
    eprintln!("the release failed as expected: {}", err.chain());
    for _ in 0..120 {
        let status = p.platform.workload(api).await.unwrap();
        if status
            .instances
            .iter()
            .any(|i| i.restarts >= 2 && i.is_crash_looping())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the platform never reported the crash loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_failure_rolls_back_a_crash_looping_release() {
    let p = project_or_skip!("dfail", Duration::from_secs(20));
    let (api, first) = service_of(&p, 2).await;
    let bad = Tag::crashing(&p, &first);
    crash_looping_release(&p, &api, &bad).await;
    let broken = engine_view(&p).await;
    assert!(
        broken
            .iter()
            .any(|(name, image, _)| *name == format!("{}-api-1", p.name) && *image == bad.0),
        "{broken:?}"
    );

    let notifier = Arc::new(RecordingNotifier::default());
    let report = bounded(deployment_failure(
        &execute(&notifier),
        &runbook_targets(&p, &api),
    ))
    .await
    .unwrap();
    let md = report.to_markdown();
    assert_eq!(report.outcome, RunOutcome::Recovered, "{md}");
    assert!(report.summary.contains("rolled back"), "{md}");
    // The evidence: the crash loop named by container, and the crashed run's own last words.
    assert_evidence(&report, "CrashLoopBackOff", &format!("{}-api-1", p.name));
    assert_evidence(&report, "previous containers", "crash fault set at start");
    assert_eq!(
        steps(&report, ActionStatus::Taken),
        ["notify", "rollback", "notify", "notify"],
        "{md}"
    );
    assert!(
        notifier
            .sent()
            .iter()
            .any(|n| n.title.contains("deployment of") && n.title.contains("failed")),
        "{:?}",
        notifier.sent()
    );
    // The engine's own view: both containers run the image before the release, and stay up.
    engine_runs(&p, &demo_image(), 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(engine_runs(&p, &demo_image(), 2).await.len(), 2);
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
}

/// The window was announced first, then made exactly the changes `taken`, in order.
fn assert_window(report: &Report, taken: &[&str]) {
    let md = report.to_markdown();
    assert_eq!(steps(report, ActionStatus::Taken)[0], "notify", "{md}");
    assert_eq!(changes(report, ActionStatus::Taken), taken, "{md}");
}

/// Run `planned_maintenance` releasing `image` to `api` with a window of one container,
/// watching the engine meanwhile: the report, the notifications, and the fewest containers
/// the engine held at once.
async fn run_window(
    p: &Project,
    api: &ops_core::WorkloadRef,
    image: &str,
) -> (Report, Vec<ops_core::notify::Notification>, usize) {
    let plan = MaintenancePlan::new(ImageUpdate::new(image.parse().unwrap())).with_scale_to(1);
    let notifier = Arc::new(RecordingNotifier::default());
    let watch = CountWatch::start(p);
    let report = bounded(planned_maintenance(
        &execute(&notifier),
        &runbook_targets(p, api),
        &plan,
    ))
    .await
    .unwrap();
    (report, notifier.sent(), watch.fewest().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_maintenance_runs_the_window_on_the_engine() {
    let p = project_or_skip!("maint", Duration::from_secs(20));
    let (api, _) = service_of(&p, 3).await;
    let release = Tag::new(&format!("{}-release", p.name), None);
    let (report, sent, fewest) = run_window(&p, &api, &release.0).await;
    let md = report.to_markdown();
    assert_eq!(report.outcome, RunOutcome::Recovered, "{md}");
    assert_window(&report, &["scale_down", "set_image", "scale_back"]);
    // The window ran one container on the engine, and three again after it.
    assert_eq!(
        fewest, 1,
        "the engine never ran the window's single container"
    );
    engine_runs(&p, &release.0, 3).await;
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
    assert!(
        sent.first()
            .is_some_and(|n| n.title.contains("maintenance of") && n.body.contains(&release.0)),
        "{sent:?}"
    );
    assert!(sent.len() >= 2, "start and end announced: {sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_maintenance_rolls_back_a_release_that_crashes_and_restores_the_count() {
    let p = project_or_skip!("mfail", Duration::from_secs(20));
    let (api, first) = service_of(&p, 3).await;
    let bad = Tag::crashing(&p, &first);
    let (report, _, fewest) = run_window(&p, &api, &bad.0).await;
    let md = report.to_markdown();
    assert_eq!(report.outcome, RunOutcome::Unresolved, "{md}");
    assert!(report.summary.contains("rolled back"), "{md}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains(&bad.0) && f.title.contains("did not come up")),
        "{md}"
    );
    assert_window(&report, &["scale_down", "scale_back", "rollback"]);
    assert_eq!(
        changes(&report, ActionStatus::Failed),
        ["set_image"],
        "{md}"
    );
    assert_eq!(
        fewest, 1,
        "the engine never ran the window's single container"
    );
    // The engine's own view: three containers again, all on the image before the window.
    engine_runs(&p, &demo_image(), 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(engine_runs(&p, &demo_image(), 3).await.len(), 3);
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
}
