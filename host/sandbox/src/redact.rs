//! Secret redaction. The host knows every secret value a call could have seen (credentials it
//! injects, secrets the plugin read); everything leaving a call — output, errors, logs, stdio,
//! egress records — passes through [`Redactor`] first. Text that is also clipped (log lines,
//! egress record fields, tool-error messages) is redacted *before* it is clipped: a value cut
//! at the clip boundary no longer matches, and most of it would escape.

/// Replaces known secret values with `[REDACTED:<name>]`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

/// Values shorter than this are not redacted: replacing every `1` in an output would destroy
/// it, and such a value is no secret anyway.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    pub fn add(&mut self, name: &str, value: &str) {
        if value.len() >= MIN_SECRET_LEN && !self.secrets.iter().any(|(_, v)| v == value) {
            self.secrets.push((name.to_string(), value.to_string()));
            // Longest first, so a secret containing another is replaced whole.
            self.secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        }
    }

    /// A redactor for the credential values read for one call (those that could be read).
    pub(crate) fn for_credentials(values: &std::collections::BTreeMap<String, Result<String, String>>) -> Redactor {
        let mut r = Redactor::default();
        for (name, value) in values {
            if let Ok(v) = value {
                r.add(name, v);
            }
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (name, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        out
    }

    /// [`Redactor::text`] for text a cap already cut short (captured stdio): a secret the cut
    /// went through survives only as a prefix at the very end, which is redacted too.
    pub(crate) fn text_cut(&self, s: &str) -> String {
        let mut out = self.text(s);
        for (name, value) in &self.secrets {
            let longest =
                (MIN_SECRET_LEN..value.len()).rev().find(|&k| value.is_char_boundary(k) && out.ends_with(&value[..k]));
            if let Some(k) = longest {
                out.truncate(out.len() - k);
                out.push_str(&format!("[REDACTED:{name}]"));
            }
        }
        out
    }

    /// Redacts every string (keys included) inside a JSON value.
    pub fn json(&self, v: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match v {
            serde_json::Value::String(s) => *s = self.text(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.json(x)),
            serde_json::Value::Object(o) => {
                let entries: Vec<_> = std::mem::take(o).into_iter().collect();
                for (k, mut x) in entries {
                    self.json(&mut x);
                    o.insert(self.text(&k), x);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_text_and_json() {
        let mut r = Redactor::default();
        r.add("hubspot", "pat-na1-SECRET");
        r.add("short", "ab");
        assert_eq!(r.text("Bearer pat-na1-SECRET!"), "Bearer [REDACTED:hubspot]!");
        let mut v = serde_json::json!({"a": ["x pat-na1-SECRET"], "pat-na1-SECRET": 1, "n": "ab"});
        r.json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x [REDACTED:hubspot]"], "[REDACTED:hubspot]": 1, "n": "ab"}));
    }

    #[test]
    fn a_secret_cut_at_the_end_is_redacted() {
        let mut r = Redactor::default();
        r.add("api", "pat-na1-SECRET");
        assert_eq!(r.text_cut("token=pat-na1-SEC"), "token=[REDACTED:api]");
        assert_eq!(r.text_cut("token=pat-na1-SECRET and pat"), "token=[REDACTED:api] and pat");
        assert_eq!(r.text_cut("nothing here"), "nothing here");
    }
}
