//! The loaded example's values (defaults applied) and the policy decisions it makes.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_workflow::{
    ApprovalDecision, CallFacts, KvGrant, LoadedWorkflow, PolicyErrorKind, RunBounds, RunFacts, Step, StepInput,
    eval_json, parse,
};

fn example() -> LoadedWorkflow {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/valid_campaign_review.toml");
    let source = std::fs::read_to_string(&path).unwrap();
    parse(&source, &path).unwrap()
}

fn facts<'a>(
    plugin: &'a str,
    tool: &'a str,
    agent: &'a str,
    effects: &'a [&'a str],
    input: &'a Value,
) -> CallFacts<'a> {
    CallFacts { plugin, tool, agent, effects, input, run: RunFacts { spend: 0, steps: 1, tool_calls: 0 } }
}

const SPEND: &[&str] = &["write", "spend"];

#[test]
fn values_are_read_and_defaults_applied() {
    let lw = example();
    let w = &lw.definition;
    assert_eq!(
        (w.name.as_str(), w.version.as_str(), w.entry.as_deref()),
        ("campaign-review", "1.0.0", Some("analyst"))
    );
    assert_eq!(w.run.max_fuel, 20_000_000_000);
    assert_eq!(w.run.deadline, Duration::from_secs(30 * 60));
    let ads = &w.plugins["ads"];
    assert_eq!(ads.grants.hosts, ["graph.facebook.com"]);
    assert_eq!(ads.grants.credentials["meta"], "env:META_ACCESS_TOKEN");
    assert_eq!(ads.limits.memory, Some(64 << 20));
    assert_eq!(ads.limits.timeout, Some(Duration::from_secs(15)));
    assert!(ads.grants.log && !w.plugins["email"].grants.log);
    assert_eq!(w.plugins["crm"].grants.kv, KvGrant::Workflow);
    assert_eq!(w.plugins["crm"].grants.kv.namespace(&w.name, "crm").as_deref(), Some("campaign-review/crm"));
    assert_eq!(lw.plugin_source("ads"), lw.path.parent().unwrap().join("plugins/ads.wasm"));
    assert!(lw.path.is_absolute() && lw.digest.len() == 64);
    let accepts = w.agents["copywriter"].accepts.as_ref().unwrap();
    assert_eq!(accepts["required"], json!(["campaign_id", "finding"]));
    assert_eq!(w.agents["analyst"].max_steps, Some(10));
    assert_eq!(w.agents["copywriter"].model, None);
    let ids: Vec<&str> = w.steps.iter().map(Step::id).collect();
    assert_eq!(ids, ["insights", "review", "pause", "findings"]);
    assert!(matches!(&w.steps[0], Step::Tool { input: StepInput::Literal(v), .. } if v["date_preset"] == "last_7d"));
    assert!(matches!(&w.steps[3], Step::Agent { input, .. } if input == &["insights", "pause"]));

    // Findings made outside the crate get positions too, falling back to the nearest key.
    let line = |prefix: &str| lw.source.lines().position(|l| l.starts_with(prefix)).unwrap() as u32 + 1;
    let d = lw.diagnostic_at(&["plugins", "ads", "source"], "cannot read", None);
    assert_eq!((d.line, d.column, d.message.as_str()), (line("source = \"plugins/ads.wasm\""), 10, "cannot read"));
    let d = lw.diagnostic_at(&["plugins", "ads", "nope"], "x", None);
    assert_eq!((d.line, d.column), (line("[plugins.ads]"), 1));

    // A minimal workflow gets every default.
    let min = parse("name = 'm'\nversion = '0.1.0'\n[[steps]]\nid = 'gate'\napproval = 'go?'\n", Path::new("m.toml"))
        .unwrap();
    assert_eq!(min.definition.run, RunBounds::default());
    assert_eq!(min.definition.run.max_steps, 32);
    assert_eq!(min.definition.run.approval_expiry, Duration::from_secs(86_400));
    assert_eq!(min.policy().approval_effects, ["spend", "delete", "send-message"]);
}

#[test]
fn sandbox_grants_follow_the_workflow() {
    let lw = example();
    let g = lw.grants("ads").unwrap();
    assert!(!g.hosts.is_empty());
    assert_eq!(g.limits.timeout, Duration::from_secs(15));
    assert_eq!(g.limits.fuel, 2_000_000_000);
    // Unset limits keep the sandbox defaults.
    assert_eq!(lw.grants("crm").unwrap().limits, tollgate_contract::Limits::default());
    assert!(lw.grants("nope").is_none());
}

#[test]
fn approvals_first_matching_rule_decides_else_effects() {
    let lw = example();
    let p = lw.policy();
    let raise = json!({"campaign_id": "1", "daily_budget": 60000});
    assert!(matches!(
        p.approval(&facts("ads", "update_campaign", "analyst", SPEND, &raise)).unwrap(),
        ApprovalDecision::RequireApproval { rule: Some(0), reason } if reason.contains("$500/day")
    ));
    let pause = json!({"campaign_id": "1", "status": "PAUSED"});
    assert_eq!(
        p.approval(&facts("ads", "update_campaign", "analyst", SPEND, &pause)).unwrap(),
        ApprovalDecision::Allow { rule: Some(1) }
    );
    // No rule matches a resume: the `spend` effect needs approval by default.
    let resume = json!({"campaign_id": "1", "status": "ACTIVE"});
    assert!(matches!(
        p.approval(&facts("ads", "update_campaign", "analyst", SPEND, &resume)).unwrap(),
        ApprovalDecision::RequireApproval { rule: None, reason } if reason.contains("`spend`")
    ));
    let note = json!({"contact_id": "1", "body": "x"});
    assert_eq!(
        p.approval(&facts("crm", "add_note", "copywriter", &["write"], &note)).unwrap(),
        ApprovalDecision::Allow { rule: Some(2) }
    );
    let mail = json!({"to": [{"email": "a@x.com"}]});
    assert!(matches!(
        p.approval(&facts("email", "send_email", "analyst", &["send-message"], &mail)).unwrap(),
        ApprovalDecision::Deny { rule: 3, reason } if reason == "Only the copywriter sends messages."
    ));
    assert!(matches!(
        p.approval(&facts("email", "send_email", "copywriter", &["send-message"], &mail)).unwrap(),
        ApprovalDecision::RequireApproval { rule: None, .. }
    ));
    let q = json!({"query": "x"});
    assert_eq!(
        p.approval(&facts("crm", "search_contacts", "analyst", &["read"], &q)).unwrap(),
        ApprovalDecision::Allow { rule: None }
    );
}

#[test]
fn caps_compute_costs_limits_and_targets() {
    let lw = example();
    let p = lw.policy();
    let raise = json!({"campaign_id": "1", "daily_budget": 60000});
    assert_eq!(p.spend_costs(&facts("ads", "update_campaign", "a", SPEND, &raise)).unwrap(), [(0, 60000, 100_000)]);
    let pause = json!({"campaign_id": "1", "status": "PAUSED"});
    assert_eq!(p.spend_costs(&facts("ads", "update_campaign", "a", SPEND, &pause)).unwrap(), [(0, 0, 100_000)]);
    assert!(p.spend_costs(&facts("crm", "add_note", "a", &[], &pause)).unwrap().is_empty());
    assert_eq!(p.rate_limits("email.send_email"), [(0, 20, Duration::from_secs(3600))]);
    assert!(p.rate_limits("crm.add_note").is_empty());
    let mail = json!({"to": [{"email": "a@x.com"}, {"email": "b@x.com", "name": "B"}]});
    assert_eq!(
        p.frequency_targets(&facts("email", "send_email", "c", &[], &mail)).unwrap(),
        [(0, 1, Duration::from_secs(7 * 86_400), vec!["a@x.com".to_string(), "b@x.com".to_string()])]
    );
}

#[test]
fn evaluation_errors_name_the_rule_and_fail_closed() {
    let lw = example();
    let p = lw.policy();
    // `to` missing: the frequency cap's target cannot be computed.
    let e = p.frequency_targets(&facts("email", "send_email", "c", &[], &json!({}))).unwrap_err();
    assert_eq!((e.rule, e.kind), (Some(0), PolicyErrorKind::Evaluation));
    assert_eq!(e.expression, "policy.frequency_caps[0].target");
    let line = lw.source.lines().position(|l| l.starts_with("target = ")).unwrap() as u32 + 1;
    assert_eq!((e.location.line, e.location.column), (line, 10));
    assert!(e.to_string().contains(&format!("valid_campaign_review.toml:{line}:10")), "{e}");

    let src = "name = 'p'\nversion = '1.0.0'\nentry = 'a'\n[plugins.ads]\nsource = 'a.wasm'\n[agents.a]\ninstructions = 'x'\ntools = ['*']\n\
               [[policy.approvals]]\nwhen = 'input.budget > 5'\naction = 'deny'\n\
               [[policy.approvals]]\nwhen = 'input.flag'\naction = 'allow'\n\
               [[policy.spend_caps]]\ntool = '*'\ncost = 'input.cost'\nmax_per_run = 10\n";
    let lw = parse(src, Path::new("p.toml")).unwrap();
    let p = lw.policy();
    let e = p.approval(&facts("ads", "x", "a", &[], &json!({}))).unwrap_err();
    assert_eq!((e.rule, e.kind, e.location.line), (Some(0), PolicyErrorKind::Evaluation, 10));
    let e = p.approval(&facts("ads", "x", "a", &[], &json!({"budget": 1, "flag": "yes"}))).unwrap_err();
    assert_eq!((e.rule, e.kind), (Some(1), PolicyErrorKind::WrongType));
    let e = p.spend_costs(&facts("ads", "x", "a", &[], &json!({"cost": -5}))).unwrap_err();
    assert_eq!((e.rule, e.kind), (Some(0), PolicyErrorKind::WrongType));
    assert!(e.message.contains("non-negative"), "{e}");
}

#[test]
fn step_input_expressions_evaluate_to_json() {
    let lw = example();
    let Step::Tool { input: StepInput::Expr(program), .. } = &lw.definition.steps[2] else {
        panic!("steps[2] is a tool step with input_expr")
    };
    let mut vars = serde_json::Map::new();
    vars.insert("state".into(), json!({"insights": {"campaign_id": "120210000000000101", "spend": 12.5}}));
    vars.insert("goal".into(), json!("review"));
    assert_eq!(eval_json(program, &vars).unwrap(), json!({"campaign_id": "120210000000000101", "status": "PAUSED"}));
    vars.insert("state".into(), json!({}));
    let e = eval_json(program, &vars).unwrap_err();
    assert_eq!((e.expression.as_str(), e.rule), ("steps[2].input_expr", None));
}

/// A workflow whose one approval rule is `when`.
fn with_rule(when: &str) -> String {
    format!(
        "name = 'p'\nversion = '1.0.0'\nentry = 'a'\n[plugins.ads]\nsource = 'a.wasm'\n[agents.a]\ninstructions = 'x'\ntools = ['*']\n\
         [[policy.approvals]]\nwhen = '{when}'\naction = 'deny'\n"
    )
}

#[test]
fn a_rule_that_needs_more_steps_than_the_budget_is_refused_at_load() {
    // Five nested comprehensions over a 100-element literal: 10^10 steps in 1.5 KB.
    let hundred = format!("[{}]", (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let when =
        format!("{h}.all(a, {h}.all(b, {h}.all(c, {h}.all(d, {h}.all(e, a + b + c + d + e >= 0)))))", h = hundred);
    assert!(when.len() < 2100, "{}", when.len());
    let diagnostics = parse(&with_rule(&when), Path::new("p.toml")).unwrap_err();
    let text = diagnostics.to_string();
    assert!(text.contains("evaluation steps, over the limit of 1000000"), "{text}");
    assert!(text.contains("p.toml:10:"), "{text}");
}

#[test]
fn a_rule_too_costly_for_its_input_denies_the_call_without_running() {
    let lw =
        parse(&with_rule("input.items.all(a, input.items.all(b, a != b || a == b))"), Path::new("p.toml")).unwrap();
    let p = lw.policy();
    // 100 items: 10^4 steps, evaluated.
    let small = json!({ "items": (0..100).collect::<Vec<_>>() });
    assert!(p.approval(&facts("ads", "x", "a", &[], &small)).is_ok());
    // 5,000 items: 2.5 * 10^7 steps, refused before it runs.
    let large = json!({ "items": (0..5000).collect::<Vec<_>>() });
    let started = std::time::Instant::now();
    let e = p.approval(&facts("ads", "x", "a", &[], &large)).unwrap_err();
    assert_eq!((e.rule, e.kind), (Some(0), PolicyErrorKind::TooCostly));
    assert!(e.message.contains("over the limit of 1000000"), "{e}");
    // Refused by the estimate, not after the work (which takes seconds): a generous bound.
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    // `in` scans its list: a comprehension over it multiplies.
    let lw = parse(&with_rule("input.items.all(a, a in input.items)"), Path::new("p.toml")).unwrap();
    let e = lw.policy().approval(&facts("ads", "x", "a", &[], &large)).unwrap_err();
    assert_eq!(e.kind, PolicyErrorKind::TooCostly);
}
