//! The request log: every HTTP request the double answered, for tests to assert on.

use bytes::Bytes;
use serde_json::Value;

/// One request the double answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `PATCH`...
    pub method: String,
    /// The path without the query, e.g. `/apis/apps/v1/namespaces/default/deployments/web`.
    pub path: String,
    /// The raw query string (percent-encoded), empty when there was none.
    pub query: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
    /// The `User-Agent` header, if any (kubectl sends `kubectl/v1.33...`).
    pub user_agent: Option<String>,
    /// The request body.
    pub body: Bytes,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// The HTTP status of the answer (200 for a watch or follow stream that started).
    pub status: u16,
}

impl RecordedRequest {
    /// The value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}
