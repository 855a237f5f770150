//! [`KubeConfig`] and [`KubePlatformBuilder`]: deadlines, concurrency and how to reach the
//! API server (kubeconfig with a chosen context, the in-cluster service account, or a client
//! you built).

use std::path::PathBuf;
use std::time::Duration;

use ops_core::run::RetryPolicy;

use crate::error::{Error, Result};
use crate::platform::KubePlatform;

/// Deadlines and limits of [`KubePlatform`]. Every API request is bounded by
/// `request_timeout`.
///
/// # Examples
/// ```
/// let cfg = ops_k8s::KubeConfig::default();
/// assert_eq!(cfg.request_timeout, std::time::Duration::from_secs(30));
/// assert_eq!(cfg.concurrency, 16);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeConfig {
    /// Deadline of one API request (default 30 s; `OPSBOOK_K8S_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// How many requests a call spanning many objects keeps in flight (a namespace restart,
    /// logs of every pod). Default 16.
    pub concurrency: usize,
    /// How many times a write refused with 409 Conflict is tried again after a fresh read
    /// (default 5).
    pub conflict_retries: u32,
    /// How many times a request answered with 429 or a 5xx (or not answered) is tried again,
    /// with backoff, when trying again cannot change twice (reads, and writes that carry a
    /// resourceVersion). Default 3.
    pub transient_retries: u32,
    /// How often a followed log stream looks for new pods (default 2 s).
    pub pod_poll_interval: Duration,
    /// The field manager written on every change (default `opsbook`).
    pub field_manager: String,
    /// The most bytes an exec may print on stdout, and again on stderr, and the largest file
    /// `copy_from` / `copy_to` move (default 16 MiB). Past it the call fails with
    /// `InvalidInput` instead of holding an unbounded buffer.
    pub exec_output_limit: usize,
}

impl KubeConfig {
    /// The retry policy of every request, ops-core's [`RetryPolicy`]: `transient_retries`
    /// more attempts after the first, waits with full jitter up to 100 ms doubling to 5 s,
    /// and the server's `retryAfterSeconds` (API priority and fairness sends it with a 429)
    /// honoured in place of the backoff, up to 30 s. 409 Conflicts are retried after a fresh
    /// read with the same waits, `conflict_retries` times.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let p = ops_k8s::KubeConfig::default().retry_policy();
    /// assert_eq!(p.max_attempts, 4);
    /// assert_eq!(p.ceiling(1), Duration::from_millis(100));
    /// assert_eq!(p.ceiling(9), Duration::from_secs(5));
    /// assert_eq!(p.max_retry_after, Duration::from_secs(30));
    /// ```
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
            .with_max_attempts(self.transient_retries.saturating_add(1))
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_retry_after(MAX_RETRY_AFTER)
    }
}

/// The longest wait a server's `retryAfterSeconds` gets (a longer one is cut to it).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

impl Default for KubeConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            concurrency: 16,
            conflict_retries: 5,
            transient_retries: 3,
            pod_poll_interval: Duration::from_secs(2),
            field_manager: "opsbook".to_owned(),
            exec_output_limit: 16 * 1024 * 1024,
        }
    }
}

/// Where the client configuration comes from.
#[derive(Debug, Clone, Default)]
enum Source {
    /// `KUBECONFIG` / `~/.kube/config`, falling back to the in-cluster account.
    #[default]
    Infer,
    /// A kubeconfig file (or the default ones) with an optional context.
    Kubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
    },
    /// The pod's service account.
    InCluster,
}

/// Builds a [`KubePlatform`].
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), ops_k8s::Error> {
/// use std::time::Duration;
/// let platform = ops_k8s::KubePlatformBuilder::from_env()
///     .context("prod-eu")
///     .with_request_timeout(Duration::from_secs(10))
///     .build()
///     .await?;
/// assert_eq!(platform.config().request_timeout, Duration::from_secs(10));
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct KubePlatformBuilder {
    config: KubeConfig,
    source: Source,
    client: Option<(kube::Client, String)>,
}

impl std::fmt::Debug for KubePlatformBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubePlatformBuilder")
            .field("config", &self.config)
            .field("source", &self.source)
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl KubePlatformBuilder {
    /// Defaults, overridden by `OPSBOOK_K8S_TIMEOUT_MS`; the cluster is found the way kubectl
    /// finds it (`KUBECONFIG`, `~/.kube/config`), then the in-cluster service account.
    pub fn from_env() -> Self {
        let mut config = KubeConfig::default();
        if let Some(ms) = std::env::var("OPSBOOK_K8S_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            config.request_timeout = Duration::from_millis(ms);
        }
        Self {
            config,
            ..Self::default()
        }
    }

    /// Use this kubeconfig context instead of the file's current one.
    #[must_use]
    pub fn context(mut self, context: impl Into<String>) -> Self {
        let path = match self.source {
            Source::Kubeconfig { path, .. } => path,
            _ => None,
        };
        self.source = Source::Kubeconfig {
            path,
            context: Some(context.into()),
        };
        self
    }

    /// Read this kubeconfig file instead of `KUBECONFIG` / `~/.kube/config`.
    #[must_use]
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        let context = match self.source {
            Source::Kubeconfig { context, .. } => context,
            _ => None,
        };
        self.source = Source::Kubeconfig {
            path: Some(path.into()),
            context,
        };
        self
    }

    /// Use the pod's service account (`KUBERNETES_SERVICE_HOST`, the mounted token and CA).
    #[must_use]
    pub fn in_cluster(mut self) -> Self {
        self.source = Source::InCluster;
        self
    }

    /// Use a client you built; `default_namespace` is used nowhere but in messages. Build it
    /// with `kube::Config::default_retry = false`, or kube's own retries run underneath
    /// ops-k8s's.
    #[must_use]
    pub fn client(mut self, client: kube::Client, default_namespace: impl Into<String>) -> Self {
        self.client = Some((client, default_namespace.into()));
        self
    }

    /// Use this configuration.
    #[must_use]
    pub fn with_config(mut self, config: KubeConfig) -> Self {
        self.config = config;
        self
    }

    /// Set the per-request deadline.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Set the most bytes an exec may print per stream, and the largest file copied.
    ///
    /// # Examples
    /// ```
    /// let builder = ops_k8s::KubePlatformBuilder::from_env().with_exec_output_limit(1 << 20);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn with_exec_output_limit(mut self, bytes: usize) -> Self {
        self.config.exec_output_limit = bytes;
        self
    }

    /// Set how many requests a many-object call keeps in flight (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency.max(1);
        self
    }

    /// Load the client configuration and build the platform. One request is made: API
    /// discovery of `metrics.k8s.io/v1beta1` (within the request timeout and at most 5 s),
    /// which `capabilities().resource_usage` reports. Its failure does not fail the build:
    /// the capability stays unclaimed and `resource_usage` asks again.
    ///
    /// # Errors
    /// [`Error::Config`] when no kubeconfig, context or service account can be loaded.
    pub async fn build(self) -> Result<KubePlatform> {
        let platform = self.client_platform().await?;
        platform.metrics_served().await;
        Ok(platform)
    }

    /// The platform over the client the configuration gives, before any request.
    async fn client_platform(self) -> Result<KubePlatform> {
        if let Some((client, namespace)) = self.client {
            return Ok(KubePlatform::new(client, namespace, self.config));
        }
        let mut kube_config = match self.source {
            Source::Infer => kube::Config::infer().await.map_err(|e| Error::Config {
                reason: "no kubeconfig (KUBECONFIG, ~/.kube/config) and no in-cluster service \
                         account"
                    .to_owned(),
                source: Some(Box::new(e)),
            })?,
            Source::Kubeconfig { path, context } => {
                let options = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                let loaded = match &path {
                    Some(path) => {
                        let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                            Error::Config {
                                reason: format!("cannot read kubeconfig {}", path.display()),
                                source: Some(Box::new(e)),
                            }
                        })?;
                        kube::Config::from_custom_kubeconfig(file, &options).await
                    }
                    None => kube::Config::from_kubeconfig(&options).await,
                };
                loaded.map_err(|e| Error::Config {
                    reason: match context {
                        Some(c) => format!("cannot use kubeconfig context {c:?}"),
                        None => "cannot use the kubeconfig's current context".to_owned(),
                    },
                    source: Some(Box::new(e)),
                })?
            }
            Source::InCluster => kube::Config::incluster().map_err(|e| Error::Config {
                reason: "not running in a pod with a service account".to_owned(),
                source: Some(Box::new(e)),
            })?,
        };
        // Requests are bounded one by one (`request_timeout`); a socket read timeout would
        // also cut followed log streams that are merely quiet, so only connecting is bounded
        // here.
        kube_config.connect_timeout = Some(self.config.request_timeout);
        // One retry policy, ours (`KubeConfig::transient_retries`, inside each request's
        // deadline): kube's default layer would retry 429/503/504 up to 15 times with delays
        // growing towards minutes underneath it, for writes too.
        kube_config.default_retry = false;
        let namespace = kube_config.default_namespace.clone();
        let client = kube::Client::try_from(kube_config).map_err(|e| Error::Config {
            reason: "cannot build a client from the configuration".to_owned(),
            source: Some(Box::new(e)),
        })?;
        Ok(KubePlatform::new(client, namespace, self.config))
    }
}
