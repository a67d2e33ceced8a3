//! The rule machinery shared by every scope: measures, decision tables, criteria and bands,
//! bound to one scope's names (accounts or KAMs) and run over one record's values.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use super::{
    Contribution, Outcome, RuleError, bind, bind_template, num_param, param_v, render, row_inputs,
};
use crate::diag::Diagnostic;
use crate::expr::typed::{Compiled, Row, Slot, Ty};
use crate::expr::{EvalError, Expr, V};
use crate::rules::lua::LuaVm;
use crate::rules::{Aggregate, Band, Compute, Criterion, Decide, Hit, Measure, ParamValue, Table};

/// What the rules decided for one record (an account or a KAM).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// Total points.
    pub score: f64,
    /// Band name.
    pub band: String,
    /// The band gets a plan.
    pub plan: bool,
    /// The band counts as key.
    pub key: bool,
    /// Labels granted, in rule order.
    pub labels: Vec<String>,
    /// Table outputs, aligned with [`Logic::output_names`].
    pub outputs: Vec<Option<Arc<str>>>,
    /// Measures, aligned with the measures.
    pub measures: Vec<Option<f64>>,
    /// Contributions (matched rules; every rule when traced).
    pub contributions: Vec<Contribution>,
    /// Rule errors.
    pub errors: Vec<RuleError>,
}

impl Verdict {
    /// Records a rule that failed: an error and an `error` contribution.
    pub(crate) fn record_error(
        &mut self,
        rule: &Arc<str>,
        kind: &'static str,
        message: String,
        inputs: Vec<(Arc<str>, String)>,
        cells: Vec<String>,
        no_actions: &Arc<[String]>,
    ) {
        self.errors.push(RuleError {
            rule: rule.clone(),
            message: message.clone(),
        });
        self.contributions.push(Contribution {
            rule: rule.clone(),
            kind,
            outcome: Outcome::Error,
            points: 0.0,
            label: None,
            output: None,
            reason: message,
            inputs,
            cells,
            actions: no_actions.clone(),
        });
    }
}

/// Measures, tables, criteria and bands of one scope, bound to slots.
#[derive(Debug)]
pub struct Logic {
    /// Measures in order.
    pub measures: Vec<Measure>,
    /// Tables in order.
    pub tables: Vec<Table>,
    /// Criteria in order.
    pub criteria: Vec<Criterion>,
    /// Bands in order.
    pub bands: Vec<Band>,
    /// Every name of the scope by slot: base names, params, measures, table outputs.
    pub names: Vec<String>,
    /// The same, shared.
    pub arc_names: Vec<Arc<str>>,
    /// Slots of the measures.
    pub measure_slots: Range<usize>,
    /// Names of the table outputs (not `points`), sorted.
    pub output_names: Vec<String>,
    /// For each measure, the names it reads with measures expanded (to cite source cells).
    pub measure_inputs: BTreeMap<String, Vec<String>>,
    crit_ids: Vec<Arc<str>>,
    crit_actions: Vec<Arc<[String]>>,
    table_ids: Vec<Arc<str>>,
    row_rules: Vec<Vec<Arc<str>>>,
    row_actions: Vec<Vec<Arc<[String]>>>,
    /// An empty action list, shared.
    pub no_actions: Arc<[String]>,
}

/// The rules of one scope before binding.
pub struct Parts<'a> {
    /// Measures.
    pub measures: &'a [Measure],
    /// Tables.
    pub tables: &'a [Table],
    /// Criteria.
    pub criteria: &'a [Criterion],
    /// Bands.
    pub bands: &'a [Band],
}

/// A [`Logic`]'s expressions compiled to typed nodes ([`crate::expr::typed`]) for a scope
/// whose slots have fixed types: the account rules, evaluated a million times in a large run.
/// An expression with a part of no fixed type (an extra column, a table output whose rows give
/// values of several types) keeps the tree walk; both give the same values.
#[derive(Debug, Clone)]
pub struct Typed {
    measures: Vec<Option<Compiled<usize>>>,
    /// Per table, per row.
    rows: Vec<Vec<Compiled<usize>>>,
    decide: Vec<Option<Compiled<usize>>>,
    points: Vec<Option<Compiled<usize>>>,
}

impl Typed {
    /// How many expressions run on typed nodes, and how many there are.
    pub fn count(&self) -> (usize, usize) {
        let all = self
            .measures
            .iter()
            .chain(&self.decide)
            .chain(&self.points)
            .flatten()
            .chain(self.rows.iter().flatten());
        all.fold((0, 0), |(t, n), c| (t + usize::from(c.is_typed()), n + 1))
    }
}

/// A record's slots as typed nodes read them: a slot declared of a type holds a value of that
/// type or `Missing` ([`Logic::compile`]).
struct SlotRow<'s, 'a>(&'s [V<'a>]);

impl<'s> Row<'s, usize> for SlotRow<'s, '_> {
    fn num(&self, slot: usize) -> Option<f64> {
        match self.0.get(slot) {
            Some(V::Num(n)) => Some(*n),
            _ => None,
        }
    }

    fn flag(&self, slot: usize) -> Option<bool> {
        match self.0.get(slot) {
            Some(V::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn text(&self, slot: usize) -> Option<std::borrow::Cow<'s, str>> {
        match self.0.get(slot) {
            Some(V::Str(t)) => Some(std::borrow::Cow::Borrowed(t.as_ref())),
            _ => None,
        }
    }
}

/// Evaluates `e` on `slots`: through its compiled form when it has typed nodes.
fn eval<'s>(
    compiled: Option<&'s Compiled<usize>>,
    e: &'s Expr,
    slots: &'s [V<'_>],
) -> Result<V<'s>, EvalError> {
    match compiled {
        Some(c) if c.is_typed() => c.eval(&SlotRow(slots), &|s| slots[s].clone()),
        _ => e.eval(&|s| slots[s].clone()),
    }
}

fn param_ty(v: &ParamValue) -> Ty {
    match v {
        ParamValue::Num(_) => Ty::Num,
        ParamValue::Text(_) => Ty::Text,
        ParamValue::Bool(_) => Ty::Bool,
    }
}

impl Logic {
    /// Compiles the expressions for a scope whose slots before the measures are described by
    /// `base` (a field of a fixed type, a param's value, or [`Slot::Dynamic`]). Measures are
    /// numbers; a table output has the type its rows and default all give, else no fixed type.
    /// Only for records filled as `base` says: [`Logic::run`] with values of other types (a
    /// test's forced inputs) must not be given the result.
    pub fn compile(&self, base: &impl Fn(usize) -> Slot<usize>) -> Typed {
        let output_ty = |name: &str| -> Option<Ty> {
            let mut types = self
                .tables
                .iter()
                .filter(|t| t.output == name)
                .flat_map(|t| t.rows.iter().map(|r| &r.value).chain(&t.default))
                .map(param_ty);
            let first = types.next()?;
            types.all(|t| t == first).then_some(first)
        };
        let slot = |s: usize| -> Slot<usize> {
            if s < self.measure_slots.start {
                base(s)
            } else if self.measure_slots.contains(&s) {
                Slot::Field(Ty::Num, s)
            } else {
                match self
                    .names
                    .get(s)
                    .and_then(|n| self.output_slot(n).filter(|o| *o == s).and(output_ty(n)))
                {
                    Some(ty) => Slot::Field(ty, s),
                    None => Slot::Dynamic,
                }
            }
        };
        let compile = |e: &Expr| Compiled::new(e, &slot);
        Typed {
            measures: self
                .measures
                .iter()
                .map(|m| match &m.compute {
                    Compute::Expr(e) => Some(compile(&e.expr)),
                    Compute::Lua(..) => None,
                })
                .collect(),
            rows: self
                .tables
                .iter()
                .map(|t| t.rows.iter().map(|r| compile(&r.when.expr)).collect())
                .collect(),
            decide: self
                .criteria
                .iter()
                .map(|c| match &c.decide {
                    Decide::Expr(e) => Some(compile(&e.expr)),
                    Decide::Lua(..) => None,
                })
                .collect(),
            points: self
                .criteria
                .iter()
                .map(|c| c.points.as_ref().map(|p| compile(&p.expr)))
                .collect(),
        }
    }

    /// Binds a scope's rules. `names` are the scope's base names followed by the params
    /// (`params` of them, the last ones); measures and table outputs are added after them.
    pub fn bind(
        parts: Parts<'_>,
        mut names: Vec<String>,
        params: &[String],
        scope: &str,
        problems: &mut Vec<Diagnostic>,
    ) -> Logic {
        let mut measures = parts.measures.to_vec();
        let mut tables = parts.tables.to_vec();
        let mut criteria = parts.criteria.to_vec();
        let mut bands = parts.bands.to_vec();
        let measure_start = names.len();
        names.extend(measures.iter().map(|m| m.name.clone()));
        let measure_slots = measure_start..names.len();
        let output_names: Vec<String> = tables
            .iter()
            .map(|t| t.output.clone())
            .filter(|o| o != "points")
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        names.extend(output_names.iter().cloned());
        let all = names.clone();
        let slot_of = |n: &str| all.iter().position(|x| x == n);
        let param_slot = |n: &str| params.iter().position(|x| x == n);
        // Measures may read earlier measures only; tables read measures; criteria read all.
        for (i, m) in measures.iter_mut().enumerate() {
            if let Compute::Expr(e) = &mut m.compute {
                let visible = measure_start + i;
                let limited = |n: &str| slot_of(n).filter(|s| *s < visible);
                bind(
                    e,
                    &limited,
                    &all[..visible],
                    &format!("{scope}measure `{}`", m.name),
                    problems,
                );
            }
        }
        for t in &mut tables {
            for r in &mut t.rows {
                bind(
                    &mut r.when,
                    &slot_of,
                    &all,
                    &format!("{scope}table `{}`", t.id),
                    problems,
                );
                bind_template(&mut r.reason, &slot_of, &all, problems);
            }
        }
        for c in &mut criteria {
            if let Decide::Expr(e) = &mut c.decide {
                bind(
                    e,
                    &slot_of,
                    &all,
                    &format!("{scope}criterion `{}`", c.id),
                    problems,
                );
            }
            if let Some(p) = &mut c.points {
                bind(
                    p,
                    &slot_of,
                    &all,
                    &format!("{scope}criterion `{}`", c.id),
                    problems,
                );
            }
            bind_template(&mut c.reason, &slot_of, &all, problems);
        }
        let param_names: Vec<String> = params.to_vec();
        for b in &mut bands {
            if let Some(m) = &mut b.min_score {
                bind(
                    m,
                    &param_slot,
                    &param_names,
                    &format!("{scope}band"),
                    problems,
                );
            }
        }
        let mut measure_inputs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in &measures {
            let mut inputs = Vec::new();
            if let Compute::Expr(e) = &m.compute {
                for f in e.expr.fields() {
                    let expanded = measure_inputs
                        .get(f)
                        .cloned()
                        .unwrap_or_else(|| vec![f.to_string()]);
                    for x in expanded {
                        if !inputs.contains(&x) {
                            inputs.push(x);
                        }
                    }
                }
            }
            measure_inputs.insert(m.name.clone(), inputs);
        }
        Logic {
            arc_names: names.iter().map(|n| Arc::from(n.as_str())).collect(),
            names,
            measure_slots,
            output_names,
            measure_inputs,
            crit_ids: criteria.iter().map(|c| Arc::from(c.id.as_str())).collect(),
            crit_actions: criteria
                .iter()
                .map(|c| Arc::from(c.actions.clone()))
                .collect(),
            table_ids: tables.iter().map(|t| Arc::from(t.id.as_str())).collect(),
            row_rules: tables
                .iter()
                .map(|t| {
                    (0..t.rows.len())
                        .map(|r| Arc::from(format!("{}/row {}", t.id, r + 1)))
                        .collect()
                })
                .collect(),
            row_actions: tables
                .iter()
                .map(|t| {
                    t.rows
                        .iter()
                        .map(|r| Arc::from(r.actions.clone()))
                        .collect()
                })
                .collect(),
            no_actions: Arc::from(Vec::new()),
            measures,
            tables,
            criteria,
            bands,
        }
    }

    fn output_slot(&self, name: &str) -> Option<usize> {
        self.output_names
            .iter()
            .position(|n| n == name)
            .map(|p| self.measure_slots.end + p)
    }

    /// Expands measure names into the names they read (to cite source cells).
    pub fn expand<'a>(&'a self, inputs: &[&'a str]) -> Vec<&'a str> {
        let mut expanded: Vec<&str> = Vec::new();
        for n in inputs {
            match self.measure_inputs.get(*n) {
                Some(list) => expanded.extend(list.iter().map(String::as_str)),
                None => expanded.push(n),
            }
        }
        expanded
    }

    /// Runs measures, tables, criteria and bands over one record's `slots` (base names and
    /// params filled; measure and output slots are filled here). `params` are the param values
    /// (for band thresholds); `cite` turns input names into source cells.
    /// `typed`: the expressions compiled by [`Logic::compile`] for slots filled as it was told
    /// (`None`: every expression by tree walk).
    #[allow(clippy::too_many_arguments)]
    pub fn run<'s>(
        &'s self,
        slots: &mut Vec<V<'s>>,
        params: &[V<'_>],
        vm: Option<&LuaVm>,
        trace: bool,
        cite: &dyn Fn(&[&str]) -> Vec<String>,
        typed: Option<&'s Typed>,
    ) -> Verdict {
        let mut result = Verdict {
            outputs: vec![None; self.output_names.len()],
            measures: vec![None; self.measures.len()],
            ..Verdict::default()
        };
        // Measures.
        for (m_i, m) in self.measures.iter().enumerate() {
            let slot = self.measure_slots.start + m_i;
            let value = match &m.compute {
                Compute::Expr(e) => {
                    match eval(typed.and_then(|t| t.measures[m_i].as_ref()), &e.expr, slots) {
                        Ok(V::Num(n)) => Ok(Some(n)),
                        Ok(V::Missing) => Ok(None),
                        Ok(other) => Err(format!(
                            "measure `{}` must be a number, got {} {other}",
                            m.name,
                            other.type_name()
                        )),
                        Err(e) => Err(format!("measure `{}`: {e}", m.name)),
                    }
                }
                Compute::Lua(func, _) => match vm {
                    Some(vm) => vm
                        .measure(func, slots)
                        .map_err(|e| format!("measure `{}` (Lua {func}): {e}", m.name)),
                    None => Err("the Lua sandbox could not start".into()),
                },
            };
            match value {
                Ok(v) => {
                    slots[slot] = v.map_or(V::Missing, V::Num);
                    result.measures[m_i] = v;
                }
                Err(message) => {
                    result.errors.push(RuleError {
                        rule: Arc::from(m.name.as_str()),
                        message,
                    });
                }
            }
        }

        // Decision tables.
        for (t_i, t) in self.tables.iter().enumerate() {
            let mut matched: Vec<usize> = Vec::new();
            let mut unknown = false;
            let mut blocked: Option<usize> = None;
            let mut failed = None;
            for (r_i, row) in t.rows.iter().enumerate() {
                match eval(typed.map(|t| &t.rows[t_i][r_i]), &row.when.expr, slots) {
                    Ok(V::Bool(true)) => {
                        matched.push(r_i);
                        if t.hit == Hit::First {
                            break;
                        }
                    }
                    Ok(V::Bool(false)) => {}
                    Ok(V::Missing) => {
                        unknown = true;
                        // Under `first`, a row that cannot be decided blocks the rows below it.
                        if t.hit == Hit::First {
                            blocked = Some(r_i);
                            break;
                        }
                    }
                    Ok(other) => {
                        failed = Some(format!(
                            "row {}: the condition must be yes/no, got {} {other}",
                            r_i + 1,
                            other.type_name()
                        ));
                        break;
                    }
                    Err(e) => {
                        failed = Some(format!("row {}: {e}", r_i + 1));
                        break;
                    }
                }
            }
            if failed.is_none() && t.hit == Hit::Unique && matched.len() > 1 {
                failed = Some(format!(
                    "rows {} and {} both match, but the hit policy is unique",
                    matched[0] + 1,
                    matched[1] + 1
                ));
            }
            if let Some(message) = failed {
                result.record_error(
                    &self.table_ids[t_i],
                    "table",
                    message,
                    Vec::new(),
                    Vec::new(),
                    &self.no_actions,
                );
                continue;
            }
            let value: Option<ParamValue> = match t.hit {
                Hit::First if unknown => None,
                Hit::First | Hit::Unique => matched
                    .first()
                    .map(|&r| t.rows[r].value.clone())
                    .or_else(|| t.default.clone()),
                Hit::Collect(agg_kind) => {
                    let nums: Vec<f64> = matched
                        .iter()
                        .filter_map(|&r| num_param(&t.rows[r].value))
                        .collect();
                    match agg_kind {
                        Aggregate::Count => Some(ParamValue::Num(matched.len() as f64)),
                        _ if nums.is_empty() => t.default.clone(),
                        Aggregate::Sum => Some(ParamValue::Num(nums.iter().sum())),
                        Aggregate::Max => {
                            nums.iter().copied().reduce(f64::max).map(ParamValue::Num)
                        }
                        Aggregate::Min => {
                            nums.iter().copied().reduce(f64::min).map(ParamValue::Num)
                        }
                    }
                }
            };
            let is_points = t.output == "points";
            if let Some(v) = &value {
                if is_points {
                    result.score += num_param(v).unwrap_or(0.0);
                } else if let Some(s) = self.output_slot(&t.output) {
                    slots[s] = param_v(v).into_owned();
                    if let Some(o) = self.output_names.iter().position(|n| *n == t.output) {
                        result.outputs[o] = Some(Arc::from(v.to_string()));
                    }
                }
            }
            let deciding: Vec<usize> = if matches!(t.hit, Hit::Collect(_)) {
                matched.clone()
            } else {
                matched.first().copied().into_iter().collect()
            };
            for &r in &deciding {
                let row = &t.rows[r];
                if let Some(l) = &row.label
                    && !result.labels.contains(l)
                {
                    result.labels.push(l.clone());
                }
                let inputs = row_inputs(&row.when.expr, &self.arc_names, slots);
                let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_ref()).collect();
                result.contributions.push(Contribution {
                    rule: self.row_rules[t_i][r].clone(),
                    kind: "table",
                    outcome: Outcome::Matched,
                    points: if is_points {
                        num_param(&row.value).unwrap_or(0.0)
                    } else {
                        0.0
                    },
                    label: row.label.clone(),
                    output: (!is_points).then(|| (t.output.clone(), row.value.to_string())),
                    reason: render(&row.reason, slots),
                    cells: cite(&names),
                    inputs,
                    actions: self.row_actions[t_i][r].clone(),
                });
            }
            if deciding.is_empty() && (trace || unknown) {
                let out = value.as_ref().map(|v| (t.output.clone(), v.to_string()));
                let (reason, inputs) = match blocked {
                    Some(r) => (
                        format!(
                            "not known: row {} ({}) cannot be decided",
                            r + 1,
                            t.rows[r].when.text
                        ),
                        row_inputs(&t.rows[r].when.expr, &self.arc_names, slots),
                    ),
                    None if unknown => (
                        "no row matched; some inputs are not known".to_string(),
                        Vec::new(),
                    ),
                    None => ("no row matched".to_string(), Vec::new()),
                };
                let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_ref()).collect();
                result.contributions.push(Contribution {
                    rule: self.table_ids[t_i].clone(),
                    kind: "table",
                    outcome: if unknown {
                        Outcome::NotKnown
                    } else {
                        Outcome::NotMatched
                    },
                    points: 0.0,
                    label: None,
                    output: out,
                    reason,
                    cells: cite(&names),
                    inputs,
                    actions: self.no_actions.clone(),
                });
            }
        }

        // Criteria.
        for (c_i, c) in self.criteria.iter().enumerate() {
            let (outcome, verdict_points, label, reason_override, actions_override, error) =
                match &c.decide {
                    Decide::Expr(e) => {
                        match eval(typed.and_then(|t| t.decide[c_i].as_ref()), &e.expr, slots) {
                            Ok(V::Bool(true)) => (Outcome::Matched, None, None, None, None, None),
                            Ok(V::Bool(false)) => {
                                (Outcome::NotMatched, None, None, None, None, None)
                            }
                            Ok(V::Missing) => (Outcome::NotKnown, None, None, None, None, None),
                            Ok(other) => (
                                Outcome::Error,
                                None,
                                None,
                                None,
                                None,
                                Some(format!(
                                    "the condition must be yes/no, got {} {other}",
                                    other.type_name()
                                )),
                            ),
                            Err(e) => (Outcome::Error, None, None, None, None, Some(e.to_string())),
                        }
                    }
                    Decide::Lua(func, _) => match vm {
                        None => (
                            Outcome::Error,
                            None,
                            None,
                            None,
                            None,
                            Some("the Lua sandbox could not start".into()),
                        ),
                        Some(vm) => match vm.criterion(func, slots) {
                            Ok(v) => (
                                if v.matched {
                                    Outcome::Matched
                                } else {
                                    Outcome::NotMatched
                                },
                                v.points,
                                v.label,
                                v.reason,
                                v.actions,
                                None,
                            ),
                            Err(e) => (
                                Outcome::Error,
                                None,
                                None,
                                None,
                                None,
                                Some(format!("Lua {func}: {e}")),
                            ),
                        },
                    },
                };
            let describe = || match &c.decide {
                Decide::Expr(e) => {
                    let mut inputs = row_inputs(&e.expr, &self.arc_names, slots);
                    if let Some(p) = &c.points {
                        for extra in row_inputs(&p.expr, &self.arc_names, slots) {
                            if !inputs.contains(&extra) {
                                inputs.push(extra);
                            }
                        }
                    }
                    let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_ref()).collect();
                    let cells = cite(&names);
                    (inputs, cells)
                }
                Decide::Lua(..) => (Vec::new(), Vec::new()),
            };
            if let Some(message) = error {
                let (inputs, cells) = describe();
                result.record_error(
                    &self.crit_ids[c_i],
                    "criterion",
                    message,
                    inputs,
                    cells,
                    &self.no_actions,
                );
                continue;
            }
            if outcome != Outcome::Matched {
                if trace {
                    let (inputs, cells) = describe();
                    result.contributions.push(Contribution {
                        rule: self.crit_ids[c_i].clone(),
                        kind: "criterion",
                        outcome,
                        points: 0.0,
                        label: None,
                        output: None,
                        reason: render(&c.reason, slots),
                        inputs,
                        cells,
                        actions: self.no_actions.clone(),
                    });
                }
                continue;
            }
            let points = match (verdict_points, &c.points) {
                (Some(p), _) => Ok(p),
                (None, Some(p)) => {
                    match eval(typed.and_then(|t| t.points[c_i].as_ref()), &p.expr, slots) {
                        Ok(V::Num(n)) => Ok(n),
                        Ok(V::Missing) => Ok(0.0),
                        Ok(other) => Err(format!(
                            "points must be a number, got {} {other}",
                            other.type_name()
                        )),
                        Err(e) => Err(e.to_string()),
                    }
                }
                (None, None) => Ok(0.0),
            };
            let points = match points {
                Ok(p) => p,
                Err(message) => {
                    let (inputs, cells) = describe();
                    result.record_error(
                        &self.crit_ids[c_i],
                        "criterion",
                        message,
                        inputs,
                        cells,
                        &self.no_actions,
                    );
                    continue;
                }
            };
            result.score += points;
            let (inputs, cells) = describe();
            let label = label.or_else(|| c.label.clone());
            if let Some(l) = &label
                && !result.labels.contains(l)
            {
                result.labels.push(l.clone());
            }
            result.contributions.push(Contribution {
                rule: self.crit_ids[c_i].clone(),
                kind: "criterion",
                outcome,
                points,
                label,
                output: None,
                reason: reason_override.unwrap_or_else(|| render(&c.reason, slots)),
                inputs,
                cells,
                actions: actions_override
                    .map(Arc::from)
                    .unwrap_or_else(|| self.crit_actions[c_i].clone()),
            });
        }

        // Band.
        for b in &self.bands {
            let by_score = b.min_score.as_ref().is_some_and(|m| matches!(m.expr.eval(&|s| params[s].clone()), Ok(V::Num(min)) if result.score >= min));
            let by_label = b.labels.iter().any(|l| result.labels.contains(l));
            let catch_all = b.min_score.is_none() && b.labels.is_empty();
            if by_score || by_label || catch_all {
                result.band = b.name.clone();
                result.plan = b.plan;
                result.key = b.key;
                break;
            }
        }
        result
    }
}
