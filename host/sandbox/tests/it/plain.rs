//! Plain components as tools: the `plain` fixture (a component that knows nothing of Tollgate)
//! is inspected, called with every supported WIT type, refused bad input with exact paths, and
//! held to the same limits as a plugin. Small components written in WAT cover naming clashes,
//! the component name, nothing callable, and the http capability; `plain-http` makes real
//! requests through the egress gate.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_sandbox::{CallError, Capability, Grants, Inspection, LoadError, Plugin, ToolError};

async fn plain(grants: Grants) -> Plugin {
    common::load(&common::sandbox(), "plain", grants).await
}

async fn inspect_plain() -> Inspection {
    let bytes = std::fs::read(common::plugin_path("plain")).unwrap();
    common::sandbox().inspect(&bytes).await.unwrap()
}

fn invalid_input(result: &Result<Value, CallError>) -> &str {
    match result {
        Err(CallError::InvalidInput { message }) => message,
        other => panic!("want invalid-input, got {other:?}"),
    }
}

const PRICING: &str = "tollgate-test:plain/pricing@0.1.0";

#[tokio::test]
async fn inspect_shows_tools_schemas_and_unsupported_functions() {
    let i = inspect_plain().await;
    let m = &i.manifest;
    assert_eq!((m.name.as_str(), m.version.as_str()), ("component", "0.0.0"));
    assert!(m.hosts.is_empty() && m.credentials.is_empty());
    assert!(i.capabilities.is_empty(), "{:?}", i.capabilities);
    let mut names: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "greet",
            "ledger_fee",
            "mirror_echo",
            "mirror_nothing",
            "pricing_adjust",
            "pricing_check_class",
            "pricing_quote",
            "stress_burn",
            "stress_crash",
            "stress_spin"
        ]
    );
    assert!(m.description.contains("10 of its 13 exported function(s)"), "{}", m.description);

    let plain = i.plain.as_ref().expect("a plain component");
    let export = |tool: &str| plain.tools.iter().find(|t| t.tool == tool).map(|t| t.export.as_str());
    assert_eq!(export("greet"), Some("greet"));
    assert_eq!(export("pricing_check_class"), Some(format!("{PRICING}#check-class").as_str()));
    let quote = m.tool("pricing_quote").unwrap();
    assert!(quote.description.contains(&format!("`{PRICING}#quote`")), "{}", quote.description);
    assert!(quote.idempotent && quote.effects.names().is_empty());

    // Resources are reported, with the parameter path; their neighbour `fee` is still a tool.
    let reasons: Vec<(&str, &str)> = plain.unsupported.iter().map(|u| (u.export.as_str(), u.reason.as_str())).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    let total = reasons.iter().find(|(e, _)| e.ends_with("/ledger@0.1.0#total")).expect("total reported").1;
    assert!(total.starts_with("accounts[]: a borrowed resource handle"), "{total}");
    assert!(reasons.iter().any(|(e, r)| e.ends_with("#[constructor]account") && r.starts_with("result: an owned")));
    assert!(reasons.iter().any(|(e, r)| e.ends_with("#[method]account.balance") && r.starts_with("self: a borrowed")));

    // The derived schemas.
    let greet = m.tool("greet").unwrap();
    assert_eq!(greet.input_schema["required"], json!(["name"]));
    assert_eq!(greet.input_schema["additionalProperties"], json!(false));
    assert_eq!(greet.input_schema["properties"]["excited"], json!({"anyOf": [{"type": "boolean"}, {"type": "null"}]}));
    assert_eq!(greet.output_schema.as_ref().unwrap()["type"], json!("string"));
    let item = &quote.input_schema["properties"]["order"]["properties"]["items"]["items"];
    assert_eq!(item["properties"]["qty"], json!({"type": "integer", "minimum": 0, "maximum": 255}));
    assert_eq!(item["properties"]["unit-cents"]["maximum"], json!(u64::MAX));
    assert_eq!(item["required"], json!(["sku", "qty", "unit-cents", "tags"]));
    assert_eq!(
        item["properties"]["tags"],
        json!({"type": "array", "items": {"enum": ["fragile", "perishable", "oversized"]}, "uniqueItems": true})
    );
    let shipping = &quote.input_schema["properties"]["shipping"]["oneOf"];
    assert_eq!(shipping[0], json!({"type": "string", "enum": ["pickup"]}));
    assert_eq!(shipping[2]["properties"]["freight"]["prefixItems"][0]["maximum"], json!(65535));
    // Top-level result: the output schema is the ok type.
    assert_eq!(quote.output_schema.as_ref().unwrap()["required"][0], json!("customer"));
    let class = m.tool("pricing_check_class").unwrap();
    assert_eq!(class.input_schema["properties"]["class"], json!({"type": "string", "minLength": 1, "maxLength": 1}));
    assert_eq!(class.output_schema.as_ref().unwrap()["type"], json!("null"));
}

fn everything() -> Value {
    json!({
        "flag": true,
        "a-s8": -128, "a-s16": -32768, "a-s32": -2147483648i64, "a-s64": i64::MIN,
        "a-u8": 255, "a-u16": 65535, "a-u32": 4294967295u64, "a-u64": u64::MAX,
        "a-f32": 0.1, "a-f64": -1.5e300,
        "letter": "🦀",
        "text": "héllo \"world\"\n",
        "bytes": [0, 1, 254, 255],
        "names": ["a", "", "c"],
        "triple": ["x", 7, false],
        "maybe": 42,
        "maybe-inner": {"label": "in", "weight": 2.5},
        "outcome": {"err": "bad"},
        "unit-outcome": {"ok": null},
        "ship": {"freight": [1200, 35.75]},
        "tier": "gold",
        "tags": ["fragile", "oversized"],
        "inners": [{"label": "a", "weight": -0.25}, {"label": "b", "weight": 3.0e38}],
        "grid": [[1, -2], [], [2147483647]]
    })
}

#[tokio::test]
async fn every_supported_type_round_trips() {
    let p = plain(Grants::new()).await;
    let input = everything();
    let o = common::call(&p, "mirror_echo", json!({"value": input})).await;
    assert_eq!(o.result.unwrap(), input);

    // The other cases and sides, and option fields left out (they come back as null).
    let mut v = everything();
    v["ship"] = json!("pickup");
    v["outcome"] = json!({"ok": 0});
    v["unit-outcome"] = json!({"err": ""});
    v["tags"] = json!([]);
    let obj = v.as_object_mut().unwrap();
    obj.remove("maybe");
    obj.remove("maybe-inner");
    let out = common::call(&p, "mirror_echo", json!({"value": v})).await.result.unwrap();
    assert_eq!(out["maybe"], Value::Null);
    assert_eq!(out["maybe-inner"], Value::Null);
    assert_eq!((&out["ship"], &out["outcome"], &out["unit-outcome"]), (&v["ship"], &v["outcome"], &v["unit-outcome"]));
    v["ship"] = json!({"courier": "DHL"});
    assert_eq!(common::call(&p, "mirror_echo", json!({"value": v})).await.result.unwrap()["ship"], v["ship"]);

    // An integer-valued float is an integer, as in JSON Schema; flags come back in declaration
    // order.
    let mut w = everything();
    w["a-u8"] = json!(7.0);
    w["tags"] = json!(["oversized", "perishable", "fragile"]);
    let out = common::call(&p, "mirror_echo", json!({"value": w})).await.result.unwrap();
    assert_eq!((&out["a-u8"], &out["tags"]), (&json!(7), &json!(["fragile", "perishable", "oversized"])));

    assert_eq!(common::call(&p, "mirror_nothing", json!({})).await.result.unwrap(), Value::Null);
    let greet = common::call(&p, "greet", json!({"name": "Ada", "excited": true})).await.result.unwrap();
    assert_eq!(greet, json!("Hello, Ada!"));
    assert_eq!(common::call(&p, "greet", json!({"name": "Ada"})).await.result.unwrap(), json!("Hello, Ada."));
    assert_eq!(
        common::call(&p, "greet", json!({"name": "Ada", "excited": null})).await.result.unwrap(),
        json!("Hello, Ada.")
    );
    let big = common::call(&p, "pricing_adjust", json!({"delta": 1, "small": 0, "medium": 0, "large": i64::MAX})).await;
    assert_eq!(big.result.unwrap(), json!(i64::MAX));
    assert_eq!(common::call(&p, "ledger_fee", json!({"cents": 1000})).await.result.unwrap(), json!(40));
}

fn order(items: Value) -> Value {
    json!({"order": {"customer": "acme", "tier": "silver", "items": items, "coupon": null}, "shipping": "pickup"})
}

#[tokio::test]
async fn results_at_top_level_are_output_or_tool_error() {
    let p = plain(Grants::new()).await;
    let items = json!([
        {"sku": "a1", "qty": 2, "unit-cents": 1000, "discount-pct": 10, "tags": ["fragile"]},
        {"sku": "b2", "qty": 1, "unit-cents": 500, "tags": []}
    ]);
    let mut input = order(items);
    input["shipping"] = json!({"freight": [10, 20.0]});
    let q = common::call(&p, "pricing_quote", input).await.result.unwrap();
    // 2500 gross, 200 line discount, 5% silver of the rest (115), 100 freight.
    assert_eq!(q["subtotal-cents"], json!(2500));
    assert_eq!(q["discount-cents"], json!(315));
    assert_eq!(q["total-cents"], json!(2500 - 315 + 100));
    assert_eq!(q["lines"], json!([{"sku": "a1", "cents": 1800}, {"sku": "b2", "cents": 500}]));
    assert_eq!(q["fragile"], json!(true));

    // err with a payload: E as JSON; a payload-less case: the case name; a string E: the string.
    let unknown = json!([{"sku": "x9", "qty": 1, "unit-cents": 1, "tags": []}]);
    let o = common::call(&p, "pricing_quote", order(unknown)).await;
    assert_eq!(o.result, Err(CallError::Tool(ToolError::InvalidInput { message: r#"{"unknown-sku":"x9"}"#.into() })));
    assert_eq!(o.report.outcome, "tool-invalid-input");
    let o = common::call(&p, "pricing_quote", order(json!([]))).await;
    assert_eq!(o.result, Err(CallError::Tool(ToolError::InvalidInput { message: "empty-order".into() })));
    let o = common::call(&p, "pricing_check_class", json!({"class": "7"})).await;
    assert_eq!(
        o.result,
        Err(CallError::Tool(ToolError::InvalidInput { message: "class `7` is not an ASCII letter".into() }))
    );
    // ok of `result<_, E>` is null.
    assert_eq!(common::call(&p, "pricing_check_class", json!({"class": "q"})).await.result.unwrap(), Value::Null);
}

#[tokio::test]
async fn mismatches_name_the_path_and_the_wit_type_before_anything_runs() {
    let p = plain(Grants::new()).await;
    let item = |qty: Value| json!({"sku": "a", "qty": qty, "unit-cents": 1, "tags": []});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "pricing_quote",
            order(json!([item(json!(1)), item(json!(2)), item(json!(300))])),
            "input.order.items[2].qty: expected u8 (0..=255), got 300",
        ),
        ("pricing_quote", order(json!([item(json!(-1))])), "input.order.items[0].qty: expected u8 (0..=255), got -1"),
        ("pricing_quote", order(json!([item(json!(1.5))])), "input.order.items[0].qty: expected u8 (0..=255), got 1.5"),
        (
            "pricing_check_class",
            json!({"class": "ab"}),
            r#"input.class: expected char (a string of exactly one character), got "ab""#,
        ),
        ("pricing_check_class", json!({}), "input.class: missing (a required parameter, expected char"),
        (
            "pricing_check_class",
            json!({"class": "a", "extra": 1}),
            "input: unknown parameter `extra` (parameters: class)",
        ),
        (
            "pricing_adjust",
            json!({"delta": -129, "small": 0, "medium": 0, "large": 0}),
            "input.delta: expected s8 (-128..=127), got -129",
        ),
        (
            "pricing_adjust",
            json!({"delta": 0, "small": 0, "medium": 0, "large": 9223372036854775808u64}),
            "input.large: expected s64 (-9223372036854775808..=9223372036854775807), got 9223372036854775808",
        ),
        (
            "pricing_quote",
            json!({"order": {"customer": "c", "tier": "platinum", "items": []}, "shipping": "pickup"}),
            r#"input.order.tier: expected enum (one of "bronze", "silver", "gold"), got "platinum""#,
        ),
        (
            "pricing_quote",
            json!({"order": {"customer": "c", "tier": "gold", "items": [], "vip": true}, "shipping": "pickup"}),
            "input.order: unknown field `vip` (fields: customer, tier, items, coupon)",
        ),
        (
            "pricing_quote",
            json!({"order": {"customer": "c", "tier": "gold", "items": []}, "shipping": "courier"}),
            r#"input.shipping: case "courier" carries a value: write {"courier": …}"#,
        ),
        (
            "pricing_quote",
            json!({"order": {"customer": "c", "tier": "gold", "items": []}, "shipping": {"freight": [70000, 1.0]}}),
            "input.shipping.freight[0]: expected u16 (0..=65535), got 70000",
        ),
        (
            "pricing_quote",
            order(json!([{"sku": "a", "qty": 1, "unit-cents": 1, "tags": ["fragile", "fragile"]}])),
            "input.order.items[0].tags: expected flags (an array of distinct names from",
        ),
    ];
    for (tool, input, want) in cases {
        let o = common::call(&p, tool, input.clone()).await;
        let message = invalid_input(&o.result);
        assert!(message.contains(want), "{tool} {input}:\n  got  {message}\n  want {want}");
        assert_eq!(o.report.outcome, "invalid-input");
        // Refused before instantiation: no fuel, no memory.
        assert_eq!((o.report.fuel_used, o.report.peak_memory_bytes), (0, 0), "{tool} {input}");
    }
    // The gate's own check (schema only) refuses the same input.
    assert!(p.check_input("pricing_check_class", &json!({"class": "ab"})).is_err());
    assert!(p.check_input("pricing_check_class", &json!({"class": "a"})).is_ok());
}

#[tokio::test]
async fn limits_hold_and_the_next_call_works() {
    let limits = tollgate_sandbox::Limits {
        fuel: 50_000_000,
        timeout: Duration::from_millis(300),
        ..tollgate_sandbox::Limits::default()
    };
    let p = plain(Grants::new().limits(limits.clone())).await;
    let o = common::call(&p, "stress_burn", json!({"iterations": u64::MAX})).await;
    assert_eq!(o.result, Err(CallError::FuelExhausted { limit: 50_000_000 }));
    assert_eq!(o.report.outcome, "fuel-exhausted");
    let ok = common::call(&p, "stress_burn", json!({"iterations": 1000})).await;
    assert!(ok.result.as_ref().is_ok_and(Value::is_u64), "{:?}", ok.result);
    assert!(ok.report.fuel_used > 1000);

    let spin = plain(Grants::new().limits(tollgate_sandbox::Limits { fuel: u64::MAX / 2, ..limits })).await;
    let started = Instant::now();
    let o = common::call(&spin, "stress_spin", json!({})).await;
    assert!(matches!(o.result, Err(CallError::Timeout { .. })), "{:?}", o.result);
    assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
    assert_eq!(common::call(&spin, "greet", json!({"name": "x"})).await.result.unwrap(), json!("Hello, x."));

    let o = common::call(&p, "stress_crash", json!({"message": "boom 42"})).await;
    match &o.result {
        Err(CallError::Trap { message, .. }) => assert!(message.contains("boom 42"), "{message}"),
        other => panic!("want a trap, got {other:?}"),
    }
    assert!(common::call(&p, "ledger_fee", json!({"cents": 0})).await.result.is_ok());
}

#[tokio::test]
async fn credentials_cannot_be_granted_to_a_plain_component() {
    let g = Grants::new().credential("api", tollgate_sandbox::SecretSource::Env("X".into()));
    let err = common::sandbox().load_file(common::plugin_path("plain"), g).await.unwrap_err();
    assert!(matches!(err, LoadError::InvalidGrants(_)), "{err}");
    assert!(err.to_string().contains("credential `api`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Components written in WAT: naming, component names, nothing callable, capabilities.

/// A component whose core module exports `f: () -> i32` and `g: (i32, i32, i32)`; `body` lifts
/// and exports them.
fn component(name: &str, imports: &str, body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component {name}
            {imports}
            (core module $m
                (func (export "f") (result i32) i32.const 7)
                (func (export "g") (param i32 i32 i32)))
            (core instance $i (instantiate $m))
            (func $f (result u32) (canon lift (core func $i "f")))
            {body})"#
    ))
    .expect("valid WAT")
}

async fn load(bytes: &[u8], grants: Grants) -> Result<Plugin, LoadError> {
    common::sandbox().load(bytes, grants).await
}

#[tokio::test]
async fn names_come_from_the_component_and_clashes_are_refused() {
    let ok = component("$My-Calc", "", r#"(export "seven" (func $f))"#);
    let p = load(&ok, Grants::new()).await.unwrap();
    assert_eq!(p.manifest().name, "my-calc");
    assert_eq!(p.call("seven", "{}", &common::ctx("k")).await.result.unwrap(), json!(7));

    let clash = component(
        "",
        "",
        r#"(export "pricing-quote" (func $f))
           (instance $pricing (export "quote" (func $f)))
           (export "acme:shop/pricing@1.0.0" (instance $pricing))"#,
    );
    let err = load(&clash, Grants::new()).await.unwrap_err();
    assert!(matches!(err, LoadError::PlainComponent(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`pricing-quote`")
            && text.contains("`acme:shop/pricing@1.0.0#quote`")
            && text.contains("`pricing_quote`"),
        "{text}"
    );

    let long = "a".repeat(60);
    let too_long = component("", "", &format!(r#"(export "{long}-tool" (func $f))"#));
    let text = load(&too_long, Grants::new()).await.unwrap_err().to_string();
    assert!(text.contains(&format!("`{long}-tool`")) && text.contains("at most 64"), "{text}");
}

#[tokio::test]
async fn a_component_with_nothing_callable_does_not_load() {
    let nested = component(
        "",
        "",
        r#"(func $g (param "x" (option (option u32))) (canon lift (core func $i "g")))
           (export "pick" (func $g))"#,
    );
    let err = load(&nested, Grants::new()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LoadError::PlainComponent(_)), "{text}");
    assert!(text.contains("no callable functions") && text.contains("`pick`: x: option<option<…>>"), "{text}");

    let empty = component("", "", "");
    let text = load(&empty, Grants::new()).await.unwrap_err().to_string();
    assert!(text.contains("no callable functions: the component exports 0 function(s)"), "{text}");
}

#[tokio::test]
async fn http_importing_components_need_a_grant_and_write() {
    let bytes =
        component("", r#"(import "wasi:http/outgoing-handler@0.2.0" (instance))"#, r#"(export "fetch" (func $f))"#);
    let err = load(&bytes, Grants::new()).await.unwrap_err();
    assert!(matches!(err, LoadError::Import(_)), "{err}");
    assert!(err.to_string().contains("wasi:http/outgoing-handler@0.2.0"), "{err}");

    let i = common::sandbox().inspect(&bytes).await.unwrap();
    let tool = i.manifest.tool("fetch").unwrap();
    assert_eq!(tool.effects.names(), ["read", "write"]);
    assert!(!tool.idempotent);

    let p = load(&bytes, Grants::new().allow_host("https://api.example.test").unwrap()).await.unwrap();
    assert_eq!(p.capabilities(), [Capability::Http]);
    assert!(p.manifest().hosts.is_empty());
    assert_eq!(p.call("fetch", "{}", &common::ctx("k")).await.result.unwrap(), json!(7));
}

// ---------------------------------------------------------------------------------------------
// Outbound HTTP from a plain component: `plain-http` (wasi:http through the `wasip2` crate)
// against a loopback server this test starts. The operator's host grants are its whole policy.

#[tokio::test]
async fn a_plain_component_reaches_a_granted_host_through_the_gate() {
    let server = common::TestServer::start().await;
    let origin = format!("http://127.0.0.1:{}", server.port());
    let p = common::load(&common::sandbox(), "plain-http", Grants::new().allow_host(&origin).unwrap()).await;
    assert_eq!(p.capabilities(), [Capability::Http]);
    let fetch = p.manifest().tool("fetch_status").unwrap();
    assert_eq!(fetch.effects.names(), ["read", "write"]);

    let o = tokio::time::timeout(
        Duration::from_secs(20),
        common::call(&p, "fetch_status", json!({"url": format!("{origin}/ok")})),
    )
    .await
    .expect("the call ends");
    assert_eq!(o.result.unwrap(), json!(200));
    let hits = server.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!((hits[0].method.as_str(), hits[0].path.as_str()), ("GET", "/ok"));
    let egress = &o.report.egress;
    assert_eq!(egress.len(), 1, "{egress:?}");
    assert_eq!(
        (egress[0].host.as_str(), egress[0].status, egress[0].denied.as_deref()),
        ("127.0.0.1", Some(200), None)
    );
}

#[tokio::test]
async fn a_plain_component_is_denied_a_host_not_granted_and_nothing_is_sent() {
    let server = common::TestServer::start().await;
    // http is granted (or the component would not load), but not for this server.
    let grants = Grants::new().allow_host("http://api.example.test").unwrap();
    let p = common::load(&common::sandbox(), "plain-http", grants).await;
    let url = format!("http://127.0.0.1:{}/ok", server.port());
    let o = tokio::time::timeout(Duration::from_secs(20), common::call(&p, "fetch_status", json!({"url": url})))
        .await
        .expect("the call ends");
    // The function's `err` (the wasi:http error code), reported as the gate's denial.
    match &o.result {
        Err(CallError::Tool(ToolError::Denied { message })) => {
            assert_eq!(message, "ErrorCode::HttpRequestDenied")
        }
        other => panic!("want the typed denial, got {other:?}"),
    }
    assert_eq!(o.report.outcome, "tool-denied");
    let denied = o.report.egress.first().and_then(|e| e.denied.as_deref()).unwrap_or_default();
    assert!(denied.contains("not granted by the operator"), "{:?}", o.report.egress);
    assert_eq!(server.hits().len(), 0, "the server received a request");

    // A plain `err` with no denial behind it stays the function's own refusal of its input.
    let o = common::call(&p, "fetch_status", json!({"url": "ftp://api.example.test/"})).await;
    assert_eq!(
        o.result,
        Err(CallError::Tool(ToolError::InvalidInput { message: r#"unsupported scheme "ftp""#.into() }))
    );
    assert!(o.report.egress.is_empty());
}
