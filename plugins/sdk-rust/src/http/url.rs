//! URL splitting and percent-encoding for the HTTP client: just what wasi:http needs (scheme,
//! authority, path-with-query), without a general URL crate.

use super::HttpError;

/// A URL split the way `wasi:http/types.outgoing-request` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub scheme: String,
    pub authority: String,
    /// Starts with `/`; includes `?query` when there is one.
    pub path_with_query: String,
}

/// Splits `url` (`scheme://authority[/path][?query]`, fragment dropped) and appends `query`
/// pairs, percent-encoded.
pub(crate) fn parse(url: &str, query: &[(String, String)]) -> Result<Target, HttpError> {
    let invalid = |why: &str| HttpError::InvalidRequest(format!("invalid URL `{url}`: {why}"));
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace or control characters"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("no scheme"))?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(invalid("bad scheme"));
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    if authority.contains('@') {
        // Credentials belong to the host's egress injection, never in a URL.
        return Err(invalid("user info in URLs is not supported"));
    }
    let mut path_with_query = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    if !query.is_empty() {
        path_with_query.push(if path_with_query.contains('?') { '&' } else { '?' });
        path_with_query.push_str(&form_encode(query));
    }
    Ok(Target { scheme: scheme.to_ascii_lowercase(), authority: authority.to_owned(), path_with_query })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the result is safe as a
/// path segment, a query key or value, or a form field.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `k1=v1&k2=v2`, percent-encoded; valid both as a query string and as an
/// `application/x-www-form-urlencoded` body.
pub(crate) fn form_encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref()))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn splits_urls() {
        let t = parse("https://api.hubapi.com/crm/v3/objects/contacts", &[]).unwrap();
        assert_eq!(t.scheme, "https");
        assert_eq!(t.authority, "api.hubapi.com");
        assert_eq!(t.path_with_query, "/crm/v3/objects/contacts");

        let t = parse("http://127.0.0.1:8080", &[]).unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path_with_query, "/");

        let t = parse("https://h?x=1#frag", &q(&[("y", "a b")])).unwrap();
        assert_eq!(t.authority, "h");
        assert_eq!(t.path_with_query, "/?x=1&y=a%20b");
    }

    #[test]
    fn appends_encoded_query() {
        let t = parse(
            "https://graph.facebook.com/v21.0/act_1/campaigns",
            &q(&[("fields", "id,name"), ("after", "a/b+c=")]),
        )
        .unwrap();
        assert_eq!(t.path_with_query, "/v21.0/act_1/campaigns?fields=id%2Cname&after=a%2Fb%2Bc%3D");
    }

    #[test]
    fn rejects_bad_urls() {
        for url in ["api.example.com/x", "https:///x", "https://user:pw@h/", "https://h/a b", "1http://h/"] {
            assert!(matches!(parse(url, &[]), Err(HttpError::InvalidRequest(_))), "{url}");
        }
    }

    #[test]
    fn encodes_components() {
        assert_eq!(encode("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(encode("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
        assert_eq!(form_encode(&[("status", "PAUSED"), ("daily_budget", "1500")]), "status=PAUSED&daily_budget=1500");
    }
}
