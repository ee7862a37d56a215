//! Graph API cursor paging for the Meta stand-in: opaque base64 cursors over row indices and
//! the `{"data":[..],"paging":{"cursors":{..},"next"?,"previous"?}}` envelope, with absolute
//! `next` / `previous` links that repeat the caller's parameters (as Graph does).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::Uri;
use serde_json::{Value, json};

use super::{MetaState, param_error};
use crate::support::{param, percent_encode};

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 (no padding) of a row index: Graph cursors are opaque base64 strings.
fn cursor(index: usize) -> String {
    let data = format!("tg:{index}").into_bytes();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn decode_cursor(s: &str) -> Option<usize> {
    let (mut bits, mut held, mut out) = (0u32, 0u32, Vec::new());
    for ch in s.bytes() {
        let v = B64.iter().position(|a| *a == ch)?;
        bits = (bits << 6 | v as u32) & 0xffff;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held & 0xff) as u8);
        }
    }
    String::from_utf8(out).ok()?.strip_prefix("tg:")?.parse().ok()
}

/// Slices `rows` by the `limit` / `after` / `before` params and wraps them in Graph's
/// `{"data":[..],"paging":{"cursors":..,"next"?,"previous"?}}` envelope.
pub(super) fn page(s: &MetaState, uri: &Uri, p: &[(String, String)], rows: Vec<Value>) -> Response {
    let limit = match param(p, "limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) if n > 0 => n.min(5000),
        Some(_) => return param_error("(#100) Param limit must be a positive integer"),
    };
    let bad_cursor = || param_error("(#100) The after cursor is not valid");
    let start = match (param(p, "after"), param(p, "before")) {
        (Some(a), _) => match decode_cursor(a) {
            Some(i) => i + 1,
            None => return bad_cursor(),
        },
        (None, Some(b)) => match decode_cursor(b) {
            Some(i) => i.saturating_sub(limit),
            None => return bad_cursor(),
        },
        (None, None) => 0,
    };
    let end = (start + limit).min(rows.len());
    let data: Vec<Value> = rows.get(start..end).map(<[Value]>::to_vec).unwrap_or_default();
    let mut out = json!({ "data": data });
    if data.is_empty() {
        return Json(out).into_response();
    }
    let (before, after) = (cursor(start), cursor(end - 1));
    let mut paging = json!({ "cursors": { "before": before, "after": after } });
    let link = |name: &str, value: &str| {
        let mut q: Vec<String> = p
            .iter()
            .filter(|(k, _)| k != "after" && k != "before")
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        q.push(format!("{name}={value}"));
        format!("{}{}?{}", s.base_url, uri.path(), q.join("&"))
    };
    if end < rows.len() {
        paging["next"] = json!(link("after", &after));
    }
    if start > 0 {
        paging["previous"] = json!(link("before", &before));
    }
    out["paging"] = paging;
    Json(out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for i in [0, 1, 24, 25, 999] {
            assert_eq!(decode_cursor(&cursor(i)), Some(i));
        }
        assert_eq!(decode_cursor("garbage"), None);
    }
}
