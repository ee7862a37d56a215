//! What converting one plain call's values may cost the host: at most the call's memory limit
//! (`Limits::memory_bytes`), for the input's values and for what the guest hands back alike. The
//! host then holds no more for a guest's values than the guest may hold itself.
//!
//! Results: wasmtime's dynamic `Func::call` lifts the whole result into a [`Val`] tree before
//! the host sees any of it. Its only bound is the store's *hostcall fuel* (128 MiB by default,
//! per lift), a count of bytes: `size_of::<Val>()` per list, tuple and record element and per
//! boxed payload, and the length of every string and copied name. What a unit costs depends
//! on the type, because the count leaves out the allocator's rounding (a one-byte name takes
//! 32), each record field's `String` header, flags' vectors, and the slack of vectors collected
//! without a size hint (up to twice the elements, at least four): a record of one field holding
//! a record costs 304 bytes for 41 units, a list of one-element lists 256 bytes per 80 units. [`LiftCost`] bounds, from the result's type alone,
//! what one unit can cost; the call sets the fuel to the budget divided by that. Running out is
//! [`crate::CallError::ValueTooLarge`]. (The fuel was never the larger part: before this bound
//! the lifted values were converted into a JSON tree, unbounded, which for a nested result cost
//! hundreds of bytes per byte of guest memory.)
//!
//! The fuel is per store, not per function: it also bounds each import call's arguments during
//! the call (WASI's and wasi:http's are byte lists and strings, one unit per byte).
//!
//! Inputs: [`Budget`] is charged by the JSON → `Val` conversion for each allocation it makes.
//!
//! Depth needs no check of its own: a value is exactly as deep as its type; the component
//! validator refuses types nested deeper than 100, and a type whose derived JSON Schema nests
//! deeper than serde_json's 128 levels (a `result` or `variant` chain of 32) is not offered.

use std::mem::size_of;

use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// Allocator overhead per allocation (glibc on 64-bit: an 8-byte header, 16-byte granules).
const ALLOC: usize = 16;
/// The smallest allocation (glibc: a 32-byte chunk): what a copied name costs beyond its length.
const MIN_ALLOC: usize = 32;
/// What wasmtime charges per element and per boxed payload; a value's size.
const SLOT: usize = size_of::<Val>();
/// A record field in wasmtime's `Vec<(String, Val)>`.
const FIELD: usize = size_of::<(String, Val)>();
/// A payload's `Box<Val>` as allocated.
const BOX: usize = SLOT + 8;
/// Vectors are collected from a fallible iterator, which gives no size hint: they start at
/// four elements and double, so a list's vector may hold twice its elements, and at least four.
const GROWTH: usize = 2;

/// The worst case of lifting one function's result, from its type: at most `per_slot` host
/// bytes per `SLOT` units of hostcall fuel, plus `top` bytes for the result value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiftCost {
    top: usize,
    per_slot: usize,
}

impl LiftCost {
    pub(crate) fn of(result: Option<&Type>) -> LiftCost {
        match result {
            None => LiftCost { top: 0, per_slot: SLOT },
            Some(ty) => LiftCost { top: excess(ty), per_slot: worst_slot(ty).max(SLOT) },
        }
    }

    /// The hostcall fuel under which lifting the result costs at most `budget` bytes.
    pub(crate) fn fuel(&self, budget: usize) -> usize {
        let usable = budget.saturating_sub(self.top) as u128;
        (usable * SLOT as u128 / self.per_slot as u128).try_into().unwrap_or(usize::MAX)
    }
}

/// Host bytes a value of `ty` allocates that no fuel pays for, besides its own slot and the
/// slots of its elements and payloads (which are charged, and counted in [`worst_slot`]).
fn excess(ty: &Type) -> usize {
    match ty {
        Type::String | Type::Enum(_) | Type::Variant(_) => MIN_ALLOC,
        Type::Flags(f) => {
            let n = f.names().count();
            (GROWTH * n).max(4) * size_of::<String>() + ALLOC + n * MIN_ALLOC
        }
        // A list of one element still has room for four: the excess over two elements' room.
        Type::List(_) => 2 * SLOT + ALLOC,
        _ => 0,
    }
}

/// Each of a vector's `n` elements of `size` bytes, when `n` is fixed by the type (a tuple, a
/// record, a fixed-length list): its share of the whole vector.
fn share(n: usize, size: usize) -> usize {
    (n.next_power_of_two().max(4) * size + ALLOC).div_ceil(n.max(1))
}

/// The most host bytes any one charged slot inside `ty` can hold: where it sits (a vector's
/// element, a record field with its name, a box) and the excess of the value in it.
fn worst_slot(ty: &Type) -> usize {
    let slot = |storage: usize, t: &Type| (storage + excess(t)).max(worst_slot(t));
    let payload = |t: Option<Type>| t.map_or(0, |t| slot(BOX, &t));
    match ty {
        Type::List(l) => slot(GROWTH * SLOT, &l.ty()),
        Type::FixedLengthList(l) => slot(share(l.len() as usize, SLOT), &l.ty()),
        Type::Tuple(t) => {
            let n = t.types().len();
            t.types().map(|t| slot(share(n, SLOT), &t)).max().unwrap_or(0)
        }
        Type::Record(r) => {
            let n = r.fields().len();
            r.fields().map(|f| slot(share(n, FIELD) + MIN_ALLOC, &f.ty)).max().unwrap_or(0)
        }
        Type::Option(o) => payload(Some(o.ty())),
        Type::Result(r) => payload(r.ok()).max(payload(r.err())),
        Type::Variant(v) => v.cases().map(|c| payload(c.ty)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Host bytes the input conversion may still allocate. It is charged every allocation the
/// conversion makes, as the allocator rounds it: each vector of values or record fields, each
/// boxed payload, each string and name.
pub(crate) struct Budget {
    left: usize,
}

/// The input's values would cost more than the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget;

impl Budget {
    pub(crate) fn new(bytes: usize) -> Budget {
        Budget { left: bytes }
    }

    /// `n` values in one vector (`Vec<Val>`).
    pub(crate) fn values(&mut self, n: usize) -> Result<(), OverBudget> {
        self.alloc(n.saturating_mul(SLOT))
    }

    /// `n` record fields in one vector (`Vec<(String, Val)>`).
    pub(crate) fn fields(&mut self, n: usize) -> Result<(), OverBudget> {
        self.alloc(n.saturating_mul(FIELD))
    }

    /// `n` flag names in one vector (`Vec<String>`).
    pub(crate) fn names(&mut self, n: usize) -> Result<(), OverBudget> {
        self.alloc(n.saturating_mul(size_of::<String>()))
    }

    /// A payload's box (`Box<Val>`).
    pub(crate) fn boxed(&mut self) -> Result<(), OverBudget> {
        self.alloc(SLOT)
    }

    /// A string's or a name's bytes.
    pub(crate) fn text(&mut self, s: &str) -> Result<(), OverBudget> {
        self.alloc(s.len())
    }

    fn alloc(&mut self, bytes: usize) -> Result<(), OverBudget> {
        let cost = if bytes == 0 { 0 } else { bytes.saturating_add(8).next_multiple_of(ALLOC).max(MIN_ALLOC) };
        self.left = self.left.checked_sub(cost).ok_or(OverBudget)?;
        Ok(())
    }
}
