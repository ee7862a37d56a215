//! Step 3's per-tool part: a request must be within the calling tool's request scopes — the
//! ones its plugin declares (contract 0.1.1 `requests` export) *and* the ones the operator
//! grants, each where present. Neither list widens the other: an operator's scope outside the
//! declared ones matches nothing the plugin is allowed, and a declared scope the operator did
//! not grant is refused.

use std::collections::BTreeMap;

use tollgate_contract::RequestScope;

/// Whose scopes refused a request, for the denial's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Declared,
    Granted,
}

/// Refuses `method host path` from `tool` when a scope list applies to the tool and none of
/// its scopes matches; the reason names the request, the tool and the scopes it has.
pub(crate) fn check(
    declared: &BTreeMap<String, Vec<RequestScope>>,
    granted: &BTreeMap<String, Vec<RequestScope>>,
    tool: &str,
    method: &str,
    host: &str,
    path: &str,
) -> Result<(), String> {
    for (source, lists) in [(Source::Declared, declared), (Source::Granted, granted)] {
        let Some(scopes) = lists.get(tool) else { continue };
        if scopes.iter().any(|s| s.matches(method, host, path)) {
            continue;
        }
        let listed: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        let listed = if listed.is_empty() { "none".to_string() } else { listed.join(", ") };
        return Err(match source {
            Source::Declared => {
                format!("{method} {host}{path} is outside the requests tool `{tool}` declares ({listed})")
            }
            Source::Granted => {
                format!("{method} {host}{path} is outside the requests tool `{tool}` is granted ({listed})")
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(tool: &str, list: &[&str]) -> BTreeMap<String, Vec<RequestScope>> {
        let parsed = list.iter().map(|s| RequestScope::parse(s).unwrap()).collect();
        BTreeMap::from([(tool.to_string(), parsed)])
    }

    #[test]
    fn a_request_needs_every_list_that_applies() {
        let none = BTreeMap::new();
        let declared = scopes("search", &["POST api.test/search", "GET api.test/items/*"]);
        let granted = scopes("search", &["POST api.test/search"]);
        let check = |d, g, m, p| check(d, g, "search", m, "api.test", p);
        assert_eq!(check(&none, &none, "DELETE", "/items/1"), Ok(()));
        assert_eq!(check(&declared, &none, "GET", "/items/1"), Ok(()));
        assert_eq!(check(&declared, &granted, "POST", "/search"), Ok(()));
        let e = check(&declared, &granted, "GET", "/items/1").unwrap_err();
        assert!(e.contains("is granted (POST api.test/search)"), "{e}");
        let e = check(&declared, &none, "POST", "/pay").unwrap_err();
        assert_eq!(
            e,
            "POST api.test/pay is outside the requests tool `search` declares (POST api.test/search, GET api.test/items/*)"
        );
        // An operator cannot widen what the plugin declared.
        let wide = scopes("search", &["* api.test/**"]);
        assert!(check(&declared, &wide, "DELETE", "/items/1").unwrap_err().contains("declares"));
        // Other tools are not affected.
        assert!(check(&declared, &granted, "GET", "/elsewhere").is_err());
        assert_eq!(super::check(&declared, &granted, "other", "PUT", "api.test", "/x"), Ok(()));
    }

    #[test]
    fn a_tool_declaring_no_requests_makes_none() {
        let declared = scopes("pure", &[]);
        let e = check(&declared, &BTreeMap::new(), "pure", "GET", "api.test", "/").unwrap_err();
        assert!(e.ends_with("declares (none)"), "{e}");
    }
}
