//! `plain-http`: a plain WebAssembly component that makes one outbound request.
//!
//! It exports `fetch-status(url) -> result<u16, string>` (`wit/plain-http.wit`) and imports
//! `wasi:http/outgoing-handler` through the `wasip2` crate. The host's tests load it as a
//! plain component: the import is its capability declaration, the operator's host grants are
//! its whole egress policy, and an `err` carries the wasi:http error code's debug text.

wit_bindgen::generate!({
    path: "wit",
    world: "plain-http",
});

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

struct PlainHttp;

/// `http://host:port/path?q` → (scheme, authority, path and query).
fn split(url: &str) -> Result<(Scheme, &str, &str), String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("not an absolute URL: {url:?}"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("URL has no host: {url:?}"));
    }
    Ok((scheme, authority, path))
}

impl Guest for PlainHttp {
    fn fetch_status(url: String) -> Result<u16, String> {
        let (scheme, authority, path) = split(&url)?;
        let request = OutgoingRequest::new(Fields::new());
        request.set_method(&Method::Get).map_err(|()| "method refused".to_string())?;
        request.set_scheme(Some(&scheme)).map_err(|()| "scheme refused".to_string())?;
        request.set_authority(Some(authority)).map_err(|()| format!("authority {authority:?} refused"))?;
        request.set_path_with_query(Some(path)).map_err(|()| format!("path {path:?} refused"))?;
        // The host may refuse at once, or through the future.
        let future = outgoing_handler::handle(request, None).map_err(|code| format!("{code:?}"))?;
        let pollable = future.subscribe();
        pollable.block();
        drop(pollable);
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(format!("{code:?}")),
            Some(Err(())) => return Err("response already taken".into()),
            None => return Err("response not ready after block".into()),
        };
        let status = response.status();
        drop(response);
        drop(future);
        Ok(status)
    }
}

export!(PlainHttp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let (scheme, authority, path) = split("http://127.0.0.1:8080/ok?x=1").unwrap();
        assert!(matches!(scheme, Scheme::Http));
        assert_eq!((authority, path), ("127.0.0.1:8080", "/ok?x=1"));
        let (scheme, authority, path) = split("HTTPS://api.example.test").unwrap();
        assert!(matches!(scheme, Scheme::Https));
        assert_eq!((authority, path), ("api.example.test", "/"));
        assert!(split("ftp://h/").unwrap_err().contains("unsupported scheme"));
        assert!(split("http:///x").unwrap_err().contains("no host"));
        assert!(split("nope").unwrap_err().contains("not an absolute URL"));
    }
}
