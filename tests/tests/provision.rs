//! `scripts/provision` installs what a new machine lacks, decided from the programs the
//! project runs (README: "Both provision what they need by themselves").
//!
//! These tests read the script's `--check` plan, which changes nothing, on machines that
//! lack the tools: a PATH with none of them, a PATH with only a `docker` client (the gap
//! that once hid behind a green CI), and a fresh Debian container from the local base image
//! with the checkout mounted read-only. A last test fails when code starts running a
//! program that the script does not know how to install.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ops_tests::{ServiceError, ensure_engine, require};

/// Every package a new Debian machine needs for the drill and the suite.
const NEW_MACHINE_PACKAGES: [&str; 8] = [
    "docker.io",
    "debootstrap",
    "postgresql-client",
    "redis-tools",
    "redis-server",
    "curl",
    "kubernetes-client",
    "docker-compose",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf()
}

/// `[provision] plan: ...` lines of a `--check` run, with the prefix removed.
fn plan_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[provision] plan: "))
        .map(str::to_owned)
        .collect()
}

/// The packages of the plan's `install` line.
fn planned_installs(plan: &[String]) -> BTreeSet<String> {
    plan.iter()
        .filter_map(|l| l.strip_prefix("install "))
        .flat_map(|l| l.split_whitespace().map(str::to_owned))
        .collect()
}

/// Runs `bash scripts/provision --check` with nothing in the environment but `PATH=path`.
fn check_with_path(path: &Path) -> Vec<String> {
    let out = Command::new("/bin/bash")
        .arg(root().join("scripts/provision"))
        .arg("--check")
        .env_clear()
        .env("PATH", path)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "--check failed ({}): {stdout}{stderr}",
        out.status
    );
    plan_lines(&stdout)
}

/// A temporary directory of fake programs (each exits 1), removed on drop.
struct FakeBin(PathBuf);

impl FakeBin {
    fn with(programs: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("opsbook-fakebin-{:08x}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for program in programs {
            let file = dir.join(program);
            std::fs::write(&file, "#!/bin/sh\nexit 1\n").expect("write fake program");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                .expect("make the fake program executable");
        }
        Self(dir)
    }
}

impl Drop for FakeBin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_machine_with_none_of_the_tools_gets_every_package_an_engine_and_the_images() {
    let empty = FakeBin::with(&[]);
    let plan = check_with_path(&empty.0);
    let installs = planned_installs(&plan);
    for package in NEW_MACHINE_PACKAGES {
        assert!(
            installs.contains(package),
            "the plan does not install {package}: {plan:?}"
        );
    }
    assert!(
        plan.iter()
            .any(|l| l == "start dockerd" || l == "start docker.service"),
        "the plan does not start an engine: {plan:?}"
    );
    assert!(
        plan.iter().any(|l| l.contains("build")),
        "the plan does not build the images: {plan:?}"
    );
}

#[test]
fn a_docker_client_without_dockerd_still_installs_docker_io() {
    // Every program present but the engine: exactly the machine on which the old check
    // ("is there a `docker` command?") skipped the install and waited for a dockerd that
    // did not exist.
    let bin = FakeBin::with(&[
        "docker",
        "debootstrap",
        "pg_dump",
        "pg_restore",
        "psql",
        "redis-cli",
        "redis-check-rdb",
        "redis-server",
        "curl",
        "kubectl",
        "docker-compose",
    ]);
    let plan = check_with_path(&bin.0);
    let mut installs = planned_installs(&plan);
    // Where the archive keyring file is missing (Ubuntu), it is planned too.
    installs.remove("debian-archive-keyring");
    assert_eq!(
        installs,
        BTreeSet::from(["docker.io".to_owned()]),
        "plan: {plan:?}"
    );
}

#[tokio::test]
async fn every_program_a_fresh_debian_lacks_is_planned_inside_a_container() {
    // The locally built base image is a fresh Debian 12 minbase (plus the service packages
    // the images run), with no Docker and no debootstrap.
    require!(ensure_engine().await);
    let image = std::env::var("OPSBOOK_IMAGE_BASE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "opsbook/debian-base:bookworm".to_owned());
    let present = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .expect("run docker");
    if !present.status.success() {
        ops_tests::skip_or_fail(&ServiceError::Unavailable(format!(
            "the base image {image} is not built"
        )));
        return;
    }
    let mount = format!("{}:/src:ro", root().display());
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &mount,
            &image,
            "bash",
            "/src/scripts/provision",
            "--check",
        ])
        .output()
        .expect("run docker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--check in {image} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = plan_lines(&stdout);
    let installs = planned_installs(&plan);
    for package in ["docker.io", "debootstrap", "curl"] {
        assert!(
            installs.contains(package),
            "{image}: the plan does not install {package}: {plan:?}"
        );
    }
    assert!(
        plan.iter().any(|l| l == "start dockerd"),
        "{image}: the plan does not start dockerd: {plan:?}"
    );
}

/// The programs `scripts/provision` knows how to install (its `PROGRAMS=(name=package ...)`).
fn provisioned_programs() -> BTreeSet<String> {
    let script = std::fs::read_to_string(root().join("scripts/provision")).expect("read script");
    let start = script
        .find("PROGRAMS=(")
        .expect("PROGRAMS=( in scripts/provision")
        + 10;
    let end = start + script[start..].find(')').expect("PROGRAMS closes");
    script[start..end]
        .split_whitespace()
        .filter_map(|entry| entry.split_once('=').map(|(program, _)| program.to_owned()))
        .collect()
}

/// Every program named by a string literal passed to `Command::new` in the Rust sources.
fn programs_run_by_code() -> BTreeSet<(String, PathBuf)> {
    fn walk(dir: &Path, found: &mut BTreeSet<(String, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    walk(&path, found);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (i, _) in text.match_indices("Command::new(\"") {
                    let rest = &text[i + 14..];
                    if let Some(end) = rest.find('"') {
                        found.insert((rest[..end].to_owned(), path.clone()));
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&root(), &mut found);
    found
}

#[test]
fn every_program_the_code_runs_is_provisioned() {
    // Part of every Debian system (Essential: yes packages: bash, dash, findutils, coreutils,
    // grep, libc-bin, tar), so never installed.
    const ESSENTIAL: [&str; 11] = [
        "bash",
        "/bin/bash",
        "sh",
        "xargs",
        "env",
        "true",
        "grep",
        "sha256sum",
        "sync",
        "getconf",
        "tar",
    ];
    let provisioned = provisioned_programs();
    assert!(provisioned.contains("dockerd"), "{provisioned:?}");
    let run = programs_run_by_code();
    assert!(
        run.iter().any(|(p, _)| p == "pg_dump"),
        "the scan found no Command::new(\"pg_dump\"): {run:?}"
    );
    let unprovisioned: Vec<_> = run
        .iter()
        .filter(|(p, _)| !provisioned.contains(p) && !ESSENTIAL.contains(&p.as_str()))
        .collect();
    assert!(
        unprovisioned.is_empty(),
        "programs run by code that scripts/provision does not install (add them to PROGRAMS): \
         {unprovisioned:?}"
    );
}
