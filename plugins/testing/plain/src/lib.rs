//! `plain`: a WebAssembly component that knows nothing of Tollgate.
//!
//! It exports ordinary WIT functions (`wit/plain.wit`): an inventory and pricing calculator
//! (`pricing`), a mirror that returns a value using every supported WIT type unchanged
//! (`mirror`), a ledger with a resource (`ledger`: its resource-taking function is reported as
//! unsupported by the host, `fee` is still a tool), misbehaviour for the limit tests (`stress`)
//! and a world-level `greet`. The host's tests load it as a plain component: every function
//! becomes a tool with a JSON Schema derived from its WIT types.

wit_bindgen::generate!({
    path: "wit",
    world: "plain",
});

use std::cell::Cell;
use std::hint::black_box;

use exports::tollgate_test::plain::ledger::{self, AccountBorrow, GuestAccount};
use exports::tollgate_test::plain::mirror::{self, Everything};
use exports::tollgate_test::plain::pricing::{self, Line, Order, Priced, QuoteError, Shipping, Tags, Tier};
use exports::tollgate_test::plain::stress;

struct Plain;

/// Largest number of items one quote accepts.
const MAX_ITEMS: u32 = 50;

impl pricing::Guest for Plain {
    fn quote(order: Order, shipping: Shipping) -> Result<Priced, QuoteError> {
        if order.items.is_empty() {
            return Err(QuoteError::EmptyOrder);
        }
        if order.items.len() as u32 > MAX_ITEMS {
            return Err(QuoteError::TooMany(order.items.len() as u32));
        }
        let mut lines = Vec::new();
        let (mut subtotal, mut discount, mut fragile) = (0u64, 0u64, false);
        for item in &order.items {
            if item.sku.starts_with('x') {
                return Err(QuoteError::UnknownSku(item.sku.clone()));
            }
            let gross = item.unit_cents.saturating_mul(u64::from(item.qty));
            let off = gross * u64::from(item.discount_pct.unwrap_or(0).min(100)) / 100;
            subtotal = subtotal.saturating_add(gross);
            discount = discount.saturating_add(off);
            fragile |= item.tags.contains(Tags::FRAGILE);
            lines.push(Line { sku: item.sku.clone(), cents: gross - off });
        }
        let tier_pct = match order.tier {
            Tier::Bronze => 0,
            Tier::Silver => 5,
            Tier::Gold => 10,
        };
        discount = discount.saturating_add((subtotal - discount) * tier_pct / 100);
        if order.coupon.as_deref() == Some("FLAT500") {
            discount = discount.saturating_add(500).min(subtotal);
        }
        let shipping_cents = match shipping {
            Shipping::Pickup => 0,
            Shipping::Courier(_) => 900,
            Shipping::Freight((kg, km)) => (f64::from(kg) * km * 0.5).round() as u64,
        };
        Ok(Priced {
            customer: order.customer,
            lines,
            subtotal_cents: subtotal,
            discount_cents: discount,
            shipping_cents,
            total_cents: subtotal - discount + shipping_cents,
            fragile,
        })
    }

    fn adjust(delta: i8, small: i16, medium: i32, large: i64) -> i64 {
        large.saturating_add(i64::from(delta) + i64::from(small) + i64::from(medium))
    }

    fn check_class(class: char) -> Result<(), String> {
        if class.is_ascii_alphabetic() { Ok(()) } else { Err(format!("class `{class}` is not an ASCII letter")) }
    }
}

impl mirror::Guest for Plain {
    fn echo(value: Everything) -> Everything {
        value
    }

    fn nothing() {}
}

/// One account: an owner and a balance in cents.
struct Account {
    balance: Cell<i64>,
}

impl GuestAccount for Account {
    fn new(owner: String) -> Account {
        Account { balance: Cell::new(owner.len() as i64) }
    }

    fn balance(&self) -> i64 {
        self.balance.get()
    }
}

impl ledger::Guest for Plain {
    type Account = Account;

    fn total(accounts: Vec<AccountBorrow<'_>>) -> i64 {
        accounts.iter().map(|a| a.get::<Account>().balance()).sum()
    }

    fn fee(cents: u32) -> u32 {
        cents / 100 + 30
    }
}

impl stress::Guest for Plain {
    fn spin() {
        let mut counter: u64 = 0;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }

    fn burn(iterations: u64) -> u64 {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut i: u64 = 0;
        while i < iterations {
            x = black_box((x.rotate_left(5) ^ i).wrapping_mul(0x0000_0100_0000_01B3));
            i += 1;
        }
        x
    }

    fn crash(message: String) {
        panic!("{message}");
    }
}

impl Guest for Plain {
    fn greet(name: String, excited: Option<bool>) -> String {
        if excited.unwrap_or(false) { format!("Hello, {name}!") } else { format!("Hello, {name}.") }
    }
}

export!(Plain);
