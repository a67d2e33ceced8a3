//! Scoring: bind a [`RuleSet`] to a workbook's names, run the portfolio pass, then score every
//! account in parallel (one Lua VM per worker thread), recording every contribution with the
//! reason and the values it saw.

pub mod explain;
pub mod kams;
pub mod logic;
pub mod names;
pub mod portfolio;
pub mod testing;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::expr::{Expr, V, typed};
use crate::model::{Account, Dataset, Value};
use crate::rules::lua::LuaVm;
use crate::rules::{Check, ParamValue, RuleSet, SExpr, Template, TemplatePart};
use names::{ACCOUNT_FACTS, ACCOUNT_FIELDS, KAM_FACTS, PORTFOLIO_FACTS};
use portfolio::{AccountFacts, Basis, PortfolioFacts};

/// What happened to one rule on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The condition held.
    Matched,
    /// The condition did not hold.
    NotMatched,
    /// An input was not known, so the condition could not be decided.
    NotKnown,
    /// The rule failed on this account.
    Error,
}

impl Outcome {
    /// `matched`, `not matched`, `not known` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::NotMatched => "not matched",
            Outcome::NotKnown => "not known",
            Outcome::Error => "error",
        }
    }
}

/// One rule's effect on one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Criterion id, or `table/row N`.
    pub rule: Arc<str>,
    /// `criterion` or `table`.
    pub kind: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// Points added to the score.
    pub points: f64,
    /// Label granted.
    pub label: Option<String>,
    /// Table output (`dependency = critical`).
    pub output: Option<(String, String)>,
    /// The reason, with values.
    pub reason: String,
    /// The inputs it read and their values.
    pub inputs: Vec<(Arc<str>, String)>,
    /// Source cells of those inputs.
    pub cells: Vec<String>,
    /// Recommended actions.
    pub actions: Arc<[String]>,
}

/// A rule that failed on an account.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// Rule id.
    pub rule: Arc<str>,
    /// What went wrong.
    pub message: String,
}

/// The scoring of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountResult {
    /// Index into the dataset's accounts.
    pub index: usize,
    /// Total points.
    pub score: f64,
    /// Band name.
    pub band: String,
    /// The band gets an account plan.
    pub plan: bool,
    /// The band counts as key.
    pub key: bool,
    /// Labels (definitions matched), in rule order.
    pub labels: Vec<String>,
    /// Table outputs, aligned with [`Scored::output_names`] (`None`: not known).
    pub outputs: Vec<Option<Arc<str>>>,
    /// Measures, aligned with [`Scored::measure_names`] (`None`: not known).
    pub measures: Vec<Option<f64>>,
    /// Portfolio facts of the account.
    pub facts: AccountFacts,
    /// Contributions (matched rules; every rule when traced).
    pub contributions: Vec<Contribution>,
    /// Rule errors.
    pub errors: Vec<RuleError>,
}

/// A flag raised by a KAM or portfolio check.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// Check id.
    pub check: String,
    /// Flag name.
    pub flag: String,
    /// Message with values.
    pub reason: String,
    /// Actions.
    pub actions: Vec<String>,
}

/// Per-KAM results of the key-client pack.
#[derive(Debug, Clone, PartialEq)]
pub struct KamResult {
    /// KAM id.
    pub kam_id: String,
    /// Accounts.
    pub accounts: usize,
    /// Company-level key accounts.
    pub key_accounts: usize,
    /// Key accounts at any level.
    pub key_accounts_all_levels: usize,
    /// Flags raised.
    pub flags: Vec<Flag>,
    /// Check errors.
    pub errors: Vec<RuleError>,
}

/// Everything a scoring run produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Names of the measures, in order.
    pub measure_names: Vec<String>,
    /// Names of the table outputs, in order.
    pub output_names: Vec<String>,
    /// Params as used (name, value).
    pub params: Vec<(String, String)>,
    /// Portfolio aggregates.
    pub portfolio: PortfolioFacts,
    /// Portfolio flags.
    pub portfolio_flags: Vec<Flag>,
    /// Accounts in dataset order (after [`Engine::score_streaming`], without their
    /// contributions, measures and outputs, which went to the sink).
    pub accounts: Vec<AccountResult>,
    /// KAMs by id.
    pub kams: Vec<KamResult>,
    /// KAM performance (when the rules have a KAM pack), added by [`kams::KamEngine::score`].
    pub managers: Option<kams::KamScored>,
}

impl AccountResult {
    /// A table output by name.
    pub fn output<'a>(&'a self, names: &[String], name: &str) -> Option<&'a str> {
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.outputs.get(i)?.as_deref())
    }

    /// A measure by name (`None` when not known or no such measure).
    pub fn measure(&self, names: &[String], name: &str) -> Option<f64> {
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| *self.measures.get(i)?)
    }
}

impl Scored {
    /// Number of rule errors over all accounts and KAMs.
    pub fn error_count(&self) -> usize {
        self.accounts.iter().map(|a| a.errors.len()).sum::<usize>()
            + self.kams.iter().map(|k| k.errors.len()).sum::<usize>()
            + self.managers.as_ref().map_or(0, |m| {
                m.managers.iter().map(|k| k.error_count()).sum::<usize>()
            })
    }
}

/// Whose contributions [`Engine::score_streaming`] keeps in the returned [`Scored`] (the
/// account plans show them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nobody's (no plans are written).
    None,
    /// The accounts whose band gets a plan.
    Plans,
    /// Every account's (a plan for every account).
    All,
}

/// Receives each account's result in order during [`Engine::score_streaming`], with what the
/// [`AccountRender`] made of it (the result's contributions are already dropped unless its
/// [`Keep`] keeps them).
pub type AccountSink<'a> = dyn FnMut(&AccountResult, Vec<u8>) -> crate::Result<()> + 'a;

/// Turns an account's result into bytes (its JSON) on the worker thread that scored it, so the
/// serialisation runs in parallel and the sink only writes.
pub type AccountRender<'a> = dyn Fn(&AccountResult) -> std::io::Result<Vec<u8>> + Sync + 'a;

/// Accounts scored in parallel before their results are handed on.
const CHUNK: usize = 16_384;

static NEXT_ENGINE: AtomicU64 = AtomicU64::new(1);

/// A rule set bound to one workbook's names.
pub struct Engine {
    rules: RuleSet,
    id: u64,
    n_base: usize,
    extras: Vec<String>,
    logic: logic::Logic,
    basis: Basis,
    a_cutoff: f64,
    b_cutoff: f64,
    /// The slots a Lua function's account table gets (not params, not `portfolio.*`).
    lua_visible: Vec<usize>,
    /// The account rules' expressions compiled for the account slots.
    typed: logic::Typed,
    /// The params as rule values (band thresholds read them), made once for every account.
    param_consts: Vec<V<'static>>,
}

fn num_param(v: &ParamValue) -> Option<f64> {
    match v {
        ParamValue::Num(n) => Some(*n),
        _ => None,
    }
}

fn param_v(v: &ParamValue) -> V<'_> {
    match v {
        ParamValue::Num(n) => V::Num(*n),
        ParamValue::Text(t) => V::Str(Cow::Borrowed(t)),
        ParamValue::Bool(b) => V::Bool(*b),
    }
}

fn unknown_name(sexpr: &SExpr, name: &str, known: &[String], scope: &str) -> Diagnostic {
    let line = &sexpr.span.source_line;
    let start = line
        .char_indices()
        .nth(sexpr.span.col - 1)
        .map_or(line.len(), |(b, _)| b);
    let col = line[start..].find(name).map_or(sexpr.span.col, |b| {
        sexpr.span.col + line[start..start + b].chars().count()
    });
    let span = Span {
        col,
        len: name.chars().count(),
        ..sexpr.span.clone()
    };
    let hint = match did_you_mean(name, known.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "{scope} can read account fields, portfolio facts, params, measures, table outputs and the workbook's extra columns (see docs/rules.md)"
        ),
    };
    Diagnostic::new(format!(
        "{}: `{name}` is not a field, fact, param or measure {scope} can read",
        span.file.display()
    ))
    .with_span(span)
    .with_hint(hint)
}

fn bind(
    sexpr: &mut SExpr,
    slot_of: &impl Fn(&str) -> Option<usize>,
    known: &[String],
    scope: &str,
    problems: &mut Vec<Diagnostic>,
) {
    if let Err(name) = sexpr.expr.resolve(slot_of) {
        problems.push(unknown_name(sexpr, &name, known, scope));
    }
}

/// Binds checks that read `facts` (in that order) and then the params.
fn bind_checks(
    checks: &mut [Check],
    facts: &[(&str, &str)],
    params: &[String],
    what: &str,
    problems: &mut Vec<Diagnostic>,
) {
    let names: Vec<String> = facts
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(params.iter().cloned())
        .collect();
    let slot = |n: &str| names.iter().position(|x| x == n);
    for c in checks {
        bind(
            &mut c.when,
            &slot,
            &names,
            &format!("{what} `{}`", c.id),
            problems,
        );
        bind_template(&mut c.reason, &slot, &names, problems);
    }
}

fn bind_template(
    t: &mut Template,
    slot_of: &impl Fn(&str) -> Option<usize>,
    known: &[String],
    problems: &mut Vec<Diagnostic>,
) {
    for part in &mut t.parts {
        if let TemplatePart::Value(name, _, slot) = part {
            match slot_of(name) {
                Some(s) => *slot = s,
                None => {
                    let span = t
                        .span
                        .clone()
                        .unwrap_or_else(|| Span::at(std::path::Path::new("?"), "", 1, 1, 1));
                    let hint = did_you_mean(name, known.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            "placeholders name fields, facts, params, measures or outputs".into()
                        });
                    problems.push(
                        Diagnostic::new(format!(
                            "{}: the reason uses `{{{name}}}`, which is not a name rules can read",
                            span.file.display()
                        ))
                        .with_span(span)
                        .with_hint(hint),
                    );
                }
            }
        }
    }
}

impl Engine {
    /// Binds a rule set to a workbook's extra Accounts columns. Unknown names, a missing
    /// `portfolio` section and Lua syntax errors are reported all at once.
    pub fn new(rules: &RuleSet, extras: &[String]) -> Result<Engine, Vec<Diagnostic>> {
        let mut rules = rules.clone();
        let mut problems = Vec::new();
        let mut names: Vec<String> = ACCOUNT_FIELDS
            .iter()
            .chain(ACCOUNT_FACTS)
            .chain(PORTFOLIO_FACTS)
            .map(|(n, _)| n.to_string())
            .collect();
        let extras: Vec<String> = extras
            .iter()
            .filter(|e| !names.contains(e))
            .cloned()
            .collect();
        names.extend(extras.iter().cloned());
        let n_base = names.len();
        let param_start = names.len();
        names.extend(rules.params.iter().map(|p| p.name.clone()));
        let param_slots = param_start..names.len();
        // Portfolio settings read params only.
        let param_names: Vec<String> = rules.params.iter().map(|p| p.name.clone()).collect();
        let param_slot = |n: &str| param_names.iter().position(|x| x == n);
        let mut basis = Basis::GrossProfit;
        let (mut a_cutoff, mut b_cutoff) = (0.0, 0.0);
        let pvals: Vec<ParamValue> = rules.params.iter().map(|p| p.value.clone()).collect();
        match &mut rules.portfolio {
            None => problems.push(Diagnostic::new("no rule pack declares `portfolio:` (basis, a_cutoff, b_cutoff); the default key-clients.yaml shows how").with_hint("add a `portfolio:` section to one pack")),
            Some(p) => {
                for e in [&mut p.basis, &mut p.a_cutoff, &mut p.b_cutoff] {
                    bind(e, &param_slot, &param_names, "the portfolio section", &mut problems);
                }
                let eval = |e: &SExpr| eval_params(e, &pvals);
                match eval(&p.basis) {
                    Some(V::Str(s)) if s == "gross_profit" => basis = Basis::GrossProfit,
                    Some(V::Str(s)) if s == "revenue" => basis = Basis::Revenue,
                    other => problems.push(Diagnostic::new(format!("{}: the portfolio basis must be 'gross_profit' or 'revenue', not {}", p.basis.span.file.display(), other.map_or("an error".to_string(), |v| v.to_string()))).with_span(p.basis.span.clone())),
                }
                for (e, out) in [(&p.a_cutoff, &mut a_cutoff), (&p.b_cutoff, &mut b_cutoff)] {
                    match eval(e) {
                        Some(V::Num(n)) if (0.0..=1.0).contains(&n) => *out = n,
                        _ => problems.push(Diagnostic::new(format!("{}: a cut-off must be a share between 0 and 1", e.span.file.display())).with_span(e.span.clone())),
                    }
                }
            }
        }
        let logic = logic::Logic::bind(
            logic::Parts {
                measures: &rules.measures,
                tables: &rules.tables,
                criteria: &rules.criteria,
                bands: &rules.bands,
            },
            names,
            &param_names,
            "",
            &mut problems,
        );
        let names = &logic.names;
        for e in &extras {
            if names[n_base..].contains(e) {
                problems.push(
                    Diagnostic::new(format!(
                        "the workbook's column `{e}` has the same name as a param, measure or table output of the rules, so rules could not tell them apart"
                    ))
                    .with_hint("rename the column in the workbook, leave it out with `ignore:` in a mapping file, or rename the rule name"),
                );
            }
        }
        bind_checks(
            &mut rules.kam_checks,
            KAM_FACTS,
            &param_names,
            "KAM check",
            &mut problems,
        );
        bind_checks(
            &mut rules.portfolio_checks,
            PORTFOLIO_FACTS,
            &param_names,
            "portfolio check",
            &mut problems,
        );
        if rules.bands.is_empty() {
            problems.push(Diagnostic::new(
                "no rule pack declares `bands:`; the default key-clients.yaml shows how",
            ));
        }
        if !rules.lua.is_empty()
            && let Err(m) = LuaVm::new(&rules.lua, rules.limits)
        {
            problems.push(lua_problem(&rules.lua, &m));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let lua_visible: Vec<usize> = (0..names.len())
            .filter(|i| !param_slots.contains(i) && !names[*i].starts_with("portfolio."))
            .collect();
        // Fields, facts and portfolio figures have fixed types, params fixed values; extra
        // columns are typed per cell.
        let typed = logic.compile(&|slot| {
            if param_slots.contains(&slot) {
                return typed::Slot::Const(
                    param_v(&rules.params[slot - param_slots.start].value).into_owned(),
                );
            }
            match (slot < n_base - extras.len())
                .then(|| base_ty(&names[slot]))
                .flatten()
            {
                Some(ty) => typed::Slot::Field(ty, slot),
                None => typed::Slot::Dynamic,
            }
        });
        let param_consts = rules
            .params
            .iter()
            .map(|p| param_v(&p.value).into_owned())
            .collect();
        Ok(Engine {
            param_consts,
            typed,
            id: NEXT_ENGINE.fetch_add(1, Ordering::Relaxed),
            n_base,
            extras,
            basis,
            a_cutoff,
            b_cutoff,
            lua_visible,
            logic,
            rules,
        })
    }

    /// Names of the table outputs, in the order of [`AccountResult::outputs`].
    pub fn output_names(&self) -> &[String] {
        &self.logic.output_names
    }

    /// The account rules bound to slots.
    pub fn logic(&self) -> &logic::Logic {
        &self.logic
    }

    /// The rules as loaded (params with their values; expressions not bound).
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Scores a dataset with `jobs` worker threads (0: all cores).
    pub fn score(&self, ds: &Dataset, jobs: usize, trace: bool) -> crate::Result<Scored> {
        self.score_into(ds, jobs, trace, None, CHUNK)
    }

    /// Scores a dataset and hands each account's result to `sink`, in account order, as soon as
    /// its chunk is scored; the returned [`Scored`] keeps what the reports and exports need of
    /// each account (band, key, labels, outputs, measures, errors) and the contributions of the
    /// accounts `keep` names (the plans' "why"), so a large workbook's traces never sit in
    /// memory all at once.
    pub fn score_streaming(
        &self,
        ds: &Dataset,
        jobs: usize,
        trace: bool,
        keep: Keep,
        render: &AccountRender<'_>,
        sink: &mut AccountSink<'_>,
    ) -> crate::Result<Scored> {
        self.score_into(ds, jobs, trace, Some((render, sink, keep)), CHUNK)
    }

    fn score_into(
        &self,
        ds: &Dataset,
        jobs: usize,
        trace: bool,
        mut sink: Option<(&AccountRender<'_>, &mut AccountSink<'_>, Keep)>,
        chunk: usize,
    ) -> crate::Result<Scored> {
        let chunk = chunk.max(1);
        let ((facts, portfolio), aggregates) = rayon::join(
            || portfolio::compute(ds, self.basis, self.a_cutoff, self.b_cutoff),
            || AccountAggregates::of(ds, &self.extras),
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .map_err(|e| crate::Error::Usage(format!("cannot start worker threads: {e}")))?;
        let pv = self.portfolio_values(&portfolio);
        let mut accounts: Vec<AccountResult> = Vec::with_capacity(ds.accounts.len());
        let render = sink.as_ref().map(|(render, _, _)| *render);
        let keep = sink.as_ref().map(|(_, _, keep)| *keep);
        // One chunk of accounts, scored and rendered on the workers; contributions not kept
        // are dropped there too.
        let compute =
            |start: usize, end: usize| -> Vec<(AccountResult, std::io::Result<Vec<u8>>)> {
                (start..end)
                    .into_par_iter()
                    .with_min_len(256)
                    .map(|i| {
                        let mut r = self.with_vm(&pv, |vm| {
                            self.evaluate(ds, i, &facts[i], &pv, &aggregates, trace, vm)
                        });
                        let bytes = render.map_or(Ok(Vec::new()), |f| f(&r));
                        let kept = match keep {
                            None | Some(Keep::All) => true,
                            Some(Keep::None) => false,
                            Some(Keep::Plans) => r.plan,
                        };
                        if !kept {
                            r.contributions = Vec::new();
                        }
                        (r, bytes)
                    })
                    .collect()
            };
        // Chunk i+1 is scored on the workers while this thread hands chunk i to the sink.
        let n = ds.accounts.len();
        let mut start = 0;
        let mut pending: Vec<(AccountResult, std::io::Result<Vec<u8>>)> = Vec::new();
        loop {
            let end = (start + chunk).min(n);
            let mut next = Vec::new();
            let mut sunk: crate::Result<()> = Ok(());
            pool.in_place_scope(|s| {
                if start < end {
                    s.spawn(|_| next = compute(start, end));
                }
                sunk = (|| {
                    for (r, bytes) in pending.drain(..) {
                        if let Some((_, sink, _)) = sink.as_mut() {
                            let bytes = bytes.map_err(|e| {
                                crate::Error::io("cannot serialise an account's results", e)
                            })?;
                            sink(&r, bytes)?;
                        }
                        accounts.push(r);
                    }
                    Ok(())
                })();
            });
            sunk?;
            if start >= n {
                break;
            }
            pending = next;
            start = end;
        }
        let kams = self.kam_results(ds, &accounts);
        let portfolio_flags = self.portfolio_flags(&pv);
        let params = self
            .rules
            .params
            .iter()
            .map(|p| (p.name.clone(), p.value.to_string()))
            .collect();
        Ok(Scored {
            measure_names: self.rules.measures.iter().map(|m| m.name.clone()).collect(),
            output_names: self.logic.output_names.clone(),
            params,
            portfolio,
            portfolio_flags,
            accounts,
            kams,
            managers: None,
        })
    }

    /// Traces one account in its portfolio (for `kam explain`): the portfolio pass runs over the
    /// whole dataset, but only this account is scored; KAM results are left out.
    pub fn explain_account(&self, ds: &Dataset, index: usize) -> Scored {
        let (facts, portfolio) = portfolio::compute(ds, self.basis, self.a_cutoff, self.b_cutoff);
        let aggregates = AccountAggregates::of(ds, &self.extras);
        let pv = self.portfolio_values(&portfolio);
        let account = self.with_vm(&pv, |vm| {
            self.evaluate(ds, index, &facts[index], &pv, &aggregates, true, vm)
        });
        Scored {
            measure_names: self.rules.measures.iter().map(|m| m.name.clone()).collect(),
            output_names: self.logic.output_names.clone(),
            params: self
                .rules
                .params
                .iter()
                .map(|p| (p.name.clone(), p.value.to_string()))
                .collect(),
            portfolio_flags: self.portfolio_flags(&pv),
            portfolio,
            accounts: vec![account],
            kams: Vec::new(),
            managers: None,
        }
    }

    /// Scores one account alone (for `kam test`), with facts forced by the caller.
    pub fn score_one(
        &self,
        ds: &Dataset,
        facts: &AccountFacts,
        portfolio: &PortfolioFacts,
        overrides: &BTreeMap<String, V<'static>>,
    ) -> AccountResult {
        let mut pv = self.portfolio_values(portfolio);
        for (k, v) in overrides {
            if let Some(p) = PORTFOLIO_FACTS.iter().position(|(n, _)| n == k) {
                pv[p] = v.clone();
            }
        }
        let aggregates = AccountAggregates::of(ds, &self.extras);
        self.with_vm(&pv, |vm| {
            self.evaluate_with(ds, 0, facts, &pv, &aggregates, true, vm, overrides)
        })
    }

    /// The pack's params as rule values, in declaration order.
    fn param_values(&self) -> impl Iterator<Item = V<'_>> {
        self.rules.params.iter().map(|p| param_v(&p.value))
    }

    fn portfolio_values(&self, p: &PortfolioFacts) -> Vec<V<'static>> {
        let opt = |x: Option<f64>| x.map_or(V::Missing, V::Num);
        PORTFOLIO_FACTS
            .iter()
            .map(|(n, _)| match *n {
                "portfolio.accounts" => V::Num(p.accounts as f64),
                "portfolio.basis" => V::Str(Cow::Borrowed(p.basis)),
                "portfolio.total_gross_profit" => V::Num(p.total_gross_profit),
                "portfolio.total_revenue" => V::Num(p.total_revenue),
                "portfolio.total_basis" => V::Num(p.total_basis),
                "portfolio.hhi" => opt(p.hhi),
                "portfolio.hhi_10000" => opt(p.hhi.map(|h| h * 10_000.0)),
                "portfolio.top1_share" => opt(p.top1_share),
                "portfolio.top5_share" => opt(p.top5_share),
                "portfolio.pareto_accounts" => V::Num(p.pareto_accounts as f64),
                "portfolio.innovators" => V::Num(p.innovators as f64),
                "portfolio.innovator_share" => {
                    if p.accounts > 0 {
                        V::Num(p.innovators as f64 / p.accounts as f64)
                    } else {
                        V::Missing
                    }
                }
                _ => V::Missing,
            })
            .collect()
    }

    fn with_vm<R>(&self, pv: &[V<'static>], f: impl FnOnce(Option<&LuaVm>) -> R) -> R {
        thread_local! {
            static VM: RefCell<Option<(u64, LuaVm)>> = const { RefCell::new(None) };
        }
        if self.rules.lua.is_empty() {
            return f(None);
        }
        VM.with(|cell| {
            let mut slot = cell.borrow_mut();
            let stale = !matches!(&*slot, Some((id, _)) if *id == self.id);
            if stale {
                *slot = LuaVm::new(&self.rules.lua, self.rules.limits)
                    .ok()
                    .map(|mut vm| {
                        let params: Vec<(String, V<'_>)> = self
                            .rules
                            .params
                            .iter()
                            .map(|p| (p.name.clone(), param_v(&p.value)))
                            .collect();
                        let portfolio: Vec<(String, V<'_>)> = PORTFOLIO_FACTS
                            .iter()
                            .zip(pv)
                            .map(|((n, _), v)| (n.to_string(), v.clone()))
                            .collect();
                        let _ = vm.set_context(&params, &portfolio);
                        vm.set_keys(&self.logic.names, &self.lua_visible);
                        (self.id, vm)
                    });
            }
            f(slot.as_ref().map(|(_, vm)| vm))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        ds: &Dataset,
        i: usize,
        facts: &AccountFacts,
        pv: &[V<'static>],
        agg: &AccountAggregates,
        trace: bool,
        vm: Option<&LuaVm>,
    ) -> AccountResult {
        self.evaluate_with(ds, i, facts, pv, agg, trace, vm, &BTreeMap::new())
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_with(
        &self,
        ds: &Dataset,
        i: usize,
        facts: &AccountFacts,
        pv: &[V<'static>],
        agg: &AccountAggregates,
        trace: bool,
        vm: Option<&LuaVm>,
        overrides: &BTreeMap<String, V<'static>>,
    ) -> AccountResult {
        let a = &ds.accounts[i];
        let mut slots: Vec<V<'_>> = Vec::with_capacity(self.logic.names.len());
        account_values(a, agg, i, &mut slots);
        fact_values(facts, &mut slots);
        slots.extend(pv.iter().cloned());
        for j in agg.extra_index.iter() {
            slots.push(match j.and_then(|j| a.extra.get(j)) {
                Some(v) => value_v(v),
                None => V::Missing,
            });
        }
        debug_assert_eq!(slots.len(), self.n_base);
        slots.extend(self.param_values());
        slots.resize(self.logic.names.len(), V::Missing);
        for (k, v) in overrides {
            if let Some(s) = self.logic.names.iter().position(|n| n == k) {
                slots[s] = v.clone();
            }
        }
        let cite = |inputs: &[&str]| -> Vec<String> {
            cells_of(ds, a, &self.logic.expand(inputs), &agg.transactions_cell)
        };
        // Forced inputs (`kam test`) may not have the types the compiled rules expect.
        let typed = overrides.is_empty().then_some(&self.typed);
        let v = self
            .logic
            .run(&mut slots, &self.param_consts, vm, trace, &cite, typed);
        AccountResult {
            index: i,
            score: v.score,
            band: v.band,
            plan: v.plan,
            key: v.key,
            labels: v.labels,
            outputs: v.outputs,
            measures: v.measures,
            facts: facts.clone(),
            contributions: v.contributions,
            errors: v.errors,
        }
    }

    fn kam_results(&self, ds: &Dataset, accounts: &[AccountResult]) -> Vec<KamResult> {
        // Hashed by the ids the dataset holds (a million accounts, no copy of an id), then in
        // id order.
        let mut by_kam: HashMap<&str, (usize, usize, usize), ahash::RandomState> =
            HashMap::default();
        for m in &ds.managers {
            by_kam.entry(m.id.as_str()).or_default();
        }
        for r in accounts {
            let a = &ds.accounts[r.index];
            let Some(k) = &a.kam_id else { continue };
            let e = by_kam.entry(k.as_str()).or_default();
            e.0 += 1;
            if r.key {
                e.2 += 1;
                if a.level == "company" {
                    e.1 += 1;
                }
            }
        }
        let mut by_kam: Vec<(&str, (usize, usize, usize))> = by_kam.into_iter().collect();
        by_kam.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let params = &self.param_consts;
        by_kam
            .into_iter()
            .map(|(kam_id, (n, key, key_all))| {
                let kam_id = kam_id.to_string();
                let mut slots: Vec<V<'_>> = vec![
                    V::Str(Cow::Owned(kam_id.clone())),
                    V::Num(n as f64),
                    V::Num(key as f64),
                    V::Num(key_all as f64),
                ];
                slots.extend(params.iter().cloned());
                let (flags, errors) = run_checks(&self.rules.kam_checks, &slots);
                KamResult {
                    kam_id,
                    accounts: n,
                    key_accounts: key,
                    key_accounts_all_levels: key_all,
                    flags,
                    errors,
                }
            })
            .collect()
    }

    fn portfolio_flags(&self, pv: &[V<'static>]) -> Vec<Flag> {
        let mut slots: Vec<V<'_>> = pv.to_vec();
        slots.extend(self.param_values());
        run_checks(&self.rules.portfolio_checks, &slots).0
    }
}

/// A Lua compile error as a diagnostic pointing at its line (messages read `path:line: text`).
fn lua_problem(sources: &[(String, String)], message: &str) -> Diagnostic {
    for (path, text) in sources {
        if let Some(rest) = message.strip_prefix(&format!("{path}:"))
            && let Some((line, what)) = rest.split_once(": ")
            && let Ok(line) = line.parse::<usize>()
        {
            let source_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let indent = source_line
                .chars()
                .take_while(|c| c.is_whitespace())
                .count();
            let len = source_line.trim().chars().count().max(1);
            return Diagnostic::new(format!("{path}: Lua: {what}")).with_span(Span::at(
                std::path::Path::new(path),
                text,
                line,
                indent + 1,
                len,
            ));
        }
    }
    Diagnostic::new(format!("Lua: {message}"))
}

/// A portfolio setting's value; a name that failed to bind (reported already) reads as missing.
fn eval_params(e: &SExpr, pvals: &[ParamValue]) -> Option<V<'static>> {
    e.expr
        .eval(&|i| pvals.get(i).map_or(V::Missing, param_v))
        .ok()
        .map(V::into_owned)
}

fn run_checks(checks: &[Check], slots: &[V<'_>]) -> (Vec<Flag>, Vec<RuleError>) {
    let mut flags = Vec::new();
    let mut errors = Vec::new();
    for c in checks {
        match c.when.expr.eval(&|s| slots[s].clone()) {
            Ok(V::Bool(true)) => flags.push(Flag {
                check: c.id.clone(),
                flag: c.flag.clone(),
                reason: render(&c.reason, slots),
                actions: c.actions.clone(),
            }),
            Ok(V::Bool(false) | V::Missing) => {}
            Ok(other) => errors.push(RuleError {
                rule: Arc::from(c.id.as_str()),
                message: format!(
                    "the condition must be yes/no, got {} {other}",
                    other.type_name()
                ),
            }),
            Err(e) => errors.push(RuleError {
                rule: Arc::from(c.id.as_str()),
                message: e.to_string(),
            }),
        }
    }
    (flags, errors)
}

/// Per-account counts from the child sheets.
struct AccountAggregates {
    /// For each extra slot of the engine, its index in the accounts' extra values.
    extra_index: Vec<Option<usize>>,
    contacts: Vec<(u32, f64, u32, f64, f64, f64)>,
    activities: Vec<u32>,
    tenders: Vec<(u32, u32)>,
    plans: Vec<u32>,
    /// What a figure summed from Transactions cites (`Transactions (sum of lines)`).
    transactions_cell: String,
}

impl AccountAggregates {
    fn of(ds: &Dataset, extras: &[String]) -> AccountAggregates {
        // By hash: a sheet may have thousands of extra columns.
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (i, n) in ds.account_extras.names.iter().enumerate() {
            at.entry(n.as_str()).or_insert(i);
        }
        let extra_index = extras.iter().map(|e| at.get(e.as_str()).copied()).collect();
        let n = ds.accounts.len();
        // One pass over each sheet, the sheets at the same time: each pass reads a million
        // records for a few fields and waits on memory, not on arithmetic.
        let contacts = || {
            let mut contacts = vec![(0u32, 0.0, 0u32, 0.0, 0.0, 0.0); n];
            // Influence averages need the count of contacts with an influence.
            let mut with_influence = vec![0u32; n];
            for c in &ds.contacts {
                let e = &mut contacts[c.account];
                e.0 += 1;
                if let Some(r) = c.relationship {
                    e.1 += r;
                    e.2 += 1;
                    let w = c.influence.unwrap_or(1.0).max(0.0);
                    e.4 += r * w;
                    e.5 += w;
                }
                if let Some(i) = c.influence {
                    e.3 += i;
                    with_influence[c.account] += 1;
                }
            }
            for (e, k) in contacts.iter_mut().zip(&with_influence) {
                e.3 = if *k > 0 { e.3 / *k as f64 } else { f64::NAN };
            }
            contacts
        };
        let activities = || {
            let mut activities = vec![0u32; n];
            ds.activities
                .iter()
                .for_each(|a| activities[a.account] += 1);
            activities
        };
        let tenders_and_plans = || {
            let mut tenders = vec![(0u32, 0u32); n];
            for t in &ds.tenders {
                tenders[t.account].0 += 1;
                if t.outcome == Some("won") {
                    tenders[t.account].1 += 1;
                }
            }
            let mut plans = vec![0u32; n];
            ds.plans.iter().for_each(|p| plans[p.account] += 1);
            (tenders, plans)
        };
        let (contacts, (activities, (tenders, plans))) =
            rayon::join(contacts, || rayon::join(activities, tenders_and_plans));
        let sheets: Vec<&str> = ds
            .sheets
            .iter()
            .filter(|s| s.kind == Some(crate::model::SheetKind::Transactions))
            .map(|s| s.sheet.as_str())
            .collect();
        let sheet = if sheets.is_empty() {
            "Transactions".to_string()
        } else {
            sheets.join(" + ")
        };
        AccountAggregates {
            extra_index,
            contacts,
            activities,
            tenders,
            plans,
            transactions_cell: format!("{sheet} (sum of lines)"),
        }
    }
}

fn opt_num<'a>(v: Option<f64>) -> V<'a> {
    v.map_or(V::Missing, V::Num)
}

fn opt_str(v: &Option<String>) -> V<'_> {
    v.as_deref()
        .map_or(V::Missing, |s| V::Str(Cow::Borrowed(s)))
}

fn account_values<'a>(a: &'a Account, agg: &AccountAggregates, i: usize, out: &mut Vec<V<'a>>) {
    let (n_contacts, rel_sum, rel_n, avg_inf, wrel, w) =
        agg.contacts
            .get(i)
            .copied()
            .unwrap_or((0, 0.0, 0, f64::NAN, 0.0, 0.0));
    let (tenders, won) = agg.tenders.get(i).copied().unwrap_or((0, 0));
    for (name, _) in ACCOUNT_FIELDS {
        out.push(match *name {
            "id" => V::Str(Cow::Borrowed(&a.id)),
            "name" => V::Str(Cow::Borrowed(&a.name)),
            "kam_id" => opt_str(&a.kam_id),
            "industry" => opt_str(&a.industry),
            "region" => opt_str(&a.region),
            "level" => V::Str(Cow::Borrowed(a.level)),
            "revenue" => opt_num(a.revenue),
            "gross_profit" => opt_num(a.gross_profit),
            "wallet" => opt_num(a.wallet),
            "reference" => a.reference.map_or(V::Missing, V::Bool),
            "brand_score" => opt_num(a.brand_score),
            "partnership" => opt_num(a.partnership),
            "competence" => opt_num(a.competence),
            "innovator" => a.innovator.map_or(V::Missing, V::Bool),
            "history" => opt_str(&a.history),
            "needs" => opt_str(&a.needs),
            "development_plans" => opt_str(&a.development_plans),
            "contacts" => V::Num(n_contacts as f64),
            "avg_relationship" => {
                if rel_n > 0 {
                    V::Num(rel_sum / rel_n as f64)
                } else {
                    V::Missing
                }
            }
            "avg_influence" => {
                if avg_inf.is_finite() {
                    V::Num(avg_inf)
                } else {
                    V::Missing
                }
            }
            "weighted_relationship" => {
                if w > 0.0 {
                    V::Num(wrel / w)
                } else {
                    V::Missing
                }
            }
            "activities" => V::Num(agg.activities.get(i).copied().unwrap_or(0) as f64),
            "tenders" => V::Num(tenders as f64),
            "tenders_won" => V::Num(won as f64),
            "plan_items" => V::Num(agg.plans.get(i).copied().unwrap_or(0) as f64),
            _ => V::Missing,
        });
    }
}

/// The type of an account field, account fact or portfolio figure, as [`account_values`],
/// [`fact_values`] and [`Engine::portfolio_values`] fill them (or `Missing`); `None` for any
/// other name.
fn base_ty(name: &str) -> Option<typed::Ty> {
    use typed::Ty;
    let known = ACCOUNT_FIELDS
        .iter()
        .chain(ACCOUNT_FACTS)
        .chain(PORTFOLIO_FACTS)
        .any(|(n, _)| *n == name);
    known.then_some(match name {
        "id" | "name" | "kam_id" | "industry" | "region" | "level" | "history" | "needs"
        | "development_plans" | "abc" | "portfolio.basis" => Ty::Text,
        "reference" | "innovator" | "pareto" => Ty::Bool,
        _ => Ty::Num,
    })
}

fn fact_values(f: &AccountFacts, out: &mut Vec<V<'_>>) {
    for (name, _) in ACCOUNT_FACTS {
        out.push(match *name {
            "share" => opt_num(f.share),
            "profit_share" => opt_num(f.profit_share),
            "revenue_share" => opt_num(f.revenue_share),
            "rank" => V::Num(f.rank as f64),
            "cum_share_before" => opt_num(f.cum_share_before),
            "cum_share" => opt_num(f.cum_share),
            "abc" => V::Str(Cow::Borrowed(f.abc)),
            "pareto" => V::Bool(f.abc == "A" && f.share.is_some()),
            _ => V::Missing,
        });
    }
}

fn value_v(v: &Value) -> V<'_> {
    match v {
        Value::Empty => V::Missing,
        Value::Number(n) => V::Num(*n),
        Value::Text(t) => V::Str(Cow::Borrowed(t)),
        Value::Symbol(s) => V::Str(Cow::Borrowed(s)),
        Value::Bool(b) => V::Bool(*b),
        Value::Date(d) => V::Num(*d),
    }
}

fn row_inputs(e: &Expr, names: &[Arc<str>], slots: &[V<'_>]) -> Vec<(Arc<str>, String)> {
    e.slots()
        .into_iter()
        .filter_map(|s| Some((names.get(s)?.clone(), show(slots.get(s)?, ""))))
        .collect()
}

/// Formats a value for reasons: `%` as a percentage with one decimal, a digit as decimals.
pub fn show(v: &V<'_>, fmt: &str) -> String {
    let mut s = String::new();
    let _ = write_show(&mut s, v, fmt);
    s
}

/// Writes [`show`]'s text to `w` without building a string.
pub fn write_show<W: std::fmt::Write + ?Sized>(
    w: &mut W,
    v: &V<'_>,
    fmt: &str,
) -> std::fmt::Result {
    use crate::model::value::write_fixed;
    match (v, fmt) {
        (V::Num(n), "%") => {
            write_fixed(w, n * 100.0, 1)?;
            w.write_str(" %")
        }
        (V::Num(n), d) if !d.is_empty() => write_fixed(w, *n, d.parse::<usize>().unwrap_or(0)),
        (V::Str(s), _) => w.write_str(s),
        // What `Display` writes for a number, without its intermediate string.
        (V::Num(n), _) => crate::model::value::write_number(w, *n),
        (other, _) => write!(w, "{other}"),
    }
}

fn render(t: &Template, slots: &[V<'_>]) -> String {
    // One allocation for most reasons: the fixed text plus room for a short figure per value.
    let room: usize = t
        .parts
        .iter()
        .map(|p| match p {
            TemplatePart::Text(s) => s.len(),
            TemplatePart::Value(..) => 16,
        })
        .sum();
    let mut out = String::with_capacity(room);
    for p in &t.parts {
        match p {
            TemplatePart::Text(s) => out.push_str(s),
            TemplatePart::Value(_, fmt, slot) => {
                let _ = write_show(&mut out, slots.get(*slot).unwrap_or(&V::Missing), fmt);
            }
        }
    }
    out
}

fn cells_of(ds: &Dataset, a: &Account, inputs: &[&str], transactions: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in inputs {
        let name = match *n {
            "share" | "profit_share" | "cum_share" | "cum_share_before" | "rank" | "abc"
            | "pareto" => "gross_profit",
            "revenue_share" => "revenue",
            other => other,
        };
        if matches!(name, "revenue" | "gross_profit") && a.figures_source == "transactions" {
            if !out.iter().any(|c| c == transactions) {
                out.push(transactions.to_string());
            }
            continue;
        }
        if let Some(col) = ds.account_column(a, name) {
            let c = a.origin.cell(col);
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every account's result and bytes, in the order the sink received them.
    fn streamed(engine: &Engine, ds: &Dataset, jobs: usize, chunk: usize) -> Vec<(usize, Vec<u8>)> {
        let render =
            |r: &AccountResult| Ok(format!("{} {} {}", r.index, r.band, r.score).into_bytes());
        let mut seen = Vec::new();
        let scored = engine
            .score_into(
                ds,
                jobs,
                false,
                Some((
                    &render,
                    &mut |r, bytes| {
                        seen.push((r.index, bytes));
                        Ok(())
                    },
                    Keep::Plans,
                )),
                chunk,
            )
            .unwrap();
        assert_eq!(
            scored.accounts.iter().map(|r| r.index).collect::<Vec<_>>(),
            (0..ds.accounts.len()).collect::<Vec<_>>()
        );
        seen
    }

    fn sample() -> (Dataset, Engine) {
        let ds = crate::import::import_bytes(
            crate::SAMPLE_NAME,
            crate::SAMPLE_WORKBOOK,
            &crate::import::ImportOptions::default(),
        )
        .unwrap();
        let rules = crate::rules::load(None, &[]).unwrap();
        let engine = Engine::new(&rules, &ds.account_extras.names).unwrap();
        (ds, engine)
    }

    #[test]
    fn account_slots_hold_the_types_the_compiled_rules_read() {
        let (ds, engine) = sample();
        let (facts, portfolio) =
            portfolio::compute(&ds, engine.basis, engine.a_cutoff, engine.b_cutoff);
        let agg = AccountAggregates::of(&ds, &engine.extras);
        let pv = engine.portfolio_values(&portfolio);
        let names: Vec<&str> = ACCOUNT_FIELDS
            .iter()
            .chain(ACCOUNT_FACTS)
            .chain(PORTFOLIO_FACTS)
            .map(|(n, _)| *n)
            .collect();
        let mut seen = vec![false; names.len()];
        for (i, f) in facts.iter().enumerate() {
            let mut slots = Vec::new();
            account_values(&ds.accounts[i], &agg, i, &mut slots);
            fact_values(f, &mut slots);
            slots.extend(pv.iter().cloned());
            assert_eq!(slots.len(), names.len());
            for (j, v) in slots.iter().enumerate() {
                let ty = base_ty(names[j]).unwrap_or_else(|| panic!("no type for {}", names[j]));
                let ok = match v {
                    V::Missing => continue,
                    V::Num(_) => ty == typed::Ty::Num,
                    V::Bool(_) => ty == typed::Ty::Bool,
                    V::Str(_) => ty == typed::Ty::Text,
                };
                assert!(ok, "{} holds {v:?}, declared {ty:?}", names[j]);
                seen[j] = true;
            }
        }
        // The sample fills every one of them for some account, so each type was checked.
        let never: Vec<&str> = (0..names.len())
            .filter(|&j| !seen[j])
            .map(|j| names[j])
            .collect();
        assert!(never.is_empty(), "never filled in the sample: {never:?}");
        assert_eq!(base_ty("not_a_field"), None);
    }

    #[test]
    fn compiled_account_rules_give_the_tree_walks_verdicts() {
        let (ds, engine) = sample();
        let (typed, all) = engine.typed.count();
        // The default pack's conditions and measures over fixed-type fields compile (this
        // fails if a change to the typing sends them back to the tree walk).
        assert!(typed * 4 >= all * 3, "{typed} of {all} typed");
        let (facts, portfolio) =
            portfolio::compute(&ds, engine.basis, engine.a_cutoff, engine.b_cutoff);
        let agg = AccountAggregates::of(&ds, &engine.extras);
        let pv = engine.portfolio_values(&portfolio);
        let cite = |_: &[&str]| Vec::new();
        let params = &engine.param_consts;
        for (i, f) in facts.iter().enumerate() {
            let mut slots = Vec::new();
            account_values(&ds.accounts[i], &agg, i, &mut slots);
            fact_values(f, &mut slots);
            slots.extend(pv.iter().cloned());
            for j in agg.extra_index.iter() {
                slots.push(match j.and_then(|j| ds.accounts[i].extra.get(j)) {
                    Some(v) => value_v(v),
                    None => V::Missing,
                });
            }
            slots.extend(params.iter().cloned());
            slots.resize(engine.logic.names.len(), V::Missing);
            let mut again = slots.clone();
            let tree = engine
                .logic
                .run(&mut slots, params, None, true, &cite, None);
            let nodes =
                engine
                    .logic
                    .run(&mut again, params, None, true, &cite, Some(&engine.typed));
            assert_eq!(nodes, tree, "account {}", ds.accounts[i].id);
            assert_eq!(again, slots);
        }
    }

    #[test]
    fn streamed_results_come_in_order_for_any_chunk_and_thread_count() {
        let (ds, engine) = sample();
        let whole = streamed(&engine, &ds, 1, CHUNK);
        assert_eq!(whole.len(), ds.accounts.len());
        // Chunks of 7 accounts: the next chunk is scored while the one before is handed on.
        assert_eq!(streamed(&engine, &ds, 2, 7), whole);
        assert_eq!(streamed(&engine, &ds, 3, 1), whole);
    }
}
