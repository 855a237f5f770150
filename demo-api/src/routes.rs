//! HTTP routes: health, metrics, work endpoints and the admin fault switch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use redis::AsyncCommands as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::deps::Check;
use crate::fault::{CRASH_EXIT_CODE, FaultPatch};
use crate::log;
use crate::memory;
use crate::state::AppState;

type Shared = Arc<AppState>;

/// Redis key caching the item list.
pub(crate) const ITEMS_CACHE_KEY: &str = "cache:items";
/// Seconds `cache:items` lives.
const ITEMS_CACHE_TTL_S: u64 = 30;
/// Seconds a `session:<id>` key lives.
const SESSION_TTL_S: u64 = 3600;

/// The whole application.
pub(crate) fn router(state: Shared) -> Router {
    let work = Router::new()
        .route("/items", get(list_items).post(create_item))
        .route("/sessions", axum::routing::post(create_session))
        .route("/work", get(work))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            inject_errors,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .merge(work)
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            inject_latency,
        ))
        .route("/metrics", get(metrics))
        .route(
            "/admin/fault",
            get(get_fault).post(set_fault).delete(clear_fault),
        )
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

/// Records metrics for every request and logs it (errors always, `/metrics` never).
async fn track(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status();
    state
        .metrics
        .observe(method.as_str(), &path, status.as_u16(), seconds);
    let fields = json!({
        "method": method.as_str(),
        "path": path,
        "status": status.as_u16(),
        "duration_ms": (seconds * 1_000_000.0).round() / 1000.0,
    });
    if status.is_server_error() {
        log::error("request failed", fields);
    } else if path != "/metrics" {
        log::info("request", fields);
    }
    response
}

/// The slow fault: sleeps before handling.
async fn inject_latency(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let slow_ms = state.faults.get().slow_ms;
    if slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slow_ms)).await;
    }
    next.run(request).await
}

/// The error-ratio and log-errors faults on work endpoints.
async fn inject_errors(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let faults = state.faults.get();
    if faults.log_errors {
        log::error(
            "simulated failure while handling request",
            json!({ "fault": "log_errors", "path": request.uri().path() }),
        );
    }
    if faults.fails(fastrand::f64()) {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure (error_ratio fault)",
        );
    }
    next.run(request).await
}

/// `GET /health`: liveness.
async fn health(State(state): State<Shared>) -> Response {
    if state.faults.get().unhealthy {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unhealthy" })),
        )
            .into_response();
    }
    Json(json!({
        "status": "ok",
        "uptime_s": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// `GET /health/ready`: 200 when every configured dependency answers, 503 naming those
/// that do not.
async fn ready(State(state): State<Shared>) -> Response {
    let (postgres, redis) = tokio::join!(state.deps.check_postgres(), state.deps.check_redis());
    let mut failed = Vec::new();
    let mut checks = serde_json::Map::new();
    for (name, check) in [("postgres", postgres), ("redis", redis)] {
        let text = match check {
            Check::NotConfigured => "not configured".to_owned(),
            Check::Ok => "ok".to_owned(),
            Check::Down(reason) => {
                log::error(
                    "dependency check failed",
                    json!({ "dependency": name, "error": reason }),
                );
                failed.push(name);
                format!("down: {reason}")
            }
        };
        checks.insert(name.to_owned(), Value::String(text));
    }
    if state.faults.get().unhealthy {
        failed.push("unhealthy fault");
    }
    if failed.is_empty() {
        Json(json!({ "status": "ready", "checks": checks })).into_response()
    } else {
        let body = json!({ "status": "not ready", "failed": failed, "checks": checks });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<Shared>) -> Response {
    let text = state
        .metrics
        .render(memory::resident_bytes(), state.started_unix);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /admin/fault`: the faults in effect.
async fn get_fault(State(state): State<Shared>) -> Response {
    Json(state.faults.get()).into_response()
}

/// `POST /admin/fault`: switch faults on or off; fields left out keep their value.
/// With `"crash": true` the process exits with code 3 right after replying.
async fn set_fault(State(state): State<Shared>, body: axum::body::Bytes) -> Response {
    let patch: FaultPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("invalid fault JSON: {err}"),
            );
        }
    };
    let faults = match state.faults.update(&patch) {
        Ok(faults) => faults,
        Err(reason) => return error_response(StatusCode::BAD_REQUEST, &reason),
    };
    log::warn("faults changed", json!({ "faults": faults }));
    if faults.crash {
        log::error(
            "crash fault: exiting",
            json!({ "exit_code": CRASH_EXIT_CODE }),
        );
        tokio::spawn(async {
            // Let the reply reach the client first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::process::exit(CRASH_EXIT_CODE);
        });
    }
    Json(faults).into_response()
}

/// `DELETE /admin/fault`: every fault off and the memory-growth ballast freed.
async fn clear_fault(State(state): State<Shared>) -> Response {
    state.faults.clear();
    state.ballast.release();
    log::info("faults cleared", json!({}));
    Json(state.faults.get()).into_response()
}

/// A row of the `items` table.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
struct Item {
    id: i64,
    name: String,
}

/// Body of `POST /items`.
#[derive(Debug, Deserialize)]
struct NewItem {
    name: String,
}

/// `GET /items`: the items from Postgres, cached in Redis under `cache:items`. A cache
/// failure is logged and the database answers alone.
async fn list_items(State(state): State<Shared>) -> Result<Response, AppError> {
    let pool = postgres(&state)?;
    ensure_schema(&state, pool).await?;
    if let Some(redis) = &state.deps.redis {
        let cached: redis::RedisResult<Option<String>> = async {
            let mut conn = redis.connection().await?;
            conn.get(ITEMS_CACHE_KEY).await
        }
        .await;
        match cached {
            Ok(Some(text)) => {
                if let Ok(items) = serde_json::from_str::<Vec<Item>>(&text) {
                    return Ok(Json(json!({ "items": items, "source": "cache" })).into_response());
                }
            }
            Ok(None) => {}
            Err(err) => log::error(
                "cache read failed",
                json!({ "dependency": "redis", "error": err.to_string() }),
            ),
        }
    }
    let items: Vec<Item> = sqlx::query_as("SELECT id, name FROM items ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(|err| AppError::dependency("postgres", &err))?;
    if let Some(redis) = &state.deps.redis {
        let text = serde_json::to_string(&items).unwrap_or_default();
        let stored: redis::RedisResult<()> = async {
            let mut conn = redis.connection().await?;
            conn.set_ex(ITEMS_CACHE_KEY, text, ITEMS_CACHE_TTL_S).await
        }
        .await;
        if let Err(err) = stored {
            log::error(
                "cache write failed",
                json!({ "dependency": "redis", "error": err.to_string() }),
            );
        }
    }
    Ok(Json(json!({ "items": items, "source": "database" })).into_response())
}

/// `POST /items` `{"name": ..}`: inserts an item and drops the cached list.
async fn create_item(
    State(state): State<Shared>,
    Json(new): Json<NewItem>,
) -> Result<Response, AppError> {
    let pool = postgres(&state)?;
    ensure_schema(&state, pool).await?;
    let item: Item = sqlx::query_as("INSERT INTO items (name) VALUES ($1) RETURNING id, name")
        .bind(&new.name)
        .fetch_one(pool)
        .await
        .map_err(|err| AppError::dependency("postgres", &err))?;
    if let Some(redis) = &state.deps.redis {
        let dropped: redis::RedisResult<()> = async {
            let mut conn = redis.connection().await?;
            conn.del(ITEMS_CACHE_KEY).await
        }
        .await;
        if let Err(err) = dropped {
            log::error(
                "cache invalidation failed",
                json!({ "dependency": "redis", "error": err.to_string() }),
            );
        }
    }
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

/// `POST /sessions`: stores `session:<id>` in Redis for an hour and returns the id.
async fn create_session(State(state): State<Shared>) -> Result<Response, AppError> {
    let redis = state
        .deps
        .redis
        .as_ref()
        .ok_or(AppError::NotConfigured("redis"))?;
    let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let key = format!("session:{id}");
    let value = json!({ "created": jiff::Timestamp::now().to_string() }).to_string();
    let mut conn = redis
        .connection()
        .await
        .map_err(|err| AppError::dependency("redis", &err))?;
    let () = conn
        .set_ex(&key, value, SESSION_TTL_S)
        .await
        .map_err(|err| AppError::dependency("redis", &err))?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "key": key }))).into_response())
}

/// `GET /work`: one database query and one cache write, both required.
async fn work(State(state): State<Shared>) -> Result<Response, AppError> {
    let pool = postgres(&state)?;
    let redis = state
        .deps
        .redis
        .as_ref()
        .ok_or(AppError::NotConfigured("redis"))?;
    let now: String = sqlx::query_scalar("SELECT now()::text")
        .fetch_one(pool)
        .await
        .map_err(|err| AppError::dependency("postgres", &err))?;
    let mut conn = redis
        .connection()
        .await
        .map_err(|err| AppError::dependency("redis", &err))?;
    let count: u64 = conn
        .incr("work:count", 1)
        .await
        .map_err(|err| AppError::dependency("redis", &err))?;
    Ok(Json(json!({ "database_time": now, "work_count": count })).into_response())
}

fn postgres(state: &AppState) -> Result<&sqlx::PgPool, AppError> {
    state
        .deps
        .postgres
        .as_ref()
        .ok_or(AppError::NotConfigured("postgres"))
}

/// Creates and seeds the `items` table once per process.
async fn ensure_schema(state: &AppState, pool: &sqlx::PgPool) -> Result<(), AppError> {
    state
        .schema
        .get_or_try_init(|| async {
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS items (
                     id bigserial PRIMARY KEY,
                     name text NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO items (name)
                     SELECT 'item-' || n FROM generate_series(1, 5) AS n
                     WHERE NOT EXISTS (SELECT 1 FROM items);",
            )
            .execute(pool)
            .await
            .map(|_| ())
        })
        .await
        .map_err(|err| AppError::dependency("postgres", &err))?;
    Ok(())
}

/// A failed work request.
#[derive(Debug)]
enum AppError {
    /// The endpoint needs a dependency that has no URL.
    NotConfigured(&'static str),
    /// A dependency failed.
    Dependency { name: &'static str, reason: String },
}

impl AppError {
    fn dependency(name: &'static str, err: &dyn std::fmt::Display) -> Self {
        Self::Dependency {
            name,
            reason: err.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::NotConfigured(name) => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{name} is not configured"),
            ),
            Self::Dependency { name, reason } => {
                log::error(
                    "dependency failed",
                    json!({ "dependency": name, "error": reason }),
                );
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("{name} failed: {reason}"),
                )
            }
        }
    }
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::config::Config;
    use crate::fault::Faults;

    /// Serves the router on a loopback port and returns its address.
    async fn serve(faults: Faults) -> std::net::SocketAddr {
        let config = Config {
            port: 0,
            database_url: None,
            redis_url: None,
            faults,
        };
        let state = Arc::new(AppState::new(config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        addr
    }

    /// One HTTP/1.0 request; returns the status and the body.
    async fn call(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
            .await
            .unwrap()
            .unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap();
        (status, body)
    }

    #[tokio::test]
    async fn health_reports_ok_then_unhealthy_when_switched() {
        let addr = serve(Faults::default()).await;
        let (status, body) = call(addr, "GET", "/health", "").await;
        assert_eq!(status, 200);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["status"], "ok");
        assert_eq!(value["version"], env!("CARGO_PKG_VERSION"));
        assert!(value["uptime_s"].is_u64());

        let (status, _) = call(addr, "POST", "/admin/fault", r#"{"unhealthy":true}"#).await;
        assert_eq!(status, 200);
        assert_eq!(
            call(addr, "GET", "/health", "").await,
            (503, r#"{"status":"unhealthy"}"#.to_owned())
        );
        let (status, body) = call(addr, "GET", "/health/ready", "").await;
        assert_eq!(status, 503);
        assert!(body.contains("unhealthy fault"));

        let (status, body) = call(addr, "DELETE", "/admin/fault", "").await;
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<Faults>(&body).unwrap(),
            Faults::default()
        );
        assert_eq!(call(addr, "GET", "/health", "").await.0, 200);
    }

    #[tokio::test]
    async fn ready_without_dependencies_is_ready() {
        let addr = serve(Faults::default()).await;
        let (status, body) = call(addr, "GET", "/health/ready", "").await;
        assert_eq!(status, 200);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["checks"]["postgres"], "not configured");
        assert_eq!(value["checks"]["redis"], "not configured");
    }

    #[tokio::test]
    async fn error_ratio_one_fails_every_work_request_and_counts_it() {
        let addr = serve(Faults {
            error_ratio: 1.0,
            ..Faults::default()
        })
        .await;
        let (status, body) = call(addr, "GET", "/work", "").await;
        assert_eq!(status, 500);
        assert!(body.contains("error_ratio"));
        let (_, metrics) = call(addr, "GET", "/metrics", "").await;
        assert!(
            metrics.contains(r#"http_requests_total{method="GET",path="/work",status="500"} 1"#)
        );
        assert!(metrics.contains("process_resident_memory_bytes"));
    }

    #[tokio::test]
    async fn bad_fault_requests_are_rejected() {
        let addr = serve(Faults::default()).await;
        assert_eq!(
            call(addr, "POST", "/admin/fault", r#"{"error_ratio":3}"#)
                .await
                .0,
            400
        );
        assert_eq!(call(addr, "POST", "/admin/fault", "{").await.0, 400);
        let (status, body) = call(addr, "GET", "/admin/fault", "").await;
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<Faults>(&body).unwrap(),
            Faults::default()
        );
    }

    #[tokio::test]
    async fn work_endpoints_without_dependencies_answer_503() {
        let addr = serve(Faults::default()).await;
        let (status, body) = call(addr, "POST", "/sessions", "").await;
        assert_eq!(status, 503);
        assert!(body.contains("redis is not configured"));
        assert_eq!(call(addr, "GET", "/items", "").await.0, 503);
    }
}
