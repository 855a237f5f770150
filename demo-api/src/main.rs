//! demo-api: a small HTTP service for drills and integration tests.
//!
//! It has the surface the runbooks look at — liveness (`GET /health`), readiness against
//! Postgres and Redis (`GET /health/ready`), Prometheus metrics (`GET /metrics`), a few
//! work endpoints that touch the database and the cache — and an admin fault switch
//! (`/admin/fault`) that makes it unhealthy, slow, fail a share of requests, crash, grow
//! its memory or write error lines to its log.
//!
//! Configuration (environment): `PORT` (default 8080), `DATABASE_URL`, `REDIS_URL` (each
//! optional: an unset dependency is reported as not configured) and the `FAULT_*`
//! variables described in [`fault::Faults::from_env`]. Logs are JSON lines on stdout.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo run -p demo-api
//! ```
#![forbid(unsafe_code)]

mod config;
mod deps;
mod fault;
mod log;
mod memory;
mod metrics;
mod routes;
mod state;

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;

use crate::config::Config;
use crate::state::AppState;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config =
        Config::from_env().map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
    let faults = config.faults.clone();
    if faults.crash {
        log::error(
            "crash fault set at start, exiting",
            json!({ "exit_code": fault::CRASH_EXIT_CODE }),
        );
        std::process::exit(fault::CRASH_EXIT_CODE);
    }
    if !faults.is_clear() {
        log::warn("faults switched on at start", json!({ "faults": faults }));
    }
    let port = config.port;
    let state = Arc::new(
        AppState::new(config).map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?,
    );
    tokio::spawn(memory::fault_ticker(Arc::clone(&state)));

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("cannot listen on port {port}"))?;
    log::info(
        "demo-api listening",
        json!({
            "port": port,
            "version": env!("CARGO_PKG_VERSION"),
            "postgres": state.deps.postgres_configured(),
            "redis": state.deps.redis_configured(),
            "faults": faults,
        }),
    );
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    log::info("demo-api stopped", json!({}));
    Ok(())
}

/// Resolves on SIGTERM (what `docker stop` sends) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    log::error(
                        "cannot listen for SIGTERM",
                        json!({ "error": err.to_string() }),
                    );
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    log::info("shutdown signal received", json!({}));
}
