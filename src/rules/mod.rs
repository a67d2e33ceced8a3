//! Rule packs: YAML files (and the Lua files they name) that decide which clients are key and
//! why. Loading parses each pack with unknown keys rejected, then checks its meaning in a
//! separate pass; every problem is a [`Diagnostic`] with file, line, column and caret.
//!
//! All account packs in a rules folder form one [`RuleSet`]: their params, measures, tables and
//! criteria share one namespace (a name defined twice is an error naming both places).

pub mod file;
pub mod kam;
pub mod lua;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::error::{Error, Result};
use crate::expr::Expr;
use file::{Cond, NumOrExpr, PackFile};

/// The default packs compiled into the binary: (file name, text).
pub const DEFAULT_FILES: &[(&str, &str)] = &[
    (
        "key-clients.yaml",
        include_str!("../../rules/key-clients.yaml"),
    ),
    (
        "kam-performance.yaml",
        include_str!("../../rules/kam-performance.yaml"),
    ),
    (
        "kam-performance.tests.yaml",
        include_str!("../../rules/kam-performance.tests.yaml"),
    ),
];

/// An expression with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SExpr {
    /// The parsed expression.
    pub expr: Expr,
    /// As written.
    pub text: String,
    /// Where.
    pub span: Span,
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A number.
    Num(f64),
    /// Text.
    Text(String),
    /// Yes/no.
    Bool(bool),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Num(n) => f.write_str(&crate::model::value::format_number(*n)),
            ParamValue::Text(t) => f.write_str(t),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Current value (default, or set with `--set`).
    pub value: ParamValue,
    /// Default.
    pub default: ParamValue,
    /// What it means.
    pub description: String,
    /// Bounds for numbers.
    pub min: Option<f64>,
    /// Bounds for numbers.
    pub max: Option<f64>,
    /// Allowed texts.
    pub choices: Vec<String>,
    /// Where it was declared.
    pub span: Span,
}

impl Param {
    fn check(&self, v: &ParamValue) -> std::result::Result<(), String> {
        match (v, &self.default) {
            (ParamValue::Num(n), ParamValue::Num(_)) => {
                if self.min.is_some_and(|m| *n < m) || self.max.is_some_and(|m| *n > m) {
                    return Err(format!(
                        "{} must be between {} and {}, not {}",
                        self.name,
                        self.min
                            .map_or("-∞".into(), crate::model::value::format_number),
                        self.max
                            .map_or("∞".into(), crate::model::value::format_number),
                        crate::model::value::format_number(*n)
                    ));
                }
                Ok(())
            }
            (ParamValue::Text(t), ParamValue::Text(_)) => {
                if !self.choices.is_empty() && !self.choices.contains(t) {
                    let hint = did_you_mean(t, self.choices.iter().map(String::as_str))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(format!(
                        "{} must be one of {}, not `{t}`{hint}",
                        self.name,
                        self.choices.join(", ")
                    ));
                }
                Ok(())
            }
            (ParamValue::Bool(_), ParamValue::Bool(_)) => Ok(()),
            (v, d) => Err(format!(
                "{} is a {}, not a {}",
                self.name,
                kind_name(d),
                kind_name(v)
            )),
        }
    }

    /// Parses a `--set` value for this parameter and checks it.
    pub fn parse_value(&self, text: &str) -> std::result::Result<ParamValue, String> {
        let v = match &self.default {
            ParamValue::Num(_) => {
                let t = text.trim();
                let n = if let Some(p) = t.strip_suffix('%') {
                    p.trim().parse::<f64>().map(|n| n / 100.0)
                } else {
                    t.parse::<f64>()
                };
                ParamValue::Num(n.map_err(|_| format!("{} is a number, not `{text}`", self.name))?)
            }
            ParamValue::Bool(_) => match crate::import::cells::parse_bool_text(text) {
                Some(b) => ParamValue::Bool(b),
                None => return Err(format!("{} is yes/no, not `{text}`", self.name)),
            },
            ParamValue::Text(_) => ParamValue::Text(text.to_string()),
        };
        self.check(&v)?;
        Ok(v)
    }
}

fn kind_name(v: &ParamValue) -> &'static str {
    match v {
        ParamValue::Num(_) => "number",
        ParamValue::Text(_) => "text",
        ParamValue::Bool(_) => "yes/no",
    }
}

/// How a measure is computed.
#[derive(Debug, Clone, PartialEq)]
pub enum Compute {
    /// An expression.
    Expr(SExpr),
    /// A Lua function of the pack (name, where named).
    Lua(String, Span),
}

/// A measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Name.
    pub name: String,
    /// How.
    pub compute: Compute,
    /// What it means.
    pub description: String,
}

/// A reason template: text with `{name}` / `{name:%}` / `{name:2}` placeholders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    /// Pieces in order.
    pub parts: Vec<TemplatePart>,
    /// Where it was written.
    pub span: Option<Span>,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// A value: name, format (`%`, digits, or empty), and the slot once bound.
    Value(String, String, usize),
}

impl Template {
    /// Parses `"{share:%} of profit"`.
    pub fn parse(text: &str) -> std::result::Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err("a `{` without its `}`".into());
            };
            let inner = &rest[open + 1..open + close];
            let (name, fmt) = inner.split_once(':').unwrap_or((inner, ""));
            if name.trim().is_empty() {
                return Err("an empty `{}` placeholder".into());
            }
            if !(fmt.is_empty() || fmt == "%" || fmt.parse::<u8>().is_ok_and(|d| d <= 6)) {
                return Err(format!(
                    "unknown format `{fmt}` in `{{{inner}}}`: use `%` or a number of decimals"
                ));
            }
            parts.push(TemplatePart::Value(
                name.trim().to_string(),
                fmt.to_string(),
                usize::MAX,
            ));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        Ok(Template { parts, span: None })
    }
}

/// What decides a criterion.
#[derive(Debug, Clone, PartialEq)]
pub enum Decide {
    /// An expression.
    Expr(SExpr),
    /// A Lua function.
    Lua(String, Span),
}

/// A criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// Id.
    pub id: String,
    /// Condition.
    pub decide: Decide,
    /// Points when matched.
    pub points: Option<SExpr>,
    /// Label granted.
    pub label: Option<String>,
    /// Reason template.
    pub reason: Template,
    /// Actions.
    pub actions: Vec<String>,
    /// What it means.
    pub description: String,
    /// Where it was declared.
    pub span: Span,
}

/// Hit policy of a decision table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// The first matching row decides.
    First,
    /// At most one row may match; two is an error for the account.
    Unique,
    /// Every matching row counts; the outputs are aggregated.
    Collect(Aggregate),
}

/// How `collect` combines outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Sum.
    Sum,
    /// Largest.
    Max,
    /// Smallest.
    Min,
    /// Number of matching rows.
    Count,
}

/// A literal output of a table row.
pub type Literal = ParamValue;

/// A row of a decision table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// Condition.
    pub when: SExpr,
    /// Output.
    pub value: Literal,
    /// Label granted when this row decides.
    pub label: Option<String>,
    /// Reason template.
    pub reason: Template,
    /// Actions.
    pub actions: Vec<String>,
}

/// A decision table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Id.
    pub id: String,
    /// Hit policy.
    pub hit: Hit,
    /// Output name.
    pub output: String,
    /// Value when no row matches.
    pub default: Option<Literal>,
    /// Rows.
    pub rows: Vec<TableRow>,
    /// What it means.
    pub description: String,
    /// Where it was declared.
    pub span: Span,
}

/// A band.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Name.
    pub name: String,
    /// Lowest score.
    pub min_score: Option<SExpr>,
    /// Labels that put an account in the band.
    pub labels: Vec<String>,
    /// Gets an account plan.
    pub plan: bool,
    /// Counts as a key account.
    pub key: bool,
}

/// A KAM or portfolio check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Id.
    pub id: String,
    /// Condition.
    pub when: SExpr,
    /// Flag.
    pub flag: String,
    /// Message.
    pub reason: Template,
    /// Actions.
    pub actions: Vec<String>,
}

/// The portfolio pass settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioSpec {
    /// `gross_profit` or `revenue`.
    pub basis: SExpr,
    /// A cut-off.
    pub a_cutoff: SExpr,
    /// B cut-off.
    pub b_cutoff: SExpr,
}

/// A pack's test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The pack it belongs to.
    pub pack: String,
    /// Where.
    pub span: Span,
    /// As written.
    pub case: file::TestFile,
    /// A case of a KAM pack.
    pub kam: bool,
}

/// A loaded pack's identity.
#[derive(Debug, Clone, PartialEq)]
pub struct PackInfo {
    /// Name.
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// Description.
    pub description: String,
    /// The file's text (for hashing and `kam init`).
    pub text: String,
}

/// Lua sandbox limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instructions per call.
    pub instructions: u64,
    /// Bytes per VM.
    pub memory: usize,
    /// Wall-clock milliseconds per call: string functions copy megabytes in one instruction,
    /// so the instruction budget alone does not bound the time a call takes.
    pub time_ms: u64,
}

/// Every account pack of a rules folder, checked and combined.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    /// Where the rules came from (`None`: the embedded defaults).
    pub dir: Option<PathBuf>,
    /// The packs.
    pub packs: Vec<PackInfo>,
    /// Params in declaration order.
    pub params: Vec<Param>,
    /// Portfolio settings.
    pub portfolio: Option<PortfolioSpec>,
    /// Measures in order.
    pub measures: Vec<Measure>,
    /// Tables in order.
    pub tables: Vec<Table>,
    /// Criteria in order.
    pub criteria: Vec<Criterion>,
    /// Bands in order.
    pub bands: Vec<Band>,
    /// Per-KAM checks.
    pub kam_checks: Vec<Check>,
    /// Portfolio checks.
    pub portfolio_checks: Vec<Check>,
    /// Test cases.
    pub tests: Vec<TestCase>,
    /// The KAM packs (`scope: kams`), combined.
    pub kam: kam::KamRules,
    /// Lua sources: (display path, text).
    pub lua: Vec<(String, String)>,
    /// Lua limits.
    pub limits: Limits,
    /// Some pack file could not be parsed at all (so what is missing says nothing).
    pub incomplete: bool,
}

/// Default Lua limits when a pack names none.
pub const DEFAULT_LIMITS: Limits = Limits {
    instructions: 1_000_000,
    memory: 64 << 20,
    time_ms: 250,
};

struct Ctx<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Vec<Diagnostic>,
    /// Compiling a KAM pack (its names are checked against the KAM scope's).
    kam_scope: bool,
}

impl Ctx<'_> {
    fn span(&self, needle: &str, from: usize) -> Span {
        Span::find(self.path, self.source, needle, from)
    }
    fn error(&mut self, message: impl Into<String>, span: Span, hint: Option<String>) {
        let mut d =
            Diagnostic::new(format!("{}: {}", self.path.display(), message.into())).with_span(span);
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        self.problems.push(d);
    }
    fn expr(&mut self, text: &str, from: usize, what: &str) -> Option<SExpr> {
        let span = self.span(text, from);
        match Expr::parse(text) {
            Ok(expr) => Some(SExpr {
                expr,
                text: text.to_string(),
                span,
            }),
            Err(e) => {
                let at = Span {
                    col: span.col + e.offset,
                    len: e.len,
                    ..span
                };
                self.error(format!("in {what}: {}", e.message), at, None);
                None
            }
        }
    }
    fn cond(&mut self, c: &Cond, from: usize, what: &str) -> Option<SExpr> {
        match c {
            Cond::Bool(b) => Some(SExpr {
                expr: Expr::Bool(*b),
                text: b.to_string(),
                span: self.span(&b.to_string(), from),
            }),
            Cond::Expr(t) => self.expr(t, from, what),
        }
    }
    fn num_or_expr(&mut self, v: &NumOrExpr, from: usize, what: &str) -> Option<SExpr> {
        match v {
            NumOrExpr::Num(n) => Some(SExpr {
                expr: Expr::Num(*n),
                text: crate::model::value::format_number(*n),
                span: self.span(&crate::model::value::format_number(*n), from),
            }),
            NumOrExpr::Expr(t) => self.expr(t, from, what),
        }
    }
    fn template(&mut self, text: &str, from: usize) -> Template {
        let span = self.span(text.split('{').next().unwrap_or(text), from);
        match Template::parse(text) {
            Ok(mut t) => {
                t.span = Some(span);
                t
            }
            Err(m) => {
                self.error(format!("in the reason: {m}"), span, None);
                Template::default()
            }
        }
    }
}

fn yaml_value_to_param(v: &serde_yaml::Value) -> Option<ParamValue> {
    match v {
        serde_yaml::Value::Number(n) => n.as_f64().map(ParamValue::Num),
        serde_yaml::Value::String(s) => Some(ParamValue::Text(s.clone())),
        serde_yaml::Value::Bool(b) => Some(ParamValue::Bool(*b)),
        _ => None,
    }
}

fn key_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

const ALL_KEYS: &[&str] = &[
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
    "default",
    "min",
    "max",
    "choices",
    "expr",
    "id",
    "when",
    "points",
    "label",
    "reason",
    "actions",
    "hit",
    "aggregate",
    "output",
    "rows",
    "value",
    "name",
    "min_score",
    "labels",
    "plan",
    "key",
    "flag",
    "account",
    "facts",
    "set",
    "expect",
    "band",
    "score",
    "values",
    "errors",
    "basis",
    "a_cutoff",
    "b_cutoff",
    "instructions",
    "memory_mb",
    "time_ms",
    "scope",
    "metrics",
    "mistakes",
    "dossier",
    "pay",
    "over",
    "among",
    "count",
    "sum",
    "avg",
    "finding",
    "title",
    "evidence",
    "contact",
    "base",
    "rate",
    "manager",
    "accounts",
    "activities",
    "contacts",
    "tenders",
    "rules",
];

/// The files of a rules folder, or the embedded defaults: (display path, text), YAML first.
pub fn read_files(dir: Option<&Path>) -> Result<Vec<(PathBuf, String)>> {
    match dir {
        None => Ok(DEFAULT_FILES
            .iter()
            .map(|(n, t)| (PathBuf::from(format!("<embedded>/{n}")), t.to_string()))
            .collect()),
        Some(dir) => {
            let rd = std::fs::read_dir(dir).map_err(|e| {
                Error::io(format!("cannot read the rules folder {}", dir.display()), e)
            })?;
            let mut paths: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "lua")
                })
                .collect();
            paths.sort();
            let mut out = Vec::new();
            for p in paths {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
                out.push((p, text));
            }
            if !out
                .iter()
                .any(|(p, _)| p.extension().is_some_and(|x| x != "lua"))
            {
                return Err(Error::Usage(format!(
                    "the rules folder {} has no rule pack (*.yaml); `kam init {}` writes the defaults there",
                    dir.display(),
                    dir.display()
                )));
            }
            Ok(out)
        }
    }
}

/// Loads and checks the rules of a folder (or the embedded defaults), applying `--set` values.
/// Returns every problem found, not just the first.
pub fn load(
    dir: Option<&Path>,
    sets: &[(String, String)],
) -> std::result::Result<RuleSet, Vec<Diagnostic>> {
    let (set, problems) = load_lenient(dir, sets)?;
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(problems)
    }
}

/// Like [`load`], but returns what could be loaded together with the problems, so that
/// `kam validate` can check the rest too. Fails only when the files cannot be read.
pub fn load_lenient(
    dir: Option<&Path>,
    sets: &[(String, String)],
) -> std::result::Result<(RuleSet, Vec<Diagnostic>), Vec<Diagnostic>> {
    let files = read_files(dir).map_err(|e| vec![Diagnostic::new(e.to_string())])?;
    Ok(load_files(dir, &files, sets))
}

/// Checks rule pack texts given as (path, text) pairs, as [`load_lenient`] does with the files
/// of a folder (the paths only name the files in messages; nothing is read). For tests and
/// fuzzing.
pub fn load_files(
    dir: Option<&Path>,
    files: &[(PathBuf, String)],
    sets: &[(String, String)],
) -> (RuleSet, Vec<Diagnostic>) {
    let mut set = RuleSet {
        dir: dir.map(Path::to_path_buf),
        packs: Vec::new(),
        params: Vec::new(),
        portfolio: None,
        measures: Vec::new(),
        tables: Vec::new(),
        criteria: Vec::new(),
        bands: Vec::new(),
        kam_checks: Vec::new(),
        portfolio_checks: Vec::new(),
        tests: Vec::new(),
        kam: kam::KamRules::default(),
        lua: Vec::new(),
        limits: DEFAULT_LIMITS,
        incomplete: false,
    };
    let mut problems = Vec::new();
    let lua_files: BTreeMap<String, (PathBuf, String)> = files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "lua"))
        .map(|(p, t)| {
            (
                p.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                (p.clone(), t.clone()),
            )
        })
        .collect();
    let mut defined: BTreeMap<String, Span> = BTreeMap::new();
    let mut kam_packs: Vec<String> = Vec::new();
    let mut used_lua: HashSet<String> = HashSet::new();
    let is_tests = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".tests.yaml"))
    };
    for (path, source) in files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x != "lua") && !is_tests(p))
    {
        let file: PackFile = match serde_yaml::from_str(source) {
            Ok(f) => f,
            Err(e) => {
                problems.push(crate::diag::yaml_error(path, source, &e, ALL_KEYS));
                set.incomplete = true;
                continue;
            }
        };
        let mut cx = Ctx {
            path,
            source,
            problems: Vec::new(),
            kam_scope: false,
        };
        match file.scope.as_deref() {
            None | Some("accounts") => {
                for (present, key) in [
                    (!file.metrics.is_empty(), "metrics"),
                    (!file.mistakes.is_empty(), "mistakes"),
                    (file.dossier.is_some(), "dossier"),
                    (file.pay.is_some(), "pay"),
                ] {
                    if present {
                        cx.error(
                            format!("`{key}` belongs in a KAM pack"),
                            cx.span(&format!("{key}:"), 1),
                            Some("add `scope: kams` to the pack, or move the section to the KAM pack".into()),
                        );
                    }
                }
                compile_pack(
                    &mut cx,
                    &file,
                    &mut set,
                    &mut defined,
                    &lua_files,
                    &mut used_lua,
                );
            }
            Some("kams") => {
                cx.kam_scope = true;
                if file.portfolio.is_some() {
                    cx.error(
                        "`portfolio` belongs in an account pack, not a KAM pack",
                        cx.span("portfolio:", 1),
                        None,
                    );
                }
                // The shared machinery compiles into the KAM lists.
                std::mem::swap(&mut set.measures, &mut set.kam.measures);
                std::mem::swap(&mut set.tables, &mut set.kam.tables);
                std::mem::swap(&mut set.criteria, &mut set.kam.criteria);
                std::mem::swap(&mut set.bands, &mut set.kam.bands);
                let tests_before = set.tests.len();
                compile_pack(
                    &mut cx,
                    &file,
                    &mut set,
                    &mut defined,
                    &lua_files,
                    &mut used_lua,
                );
                std::mem::swap(&mut set.measures, &mut set.kam.measures);
                std::mem::swap(&mut set.tables, &mut set.kam.tables);
                std::mem::swap(&mut set.criteria, &mut set.kam.criteria);
                std::mem::swap(&mut set.bands, &mut set.kam.bands);
                set.tests[tests_before..]
                    .iter_mut()
                    .for_each(|t| t.kam = true);
                kam::compile(&mut cx, &file, &mut set.kam, &mut defined);
            }
            Some(other) => {
                let hint = did_you_mean(other, ["accounts", "kams"])
                    .map(|s| format!("did you mean `{s}`?"));
                cx.error(
                    format!("scope must be `accounts` or `kams`, not `{other}`"),
                    cx.span(other, 1),
                    hint,
                );
            }
        }
        if file.scope.as_deref() == Some("kams") {
            kam_packs.push(file.pack.clone());
        }
        set.packs.push(PackInfo {
            name: file.pack.clone(),
            path: path.clone(),
            description: file.description.clone(),
            text: source.clone(),
        });
        problems.extend(cx.problems);
    }
    // Test cases beside a pack: `<anything>.tests.yaml` with `pack:` and `tests:`.
    for (path, source) in files.iter().filter(|(p, _)| is_tests(p)) {
        match serde_yaml::from_str::<file::TestsFile>(source) {
            Ok(t) => {
                if !set.packs.iter().any(|p| p.name == t.pack) {
                    let span = Span::find(path, source, &t.pack, 1);
                    let names: Vec<&str> = set.packs.iter().map(|p| p.name.as_str()).collect();
                    let hint = did_you_mean(&t.pack, names.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"));
                    let mut d = Diagnostic::new(format!(
                        "{}: no pack `{}` for these tests",
                        path.display(),
                        t.pack
                    ))
                    .with_span(span);
                    if let Some(h) = hint {
                        d = d.with_hint(h);
                    }
                    problems.push(d);
                }
                let kam = kam_packs.contains(&t.pack);
                for case in t.tests {
                    let span = Span::find(path, source, &case.name, 1);
                    set.tests.push(TestCase {
                        pack: t.pack.clone(),
                        span,
                        case,
                        kam,
                    });
                }
            }
            Err(e) => problems.push(crate::diag::yaml_error(path, source, &e, ALL_KEYS)),
        }
    }
    // --set
    for (name, value) in sets {
        match set.params.iter_mut().find(|p| p.name == *name) {
            Some(p) => match p.parse_value(value) {
                Ok(v) => p.value = v,
                Err(m) => problems.push(Diagnostic::new(format!("--set {name}={value}: {m}"))),
            },
            None => {
                let names: Vec<&str> = set.params.iter().map(|p| p.name.as_str()).collect();
                let hint = did_you_mean(name, names.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("the params are {}", names.join(", ")));
                problems.push(
                    Diagnostic::new(format!("--set {name}={value}: there is no param `{name}`"))
                        .with_hint(hint),
                );
            }
        }
    }
    (set, problems)
}

fn define(
    cx: &mut Ctx<'_>,
    defined: &mut BTreeMap<String, Span>,
    name: &str,
    span: Span,
    what: &str,
    kam_scope: bool,
) {
    if let Some(first) = defined.get(name) {
        let hint = format!(
            "first defined at {}:{}:{}",
            first.file.display(),
            first.line,
            first.col
        );
        cx.error(
            format!("{what} `{name}` is defined twice"),
            span,
            Some(hint),
        );
    } else if kam_scope && crate::score::names::is_reserved_kam(name) {
        cx.error(
            format!("`{name}` is a KAM field or fact; choose another name for this {what}"),
            span,
            None,
        );
    } else if !kam_scope && crate::score::names::is_reserved(name) {
        cx.error(format!("`{name}` is an account field or portfolio fact; choose another name for this {what}"), span, None);
    } else {
        defined.insert(name.to_string(), span);
    }
}

fn compile_pack(
    cx: &mut Ctx<'_>,
    file: &PackFile,
    set: &mut RuleSet,
    defined: &mut BTreeMap<String, Span>,
    lua_files: &BTreeMap<String, (PathBuf, String)>,
    used_lua: &mut HashSet<String>,
) {
    for name in &file.lua {
        let span = cx.span(name, 1);
        if name.contains(['/', '\\']) || name.starts_with('.') {
            cx.error(
                format!("Lua file `{name}` must be a plain file name in the rules folder"),
                span,
                None,
            );
            continue;
        }
        match lua_files.get(name) {
            Some((p, text)) => {
                if used_lua.insert(name.clone()) {
                    set.lua.push((p.display().to_string(), text.clone()));
                }
            }
            None => {
                let hint = did_you_mean(name, lua_files.keys().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"));
                cx.error(
                    format!("Lua file `{name}` is not in the rules folder"),
                    span,
                    hint,
                );
            }
        }
    }
    if let Some(l) = &file.limits {
        if let Some(i) = l.instructions {
            set.limits.instructions = i.clamp(1_000, 1_000_000_000);
        }
        if let Some(m) = l.memory_mb {
            set.limits.memory = (m.clamp(1, 4096) as usize) << 20;
        }
        if let Some(t) = l.time_ms {
            set.limits.time_ms = t.clamp(1, 600_000);
        }
    }
    for (k, v) in &file.params {
        let name = key_text(k);
        let span = cx.span(&format!("{name}:"), 1);
        let p: file::ParamFile = match serde_yaml::from_value(v.clone()) {
            Ok(p) => p,
            Err(e) => {
                cx.error(
                    format!(
                        "param `{name}`: {}",
                        e.to_string().split(" at line ").next().unwrap_or("")
                    ),
                    span,
                    None,
                );
                continue;
            }
        };
        let Some(default) = yaml_value_to_param(&p.default) else {
            cx.error(
                format!("param `{name}` needs a number, text or yes/no default"),
                span,
                None,
            );
            continue;
        };
        define(cx, defined, &name, span.clone(), "param", false);
        let param = Param {
            name,
            value: default.clone(),
            default: default.clone(),
            description: p.description,
            min: p.min,
            max: p.max,
            choices: p.choices,
            span: span.clone(),
        };
        if let Err(m) = param.check(&default) {
            cx.error(format!("default: {m}"), span, None);
        }
        set.params.push(param);
    }
    if let Some(pf) = &file.portfolio {
        if set.portfolio.is_some() {
            cx.error(
                "a second pack declares `portfolio`; only one may",
                cx.span("portfolio:", 1),
                None,
            );
        }
        let from = cx.span("portfolio:", 1).line;
        let basis = cx.expr(&pf.basis, from, "portfolio.basis");
        let a = cx.num_or_expr(&pf.a_cutoff, from, "portfolio.a_cutoff");
        let b = cx.num_or_expr(&pf.b_cutoff, from, "portfolio.b_cutoff");
        if let (Some(basis), Some(a_cutoff), Some(b_cutoff)) = (basis, a, b) {
            set.portfolio = Some(PortfolioSpec {
                basis,
                a_cutoff,
                b_cutoff,
            });
        }
    }
    for (k, v) in &file.measures {
        let name = key_text(k);
        let span = cx.span(&format!("{name}:"), cx.span("measures:", 1).line);
        let m: file::MeasureFile = match v {
            serde_yaml::Value::String(s) => file::MeasureFile {
                expr: Some(s.clone()),
                lua: None,
                description: String::new(),
            },
            other => match serde_yaml::from_value(other.clone()) {
                Ok(m) => m,
                Err(e) => {
                    cx.error(
                        format!(
                            "measure `{name}`: {}",
                            e.to_string().split(" at line ").next().unwrap_or("")
                        ),
                        span,
                        None,
                    );
                    continue;
                }
            },
        };
        define(cx, defined, &name, span.clone(), "measure", cx.kam_scope);
        let compute = match (&m.expr, &m.lua) {
            (Some(e), None) => match cx.expr(e, span.line, &format!("measure `{name}`")) {
                Some(e) => Compute::Expr(e),
                None => continue,
            },
            (None, Some(f)) => Compute::Lua(f.clone(), cx.span(f, span.line)),
            _ => {
                cx.error(
                    format!("measure `{name}` needs exactly one of `expr` or `lua`"),
                    span,
                    None,
                );
                continue;
            }
        };
        set.measures.push(Measure {
            name,
            compute,
            description: m.description,
        });
    }
    for t in &file.tables {
        let span = cx.span(&format!("id: {}", t.id), 1);
        let from = span.line;
        let hit = match (t.hit.as_str(), t.aggregate.as_deref()) {
            ("first", None) => Hit::First,
            ("unique", None) => Hit::Unique,
            ("collect", Some(a)) => {
                Hit::Collect(match a {
                    "sum" => Aggregate::Sum,
                    "max" => Aggregate::Max,
                    "min" => Aggregate::Min,
                    "count" => Aggregate::Count,
                    other => {
                        let hint = did_you_mean(other, ["sum", "max", "min", "count"])
                            .map(|s| format!("did you mean `{s}`?"));
                        cx.error(format!("table `{}`: aggregate must be sum, max, min or count, not `{other}`", t.id), cx.span(other, from), hint);
                        continue;
                    }
                })
            }
            ("collect", None) => {
                cx.error(
                    format!(
                        "table `{}`: hit policy collect needs `aggregate: sum|max|min|count`",
                        t.id
                    ),
                    cx.span("collect", from),
                    None,
                );
                continue;
            }
            ("first" | "unique", Some(_)) => {
                cx.error(
                    format!(
                        "table `{}`: `aggregate` goes only with `hit: collect`",
                        t.id
                    ),
                    cx.span("aggregate", from),
                    None,
                );
                continue;
            }
            (other, _) => {
                let hint = did_you_mean(other, ["first", "unique", "collect"])
                    .map(|s| format!("did you mean `{s}`?"));
                cx.error(
                    format!(
                        "table `{}`: hit policy must be first, unique or collect, not `{other}`",
                        t.id
                    ),
                    cx.span(other, from),
                    hint,
                );
                continue;
            }
        };
        if t.output != "points" {
            let kam_scope = cx.kam_scope;
            define(
                cx,
                defined,
                &t.output,
                cx.span(&t.output, from),
                "table output",
                kam_scope,
            );
        }
        let mut rows = Vec::new();
        let mut seen_conditions: Vec<String> = Vec::new();
        let mut catch_all: Option<usize> = None;
        let mut row_line = from;
        for (i, r) in t.rows.iter().enumerate() {
            let Some(when) = cx.cond(
                &r.when,
                row_line,
                &format!("table `{}` row {}", t.id, i + 1),
            ) else {
                continue;
            };
            row_line = when.span.line + 1;
            if hit == Hit::First
                && let Some(c) = catch_all
            {
                cx.error(
                    format!("table `{}` row {} can never decide: row {} above it always matches (hit policy first)", t.id, i + 1, c + 1),
                    when.span.clone(),
                    Some("move the catch-all row last".into()),
                );
            }
            if when.expr == Expr::Bool(true) {
                catch_all.get_or_insert(i);
            }
            let canonical = when.expr.to_string();
            if let Some(j) = seen_conditions.iter().position(|c| *c == canonical) {
                let what = if hit == Hit::First {
                    "can never decide"
                } else {
                    "always overlaps"
                };
                cx.error(
                    format!(
                        "table `{}` row {} {what}: it has the same condition as row {}",
                        t.id,
                        i + 1,
                        j + 1
                    ),
                    when.span.clone(),
                    None,
                );
            }
            seen_conditions.push(canonical);
            let Some(value) = yaml_value_to_param(&r.value) else {
                cx.error(
                    format!(
                        "table `{}` row {}: value must be a number, text or yes/no",
                        t.id,
                        i + 1
                    ),
                    when.span.clone(),
                    None,
                );
                continue;
            };
            if t.output == "points" && !matches!(value, ParamValue::Num(_)) {
                cx.error(
                    format!("table `{}` row {}: points must be a number", t.id, i + 1),
                    when.span.clone(),
                    None,
                );
            }
            rows.push(TableRow {
                when,
                value,
                label: r.label.clone(),
                reason: cx.template(&r.reason, row_line - 1),
                actions: r.actions.clone(),
            });
        }
        let default = t.default.as_ref().and_then(yaml_value_to_param);
        set.tables.push(Table {
            id: t.id.clone(),
            hit,
            output: t.output.clone(),
            default,
            rows,
            description: t.description.clone(),
            span,
        });
    }
    let mut ids: HashSet<String> = set.criteria.iter().map(|c| c.id.clone()).collect();
    for c in &file.criteria {
        let span = cx.span(&format!("id: {}", c.id), 1);
        if !ids.insert(c.id.clone()) {
            cx.error(
                format!("criterion id `{}` is used twice", c.id),
                span.clone(),
                None,
            );
        }
        let decide = match (&c.when, &c.lua) {
            (Some(w), None) => match cx.cond(w, span.line, &format!("criterion `{}`", c.id)) {
                Some(e) => Decide::Expr(e),
                None => continue,
            },
            (None, Some(f)) => Decide::Lua(f.clone(), cx.span(f, span.line)),
            _ => {
                cx.error(
                    format!("criterion `{}` needs exactly one of `when` or `lua`", c.id),
                    span,
                    None,
                );
                continue;
            }
        };
        let points = c
            .points
            .as_ref()
            .and_then(|p| cx.num_or_expr(p, span.line, &format!("the points of `{}`", c.id)));
        let reason = cx.template(&c.reason, span.line);
        set.criteria.push(Criterion {
            id: c.id.clone(),
            decide,
            points,
            label: c.label.clone(),
            reason,
            actions: c.actions.clone(),
            description: c.description.clone(),
            span,
        });
    }
    if !file.bands.is_empty() {
        if !set.bands.is_empty() {
            cx.error(
                "a second pack declares `bands`; only one may",
                cx.span("bands:", 1),
                None,
            );
        }
        let from = cx.span("bands:", 1).line;
        for b in &file.bands {
            let line = cx.span(&b.name, from).line;
            let min_score = b
                .min_score
                .as_ref()
                .and_then(|m| cx.num_or_expr(m, line, &format!("band `{}`", b.name)));
            set.bands.push(Band {
                name: b.name.clone(),
                min_score,
                labels: b.labels.clone(),
                plan: b.plan,
                key: b.key,
            });
        }
        if let Some(last) = set.bands.last()
            && (last.min_score.is_some() || !last.labels.is_empty())
        {
            let span = cx.span(&last.name.clone(), from);
            cx.error(
                "the last band must take every account left (no min_score and no labels)",
                span,
                None,
            );
        }
    }
    for (list, target) in [(&file.kam_checks, 0), (&file.portfolio_checks, 1)] {
        for c in list {
            let span = cx.span(&format!("id: {}", c.id), 1);
            let Some(when) = cx.cond(&c.when, span.line, &format!("check `{}`", c.id)) else {
                continue;
            };
            let check = Check {
                id: c.id.clone(),
                when,
                flag: c.flag.clone().unwrap_or_else(|| c.id.clone()),
                reason: cx.template(&c.reason, span.line),
                actions: c.actions.clone(),
            };
            if target == 0 {
                set.kam_checks.push(check)
            } else {
                set.portfolio_checks.push(check)
            }
        }
    }
    for t in &file.tests {
        let span = cx.span(&t.name, 1);
        set.tests.push(TestCase {
            pack: file.pack.clone(),
            span,
            case: t.clone(),
            kam: false,
        });
    }
}
