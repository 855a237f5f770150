//! Starting the double: the builder, the running server handle and the stdin-bound entry point.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cluster::Cluster;
use crate::controllers::{self, Sim};
use crate::error::{Error, Result};
use crate::routes;
use crate::store::State;

/// State shared by the HTTP handlers, the controller loop and [`Cluster`] handles.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    shut_down: AtomicBool,
    pub(crate) address: OnceLock<String>,
}

impl Shared {
    pub(crate) fn new(sim: Sim) -> Arc<Self> {
        let mut state = State::new(sim);
        controllers::create_nodes(&mut state);
        Arc::new(Self {
            state: Mutex::new(state),
            shut_down: AtomicBool::new(false),
            address: OnceLock::new(),
        })
    }

    /// The store; a panic elsewhere while holding the lock does not make it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }
}

/// Builder for the API server double.
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), k8s_double::Error> {
/// use std::time::Duration;
/// let server = k8s_double::ApiServer::new().tick(Duration::from_millis(20)).nodes(3).start().await?;
/// println!("{}", server.url());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ApiServer {
    tick: Duration,
    nodes: usize,
    metrics: bool,
    crash_backoff: Duration,
    listen: SocketAddr,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(20),
            nodes: 3,
            metrics: true,
            crash_backoff: Duration::from_millis(250),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl ApiServer {
    /// Defaults: 20 ms ticks, 3 nodes, metrics enabled, listening on `127.0.0.1:0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// How often the controller simulation steps.
    #[must_use]
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// How many simulated nodes (`node-1`..) DaemonSets run on.
    #[must_use]
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }

    /// Whether `metrics.k8s.io/v1beta1` is served.
    #[must_use]
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// How long a crashing container waits before its next restart.
    #[must_use]
    pub fn crash_backoff(mut self, backoff: Duration) -> Self {
        self.crash_backoff = backoff;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Binds, starts serving and starts the controller loop.
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    pub async fn start(self) -> Result<RunningServer> {
        let sim = Sim {
            nodes: self.nodes,
            metrics: self.metrics,
            crash_backoff: self.crash_backoff,
            ..Sim::default()
        };
        let shared = Shared::new(sim);
        let listener = TcpListener::bind(self.listen).await.map_err(Error::Io)?;
        let addr = listener.local_addr().map_err(Error::Io)?;
        let _ = shared.address.set(addr.to_string());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = routes::router(Arc::clone(&shared));
        let serve_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
                serve_shared.shut_down.store(true, Ordering::Relaxed);
            };
            if let Err(err) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %err, "k8s double stopped serving");
            }
        });
        let loop_shared = Arc::clone(&shared);
        let tick = self.tick;
        tokio::spawn(async move {
            while !loop_shared.is_shut_down() {
                // A full tick of rest after every step, however long the step took: requests
                // always get the lock between steps, as they get a real API server's time.
                tokio::time::sleep(tick).await;
                let mut state = loop_shared.lock();
                if !state.sim.paused {
                    controllers::step(&mut state);
                }
            }
        });
        Ok(RunningServer {
            addr,
            cluster: Cluster::new(shared),
            stop: Some(stop_tx),
        })
    }
}

/// A started double; shuts down when dropped.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    cluster: Cluster,
    stop: Option<oneshot::Sender<()>>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle on the state, for seeding, hand-crafted states and assertions.
    pub fn cluster(&self) -> Cluster {
        self.cluster.clone()
    }

    /// Writes `dir/kubeconfig` with one cluster, user and context named `double` (namespace `default`).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn write_kubeconfig(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig(&self.url())).map_err(Error::Io)?;
        Ok(path)
    }

    /// Stops serving and the controller loop.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.cluster
            .shared()
            .shut_down
            .store(true, Ordering::Relaxed);
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A kubeconfig for `url` with context `double` and namespace `default`.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {url}\nusers:\n- name: double\n  user: {{}}\ncontexts:\n- name: double\n  context:\n    cluster: double\n    user: double\n    namespace: default\ncurrent-context: double\n"
    )
}

/// Runs a double with `builder`'s settings, prints `listening on http://...` on stdout and serves
/// until stdin reaches end of file, so a parent process can run it as a child and stop it by
/// closing the pipe (a benchmark can re-execute itself this way).
///
/// # Errors
/// [`Error::Io`] when binding or reading stdin fails.
pub async fn serve_until_stdin_closes(builder: ApiServer) -> Result<()> {
    let server = builder.start().await?;
    println!("listening on {}", server.url());
    let mut stdin = tokio::io::stdin();
    let mut buf = [0_u8; 256];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => return Err(Error::Io(err)),
        }
    }
    drop(server);
    Ok(())
}
