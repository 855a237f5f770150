//! Following a redirect by hand, so that credentials never cross origins.
//!
//! reqwest's own redirect handling drops only `Authorization` and `Cookie` when the host
//! changes and sends a `Referer` with the previous URL's query: a custom credential header
//! (`x-api-key`) and a `?token=` would reach the new host. [`crate::HttpProbe`] therefore
//! uses clients that never follow redirects and asks [`next_hop`] where to go instead.

use reqwest::{Method, StatusCode};

use crate::config::{redact, same_origin};

/// Where a redirect leads and how to ask there.
#[derive(Debug)]
pub(crate) struct Hop {
    pub(crate) url: url::Url,
    pub(crate) method: Method,
    /// Whether the request body is sent again (307 and 308 keep it).
    pub(crate) keep_body: bool,
    /// Whether the new URL is of another origin: credentials stay behind.
    pub(crate) leaves_origin: bool,
}

/// The request a redirect answer asks for, as browsers and reqwest do it: 307/308 repeat the
/// request; 303 (and 301/302 after a `POST`) become a `GET` without body.
///
/// # Errors
/// Words for the check's detail when the `Location` is not an `http(s)` URL.
pub(crate) fn next_hop(
    from: &url::Url,
    method: &Method,
    status: StatusCode,
    location: &str,
) -> Result<Hop, String> {
    let url = from
        .join(location)
        .map_err(|_| "the redirect's Location is not a valid URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "refused a redirect to a {} URL (only http and https)",
            url.scheme()
        ));
    }
    let repeat = matches!(
        status,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
    );
    let to_get = status == StatusCode::SEE_OTHER && *method != Method::HEAD
        || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
            && *method == Method::POST;
    Ok(Hop {
        leaves_origin: !same_origin(from, &url),
        url,
        method: if to_get { Method::GET } else { method.clone() },
        keep_body: repeat,
    })
}

/// Words for a refused cross-origin redirect (the new origin as `host:port`).
pub(crate) fn refused(to: &url::Url) -> String {
    format!("refused a redirect to another origin ({})", redact(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(from: &str, method: &Method, status: u16, location: &str) -> Hop {
        next_hop(
            &url::Url::parse(from).unwrap(),
            method,
            StatusCode::from_u16(status).unwrap(),
            location,
        )
        .unwrap()
    }

    #[test]
    fn methods_and_bodies_follow_the_status() {
        let h = hop("http://a/x", &Method::POST, 302, "/y");
        assert_eq!(
            (h.method, h.keep_body, h.leaves_origin),
            (Method::GET, false, false)
        );
        let h = hop("http://a/x", &Method::POST, 307, "http://b/y");
        assert_eq!(
            (h.method, h.keep_body, h.leaves_origin),
            (Method::POST, true, true)
        );
        let h = hop("http://a/x", &Method::HEAD, 303, "/y");
        assert_eq!(h.method, Method::HEAD);
        assert_eq!(
            hop("http://a/x", &Method::GET, 301, "//b/z").url.as_str(),
            "http://b/z"
        );
    }

    #[test]
    fn only_http_locations_are_followed() {
        let from = url::Url::parse("http://a/").unwrap();
        let found = StatusCode::FOUND;
        assert!(next_hop(&from, &Method::GET, found, "file:///etc/passwd").is_err());
        assert!(next_hop(&from, &Method::GET, found, "http://[::1").is_err());
    }
}
