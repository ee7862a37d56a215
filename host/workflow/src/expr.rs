//! CEL expressions of a workflow: compiled once at load, with the position of every part in
//! the file, and the static checks that need no values: which variables an expression reads
//! (unknown ones are errors), which `state.<key>` / `input.<field>` it reads, and its result
//! kind where the top of the expression fixes it (`when` must be a boolean, `cost` an integer).

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

use crate::Location;
use crate::cel_cost::{DataSize, MAX_EVAL_STEPS, estimate};
use crate::diagnostics::{Reporter, did_you_mean};
use crate::spans::offset_in_string;

/// A compiled CEL expression with where it came from. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Program {
    pub(crate) cel: Arc<cel::Program>,
    source: String,
    what: String,
    location: Location,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({:?} = {:?} at {})", self.what, self.source, self.location)
    }
}

impl Program {
    /// The expression's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which key holds it, e.g. `policy.approvals[0].when` or `steps[2].input_expr`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Where the expression starts in the workflow file.
    pub fn location(&self) -> &Location {
        &self.location
    }
}

/// The CEL standard environment, built once (building it registers every standard function).
pub(crate) fn env() -> Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

/// The statically known kind of an expression's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int,
    Double,
    String,
    Bytes,
    Null,
    List,
    Map,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::Int => "an integer",
            Kind::Double => "a double",
            Kind::String => "a string",
            Kind::Bytes => "bytes",
            Kind::Null => "null",
            Kind::List => "a list",
            Kind::Map => "a map",
        }
    }
}

/// An expression in the file being checked: its text, the string value's span, and a label.
pub(crate) struct Source<'a> {
    pub file: &'a str,
    pub span: Range<usize>,
    pub text: &'a str,
    pub what: String,
}

impl Source<'_> {
    /// File offset of character `i` of the expression.
    pub fn offset(&self, i: usize) -> usize {
        offset_in_string(self.file, self.span.clone(), self.text, i)
    }
}

/// Bounds on an expression's size and bracket nesting. The CEL parser and evaluator recurse
/// over the expression; within these bounds both stay well inside a 2 MiB thread stack (a
/// tokio worker's), which a test checks.
pub const MAX_EXPR_BYTES: usize = 4096;
pub const MAX_EXPR_NESTING: usize = 32;

/// Deepest nesting of `(`, `[`, `{` outside string literals, and where it first goes past
/// [`MAX_EXPR_NESTING`].
fn nesting(text: &str) -> (usize, Option<usize>) {
    let (mut depth, mut max, mut over) = (0usize, 0usize, None);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.chars().enumerate() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    max = max.max(depth);
                    if depth > MAX_EXPR_NESTING && over.is_none() {
                        over = Some(i);
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    (max, over)
}

/// Compiles an expression, reporting a syntax error at its position in the file, and any
/// variable not in `vars` (comprehension variables are bound where they are in scope).
pub(crate) fn compile(r: &mut Reporter<'_>, src: &Source<'_>, vars: &[&str]) -> Option<Program> {
    if src.text.len() > MAX_EXPR_BYTES {
        r.error(
            src.span.clone(),
            format!("`{}` is {} bytes long, over the limit of {MAX_EXPR_BYTES}", src.what, src.text.len()),
        );
        return None;
    }
    if let (depth, Some(at)) = nesting(src.text) {
        r.error_at(
            src.offset(at),
            format!("`{}` nests brackets {depth} deep, over the limit of {MAX_EXPR_NESTING}", src.what),
            None,
        );
        return None;
    }
    let compiled = match cel::Program::compile(src.text) {
        Ok(p) => p,
        Err(e) => {
            // The parser reports follow-on errors after the first real one; the first syntax
            // error is the one to fix. Positions are 1-based (line, column) in characters.
            let first = e.errors.iter().find(|e| e.msg.starts_with("Syntax error")).or(e.errors.first());
            let (offset, msg) = match first {
                Some(pe) => (src.offset(char_index(src.text, pe.pos)), pe.msg.clone()),
                None => (src.span.start, "invalid expression".to_string()),
            };
            let msg = msg.strip_prefix("Syntax error: ").unwrap_or(&msg).to_string();
            let (message, help) = match msg.split_once(" expecting ") {
                Some((m, want)) => {
                    let want = want.trim().trim_start_matches('{').trim_end_matches('}');
                    (m.to_string(), Some(format!("expected one of: {want}")))
                }
                None => (msg, None),
            };
            r.error_at(offset, format!("CEL syntax error in `{}`: {message}", src.what), help);
            return None;
        }
    };
    let mut ok = true;
    for (name, id) in free_idents(compiled.expression()) {
        if !vars.contains(&name.as_str()) {
            let at = compiled.source_info().offset_for(id).map_or(0, |(s, _)| s as usize);
            let help = match did_you_mean(&name, vars.iter().copied()) {
                Some(v) => format!("did you mean `{v}`?"),
                None => format!("available: {}", vars.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")),
            };
            r.error_at(src.offset(at), format!("unknown variable `{name}` in `{}`", src.what), Some(help));
            ok = false;
        }
    }
    // Even with every collection of the data counted as one element, an expression whose
    // literal lists multiply past the budget can never run.
    let steps = estimate(compiled.expression(), &|_| None, DataSize::UNKNOWN);
    if steps > MAX_EVAL_STEPS {
        r.error(
            src.span.clone(),
            format!(
                "`{}` needs at least {steps} evaluation steps, over the limit of {MAX_EVAL_STEPS} (nested comprehensions multiply)",
                src.what
            ),
        );
        ok = false;
    }
    let location = r.map().location(src.span.start);
    ok.then(|| Program { cel: Arc::new(compiled), source: src.text.to_string(), what: src.what.clone(), location })
}

/// Character index of a 1-based (line, column) in `text`.
fn char_index(text: &str, (line, col): (isize, isize)) -> usize {
    let line = line.max(1) as usize;
    let col = col.max(1) as usize;
    let before: usize = text.split_inclusive('\n').take(line - 1).map(|l| l.chars().count()).sum();
    before + col - 1
}

/// Identifiers read but not bound by a comprehension, with their expression ids.
pub(crate) fn free_idents(e: &IdedExpr) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    walk(e, &mut Vec::new(), &mut |e, bound| {
        if let Expr::Ident(n) = &e.expr
            && !bound.iter().any(|b| b == n)
        {
            out.push((n.clone(), e.id));
        }
    });
    out
}

/// The fields read directly off a root variable (`state.x`, `state["x"]`, `has(state.x)`),
/// with the character offset of the field's name in the expression.
pub(crate) fn fields_of(p: &Program, root: &str) -> Vec<(String, usize)> {
    let info = p.cel.source_info();
    let at = |id: u64| info.offset_for(id).map_or(0, |(s, _)| s as usize);
    let is_root = |e: &IdedExpr, bound: &[String]| matches!(&e.expr, Expr::Ident(n) if n == root && !bound.iter().any(|b| b == root));
    let mut out = Vec::new();
    walk(p.cel.expression(), &mut Vec::new(), &mut |e, bound| match &e.expr {
        Expr::Select(s) if is_root(&s.operand, bound) => {
            let from = at(s.operand.id);
            out.push((s.field.clone(), find_from(&p.source, from, &format!(".{}", s.field)).map_or(from, |i| i + 1)));
        }
        Expr::Call(c) if c.func_name == "_[_]" && c.args.len() == 2 && is_root(&c.args[0], bound) => {
            if let Expr::Literal(LiteralValue::String(k)) = &c.args[1].expr {
                let from = at(c.args[1].id);
                out.push((k.to_string(), find_from(&p.source, from, k).unwrap_or(from)));
            }
        }
        _ => {}
    });
    out
}

/// Character index of the first `needle` at or after character `from` of `text`. Node offsets
/// of the parser are not always where the field is (a `has()` select starts at its operand), so
/// the field is found in the text that follows the node's start.
fn find_from(text: &str, from: usize, needle: &str) -> Option<usize> {
    let start = text.char_indices().nth(from).map_or(text.len(), |(i, _)| i);
    let hit = text[start..].find(needle)? + start;
    Some(text[..hit].chars().count())
}

/// Visits every node with the comprehension variables in scope at it.
fn walk(e: &IdedExpr, bound: &mut Vec<String>, f: &mut dyn FnMut(&IdedExpr, &[String])) {
    f(e, bound);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, bound, f);
            }
            c.args.iter().for_each(|a| walk(a, bound, f));
        }
        Expr::Select(s) => walk(&s.operand, bound, f),
        Expr::List(l) => l.elements.iter().for_each(|x| walk(x, bound, f)),
        Expr::Map(m) => m.entries.iter().for_each(|en| walk_entry(&en.expr, bound, f)),
        Expr::Struct(s) => s.entries.iter().for_each(|en| walk_entry(&en.expr, bound, f)),
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound, f);
            walk(&c.accu_init, bound, f);
            let n = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                walk(part, bound, f);
            }
            bound.truncate(n);
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn walk_entry(e: &EntryExpr, bound: &mut Vec<String>, f: &mut dyn FnMut(&IdedExpr, &[String])) {
    match e {
        EntryExpr::MapEntry(m) => {
            walk(&m.key, bound, f);
            walk(&m.value, bound, f);
        }
        EntryExpr::StructField(s) => walk(&s.value, bound, f),
    }
}

/// The result kind when the shape of the expression fixes it; `None` when it depends on values.
pub(crate) fn static_kind(p: &Program) -> Option<Kind> {
    kind_of(p.cel.expression())
}

fn kind_of(e: &IdedExpr) -> Option<Kind> {
    match &e.expr {
        Expr::Literal(l) => Some(match l {
            LiteralValue::Boolean(_) => Kind::Bool,
            LiteralValue::Int(_) | LiteralValue::UInt(_) => Kind::Int,
            LiteralValue::Double(_) => Kind::Double,
            LiteralValue::String(_) => Kind::String,
            LiteralValue::Bytes(_) => Kind::Bytes,
            LiteralValue::Null => Kind::Null,
        }),
        Expr::List(_) => Some(Kind::List),
        Expr::Map(_) => Some(Kind::Map),
        Expr::Select(s) if s.test => Some(Kind::Bool),
        Expr::Call(c) => match c.func_name.as_str() {
            "_==_"
            | "_!=_"
            | "_<_"
            | "_<=_"
            | "_>_"
            | "_>=_"
            | "_&&_"
            | "_||_"
            | "!_"
            | "@in"
            | "matches"
            | "startsWith"
            | "endsWith"
            | "contains"
            | "@not_strictly_false" => Some(Kind::Bool),
            "size" | "int" | "uint" => Some(Kind::Int),
            // Arithmetic keeps the operands' kind when both are known and agree (`+` also
            // concatenates strings and lists).
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" if c.args.len() == 2 => {
                let (a, b) = (kind_of(&c.args[0]), kind_of(&c.args[1]));
                if a == b { a } else { None }
            }
            "-_" if c.args.len() == 1 => kind_of(&c.args[0]),
            "string" => Some(Kind::String),
            "double" => Some(Kind::Double),
            "_?_:_" if c.args.len() == 3 => {
                let (a, b) = (kind_of(&c.args[1]), kind_of(&c.args[2]));
                if a == b { a } else { None }
            }
            _ => None,
        },
        // all/exists/exists_one return a boolean; map/filter a list (their accumulator).
        Expr::Comprehension(c) => match &c.result.expr {
            Expr::Ident(n) if *n == c.accu_var => kind_of(&c.accu_init),
            _ => kind_of(&c.result),
        },
        Expr::Ident(_) | Expr::Select(_) | Expr::Struct(_) | Expr::Unspecified => None,
    }
}

/// Reports an error at the expression's start if its static kind is known and not allowed.
pub(crate) fn expect_kind(r: &mut Reporter<'_>, src: &Source<'_>, p: &Program, allowed: &[Kind], want: &str) {
    if let Some(k) = static_kind(p)
        && !allowed.contains(&k)
    {
        r.error_at(src.offset(0), format!("`{}` must evaluate to {want}, but this is {}", src.what, k.name()), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::SourceMap;
    use std::path::Path;

    fn program(text: &str, vars: &[&str]) -> Result<Program, String> {
        let file = format!("x = \"{text}\"\n");
        let map = SourceMap::new(Path::new("w.toml"), &file);
        let mut r = Reporter::new(&map);
        let src = Source { file: &file, span: 4..file.len() - 1, text, what: "e".into() };
        let p = compile(&mut r, &src, vars);
        let d = r.finish();
        p.ok_or_else(|| d.to_string())
    }

    #[test]
    fn syntax_errors_point_into_the_string() {
        let e = program("input.a > ", &["input"]).unwrap_err();
        // `x = "` is 5 characters; the error is at the end of the expression (column 6 + 10).
        assert!(e.starts_with("w.toml:1:16: error: CEL syntax error in `e`: mismatched input '<EOF>'"), "{e}");
        assert!(e.contains("help: expected"), "{e}");
    }

    #[test]
    fn unknown_variables_are_errors_but_comprehension_variables_are_not() {
        let e = program("inptu.a > 1", &["input", "tool"]).unwrap_err();
        assert!(e.starts_with("w.toml:1:6: error: unknown variable `inptu`"), "{e}");
        assert!(e.contains("did you mean `input`?"), "{e}");
        assert!(program("input.to.all(r, r.endsWith('@x.com')) && input.to.map(x, x).size() > 0", &["input"]).is_ok());
        let e = program("[1].map(x, x * y)", &["input"]).unwrap_err();
        assert!(e.contains("unknown variable `y`") && !e.contains("`x`"), "{e}");
    }

    /// The worst expressions the bounds allow compile and evaluate on a tokio-sized stack.
    #[test]
    fn bounded_expressions_fit_a_small_stack() {
        let long = format!("1{}", " + 1".repeat((MAX_EXPR_BYTES - 1) / 4));
        let deep = format!("{}1{}", "[".repeat(MAX_EXPR_NESTING), "]".repeat(MAX_EXPR_NESTING));
        let calls = format!("{}1{}", "int(".repeat(MAX_EXPR_NESTING), ")".repeat(MAX_EXPR_NESTING));
        let ok = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                [long, deep, calls].iter().all(|text| {
                    let p = program(text, &[]).unwrap();
                    crate::cel_json::eval_json(&p, &serde_json::Map::new()).is_ok()
                })
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(ok);
        let e = program(&format!("{}1{}", "(".repeat(40), ")".repeat(40)), &[]).unwrap_err();
        assert!(e.contains("w.toml:1:38: error: `e` nests brackets 40 deep, over the limit of 32"), "{e}");
        assert!(
            program("'((((((((((((((((((((((((((((((((((((' + ')'", &[]).is_ok(),
            "brackets in strings do not count"
        );
        assert!(program(&"1 + ".repeat(1100), &[]).unwrap_err().contains("over the limit of 4096"));
    }

    #[test]
    fn fields_and_kinds() {
        let p = program("{'a': state.pick.id, 'b': state['raw'], 'c': has(state.opt)}", &["state"]).unwrap();
        let fields: Vec<(String, usize)> = fields_of(&p, "state");
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["pick", "raw", "opt"]);
        assert_eq!(fields[0].1, p.source().find("pick").unwrap());
        assert_eq!(static_kind(&p), Some(Kind::Map));
        let kind = |s: &str| static_kind(&program(s, &["input"]).unwrap());
        assert_eq!(kind("has(input.a) && input.a > 5"), Some(Kind::Bool));
        assert_eq!(kind("input.a.exists(x, x > 1)"), Some(Kind::Bool));
        assert_eq!(kind("has(input.b) ? input.b : 0"), None);
        assert_eq!(kind("true ? 1 : 2"), Some(Kind::Int));
        assert_eq!(kind("input.a.map(x, x)"), Some(Kind::List));
        assert_eq!(kind("'x'"), Some(Kind::String));
        assert_eq!(kind("input.a"), None);
    }
}
