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

/// A test account's `level` as the import reads it (company when not given).
fn test_level(written: Option<String>) -> Result<&'static str, String> {
    use crate::model::schema::{LEVELS, resolve_choice};
    match written {
        None => Ok("company"),
        Some(w) => resolve_choice(LEVELS, &w).ok_or_else(|| {
            let names = LEVELS.iter().map(|c| c.value);
            format!(
                "`level: {w}` is not a key level; use one of {}",
                names.collect::<Vec<_>>().join(", ")
            )
        }),
    }
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
    account.level = test_level(text("level"))?;
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
    let kam_only = !t.manager.is_empty()
        || !t.accounts.is_empty()
        || !t.activities.is_empty()
        || !t.contacts.is_empty()
        || !t.tenders.is_empty()
        || !t.expect.evidence.is_empty()
        || t.expect.mistakes.is_some()
        || t.expect.pay.is_some();
    if kam_only && !case.kam {
        return vec![
            "manager, accounts, activities, contacts, tenders, evidence, mistakes and pay belong to test cases of a KAM pack (scope: kams)".into(),
        ];
    }
    if case.kam && (!t.account.is_empty() || !t.facts.is_empty()) {
        return vec![
            "a KAM pack's test case gives `manager`, `accounts` and rows, not `account` or `facts`"
                .into(),
        ];
    }
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
    if !failures.is_empty() {
        return failures;
    }
    if case.kam {
        return run_kam_case(&rules, t);
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
    failures.extend(check_common(e, &r.band, &r.labels, r.score, &r.errors));
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
    failures
}

/// What a case expects of any verdict: band, labels, score, the number of errors.
fn check_common(
    e: &crate::rules::file::ExpectFile,
    band: &str,
    labels: &[String],
    score: f64,
    errors: &[super::RuleError],
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(b) = &e.band
        && b != band
    {
        failures.push(format!("band: expected {b}, got {band}"));
    }
    if let Some(want_labels) = &e.labels {
        let mut want = want_labels.clone();
        want.sort();
        let mut got = labels.to_vec();
        got.sort();
        if want != got {
            failures.push(format!(
                "labels: expected [{}], got [{}]",
                want_labels.join(", "),
                labels.join(", ")
            ));
        }
    }
    if let Some(s) = e.score
        && (s - score).abs() > 1e-9
    {
        failures.push(format!("score: expected {s}, got {score}"));
    }
    if let Some(n) = e.errors
        && n != errors.len()
    {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.rule, e.message))
            .collect();
        failures.push(format!(
            "errors: expected {n}, got {} ({})",
            errors.len(),
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

/// A YAML test row as typed values, with the names it used.
struct Row {
    fields: BTreeMap<String, serde_yaml::Value>,
    what: String,
}

impl Row {
    fn new(m: &serde_yaml::Mapping, what: String) -> Row {
        Row {
            fields: m.iter().map(|(k, v)| (key(k), v.clone())).collect(),
            what,
        }
    }
    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for k in self.fields.keys() {
            if !known.contains(&k.as_str()) {
                let hint = crate::diag::did_you_mean(k, known.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!("{}: unknown field `{k}`{hint}", self.what));
            }
        }
        Ok(())
    }
    fn text(&self, n: &str) -> Option<String> {
        match self.fields.get(n)? {
            serde_yaml::Value::String(s) => Some(s.clone()),
            serde_yaml::Value::Number(x) => Some(x.to_string()),
            serde_yaml::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    fn num(&self, n: &str) -> Result<Option<f64>, String> {
        match self.fields.get(n) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::Number(x)) => Ok(x.as_f64()),
            Some(other) => Err(format!(
                "{}: `{n}` must be a number, not `{}`",
                self.what,
                key(other)
            )),
        }
    }
    fn flag(&self, n: &str) -> Result<Option<bool>, String> {
        match self.fields.get(n) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!(
                "{}: `{n}` must be yes/no, not `{}`",
                self.what,
                key(other)
            )),
        }
    }
    fn date(&self, n: &str) -> Result<Option<f64>, String> {
        match self.fields.get(n) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::String(s)) => crate::import::cells::parse_date_text(s)
                .map(Some)
                .ok_or_else(|| format!("{}: `{n}` is not a date: `{s}`", self.what)),
            Some(other) => Err(format!(
                "{}: `{n}` must be a date like '2026-03-10 09:00', not `{}`",
                self.what,
                key(other)
            )),
        }
    }
    fn choice(
        &self,
        n: &str,
        choices: &[crate::model::schema::ChoiceSpec],
    ) -> Result<Option<&'static str>, String> {
        match self.text(n) {
            None => Ok(None),
            Some(t) => crate::model::schema::resolve_choice(choices, &t)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "{}: `{n}` must be one of {}, not `{t}`",
                        self.what,
                        choices
                            .iter()
                            .map(|c| c.value)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
        }
    }
    fn extras(&self, known: &[&str]) -> Vec<(String, Value)> {
        self.fields
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        serde_yaml::Value::Number(x) => Value::Number(x.as_f64().unwrap_or(0.0)),
                        serde_yaml::Value::Bool(b) => Value::Bool(*b),
                        serde_yaml::Value::String(s) => Value::Text(s.clone().into()),
                        _ => Value::Empty,
                    },
                )
            })
            .collect()
    }
}

fn origin(sheet: &str, i: usize) -> Origin {
    Origin {
        sheet: Arc::from(sheet),
        row: i as u32 + 2,
    }
}

/// Builds the dataset of a KAM test case, and the account results (`key`, `band`) it states.
fn kam_dataset(t: &TestFile) -> Result<(Dataset, Vec<super::AccountResult>), String> {
    use crate::model::schema::{
        ACTIVITY_TYPES, COMMISSION_BASES, DEV_LEVELS, ROLES, TENDER_OUTCOMES,
    };
    use crate::model::{Activity, Contact, Manager, Tender};
    let mut ds = Dataset {
        file: "test".into(),
        ..Default::default()
    };
    let m = Row::new(&t.manager, "manager".into());
    const MANAGER: &[&str] = &[
        "id",
        "name",
        "region",
        "level",
        "plan",
        "product_knowledge",
        "commission_basis",
        "commission_rate",
    ];
    let kam_id = m.text("id").unwrap_or_else(|| "K1".into());
    let extras = m.extras(MANAGER);
    ds.manager_extras.names = extras.iter().map(|(k, _)| k.clone()).collect();
    ds.managers.push(Manager {
        id: kam_id.clone(),
        name: m.text("name"),
        region: m.text("region"),
        level: m.choice("level", DEV_LEVELS)?,
        plan: m.num("plan")?,
        product_knowledge: m.num("product_knowledge")?,
        commission_basis: m.choice("commission_basis", COMMISSION_BASES)?,
        commission_rate: m.num("commission_rate")?,
        extra: extras.into_iter().map(|(_, v)| v).collect(),
        origin: origin("Managers", 0),
    });
    const ACCOUNT: &[&str] = &[
        "id",
        "name",
        "kam_id",
        "level",
        "industry",
        "region",
        "revenue",
        "gross_profit",
        "wallet",
        "reference",
        "history",
        "needs",
        "development_plans",
        "key",
        "band",
    ];
    let mut results = Vec::new();
    let accounts: Vec<Row> = t
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| Row::new(a, format!("accounts[{}]", i + 1)))
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        a.check_known(ACCOUNT)?;
        let id = a.text("id").unwrap_or_else(|| format!("A{}", i + 1));
        let mut acc = Account::new(
            id.clone(),
            a.text("name").unwrap_or(id),
            origin("Accounts", i),
        );
        acc.kam_id = Some(a.text("kam_id").unwrap_or_else(|| kam_id.clone()));
        acc.level = test_level(a.text("level")).map_err(|e| format!("{}: {e}", a.what))?;
        acc.industry = a.text("industry");
        acc.region = a.text("region");
        acc.revenue = a.num("revenue")?;
        acc.gross_profit = a.num("gross_profit")?;
        acc.wallet = a.num("wallet")?;
        acc.reference = a.flag("reference")?;
        acc.history = a.text("history");
        acc.needs = a.text("needs");
        acc.development_plans = a.text("development_plans");
        ds.accounts.push(acc);
        results.push(stated_result(
            i,
            a.text("band").unwrap_or_default(),
            a.flag("key")?.unwrap_or(false),
        ));
    }
    // Rows name their account by id; an account named only there is added.
    let account_of = |row: &Row, ds: &mut Dataset, results: &mut Vec<super::AccountResult>| {
        let id = row
            .text("account")
            .or_else(|| ds.accounts.first().map(|a| a.id.clone()))
            .unwrap_or_else(|| "A1".into());
        match ds.account_index(&id) {
            Some(i) => i,
            None => {
                let i = ds.accounts.len();
                let mut acc = Account::new(id.clone(), id, origin("Accounts", i));
                acc.kam_id = Some(kam_id.clone());
                ds.accounts.push(acc);
                results.push(stated_result(i, String::new(), false));
                i
            }
        }
    };
    // Each row of a sheet, checked against the fields it may have, with its account.
    let rows_of = |list: &[serde_yaml::Mapping],
                   sheet: &str,
                   known: &[&str],
                   ds: &mut Dataset,
                   results: &mut Vec<super::AccountResult>|
     -> Result<Vec<(Row, usize)>, String> {
        let mut out = Vec::new();
        for (i, m) in list.iter().enumerate() {
            let r = Row::new(m, format!("{sheet}[{}]", i + 1));
            r.check_known(known)?;
            let account = account_of(&r, ds, results);
            out.push((r, account));
        }
        Ok(out)
    };
    const ACTIVITY: &[&str] = &[
        "account",
        "kam_id",
        "kind",
        "date",
        "planned_start",
        "actual_start",
        "agenda",
        "argued",
        "interrupted",
        "bad_manners",
        "next_step",
        "confirmed",
        "followed_up",
        "expiry",
        "dmu_roles",
        "resolved",
        "amount",
        "margin",
        "notes",
    ];
    for (i, (r, account)) in rows_of(&t.activities, "activities", ACTIVITY, &mut ds, &mut results)?
        .into_iter()
        .enumerate()
    {
        ds.activities.push(Activity {
            account,
            kam_id: Some(r.text("kam_id").unwrap_or_else(|| kam_id.clone())),
            kind: r
                .choice("kind", ACTIVITY_TYPES)?
                .ok_or_else(|| format!("{}: `kind` is required", r.what))?,
            date: r.date("date")?,
            planned_start: r.date("planned_start")?,
            actual_start: r.date("actual_start")?,
            agenda: r.flag("agenda")?,
            argued: r.flag("argued")?,
            interrupted: r.flag("interrupted")?,
            bad_manners: r.flag("bad_manners")?,
            next_step: r.flag("next_step")?,
            confirmed: r.date("confirmed")?,
            followed_up: r.date("followed_up")?,
            expiry: r.date("expiry")?,
            dmu_roles: r.text("dmu_roles"),
            resolved: r.date("resolved")?,
            amount: r.num("amount")?,
            margin: r.num("margin")?,
            notes: r.text("notes"),
            extra: Vec::new(),
            origin: origin("Activities", i),
        });
    }
    const CONTACT: &[&str] = &[
        "account",
        "name",
        "role",
        "influence",
        "relationship",
        "attitude",
        "birthday",
        "hobbies",
        "family",
        "values",
        "last_contact",
    ];
    for (i, (r, account)) in rows_of(&t.contacts, "contacts", CONTACT, &mut ds, &mut results)?
        .into_iter()
        .enumerate()
    {
        ds.contacts.push(Contact {
            account,
            name: r.text("name"),
            role: r.choice("role", ROLES)?.map(str::to_string),
            influence: r.num("influence")?,
            relationship: r.num("relationship")?,
            attitude: r.text("attitude"),
            birthday: r.date("birthday")?,
            hobbies: r.text("hobbies"),
            family: r.text("family"),
            values: r.text("values"),
            last_contact: r.date("last_contact")?,
            extra: Vec::new(),
            origin: origin("Contacts", i),
        });
    }
    const TENDER: &[&str] = &[
        "account",
        "kam_id",
        "name",
        "date",
        "prep_start",
        "value",
        "outcome",
    ];
    for (i, (r, account)) in rows_of(&t.tenders, "tenders", TENDER, &mut ds, &mut results)?
        .into_iter()
        .enumerate()
    {
        ds.tenders.push(Tender {
            account,
            kam_id: Some(r.text("kam_id").unwrap_or_else(|| kam_id.clone())),
            name: r.text("name"),
            date: r.date("date")?,
            prep_start: r.date("prep_start")?,
            value: r.num("value")?,
            outcome: r.choice("outcome", TENDER_OUTCOMES)?,
            extra: Vec::new(),
            origin: origin("Tenders", i),
        });
    }
    Ok((ds, results))
}

/// An account result as a test case states it (band and key only).
fn stated_result(index: usize, band: String, key: bool) -> super::AccountResult {
    super::AccountResult {
        index,
        score: 0.0,
        band,
        plan: false,
        key,
        labels: Vec::new(),
        outputs: Vec::new(),
        measures: Vec::new(),
        facts: AccountFacts::default(),
        contributions: Vec::new(),
        errors: Vec::new(),
    }
}

fn want_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::Number(n) => n
            .as_f64()
            .map(crate::model::value::format_number)
            .unwrap_or_default(),
        serde_yaml::Value::Null => "not known".into(),
        other => key(other),
    }
}

fn run_kam_case(rules: &RuleSet, t: &TestFile) -> Vec<String> {
    let mut failures = Vec::new();
    let (ds, accounts) = match kam_dataset(t) {
        Ok(x) => x,
        Err(m) => return vec![m],
    };
    let engine = match super::kams::KamEngine::new(rules, &ds) {
        Some(Ok(e)) => e,
        Some(Err(problems)) => return problems.iter().map(|p| p.message.clone()).collect(),
        None => return vec!["the rules have no KAM pack".into()],
    };
    let kam_id = ds.managers[0].id.clone();
    let scored = match engine.score(&ds, &accounts, 1, true, Some(&kam_id)) {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    let Some(r) = scored.managers.first() else {
        return vec![format!("KAM {kam_id} was not judged")];
    };
    let v = &r.verdict;
    let e = &t.expect;
    failures.extend(check_common(e, &v.band, &v.labels, v.score, &v.errors));
    let fmt = |x: Option<f64>| x.map_or("not known".into(), crate::model::value::format_number);
    for (k, want) in &e.values {
        let name = key(k);
        let got = if let Some(i) = scored.metric_ids.iter().position(|m| *m == name) {
            Some(fmt(r.metrics[i].value))
        } else if let Some(base) = name.strip_suffix(".rows")
            && let Some(i) = scored.metric_ids.iter().position(|m| m == base)
        {
            Some(r.metrics[i].rows.to_string())
        } else if let Some(i) = scored.measure_names.iter().position(|m| *m == name) {
            Some(fmt(v.measures[i]))
        } else if name == "pay" {
            Some(fmt(r.pay_total))
        } else if name == "rank" {
            Some(r.rank.to_string())
        } else {
            r.output(&scored.output_names, &name)
                .map(str::to_string)
                .or_else(|| {
                    scored
                        .output_names
                        .contains(&name)
                        .then(|| "not known".to_string())
                })
        };
        let want = want_text(want);
        match got {
            Some(g) if g == want => {}
            Some(g) => failures.push(format!("{name}: expected {want}, got {g}")),
            None => failures.push(format!("{name}: no metric, measure or output of that name")),
        }
    }
    for (k, want) in &e.evidence {
        let name = key(k);
        match scored.metric_ids.iter().position(|m| *m == name) {
            Some(i) => {
                let got = r.metrics[i].evidence.len();
                let want = want.as_u64().unwrap_or(u64::MAX) as usize;
                if got != want {
                    let cells: Vec<String> =
                        r.metrics[i].evidence.iter().map(|e| e.cell(&ds)).collect();
                    failures.push(format!(
                        "evidence of {name}: expected {}, got {got} ({})",
                        crate::diag::count(want, "row", "rows"),
                        cells.join(", ")
                    ));
                }
            }
            None => failures.push(format!("evidence: no metric `{name}`")),
        }
    }
    if let Some(want) = &e.mistakes {
        let mut want = want.clone();
        want.sort();
        let mut got: Vec<String> = r
            .mistakes
            .iter()
            .filter(|m| m.outcome == super::Outcome::Matched)
            .map(|m| m.id.clone())
            .collect();
        got.sort();
        if want != got {
            failures.push(format!(
                "mistakes: expected [{}], got [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(p) = e.pay {
        let got = r.pay_total.unwrap_or(f64::NAN);
        if (p - got).abs() > 1e-6 {
            failures.push(format!("pay: expected {p}, got {}", fmt(r.pay_total)));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::test_level;

    #[test]
    fn a_test_accounts_level_is_read_like_the_import_and_a_typo_is_refused() {
        assert_eq!(test_level(None), Ok("company"));
        assert_eq!(test_level(Some("Department".into())), Ok("department"));
        assert_eq!(
            test_level(Some("divison".into())),
            Err(
                "`level: divison` is not a key level; use one of company, manager, department"
                    .into()
            )
        );
    }
}
