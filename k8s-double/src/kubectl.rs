//! The real kubectl, pointed at a double: what the oracle tests compare opsbook with.

use std::path::PathBuf;
use std::process::Command;

/// One kubectl run: exit code and output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubectlRun {
    /// The exit code (-1 when kubectl was killed by a signal).
    pub code: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// `kubectl` with a kubeconfig and a discovery cache directory of its own.
///
/// # Examples
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let server = k8s_double::ApiServer::new().start().await?;
/// let dir = std::env::temp_dir();
/// let kubectl = k8s_double::Kubectl::new(server.write_kubeconfig(&dir)?, dir.join("cache"));
/// let run = kubectl.run(&["get", "deployments", "-A"]).await?;
/// assert_eq!(run.code, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
}

impl Kubectl {
    /// kubectl reading `kubeconfig`, caching discovery in `cache_dir`.
    pub fn new(kubeconfig: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            kubeconfig: kubeconfig.into(),
            cache_dir: cache_dir.into(),
        }
    }

    /// Whether `kubectl` is on the PATH and runs.
    pub fn on_path() -> bool {
        Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Run `kubectl ARGS` off the async runtime's threads.
    ///
    /// # Errors
    /// The I/O error when kubectl cannot be started.
    pub async fn run(&self, args: &[&str]) -> std::io::Result<KubectlRun> {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(std::io::Error::other)??;
        Ok(KubectlRun {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
