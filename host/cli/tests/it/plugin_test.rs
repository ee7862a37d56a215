//! `tollgate plugin test` through the real binary (issue 14 §2): the connectors' suites replay
//! offline from their checked-in cassettes; a request the cassette lacks fails its case; a
//! recording against the stand-ins replays and holds no credential; a malformed test file is
//! named with file:line:col; conformance finds what the misbehave plugin does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tollgate_standins::{StandIns, Tokens};

use crate::built_plugins;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugin_test(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(dir)
        .env_remove("TOLLGATE_CACHE_DIR")
        .env("HOME", dir)
        .arg("plugin")
        .arg("test")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

/// A copy of a connector's test folder to change, in `dir`.
fn copy_tests(connector: &str, dir: &Path) -> PathBuf {
    let from = repo().join("plugins/connectors").join(connector).join("tests");
    let to = dir.join("tests");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

#[test]
fn the_connectors_suites_pass_offline_from_their_cassettes() {
    let home = tempfile::tempdir().unwrap();
    for connector in ["crm", "ads", "email"] {
        let wasm = built_plugins::path(connector);
        let tests = repo().join("plugins/connectors").join(connector).join("tests");
        let out = plugin_test(
            home.path(),
            &[wasm.to_str().unwrap(), "--tests", tests.to_str().unwrap(), "--cases", "8", "--format", "json"],
        );
        assert_eq!(out.status.code(), Some(0), "{connector}: {}{}", text(&out.stdout), text(&out.stderr));
        let r = report(&out);
        assert_eq!(r["format"], "tollgate-plugin-report/1");
        assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
        let file = &r["tests"][0];
        assert_eq!(file["network"], "replay", "{connector}");
        let cases = file["cases"].as_array().unwrap();
        assert!(cases.len() >= 2 && cases.iter().all(|c| c["passed"] == true), "{connector}: {file}");
        // Every tool got generated inputs and the host refused every invalid one first.
        for tool in r["tools"].as_array().unwrap() {
            let c = &tool["conformance"];
            assert_eq!(c["invalid_refused"], c["invalid"], "{connector}: {tool}");
        }
        assert!(r["findings"].as_array().unwrap().iter().all(|f| f["severity"] != "error"), "{connector}: {r}");
    }
}

#[test]
fn the_crm_report_shows_what_it_declared_and_what_it_did() {
    let home = tempfile::tempdir().unwrap();
    let tests = repo().join("plugins/connectors/crm/tests");
    let wasm = built_plugins::path("crm");
    let out =
        plugin_test(home.path(), &[wasm.to_str().unwrap(), "--tests", tests.to_str().unwrap(), "--format", "json"]);
    let r = report(&out);
    let tool = |name: &str| r["tools"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap().clone();
    let create = tool("create_contact");
    assert_eq!(create["credentials_used"], serde_json::json!(["hubspot"]));
    let posts: Vec<&serde_json::Value> =
        create["requests"].as_array().unwrap().iter().filter(|q| q["path"] == "/crm/v3/objects/contacts").collect();
    assert!(posts[0]["with_idempotency_key"].as_u64().unwrap() >= 1, "{create}");
    assert!(
        tool("get_contact")["proposed_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "GET api.hubapi.com/crm/v3/objects/contacts/*")
    );
    // HubSpot's search is a POST that only reads: the connector declares exactly that request
    // (its `requests` export), so it is not flagged as a read tool that mutates.
    assert_eq!(
        tool("search_contacts")["declared_requests"],
        serde_json::json!(["POST api.hubapi.com/crm/v3/objects/contacts/search"])
    );
    let codes: Vec<&str> = r["findings"].as_array().unwrap().iter().filter_map(|f| f["code"].as_str()).collect();
    assert!(!codes.contains(&"read-tool-mutates") && !codes.contains(&"request-outside-scopes"), "{codes:?}");
    // The same run, for people: text and Markdown.
    let md =
        plugin_test(home.path(), &[wasm.to_str().unwrap(), "--tests", tests.to_str().unwrap(), "--format", "markdown"]);
    assert!(text(&md.stdout).contains("| `create_contact` | write |"), "{}", text(&md.stdout));
    let strict =
        plugin_test(home.path(), &[wasm.to_str().unwrap(), "--tests", tests.to_str().unwrap(), "--fail-on", "info"]);
    assert_eq!(strict.status.code(), Some(1), "an info finding fails under --fail-on info");
}

#[test]
fn a_request_the_cassette_lacks_fails_its_case_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let tests = copy_tests("crm", dir.path());
    let file = tests.join("contacts.test.toml");
    let changed =
        std::fs::read_to_string(&file).unwrap().replace(r#"id = "1001", properties"#, r#"id = "1004", properties"#);
    std::fs::write(&file, changed).unwrap();
    let wasm = built_plugins::path("crm");
    // Relative paths, from the folder the user is in.
    let out = plugin_test(dir.path(), &[wasm.to_str().unwrap(), "--tests", "tests", "--cases", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL get a seeded contact (get_contact): request not in the cassette: GET https://api.hubapi.com/crm/v3/objects/contacts/1004"),
        "{stdout}"
    );
    assert!(stdout.contains("cassette-exchange-unused"), "the exchange for 1001 went unused: {stdout}");
}

#[test]
fn a_malformed_test_file_is_named_with_its_line_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.test.toml"), "[[case]]\nname = \"x\"\ntool = \"echo\"\ninptu = {}\n").unwrap();
    let wasm = built_plugins::path("echo");
    let out = plugin_test(dir.path(), &[wasm.to_str().unwrap(), "--tests", "bad.test.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.test.toml:4:1"), "{stderr}");
    assert!(stderr.contains("inptu"), "{stderr}");
}

#[test]
fn recording_against_the_stand_ins_replays_and_keeps_no_credential() {
    let (standins, _runtime) = StandIns::start_blocking(Tokens::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tests = copy_tests("crm", dir.path());
    std::fs::remove_file(tests.join("contacts.cassette.json")).unwrap();
    let wasm = built_plugins::path("crm");
    let upstream = format!("api.hubapi.com={}", standins.hubspot.base_url());
    let record = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("HS_TOKEN", "hubspot-test-token")
        .args(["plugin", "test", wasm.to_str().unwrap(), "--tests", "tests", "--cases", "0", "--record"])
        .args(["--upstream", &upstream, "--credential", "hubspot=env:HS_TOKEN"])
        .output()
        .unwrap();
    assert_eq!(record.status.code(), Some(0), "{}{}", text(&record.stdout), text(&record.stderr));
    let cassette = std::fs::read_to_string(tests.join("contacts.cassette.json")).unwrap();
    assert!(cassette.contains("\"authorization\": \"<credential hubspot>\""), "{cassette}");
    assert!(!cassette.contains("hubspot-test-token"), "the token never reaches a cassette");
    assert!(
        cassette.contains("\"url\": \"https://api.hubapi.com/crm/v3/objects/contacts/1001"),
        "the plugin's URL, not the stand-in's"
    );
    let sent = standins.hubspot.requests().len();

    let replay = plugin_test(dir.path(), &[wasm.to_str().unwrap(), "--tests", "tests", "--cases", "0"]);
    assert_eq!(replay.status.code(), Some(0), "{}{}", text(&replay.stdout), text(&replay.stderr));
    assert_eq!(standins.hubspot.requests().len(), sent, "replay sends nothing");
}

#[test]
fn conformance_finds_what_the_misbehave_plugin_does() {
    let home = tempfile::tempdir().unwrap();
    let wasm = built_plugins::path("misbehave");
    let out = plugin_test(
        home.path(),
        &[
            wasm.to_str().unwrap(),
            "--cases",
            "4",
            "--timeout",
            "1s",
            "--format",
            "json",
            "--secret",
            "api=env:TOLLGATE_TEST_NO_SUCH_VAR",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = report(&out);
    let codes: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap(), f["tool"].as_str().unwrap_or("")))
        .collect();
    assert!(codes.iter().any(|(c, _)| *c == "breaks-on-valid-input"), "{codes:?}");
    let broken = r["findings"].as_array().unwrap().iter().find(|f| f["code"] == "breaks-on-valid-input").unwrap();
    assert!(broken["reproduce"].as_str().unwrap().starts_with("--seed 1 --tool "), "{broken}");
    let breaks = |tool: &str, code: &str| codes.contains(&(code, tool));
    assert!(breaks("panic", "breaks-on-valid-input") && breaks("spin", "breaks-on-valid-input"), "{codes:?}");
    assert!(breaks("sleep", "breaks-on-valid-input"), "a 1 s --timeout: {codes:?}");
    assert!(breaks("wrong_output", "output-not-declared") && breaks("bad_output", "output-not-declared"), "{codes:?}");
    // A well-behaved tool of the same plugin is not accused.
    assert!(!codes.iter().any(|(_, t)| *t == "echo"), "{codes:?}");
}

#[test]
fn every_lie_of_the_lying_connector_is_found() {
    let home = tempfile::tempdir().unwrap();
    let wasm = built_plugins::path("liar");
    let out = plugin_test(home.path(), &[wasm.to_str().unwrap(), "--cases", "4", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "an undeclared host is an error: {}", text(&out.stderr));
    let r = report(&out);
    let found = |code: &str, tool: &str| {
        r["findings"].as_array().unwrap().iter().any(|f| f["code"] == code && f["tool"] == tool)
    };
    for (code, tool) in [
        ("read-tool-mutates", "lookup"),
        ("logs-echo-input", "lookup"),
        ("undeclared-host", "sync"),
        ("idempotency-key-not-forwarded", "notify"),
        ("idempotency-key-leaked", "notify"),
    ] {
        assert!(found(code, tool), "{code} on {tool}: {}", r["findings"]);
    }
    // An honest tool is not accused: nothing about `lookup`'s key, nothing about `notify`'s host.
    assert!(!found("idempotency-key-leaked", "lookup") && !found("undeclared-host", "notify"), "{}", r["findings"]);
    // Nothing left the machine, and the refused request is in the report with its method.
    let lookup = r["tools"].as_array().unwrap().iter().find(|t| t["name"] == "lookup").unwrap();
    assert_eq!(lookup["requests"][0]["method"], "POST");
    assert_eq!(lookup["requests"][0]["refused"], lookup["requests"][0]["count"]);
}

#[test]
fn recording_calls_again_with_a_wrong_credential_and_flags_an_upstream_that_accepts_it() {
    // A stand-in whose token is the very value `plugin test` uses as the wrong one: it accepts
    // the "invalid" credential, as a careless upstream would.
    let careless = "tollgate-plugin-test-invalid-credential";
    let tokens = Tokens { hubspot: careless.into(), ..Tokens::default() };
    let (standins, _runtime) = StandIns::start_blocking(tokens).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_tests("crm", dir.path());
    let wasm = built_plugins::path("crm");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("HS_TOKEN", careless)
        .args([
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--tests",
            "tests",
            "--cases",
            "0",
            "--record",
            "--format",
            "json",
        ])
        .args(["--upstream", &format!("api.hubapi.com={}", standins.hubspot.base_url())])
        .args(["--credential", "hubspot=env:HS_TOKEN"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = report(&out);
    let accepted: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "invalid-credential-accepted")
        .map(|f| f["tool"].as_str().unwrap())
        .collect();
    assert!(accepted.contains(&"get_contact") && accepted.contains(&"search_contacts"), "{accepted:?}");
}
