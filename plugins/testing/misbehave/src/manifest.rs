//! The manifest: every tool with its hand-written JSON Schemas.

use crate::tollgate::plugin::types::{Credential, Effects, Manifest, Tool};

/// `$schema` of every schema below.
macro_rules! schema {
    ($body:literal) => {
        concat!(r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","#, $body, "}")
    };
}

/// An object with no properties.
const EMPTY_OBJECT: &str = schema!(r#""type":"object","properties":{},"additionalProperties":false"#);

/// `fetch`'s input and output (`fetch_scoped` shares them).
const FETCH_INPUT: &str = schema!(
    r#""type":"object","properties":{"url":{"type":"string","minLength":1},"method":{"type":"string","minLength":1},"headers":{"type":"object","additionalProperties":{"type":"string"}},"body":{"type":"string"},"follow_redirects":{"type":"boolean"},"max_redirects":{"type":"integer","minimum":0,"maximum":1000},"hex_body":{"type":"boolean"}},"required":["url"],"additionalProperties":false"#
);
const FETCH_OUTPUT: &str = schema!(
    r#""type":"object","properties":{"status":{"type":"integer"},"headers":{"type":"object","additionalProperties":{"type":"string"}},"body":{"type":"string"},"body_hex":{"type":"string"},"location":{"type":"string"},"hops":{"type":"array","items":{"type":"object","properties":{"url":{"type":"string"},"status":{"type":"integer"}},"required":["url","status"]}},"header_errors":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"},"error":{"type":"string"}},"required":["name","error"]}}},"required":["status","headers","body","hops"],"additionalProperties":false"#
);

/// The requests `fetch_scoped` declares.
pub const FETCH_SCOPED_REQUESTS: [&str; 2] = ["GET api.example.test/items/*", "POST api.example.test/search"];

/// One tool's static description.
pub struct Spec {
    pub name: &'static str,
    pub description: &'static str,
    pub input: &'static str,
    pub output: Option<&'static str>,
    pub effects: Effects,
    pub idempotent: bool,
}

const fn spec(
    name: &'static str,
    description: &'static str,
    input: &'static str,
    output: Option<&'static str>,
) -> Spec {
    Spec { name, description, input, output, effects: Effects::empty(), idempotent: true }
}

/// Every tool, in manifest order.
pub fn specs() -> Vec<Spec> {
    vec![
        spec(
            "spin",
            "Loops forever. Proves the host's CPU limit (epoch deadline or fuel) stops a call that \
             never returns.",
            EMPTY_OBJECT,
            None,
        ),
        spec(
            "burn",
            "Runs a CPU loop of `iterations` iterations and returns {result}.",
            schema!(
                r#""type":"object","properties":{"iterations":{"type":"integer","minimum":0}},"required":["iterations"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"result":{"type":"integer","minimum":0}},"required":["result"],"additionalProperties":false"#
            )),
        ),
        spec(
            "alloc",
            "Allocates `mib` MiB and writes one byte every 4 KiB; returns {mib}. Infallible by \
             default (an allocation failure aborts, so the call traps); with `fallible` true a \
             failed allocation is returned as an internal tool error instead.",
            schema!(
                r#""type":"object","properties":{"mib":{"type":"integer","minimum":0,"maximum":4095},"fallible":{"type":"boolean"}},"required":["mib"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"mib":{"type":"integer","minimum":0}},"required":["mib"],"additionalProperties":false"#
            )),
        ),
        spec(
            "recurse",
            "Recurses `depth` levels deep (non-tail, so the stack really grows); returns {depth}.",
            schema!(
                r#""type":"object","properties":{"depth":{"type":"integer","minimum":0,"maximum":4294967295}},"required":["depth"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"depth":{"type":"integer","minimum":0}},"required":["depth"],"additionalProperties":false"#
            )),
        ),
        spec(
            "huge_output",
            "Returns a JSON string whose whole encoded output is exactly `bytes` bytes (the two \
             quotes included).",
            schema!(
                r#""type":"object","properties":{"bytes":{"type":"integer","minimum":2,"maximum":4294967295}},"required":["bytes"],"additionalProperties":false"#
            ),
            Some(schema!(r#""type":"string""#)),
        ),
        spec("bad_output", "Returns text that is not JSON.", EMPTY_OBJECT, None),
        spec(
            "wrong_output",
            "Returns valid JSON that does not match the declared output schema.",
            EMPTY_OBJECT,
            Some(schema!(
                r#""type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false"#
            )),
        ),
        spec("panic", "Panics (the call traps).", EMPTY_OBJECT, None),
        Spec {
            effects: Effects::READ | Effects::WRITE,
            idempotent: false,
            ..spec(
                "fetch",
                "Sends one HTTP request through wasi:http and reads the response fully. With \
                 `follow_redirects` it follows 3xx `Location` itself, one new request per hop. \
                 A host denial comes back as a `denied` tool error carrying the wasi:http error \
                 code, any other wasi:http error as `upstream`.",
                FETCH_INPUT,
                Some(FETCH_OUTPUT),
            )
        },
        Spec {
            effects: Effects::READ,
            ..spec(
                "fetch_scoped",
                "The same request as `fetch`, from a tool that declares its requests (the \
                 `requests` export): GET api.example.test/items/* and POST \
                 api.example.test/search only. Proves the host refuses anything else.",
                FETCH_INPUT,
                Some(FETCH_OUTPUT),
            )
        },
        Spec {
            effects: Effects::READ,
            ..spec(
                "fetch_many",
                "Sends `count` sequential GET requests to `url`; returns every status and the \
                 error text of the first failure, where it stops.",
                schema!(
                    r#""type":"object","properties":{"url":{"type":"string","minLength":1},"count":{"type":"integer","minimum":0,"maximum":100000}},"required":["url","count"],"additionalProperties":false"#
                ),
                Some(schema!(
                    r#""type":"object","properties":{"statuses":{"type":"array","items":{"type":"integer"}},"error":{"type":"string"}},"required":["statuses"],"additionalProperties":false"#
                )),
            )
        },
        Spec {
            effects: Effects::WRITE,
            idempotent: false,
            ..spec(
                "post_big",
                "POSTs a body of `bytes` bytes to `url`, streamed in 4 KiB writes; \
                 `content_length`, if given, is declared in a content-length header whatever \
                 the real size. Returns {status, sent}.",
                schema!(
                    r#""type":"object","properties":{"url":{"type":"string","minLength":1},"bytes":{"type":"integer","minimum":0},"content_length":{"type":"integer","minimum":0}},"required":["url","bytes"],"additionalProperties":false"#
                ),
                Some(schema!(
                    r#""type":"object","properties":{"status":{"type":"integer"},"sent":{"type":"integer","minimum":0}},"required":["status","sent"],"additionalProperties":false"#
                )),
            )
        },
        spec(
            "read_env",
            "Returns the environment variables and arguments the plugin sees.",
            EMPTY_OBJECT,
            Some(schema!(
                r#""type":"object","properties":{"vars":{"type":"object","additionalProperties":{"type":"string"}},"args":{"type":"array","items":{"type":"string"}}},"required":["vars","args"],"additionalProperties":false"#
            )),
        ),
        spec(
            "read_file",
            "Tries to read the file at `path` and to list the directories \"/\" and \".\"; \
             reports what happened.",
            schema!(
                r#""type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"ok":{"type":"boolean"},"error":{"type":"string"},"content":{"type":"string"},"listings":{"type":"object","additionalProperties":{"type":"object","properties":{"ok":{"type":"boolean"},"error":{"type":"string"},"entries":{"type":"array","items":{"type":"string"}}},"required":["ok"]}}},"required":["ok","listings"],"additionalProperties":false"#
            )),
        ),
        spec(
            "print",
            "Writes `bytes` bytes to stdout and the same to stderr (lines of 79 'x' and a \
             newline), ignoring write errors.",
            schema!(
                r#""type":"object","properties":{"bytes":{"type":"integer","minimum":0}},"required":["bytes"],"additionalProperties":false"#
            ),
            Some(EMPTY_OBJECT),
        ),
        spec(
            "sleep",
            "Blocks in the host for `ms` milliseconds (wasi:clocks monotonic-clock \
             subscribe-duration, then block).",
            schema!(
                r#""type":"object","properties":{"ms":{"type":"integer","minimum":0,"maximum":18446744073709}},"required":["ms"],"additionalProperties":false"#
            ),
            Some(EMPTY_OBJECT),
        ),
        spec(
            "kv_roundtrip",
            "Sets `key` to `value` in the plugin's key-value store, reads it back and returns \
             {value}.",
            schema!(
                r#""type":"object","properties":{"key":{"type":"string"},"value":{"type":"string"}},"required":["key","value"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"value":{"type":["string","null"]}},"required":["value"],"additionalProperties":false"#
            )),
        ),
        Spec {
            idempotent: false,
            ..spec(
                "kv_fill",
                "Sets `count` keys (`prefix` + a zero-padded index) of `bytes` bytes each, \
                 stopping at the first error; returns {stored, error?}.",
                schema!(
                    r#""type":"object","properties":{"count":{"type":"integer","minimum":0,"maximum":4294967295},"bytes":{"type":"integer","minimum":0,"maximum":4294967295},"prefix":{"type":"string"}},"required":["count","bytes"],"additionalProperties":false"#
                ),
                Some(schema!(
                    r#""type":"object","properties":{"stored":{"type":"integer","minimum":0},"error":{"type":"string"}},"required":["stored"],"additionalProperties":false"#
                )),
            )
        },
        spec(
            "secret",
            "Reads the secret `name` through the secrets interface and returns only its {length}.",
            schema!(
                r#""type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"length":{"type":"integer","minimum":0}},"required":["length"],"additionalProperties":false"#
            )),
        ),
        spec(
            "leak_secret",
            "Reads the secret `name` and leaks it: in the output {value} (`via` \"output\", the \
             default), in a log line and its fields (\"log\"), in a tool error (\"error\"), on \
             stdout and stderr (\"stdout\"), or in all of these (\"all\").",
            schema!(
                r#""type":"object","properties":{"name":{"type":"string"},"via":{"enum":["output","log","error","stdout","all"]}},"required":["name"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"value":{"type":"string"},"leaked_via":{"type":"string"}},"required":["leaked_via"],"additionalProperties":false"#
            )),
        ),
        spec(
            "log_spam",
            "Emits `count` log lines of exactly `bytes` bytes each; returns {emitted}.",
            schema!(
                r#""type":"object","properties":{"count":{"type":"integer","minimum":0,"maximum":4294967295},"bytes":{"type":"integer","minimum":0,"maximum":4294967295},"level":{"enum":["trace","debug","info","warn","error"]}},"required":["count","bytes"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"emitted":{"type":"integer","minimum":0}},"required":["emitted"],"additionalProperties":false"#
            )),
        ),
        spec(
            "raw_tcp",
            "Tries a raw wasi:sockets TCP connect to `addr` (\"a.b.c.d:port\" or \"[v6]:port\"), \
             then the same through Rust std; returns {connected, error?, std_connected, \
             std_error?}.",
            schema!(
                r#""type":"object","properties":{"addr":{"type":"string"}},"required":["addr"],"additionalProperties":false"#
            ),
            Some(schema!(
                r#""type":"object","properties":{"connected":{"type":"boolean"},"error":{"type":"string"},"std_connected":{"type":"boolean"},"std_error":{"type":"string"}},"required":["connected","std_connected"],"additionalProperties":false"#
            )),
        ),
        spec(
            "context",
            "Returns the call context the host passed: {run_id, call_id, idempotency_key}.",
            EMPTY_OBJECT,
            Some(schema!(
                r#""type":"object","properties":{"run_id":{"type":"string"},"call_id":{"type":"string"},"idempotency_key":{"type":"string"}},"required":["run_id","call_id","idempotency_key"],"additionalProperties":false"#
            )),
        ),
        spec(
            "recall_secret",
            "Returns the secret value the last `secret` call on this instance read (empty on a fresh \
             instance): a guest that keeps a secret in memory for a later call.",
            EMPTY_OBJECT,
            Some(schema!(
                r#""type":"object","properties":{"value":{"type":"string"}},"required":["value"],"additionalProperties":false"#
            )),
        ),
        spec(
            "counter",
            "Increments a counter held in guest memory and returns it: 1 on a fresh instance, more \
             on an instance reused by the host.",
            EMPTY_OBJECT,
            Some(schema!(
                r#""type":"object","properties":{"count":{"type":"integer","minimum":1}},"required":["count"],"additionalProperties":false"#
            )),
        ),
        spec(
            "echo",
            "Returns the input object unchanged.",
            schema!(r#""type":"object""#),
            Some(schema!(r#""type":"object""#)),
        ),
    ]
}

pub fn manifest() -> Manifest {
    Manifest {
        name: "misbehave".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: "Deliberately misbehaving tools for the host's test suite: each one tries to \
                      break a limit or get past a gate."
            .to_string(),
        tools: specs()
            .into_iter()
            .map(|s| Tool {
                name: s.name.to_string(),
                description: s.description.to_string(),
                input_schema: s.input.to_string(),
                output_schema: s.output.map(str::to_string),
                effects: s.effects,
                idempotent: s.idempotent,
                compensation: None,
            })
            .collect(),
        // Any host, any port: the operator's grant narrows it.
        hosts: vec!["http://*:*".to_string(), "https://*:*".to_string()],
        credentials: vec![Credential {
            name: "api".to_string(),
            host: "api.example.test".to_string(),
            header: "authorization".to_string(),
            value_prefix: "Bearer ".to_string(),
            description: "Bearer token the host adds to requests to api.example.test.".to_string(),
        }],
    }
}
