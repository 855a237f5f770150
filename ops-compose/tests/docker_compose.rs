//! `ComposePlatform` against a project made by a real Compose implementation: Debian's
//! `docker-compose` 1.29 (`scripts/provision` installs it) runs `up -d` on a compose file
//! using the locally built demo-api image, and opsbook acts on what it created. Skips (prints
//! why) without `docker-compose`, an engine or the image, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ops_compose::ComposePlatform;
use ops_core::platform::{
    ConfigTarget, ConfigUpdate, RestartOptions, RolloutOptions, ScaleOptions,
};
use ops_core::{Platform, PlatformExt as _, WorkloadRef};
use support::{StatusProbe, demo_image};

const WAIT: Duration = Duration::from_secs(180);

fn rollout() -> RolloutOptions {
    RolloutOptions::default()
        .with_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(250))
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("bounded wait")
}

/// A project brought up by `docker-compose -p NAME -f FILE up -d`; `down` when dropped.
struct ComposeProject {
    name: String,
    dir: PathBuf,
    platform: Arc<ComposePlatform>,
    /// Image tags the test made, removed with the project (on a failed assertion too).
    tags: std::sync::Mutex<Vec<String>>,
}

impl ComposeProject {
    /// `db` and `api` (two replicas, `depends_on: db` healthy, on `default` and `back`).
    fn up(prefix: &str) -> Result<Self, String> {
        let image = demo_image();
        let file = format!(
            "version: \"2.4\"\nservices:\n  db:\n    image: {image}\n  api:\n    image: {image}\n    depends_on:\n      db:\n        condition: service_healthy\n    scale: 2\n    networks: [default, back]\nnetworks:\n  back: {{}}\n"
        );
        Self::up_with(prefix, &file, None)
    }

    /// `docker-compose up -d` on `file` (as `compose.yml`), with `env` as its `.env`.
    fn up_with(prefix: &str, file: &str, env: Option<&str>) -> Result<Self, String> {
        let version = Command::new("docker-compose")
            .arg("version")
            .output()
            .map_err(|e| format!("no docker-compose: {e}"))?;
        if !version.status.success() {
            return Err("docker-compose does not run".to_owned());
        }
        let name = format!("dc{prefix}{}", fastrand::u32(..) % 1_000_000);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("compose.yml"), file).map_err(|e| e.to_string())?;
        if let Some(env) = env {
            std::fs::write(dir.join(".env"), env).map_err(|e| e.to_string())?;
        }
        let p = Self {
            name,
            dir,
            tags: std::sync::Mutex::default(),
            platform: Arc::new(
                ComposePlatform::builder()
                    .with_stop_timeout(Duration::from_secs(2))
                    .with_poll_interval(Duration::from_millis(250))
                    .with_health_timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
        };
        let up = p.compose(&["up", "-d"]);
        if !up.status.success() {
            return Err(format!(
                "docker-compose up failed: {}",
                String::from_utf8_lossy(&up.stderr)
            ));
        }
        Ok(p)
    }

    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .current_dir(&self.dir)
            .args(["-p", &self.name, "-f", "compose.yml"])
            .args(args)
            .output()
            .unwrap()
    }

    fn service(&self, s: &str) -> WorkloadRef {
        WorkloadRef::compose_service(&self.name, s).unwrap()
    }

    /// Run the docker CLI (a method so every call reads `p.docker(..)` beside `p.compose(..)`).
    #[allow(clippy::unused_self, reason = "reads as the project's own command")]
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Remember an image tag the test made, to remove it with the project.
    fn owns_tag(&self, tag: &str) {
        self.tags.lock().unwrap().push(tag.to_owned());
    }

    /// The networks a container is attached to, and its aliases on each.
    fn networks(&self, container: &str) -> String {
        self.docker(&[
            "inspect",
            "--format",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{join $v.Aliases \",\"}};{{end}}",
            container,
        ])
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-t", "1", "--remove-orphans"]);
        // Containers opsbook made under compose's labels go too.
        let filter = format!("label=com.docker.compose.project={}", self.name);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let _ = self.compose(&["down", "-t", "1"]);
        let _ = std::fs::remove_dir_all(&self.dir);
        for tag in self.tags.lock().unwrap().drain(..) {
            let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
        }
    }
}

/// The project `up` made, or skip the test (fail it under CI) saying why.
macro_rules! compose_or_skip {
    ($up:expr) => {
        match $up {
            Ok(p) => p,
            Err(why) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{why}");
                }
                eprintln!("skipping test: {why}; run scripts/provision");
                return;
            }
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_labels_one_offs_and_networks_survive_recreate_and_scale() {
    let p = compose_or_skip!(ComposeProject::up("lab"));
    let api = p.service("api");
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let listed = p.platform.list_workloads(api.namespace()).await.unwrap();
    assert_eq!(listed, vec![api.clone(), p.service("db")]);
    let s = p.platform.workload(&api).await.unwrap();
    let names: Vec<String> = s.instances.iter().map(|i| i.name.to_string()).collect();
    // docker-compose 1.29 names containers project_service_N.
    assert_eq!(names, [1, 2].map(|n| format!("{}_api_{n}", p.name)));
    assert_eq!(s.desired, 2);

    // A one-off (`docker-compose run`) carries the service label but is not part of it.
    let run = p.compose(&["run", "-d", "--no-deps", "api"]);
    assert!(run.status.success(), "{run:?}");
    let s = p.platform.workload(&api).await.unwrap();
    assert_eq!(s.instances.len(), 2, "the one-off is excluded");
    assert_eq!(s.desired, 2);

    // Recreate keeps both networks and the service alias.
    let first = format!("{}_api_1", p.name);
    let before = p.networks(&first);
    assert!(before.contains(&format!("{}_back=", p.name)), "{before}");
    let update = ConfigUpdate::new(ConfigTarget::Env).set("GREETING", "hello");
    bounded(p.platform.update_config(&api, update))
        .await
        .unwrap();
    let after = p.networks(&first);
    for net in ["default", "back"] {
        let entry = after
            .split(';')
            .find(|e| e.starts_with(&format!("{}_{net}=", p.name)))
            .unwrap_or_else(|| panic!("{first} left network {net}: {after}"));
        assert!(entry.split(['=', ',']).any(|a| a == "api"), "{after}");
    }

    // Scale clones onto both networks too, and docker-compose sees the new container.
    bounded(p.platform.scale(&api, 3, ScaleOptions::default()))
        .await
        .unwrap();
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let s = p.platform.workload(&api).await.unwrap();
    assert_eq!((s.desired, s.instances.len()), (3, 3));
    let third = s.instances[2].name.to_string();
    let nets = p.networks(&third);
    assert!(
        nets.contains(&format!("{}_back=", p.name))
            && nets.contains(&format!("{}_default=", p.name)),
        "{nets}"
    );
    // (1.29's `ps -q api` lists the one-off too.)
    let ps = p.compose(&["ps", "-q", "api"]);
    let ids: BTreeSet<&str> = std::str::from_utf8(&ps.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    let third_id = p.docker(&["inspect", "--format", "{{.Id}}", &third]);
    assert!(
        ids.contains(third_id.as_str()),
        "docker-compose ps sees opsbook's container: {ps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_rolling_restart_and_missing_containers() {
    let p = compose_or_skip!(ComposeProject::up("roll"));
    let api = p.service("api");
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    // Item 8 on a real project: the restart returns only with every container healthy
    // (right after `docker restart` the HEALTHCHECK is still starting).
    bounded(p.platform.rollout_restart(&api, RestartOptions::default()))
        .await
        .unwrap();
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());

    // Item 12 on a real project: remove container 1 as a crash plus `docker rm` would.
    p.docker(&["rm", "-f", &format!("{}_api_1", p.name)]);
    let s = p.platform.workload(&api).await.unwrap();
    assert_eq!((s.desired, s.instances.len()), (2, 1));
    assert!(!s.is_healthy());
    assert!(
        s.conditions
            .iter()
            .any(|c| c.kind == ops_compose::MISSING_CONDITION),
        "{s:?}"
    );
}

/// The value of `key` in a container's environment.
fn env_of(p: &ComposeProject, container: &str, key: &str) -> Option<String> {
    let env = p.docker(&[
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}",
        container,
    ]);
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

/// The image (as configured) of a container.
fn image_of(p: &ComposeProject, container: &str) -> String {
    p.docker(&["inspect", "--format", "{{.Config.Image}}", container])
}

/// Item 9: `secret_rotation` on a real docker-compose project. The report says first that the
/// compose file / `.env` must change before the old value is revoked, and what it promises
/// is what docker-compose does: the next `up` brings the old value back (opsbook's container
/// no longer claims the file's config hash); once `.env` holds the new value, `up` keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_secret_rotation_lasts_until_the_next_up_as_the_report_says() {
    use ops_core::run::RunOutcome;
    use ops_core::runbooks::{RunbookConfig, SecretRotation, Targets};

    let image = demo_image();
    let file = format!(
        "version: \"2.4\"\nservices:\n  api:\n    image: {image}\n    environment:\n      API_TOKEN: ${{API_TOKEN}}\n"
    );
    let p = compose_or_skip!(ComposeProject::up_with(
        "rot",
        &file,
        Some("API_TOKEN=old-token\n")
    ));
    let api = p.service("api");
    let container = format!("{}_api_1", p.name);
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    assert_eq!(
        env_of(&p, &container, "API_TOKEN").as_deref(),
        Some("old-token")
    );
    assert!(!p.platform.capabilities().durable_config);

    let mut cfg = RunbookConfig::default().with_verify(
        1,
        Duration::from_millis(100),
        Duration::from_secs(30),
    );
    cfg.rotation = Some(SecretRotation::new(
        ConfigTarget::Env,
        "API_TOKEN",
        "new-token",
    ));
    let probe = StatusProbe {
        platform: Arc::clone(&p.platform),
        workload: api.clone(),
    };
    let t = Targets::new(Arc::clone(&p.platform) as _, api.clone())
        .with_probe(Arc::new(probe))
        .with_config(cfg);
    let ctx = execute();
    let report = bounded(ops_core::runbooks::secret_rotation(&ctx, &t))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let dir = p.dir.display().to_string();
    let expected = format!(
        "Do not revoke the old API_TOKEN yet: first set the new value in service api of {dir}/compose.yml or {dir}/.env (compose project {}).",
        p.name
    );
    assert!(
        report.summary.starts_with(&expected),
        "{}\nexpected the summary to start with: {expected}",
        report.summary
    );
    assert!(!report.to_markdown().contains("new-token"));
    assert_eq!(
        env_of(&p, &container, "API_TOKEN").as_deref(),
        Some("new-token")
    );

    // What the report promised: the next deploy from the unchanged definition brings the
    // old value back.
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{up:?}");
    assert_eq!(
        env_of(&p, &container, "API_TOKEN").as_deref(),
        Some("old-token"),
        "docker-compose up keeps the old value in .env: the rotation did not last"
    );

    // And what it asks for works: with the new value in .env, `up` applies and keeps it.
    std::fs::write(p.dir.join(".env"), "API_TOKEN=new-token\n").unwrap();
    for _ in 0..2 {
        let up = p.compose(&["up", "-d"]);
        assert!(up.status.success(), "{up:?}");
        assert_eq!(
            env_of(&p, &container, "API_TOKEN").as_deref(),
            Some("new-token")
        );
    }
}

/// Item 10: a service deployed by `docker-compose up` has no opsbook label, yet its previous
/// image is known from the container compose replaced; `capabilities().rollback` says so and
/// `rollback` uses it. Before any image change there is nothing to roll back to: a typed
/// `Unsupported`. After opsbook's rollback the next `up` deploys the file's image again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_up_with_a_new_image_rolls_back_to_the_replaced_one() {
    use ops_core::ErrorKind;
    use ops_core::platform::RollbackOptions;

    let image = demo_image();
    let file = |image: &str| format!("version: \"2.4\"\nservices:\n  api:\n    image: {image}\n");
    let p = compose_or_skip!(ComposeProject::up_with("rb", &file(&image), None));
    let api = p.service("api");
    let container = format!("{}_api_1", p.name);
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    assert!(p.platform.capabilities().rollback);
    let none = p.platform.revisions(&api).await.unwrap_err();
    assert_eq!(none.kind(), ErrorKind::Unsupported, "{none:#}");
    let refused = p
        .platform
        .rollback(&api, RollbackOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported, "{refused:#}");
    assert_eq!(image_of(&p, &container), image);

    // A release, deployed as a compose user does: a new tag in the file, `up -d`.
    let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
    let release = format!("{repo}:{}-v2", p.name);
    p.docker(&["tag", &image, &release]);
    p.owns_tag(&release);
    std::fs::write(p.dir.join("compose.yml"), file(&release)).unwrap();
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{up:?}");
    assert_eq!(image_of(&p, &container), release);

    let revisions = p.platform.revisions(&api).await.unwrap();
    let seen: Vec<(u64, Vec<String>, bool)> = revisions
        .iter()
        .map(|r| (r.number, r.images.clone(), r.current))
        .collect();
    assert_eq!(
        seen,
        [
            (2, vec![release.clone()], true),
            (1, vec![image.clone()], false)
        ]
    );
    bounded(p.platform.rollback(&api, RollbackOptions::default()))
        .await
        .unwrap();
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    assert_eq!(image_of(&p, &container), image);

    // Not durable, as the capability says: the file still names the release.
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{up:?}");
    assert_eq!(image_of(&p, &container), release);
}

/// Item 13 against the real engine: a compose service limited to a tenth of a core
/// (`cpus: 0.1`, which docker-compose writes as `NanoCpus`; small so that a shared, busy
/// machine still gives the loop all of it) burns CPU; the platform reports the limit, the
/// usage is near it, and `high_latency` compares with the limit and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_cpu_limit_is_the_reference_for_cpu_decisions() {
    use ops_core::metrics::MetricQuery;
    use ops_core::run::{Mode, RunContext, RunOutcome};
    use ops_core::runbooks::{RunbookConfig, Targets};
    use ops_core::testing::FakeMetrics;

    let image = demo_image();
    let file = format!(
        "version: \"2.4\"\nservices:\n  burn:\n    image: {image}\n    entrypoint: [\"sh\", \"-c\", \"while :; do :; done\"]\n    cpus: 0.1\n    healthcheck:\n      disable: true\n"
    );
    let p = compose_or_skip!(ComposeProject::up_with("cpu", &file, None));
    let burn = p.service("burn");
    bounded(p.platform.wait_rolled_out(&burn, rollout()))
        .await
        .unwrap();
    // The engine measures CPU over an interval: give the loop a moment, then sample until
    // the usage settles near the limit (bounded; the machine is shared).
    let mut ratio = 0.0;
    for _ in 0..10 {
        let usage = p.platform.resource_usage(&burn).await.unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].cpu_limit_cores, Some(0.1), "{usage:?}");
        ratio = usage[0].cpu_ratio().unwrap();
        if ratio > 0.8 {
            break;
        }
    }
    assert!(
        (0.8..1.2).contains(&ratio),
        "a busy loop under a 0.1-core limit uses about all of it: {ratio}"
    );

    let mut cfg = RunbookConfig::default();
    cfg.metrics_job = "burn".to_owned();
    // 0.8 of the limit, the seeds' "80 %": in cores, 0.1 would never count as CPU-bound.
    assert!((cfg.cpu_scale_out - 0.8).abs() < 1e-9);
    let window = cfg.metrics_window.clone();
    let metrics =
        FakeMetrics::default().with_scalar(&MetricQuery::p95_latency("burn", &window), 6.0);
    let t = Targets::new(Arc::clone(&p.platform) as _, burn.clone())
        .with_metrics(Arc::new(metrics))
        .with_config(cfg);
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::DryRun)
        .build();
    let report = bounded(ops_core::runbooks::high_latency(&ctx, &t))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Planned,
        "{}",
        report.to_markdown()
    );
    let cpu = report
        .findings
        .iter()
        .find(|f| f.title.starts_with("mean CPU "))
        .unwrap_or_else(|| panic!("no CPU finding: {}", report.to_markdown()));
    assert!(
        cpu.title
            .ends_with("% of the CPU limit per instance: CPU-bound"),
        "{}",
        cpu.title
    );
}

/// Item 11: docker-compose 1.29 writes no `depends_on` label; the start-up order comes from the
/// compose file the project's labels name (map and list forms), each tier health-gated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_depends_on_is_read_from_the_compose_file() {
    let image = demo_image();
    let file = format!(
        "version: \"2.4\"\nservices:\n  db:\n    image: {image}\n  cache:\n    image: {image}\n  api:\n    image: {image}\n    depends_on:\n      db:\n        condition: service_healthy\n      cache:\n        condition: service_started\n  worker:\n    image: {image}\n    depends_on: [api]\n"
    );
    let p = compose_or_skip!(ComposeProject::up_with("dep", &file, None));
    let tiers = p.platform.dependency_tiers(&p.name).await.unwrap();
    assert_eq!(
        tiers,
        [vec!["cache", "db"], vec!["api"], vec!["worker"]]
            .map(|t| t.into_iter().map(str::to_owned).collect::<Vec<_>>())
    );
    let stop = p.compose(&["stop", "-t", "1"]);
    assert!(stop.status.success(), "{stop:?}");
    let started = bounded(p.platform.start_project(&p.name)).await.unwrap();
    let order: Vec<(String, usize)> = started
        .iter()
        .map(|s| (s.workload.name().to_string(), s.tier))
        .collect();
    assert_eq!(
        order,
        [("cache", 0), ("db", 0), ("api", 1), ("worker", 2)].map(|(s, t)| (s.to_owned(), t))
    );
    for s in ["db", "cache", "api", "worker"] {
        assert!(
            p.platform
                .workload(&p.service(s))
                .await
                .unwrap()
                .is_healthy()
        );
    }
}

/// An execute-mode context that approves every step.
fn execute() -> ops_core::run::RunContext {
    ops_core::run::RunContext::builder()
        .allow_volatile_journal()
        .mode(ops_core::run::Mode::Execute)
        .approver(ops_core::run::ApprovalPolicy::approve_all("test"))
        .build()
}

/// Item 10 end to end: a release that crashes at start, deployed as a compose user does (the
/// new tag in the compose file, `docker-compose up -d`), crash-loops; `api_down` finds the
/// previous image from the container compose replaced, rolls back and verifies, and its
/// report says the rollback lasts only until the next `up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_rolls_back_a_crash_looping_release_deployed_with_docker_compose_up() {
    use ops_core::run::RunOutcome;
    use ops_core::runbooks::{RunbookConfig, Targets};

    let image = demo_image();
    let file = |image: &str| {
        format!("version: \"2.4\"\nservices:\n  api:\n    image: {image}\n    restart: always\n")
    };
    let p = compose_or_skip!(ComposeProject::up_with("crash", &file(&image), None));
    let api = p.service("api");
    let container = format!("{}_api_1", p.name);
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    // The bad release: the same program, told to crash at start.
    let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
    let bad = format!("{repo}:{}-bad", p.name);
    p.docker(&[
        "commit",
        "--change",
        "ENV FAULT_CRASH=true",
        &container,
        &bad,
    ]);
    p.owns_tag(&bad);
    std::fs::write(p.dir.join("compose.yml"), file(&bad)).unwrap();
    let up = p.compose(&["up", "-d"]);
    assert!(up.status.success(), "{up:?}");
    bounded(async {
        while p.platform.workload(&api).await.unwrap().total_restarts() < 2 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;

    let probe = StatusProbe {
        platform: Arc::clone(&p.platform),
        workload: api.clone(),
    };
    let t = Targets::new(Arc::clone(&p.platform) as _, api.clone())
        .with_probe(Arc::new(probe))
        .with_config(RunbookConfig::default().with_verify(
            2,
            Duration::from_millis(500),
            Duration::from_secs(60),
        ));
    let ctx = execute();
    let report = bounded(ops_core::runbooks::api_down(&ctx, &t))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(image_of(&p, &container), image);
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.step == "rollback" && a.changes.iter().any(|c| c.contains(&image))),
        "{}",
        report.to_markdown()
    );
    assert!(
        report.findings.iter().any(|f| f
            .title
            .ends_with("lasts only until the next deploy from its definition")),
        "{}",
        report.to_markdown()
    );
}
