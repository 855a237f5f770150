//! One smoke test per service helper and per fault helper, against real containers.
//! Each test owns its containers and network; they run in parallel.

use std::time::Duration;

use ops_tests::{
    ImageRef, Images, ServiceError, Stack, require, start_demo_api, start_postgres,
    start_prometheus, start_redis,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn ping(url: &str) -> Result<String, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_accepts_a_query_in_a_fresh_database() {
    let pg = require!(start_postgres().await);
    let pool = pg.pool().await.unwrap();
    let (database, one): (String, i32) = sqlx::query_as("SELECT current_database(), 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(database, pg.database());
    assert_eq!(one, 1);
    if Images::from_env().postgres.is_default {
        let preload: String = sqlx::query_scalar("SHOW shared_preload_libraries")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(preload.contains("pg_stat_statements"), "{preload}");
        let ext: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            ext, 1,
            "pg_stat_statements is created in every new database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_answers_ping() {
    let redis = require!(start_redis().await);
    assert_eq!(ping(redis.url()).await.unwrap(), "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_api_is_ready_with_its_dependencies_and_names_redis_when_it_stops() {
    let stack = Stack::new();
    let pg = require!(stack.postgres().await);
    let redis = require!(stack.redis().await);
    let api = require!(stack.demo_api(&pg, &redis).await);

    let (status, body) = api.get("/health").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    let (status, body) = api.get("/health/ready").await.unwrap();
    assert_eq!(status, 200, "{body}");

    let (status, body) = api.get("/items").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post("/sessions", &json!({})).await.unwrap();
    assert_eq!(status, 201, "{body}");

    redis.service().unwrap().stop().await.unwrap();
    api.wait_status("/health/ready", 503, WAIT).await.unwrap();
    let (status, body) = api.get("/health/ready").await.unwrap();
    assert_eq!(status, 503);
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["failed"], json!(["redis"]), "{body}");
    assert_eq!(ready["checks"]["postgres"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_demo_api_wires_dependencies_from_separate_stacks() {
    let pg = require!(start_postgres().await);
    let redis = require!(start_redis().await);
    let api = require!(start_demo_api(&pg, &redis).await);
    let (status, body) = api.get("/work").await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_demo_api() {
    let stack = Stack::new();
    let api = require!(stack.demo_api_with(None, None, &[]).await);
    let prometheus = require!(start_prometheus(&api).await);
    prometheus
        .wait_for_value(r#"up{job="demo-api"}"#, 1.0, WAIT)
        .await
        .unwrap();
    api.get("/health").await.unwrap();
    prometheus
        .wait_for_value(
            r#"sum(http_requests_total{path="/health",status="200"}) > bool 0"#,
            1.0,
            WAIT,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_start_keeps_the_host_port() {
    let redis = require!(start_redis().await);
    let service = redis.service().unwrap();
    service.stop().await.unwrap();
    assert!(!service.is_running().await.unwrap());
    assert!(ping(redis.url()).await.is_err());
    service.start().await.unwrap();
    redis.wait_ready(WAIT).await.unwrap();
    assert_eq!(ping(redis.url()).await.unwrap(), "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_the_container_at_once() {
    let redis = require!(start_redis().await);
    let service = redis.service().unwrap();
    service.kill().await.unwrap();
    assert_eq!(service.wait_exit(WAIT).await.unwrap(), 137);
    assert!(ping(redis.url()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_brings_postgres_back_with_its_data() {
    let pg = require!(start_postgres().await);
    let pool = pg.pool().await.unwrap();
    sqlx::query("CREATE TABLE kept (id int)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    pg.service().unwrap().restart().await.unwrap();
    pg.wait_ready(WAIT).await.unwrap();
    let pool = pg.pool().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_freezes_and_unpause_resumes() {
    let redis = require!(start_redis().await);
    let service = redis.service().unwrap();
    service.pause().await.unwrap();
    assert!(service.is_paused().await.unwrap());
    assert_eq!(ping(redis.url()).await, Err("timed out".to_owned()));
    service.unpause().await.unwrap();
    assert!(!service.is_paused().await.unwrap());
    redis.wait_ready(WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_api_faults_unhealthy_errors_and_crash() {
    let stack = Stack::new();
    let api = require!(
        stack
            .demo_api_with(None, None, &[("FAULT_LOG_ERRORS", "true")])
            .await
    );
    api.set_fault(&json!({ "unhealthy": true, "error_ratio": 1.0 }))
        .await
        .unwrap();
    assert_eq!(
        api.get("/health").await.unwrap(),
        (503, r#"{"status":"unhealthy"}"#.to_owned())
    );
    assert_eq!(api.get("/work").await.unwrap().0, 500);
    api.clear_faults().await.unwrap();
    assert_eq!(api.get("/health").await.unwrap().0, 200);

    // The engine's log driver writes asynchronously: poll until the line is there, bounded.
    let find_error = async {
        loop {
            let logs = api.service().logs().await.unwrap();
            let found = logs
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["level"] == "error");
            if let Some(line) = found {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let error_line = tokio::time::timeout(WAIT, find_error)
        .await
        .expect("an error log line");
    assert!(
        error_line["ts"].is_string() && error_line["msg"].is_string(),
        "{error_line}"
    );

    api.set_fault(&json!({ "crash": true })).await.unwrap();
    assert_eq!(api.service().wait_exit(WAIT).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_reported_as_unavailable() {
    require!(ops_tests::ensure_engine().await);
    let mut images = Images::from_env();
    images.redis = ImageRef::parse("opsbook/no-such-image:never-built", false);
    let outcome = Stack::new().with_images(images).redis().await;
    match outcome {
        Err(ServiceError::Unavailable(reason)) => {
            assert!(
                reason.contains("opsbook/no-such-image:never-built"),
                "{reason}"
            );
        }
        Err(ServiceError::Failed(reason)) => panic!("expected unavailable, got failure: {reason}"),
        Ok(_) => panic!("an image that does not exist started"),
    }
}
