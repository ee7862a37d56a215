//! The generic pass: walks the parsed TOML tree against [`crate::spec`] and reports every
//! unknown key (with "did you mean"), missing required key, wrong type and out-of-bounds value,
//! all at once. Also the typed getters that later passes use to read values this pass accepted
//! (they return `None` for anything it rejected, so nothing is reported twice).

use std::ops::Range;
use std::time::Duration;

use tollgate_contract::units::{format_bytes, format_duration, parse_bytes, parse_duration};
use toml::de::{DeTable, DeValue};

use crate::diagnostics::{Reporter, suggestion};
use crate::spans::{Node, entry, type_name};
use crate::spec::{TableSpec, Ty, is_semver};

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Checks the whole document.
pub(crate) fn check_document(r: &mut Reporter<'_>, root: &DeTable<'_>) {
    check_table(r, "", 0..0, root, &crate::spec::ROOT);
}

fn check_table(r: &mut Reporter<'_>, path: &str, span: Range<usize>, table: &DeTable<'_>, spec: &TableSpec) {
    let known: Vec<&str> = spec.keys.iter().map(|k| k.name).collect();
    for (k, v) in table.iter() {
        let name = k.get_ref().as_ref();
        match spec.key(name) {
            Some(ks) => check_value(r, &join(path, name), v, &ks.ty),
            None => {
                let place = if path.is_empty() { "at the top level".to_string() } else { format!("in `{path}`") };
                r.error_help(k.span(), format!("unknown key `{name}` {place}"), suggestion(name, &known, "known keys"));
            }
        }
    }
    let place = if path.is_empty() { "the workflow".to_string() } else { format!("`{path}`") };
    for ks in spec.keys.iter().filter(|k| k.required) {
        if entry(table, ks.name).is_none() {
            r.error(span.clone(), format!("{place} is missing required key `{}`", ks.name));
        }
    }
    if !spec.exactly_one_of.is_empty() {
        let present: Vec<(&str, Range<usize>)> =
            spec.exactly_one_of.iter().filter_map(|k| entry(table, k).map(|(s, _)| (*k, s))).collect();
        let names = spec.exactly_one_of.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        match present.as_slice() {
            [] => r.error(span, format!("{place} needs exactly one of {names}")),
            [_] => {}
            [(first, _), rest @ ..] => {
                for (k, s) in rest {
                    r.error(
                        s.clone(),
                        format!("{place} has both `{first}` and `{k}`: it must have exactly one of {names}"),
                    );
                }
            }
        }
    }
}

fn check_value(r: &mut Reporter<'_>, path: &str, v: &Node<'_>, ty: &Ty) {
    match (ty, v.get_ref()) {
        (Ty::Table(spec), DeValue::Table(t)) => check_table(r, path, v.span(), t, spec),
        (Ty::Named(spec, rule), DeValue::Table(t)) => {
            for (k, item) in t.iter() {
                let name = k.get_ref().as_ref();
                if !rule.ok(name) {
                    r.error(k.span(), format!("name `{name}` in `{path}` must match `{}`", rule.shown()));
                }
                match item.get_ref() {
                    DeValue::Table(it) => check_table(r, &join(path, name), item.span(), it, spec),
                    other => r.error(
                        item.span(),
                        format!("`{}` must be a table, not {}", join(path, name), type_name(other)),
                    ),
                }
            }
        }
        (Ty::Array(spec), DeValue::Array(a)) => {
            for (i, item) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match item.get_ref() {
                    DeValue::Table(it) => check_table(r, &p, item.span(), it, spec),
                    other => r.error(item.span(), format!("`{p}` must be a table, not {}", type_name(other))),
                }
            }
        }
        _ => {
            if let Some((span, message, help)) = scalar_error(path, v, ty) {
                match help {
                    Some(h) => r.error_help(span, message, h),
                    None => r.error(span, message),
                }
            }
        }
    }
}

type Finding = (Range<usize>, String, Option<String>);

/// What is wrong with a value of a non-table type, if anything.
fn scalar_error(path: &str, v: &Node<'_>, ty: &Ty) -> Option<Finding> {
    let span = v.span();
    let wrong =
        |want: &str| Some((span.clone(), format!("`{path}` must be {want}, not {}", type_name(v.get_ref())), None));
    let bad = |msg: String| Some((span.clone(), msg, None));
    match (ty, v.get_ref()) {
        (Ty::Str | Ty::Cel, DeValue::String(_)) | (Ty::Bool, DeValue::Boolean(_)) | (Ty::Any, _) => None,
        (Ty::Table(_) | Ty::Named(..) | Ty::JsonSchema, DeValue::Table(_)) | (Ty::Array(_), DeValue::Array(_)) => None,
        (Ty::Name(rule), DeValue::String(s)) => {
            (!rule.ok(s)).then(|| (span.clone(), format!("`{path}` = \"{s}\" must match `{}`", rule.shown()), None))
        }
        (Ty::Semver, DeValue::String(s)) => (!is_semver(s)).then(|| {
            (
                span.clone(),
                format!("`{path}` = \"{s}\" is not a semantic version"),
                Some("write MAJOR.MINOR.PATCH, e.g. 1.0.0".into()),
            )
        }),
        (Ty::Int { min, max }, DeValue::Integer(_)) => match int_of(v) {
            None => bad(format!("`{path}` is out of the 64-bit integer range")),
            Some(n) if n < *min => bad(format!("`{path}` must be at least {min} (it is {n})")),
            Some(n) if n > *max => bad(format!("`{path}` is {n}, above the maximum of {max}")),
            Some(_) => None,
        },
        (Ty::Number { min, max }, DeValue::Integer(_) | DeValue::Float(_)) => match number_of(v) {
            None => bad(format!("`{path}` is not a finite number")),
            Some(n) if n < *min => bad(format!("`{path}` must be at least {min} (it is {n})")),
            Some(n) if n > *max => bad(format!("`{path}` is {n}, above the maximum of {max}")),
            Some(_) => None,
        },
        (Ty::Number { .. }, _) => wrong("a number"),
        (Ty::Duration { min, max }, DeValue::String(s)) => match parse_duration(s) {
            Err(e) => bad(format!("`{path}`: {e}")),
            Ok(d) if d < *min => bad(format!("`{path}` must be at least {} (it is {s})", format_duration(*min))),
            Ok(d) if d > *max => bad(format!("`{path}` is {s}, above the maximum of {}", format_duration(*max))),
            Ok(_) => None,
        },
        (Ty::Duration { .. }, _) => wrong("a duration string such as \"30s\""),
        (Ty::Bytes { min, max }, DeValue::Integer(_) | DeValue::String(_)) => match bytes_of(v) {
            Err(e) => bad(format!("`{path}`: {e}")),
            Ok(n) if n < *min => bad(format!("`{path}` must be at least {}", format_bytes(*min as usize))),
            Ok(n) if n > *max => bad(format!("`{path}` is above the maximum of {}", format_bytes(*max as usize))),
            Ok(_) => None,
        },
        (Ty::Bytes { .. }, _) => wrong("a size (bytes, or a string such as \"64MiB\")"),
        (Ty::StrList, DeValue::Array(a)) => a
            .iter()
            .find(|i| !matches!(i.get_ref(), DeValue::String(_)))
            .map(|i| (i.span(), format!("`{path}` must hold strings, not {}", type_name(i.get_ref())), None)),
        (Ty::Enum(allowed), DeValue::String(s)) => (!allowed.contains(&s.as_ref())).then(|| {
            (
                span.clone(),
                format!("`{path}` = \"{s}\" is not one of the allowed values"),
                Some(value_suggestion(s, allowed)),
            )
        }),
        (Ty::EnumList(allowed), DeValue::Array(a)) => a.iter().find_map(|i| match i.get_ref() {
            DeValue::String(s) if allowed.contains(&s.as_ref()) => None,
            DeValue::String(s) => Some((
                i.span(),
                format!("`{path}`: \"{s}\" is not one of the allowed values"),
                Some(value_suggestion(s, allowed)),
            )),
            other => Some((i.span(), format!("`{path}` must hold strings, not {}", type_name(other)), None)),
        }),
        (Ty::BoolOrName(_), DeValue::Boolean(_)) => None,
        (Ty::BoolOrName(rule), DeValue::String(s)) => (!rule.ok(s)).then(|| {
            (
                span.clone(),
                format!("`{path}` = \"{s}\" must be true, false, or a name matching `{}`", rule.shown()),
                None,
            )
        }),
        (Ty::StrListMap, DeValue::Table(t)) => t.iter().find_map(|(k, i)| match i.get_ref() {
            DeValue::Array(a) => a.iter().find(|s| !matches!(s.get_ref(), DeValue::String(_))).map(|s| {
                (s.span(), format!("`{path}.{}` must hold strings, not {}", k.get_ref(), type_name(s.get_ref())), None)
            }),
            other => Some((
                i.span(),
                format!("`{path}.{}` must be an array of strings, not {}", k.get_ref(), type_name(other)),
                None,
            )),
        }),
        (Ty::StrMap, DeValue::Table(t)) => {
            t.iter().find(|(_, i)| !matches!(i.get_ref(), DeValue::String(_))).map(|(k, i)| {
                (i.span(), format!("`{path}.{}` must be a string, not {}", k.get_ref(), type_name(i.get_ref())), None)
            })
        }
        (Ty::Str | Ty::Name(_) | Ty::Semver | Ty::Cel | Ty::Enum(_), _) => wrong("a string"),
        (Ty::Int { .. }, _) => wrong("an integer"),
        (Ty::Bool, _) => wrong("a boolean"),
        (Ty::StrList | Ty::EnumList(_), _) => wrong("an array of strings"),
        (Ty::BoolOrName(_), _) => wrong("a boolean or a string"),
        (Ty::StrMap | Ty::StrListMap | Ty::Table(_) | Ty::Named(..) | Ty::JsonSchema, _) => wrong("a table"),
        (Ty::Array(_), _) => wrong("an array of tables"),
    }
}

pub(crate) fn int_of(v: &Node<'_>) -> Option<i64> {
    match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// An integer or float value as `f64`; `None` for nan, inf and anything else.
pub(crate) fn number_of(v: &Node<'_>) -> Option<f64> {
    let n = match v.get_ref() {
        DeValue::Integer(_) => int_of(v)? as f64,
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

fn bytes_of(v: &Node<'_>) -> Result<u64, String> {
    match v.get_ref() {
        DeValue::Integer(_) => {
            int_of(v).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| "must not be negative".into())
        }
        DeValue::String(s) => parse_bytes(s).map(|n| n as u64).map_err(|e| e.to_string()),
        _ => Err("not a size".into()),
    }
}

/// A view of one table for later passes: values the generic pass accepted, already typed.
#[derive(Clone, Copy)]
pub(crate) struct View<'d, 'i> {
    pub table: &'d DeTable<'i>,
    pub spec: &'static TableSpec,
}

impl<'d, 'i> View<'d, 'i> {
    pub fn new(table: &'d DeTable<'i>, spec: &'static TableSpec) -> View<'d, 'i> {
        View { table, spec }
    }

    /// The value of `key`, if present and valid.
    pub fn node(&self, key: &str) -> Option<&'d Node<'i>> {
        let (_, v) = entry(self.table, key)?;
        let ks = self.spec.key(key)?;
        match (&ks.ty, v.get_ref()) {
            (Ty::Table(_) | Ty::Named(..) | Ty::Array(_), _) => Some(v),
            // Entry by entry: one malformed list must not hide the others' errors.
            (Ty::StrListMap, DeValue::Table(_)) => Some(v),
            (ty, _) => scalar_error("", v, ty).is_none().then_some(v),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        entry(self.table, key).is_some()
    }

    pub fn str(&self, key: &str) -> Option<(&'d str, Range<usize>)> {
        let v = self.node(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.node(key).and_then(int_of)
    }

    pub fn number(&self, key: &str) -> Option<f64> {
        self.node(key).and_then(number_of)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.node(key).and_then(|v| v.get_ref().as_bool())
    }

    pub fn duration(&self, key: &str) -> Option<Duration> {
        self.str(key).and_then(|(s, _)| parse_duration(s).ok())
    }

    pub fn bytes(&self, key: &str) -> Option<u64> {
        self.node(key).and_then(|v| bytes_of(v).ok())
    }

    /// Strings of an array value, with their spans.
    pub fn strs(&self, key: &str) -> Vec<(&'d str, Range<usize>)> {
        let Some(DeValue::Array(a)) = self.node(key).map(|v| v.get_ref()) else { return Vec::new() };
        a.iter().filter_map(|i| i.get_ref().as_str().map(|s| (s, i.span()))).collect()
    }

    /// A sub-table (or an empty view when absent or invalid).
    pub fn table(&self, key: &str, spec: &'static TableSpec) -> Option<View<'d, 'i>> {
        match self.node(key)?.get_ref() {
            DeValue::Table(t) => Some(View::new(t, spec)),
            _ => None,
        }
    }

    /// Entries of a named-tables value: (name, name span, table span, table).
    pub fn named(
        &self,
        key: &str,
        spec: &'static TableSpec,
    ) -> Vec<(&'d str, Range<usize>, Range<usize>, View<'d, 'i>)> {
        let Some(DeValue::Table(t)) = self.node(key).map(|v| v.get_ref()) else { return Vec::new() };
        t.iter()
            .filter_map(|(k, v)| match v.get_ref() {
                DeValue::Table(it) => Some((k.get_ref().as_ref(), k.span(), v.span(), View::new(it, spec))),
                _ => None,
            })
            .collect()
    }

    /// Items of an array of tables: (index, item span, table).
    pub fn array(&self, key: &str, spec: &'static TableSpec) -> Vec<(usize, Range<usize>, View<'d, 'i>)> {
        let Some(DeValue::Array(a)) = self.node(key).map(|v| v.get_ref()) else { return Vec::new() };
        a.iter()
            .enumerate()
            .filter_map(|(i, v)| match v.get_ref() {
                DeValue::Table(it) => Some((i, v.span(), View::new(it, spec))),
                _ => None,
            })
            .collect()
    }

    /// Span of `key` itself, if present.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        entry(self.table, key).map(|(k, _)| k)
    }
}

/// The help for a value that is not allowed: a value it is the start of (a shortened or older
/// spelling, such as `require` for `require_approval`), else the usual near miss or list.
fn value_suggestion(value: &str, allowed: &[&str]) -> String {
    match allowed.iter().filter(|a| value.len() >= 4 && a.starts_with(value)).collect::<Vec<_>>()[..] {
        [only] => format!("did you mean `{only}`?"),
        _ => suggestion(value, allowed, "allowed"),
    }
}
