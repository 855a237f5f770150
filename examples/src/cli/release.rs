//! The release subcommands' options: `deploy`, `deployment-failure` (no options beyond the
//! run's) and `maintenance`, and how their flags become the runbooks' typed arguments.

use std::path::PathBuf;

use clap::Args;
use ops_core::platform::ImageUpdate;
use ops_core::runbooks::MaintenancePlan;

use super::RunOpts;
use super::backends::ConfigProblem;

/// `deploy`'s options (and the release part of `maintenance`).
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// How to run.
    #[command(flatten)]
    pub run: RunOpts,
    /// The image to release, e.g. `registry.example.com/shop/api:1.4.2` or `…@sha256:…`.
    #[arg(long)]
    pub image: String,
    /// The container to change when the workload has several.
    #[arg(long)]
    pub container: Option<String>,
    /// Why, recorded as the revision's change cause (Kubernetes: `kubernetes.io/change-cause`).
    #[arg(long)]
    pub cause: Option<String>,
}

impl DeployArgs {
    /// The release these flags describe.
    ///
    /// # Errors
    /// [`ConfigProblem`] naming the flag when the image, container or cause is not valid.
    pub(crate) fn update(&self) -> Result<ImageUpdate, ConfigProblem> {
        let bad = |flag: &str, value: &str, e: ops_core::OpsError| {
            ConfigProblem(format!("--{flag} {value:?}: {}", e.chain()))
        };
        let image = self
            .image
            .parse::<ops_core::platform::ImageRef>()
            .map_err(|e| ConfigProblem(format!("--image {:?}: {e}", self.image)))?;
        let mut update = ImageUpdate::new(image);
        if let Some(c) = &self.container {
            update = update.in_container(c).map_err(|e| bad("container", c, e))?;
        }
        if let Some(cause) = &self.cause {
            update = update
                .with_change_cause(cause)
                .map_err(|e| bad("cause", cause, e))?;
        }
        Ok(update)
    }
}

/// `maintenance`'s options: the release, and what to do around it.
#[derive(Debug, Clone, Args)]
pub struct MaintenanceArgs {
    /// The release (`--image`, `--container`, `--cause`) and how to run.
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Scale down to this many instances for the window (scaled back afterwards, always).
    #[arg(long, value_name = "N")]
    pub scale_to: Option<u32>,
    /// Back up this database first (a denied or failed backup stops the window).
    #[arg(long, value_name = "NAME")]
    pub backup_database: Option<String>,
    /// Where the backup goes.
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub backup_dir: PathBuf,
}

impl MaintenanceArgs {
    /// The window these flags describe.
    ///
    /// # Errors
    /// As [`DeployArgs::update`]; a database name that is not an identifier.
    pub(crate) fn plan(&self) -> Result<MaintenancePlan, ConfigProblem> {
        let mut plan = MaintenancePlan::new(self.deploy.update()?);
        if let Some(n) = self.scale_to {
            plan = plan.with_scale_to(n);
        }
        if let Some(db) = &self.backup_database {
            let name = db.parse().map_err(|e: ops_core::OpsError| {
                ConfigProblem(format!("--backup-database {db:?}: {}", e.chain()))
            })?;
            plan = plan.with_backup(name, &self.backup_dir);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::{Cli, Command};

    #[test]
    fn flags_become_the_typed_release_and_window() {
        let cli = Cli::try_parse_from([
            "opsbook",
            "maintenance",
            "--image",
            "shop/api:2",
            "--cause",
            "release 2",
            "--scale-to",
            "1",
            "--backup-database",
            "app",
        ])
        .unwrap();
        let Command::Maintenance(m) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        let plan = m.plan().unwrap();
        assert_eq!(plan.release.image.to_string(), "shop/api:2");
        assert_eq!(plan.release.change_cause(), Some("release 2"));
        assert_eq!(plan.scale_to, Some(1));
        assert!(plan.backup.is_some());
    }

    #[test]
    fn a_bad_image_or_name_is_a_config_problem_naming_the_flag() {
        for (flag, value) in [
            ("--image", "Shop/API:latest"),
            ("--container", "not a name"),
            ("--backup-database", ""),
        ] {
            let mut args = vec!["opsbook", "maintenance", "--image", "shop/api:2"];
            if flag == "--image" {
                args[3] = value;
            } else {
                args.extend([flag, value]);
            }
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Maintenance(m) = &cli.command else {
                panic!()
            };
            let err = m.plan().unwrap_err();
            assert!(err.0.starts_with(flag), "{flag}: {}", err.0);
        }
    }
}
