//! Positions in a workflow file. The TOML is parsed into a tree whose keys and values carry
//! byte spans ([`toml::de::DeTable`]); this module maps spans to 1-based line:column, finds
//! the span of any key or value by its path (checks that run after parsing, such as
//! `check_plugins`, re-parse the stored source and look spans up this way instead of keeping
//! a span for every item), maps positions inside string values (CEL errors) back to the file,
//! and converts TOML values to JSON.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Line starts of one source file, for byte offset → line:column.
#[derive(Debug, Clone)]
pub(crate) struct SourceMap {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceMap {
    pub fn new(path: &Path, text: &str) -> SourceMap {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        SourceMap { path: path.to_path_buf(), text: text.to_string(), line_starts }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end clamp.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, column as u32 + 1)
    }

    pub fn location(&self, offset: usize) -> crate::Location {
        let (line, column) = self.line_col(offset);
        crate::Location { file: self.path.clone(), line, column }
    }
}

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub(crate) type Node<'i> = Spanned<DeValue<'i>>;

/// The entry `key` of a table: its key span and value.
pub(crate) fn entry<'d, 'i>(table: &'d DeTable<'i>, key: &str) -> Option<(Range<usize>, &'d Node<'i>)> {
    table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(k, v)| (k.span(), v))
}

/// Follows `path` from the root table. Returns the span of the last key on the path (the whole
/// value's span when the path ends in an index) and the value.
pub(crate) fn lookup<'d, 'i>(root: &'d DeTable<'i>, path: &[Seg<'_>]) -> Option<(Range<usize>, &'d Node<'i>)> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(k) = first else { return None };
    let (mut key_span, mut node) = entry(root, k)?;
    for seg in rest {
        match (seg, node.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => (key_span, node) = entry(t, k)?,
            (Seg::Index(i), DeValue::Array(a)) => {
                node = a.get(*i)?;
                key_span = node.span();
            }
            _ => return None,
        }
    }
    Some((key_span, node))
}

/// The span of the value at `path`, else of the nearest ancestor that exists, else the file
/// start: every finding gets a position even if the tree is not what the check expected.
pub(crate) fn value_span(root: &DeTable<'_>, path: &[Seg<'_>]) -> Range<usize> {
    (1..=path.len()).rev().find_map(|n| lookup(root, &path[..n]).map(|(_, v)| v.span())).unwrap_or(0..0)
}

/// Like [`value_span`], but the span of the key itself when the path ends in a key.
pub(crate) fn key_span(root: &DeTable<'_>, path: &[Seg<'_>]) -> Range<usize> {
    match lookup(root, path) {
        Some((k, _)) => k,
        None => value_span(root, path),
    }
}

/// Byte offset in the file of character `char_index` of a string value's content. When the
/// file spells the string with escapes (so the content is not a slice of the file) this falls
/// back to the value's start: the position is then approximate, never wrong by more than a value.
pub(crate) fn offset_in_string(src: &str, span: Range<usize>, content: &str, char_index: usize) -> usize {
    let Some(raw) = src.get(span.clone()) else { return span.start };
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") { 3 } else { 1 };
    if raw.len() < 2 * quote {
        return span.start;
    }
    let mut body_start = span.start + quote;
    let body_end = span.end - quote;
    if quote == 3 {
        // A newline right after the opening delimiter is not part of the string.
        if src[body_start..].starts_with("\r\n") {
            body_start += 2;
        } else if src[body_start..].starts_with('\n') {
            body_start += 1;
        }
    }
    match src.get(body_start..body_end) {
        Some(body) if body == content => {
            body_start + body.char_indices().nth(char_index).map_or(body.len(), |(i, _)| i)
        }
        _ => span.start,
    }
}

/// A TOML value as JSON. Datetimes become strings; a float JSON cannot hold is an error at
/// its span.
pub(crate) fn to_json(node: &Node<'_>) -> Result<Value, (Range<usize>, String)> {
    Ok(match node.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let n = i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| (node.span(), "integer is out of the 64-bit range".to_string()))?;
            Value::from(n)
        }
        DeValue::Float(f) => {
            let x: f64 = f.as_str().replace('_', "").parse().unwrap_or(f64::NAN);
            serde_json::Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| (node.span(), format!("`{}` cannot be represented in JSON", f.as_str())))?
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        DeValue::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| Ok((k.get_ref().to_string(), to_json(v)?))).collect::<Result<_, _>>()?)
        }
    })
}

/// The span inside `node` that a JSON pointer (`/properties/x/type`) names, as far as the
/// pointer can be followed.
pub(crate) fn span_at_pointer(node: &Node<'_>, pointer: &str) -> Range<usize> {
    let mut node = node;
    let mut span = node.span();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let next = match node.get_ref() {
            DeValue::Table(t) => entry(t, &token),
            DeValue::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get(i)).map(|v| (v.span(), v)),
            _ => None,
        };
        match next {
            Some((k, v)) => {
                span = k;
                node = v;
            }
            None => break,
        }
    }
    span
}

/// A TOML type name for messages: "a string", "an integer", "a table".
pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_character_columns() {
        let m = SourceMap::new(Path::new("w.toml"), "a = 1\nbé = \"x\"\n");
        assert_eq!(m.line_col(0), (1, 1));
        assert_eq!(m.line_col(4), (1, 5));
        assert_eq!(m.line_col(6), (2, 1));
        // `=` after a two-byte character is the 4th character of line 2.
        assert_eq!(m.line_col(10), (2, 4));
        assert_eq!(m.line_col(999), (3, 1));
    }

    #[test]
    fn paths_find_keys_values_and_array_items() {
        let src = "[plugins.ads]\nsource = 'a.wasm'\n[[steps]]\nid = 'one'\n[[steps]]\nid = 'two'\n";
        let root = DeTable::parse(src).unwrap();
        let (k, v) = lookup(root.get_ref(), &[Seg::Key("plugins"), Seg::Key("ads"), Seg::Key("source")]).unwrap();
        assert_eq!(&src[k], "source");
        assert_eq!(&src[v.span()], "'a.wasm'");
        let (_, v) = lookup(root.get_ref(), &[Seg::Key("steps"), Seg::Index(1), Seg::Key("id")]).unwrap();
        assert_eq!(&src[v.span()], "'two'");
        // A missing leaf falls back to its nearest ancestor: the `[plugins.ads]` header.
        let s = value_span(root.get_ref(), &[Seg::Key("plugins"), Seg::Key("ads"), Seg::Key("sha256")]);
        assert_eq!(&src[s], "[plugins.ads]");
    }

    #[test]
    fn string_offsets_follow_the_file_or_fall_back_to_the_value() {
        let src = "a = \"x + y\"\nb = \"\"\"\nq +\"\"\"\nc = \"\\u0041 + )\"\n";
        let root = DeTable::parse(src).unwrap();
        let span = |k| lookup(root.get_ref(), &[Seg::Key(k)]).unwrap().1.span();
        assert_eq!(offset_in_string(src, span("a"), "x + y", 4), src.find('y').unwrap());
        assert_eq!(offset_in_string(src, span("b"), "q +", 2), src.find("+\"\"\"").unwrap());
        assert_eq!(offset_in_string(src, span("c"), "A + )", 4), span("c").start);
    }

    #[test]
    fn toml_becomes_json_and_pointers_find_spans() {
        let src = "[s]\ntype = 'object'\nrequired = ['a']\nproperties.a = { type = 5, n = 0x10, f = 1.5 }\n";
        let root = DeTable::parse(src).unwrap();
        let (_, s) = lookup(root.get_ref(), &[Seg::Key("s")]).unwrap();
        let json = to_json(s).unwrap();
        assert_eq!(json["properties"]["a"]["n"], 16);
        assert_eq!(json["properties"]["a"]["f"], 1.5);
        assert_eq!(json["required"][0], "a");
        let span = span_at_pointer(s, "/properties/a/type");
        assert_eq!(&src[span], "type");
        assert_eq!(&src[span_at_pointer(s, "/required/0")], "'a'");
    }
}
