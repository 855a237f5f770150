//! [`provider_api`]: a provider API (payment, email, LLM) that fails each way a provider
//! fails, served on loopback by axum, for `provider_failure`'s real-server tests.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Serves a provider API on `127.0.0.1` and returns its base URL (`http://127.0.0.1:PORT`).
///
/// Routes: `/v1/health` answers 200 to `Authorization: Bearer {token}` and 401 otherwise
/// (echoing a wrong credential in its body, as careless APIs do); `/limited` 429 with
/// `Retry-After: 120`; `/limited-until` 429 with `Retry-After` 90 s ahead as an HTTP-date;
/// `/limited-garbage` 429 with `Retry-After: after lunch`; `/down` 503; `/slow` answers after
/// 5 s; `/ok` 200.
///
/// # Panics
/// When no loopback port can be bound.
///
/// # Examples
/// ```no_run
/// # async fn demo() {
/// let base = ops_tests::provider_api("sk_test").await;
/// assert!(base.starts_with("http://127.0.0.1:"));
/// # }
/// ```
#[allow(clippy::unwrap_used, reason = "test support fails loudly")]
pub async fn provider_api(token: &str) -> String {
    let want = format!("Bearer {token}");
    let router = Router::new()
        .route(
            "/v1/health",
            get(|headers: HeaderMap| async move {
                match headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(v) if v == want => (StatusCode::OK, "ok".to_owned()).into_response(),
                    Some(v) => {
                        (StatusCode::UNAUTHORIZED, format!("bad credential {v}")).into_response()
                    }
                    None => StatusCode::UNAUTHORIZED.into_response(),
                }
            }),
        )
        .route(
            "/limited",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "120")],
                )
            }),
        )
        .route(
            "/limited-until",
            get(|| async {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
                let date = at
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .strftime("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string();
                (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, date)])
            }),
        )
        .route(
            "/limited-garbage",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "after lunch")],
                )
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/ok", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}
