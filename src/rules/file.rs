//! The rule pack file format as written in YAML. Unknown keys are rejected; meaning is checked
//! afterwards when the packs are loaded ([`super::load_files`]). The reference is `docs/rules.md`.

use serde::Deserialize;

/// A number or an expression (`40`, `"wallet / 1000"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum NumOrExpr {
    /// A number.
    Num(f64),
    /// An expression.
    Expr(String),
}

/// A condition: an expression, `true`, or a yes/no literal.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Cond {
    /// Always true or false.
    Bool(bool),
    /// An expression.
    Expr(String),
}

/// A whole pack file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackFile {
    /// The pack's name.
    pub pack: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Lua files (in the rules folder) with the functions the pack names.
    #[serde(default)]
    pub lua: Vec<String>,
    /// Sandbox limits for its Lua.
    #[serde(default)]
    pub limits: Option<LimitsFile>,
    /// How the portfolio pass ranks and classes accounts.
    #[serde(default)]
    pub portfolio: Option<PortfolioFile>,
    /// Named values with defaults.
    #[serde(default)]
    pub params: serde_yaml::Mapping,
    /// Derived per-account figures, in order.
    #[serde(default)]
    pub measures: serde_yaml::Mapping,
    /// Decision tables, in order.
    #[serde(default)]
    pub tables: Vec<TableFile>,
    /// Criteria, in order.
    #[serde(default)]
    pub criteria: Vec<CriterionFile>,
    /// Ordered tiers.
    #[serde(default)]
    pub bands: Vec<BandFile>,
    /// Checks per KAM after scoring.
    #[serde(default)]
    pub kam_checks: Vec<CheckFile>,
    /// Checks on the whole portfolio.
    #[serde(default)]
    pub portfolio_checks: Vec<CheckFile>,
    /// Test cases.
    #[serde(default)]
    pub tests: Vec<TestFile>,
    /// `accounts` (the default: rules per account) or `kams` (rules per key account manager).
    pub scope: Option<String>,
    /// KAM packs: figures per KAM over the rows of one sheet, with the rows as evidence.
    #[serde(default)]
    pub metrics: Vec<MetricFile>,
    /// KAM packs: the classic mistakes, each observed, not observed or not known.
    #[serde(default)]
    pub mistakes: Vec<MistakeFile>,
    /// KAM packs: what a complete dossier holds.
    #[serde(default)]
    pub dossier: Option<DossierFile>,
    /// KAM packs: pay for the period, deal by deal.
    #[serde(default)]
    pub pay: Option<PayFile>,
}

/// A per-KAM metric: an aggregate over the KAM's rows of one sheet in the period.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricFile {
    /// Unique id; the KAM rules read the value by this name and the rows it rests on as
    /// `<id>.rows`.
    pub id: String,
    /// `activities`, `contacts`, `tenders` or `accounts`.
    pub over: String,
    /// Which rows the metric looks at (default: all of the KAM's rows in the period).
    pub among: Option<Cond>,
    /// Count the rows where this holds (each one is evidence).
    pub count: Option<Cond>,
    /// Sum of an expression over the rows.
    pub sum: Option<String>,
    /// Average of an expression over the rows.
    pub avg: Option<String>,
    /// Smallest value of an expression.
    pub min: Option<String>,
    /// Largest value of an expression.
    pub max: Option<String>,
    /// Value when no row could be judged (default: not known).
    pub default: Option<f64>,
    /// Finding written for each counted row, with `{name}` placeholders of the row.
    pub finding: Option<String>,
    /// Recommended actions when some row is counted.
    #[serde(default)]
    pub actions: Vec<String>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// One of the classic mistakes, judged per KAM.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MistakeFile {
    /// Unique id.
    pub id: String,
    /// How reports name it.
    pub title: String,
    /// Observed when this holds (not known when it cannot be decided).
    pub when: Cond,
    /// Metrics whose rows are the evidence.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Message with `{name}` placeholders.
    #[serde(default)]
    pub reason: String,
}

/// What a complete dossier holds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DossierFile {
    /// Accounts whose dossier is judged (an expression over account rows; default: all).
    pub among: Option<Cond>,
    /// Account fields that must be filled.
    #[serde(default)]
    pub account: Vec<String>,
    /// Fields every DMU contact must have.
    #[serde(default)]
    pub contact: Vec<String>,
}

/// Pay for the period: each deal row gets the first rule that applies.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PayFile {
    /// The sheet the deals are in (`activities`).
    pub over: String,
    /// Which rows are deals.
    pub among: Cond,
    /// Rules in order; the first that holds decides.
    pub rules: Vec<PayRuleFile>,
}

/// A pay rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PayRuleFile {
    /// Unique id.
    pub id: String,
    /// When it applies.
    pub when: Cond,
    /// What the rate applies to (an expression: `margin`, `amount`).
    pub base: String,
    /// The rate (a fraction, or an expression).
    pub rate: NumOrExpr,
    /// Explanation with `{name}` placeholders.
    #[serde(default)]
    pub reason: String,
}

/// A file of test cases beside a pack (`*.tests.yaml`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestsFile {
    /// The pack the cases test.
    pub pack: String,
    /// The cases.
    pub tests: Vec<TestFile>,
}

/// Lua limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Instructions per call.
    pub instructions: Option<u64>,
    /// Memory per Lua VM, in MiB.
    pub memory_mb: Option<u64>,
    /// Wall-clock time per call, in milliseconds.
    pub time_ms: Option<u64>,
}

/// Portfolio settings; each value is an expression over params (usually a param's name).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortfolioFile {
    /// `gross_profit` or `revenue` (text).
    pub basis: String,
    /// Class A while the cumulative share before the account is below this.
    pub a_cutoff: NumOrExpr,
    /// Class B while below this.
    pub b_cutoff: NumOrExpr,
}

/// A parameter.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamFile {
    /// Default value: a number, text or yes/no.
    pub default: serde_yaml::Value,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// Smallest allowed number.
    pub min: Option<f64>,
    /// Largest allowed number.
    pub max: Option<f64>,
    /// Allowed texts.
    #[serde(default)]
    pub choices: Vec<String>,
}

/// A measure: an expression or a Lua function.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MeasureFile {
    /// Expression.
    pub expr: Option<String>,
    /// Lua function name.
    pub lua: Option<String>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// A criterion.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CriterionFile {
    /// Unique id.
    pub id: String,
    /// Condition (expression).
    pub when: Option<Cond>,
    /// Lua function name deciding instead of `when`.
    pub lua: Option<String>,
    /// Points when matched.
    #[serde(default)]
    pub points: Option<NumOrExpr>,
    /// Label (definition) granted when matched.
    pub label: Option<String>,
    /// Reason template with `{name}` placeholders.
    #[serde(default)]
    pub reason: String,
    /// Recommended actions when matched.
    #[serde(default)]
    pub actions: Vec<String>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// A decision table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    /// Unique id.
    pub id: String,
    /// `first`, `unique` or `collect`.
    pub hit: String,
    /// With `collect`: `sum`, `max`, `min` or `count`.
    pub aggregate: Option<String>,
    /// The output's name (`points` adds to the score).
    pub output: String,
    /// Value when no row matches (default: not known).
    pub default: Option<serde_yaml::Value>,
    /// Rows in order.
    pub rows: Vec<RowFile>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// A row of a decision table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RowFile {
    /// Condition.
    pub when: Cond,
    /// Output value: number, text or expression-free literal.
    pub value: serde_yaml::Value,
    /// Label granted when this row decides.
    pub label: Option<String>,
    /// Reason template.
    #[serde(default)]
    pub reason: String,
    /// Recommended actions.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// A band.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BandFile {
    /// Name.
    pub name: String,
    /// Lowest score of the band.
    pub min_score: Option<NumOrExpr>,
    /// Any of these labels puts the account in the band.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Accounts in the band get an account plan.
    #[serde(default)]
    pub plan: bool,
    /// Accounts in the band are key accounts.
    #[serde(default)]
    pub key: bool,
}

/// A KAM or portfolio check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    /// Unique id.
    pub id: String,
    /// Condition.
    pub when: Cond,
    /// Flag name when it holds.
    pub flag: Option<String>,
    /// Message template.
    #[serde(default)]
    pub reason: String,
    /// Recommended actions.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// A test case.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// What it checks.
    pub name: String,
    /// Account fields.
    #[serde(default)]
    pub account: serde_yaml::Mapping,
    /// Per-account portfolio facts and `portfolio.*` aggregates to force.
    #[serde(default)]
    pub facts: serde_yaml::Mapping,
    /// Params to set.
    #[serde(default)]
    pub set: serde_yaml::Mapping,
    /// KAM packs: the manager's fields (`id`, `level`, `plan`, …).
    #[serde(default)]
    pub manager: serde_yaml::Mapping,
    /// KAM packs: the manager's accounts (field → value).
    #[serde(default)]
    pub accounts: Vec<serde_yaml::Mapping>,
    /// KAM packs: activity rows (`account:` names the account id).
    #[serde(default)]
    pub activities: Vec<serde_yaml::Mapping>,
    /// KAM packs: contact rows.
    #[serde(default)]
    pub contacts: Vec<serde_yaml::Mapping>,
    /// KAM packs: tender rows.
    #[serde(default)]
    pub tenders: Vec<serde_yaml::Mapping>,
    /// What must come out.
    pub expect: ExpectFile,
}

/// Expected results of a test case.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    /// Band name.
    pub band: Option<String>,
    /// Exactly these labels (any order).
    pub labels: Option<Vec<String>>,
    /// Total points.
    pub score: Option<f64>,
    /// Table outputs and measures by name.
    #[serde(default)]
    pub values: serde_yaml::Mapping,
    /// No rule error.
    #[serde(default)]
    pub errors: Option<usize>,
    /// KAM packs: evidence rows per metric id.
    #[serde(default)]
    pub evidence: serde_yaml::Mapping,
    /// KAM packs: exactly these mistakes observed (ids).
    pub mistakes: Option<Vec<String>>,
    /// KAM packs: pay for the period.
    pub pay: Option<f64>,
}

#[cfg(test)]
mod tests {
    /// docs/rule-pack.schema.json must know every key the parser accepts, and no other.
    #[test]
    fn the_json_schema_matches_the_parser() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/rule-pack.schema.json"))
                .expect("the schema is JSON");
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            k.sort();
            k
        };
        let sorted = |list: &[&str]| {
            let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let defs = &schema["$defs"];
        assert_eq!(
            keys(&schema),
            sorted(&[
                "pack",
                "description",
                "lua",
                "limits",
                "portfolio",
                "params",
                "measures",
                "tables",
                "criteria",
                "bands",
                "kam_checks",
                "portfolio_checks",
                "tests",
                "scope",
                "metrics",
                "mistakes",
                "dossier",
                "pay"
            ])
        );
        assert_eq!(
            keys(&schema["properties"]["limits"]),
            sorted(&["instructions", "memory_mb", "time_ms"])
        );
        assert_eq!(
            keys(&defs["metric"]),
            sorted(&[
                "id",
                "over",
                "among",
                "count",
                "sum",
                "avg",
                "min",
                "max",
                "default",
                "finding",
                "actions",
                "description"
            ])
        );
        assert_eq!(
            keys(&defs["mistake"]),
            sorted(&["id", "title", "when", "evidence", "reason"])
        );
        assert_eq!(
            keys(&defs["dossier"]),
            sorted(&["among", "account", "contact"])
        );
        assert_eq!(keys(&defs["pay"]), sorted(&["over", "among", "rules"]));
        assert_eq!(
            keys(&defs["payRule"]),
            sorted(&["id", "when", "base", "rate", "reason"])
        );
        assert_eq!(
            keys(&defs["test"]["properties"]["expect"]),
            sorted(&[
                "band", "labels", "score", "values", "errors", "evidence", "mistakes", "pay"
            ])
        );
        assert_eq!(
            keys(&defs["criterion"]),
            sorted(&[
                "id",
                "when",
                "lua",
                "points",
                "label",
                "reason",
                "actions",
                "description"
            ])
        );
        assert_eq!(
            keys(&defs["table"]),
            sorted(&[
                "id",
                "hit",
                "aggregate",
                "output",
                "default",
                "rows",
                "description"
            ])
        );
        assert_eq!(
            keys(&defs["row"]),
            sorted(&["when", "value", "label", "reason", "actions"])
        );
        assert_eq!(
            keys(&defs["band"]),
            sorted(&["name", "min_score", "labels", "plan", "key"])
        );
        assert_eq!(
            keys(&defs["param"]),
            sorted(&["default", "description", "min", "max", "choices"])
        );
        assert_eq!(
            keys(&defs["check"]),
            sorted(&["id", "when", "flag", "reason", "actions"])
        );
        assert_eq!(
            keys(&defs["test"]),
            sorted(&[
                "name",
                "account",
                "facts",
                "set",
                "manager",
                "accounts",
                "activities",
                "contacts",
                "tenders",
                "expect"
            ])
        );
        // Each of those lists is what serde accepts: an unknown key names the expected ones.
        for (def, yaml, parse) in [
            ("metric", "id: x\nover: y\nbogus: 1\n", 0),
            ("mistake", "id: x\ntitle: t\nwhen: true\nbogus: 1\n", 1),
            (
                "payRule",
                "id: x\nwhen: true\nbase: b\nrate: 1\nbogus: 1\n",
                2,
            ),
        ] {
            let err = match parse {
                0 => serde_yaml::from_str::<super::MetricFile>(yaml).map(|_| ()),
                1 => serde_yaml::from_str::<super::MistakeFile>(yaml).map(|_| ()),
                _ => serde_yaml::from_str::<super::PayRuleFile>(yaml).map(|_| ()),
            }
            .unwrap_err()
            .to_string();
            for k in keys(&defs[def]) {
                assert!(err.contains(&format!("`{k}`")), "{def}.{k}: {err}");
            }
        }
        let err = serde_yaml::from_str::<super::PackFile>("pack: x\nbogus: 1\n")
            .unwrap_err()
            .to_string();
        for k in keys(&schema) {
            assert!(
                err.contains(&format!("`{k}`")),
                "{k} missing from the parser's list: {err}"
            );
        }
    }
}
