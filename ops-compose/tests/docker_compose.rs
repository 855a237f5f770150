//! `ComposePlatform` against a project made by a real Compose implementation: Debian's
//! `docker-compose` 1.29 (`scripts/provision` installs it) runs `up -d` on a compose file
//! using the locally built demo-api image, and opsbook acts on what it created. Skips (prints
//! why) without `docker-compose`, an engine or the image, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

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

const WAIT: Duration = Duration::from_secs(180);

fn demo_image() -> String {
    std::env::var("OPSBOOK_IMAGE_DEMO_API").unwrap_or_else(|_| "opsbook/demo-api:local".to_owned())
}

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
}

impl ComposeProject {
    /// `db` and `api` (two replicas, `depends_on: db` healthy, on `default` and `back`).
    fn up(prefix: &str) -> Result<Self, String> {
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
        let image = demo_image();
        let file = format!(
            "version: \"2.4\"\nservices:\n  db:\n    image: {image}\n  api:\n    image: {image}\n    depends_on:\n      db:\n        condition: service_healthy\n    scale: 2\n    networks: [default, back]\nnetworks:\n  back: {{}}\n"
        );
        std::fs::write(dir.join("compose.yml"), file).map_err(|e| e.to_string())?;
        let p = Self {
            name,
            dir,
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
    }
}

macro_rules! compose_or_skip {
    ($prefix:expr) => {
        match ComposeProject::up($prefix) {
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
    let p = compose_or_skip!("lab");
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
    let p = compose_or_skip!("roll");
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
