//! Running a rule pack's own test cases (`kam test`): each case is one account with the fields,
//! portfolio facts and params it gives, scored alone and compared with what it expects.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::Engine;
use super::names::{ACCOUNT_FACTS, PORTFOLIO_FACTS};
use super::portfolio::{AccountFacts, PortfolioFacts};
use crate::expr::V;
use crate::model::{Account, Dataset, ExtraColumns, Origin, Value};
use crate::rules::{RuleSet, TestCase, file::TestFile};

/// The result of one test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// Pack name.
    pub pack: String,
    /// Test name.
    pub name: String,
    /// Where it is written (`file:line`).
    pub location: String,
    /// What did not come out as expected (empty: passed).
    pub failures: Vec<String>,
}

fn yaml_v(v: &serde_yaml::Value) -> Result<V<'static>, String> {
    Ok(match v {
        serde_yaml::Value::Null => V::Missing,
        serde_yaml::Value::Bool(b) => V::Bool(*b),
        serde_yaml::Value::Number(n) => V::Num(n.as_f64().ok_or("a number out of range")?),
        serde_yaml::Value::String(s) => V::Str(Cow::Owned(s.clone())),
        other => {
            return Err(format!(
                "`{}` is not a number, text or yes/no",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            ));
        }
    })
}

fn key(k: &serde_yaml::Value) -> String {
    k.as_str().map(str::to_string).unwrap_or_else(|| {
        serde_yaml::to_string(k)
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

fn account_of(case: &TestFile) -> Result<Dataset, String> {
    let mut fields: BTreeMap<String, V<'static>> = BTreeMap::new();
    for (k, v) in &case.account {
        fields.insert(key(k), yaml_v(v)?);
    }
    let text = |n: &str| match fields.get(n) {
        Some(V::Str(s)) => Some(s.to_string()),
        Some(V::Num(x)) => Some(crate::model::value::format_number(*x)),
        _ => None,
    };
    let num = |n: &str| fields.get(n).and_then(|v| v.num());
    let flag = |n: &str| match fields.get(n) {
        Some(V::Bool(b)) => Some(*b),
        _ => None,
    };
    let known = [
        "id",
        "name",
        "kam_id",
        "industry",
        "region",
        "level",
        "revenue",
        "gross_profit",
        "wallet",
        "reference",
        "brand_score",
        "partnership",
        "competence",
        "innovator",
        "history",
        "needs",
        "development_plans",
    ];
    let extras: Vec<(String, V<'static>)> = fields
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let id = text("id").unwrap_or_else(|| "TEST".into());
    let name = text("name").unwrap_or_else(|| id.clone());
    let mut account = Account::new(
        id,
        name,
        Origin {
            sheet: Arc::from("test"),
            row: 1,
        },
    );
    account.kam_id = text("kam_id");
    account.industry = text("industry");
    account.region = text("region");
    account.level = text("level").unwrap_or_else(|| "company".into());
    account.revenue = num("revenue");
    account.gross_profit = num("gross_profit");
    account.wallet = num("wallet");
    account.reference = flag("reference");
    account.brand_score = num("brand_score");
    account.partnership = num("partnership");
    account.competence = num("competence");
    account.innovator = flag("innovator");
    account.history = text("history");
    account.needs = text("needs");
    account.development_plans = text("development_plans");
    account.extra = extras
        .iter()
        .map(|(_, v)| match v {
            V::Missing => Value::Empty,
            V::Num(n) => Value::Number(*n),
            V::Bool(b) => Value::Bool(*b),
            V::Str(s) => Value::Text(s.to_string().into()),
        })
        .collect();
    Ok(Dataset {
        file: "test".into(),
        accounts: vec![account],
        account_extras: ExtraColumns {
            names: extras.into_iter().map(|(k, _)| k).collect(),
        },
        ..Default::default()
    })
}

fn run_case(rules: &RuleSet, case: &TestCase) -> Vec<String> {
    let t = &case.case;
    let mut rules = rules.clone();
    let mut failures = Vec::new();
    for (k, v) in &t.set {
        let name = key(k);
        let text = match v {
            serde_yaml::Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        match rules.params.iter_mut().find(|p| p.name == name) {
            Some(p) => match p.parse_value(&text) {
                Ok(v) => p.value = v,
                Err(m) => failures.push(format!("set: {m}")),
            },
            None => failures.push(format!("set: there is no param `{name}`")),
        }
    }
    let ds = match account_of(t) {
        Ok(ds) => ds,
        Err(m) => return vec![format!("account: {m}")],
    };
    let engine = match Engine::new(&rules, &ds.account_extras.names) {
        Ok(e) => e,
        Err(problems) => return problems.iter().map(|p| p.message.clone()).collect(),
    };
    let mut overrides: BTreeMap<String, V<'static>> = BTreeMap::new();
    for (k, v) in &t.facts {
        let name = key(k);
        if !ACCOUNT_FACTS
            .iter()
            .chain(PORTFOLIO_FACTS)
            .any(|(n, _)| *n == name)
        {
            failures.push(format!("facts: `{name}` is not a portfolio fact"));
            continue;
        }
        match yaml_v(v) {
            Ok(v) => {
                overrides.insert(name, v);
            }
            Err(m) => failures.push(format!("facts.{name}: {m}")),
        }
    }
    let facts = AccountFacts {
        abc: "C",
        rank: 1,
        ..Default::default()
    };
    let r = engine.score_one(&ds, &facts, &PortfolioFacts::default(), &overrides);
    let e = &t.expect;
    if let Some(b) = &e.band
        && *b != r.band
    {
        failures.push(format!("band: expected {b}, got {}", r.band));
    }
    if let Some(labels) = &e.labels {
        let mut want = labels.clone();
        want.sort();
        let mut got = r.labels.clone();
        got.sort();
        if want != got {
            failures.push(format!(
                "labels: expected [{}], got [{}]",
                labels.join(", "),
                r.labels.join(", ")
            ));
        }
    }
    if let Some(s) = e.score
        && (s - r.score).abs() > 1e-9
    {
        failures.push(format!("score: expected {s}, got {}", r.score));
    }
    for (k, v) in &e.values {
        let name = key(k);
        let measure_names: Vec<String> = engine
            .rules()
            .measures
            .iter()
            .map(|m| m.name.clone())
            .collect();
        let got = r
            .output(engine.output_names(), &name)
            .map(str::to_string)
            .or_else(|| {
                measure_names.iter().position(|m| *m == name).map(|i| {
                    r.measures[i].map_or("not known".into(), crate::model::value::format_number)
                })
            });
        let want = match v {
            serde_yaml::Value::Number(n) => n
                .as_f64()
                .map(crate::model::value::format_number)
                .unwrap_or_default(),
            serde_yaml::Value::Null => "not known".into(),
            other => key(other),
        };
        match got {
            Some(g) if g == want => {}
            Some(g) => failures.push(format!("{name}: expected {want}, got {g}")),
            None => failures.push(format!("{name}: no output or measure of that name")),
        }
    }
    if let Some(n) = e.errors
        && n != r.errors.len()
    {
        let list: Vec<String> = r
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.rule, e.message))
            .collect();
        failures.push(format!(
            "errors: expected {n}, got {} ({})",
            r.errors.len(),
            list.join("; ")
        ));
    }
    failures
}

/// Runs every test case of a rule set.
pub fn run(rules: &RuleSet) -> Vec<TestOutcome> {
    rules
        .tests
        .iter()
        .map(|case| TestOutcome {
            pack: case.pack.clone(),
            name: case.case.name.clone(),
            location: format!("{}:{}", case.span.file.display(), case.span.line),
            failures: run_case(rules, case),
        })
        .collect()
}
