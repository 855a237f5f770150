//! The HTTP surface: one handler that parses Kubernetes REST paths and dispatches to the store,
//! watches, logs, metrics and discovery, recording every request.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::discovery;
use crate::error::ApiError;
use crate::json;
use crate::metrics;
use crate::patch::PatchKind;
use crate::podlogs::{self, LogQuery, LogReply};
use crate::requests::RecordedRequest;
use crate::resources::{self, Resource};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::{DeleteOptions, Part};
use crate::watch::{self, WatchParams};

/// The largest request body accepted.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The router serving the whole API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a request is answered with.
enum Reply {
    Json(u16, Value),
    Text(u16, String),
    Stream(Body, &'static str),
}

impl From<ApiError> for Reply {
    fn from(err: ApiError) -> Self {
        Self::Json(err.code(), err.to_status())
    }
}

/// A request as the dispatcher sees it.
struct Req {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    content_type: String,
    body: Bytes,
}

impl Req {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.query.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let Some((ns, pod)) = crate::exec::target(&seg) {
        // An upgrade: the body is the connection, so it is not read here.
        let (status, response) =
            match crate::exec::serve(&shared, &mut parts, &ns, &pod, &query).await {
                Ok(answer) => answer,
                Err(err) => (
                    err.code(),
                    respond(
                        err.code(),
                        "application/json",
                        Body::from(err.to_status().to_string()),
                    ),
                ),
            };
        record(&shared, &parts, path, raw_query, Bytes::new(), status);
        return response;
    }
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let req = Req {
        method: parts.method.clone(),
        segments,
        query,
        content_type: header(&parts.headers, header::CONTENT_TYPE).unwrap_or_default(),
        body: body.clone(),
    };
    let reply =
        injected_fault(&shared, &parts.method, &path).unwrap_or_else(|| dispatch(&shared, &req));
    let (status, response) = match reply {
        Reply::Json(code, value) => (
            code,
            respond(code, "application/json", Body::from(value.to_string())),
        ),
        Reply::Text(code, text) => (code, respond(code, "text/plain", Body::from(text))),
        Reply::Stream(body, content_type) => (200, respond(200, content_type, body)),
    };
    record(&shared, &parts, path, raw_query, body, status);
    response
}

/// A failure registered with [`crate::Cluster::fail_requests`] for this request, if any.
fn injected_fault(shared: &Shared, method: &Method, path: &str) -> Option<Reply> {
    let mut state = shared.lock();
    let fault = state
        .sim
        .request_faults
        .iter_mut()
        .find(|(m, fragment, _, left)| {
            *left > 0 && m == method.as_str() && path.contains(fragment.as_str())
        })?;
    fault.3 -= 1;
    let code = fault.2;
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    let mut err = ApiError::new(code, reason, format!("injected by the double: {reason}"));
    if code == 429 {
        // The API server's priority-and-fairness refusals say when to come back.
        err = err.with_details(json!({"retryAfterSeconds": 1}));
    }
    Some(Reply::Json(code, err.to_status()))
}

/// Appends one answered request to the request log.
fn record(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    path: String,
    query: String,
    body: Bytes,
    status: u16,
) {
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path,
        query,
        content_type: header(&parts.headers, header::CONTENT_TYPE),
        accept: header(&parts.headers, header::ACCEPT),
        user_agent: header(&parts.headers, header::USER_AGENT),
        json: serde_json::from_slice(&body).ok(),
        body,
        status,
    };
    tracing::debug!(method = %recorded.method, path = %recorded.path, status, "k8s double request");
    shared.lock().requests.push(recorded);
}

fn respond(code: u16, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    .with_details(json!({}))
}

fn dispatch(shared: &Arc<Shared>, req: &Req) -> Reply {
    let metrics = shared.lock().sim.metrics;
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let discovery_get = req.method == Method::GET;
    match seg.as_slice() {
        ["version"] if discovery_get => Reply::Json(200, discovery::version()),
        ["healthz" | "livez" | "readyz"] => Reply::Text(200, "ok".to_owned()),
        ["api"] if discovery_get => Reply::Json(
            200,
            discovery::core_versions(shared.address.get().map_or("127.0.0.1", String::as_str)),
        ),
        ["apis"] if discovery_get => Reply::Json(200, discovery::groups(metrics)),
        ["apis", group] if discovery_get => discovery::group(group, metrics)
            .map_or_else(|| not_found_path().into(), |d| Reply::Json(200, d)),
        ["api", "v1", rest @ ..] => resource_request(shared, req, "", "v1", rest, metrics),
        ["apis", group, version, rest @ ..] => {
            resource_request(shared, req, group, version, rest, metrics)
        }
        _ => not_found_path().into(),
    }
}

/// A parsed resource path.
struct Target<'a> {
    res: &'static Resource,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_target<'a>(group: &str, version: &str, rest: &[&'a str]) -> Option<Target<'a>> {
    let (namespace, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] if *plural != "status" && *plural != "finalize" => {
            let mut v: Vec<&str> = vec![plural];
            v.extend_from_slice(tail);
            return parse_rest(group, version, Some(ns), &v);
        }
        other => (None, other),
    };
    parse_rest(group, version, namespace, rest)
}

fn parse_rest<'a>(
    group: &str,
    version: &str,
    namespace: Option<&'a str>,
    rest: &[&'a str],
) -> Option<Target<'a>> {
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return None,
    };
    let res = resources::by_path(group, version, plural)?;
    if res.namespaced && name.is_some() && namespace.is_none() {
        return None;
    }
    Some(Target {
        res,
        namespace,
        name,
        sub,
    })
}

fn resource_request(
    shared: &Arc<Shared>,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
    metrics: bool,
) -> Reply {
    if group == "metrics.k8s.io" && !metrics {
        return not_found_path().into();
    }
    if rest.is_empty() {
        if req.method != Method::GET {
            return ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )
            .into();
        }
        return discovery::resource_list(group, version, metrics)
            .map_or_else(|| not_found_path().into(), |d| Reply::Json(200, d));
    }
    let Some(target) = parse_target(group, version, rest) else {
        return not_found_path().into();
    };
    match serve(shared, req, &target) {
        Ok(reply) => reply,
        Err(err) => err.into(),
    }
}

fn selectors(req: &Req) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(req.param("labelSelector").unwrap_or_default())?,
        FieldSelector::parse(req.param("fieldSelector").unwrap_or_default())?,
    ))
}

#[allow(clippy::too_many_lines, reason = "one arm per verb and subresource")]
fn serve(shared: &Arc<Shared>, req: &Req, t: &Target<'_>) -> Result<Reply, ApiError> {
    let res = t.res;
    let ns = t.namespace.unwrap_or_default();
    if res.group == "metrics.k8s.io" {
        return serve_metrics(shared, req, t);
    }
    if res.read_only && req.method != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "{} are read-only in the double",
            res.plural
        )));
    }
    let dry_run = req.dry_run();
    match (&req.method, t.name, t.sub) {
        (&Method::GET, None, None) => {
            let (labels, fields) = selectors(req)?;
            if req.flag("watch") {
                let params = WatchParams {
                    namespace: t.namespace.map(str::to_owned),
                    labels,
                    fields,
                    resource_version: req.param("resourceVersion").map(str::to_owned),
                    timeout: req
                        .param("timeoutSeconds")
                        .and_then(|s| s.parse().ok())
                        .map(Duration::from_secs),
                    bookmarks: req.flag("allowWatchBookmarks"),
                    send_initial_events: req.flag("sendInitialEvents"),
                };
                return Ok(Reply::Stream(
                    watch::start(shared, res, params),
                    "application/json",
                ));
            }
            let state = shared.lock();
            let items: Vec<Value> = state
                .list(res.kind, t.namespace, &labels, &fields)
                .into_iter()
                .map(|mut o| {
                    if let Some(map) = o.as_object_mut() {
                        map.remove("kind");
                        map.remove("apiVersion");
                    }
                    o
                })
                .collect();
            Ok(list_reply(res, state.resource_version(), &items))
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            let ns = if res.namespaced { ns } else { "" };
            shared
                .lock()
                .get(res.kind, ns, name)
                .cloned()
                .map(|o| Reply::Json(200, o))
                .ok_or_else(|| ApiError::not_found(res.group, res.plural, name))
        }
        (&Method::GET, Some(name), Some("scale")) => {
            Ok(Reply::Json(200, shared.lock().scale(res, ns, name)?))
        }
        (&Method::GET, Some(name), Some("log")) if res.kind == "Pod" => logs(shared, req, ns, name),
        (&Method::POST, None, None) => {
            let body = req.json_body()?;
            let created = shared.lock().create(res, ns, body, dry_run, true)?;
            Ok(Reply::Json(201, created))
        }
        (&Method::PUT, Some(name), None | Some("status")) => {
            let part = if t.sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            let body = req.json_body()?;
            Ok(Reply::Json(
                200,
                shared.lock().update(res, ns, name, body, part, dry_run)?,
            ))
        }
        (&Method::PUT, Some(name), Some("scale")) => {
            let body = req.json_body()?;
            Ok(Reply::Json(
                200,
                shared.lock().update_scale(res, ns, name, &body, dry_run)?,
            ))
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status" | "scale"))) => {
            let Some(kind) = PatchKind::from_content_type(&req.content_type) else {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (the double does not do server-side apply; got {:?})",
                        req.content_type
                    ),
                ));
            };
            let body = req.json_body()?;
            let mut state = shared.lock();
            if sub == Some("scale") {
                let scale = state.scale(res, ns, name)?;
                let patched = crate::patch::apply(kind, &scale, &body)?;
                return Ok(Reply::Json(
                    200,
                    state.update_scale(res, ns, name, &patched, dry_run)?,
                ));
            }
            let part = if sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            Ok(Reply::Json(
                200,
                state.patch(res, ns, name, kind, &body, part, dry_run)?,
            ))
        }
        (&Method::DELETE, Some(name), None) => {
            let opts = delete_options(req)?;
            Ok(Reply::Json(
                200,
                shared.lock().delete(res, ns, name, &opts, dry_run)?,
            ))
        }
        (&Method::DELETE, None, None) => {
            let opts = delete_options(req)?;
            let (labels, fields) = selectors(req)?;
            let mut state = shared.lock();
            let names: Vec<String> = state
                .list(res.kind, t.namespace, &labels, &fields)
                .iter()
                .map(|o| crate::meta::name(o).to_owned())
                .collect();
            let mut items = Vec::new();
            for name in names {
                items.push(state.delete(res, ns, &name, &opts, dry_run)?);
            }
            Ok(list_reply(res, state.resource_version(), &items))
        }
        (
            _,
            Some(_),
            Some(
                sub @ ("attach"
                | "portforward"
                | "proxy"
                | "eviction"
                | "ephemeralcontainers"
                | "binding"),
            ),
        ) => Err(ApiError::bad_request(format!(
            "the {sub} subresource is not supported by the k8s double"
        ))),
        (_, _, Some(_)) => Err(not_found_path()),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            req.method, res.plural
        ))),
    }
}

/// A `<Kind>List` at resourceVersion `rv`.
fn list_reply(res: &Resource, rv: u64, items: &[Value]) -> Reply {
    Reply::Json(
        200,
        json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": res.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    )
}

fn delete_options(req: &Req) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        req.json_body()?
    };
    let mut opts = DeleteOptions {
        propagation: json::str_at(&body, &["propagationPolicy"]).map(str::to_owned),
        grace_seconds: json::i64_at(&body, &["gracePeriodSeconds"]),
        uid: json::str_at(&body, &["preconditions", "uid"]).map(str::to_owned),
        resource_version: json::str_at(&body, &["preconditions", "resourceVersion"])
            .map(str::to_owned),
    };
    if json::bool_at(&body, &["orphanDependents"]) || req.flag("orphanDependents") {
        opts.propagation = Some("Orphan".to_owned());
    }
    if let Some(p) = req.param("propagationPolicy") {
        opts.propagation = Some(p.to_owned());
    }
    if let Some(g) = req.param("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        opts.grace_seconds = Some(g);
    }
    if body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.contains(&json!("All")))
    {
        return Err(ApiError::bad_request(
            "pass dryRun=All in the query, as kubectl does",
        ));
    }
    Ok(opts)
}

fn logs(shared: &Arc<Shared>, req: &Req, ns: &str, name: &str) -> Result<Reply, ApiError> {
    let number = |key: &str| -> Result<Option<i64>, ApiError> {
        req.param(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("{key}: invalid value {v:?}")))
            })
            .transpose()
    };
    let query = LogQuery {
        container: req.param("container").map(str::to_owned),
        previous: req.flag("previous"),
        tail_lines: number("tailLines")?.map(|n| usize::try_from(n.max(0)).unwrap_or(0)),
        since_seconds: number("sinceSeconds")?,
        since_time: req.param("sinceTime").map(str::to_owned),
        timestamps: req.flag("timestamps"),
        follow: req.flag("follow"),
    };
    match podlogs::read(shared, ns, name, &query)? {
        LogReply::Text(text) => Ok(Reply::Text(200, text)),
        LogReply::Stream(body) => Ok(Reply::Stream(body, "text/plain")),
    }
}

fn serve_metrics(shared: &Arc<Shared>, req: &Req, t: &Target<'_>) -> Result<Reply, ApiError> {
    if req.method != Method::GET || t.sub.is_some() {
        return Err(ApiError::method_not_allowed("metrics are read-only"));
    }
    let state = shared.lock();
    let (labels, fields) = selectors(req)?;
    if let Some(name) = t.name {
        let ns = t.namespace.unwrap_or_default();
        return state
            .get("Pod", ns, name)
            .and_then(|p| metrics::pod_metrics(&state, p))
            .map(|m| Reply::Json(200, m))
            .ok_or_else(|| ApiError::not_found("metrics.k8s.io", "pods", name));
    }
    let items: Vec<Value> = state
        .list("Pod", t.namespace, &labels, &fields)
        .iter()
        .filter_map(|p| metrics::pod_metrics(&state, p))
        .collect();
    Ok(Reply::Json(
        200,
        json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        }),
    ))
}
