//! The cost of evaluating a CEL expression, bounded before it runs. The CEL evaluator has no
//! step limit and cannot be interrupted, and comprehensions (`all`, `exists`, `exists_one`,
//! `map`, `filter`) nest: each multiplies the work inside it by the size of what it iterates,
//! so a short rule can need 10^10 steps. [`estimate`] walks the expression once with the
//! values it will see and returns an upper bound on the steps; over [`MAX_EVAL_STEPS`] the
//! expression is not run (the policy fails closed: the call is denied).
//!
//! A step is one node evaluated once, plus the linear work some operators do: `in` scans its
//! list, `+` copies its operands, string functions scan their strings (counted per 64 bytes).
//! Sizes the estimate cannot read (a computed list) are bounded by the whole data's size.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::objects::Key;

/// The most steps one evaluation may need. A step is well under a microsecond, so an
/// evaluation stays under about a second whatever the rule and the data.
pub const MAX_EVAL_STEPS: u64 = 1_000_000;

/// What the data bound to an expression's variables can make it iterate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataSize {
    /// Every value, nested ones included.
    total: u64,
    /// The longest list or map.
    largest: u64,
    /// The longest string, in bytes.
    longest_string: u64,
}

impl DataSize {
    /// For checks at load time, before any value is known: every collection counts as one.
    pub(crate) const UNKNOWN: DataSize = DataSize { total: 1, largest: 1, longest_string: 0 };

    pub(crate) fn of<'a>(values: impl IntoIterator<Item = &'a cel::Value>) -> DataSize {
        let mut size = DataSize { total: 0, largest: 0, longest_string: 0 };
        let mut stack: Vec<&cel::Value> = values.into_iter().collect();
        while let Some(value) = stack.pop() {
            size.total = size.total.saturating_add(1);
            match value {
                cel::Value::List(items) => {
                    size.largest = size.largest.max(items.len() as u64);
                    stack.extend(items.iter());
                }
                cel::Value::Map(map) => {
                    size.largest = size.largest.max(map.map.len() as u64);
                    stack.extend(map.map.values());
                }
                cel::Value::String(s) => size.longest_string = size.longest_string.max(s.len() as u64),
                cel::Value::Bytes(b) => size.longest_string = size.longest_string.max(b.len() as u64),
                _ => {}
            }
        }
        size
    }
}

/// An upper bound on the steps evaluating `expr` takes with `lookup` giving the variables'
/// values (`None`: unknown, as at load time).
pub(crate) fn estimate<'v>(expr: &IdedExpr, lookup: &dyn Fn(&str) -> Option<&'v cel::Value>, data: DataSize) -> u64 {
    let walker = Walker { lookup, data };
    walker.cost(expr, 1, &mut Vec::new())
}

struct Walker<'l, 'v> {
    lookup: &'l dyn Fn(&str) -> Option<&'v cel::Value>,
    data: DataSize,
}

impl<'v> Walker<'_, 'v> {
    /// Steps of `expr` evaluated `times` times, with comprehension variables `bound` in scope.
    fn cost(&self, expr: &IdedExpr, times: u64, bound: &mut Vec<String>) -> u64 {
        let mut steps = times;
        let mut add = |more: u64| steps = steps.saturating_add(more);
        match &expr.expr {
            Expr::Comprehension(c) => {
                add(self.cost(&c.iter_range, times, bound));
                add(self.cost(&c.accu_init, times, bound));
                let inner = times.saturating_mul(self.size(&c.iter_range, bound).max(1));
                let scope = bound.len();
                bound.extend([c.iter_var.clone(), c.accu_var.clone()]);
                bound.extend(c.iter_var2.clone());
                add(self.cost(&c.loop_cond, inner, bound));
                add(self.cost(&c.loop_step, inner, bound));
                add(self.cost(&c.result, times, bound));
                bound.truncate(scope);
            }
            Expr::Call(call) => {
                let args = call.target.iter().map(|t| &**t).chain(call.args.iter());
                let linear = match call.func_name.as_str() {
                    "@in" => call.args.get(1).map_or(0, |list| self.size(list, bound)),
                    "_+_" => args
                        .clone()
                        .map(|a| self.size(a, bound))
                        .fold(self.data.longest_string / 64, u64::saturating_add),
                    "contains" | "startsWith" | "endsWith" | "matches" | "size" | "_==_" | "_!=_" => {
                        self.data.longest_string / 64
                    }
                    _ => 0,
                };
                add(times.saturating_mul(linear));
                for arg in args {
                    add(self.cost(arg, times, bound));
                }
            }
            Expr::Select(s) => add(self.cost(&s.operand, times, bound)),
            Expr::List(l) => l.elements.iter().for_each(|e| add(self.cost(e, times, bound))),
            Expr::Map(m) => m.entries.iter().for_each(|e| add(self.entry_cost(&e.expr, times, bound))),
            Expr::Struct(s) => s.entries.iter().for_each(|e| add(self.entry_cost(&e.expr, times, bound))),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
        steps
    }

    fn entry_cost(&self, entry: &EntryExpr, times: u64, bound: &mut Vec<String>) -> u64 {
        match entry {
            EntryExpr::MapEntry(e) => self.cost(&e.key, times, bound).saturating_add(self.cost(&e.value, times, bound)),
            EntryExpr::StructField(f) => self.cost(&f.value, times, bound),
        }
    }

    /// An upper bound on the number of elements `expr` can evaluate to.
    fn size(&self, expr: &IdedExpr, bound: &[String]) -> u64 {
        match &expr.expr {
            Expr::List(l) => l.elements.len() as u64,
            Expr::Map(m) => m.entries.len() as u64,
            Expr::Literal(LiteralValue::String(_) | LiteralValue::Bytes(_)) => 1,
            Expr::Literal(_) => 0,
            // `map` and `filter` build a list no longer than their range; the other macros a value.
            Expr::Comprehension(c) => match &c.accu_init.expr {
                Expr::List(l) if l.elements.is_empty() => self.size(&c.iter_range, bound),
                _ => 1,
            },
            Expr::Call(call) if call.func_name == "_+_" => {
                call.args.iter().map(|a| self.size(a, bound)).fold(0, u64::saturating_add)
            }
            Expr::Call(call) if call.func_name == "_?_:_" => {
                call.args.iter().skip(1).map(|a| self.size(a, bound)).max().unwrap_or(0)
            }
            Expr::Ident(_) | Expr::Select(_) => match self.path_value(expr, bound) {
                Path::Value(value) => collection_len(value),
                Path::Missing => 0,
                // Part of some value in the data: no longer than its longest collection.
                Path::InData => self.data.largest,
                Path::Unknown => self.data.total,
            },
            _ => self.data.total.saturating_mul(node_count(expr)),
        }
    }

    /// What a chain of field selections off a variable reads.
    fn path_value(&self, expr: &IdedExpr, bound: &[String]) -> Path<'v> {
        match &expr.expr {
            Expr::Ident(name) if bound.iter().any(|b| b == name) => Path::InData,
            Expr::Ident(name) => (self.lookup)(name).map_or(Path::Unknown, Path::Value),
            Expr::Select(s) => match self.path_value(&s.operand, bound) {
                Path::Value(cel::Value::Map(map)) => {
                    map.map.get(&Key::String(s.field.clone().into())).map_or(Path::Missing, Path::Value)
                }
                Path::Value(_) | Path::Missing => Path::Missing,
                other => other,
            },
            _ => Path::Unknown,
        }
    }
}

enum Path<'v> {
    Value(&'v cel::Value),
    /// The path reads nothing (the evaluation will fail there).
    Missing,
    /// Somewhere inside the data, through a comprehension variable.
    InData,
    /// Not known (at load time).
    Unknown,
}

fn collection_len(value: &cel::Value) -> u64 {
    match value {
        cel::Value::List(items) => items.len() as u64,
        cel::Value::Map(map) => map.map.len() as u64,
        _ => 1,
    }
}

fn node_count(expr: &IdedExpr) -> u64 {
    let mut count = 0u64;
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        count = count.saturating_add(1);
        match &e.expr {
            Expr::Call(c) => {
                stack.extend(c.target.iter().map(|t| &**t));
                stack.extend(c.args.iter());
            }
            Expr::Select(s) => stack.push(&s.operand),
            Expr::List(l) => stack.extend(l.elements.iter()),
            Expr::Comprehension(c) => {
                stack.extend([&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]);
            }
            Expr::Map(m) => m.entries.iter().for_each(|en| {
                if let EntryExpr::MapEntry(me) = &en.expr {
                    stack.extend([&me.key, &me.value]);
                }
            }),
            _ => {}
        }
    }
    count
}
