//! KAM performance: the rules of `scope: kams` packs run per key account manager and period.
//!
//! For each KAM, every metric walks the KAM's rows of one sheet (activities, contacts, tenders
//! or accounts) inside the period, keeping the rows it counted as evidence; then the dossier
//! standard, the pay rules and the mistakes are judged, and finally the KAM pack's measures,
//! tables, criteria and bands run over those figures exactly as account rules do. A metric
//! with no row to judge is *not known*, and rules treat it so (it never counts as zero).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::logic::{Logic, Parts, Verdict};
use super::names::{ACCOUNT_ROW, ACTIVITY_ROW, CONTACT_ROW, KAM_FIELDS, ROW_COMMON, TENDER_ROW};
use super::{AccountResult, Outcome, bind, bind_template, param_v, value_v};
use crate::diag::Diagnostic;
use crate::expr::V;
use crate::expr::typed::{Column, Columns, Compiled, Row, Slot, Ty};
use crate::model::value::{
    business_days_between, days_from_civil, months_between, write_date, write_number,
};
use crate::model::{Dataset, Origin};
use crate::rules::kam::{Agg, KamRules, Source};
use crate::rules::lua::LuaVm;
use crate::rules::{ParamValue, RuleSet, SExpr, Template, TemplatePart};

/// The period a run judges.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// As given or inferred: `2026`, `2026-Q3`, `2026-H1` or `all`.
    pub label: String,
    /// How it was chosen: `param` or `inferred from the latest activity`.
    pub source: String,
    /// First day (days since 1970), `None` for all time.
    pub start: Option<f64>,
    /// Last day, inclusive.
    pub end: Option<f64>,
    /// The same span just before, for changes.
    pub previous: Option<(f64, f64)>,
    /// The day the data runs to.
    pub as_of: Option<f64>,
}

impl Period {
    /// True when a dated row falls in the period (undated rows always do).
    pub fn contains(&self, date: Option<f64>) -> bool {
        match date {
            None => true,
            Some(d) => {
                let d = d.floor();
                self.start.is_none_or(|s| d >= s) && self.end.is_none_or(|e| d <= e)
            }
        }
    }

    fn quarters(&self) -> Option<(i64, i64)> {
        Some((
            crate::model::value::quarter_index(self.start?),
            crate::model::value::quarter_index(self.end?),
        ))
    }

    fn previous_quarters(&self) -> Option<(i64, i64)> {
        let (a, b) = self.quarters()?;
        let n = b - a + 1;
        Some((a - n, a - 1))
    }
}

/// Parses a period text: `all`, `2026`, `2026-H2`, `2026-Q3` (quarter spans only, so that
/// Transactions quarters line up).
pub fn parse_period(text: &str) -> Result<(i64, i64), String> {
    let t = text.trim();
    let bad = || {
        format!(
            "period must be `auto`, `all`, a year (`2026`), a half (`2026-H2`) or a quarter (`2026-Q3`), not `{text}`"
        )
    };
    let (year, rest) = t.split_at(t.find('-').unwrap_or(t.len()));
    let y: i64 = year.parse().map_err(|_| bad())?;
    if !(1900..=2200).contains(&y) {
        return Err(bad());
    }
    let (a, b) = match rest {
        "" => (0, 3),
        "-H1" | "-h1" => (0, 1),
        "-H2" | "-h2" => (2, 3),
        q if q.len() == 3 && (q.starts_with("-Q") || q.starts_with("-q")) => {
            let n: i64 = q[2..].parse().map_err(|_| bad())?;
            if !(1..=4).contains(&n) {
                return Err(bad());
            }
            (n - 1, n - 1)
        }
        _ => return Err(bad()),
    };
    Ok((y * 4 + a, y * 4 + b))
}

fn quarter_start(q: i64) -> f64 {
    days_from_civil(q.div_euclid(4), (q.rem_euclid(4) * 3 + 1) as u32, 1) as f64
}

fn quarter_end(q: i64) -> f64 {
    quarter_start(q + 1) - 1.0
}

/// Resolves the period of a run from the `period` param (`auto` when absent).
pub fn resolve_period(ds: &Dataset, text: Option<&str>) -> Result<Period, String> {
    let latest_activity = ds
        .activities
        .iter()
        .filter_map(|a| a.date)
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
    let latest_contact = ds
        .contacts
        .iter()
        .filter_map(|c| c.last_contact)
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
    let latest = match (latest_activity, latest_contact) {
        (Some(a), Some(c)) => Some(a.max(c)),
        (a, c) => a.or(c),
    }
    .map(f64::floor);
    let text = text.unwrap_or("auto").trim();
    let (label, source, span) = match text {
        "all" => ("all".to_string(), "param".to_string(), None),
        "auto" => match latest_activity {
            None => (
                "all".to_string(),
                "no dated activity, so all rows".to_string(),
                None,
            ),
            Some(d) => {
                let (y, _, _) = crate::model::value::civil_from_days(d.floor() as i64);
                (
                    y.to_string(),
                    "the year of the latest activity".to_string(),
                    Some((y * 4, y * 4 + 3)),
                )
            }
        },
        t => (t.to_string(), "param".to_string(), Some(parse_period(t)?)),
    };
    Ok(match span {
        None => Period {
            label,
            source,
            start: None,
            end: None,
            previous: None,
            as_of: latest,
        },
        Some((a, b)) => {
            let n = b - a + 1;
            let end = quarter_end(b);
            Period {
                label,
                source,
                start: Some(quarter_start(a)),
                end: Some(end),
                previous: Some((quarter_start(a - n), quarter_end(a - 1))),
                as_of: Some(latest.map_or(end, |l| l.min(end))),
            }
        }
    })
}

/// A row cited as evidence; its finding (the metric's `finding` with the row's values) is
/// written out by [`KamScored::renderer`] when needed, so that a large run does not hold
/// hundreds of thousands of sentences in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// The sheet.
    pub source: Source,
    /// The row's sheet name in [`KamScored::sheet_name`] ([`SheetNames::UNLISTED`]: read it
    /// from the row).
    pub sheet: u16,
    /// Index of the row in its sheet's records.
    pub row: u32,
    /// Index of the row's account, noted while the row is read (writing a KAM's evidence
    /// then touches its accounts, not a million rows again).
    pub account: u32,
    /// The row's number on its sheet, noted while the row is read for the same reason.
    pub line: u32,
}

/// The sheet names of the rows cited as evidence, numbered as they are first met (a run has
/// one per sheet and workbook), so that writing evidence out does not read its rows again.
#[derive(Default)]
pub struct SheetNames(std::sync::Mutex<Vec<Arc<str>>>);

impl SheetNames {
    /// The number of a sheet the list does not hold (more than 65 535 sheets).
    pub const UNLISTED: u16 = u16::MAX;

    /// The number of `sheet`; `seen` remembers the numbers one worker has already asked for,
    /// by the name's address (rows of one sheet share their name), so the list is locked once
    /// per sheet and worker.
    fn number(&self, sheet: &Arc<str>, seen: &mut Vec<(usize, u16)>) -> u16 {
        let addr = sheet.as_ptr() as usize;
        if let Some(&(_, n)) = seen.iter().find(|(a, _)| *a == addr) {
            return n;
        }
        let mut names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = match names.iter().position(|x| x == sheet) {
            Some(i) => i,
            None => {
                names.push(sheet.clone());
                names.len() - 1
            }
        };
        let n = u16::try_from(n)
            .ok()
            .filter(|&n| n != Self::UNLISTED)
            .unwrap_or(Self::UNLISTED);
        seen.push((addr, n));
        n
    }

    fn into_names(self) -> Vec<Arc<str>> {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl Evidence {
    /// The row's origin (sheet and row number).
    pub fn origin<'d>(&self, ds: &'d Dataset) -> &'d Origin {
        let r = self.row as usize;
        match self.source {
            Source::Activities => &ds.activities[r].origin,
            Source::Contacts => &ds.contacts[r].origin,
            Source::Tenders => &ds.tenders[r].origin,
            Source::Accounts => &ds.accounts[r].origin,
        }
    }

    /// The row's cell (`Activities!A17`).
    pub fn cell(&self, ds: &Dataset) -> String {
        self.origin(ds).cell(0)
    }

    /// The row's account id.
    pub fn account<'d>(&self, ds: &'d Dataset) -> &'d str {
        &ds.accounts[self.account as usize].id
    }
}

/// A metric of one KAM.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// The value (`None`: not known).
    pub value: Option<f64>,
    /// Rows it rests on (judged).
    pub rows: u32,
    /// Rows looked at that could not be judged (an input not known).
    pub unknown: u32,
    /// The counted rows.
    pub evidence: Vec<Evidence>,
}

/// The dossier of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct DossierEntry {
    /// Index into the dataset's accounts.
    pub account: usize,
    /// Items filled / items required.
    pub completeness: Option<f64>,
}

impl DossierEntry {
    /// The account's row (`Accounts!A7`).
    pub fn cell(&self, ds: &Dataset) -> String {
        ds.accounts[self.account].origin.cell(0)
    }
}

/// One deal's pay.
#[derive(Debug, Clone, PartialEq)]
pub struct PayLine {
    /// The deal's row.
    pub row: Evidence,
    /// Deal date.
    pub date: Option<f64>,
    /// The rule that decided (`None`: none could).
    pub rule: Option<Arc<str>>,
    /// Base (margin or amount).
    pub base: Option<f64>,
    /// Rate.
    pub rate: Option<f64>,
    /// Pay (`None`: not known).
    pub amount: Option<f64>,
    /// Explanation.
    pub reason: String,
}

/// A mistake judged for one KAM.
#[derive(Debug, Clone, PartialEq)]
pub struct MistakeResult {
    /// Mistake id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Matched = observed, NotMatched = not observed, NotKnown, Error.
    pub outcome: Outcome,
    /// Message.
    pub reason: String,
    /// What the condition saw.
    pub inputs: Vec<(Arc<str>, String)>,
    /// The metrics whose rows are the evidence (indices into [`ManagerResult::metrics`]), when
    /// observed.
    pub evidence: Vec<usize>,
}

/// Everything judged for one KAM.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerResult {
    /// KAM id.
    pub kam_id: String,
    /// Name from the Managers sheet.
    pub name: Option<String>,
    /// The Managers row (`None`: the KAM appears only on accounts or activities).
    pub origin: Option<Origin>,
    /// Recorded development level.
    pub level: Option<&'static str>,
    /// 1 = highest score (ties by id).
    pub rank: usize,
    /// Accounts of the KAM.
    pub accounts: usize,
    /// Activities in the period.
    pub activities_in_period: u32,
    /// Activities outside the period (ignored).
    pub activities_outside_period: u32,
    /// Tenders outside the period (ignored).
    pub tenders_outside_period: u32,
    /// Metrics, aligned with [`KamScored::metric_ids`].
    pub metrics: Vec<MetricValue>,
    /// Dossiers of the accounts judged.
    pub dossier: Vec<DossierEntry>,
    /// Pay lines, one per deal.
    pub pay: Vec<PayLine>,
    /// Sum of the known pay lines (`None` when there is no deal).
    pub pay_total: Option<f64>,
    /// Mistakes, in pack order.
    pub mistakes: Vec<MistakeResult>,
    /// Measures, tables, criteria, band.
    pub verdict: Verdict,
}

impl ManagerResult {
    /// A table output by name.
    pub fn output<'a>(&'a self, names: &[String], name: &str) -> Option<&'a str> {
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.verdict.outputs.get(i)?.as_deref())
    }

    /// Errors of this KAM's rules.
    pub fn error_count(&self) -> usize {
        self.verdict.errors.len()
    }
}

/// The KAM results of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct KamScored {
    /// The period judged.
    pub period: Period,
    /// Metric ids, in pack order.
    pub metric_ids: Vec<String>,
    /// Metric sheets, aligned.
    pub metric_sources: Vec<&'static str>,
    /// Measure names.
    pub measure_names: Vec<String>,
    /// Table output names.
    pub output_names: Vec<String>,
    /// KAMs by id.
    pub managers: Vec<ManagerResult>,
    /// Scored with `--trace`: `scores.json` then writes each evidence row's finding too.
    pub traced: bool,
    /// What writing out the findings needs.
    lazy: Lazy,
    /// The account ids, end to end.
    ids: IdTable,
    /// The sheet names of the evidence rows, by [`Evidence::sheet`].
    sheets: Vec<Arc<str>>,
}

/// Account ids laid end to end. Writing a KAM's evidence names the accounts of rows spread over
/// the whole workbook: one small table is read instead of each account's record and then its
/// id (two cache misses per row in a large run).
#[derive(Debug, Clone, Default, PartialEq)]
struct IdTable {
    text: String,
    ends: Vec<usize>,
}

impl IdTable {
    fn new(ds: &Dataset) -> IdTable {
        let mut t = IdTable {
            text: String::with_capacity(ds.accounts.len() * 8),
            ends: Vec::with_capacity(ds.accounts.len()),
        };
        for a in &ds.accounts {
            t.text.push_str(&a.id);
            t.ends.push(t.text.len());
        }
        t
    }

    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }
}

/// What writing a finding needs besides the dataset and the account results.
#[derive(Clone)]
struct Lazy {
    tables: Arc<RowTables>,
    account_facts: Arc<Vec<AccountRowFacts>>,
    dossier: Option<Arc<DossierIndex>>,
    findings: Arc<[Option<Template>]>,
    params: Arc<[ParamValue]>,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lazy")
    }
}

impl PartialEq for Lazy {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.tables, &other.tables)
            && Arc::ptr_eq(&self.account_facts, &other.account_facts)
    }
}

/// Writes the findings of one KAM's evidence rows.
pub struct Renderer<'a> {
    ctx: Ctx<'a>,
    lazy: &'a Lazy,
    kam: KamRow<'a>,
    params: Vec<V<'a>>,
}

/// A finding as something to print or serialise without building a string first.
pub struct ReasonDisplay<'r, 'a> {
    renderer: &'r Renderer<'a>,
    metric: usize,
    evidence: Evidence,
}

impl std::fmt::Display for ReasonDisplay<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(Some(t)) = self.renderer.lazy.findings.get(self.metric) else {
            return Ok(());
        };
        let e = self.evidence;
        let get = |slot: usize| {
            self.renderer.ctx.row_value(
                &self.renderer.lazy.tables,
                e.source,
                e.row as usize,
                slot,
                &self.renderer.kam,
                &self.renderer.params,
            )
        };
        render_into(f, t, &get)
    }
}

impl<'a> Renderer<'a> {
    /// Starts loading what the finding of evidence row `e` reads first: its row's record and
    /// its account's. A loop over many evidence rows calls this some rows ahead (and
    /// [`Renderer::prefetch_text`] fewer rows ahead), so that the processor waits for several
    /// scattered records at once instead of for one after another. Only a hint: it reads
    /// nothing and changes nothing.
    pub fn prefetch(&self, e: &Evidence) {
        use crate::model::prefetch::{prefetch_line, prefetch_record};
        let ds = self.ctx.ds;
        let (row, account) = (e.row as usize, e.account as usize);
        match e.source {
            Source::Activities => prefetch_record(ds.activities.get(row)),
            Source::Contacts => prefetch_record(ds.contacts.get(row)),
            Source::Tenders => prefetch_record(ds.tenders.get(row)),
            Source::Accounts => {}
        }
        if let Some(a) = ds.accounts.get(account) {
            prefetch_line(&a.name);
        }
    }

    /// The second step of [`Renderer::prefetch`], once the records are loaded: starts
    /// loading the texts a finding prints most (the account's name, and the row's own name
    /// on Contacts and Tenders).
    pub fn prefetch_text(&self, e: &Evidence) {
        use crate::model::prefetch::prefetch_line;
        let ds = self.ctx.ds;
        let (row, account) = (e.row as usize, e.account as usize);
        if let Some(a) = ds.accounts.get(account) {
            prefetch_line(a.name.as_ptr());
        }
        let name = match e.source {
            Source::Contacts => ds.contacts.get(row).and_then(|c| c.name.as_deref()),
            Source::Tenders => ds.tenders.get(row).and_then(|t| t.name.as_deref()),
            _ => None,
        };
        if let Some(n) = name {
            prefetch_line(n.as_ptr());
        }
    }

    /// The finding of metric `metric` on an evidence row, to print.
    pub fn display<'r>(&'r self, metric: usize, e: &Evidence) -> ReasonDisplay<'r, 'a> {
        ReasonDisplay {
            renderer: self,
            metric,
            evidence: *e,
        }
    }

    /// The finding of metric `metric` on an evidence row, with the row's values.
    pub fn reason(&self, metric: usize, e: &Evidence) -> String {
        let Some(Some(t)) = self.lazy.findings.get(metric) else {
            return String::new();
        };
        let r = e.row as usize;
        let get = |slot: usize| {
            self.ctx.row_value(
                &self.lazy.tables,
                e.source,
                r,
                slot,
                &self.kam,
                &self.params,
            )
        };
        render_with(t, &get)
    }
}

impl KamScored {
    /// The id of account `i` (an index into the dataset's accounts), read from a compact
    /// table: the way to name the accounts of many evidence rows.
    pub fn account_id<'a>(&'a self, ds: &'a Dataset, i: usize) -> &'a str {
        self.ids.get(i).unwrap_or_else(|| &ds.accounts[i].id)
    }

    /// The dossier items account `account` lacks, named (`history`, `Farid Huseynov: family,
    /// values`).
    pub fn dossier_gaps(&self, ds: &Dataset, account: usize) -> Vec<String> {
        self.dossier_gap_list(ds, account)
            .map(|g| g.to_string())
            .collect()
    }

    /// The same gaps, to print one by one without building strings.
    pub fn dossier_gap_list<'a>(
        &'a self,
        ds: &'a Dataset,
        account: usize,
    ) -> impl Iterator<Item = Gap<'a>> + 'a {
        self.lazy
            .dossier
            .iter()
            .flat_map(move |d| d.gaps(ds, account))
    }

    /// Starts loading what the dossier entry of `account` reads, in three steps like
    /// [`Renderer::prefetch`]'s two: step 0 the account's record and where its contacts are
    /// listed, step 1 (some entries later, once that is loaded) the list, step 2 the contacts'
    /// records. Only a hint.
    pub fn prefetch_dossier(&self, ds: &Dataset, account: usize, step: u8) {
        use crate::model::prefetch::prefetch_record;
        for d in self.lazy.dossier.iter().filter(|d| !d.contact.is_empty()) {
            match step {
                0 => {
                    prefetch_record(ds.accounts.get(account));
                    d.contacts.prefetch(account, false);
                }
                1 => d.contacts.prefetch(account, true),
                _ => {
                    for &ci in d.contacts.of(account) {
                        prefetch_record(ds.contacts.get(ci as usize));
                    }
                }
            }
        }
    }

    /// For a loop over dossier entries (the accounts `accounts`, in order): a function to call
    /// before each entry, which starts loading the entries 12, 8 and 4 places ahead in the
    /// three steps of [`KamScored::prefetch_dossier`].
    pub fn dossier_prefetcher<'s, I>(&'s self, ds: &'s Dataset, accounts: I) -> impl FnMut() + 's
    where
        I: Iterator<Item = usize> + Clone + 's,
    {
        let mut steps = [
            accounts.clone().skip(12),
            accounts.clone().skip(8),
            accounts.skip(4),
        ];
        move || {
            for (step, next) in steps.iter_mut().enumerate() {
                if let Some(a) = next.next() {
                    self.prefetch_dossier(ds, a, step as u8);
                }
            }
        }
    }

    /// An evidence row's sheet name and row number (`("Activities", 17)`), from what was
    /// noted when the row was read.
    pub fn sheet_name<'a>(&'a self, ds: &'a Dataset, e: &Evidence) -> (&'a str, u32) {
        match self.sheets.get(e.sheet as usize) {
            Some(name) if e.sheet != SheetNames::UNLISTED => (name, e.line),
            _ => {
                let o = e.origin(ds);
                (&o.sheet, o.row)
            }
        }
    }

    /// A writer of one KAM's findings. `accounts` are the account results of the same run.
    pub fn renderer<'a>(
        &'a self,
        ds: &'a Dataset,
        accounts: &'a [AccountResult],
        k: &'a ManagerResult,
    ) -> Renderer<'a> {
        let manager = ds.managers.iter().find(|m| m.id == k.kam_id);
        Renderer {
            ctx: Ctx {
                ds,
                accounts,
                period: self.period.clone(),
                kams: BTreeMap::new(),
                row_kam: Default::default(),
                account_facts: self.lazy.account_facts.clone(),
                dossier: self.lazy.dossier.clone(),
                kinds: None,
                sheets: SheetNames::default(),
            },
            lazy: &self.lazy,
            kam: KamRow {
                id: &k.kam_id,
                level: manager.and_then(|m| m.level),
                basis: manager.and_then(|m| m.commission_basis),
                rate: manager.and_then(|m| m.commission_rate),
            },
            params: self.lazy.params.iter().map(param_v).collect(),
        }
    }

    /// A metric by id.
    pub fn metric<'a>(&self, m: &'a ManagerResult, id: &str) -> Option<&'a MetricValue> {
        self.metric_ids
            .iter()
            .position(|x| x == id)
            .and_then(|i| m.metrics.get(i))
    }
}

/// Names of one row sheet: its fields, extras, the common names and the params.
struct RowNames {
    fields: &'static [(&'static str, &'static str)],
    n_extras: usize,
    names: Vec<String>,
    /// The code of each field, then of each common name.
    codes: Vec<F>,
}

impl RowNames {
    fn new(
        prefix: &str,
        fields: &'static [(&'static str, &'static str)],
        extras: &[String],
        params: &[String],
    ) -> RowNames {
        let codes = fields
            .iter()
            .map(|(n, _)| field_code(prefix, n))
            .chain(ROW_COMMON.iter().map(|(n, _)| field_code("Com", n)))
            .collect();
        let mut names: Vec<String> = fields.iter().map(|(n, _)| n.to_string()).collect();
        let extras: Vec<String> = extras
            .iter()
            .filter(|e| !names.contains(e))
            .cloned()
            .collect();
        names.extend(extras.iter().cloned());
        names.extend(ROW_COMMON.iter().map(|(n, _)| n.to_string()));
        names.extend(params.iter().cloned());
        RowNames {
            fields,
            n_extras: extras.len(),
            names,
            codes,
        }
    }
    fn extras_start(&self) -> usize {
        self.fields.len()
    }
    fn common_start(&self) -> usize {
        self.fields.len() + self.n_extras
    }
    fn params_start(&self) -> usize {
        self.common_start() + ROW_COMMON.len()
    }
    /// The field a slot reads (none for extra columns, params and names beyond them).
    fn code(&self, slot: usize) -> Option<F> {
        if slot >= self.params_start() || (self.extras_start()..self.common_start()).contains(&slot)
        {
            None
        } else if slot >= self.common_start() {
            Some(self.codes[self.fields.len() + slot - self.common_start()])
        } else {
            Some(self.codes[slot])
        }
    }
}

/// A row field, resolved from its name once when the rules are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    ActKind,
    ActDate,
    ActPlannedStart,
    ActActualStart,
    ActAgenda,
    ActArgued,
    ActInterrupted,
    ActBadManners,
    ActNextStep,
    ActConfirmed,
    ActFollowedUp,
    ActExpiry,
    ActDmuRoles,
    ActResolved,
    ActAmount,
    ActMargin,
    ActNotes,
    ActMinutesLate,
    ActDaysToConfirm,
    ActDaysToFollowUp,
    ActDaysOpen,
    ActDaysToResolve,
    ActDaysValid,
    ConName,
    ConRole,
    ConInfluence,
    ConRelationship,
    ConAttitude,
    ConBirthday,
    ConHobbies,
    ConFamily,
    ConValues,
    ConLastContact,
    ConDaysSinceContact,
    TenName,
    TenDate,
    TenPrepStart,
    TenValue,
    TenOutcome,
    TenPrepMonths,
    AccId,
    AccName,
    AccLevel,
    AccIndustry,
    AccRegion,
    AccRevenue,
    AccGrossProfit,
    AccWallet,
    AccShareOfWallet,
    AccReference,
    AccHistory,
    AccNeeds,
    AccDevelopmentPlans,
    AccKey,
    AccBand,
    AccScore,
    AccRevenuePeriod,
    AccRevenuePrevious,
    AccGrossProfitPeriod,
    AccGrossProfitPrevious,
    AccContacts,
    AccMeetings,
    AccProposals,
    AccDeals,
    AccComplaints,
    AccOpenComplaints,
    AccReferenceLetters,
    AccReferrals,
    AccDossierCompleteness,
    AccDossierGaps,
    ComAccountId,
    ComAccountName,
    ComAccountLevel,
    ComAccountKey,
    ComAccountBand,
    ComAccountGrossProfit,
    ComKamId,
    ComKamLevel,
    ComKamCommissionBasis,
    ComKamCommissionRate,
    ComPeriodStart,
    ComPeriodEnd,
    ComAsOf,
    /// A name this source does not have.
    None,
}

impl F {
    /// True for the fields the account scoring of the same run gives (band, key, score).
    fn is_result(self) -> bool {
        use F::*;
        matches!(
            self,
            AccKey | AccBand | AccScore | ComAccountKey | ComAccountBand
        )
    }

    /// The type of the field's values (`None`: a name this sheet does not have).
    fn ty(self) -> Option<Ty> {
        use F::*;
        Some(match self {
            ActKind
            | ActDmuRoles
            | ActNotes
            | ConName
            | ConRole
            | ConAttitude
            | ConHobbies
            | ConFamily
            | ConValues
            | TenName
            | TenOutcome
            | AccId
            | AccName
            | AccLevel
            | AccIndustry
            | AccRegion
            | AccHistory
            | AccNeeds
            | AccDevelopmentPlans
            | AccBand
            | AccDossierGaps
            | ComAccountId
            | ComAccountName
            | ComAccountLevel
            | ComAccountBand
            | ComKamId
            | ComKamLevel
            | ComKamCommissionBasis => Ty::Text,
            ActAgenda | ActArgued | ActInterrupted | ActBadManners | ActNextStep | AccReference
            | AccKey | ComAccountKey => Ty::Bool,
            None => return Option::None,
            _ => Ty::Num,
        })
    }
}

fn field_code(source: &str, name: &str) -> F {
    match (source, name) {
        ("Act", "kind") => F::ActKind,
        ("Act", "date") => F::ActDate,
        ("Act", "planned_start") => F::ActPlannedStart,
        ("Act", "actual_start") => F::ActActualStart,
        ("Act", "agenda") => F::ActAgenda,
        ("Act", "argued") => F::ActArgued,
        ("Act", "interrupted") => F::ActInterrupted,
        ("Act", "bad_manners") => F::ActBadManners,
        ("Act", "next_step") => F::ActNextStep,
        ("Act", "confirmed") => F::ActConfirmed,
        ("Act", "followed_up") => F::ActFollowedUp,
        ("Act", "expiry") => F::ActExpiry,
        ("Act", "dmu_roles") => F::ActDmuRoles,
        ("Act", "resolved") => F::ActResolved,
        ("Act", "amount") => F::ActAmount,
        ("Act", "margin") => F::ActMargin,
        ("Act", "notes") => F::ActNotes,
        ("Act", "minutes_late") => F::ActMinutesLate,
        ("Act", "days_to_confirm") => F::ActDaysToConfirm,
        ("Act", "days_to_follow_up") => F::ActDaysToFollowUp,
        ("Act", "days_open") => F::ActDaysOpen,
        ("Act", "days_to_resolve") => F::ActDaysToResolve,
        ("Act", "days_valid") => F::ActDaysValid,
        ("Con", "name") => F::ConName,
        ("Con", "role") => F::ConRole,
        ("Con", "influence") => F::ConInfluence,
        ("Con", "relationship") => F::ConRelationship,
        ("Con", "attitude") => F::ConAttitude,
        ("Con", "birthday") => F::ConBirthday,
        ("Con", "hobbies") => F::ConHobbies,
        ("Con", "family") => F::ConFamily,
        ("Con", "values") => F::ConValues,
        ("Con", "last_contact") => F::ConLastContact,
        ("Con", "days_since_contact") => F::ConDaysSinceContact,
        ("Ten", "name") => F::TenName,
        ("Ten", "date") => F::TenDate,
        ("Ten", "prep_start") => F::TenPrepStart,
        ("Ten", "value") => F::TenValue,
        ("Ten", "outcome") => F::TenOutcome,
        ("Ten", "prep_months") => F::TenPrepMonths,
        ("Acc", "id") => F::AccId,
        ("Acc", "name") => F::AccName,
        ("Acc", "level") => F::AccLevel,
        ("Acc", "industry") => F::AccIndustry,
        ("Acc", "region") => F::AccRegion,
        ("Acc", "revenue") => F::AccRevenue,
        ("Acc", "gross_profit") => F::AccGrossProfit,
        ("Acc", "wallet") => F::AccWallet,
        ("Acc", "share_of_wallet") => F::AccShareOfWallet,
        ("Acc", "reference") => F::AccReference,
        ("Acc", "history") => F::AccHistory,
        ("Acc", "needs") => F::AccNeeds,
        ("Acc", "development_plans") => F::AccDevelopmentPlans,
        ("Acc", "key") => F::AccKey,
        ("Acc", "band") => F::AccBand,
        ("Acc", "score") => F::AccScore,
        ("Acc", "revenue_period") => F::AccRevenuePeriod,
        ("Acc", "revenue_previous") => F::AccRevenuePrevious,
        ("Acc", "gross_profit_period") => F::AccGrossProfitPeriod,
        ("Acc", "gross_profit_previous") => F::AccGrossProfitPrevious,
        ("Acc", "contacts") => F::AccContacts,
        ("Acc", "meetings") => F::AccMeetings,
        ("Acc", "proposals") => F::AccProposals,
        ("Acc", "deals") => F::AccDeals,
        ("Acc", "complaints") => F::AccComplaints,
        ("Acc", "open_complaints") => F::AccOpenComplaints,
        ("Acc", "reference_letters") => F::AccReferenceLetters,
        ("Acc", "referrals") => F::AccReferrals,
        ("Acc", "dossier_completeness") => F::AccDossierCompleteness,
        ("Acc", "dossier_gaps") => F::AccDossierGaps,
        ("Com", "account.id") => F::ComAccountId,
        ("Com", "account.name") => F::ComAccountName,
        ("Com", "account.level") => F::ComAccountLevel,
        ("Com", "account.key") => F::ComAccountKey,
        ("Com", "account.band") => F::ComAccountBand,
        ("Com", "account.gross_profit") => F::ComAccountGrossProfit,
        ("Com", "kam.id") => F::ComKamId,
        ("Com", "kam.level") => F::ComKamLevel,
        ("Com", "kam.commission_basis") => F::ComKamCommissionBasis,
        ("Com", "kam.commission_rate") => F::ComKamCommissionRate,
        ("Com", "period_start") => F::ComPeriodStart,
        ("Com", "period_end") => F::ComPeriodEnd,
        ("Com", "as_of") => F::ComAsOf,
        _ => F::None,
    }
}

/// The names of each sheet's rows and where their extra columns are.
struct RowTables {
    rows: [RowNames; 4],
    /// Extra-column index map per source (engine extra → dataset extra index).
    extra_index: [Vec<usize>; 4],
}

/// A KAM pack bound to one workbook's names.
pub struct KamEngine {
    rules: KamRules,
    logic: Logic,
    params: Vec<ParamValue>,
    period_text: Option<String>,
    tables: Arc<RowTables>,
    /// Managers extra columns the rules can read: (name, column among the extras).
    kam_extras: Vec<(String, usize)>,
    kam_base: usize,
    mistake_start: usize,
    lua: Vec<(String, String)>,
    limits: crate::rules::Limits,
    /// Per sheet: the metrics over it and their distinct `among` conditions.
    plans: [SourcePlan; 4],
    /// Each metric's `count`/`sum`/… expression, compiled for the rows of its sheet.
    aggs: Vec<Compiled<F>>,
    /// The pay rules, compiled.
    pay_plan: Option<PayPlan>,
    /// The dossier's `among`, compiled for the rows of Accounts (asked of every account of
    /// every KAM when judging).
    dossier_among: Option<Compiled<F>>,
    /// The pay rules' ids, shared by the pay lines.
    pay_ids: Vec<Arc<str>>,
    /// Per sheet: true when a metric or pay rule over it reads an account's band, key or
    /// score, so its pass waits for the account results (`KamEngine::finish`).
    after_scoring: [bool; 4],
}

/// What `KamEngine::prepare` computed before the account results were known; `finish`
/// completes it.
pub struct KamPrepared<'a> {
    pool: rayon::ThreadPool,
    ctx: Ctx<'a>,
    kam_rows: Vec<KamRow<'a>>,
    /// Per sheet: its metric pass, when it did not need the account results.
    parts: [Option<Vec<Part>>; 4],
    /// How long `prepare` took, part by part.
    phases: KamPhases,
}

/// How long each part of the KAM computation took, in seconds (wall time: parts run on the
/// workers of `--jobs`, and in `kam run` beside the account scoring). Printed by `kam run
/// --timings` and the KAM benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KamPhases {
    /// The period, each KAM's rows, the per-account counts and facts, the dossiers.
    pub context: f64,
    /// The metric pass (metrics, pay lines, period counts) over each sheet, in
    /// [`Source::ALL`] order: activities, contacts, tenders, accounts.
    pub sheets: [f64; 4],
    /// Adding up each KAM's share of the sheets, counting its key accounts, and judging it.
    pub judging: f64,
}

impl KamPhases {
    /// Adds another workbook's parts (a run of several workbooks).
    pub fn add(&mut self, other: &KamPhases) {
        self.context += other.context;
        for (a, b) in self.sheets.iter_mut().zip(other.sheets) {
            *a += b;
        }
        self.judging += other.judging;
    }
}

impl std::fmt::Display for KamPhases {
    /// `context 0.101 s, activities 0.250 s, contacts 0.040 s, tenders 0.005 s, accounts
    /// 0.010 s, judging 0.070 s`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "context {:.3} s", self.context)?;
        for (s, t) in Source::ALL.iter().zip(self.sheets) {
            write!(f, ", {} {t:.3} s", s.as_str())?;
        }
        write!(f, ", judging {:.3} s", self.judging)
    }
}

/// The running state of one metric for one KAM.
#[derive(Clone)]
struct MState {
    rows: u32,
    unknown: u32,
    count: u32,
    sum: f64,
    lo: f64,
    hi: f64,
    evidence: Vec<Evidence>,
    /// The first row that failed, and why.
    error: Option<(u32, String)>,
}

impl Default for MState {
    fn default() -> Self {
        MState {
            rows: 0,
            unknown: 0,
            count: 0,
            sum: 0.0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            evidence: Vec::new(),
            error: None,
        }
    }
}

impl MState {
    /// Adds the state of later rows.
    fn merge(&mut self, later: MState) {
        if self.error.is_some() {
            return;
        }
        self.rows += later.rows;
        self.unknown += later.unknown;
        self.count += later.count;
        self.sum += later.sum;
        self.lo = self.lo.min(later.lo);
        self.hi = self.hi.max(later.hi);
        self.error = later.error;
        if self.evidence.is_empty() {
            self.evidence = later.evidence;
        } else {
            self.evidence.extend(later.evidence);
        }
    }
}

/// Whether a required account field is filled.
type AccountTest = fn(&crate::model::Account) -> bool;
/// Whether a required contact field is filled.
type ContactTest = fn(&crate::model::Contact) -> bool;

/// The test of an account field of the dossier standard (names checked when the pack loads).
fn account_test(field: &str) -> AccountTest {
    match field {
        "revenue" => |a| a.revenue.is_some(),
        "gross_profit" => |a| a.gross_profit.is_some(),
        "wallet" => |a| a.wallet.is_some(),
        "industry" => |a| a.industry.is_some(),
        "region" => |a| a.region.is_some(),
        "history" => |a| a.history.is_some(),
        "needs" => |a| a.needs.is_some(),
        "development_plans" => |a| a.development_plans.is_some(),
        "reference" => |a| a.reference.is_some(),
        _ => |_| true,
    }
}

/// The test of a contact field of the dossier standard.
fn contact_test(field: &str) -> ContactTest {
    match field {
        "name" => |c| c.name.is_some(),
        "role" => |c| c.role.is_some(),
        "influence" => |c| c.influence.is_some(),
        "relationship" => |c| c.relationship.is_some(),
        "attitude" => |c| c.attitude.is_some(),
        "birthday" => |c| c.birthday.is_some(),
        "hobbies" => |c| c.hobbies.is_some(),
        "family" => |c| c.family.is_some(),
        "values" => |c| c.values.is_some(),
        "last_contact" => |c| c.last_contact.is_some(),
        _ => |_| true,
    }
}

/// The dossier standard with each account's contacts, to judge completeness and name gaps.
struct DossierIndex {
    /// Required account fields: the name shown in a gap and the test.
    account: Vec<(String, AccountTest)>,
    /// Required contact fields.
    contact: Vec<(String, ContactTest)>,
    /// Contacts by account.
    contacts: crate::model::RowsByAccount,
}

impl DossierIndex {
    fn new(spec: &crate::rules::kam::Dossier, ds: &Dataset) -> DossierIndex {
        let shown = |f: &String| f.replace('_', " ");
        DossierIndex {
            account: spec
                .account
                .iter()
                .map(|f| (shown(f), account_test(f)))
                .collect(),
            contact: spec
                .contact
                .iter()
                .map(|f| (shown(f), contact_test(f)))
                .collect(),
            contacts: crate::model::RowsByAccount::new(
                ds.accounts.len(),
                ds.contacts.iter().map(|c| c.account),
            ),
        }
    }

    /// Completeness of account `i` (items filled / required); [`DossierIndex::gaps`] names
    /// what is missing.
    fn check(&self, ds: &Dataset, i: usize) -> Option<f64> {
        let a = &ds.accounts[i];
        let mut total = self.account.len() as u32;
        let mut filled = self.account.iter().filter(|(_, test)| test(a)).count() as u32;
        if !self.contact.is_empty() {
            let list = self.contacts.of(i);
            if list.is_empty() {
                total += 1;
            }
            for &ci in list {
                let c = &ds.contacts[ci as usize];
                total += self.contact.len() as u32;
                filled += self.contact.iter().filter(|(_, test)| test(c)).count() as u32;
            }
        }
        (total > 0).then(|| filled as f64 / total as f64)
    }

    /// The gaps of account `i`'s dossier, in order: account items, then a missing DMU, then
    /// each contact with items missing.
    fn gaps<'a>(&'a self, ds: &'a Dataset, i: usize) -> impl Iterator<Item = Gap<'a>> + 'a {
        let a = &ds.accounts[i];
        let list: &[u32] = if self.contact.is_empty() {
            &[]
        } else {
            self.contacts.of(i)
        };
        let fields = self
            .account
            .iter()
            .filter(move |(_, test)| !test(a))
            .map(|(name, _)| Gap(GapKind::Item(name)));
        let no_contact =
            (!self.contact.is_empty() && list.is_empty()).then_some(Gap(GapKind::NoContact));
        let contacts = list.iter().filter_map(move |&ci| {
            let c = &ds.contacts[ci as usize];
            // Each item is tested once: the first 64 results are kept as bits.
            let missing = self
                .contact
                .iter()
                .take(64)
                .enumerate()
                .filter(|(_, (_, test))| !test(c))
                .fold(0u64, |m, (k, _)| m | 1 << k);
            let more = self.contact.iter().skip(64).any(|(_, test)| !test(c));
            (missing != 0 || more).then_some(Gap(GapKind::Contact(self, c, missing)))
        });
        fields.chain(no_contact).chain(contacts)
    }
}

/// One gap of a dossier (`birthday`, `no DMU contact recorded`, `Ann Lee: hobbies, family`),
/// printed without building a string first.
pub struct Gap<'a>(GapKind<'a>);

enum GapKind<'a> {
    Item(&'a str),
    NoContact,
    /// A contact with some of the standard's contact items missing (bit `k`: item `k`, for
    /// the first 64).
    Contact(&'a DossierIndex, &'a crate::model::Contact, u64),
}

impl Gap<'_> {
    /// Writes the gap's text piece by piece (for writers that escape as they go).
    pub fn write_pieces<W: std::fmt::Write + ?Sized>(&self, w: &mut W) -> std::fmt::Result {
        match self.0 {
            GapKind::Item(name) => w.write_str(name),
            GapKind::NoContact => w.write_str("no DMU contact recorded"),
            GapKind::Contact(d, c, missing) => {
                match &c.name {
                    Some(n) => w.write_str(n)?,
                    None => write!(w, "contact at {}", crate::model::RowCell(&c.origin))?,
                }
                w.write_str(": ")?;
                let items = d.contact.iter().enumerate();
                let missing = items.filter(|(k, (_, test))| match *k {
                    k @ 0..64 => missing >> k & 1 == 1,
                    _ => !test(c),
                });
                for (n, (_, (name, _))) in missing.enumerate() {
                    if n > 0 {
                        w.write_str(", ")?;
                    }
                    w.write_str(name)?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for Gap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_pieces(f)
    }
}

/// Rows a metric pass reads a column at a time (see [`KamEngine::metric_block`]): a block
/// of one sheet's rows, each with a KAM and in the period.
const BLOCK_ROWS: usize = 256;

/// A block of one sheet's rows, read by compiled expressions a column at a time.
#[derive(Clone, Copy)]
struct Block<'c> {
    ctx: &'c Ctx<'c>,
    s: Source,
    rows: &'c [u32],
    kams: &'c [KamRow<'c>],
}

impl<'c> Columns<'c, F> for Block<'c> {
    type Row = At<'c>;

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn row(&self, i: usize) -> At<'c> {
        let r = self.rows[i] as usize;
        At {
            ctx: self.ctx,
            s: self.s,
            r,
            kam: &self.kams[self.ctx.row_kam[src_index(self.s)][r] as usize],
        }
    }

    // The fields of the activities (most of the rows), and those of contacts and tenders the
    // default pack reads, are read one loop per field, the field chosen once per block; other
    // fields row by row.
    fn nums(&self, f: F, out: &mut Vec<Option<f64>>) {
        let ds = self.ctx.ds;
        let acts = &ds.activities;
        let as_of = self.ctx.period.as_of;
        let rows = self.rows.iter().map(|&r| r as usize);
        macro_rules! each {
            ($($v:ident),*) => {
                match f {
                    $(F::$v => out.extend(
                        rows.map(|r| activity_num(&acts[r], as_of, F::$v)),
                    ),)*
                    F::ConInfluence => out.extend(rows.map(|r| ds.contacts[r].influence)),
                    F::ConRelationship => out.extend(rows.map(|r| ds.contacts[r].relationship)),
                    F::TenValue => out.extend(rows.map(|r| ds.tenders[r].value)),
                    _ => out.extend((0..self.rows.len()).map(|i| self.row(i).num(f))),
                }
            };
        }
        each!(
            ActDate,
            ActPlannedStart,
            ActActualStart,
            ActConfirmed,
            ActFollowedUp,
            ActExpiry,
            ActResolved,
            ActAmount,
            ActMargin,
            ActMinutesLate,
            ActDaysToConfirm,
            ActDaysToFollowUp,
            ActDaysOpen,
            ActDaysToResolve,
            ActDaysValid
        )
    }

    fn flags(&self, f: F, out: &mut Vec<Option<bool>>) {
        let acts = &self.ctx.ds.activities;
        macro_rules! each {
            ($($v:ident),*) => {
                match f {
                    $(F::$v => out.extend(
                        self.rows.iter().map(|&r| activity_flag(&acts[r as usize], F::$v)),
                    ),)*
                    _ => out.extend((0..self.rows.len()).map(|i| self.row(i).flag(f))),
                }
            };
        }
        each!(
            ActAgenda,
            ActArgued,
            ActInterrupted,
            ActBadManners,
            ActNextStep
        )
    }

    fn text_test(&self, f: F, test: &dyn Fn(&str) -> bool, out: &mut Vec<Option<bool>>) -> bool {
        let (F::ActKind, Some(kinds)) = (f, &self.ctx.kinds) else {
            return false;
        };
        let mut table = [false; KindCodes::MAX as usize];
        for (t, name) in table.iter_mut().zip(&kinds.names) {
            *t = test(name);
        }
        out.extend(
            self.rows
                .iter()
                .map(|&r| Some(table[kinds.codes[r as usize] as usize])),
        );
        true
    }

    fn texts(&self, f: F, out: &mut Vec<Option<Cow<'c, str>>>) {
        let ds: &'c Dataset = self.ctx.ds;
        let rows = self.rows.iter().map(|&r| r as usize);
        match f {
            F::ActKind => out.extend(rows.map(|r| Some(Cow::Borrowed(ds.activities[r].kind)))),
            F::ConRole => {
                out.extend(rows.map(|r| ds.contacts[r].role.as_deref().map(Cow::Borrowed)))
            }
            F::TenOutcome => out.extend(rows.map(|r| ds.tenders[r].outcome.map(Cow::Borrowed))),
            _ => out.extend((0..self.rows.len()).map(|i| self.row(i).text(f))),
        }
    }
}

/// The value of an `among` condition on each row of a block.
enum Among {
    /// A typed yes/no condition, a column at a time.
    Column(Vec<Option<bool>>),
    /// Any other, row by row, with its error message.
    Rows(Vec<Result<Option<bool>, String>>),
}

impl Among {
    fn get(&self, i: usize) -> Result<Option<bool>, &str> {
        match self {
            Among::Column(v) => Ok(v[i]),
            Among::Rows(v) => v[i].as_ref().map(|x| *x).map_err(String::as_str),
        }
    }
}

/// What the pass over the sheets gathers for one KAM.
#[derive(Clone, Default)]
struct KamPass {
    metrics: Vec<MState>,
    pay: Vec<PayLine>,
    errors: Vec<super::RuleError>,
    /// Activities and tenders in the period.
    activities: u32,
    tenders: u32,
    /// Activities and tenders outside it.
    activities_outside: u32,
    tenders_outside: u32,
}

/// The numbers of one metric for one KAM that each row updates, kept apart from the evidence
/// so that a row touches a few cache lines, not one allocation per metric.
#[derive(Clone, Copy)]
struct Hot {
    rows: u32,
    unknown: u32,
    count: u32,
    /// A row failed (the first failure is in [`Part::failures`]): later rows are skipped.
    failed: bool,
    sum: f64,
    lo: f64,
    hi: f64,
}

impl Default for Hot {
    fn default() -> Self {
        Hot {
            rows: 0,
            unknown: 0,
            count: 0,
            failed: false,
            sum: 0.0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }
}

impl Hot {
    /// A row of a `count` judged: counted when `b`, which it returns.
    #[inline]
    fn judged(&mut self, b: bool) -> bool {
        self.rows += 1;
        self.count += u32::from(b);
        b
    }

    /// A row's value of a `sum`, `avg`, `min` or `max`.
    #[inline]
    fn add(&mut self, x: f64) {
        self.rows += 1;
        self.sum += x;
        self.lo = self.lo.min(x);
        self.hi = self.hi.max(x);
    }
}

/// What one chunk of a sheet's rows gathers, for every KAM (`k`) and every metric of the
/// sheet (`j`, its position in [`SourcePlan::metrics`]): flat arrays indexed `k * n + j`.
struct Part {
    hot: Vec<Hot>,
    evidence: Vec<Vec<Evidence>>,
    /// The first failure of a metric for a KAM: (KAM, metric, row, message).
    failures: Vec<(u32, u16, u32, String)>,
    /// Per KAM.
    pay: Vec<Vec<PayLine>>,
    errors: Vec<Vec<super::RuleError>>,
    /// Per KAM: rows in the period and outside it.
    counts: Vec<[u32; 2]>,
}

impl Part {
    fn new(kams: usize, n: usize) -> Part {
        Part {
            hot: vec![Hot::default(); kams * n],
            evidence: (0..kams * n).map(|_| Vec::new()).collect(),
            failures: Vec::new(),
            pay: (0..kams).map(|_| Vec::new()).collect(),
            errors: (0..kams).map(|_| Vec::new()).collect(),
            counts: vec![[0; 2]; kams],
        }
    }
}

/// One KAM's share of a chunk, to add to its total.
struct KamShare<'p> {
    hot: &'p [Hot],
    evidence: &'p mut [Vec<Evidence>],
    /// (KAM, metric, row, message), sorted by metric.
    failures: &'p [(u32, u16, u32, String)],
    pay: &'p mut Vec<PayLine>,
    errors: &'p mut Vec<super::RuleError>,
    counts: [u32; 2],
}

impl KamPass {
    /// Adds one chunk of sheet `s` (whose metrics `plan` lists).
    fn add(&mut self, s: Source, plan: &SourcePlan, share: KamShare<'_>) {
        let mut failures = share.failures.iter().peekable();
        for (j, (&mi, (h, ev))) in plan
            .metrics
            .iter()
            .zip(share.hot.iter().zip(share.evidence.iter_mut()))
            .enumerate()
        {
            let error = if h.failed {
                failures
                    .next_if(|f| f.1 as usize == j)
                    .map(|f| (f.2, f.3.clone()))
            } else {
                None
            };
            self.metrics[mi].merge(MState {
                rows: h.rows,
                unknown: h.unknown,
                count: h.count,
                sum: h.sum,
                lo: h.lo,
                hi: h.hi,
                evidence: std::mem::take(ev),
                error,
            });
        }
        if self.pay.is_empty() {
            self.pay = std::mem::take(share.pay);
        } else {
            self.pay.append(share.pay);
        }
        self.errors.append(share.errors);
        let [inside, outside] = share.counts;
        match s {
            Source::Activities => {
                self.activities += inside;
                self.activities_outside += outside;
            }
            Source::Tenders => {
                self.tenders += inside;
                self.tenders_outside += outside;
            }
            _ => {}
        }
    }
}

/// The metrics over one sheet, with each distinct `among` condition evaluated once per row.
#[derive(Default)]
struct SourcePlan {
    metrics: Vec<usize>,
    amongs: Vec<Compiled<F>>,
    among_of: Vec<Option<usize>>,
}

/// The pay rules compiled for the rows they read: `among`, then each rule's `when`, `base`
/// and `rate`.
struct PayPlan {
    among: Compiled<F>,
    rules: Vec<[Compiled<F>; 3]>,
}

/// Compiles a bound row expression: fields of a fixed type read straight from the row, params
/// as constants, extra columns by tree walk.
fn compile_row(e: &crate::expr::Expr, names: &RowNames, params: &[ParamValue]) -> Compiled<F> {
    Compiled::new(e, &|slot| {
        if slot >= names.params_start() {
            return params
                .get(slot - names.params_start())
                .map_or(Slot::Dynamic, |p| Slot::Const(param_v(p).into_owned()));
        }
        match names.code(slot) {
            Some(f) => f.ty().map_or(Slot::Dynamic, |t| Slot::Field(t, f)),
            None => Slot::Dynamic,
        }
    })
}

/// True when a bound row expression or template of a sheet reads an account result.
fn reads_results<'e>(names: &RowNames, slots: impl IntoIterator<Item = &'e usize>) -> bool {
    slots
        .into_iter()
        .any(|&slot| names.code(slot).is_some_and(F::is_result))
}

fn src_index(s: Source) -> usize {
    match s {
        Source::Activities => 0,
        Source::Contacts => 1,
        Source::Tenders => 2,
        Source::Accounts => 3,
    }
}

fn bind_row(e: &mut SExpr, names: &[String], what: &str, problems: &mut Vec<Diagnostic>) {
    let slot_of = |n: &str| names.iter().position(|x| x == n);
    bind(e, &slot_of, names, what, problems);
}

fn bind_row_template(t: &mut Template, names: &[String], problems: &mut Vec<Diagnostic>) {
    let slot_of = |n: &str| names.iter().position(|x| x == n);
    bind_template(t, &slot_of, names, problems);
}

impl KamEngine {
    /// Binds the KAM packs of a rule set to a workbook's extra columns. `None` when the rules
    /// have no KAM pack.
    pub fn new(rules: &RuleSet, ds: &Dataset) -> Option<Result<KamEngine, Vec<Diagnostic>>> {
        if rules.kam.is_empty() {
            return None;
        }
        Some(Self::bind_all(rules, ds))
    }

    fn bind_all(rules: &RuleSet, ds: &Dataset) -> Result<KamEngine, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        let mut kam = rules.kam.clone();
        let param_names: Vec<String> = rules.params.iter().map(|p| p.name.clone()).collect();
        let extras_of = |s: Source| -> &Vec<String> {
            match s {
                Source::Activities => &ds.activity_extras.names,
                Source::Contacts => &ds.contact_extras.names,
                Source::Tenders => &ds.tender_extras.names,
                Source::Accounts => &ds.account_extras.names,
            }
        };
        let fields_of = |s: Source| match s {
            Source::Activities => ACTIVITY_ROW,
            Source::Contacts => CONTACT_ROW,
            Source::Tenders => TENDER_ROW,
            Source::Accounts => ACCOUNT_ROW,
        };
        let prefix = |s: Source| match s {
            Source::Activities => "Act",
            Source::Contacts => "Con",
            Source::Tenders => "Ten",
            Source::Accounts => "Acc",
        };
        let rows =
            Source::ALL.map(|s| RowNames::new(prefix(s), fields_of(s), extras_of(s), &param_names));
        // By hash: a sheet may have thousands of extra columns.
        let extra_index = Source::ALL.map(|s| {
            let r = &rows[src_index(s)];
            let mut at: HashMap<&str, usize> = HashMap::new();
            for (i, x) in extras_of(s).iter().enumerate() {
                at.entry(x.as_str()).or_insert(i);
            }
            r.names[r.extras_start()..r.common_start()]
                .iter()
                .map(|n| at.get(n.as_str()).copied().unwrap_or(usize::MAX))
                .collect()
        });
        for m in &mut kam.metrics {
            let names = &rows[src_index(m.over)].names;
            let what = format!("metric `{}` (over {})", m.id, m.over.as_str());
            if let Some(a) = &mut m.among {
                bind_row(a, names, &what, &mut problems);
            }
            bind_row(m.agg.expr_mut(), names, &what, &mut problems);
            if let Some(t) = &mut m.finding {
                bind_row_template(t, names, &mut problems);
            }
        }
        if let Some(d) = &mut kam.dossier
            && let Some(a) = &mut d.among
        {
            bind_row(
                a,
                &rows[3].names,
                "the dossier (over accounts)",
                &mut problems,
            );
        }
        if let Some(p) = &mut kam.pay {
            let names = &rows[src_index(p.over)].names;
            bind_row(&mut p.among, names, "pay", &mut problems);
            for r in &mut p.rules {
                let what = format!("pay rule `{}`", r.id);
                bind_row(&mut r.when, names, &what, &mut problems);
                bind_row(&mut r.base, names, &what, &mut problems);
                bind_row(&mut r.rate, names, &what, &mut problems);
                let mut with_pay = names.clone();
                with_pay.extend(["base", "rate", "pay"].map(String::from));
                bind_row_template(&mut r.reason, &with_pay, &mut problems);
            }
        }
        // KAM names: fields, the Managers sheet's extra columns, metrics, mistakes, params.
        let mut names: Vec<String> = KAM_FIELDS.iter().map(|(n, _)| n.to_string()).collect();
        // Each with its column among the Managers extras (found once, not per KAM: a sheet
        // can have thousands of extra columns).
        let kam_extras: Vec<(String, usize)> = ds
            .manager_extras
            .names
            .iter()
            .enumerate()
            .filter(|(_, e)| !names.contains(e))
            .map(|(i, e)| (e.clone(), i))
            .collect();
        names.extend(kam_extras.iter().map(|(n, _)| n.clone()));
        let kam_base = names.len();

        for m in &kam.metrics {
            names.push(m.id.clone());
            names.push(format!("{}.rows", m.id));
        }
        let mistake_start = names.len();
        names.extend(kam.mistakes.iter().map(|m| format!("mistake.{}", m.id)));
        names.extend(param_names.iter().cloned());
        {
            let before_mistakes: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if (mistake_start..mistake_start + kam.mistakes.len()).contains(&i)
                        || n.starts_with("mistakes.")
                    {
                        String::new()
                    } else {
                        n.clone()
                    }
                })
                .collect();
            let slot_of = |n: &str| before_mistakes.iter().position(|x| !x.is_empty() && x == n);
            for m in &mut kam.mistakes {
                bind(
                    &mut m.when,
                    &slot_of,
                    &names,
                    &format!("mistake `{}`", m.id),
                    &mut problems,
                );
                bind_template(&mut m.reason, &slot_of, &names, &mut problems);
            }
        }
        let logic = Logic::bind(
            Parts {
                measures: &kam.measures,
                tables: &kam.tables,
                criteria: &kam.criteria,
                bands: &kam.bands,
            },
            names,
            &param_names,
            "KAM ",
            &mut problems,
        );
        if kam.bands.is_empty() {
            problems.push(Diagnostic::new(
                "the KAM pack declares no `bands:`; the default kam-performance.yaml shows how",
            ));
        }
        let period_text = rules
            .params
            .iter()
            .find(|p| p.name == "period")
            .map(|p| p.value.to_string());
        if let Some(t) = &period_text
            && t != "auto"
            && t != "all"
            && let Err(m) = parse_period(t)
        {
            problems.push(Diagnostic::new(format!("param period: {m}")));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let param_values: Vec<ParamValue> = rules.params.iter().map(|p| p.value.clone()).collect();
        let mut plans: [SourcePlan; 4] = Default::default();
        let mut among_texts: [Vec<String>; 4] = Default::default();
        for (i, m) in kam.metrics.iter().enumerate() {
            let si = src_index(m.over);
            let plan = &mut plans[si];
            plan.metrics.push(i);
            let among = m.among.as_ref().map(|a| {
                let canonical = a.expr.to_string();
                match among_texts[si].iter().position(|x| *x == canonical) {
                    Some(j) => j,
                    None => {
                        among_texts[si].push(canonical);
                        plan.amongs
                            .push(compile_row(&a.expr, &rows[si], &param_values));
                        plan.amongs.len() - 1
                    }
                }
            });
            plan.among_of.push(among);
        }
        let aggs = kam
            .metrics
            .iter()
            .map(|m| compile_row(&m.agg.expr().expr, &rows[src_index(m.over)], &param_values))
            .collect();
        // Which sheets' passes read the account results (and so wait for them).
        let mut after_scoring = [false; 4];
        for m in &kam.metrics {
            let si = src_index(m.over);
            let mut slots = m.agg.expr().expr.slots();
            if let Some(a) = &m.among {
                slots.extend(a.expr.slots());
            }
            after_scoring[si] |= reads_results(&rows[si], &slots);
        }
        if let Some(p) = &kam.pay {
            let si = src_index(p.over);
            let mut slots = p.among.expr.slots();
            for r in &p.rules {
                for e in [&r.when, &r.base, &r.rate] {
                    slots.extend(e.expr.slots());
                }
                slots.extend(r.reason.parts.iter().filter_map(|part| match part {
                    TemplatePart::Value(_, _, slot) => Some(*slot),
                    TemplatePart::Text(_) => None,
                }));
            }
            after_scoring[si] |= reads_results(&rows[si], &slots);
        }
        let pay_plan = kam.pay.as_ref().map(|p| {
            let names = &rows[src_index(p.over)];
            let c = |e: &SExpr| compile_row(&e.expr, names, &param_values);
            PayPlan {
                among: c(&p.among),
                rules: p
                    .rules
                    .iter()
                    .map(|r| [c(&r.when), c(&r.base), c(&r.rate)])
                    .collect(),
            }
        });
        let dossier_among = kam.dossier.as_ref().and_then(|d| {
            d.among
                .as_ref()
                .map(|a| compile_row(&a.expr, &rows[src_index(Source::Accounts)], &param_values))
        });
        Ok(KamEngine {
            dossier_among,
            pay_ids: kam
                .pay
                .iter()
                .flat_map(|p| p.rules.iter().map(|r| Arc::from(r.id.as_str())))
                .collect(),
            plans,
            aggs,
            pay_plan,
            after_scoring,
            params: param_values,
            period_text,
            tables: Arc::new(RowTables { rows, extra_index }),
            kam_extras,
            kam_base,
            mistake_start,
            lua: rules.lua.clone(),
            limits: rules.limits,
            logic,
            rules: kam,
        })
    }

    /// The bound KAM rules (measures, tables, criteria, bands).
    pub fn logic(&self) -> &Logic {
        &self.logic
    }

    /// The param values, by param slot (for band thresholds).
    pub fn param_values(&self) -> Vec<V<'_>> {
        self.params.iter().map(param_v).collect()
    }

    /// The KAM pack's own sections.
    pub fn rules(&self) -> &KamRules {
        &self.rules
    }

    /// Judges every KAM of the dataset. `accounts` are the account results of the same run
    /// (band and key are read from them); `only` limits the run to one KAM id.
    pub fn score(
        &self,
        ds: &Dataset,
        accounts: &[AccountResult],
        jobs: usize,
        trace: bool,
        only: Option<&str>,
    ) -> crate::Result<KamScored> {
        let prepared = self.prepare(ds, jobs)?;
        self.finish(prepared, accounts, trace, only)
    }

    /// The part of `score` that does not read the account results, so that it can run while
    /// the accounts are scored: the period, each KAM's rows, the account facts, and the metric
    /// pass over every sheet none of whose rules read an account's band, key or score (the
    /// default pack's activities, contacts and tenders). `jobs` as for `score`.
    pub fn prepare<'a>(&'a self, ds: &'a Dataset, jobs: usize) -> crate::Result<KamPrepared<'a>> {
        let started = std::time::Instant::now();
        let period =
            resolve_period(ds, self.period_text.as_deref()).map_err(crate::Error::Usage)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .map_err(|e| crate::Error::Usage(format!("cannot start worker threads: {e}")))?;
        let ctx = pool.install(|| Ctx::new(self, ds, period));
        let mut phases = KamPhases {
            context: started.elapsed().as_secs_f64(),
            ..KamPhases::default()
        };
        let kam_rows: Vec<KamRow<'a>> = ctx
            .kams
            .iter()
            .map(|(id, k)| {
                let m = k.manager.map(|i| &ds.managers[i]);
                KamRow {
                    id,
                    level: m.and_then(|m| m.level),
                    basis: m.and_then(|m| m.commission_basis),
                    rate: m.and_then(|m| m.commission_rate),
                }
            })
            .collect();
        let parts = pool.install(|| {
            Source::ALL.map(|s| {
                let early = !self.after_scoring[src_index(s)];
                let started = std::time::Instant::now();
                let part = early.then(|| self.source_parts(&ctx, &kam_rows, s));
                phases.sheets[src_index(s)] = started.elapsed().as_secs_f64();
                part
            })
        });
        Ok(KamPrepared {
            pool,
            ctx,
            kam_rows,
            parts,
            phases,
        })
    }

    /// Completes `score` from `prepare`: the sheets whose rules read the account results,
    /// the key accounts per KAM, and the judging. `accounts` are the account results of the
    /// same run; `only` limits the result to one KAM id.
    pub fn finish(
        &self,
        prepared: KamPrepared<'_>,
        accounts: &[AccountResult],
        trace: bool,
        only: Option<&str>,
    ) -> crate::Result<KamScored> {
        self.finish_timed(prepared, accounts, trace, only)
            .map(|(scored, _)| scored)
    }

    /// [`KamEngine::finish`], with how long each part of `prepare` and `finish` took.
    pub fn finish_timed(
        &self,
        prepared: KamPrepared<'_>,
        accounts: &[AccountResult],
        trace: bool,
        only: Option<&str>,
    ) -> crate::Result<(KamScored, KamPhases)> {
        let KamPrepared {
            pool,
            ctx,
            kam_rows,
            mut parts,
            mut phases,
        } = prepared;
        let started = std::time::Instant::now();
        let ctx = ctx.with_results(accounts);
        let ds = ctx.ds;
        let all_ids: Vec<&str> = kam_rows.iter().map(|k| k.id).collect();
        let mut ids = all_ids.clone();
        if let Some(o) = only {
            ids.retain(|k| *k == o);
        }
        // The sheets passed over here, timed apart from the rest of `finish` (judging).
        let mut late = 0.0;
        let states = pool.install(|| {
            for s in Source::ALL {
                let p = &mut parts[src_index(s)];
                if p.is_none() {
                    let t = std::time::Instant::now();
                    *p = Some(self.source_parts(&ctx, &kam_rows, s));
                    phases.sheets[src_index(s)] = t.elapsed().as_secs_f64();
                    late += phases.sheets[src_index(s)];
                }
            }
            self.merge_parts(&kam_rows, parts)
        });
        let work: Vec<(&str, KamPass)> = all_ids
            .iter()
            .copied()
            .zip(states)
            .filter(|(id, _)| ids.contains(id))
            .collect();
        let mut managers: Vec<ManagerResult> = pool.install(|| {
            work.into_par_iter()
                .map(|(id, st)| self.judge(&ctx, id, st, trace))
                .collect()
        });
        let mut order: Vec<usize> = (0..managers.len()).collect();
        order.sort_by(|&a, &b| {
            managers[b]
                .verdict
                .score
                .total_cmp(&managers[a].verdict.score)
                .then_with(|| managers[a].kam_id.cmp(&managers[b].kam_id))
        });
        for (rank, i) in order.into_iter().enumerate() {
            managers[i].rank = rank + 1;
        }
        let lazy = Lazy {
            tables: self.tables.clone(),
            account_facts: ctx.account_facts.clone(),
            dossier: ctx.dossier.clone(),
            findings: self
                .rules
                .metrics
                .iter()
                .map(|m| m.finding.clone())
                .collect(),
            params: self.params.iter().cloned().collect(),
        };
        let sheets = ctx.sheets.into_names();
        let scored = KamScored {
            lazy,
            ids: IdTable::new(ds),
            sheets,
            period: ctx.period,
            metric_ids: self.rules.metrics.iter().map(|m| m.id.clone()).collect(),
            metric_sources: self.rules.metrics.iter().map(|m| m.over.as_str()).collect(),
            measure_names: self.logic.measures.iter().map(|m| m.name.clone()).collect(),
            output_names: self.logic.output_names.clone(),
            managers,
            traced: trace,
        };
        phases.judging = started.elapsed().as_secs_f64() - late;
        Ok((scored, phases))
    }

    fn judge(&self, ctx: &Ctx<'_>, id: &str, pass: KamPass, trace: bool) -> ManagerResult {
        let states = pass.metrics;
        let ds = ctx.ds;
        let k = &ctx.kams[id];
        let manager = k.manager.map(|i| &ds.managers[i]);
        let mut errors: Vec<super::RuleError> = Vec::new();
        let kam_row = KamRow {
            id,
            level: manager.and_then(|m| m.level),
            basis: manager.and_then(|m| m.commission_basis),
            rate: manager.and_then(|m| m.commission_rate),
        };
        let params: Vec<V<'_>> = self.params.iter().map(param_v).collect();
        // Metrics, from the pass over every sheet.
        let mut metrics = Vec::with_capacity(states.len());
        for (m, st) in self.rules.metrics.iter().zip(states) {
            if let Some((_, message)) = st.error {
                errors.push(super::RuleError {
                    rule: Arc::from(m.id.as_str()),
                    message,
                });
                metrics.push(MetricValue {
                    value: None,
                    rows: st.rows,
                    unknown: st.unknown,
                    evidence: Vec::new(),
                });
                continue;
            }
            let value = if st.rows > 0 {
                Some(match m.agg {
                    Agg::Count(_) => st.count as f64,
                    Agg::Sum(_) => st.sum,
                    Agg::Avg(_) => st.sum / st.rows as f64,
                    Agg::Min(_) => st.lo,
                    Agg::Max(_) => st.hi,
                })
            } else {
                m.default
            };
            metrics.push(MetricValue {
                value,
                rows: st.rows,
                unknown: st.unknown,
                evidence: st.evidence,
            });
        }
        // Dossier.
        let mut dossier = Vec::new();
        if self.rules.dossier.is_some() {
            for &a in &k.accounts {
                if let Some(compiled) = &self.dossier_among {
                    let get = |slot: usize| {
                        ctx.row_value(&self.tables, Source::Accounts, a, slot, &kam_row, &params)
                    };
                    let at = At {
                        ctx,
                        s: Source::Accounts,
                        r: a,
                        kam: &kam_row,
                    };
                    match compiled.eval(&at, &get) {
                        Ok(V::Bool(true)) => {}
                        Ok(_) => continue,
                        Err(e) => {
                            errors.push(row_error(
                                "dossier",
                                ctx.cell(Source::Accounts, a),
                                &e.to_string(),
                            ));
                            continue;
                        }
                    }
                }
                let f = &ctx.account_facts[a];
                dossier.push(DossierEntry {
                    account: a,
                    completeness: f.dossier_completeness,
                });
            }
        }
        let dossier_known: Vec<f64> = dossier.iter().filter_map(|d| d.completeness).collect();
        // Pay and the period counts, from the same pass.
        let pay = pass.pay;
        errors.extend(pass.errors);
        let activities_in_period = pass.activities as usize;
        let activities_outside = pass.activities_outside as usize;
        let tenders_outside = pass.tenders_outside as usize;
        let pay_total = if pay.is_empty() {
            None
        } else {
            Some(pay.iter().filter_map(|l| l.amount).sum())
        };
        // KAM slots.
        let mut slots: Vec<V<'_>> = Vec::with_capacity(self.logic.names.len());
        for (name, _) in KAM_FIELDS {
            slots.push(match *name {
                "kam_id" => V::Str(Cow::Borrowed(id)),
                "name" => opt_str(manager.and_then(|m| m.name.as_deref())),
                "region" => opt_str(manager.and_then(|m| m.region.as_deref())),
                "level" => opt_str(kam_row.level),
                "plan" => opt_num(manager.and_then(|m| m.plan)),
                "product_knowledge" => opt_num(manager.and_then(|m| m.product_knowledge)),
                "commission_basis" => opt_str(kam_row.basis),
                "commission_rate" => opt_num(kam_row.rate),
                "accounts" => V::Num(k.accounts.len() as f64),
                "key_accounts" => V::Num(k.key_accounts as f64),
                "key_accounts_all_levels" => V::Num(k.key_accounts_all as f64),
                "period" => V::Str(Cow::Borrowed(&ctx.period.label)),
                "period_start" => opt_num(ctx.period.start),
                "period_end" => opt_num(ctx.period.end),
                "as_of" => opt_num(ctx.period.as_of),
                "activities_in_period" => V::Num(activities_in_period as f64),
                "activities_outside_period" => V::Num(activities_outside as f64),
                "tenders_outside_period" => V::Num(tenders_outside as f64),
                "pay" => opt_num(pay_total),
                "pay.deals" => V::Num(pay.len() as f64),
                "pay.unknown" => V::Num(pay.iter().filter(|l| l.amount.is_none()).count() as f64),
                "dossier.completeness" => {
                    if dossier_known.is_empty() {
                        V::Missing
                    } else {
                        V::Num(dossier_known.iter().sum::<f64>() / dossier_known.len() as f64)
                    }
                }
                "dossier.accounts" => V::Num(dossier.len() as f64),
                _ => V::Missing, // mistakes.* are filled below
            });
        }
        for (_, i) in &self.kam_extras {
            let v = manager
                .and_then(|m| m.extra.get(*i))
                .map_or(V::Missing, value_v);
            slots.push(v);
        }
        debug_assert_eq!(slots.len(), self.kam_base);
        for mv in &metrics {
            slots.push(opt_num(mv.value));
            slots.push(V::Num(mv.rows as f64));
        }
        slots.extend(self.rules.mistakes.iter().map(|_| V::Missing));
        slots.extend(params.iter().cloned());
        // Mistakes.
        let mut mistakes = Vec::with_capacity(self.rules.mistakes.len());
        let (mut observed, mut known) = (0u32, 0u32);
        for (i, m) in self.rules.mistakes.iter().enumerate() {
            let (outcome, message) = match m.when.expr.eval(&|s| slots[s].clone()) {
                Ok(V::Bool(true)) => (Outcome::Matched, None),
                Ok(V::Bool(false)) => (Outcome::NotMatched, None),
                Ok(V::Missing) => (Outcome::NotKnown, None),
                Ok(other) => (
                    Outcome::Error,
                    Some(format!(
                        "the condition must be yes/no, got {} {other}",
                        other.type_name()
                    )),
                ),
                Err(e) => (Outcome::Error, Some(e.to_string())),
            };
            let v = match outcome {
                Outcome::Matched => {
                    observed += 1;
                    known += 1;
                    V::Bool(true)
                }
                Outcome::NotMatched => {
                    known += 1;
                    V::Bool(false)
                }
                _ => V::Missing,
            };
            let inputs = super::row_inputs(&m.when.expr, &self.logic.arc_names, &slots);
            slots[self.mistake_start + i] = v;
            if let Some(msg) = &message {
                errors.push(super::RuleError {
                    rule: Arc::from(format!("mistake/{}", m.id)),
                    message: msg.clone(),
                });
            }
            let evidence = if outcome == Outcome::Matched {
                m.evidence
                    .iter()
                    .filter_map(|e| self.rules.metrics.iter().position(|x| x.id == *e))
                    .collect()
            } else {
                Vec::new()
            };
            mistakes.push(MistakeResult {
                id: m.id.clone(),
                title: m.title.clone(),
                outcome,
                reason: message.unwrap_or_else(|| super::render(&m.reason, &slots)),
                inputs,
                evidence,
            });
        }
        let pos = |n: &str| {
            KAM_FIELDS
                .iter()
                .position(|(x, _)| *x == n)
                .expect("KAM field")
        };
        slots[pos("mistakes.observed")] = V::Num(observed as f64);
        slots[pos("mistakes.known")] = V::Num(known as f64);
        slots.resize(self.logic.names.len(), V::Missing);
        // The shared machinery.
        // A KAM rule cites the Managers row for the manager's own fields; the metrics it reads
        // list their rows themselves.
        let cite = |inputs: &[&str]| -> Vec<String> {
            let reads_manager = self.logic.expand(inputs).iter().any(|n| {
                KAM_FIELDS[..8].iter().any(|(x, _)| x == n)
                    || self.kam_extras.iter().any(|(x, _)| x == n)
            });
            match manager {
                Some(m) if reads_manager => vec![m.origin.cell(0)],
                _ => Vec::new(),
            }
        };
        let vm = self.vm(&params);
        let mut verdict = self
            .logic
            .run(&mut slots, &params, vm.as_ref(), trace, &cite, None);
        errors.append(&mut verdict.errors);
        verdict.errors = errors;
        ManagerResult {
            kam_id: id.to_string(),
            name: manager.and_then(|m| m.name.clone()),
            origin: manager.map(|m| m.origin.clone()),
            level: kam_row.level,
            rank: 0,
            accounts: k.accounts.len(),
            activities_in_period: activities_in_period as u32,
            activities_outside_period: activities_outside as u32,
            tenders_outside_period: tenders_outside as u32,
            metrics,
            dossier,
            pay,
            pay_total,
            mistakes,
            verdict,
        }
    }

    /// The metric pass over one sheet: every metric of every KAM, the pay lines and the
    /// period counts, in chunks of rows on the workers; each chunk's share of every KAM (none
    /// when nothing reads the sheet). Rows are read in sheet order whatever the KAMs' rows
    /// interleave, and `merge_parts` adds the chunks in row order.
    fn source_parts(&self, ctx: &Ctx<'_>, kams: &[KamRow<'_>], s: Source) -> Vec<Part> {
        // Large chunks, as each holds a state per metric for every KAM it meets, but at least
        // eight of a large sheet so that every worker has some. The size depends on the sheet
        // only, never on the number of workers: sums are added in the same order for any
        // `--jobs`.
        let chunk_of = |rows: usize| rows.div_ceil(8).clamp(16_384, 131_072);
        let params: Vec<V<'_>> = self.params.iter().map(param_v).collect();
        let pays = self.rules.pay.as_ref().filter(|p| p.over == s);
        let plan = &self.plans[src_index(s)];
        let counts = matches!(s, Source::Activities | Source::Tenders);
        if plan.metrics.is_empty() && pays.is_none() && !counts {
            return Vec::new();
        }
        let n = plan.metrics.len();
        let row_kam = &ctx.row_kam[src_index(s)];
        let chunk = chunk_of(row_kam.len());
        let n_chunks = row_kam.len().div_ceil(chunk);
        (0..n_chunks)
            .into_par_iter()
            .map(|c| {
                let mut part = Part::new(kams.len(), n);
                let mut seen = Vec::new();
                let start = c * chunk;
                let end = (start + chunk).min(row_kam.len());
                // The chunk's rows that count: with a KAM and in the period.
                let mut rows = Vec::with_capacity(end - start);
                for (r, &k) in (start..end).zip(&row_kam[start..end]) {
                    if k == u32::MAX {
                        continue;
                    }
                    let k = k as usize;
                    if !ctx.in_period(s, r) {
                        part.counts[k][1] += 1;
                        continue;
                    }
                    part.counts[k][0] += 1;
                    rows.push(r as u32);
                }
                for rows in rows.chunks(BLOCK_ROWS) {
                    let block = Block { ctx, s, rows, kams };
                    if n > 0 {
                        self.metric_block(&block, &params, plan, &mut part, &mut seen);
                    }
                    let (Some(p), Some(plan)) = (pays, &self.pay_plan) else {
                        continue;
                    };
                    // A typed `among` picks the deals a column at a time.
                    let deals = match plan.among.eval_block(&block) {
                        Some(Column::Flags(v)) => Some(v),
                        _ => None,
                    };
                    for (i, &r) in rows.iter().enumerate() {
                        let (r, k) = (r as usize, row_kam[r as usize] as usize);
                        if deals.as_ref().is_some_and(|d| d[i] != Some(true)) {
                            continue;
                        }
                        if let Some(line) = self.pay_line(
                            ctx,
                            p,
                            s,
                            r,
                            &kams[k],
                            &params,
                            &mut part.errors[k],
                            &mut seen,
                        ) {
                            part.pay[k].push(line);
                        }
                    }
                }
                part
            })
            .collect()
    }

    /// Every sheet's parts added up per KAM, sheet by sheet in a fixed order and each sheet's
    /// chunks in row order, whichever of them `prepare` computed.
    fn merge_parts(&self, kams: &[KamRow<'_>], parts: [Option<Vec<Part>>; 4]) -> Vec<KamPass> {
        let n_m = self.rules.metrics.len();
        let mut total: Vec<KamPass> = (0..kams.len())
            .map(|_| KamPass {
                metrics: vec![MState::default(); n_m],
                ..KamPass::default()
            })
            .collect();
        for (s, parts) in Source::ALL.into_iter().zip(parts) {
            let mut parts = parts.unwrap_or_default();
            let plan = &self.plans[src_index(s)];
            let n = plan.metrics.len();
            // Each KAM's share of every chunk, in chunk (so row) order, merged KAM by KAM on
            // the workers.
            let mut by_kam: Vec<Vec<KamShare<'_>>> = (0..kams.len())
                .map(|_| Vec::with_capacity(parts.len()))
                .collect();
            for part in &mut parts {
                let Part {
                    hot,
                    evidence,
                    failures,
                    pay,
                    errors,
                    counts,
                } = part;
                failures.sort_unstable_by_key(|f| (f.0, f.1));
                let mut failures = failures.as_slice();
                let mut evidence = evidence.as_mut_slice();
                let shares = pay.iter_mut().zip(errors.iter_mut()).zip(counts.iter());
                for (k, ((pay, errors), &counts)) in shares.enumerate() {
                    let (mine, later) = std::mem::take(&mut evidence).split_at_mut(n);
                    evidence = later;
                    let (now, later) =
                        failures.split_at(failures.partition_point(|f| f.0 as usize == k));
                    failures = later;
                    by_kam[k].push(KamShare {
                        hot: &hot[k * n..(k + 1) * n],
                        evidence: mine,
                        failures: now,
                        pay,
                        errors,
                        counts,
                    });
                }
            }
            total.par_iter_mut().zip(by_kam).for_each(|(t, shares)| {
                for sh in shares {
                    t.add(s, plan, sh);
                }
            });
        }
        total
    }

    /// The pay line of one row, when it is a deal.
    #[allow(clippy::too_many_arguments)]
    fn pay_line(
        &self,
        ctx: &Ctx<'_>,
        p: &crate::rules::kam::Pay,
        s: Source,
        r: usize,
        kam_row: &KamRow<'_>,
        params: &[V<'_>],
        errors: &mut Vec<super::RuleError>,
        seen: &mut Vec<(usize, u16)>,
    ) -> Option<PayLine> {
        let get = |slot: usize| ctx.row_value(&self.tables, s, r, slot, kam_row, params);
        let at = At {
            ctx,
            s,
            r,
            kam: kam_row,
        };
        let compiled = self.pay_plan.as_ref()?;
        match compiled.among.eval(&at, &get) {
            Ok(V::Bool(true)) => {}
            Ok(_) => return None,
            Err(e) => {
                errors.push(row_error("pay", ctx.cell(s, r), &e.to_string()));
                return None;
            }
        }
        let mut line = PayLine {
            row: ctx.evidence(s, r, seen),
            date: ctx.row_date(s, r),
            rule: None,
            base: None,
            rate: None,
            amount: None,
            reason: "no pay rule applies".into(),
        };
        for (ri, (rule, [when, base, rate])) in p.rules.iter().zip(&compiled.rules).enumerate() {
            match when.eval(&at, &get) {
                Ok(V::Bool(true)) => {
                    let num = |v: Result<V<'_>, crate::expr::EvalError>| match v {
                        Ok(V::Num(n)) => Ok(Some(n)),
                        Ok(V::Missing) => Ok(None),
                        Ok(other) => Err(format!(
                            "must be a number, got {} {other}",
                            other.type_name()
                        )),
                        Err(e) => Err(e.to_string()),
                    };
                    match (num(base.eval(&at, &get)), num(rate.eval(&at, &get))) {
                        (Ok(base), Ok(rate)) => {
                            line.rule = Some(self.pay_ids[ri].clone());
                            line.base = base;
                            line.rate = rate;
                            line.amount = base.zip(rate).map(|(b, r)| b * r);
                            let extra = [
                                base.map_or(V::Missing, V::Num),
                                rate.map_or(V::Missing, V::Num),
                                line.amount.map_or(V::Missing, V::Num),
                            ];
                            let n = self.tables.rows[src_index(s)].names.len();
                            let get2 = |slot: usize| {
                                if slot >= n {
                                    extra[slot - n].clone()
                                } else {
                                    get(slot)
                                }
                            };
                            line.reason = render_with(&rule.reason, &get2);
                        }
                        (Err(m), _) | (_, Err(m)) => {
                            errors.push(row_error(&format!("pay/{}", rule.id), ctx.cell(s, r), &m));
                            line.reason = format!("error: {m}");
                        }
                    }
                    break;
                }
                Ok(V::Bool(false)) => {}
                Ok(V::Missing) => {
                    line.reason = format!(
                        "not known: rule `{}` ({}) cannot be decided",
                        rule.id, rule.when.text
                    );
                    break;
                }
                Ok(other) => {
                    errors.push(row_error(
                        &format!("pay/{}", rule.id),
                        ctx.cell(s, r),
                        &format!(
                            "the condition must be yes/no, got {} {other}",
                            other.type_name()
                        ),
                    ));
                    break;
                }
                Err(e) => {
                    errors.push(row_error(
                        &format!("pay/{}", rule.id),
                        ctx.cell(s, r),
                        &e.to_string(),
                    ));
                    break;
                }
            }
        }
        Some(line)
    }

    /// Adds a block of rows (all with a KAM and in the period) to the metrics of their KAMs.
    /// Each `among` and each metric's value are evaluated a column at a time over the block
    /// (typed expressions; the tree walk row by row); then each metric takes its rows in row
    /// order, so sums add in the same order as row by row would.
    fn metric_block(
        &self,
        block: &Block<'_>,
        params: &[V<'_>],
        plan: &SourcePlan,
        part: &mut Part,
        seen: &mut Vec<(usize, u16)>,
    ) {
        let Block { ctx, s, rows, kams } = *block;
        let n = plan.metrics.len();
        let row_kam = &ctx.row_kam[src_index(s)];
        let at = |r: usize| At {
            ctx,
            s,
            r,
            kam: &kams[row_kam[r] as usize],
        };
        let get = |r: usize, slot: usize| {
            ctx.row_value(&self.tables, s, r, slot, &kams[row_kam[r] as usize], params)
        };
        // Each distinct `among` on every row of the block, and the rows where it holds.
        let amongs: Vec<Among> = plan
            .amongs
            .iter()
            .map(|e| match e.eval_block(block) {
                Some(Column::Flags(v)) => Among::Column(v),
                _ => Among::Rows(
                    rows.iter()
                        .map(|&r| {
                            let r = r as usize;
                            match e.eval(&at(r), &|slot| get(r, slot)) {
                                Ok(V::Bool(b)) => Ok(Some(b)),
                                Ok(V::Missing) => Ok(None),
                                Ok(other) => Err(format!(
                                    "`among` must be yes/no, got {} {other}",
                                    other.type_name()
                                )),
                                Err(e) => Err(e.to_string()),
                            }
                        })
                        .collect(),
                ),
            })
            .collect();
        let selected: Vec<Vec<u32>> = amongs
            .iter()
            .map(|a| {
                rows.iter()
                    .enumerate()
                    .filter(|(i, _)| matches!(a.get(*i), Ok(Some(true))))
                    .map(|(_, &r)| r)
                    .collect()
            })
            .collect();
        for (j, (&mi, &among)) in plan.metrics.iter().zip(&plan.among_of).enumerate() {
            let m = &self.rules.metrics[mi];
            let agg = &self.aggs[mi];
            let values = agg.eval_block(&Block {
                rows: among.map_or(rows, |a| &selected[a]),
                ..*block
            });
            // Typed all through, a metric cannot fail: only the rows it counts are visited.
            let typed = matches!(
                (&m.agg, &values),
                (Agg::Count(_), Some(Column::Flags(_)))
                    | (
                        Agg::Sum(_) | Agg::Avg(_) | Agg::Min(_) | Agg::Max(_),
                        Some(Column::Nums(_))
                    )
            );
            if typed && among.is_none_or(|a| matches!(amongs[a], Among::Column(_))) {
                if let Some(a) = among
                    && let Among::Column(holds) = &amongs[a]
                {
                    for (&r, h) in rows.iter().zip(holds) {
                        if h.is_none() {
                            part.hot[row_kam[r as usize] as usize * n + j].unknown += 1;
                        }
                    }
                }
                let counted = among.map_or(rows, |a| &selected[a]);
                match &values {
                    Some(Column::Flags(v)) => {
                        for (&r, x) in counted.iter().zip(v) {
                            let at = row_kam[r as usize] as usize * n + j;
                            let st = &mut part.hot[at];
                            match *x {
                                None => st.unknown += 1,
                                Some(b) => {
                                    if st.judged(b) && m.finding.is_some() {
                                        part.evidence[at].push(ctx.evidence(s, r as usize, seen));
                                    }
                                }
                            }
                        }
                    }
                    Some(Column::Nums(v)) => {
                        for (&r, x) in counted.iter().zip(v) {
                            let st = &mut part.hot[row_kam[r as usize] as usize * n + j];
                            match *x {
                                None => st.unknown += 1,
                                Some(x) => st.add(x),
                            }
                        }
                    }
                    _ => {}
                }
                continue;
            }
            // The position of the row in `values` (the rows of the among).
            let mut at_value = 0;
            for (i, &r) in rows.iter().enumerate() {
                let r = r as usize;
                let k = row_kam[r] as usize;
                let st = &mut part.hot[k * n + j];
                let mut fail = |st: &mut Hot, message: String| {
                    st.failed = true;
                    part.failures.push((
                        k as u32,
                        j as u16,
                        r as u32,
                        format!("at {}: {message}", ctx.cell(s, r)),
                    ));
                };
                if let Some(a) = among {
                    match amongs[a].get(i) {
                        Ok(Some(true)) => {}
                        Ok(Some(false)) => continue,
                        Ok(None) => {
                            if !st.failed {
                                st.unknown += 1;
                            }
                            continue;
                        }
                        Err(msg) => {
                            if !st.failed {
                                fail(st, msg.to_string());
                            }
                            continue;
                        }
                    }
                }
                let v = at_value;
                at_value += 1;
                if st.failed {
                    continue;
                }
                let value = match &values {
                    Some(c) => Ok(c.value(v)),
                    None => agg.eval(&at(r), &|slot| get(r, slot)),
                };
                match (&m.agg, value) {
                    (_, Err(e)) => fail(st, e.to_string()),
                    (_, Ok(V::Missing)) => st.unknown += 1,
                    (Agg::Count(_), Ok(V::Bool(b))) => {
                        if st.judged(b) && m.finding.is_some() {
                            part.evidence[k * n + j].push(ctx.evidence(s, r, seen));
                        }
                    }
                    (Agg::Count(_), Ok(other)) => fail(
                        st,
                        format!(
                            "`count` needs a yes/no condition, got {} {other}",
                            other.type_name()
                        ),
                    ),
                    (_, Ok(V::Num(x))) => st.add(x),
                    (_, Ok(other)) => fail(
                        st,
                        format!(
                            "`{}` needs a number, got {} {other}",
                            m.agg.as_str(),
                            other.type_name()
                        ),
                    ),
                }
            }
        }
    }

    fn vm(&self, params: &[V<'_>]) -> Option<LuaVm> {
        let uses_lua = self
            .logic
            .measures
            .iter()
            .any(|m| matches!(m.compute, crate::rules::Compute::Lua(..)))
            || self
                .logic
                .criteria
                .iter()
                .any(|c| matches!(c.decide, crate::rules::Decide::Lua(..)));
        if !uses_lua || self.lua.is_empty() {
            return None;
        }
        let mut vm = LuaVm::new(&self.lua, self.limits).ok()?;
        let named: Vec<(String, V<'_>)> = self
            .logic
            .names
            .iter()
            .skip(self.mistake_start + self.rules.mistakes.len())
            .take(params.len())
            .cloned()
            .zip(params.iter().cloned())
            .collect();
        let _ = vm.set_context(&named, &[]);
        let visible: Vec<usize> = (0..self.logic.names.len())
            .filter(|i| {
                let p = self.mistake_start + self.rules.mistakes.len();
                !(p..p + params.len()).contains(i)
            })
            .collect();
        vm.set_keys(&self.logic.names, &visible);
        Some(vm)
    }
}

fn row_error(rule: &str, cell: String, message: &str) -> super::RuleError {
    super::RuleError {
        rule: Arc::from(rule),
        message: format!("at {cell}: {message}"),
    }
}

fn opt_num<'a>(v: Option<f64>) -> V<'a> {
    v.map_or(V::Missing, V::Num)
}

fn opt_str(v: Option<&str>) -> V<'_> {
    v.map_or(V::Missing, |s| V::Str(Cow::Borrowed(s)))
}

fn render_with<'a>(t: &Template, get: &impl Fn(usize) -> V<'a>) -> String {
    let mut out = String::new();
    let _ = render_into(&mut out, t, get);
    out
}

/// Writes a finding's template with a row's values; dates print as dates.
fn render_into<'a, W: std::fmt::Write + ?Sized>(
    out: &mut W,
    t: &Template,
    get: &impl Fn(usize) -> V<'a>,
) -> std::fmt::Result {
    for p in &t.parts {
        match p {
            TemplatePart::Text(s) => out.write_str(s)?,
            TemplatePart::Value(name, fmt, slot) => {
                let v = get(*slot);
                let dated = matches!(
                    name.as_str(),
                    "date"
                        | "planned_start"
                        | "actual_start"
                        | "confirmed"
                        | "followed_up"
                        | "expiry"
                        | "resolved"
                        | "prep_start"
                        | "birthday"
                        | "last_contact"
                        | "as_of"
                        | "period_start"
                        | "period_end"
                );
                match (&v, dated) {
                    (V::Num(d), true) if fmt.is_empty() => write_date(out, *d)?,
                    (V::Str(t), _) => out.write_str(t)?,
                    (V::Num(n), false) if fmt.is_empty() => write_number(out, *n)?,
                    _ => super::write_show(out, &v, fmt)?,
                }
            }
        }
    }
    Ok(())
}

/// A fast hash for short keys (KAM ids), in the manner of rustc's FxHasher: not resistant to
/// chosen collisions, which a workbook's own ids cannot make worse than slow.
type FastHash = std::hash::BuildHasherDefault<Fx>;

#[derive(Default)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ rest.len() as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

struct KamRow<'a> {
    id: &'a str,
    level: Option<&'static str>,
    basis: Option<&'static str>,
    rate: Option<f64>,
}

/// Rows of one KAM.
#[derive(Default)]
struct KamRows {
    manager: Option<usize>,
    accounts: Vec<usize>,
    key_accounts: usize,
    key_accounts_all: usize,
}

/// An account's contacts and its activities in the period, by kind.
#[derive(Default, Clone, Copy)]
struct RowCounts {
    contacts: u32,
    meetings: u32,
    proposals: u32,
    deals: u32,
    complaints: u32,
    open_complaints: u32,
    reference_letters: u32,
    referrals: u32,
}

impl RowCounts {
    /// Counts every account's rows: one sequential pass over the contacts and activities
    /// (each row adds to its account's counts), run beside the mapping of rows to KAMs. The
    /// pass codes the activities' kinds on the way.
    fn of(ds: &Dataset, period: &Period) -> (Vec<RowCounts>, Option<KindCodes>) {
        let mut counts = vec![RowCounts::default(); ds.accounts.len()];
        for c in &ds.contacts {
            counts[c.account].contacts += 1;
        }
        let mut kinds = KindCodes::default();
        let mut coded = true;
        for a in &ds.activities {
            coded &= kinds.code_of(a.kind).is_some();
            if !period.contains(a.date) {
                continue;
            }
            let n = &mut counts[a.account];
            match a.kind {
                "meeting" => n.meetings += 1,
                "proposal" => n.proposals += 1,
                "deal" => n.deals += 1,
                "complaint" => {
                    n.complaints += 1;
                    if a.resolved.is_none() {
                        n.open_complaints += 1;
                    }
                }
                "reference_letter" => n.reference_letters += 1,
                "referral" => n.referrals += 1,
                _ => {}
            }
        }
        (counts, coded.then_some(kinds))
    }
}

/// The activities' kinds as one byte per row: `kind == '…'` and `kind in […]` test each
/// distinct kind once, then read a byte per row instead of a text from the row's record.
#[derive(Default)]
struct KindCodes {
    /// The distinct kinds, in order of first appearance: a code is a position here.
    names: Vec<&'static str>,
    /// Per activity row.
    codes: Vec<u8>,
}

impl KindCodes {
    /// More distinct kinds than this (there are seven) and the kinds are not coded.
    const MAX: u8 = u8::MAX;

    /// Codes the next row's kind; `None` past [`KindCodes::MAX`] kinds.
    #[inline]
    fn code_of(&mut self, kind: &'static str) -> Option<u8> {
        // Kinds are the schema's own strings: the same pointer, or else equal texts.
        let found = self
            .names
            .iter()
            .position(|n| std::ptr::eq(*n, kind))
            .or_else(|| self.names.iter().position(|n| *n == kind));
        let c = match found {
            Some(c) => c,
            None if self.names.len() < Self::MAX as usize => {
                self.names.push(kind);
                self.names.len() - 1
            }
            None => return None,
        };
        self.codes.push(c as u8);
        Some(c as u8)
    }
}

/// Per-account facts KAM rules read on account rows.
#[derive(Default, Clone)]
struct AccountRowFacts {
    n: RowCounts,
    revenue_period: Option<f64>,
    revenue_previous: Option<f64>,
    gp_period: Option<f64>,
    gp_previous: Option<f64>,
    dossier_completeness: Option<f64>,
}

struct Ctx<'a> {
    ds: &'a Dataset,
    /// The account results of the run; empty until `with_results` (see `KamEngine::prepare`).
    accounts: &'a [AccountResult],
    period: Period,
    kams: BTreeMap<&'a str, KamRows>,
    /// Per sheet, per row: the index of its KAM in `kams` (`u32::MAX`: none).
    row_kam: [Vec<u32>; 4],
    account_facts: Arc<Vec<AccountRowFacts>>,
    dossier: Option<Arc<DossierIndex>>,
    /// The activities' kinds, coded (`None` in the unlikely case of too many kinds).
    kinds: Option<KindCodes>,
    /// Sheet names of the evidence rows, filled by the pass.
    sheets: SheetNames,
}

impl<'a> Ctx<'a> {
    /// Everything but what the account results give (the key accounts per KAM, which
    /// `with_results` adds).
    fn new(engine: &KamEngine, ds: &'a Dataset, period: Period) -> Ctx<'a> {
        // Counting each account's rows (one sequential pass over the activities) runs beside
        // the mapping of rows to KAMs.
        let ((counts, kinds), (kams, row_kam)) = rayon::join(
            || RowCounts::of(ds, &period),
            || {
                // The KAMs: every id on the Managers sheet, the accounts, activities and tenders, in id
                // order; rows are then mapped to a KAM's index.
                // A million accounts name a few thousand KAMs: gathered in a hash set, then
                // sorted (a sorted set took 0.1 s at a million accounts).
                let mut named: std::collections::HashSet<&str, ahash::RandomState> =
                    ds.managers.iter().map(|m| m.id.as_str()).collect();
                named.extend(ds.accounts.iter().filter_map(|a| a.kam_id.as_deref()));
                let mut ids: std::collections::BTreeSet<&str> = named.into_iter().collect();
                // Ids are short: a multiply-rotate hash instead of SipHash.
                let numbered = |ids: &std::collections::BTreeSet<&'a str>| {
                    ids.iter()
                        .enumerate()
                        .map(|(i, k)| (*k, i as u32))
                        .collect::<std::collections::HashMap<&str, u32, FastHash>>()
                };
                let mut index = numbered(&ids);
                let of = |index: &std::collections::HashMap<&str, u32, FastHash>,
                          k: Option<&str>| {
                    k.and_then(|k| index.get(k).copied())
                };
                let mut acc_kam: Vec<u32> = ds
                    .accounts
                    .iter()
                    .map(|a| of(&index, a.kam_id.as_deref()).unwrap_or(u32::MAX))
                    .collect();
                // Most rows name their account's KAM (the import fills it in when the row does not):
                // those need no lookup. A row naming a KAM nobody else names is marked `NEW`.
                const NEW: u32 = u32::MAX - 1;
                let by_row = |index: &std::collections::HashMap<&str, u32, FastHash>,
                              k: Option<&str>,
                              account: usize| match k {
                    Some(k) if ds.accounts[account].kam_id.as_deref() != Some(k) => {
                        of(index, Some(k)).unwrap_or(NEW)
                    }
                    _ => acc_kam[account],
                };
                let mut act_kam: Vec<u32> = ds
                    .activities
                    .par_iter()
                    .map(|a| by_row(&index, a.kam_id.as_deref(), a.account))
                    .collect();
                let mut ten_kam: Vec<u32> = ds
                    .tenders
                    .iter()
                    .map(|t| by_row(&index, t.kam_id.as_deref(), t.account))
                    .collect();
                // Ids only activities or tenders name (rare) join the list, and every row is numbered
                // again in the longer list.
                if act_kam.contains(&NEW) || ten_kam.contains(&NEW) {
                    let named = |rows: &[u32], kam: &dyn Fn(usize) -> Option<&'a str>| {
                        rows.iter()
                            .enumerate()
                            .filter(|(_, k)| **k == NEW)
                            .filter_map(|(r, _)| kam(r))
                            .collect::<Vec<&str>>()
                    };
                    let old: Vec<&str> = ids.iter().copied().collect();
                    ids.extend(named(&act_kam, &|r| ds.activities[r].kam_id.as_deref()));
                    ids.extend(named(&ten_kam, &|r| ds.tenders[r].kam_id.as_deref()));
                    index = numbered(&ids);
                    let renumber: Vec<u32> = old.iter().map(|k| index[k]).collect();
                    let again = |rows: &mut [u32], kam: &dyn Fn(usize) -> Option<&'a str>| {
                        for (r, k) in rows.iter_mut().enumerate() {
                            *k = match *k {
                                u32::MAX => u32::MAX,
                                NEW => of(&index, kam(r)).unwrap_or(u32::MAX),
                                k => renumber[k as usize],
                            };
                        }
                    };
                    again(&mut acc_kam, &|r| ds.accounts[r].kam_id.as_deref());
                    again(&mut act_kam, &|r| ds.activities[r].kam_id.as_deref());
                    again(&mut ten_kam, &|r| ds.tenders[r].kam_id.as_deref());
                }
                let row_kam: [Vec<u32>; 4] = [
                    act_kam,
                    ds.contacts.iter().map(|c| acc_kam[c.account]).collect(),
                    ten_kam,
                    acc_kam,
                ];
                let mut rows: Vec<KamRows> = (0..ids.len()).map(|_| KamRows::default()).collect();
                for (i, m) in ds.managers.iter().enumerate() {
                    rows[index[m.id.as_str()] as usize].manager.get_or_insert(i);
                }
                for (i, &k) in row_kam[3].iter().enumerate() {
                    if k != u32::MAX {
                        rows[k as usize].accounts.push(i);
                    }
                }
                let kams: BTreeMap<&str, KamRows> = ids.iter().copied().zip(rows).collect();
                (kams, row_kam)
            },
        );
        // Account facts: row counts, Transactions by period, dossier.
        let mut facts: Vec<AccountRowFacts> = counts
            .into_iter()
            .map(|n| AccountRowFacts {
                n,
                ..AccountRowFacts::default()
            })
            .collect();
        let q = period.quarters();
        let pq = period.previous_quarters();
        let dossier = engine
            .rules
            .dossier
            .as_ref()
            .map(|d| Arc::new(DossierIndex::new(d, ds)));
        facts.par_iter_mut().enumerate().for_each(|(i, f)| {
            let a = &ds.accounts[i];
            if !a.quarters.is_empty() {
                let sum = |range: Option<(i64, i64)>| -> (Option<f64>, Option<f64>) {
                    let mut rev = None;
                    let mut gp = None;
                    for (label, fig) in &a.quarters {
                        let Some(qi) = quarter_of_label(label) else {
                            continue;
                        };
                        if range.is_none_or(|(lo, hi)| qi >= lo && qi <= hi) {
                            *rev.get_or_insert(0.0) += fig.revenue;
                            *gp.get_or_insert(0.0) += fig.gross_profit;
                        }
                    }
                    (rev, gp)
                };
                (f.revenue_period, f.gp_period) = sum(q);
                if pq.is_some() {
                    (f.revenue_previous, f.gp_previous) = sum(pq);
                }
            }
            if let Some(d) = &dossier {
                f.dossier_completeness = d.check(ds, i);
            }
        });
        Ctx {
            ds,
            accounts: &[],
            period,
            kams,
            row_kam,
            account_facts: Arc::new(facts),
            dossier,
            kinds,
            sheets: SheetNames::default(),
        }
    }

    /// The same context with the account results of the run, and each KAM's key accounts
    /// counted from them.
    fn with_results<'b>(self, accounts: &'b [AccountResult]) -> Ctx<'b>
    where
        'a: 'b,
    {
        let mut ctx: Ctx<'b> = self;
        ctx.accounts = accounts;
        let mut rows: Vec<&mut KamRows> = ctx.kams.values_mut().collect();
        let acc_kam = &ctx.row_kam[3];
        for r in accounts.iter().filter(|r| r.key) {
            let Some(&k) = acc_kam.get(r.index) else {
                continue;
            };
            if k != u32::MAX {
                let e = &mut rows[k as usize];
                e.key_accounts_all += 1;
                if ctx.ds.accounts[r.index].level == "company" {
                    e.key_accounts += 1;
                }
            }
        }
        ctx
    }

    /// True when the row counts for the period (undated rows, contacts and accounts always do).
    fn in_period(&self, s: Source, r: usize) -> bool {
        match s {
            Source::Activities => self.period.contains(self.ds.activities[r].date),
            Source::Tenders => self.period.contains(self.ds.tenders[r].date),
            _ => true,
        }
    }

    fn origin(&self, s: Source, r: usize) -> &Origin {
        match s {
            Source::Activities => &self.ds.activities[r].origin,
            Source::Contacts => &self.ds.contacts[r].origin,
            Source::Tenders => &self.ds.tenders[r].origin,
            Source::Accounts => &self.ds.accounts[r].origin,
        }
    }

    fn cell(&self, s: Source, r: usize) -> String {
        self.origin(s, r).cell(0)
    }

    /// Row `r` of sheet `s` as evidence; `seen` is the worker's memory of sheet numbers.
    fn evidence(&self, s: Source, r: usize, seen: &mut Vec<(usize, u16)>) -> Evidence {
        let o = self.origin(s, r);
        Evidence {
            source: s,
            sheet: self.sheets.number(&o.sheet, seen),
            row: r as u32,
            account: self.account_of(s, r) as u32,
            line: o.row,
        }
    }

    fn account_of(&self, s: Source, r: usize) -> usize {
        match s {
            Source::Activities => self.ds.activities[r].account,
            Source::Contacts => self.ds.contacts[r].account,
            Source::Tenders => self.ds.tenders[r].account,
            Source::Accounts => r,
        }
    }

    fn row_date(&self, s: Source, r: usize) -> Option<f64> {
        match s {
            Source::Activities => self.ds.activities[r].date,
            Source::Tenders => self.ds.tenders[r].date,
            Source::Contacts => self.ds.contacts[r].last_contact,
            Source::Accounts => None,
        }
    }

    fn account_result(&self, i: usize) -> Option<&AccountResult> {
        self.accounts.get(i).filter(|r| r.index == i)
    }

    fn row_value<'v>(
        &'v self,
        engine: &'v RowTables,
        s: Source,
        r: usize,
        slot: usize,
        kam: &'v KamRow<'v>,
        params: &[V<'v>],
    ) -> V<'v> {
        let names = &engine.rows[src_index(s)];
        if slot >= names.params_start() {
            return params
                .get(slot - names.params_start())
                .cloned()
                .unwrap_or(V::Missing);
        }
        let f = if slot >= names.common_start() {
            names.codes[names.fields.len() + slot - names.common_start()]
        } else if slot >= names.extras_start() {
            let j = engine.extra_index[src_index(s)][slot - names.extras_start()];
            let extra = match s {
                Source::Activities => &self.ds.activities[r].extra,
                Source::Contacts => &self.ds.contacts[r].extra,
                Source::Tenders => &self.ds.tenders[r].extra,
                Source::Accounts => &self.ds.accounts[r].extra,
            };
            return extra.get(j).map_or(V::Missing, value_v);
        } else {
            names.codes[slot]
        };
        let at = At {
            ctx: self,
            s,
            r,
            kam,
        };
        match f.ty() {
            Some(Ty::Num) => opt_num(at.num(f)),
            Some(Ty::Bool) => at.flag(f).map_or(V::Missing, V::Bool),
            Some(Ty::Text) => at.text(f).map_or(V::Missing, V::Str),
            None => V::Missing,
        }
    }
}

/// One row of a sheet as compiled rule expressions read it: its fields by [`F`] code.
struct At<'c> {
    ctx: &'c Ctx<'c>,
    s: Source,
    r: usize,
    kam: &'c KamRow<'c>,
}

impl<'c> At<'c> {
    fn account(&self) -> usize {
        self.ctx.account_of(self.s, self.r)
    }
}

impl<'c> Row<'c, F> for At<'c> {
    fn num(&self, f: F) -> Option<f64> {
        let ctx = self.ctx;
        let r = self.r;
        let between = |from: Option<f64>, to: Option<f64>, f: fn(f64, f64) -> f64| {
            from.zip(to).map(|(x, y)| f(x, y))
        };
        match f {
            F::ActDate
            | F::ActPlannedStart
            | F::ActActualStart
            | F::ActConfirmed
            | F::ActFollowedUp
            | F::ActExpiry
            | F::ActResolved
            | F::ActAmount
            | F::ActMargin
            | F::ActMinutesLate
            | F::ActDaysToConfirm
            | F::ActDaysToFollowUp
            | F::ActDaysOpen
            | F::ActDaysToResolve
            | F::ActDaysValid => activity_num(&ctx.ds.activities[r], ctx.period.as_of, f),
            F::ConInfluence => ctx.ds.contacts[r].influence,
            F::ConRelationship => ctx.ds.contacts[r].relationship,
            F::ConBirthday => ctx.ds.contacts[r].birthday,
            F::ConLastContact => ctx.ds.contacts[r].last_contact,
            F::ConDaysSinceContact => {
                between(ctx.ds.contacts[r].last_contact, ctx.period.as_of, |x, y| {
                    y.floor() - x.floor()
                })
            }
            F::TenDate => ctx.ds.tenders[r].date,
            F::TenPrepStart => ctx.ds.tenders[r].prep_start,
            F::TenValue => ctx.ds.tenders[r].value,
            F::TenPrepMonths => {
                let t = &ctx.ds.tenders[r];
                between(t.prep_start, t.date, |p, d| {
                    (months_between(p, d) * 1e6).round() / 1e6
                })
            }
            F::AccRevenue => ctx.ds.accounts[r].revenue,
            F::AccGrossProfit => ctx.ds.accounts[r].gross_profit,
            F::AccWallet => ctx.ds.accounts[r].wallet,
            F::AccShareOfWallet => {
                let a = &ctx.ds.accounts[r];
                match (a.revenue, a.wallet) {
                    (Some(r), Some(w)) if w > 0.0 => Some(r / w),
                    _ => None,
                }
            }
            F::AccScore => ctx.account_result(r).map(|x| x.score),
            F::AccRevenuePeriod => ctx.account_facts[r].revenue_period,
            F::AccRevenuePrevious => ctx.account_facts[r].revenue_previous,
            F::AccGrossProfitPeriod => ctx.account_facts[r].gp_period,
            F::AccGrossProfitPrevious => ctx.account_facts[r].gp_previous,
            F::AccContacts => Some(ctx.account_facts[r].n.contacts as f64),
            F::AccMeetings => Some(ctx.account_facts[r].n.meetings as f64),
            F::AccProposals => Some(ctx.account_facts[r].n.proposals as f64),
            F::AccDeals => Some(ctx.account_facts[r].n.deals as f64),
            F::AccComplaints => Some(ctx.account_facts[r].n.complaints as f64),
            F::AccOpenComplaints => Some(ctx.account_facts[r].n.open_complaints as f64),
            F::AccReferenceLetters => Some(ctx.account_facts[r].n.reference_letters as f64),
            F::AccReferrals => Some(ctx.account_facts[r].n.referrals as f64),
            F::AccDossierCompleteness => ctx.account_facts[r].dossier_completeness,
            F::ComAccountGrossProfit => ctx.ds.accounts[self.account()].gross_profit,
            F::ComKamCommissionRate => self.kam.rate,
            F::ComPeriodStart => ctx.period.start,
            F::ComPeriodEnd => ctx.period.end,
            F::ComAsOf => ctx.period.as_of,
            _ => None,
        }
    }

    fn flag(&self, f: F) -> Option<bool> {
        let ctx = self.ctx;
        let r = self.r;
        match f {
            F::ActAgenda | F::ActArgued | F::ActInterrupted | F::ActBadManners | F::ActNextStep => {
                activity_flag(&ctx.ds.activities[r], f)
            }
            F::AccReference => ctx.ds.accounts[r].reference,
            F::AccKey => ctx.account_result(r).map(|x| x.key),
            F::ComAccountKey => ctx.account_result(self.account()).map(|x| x.key),
            _ => None,
        }
    }

    fn text(&self, f: F) -> Option<Cow<'c, str>> {
        let ctx: &'c Ctx<'c> = self.ctx;
        let r = self.r;
        let b = |x: &'c str| Some(Cow::Borrowed(x));
        let o = |x: &'c Option<String>| x.as_deref().map(Cow::Borrowed);
        match f {
            F::ActKind => b(ctx.ds.activities[r].kind),
            F::ActDmuRoles => o(&ctx.ds.activities[r].dmu_roles),
            F::ActNotes => o(&ctx.ds.activities[r].notes),
            F::ConName => o(&ctx.ds.contacts[r].name),
            F::ConRole => o(&ctx.ds.contacts[r].role),
            F::ConAttitude => o(&ctx.ds.contacts[r].attitude),
            F::ConHobbies => o(&ctx.ds.contacts[r].hobbies),
            F::ConFamily => o(&ctx.ds.contacts[r].family),
            F::ConValues => o(&ctx.ds.contacts[r].values),
            F::TenName => o(&ctx.ds.tenders[r].name),
            F::TenOutcome => ctx.ds.tenders[r].outcome.map(Cow::Borrowed),
            F::AccId => b(&ctx.ds.accounts[r].id),
            F::AccName => b(&ctx.ds.accounts[r].name),
            F::AccLevel => b(ctx.ds.accounts[r].level),
            F::AccIndustry => o(&ctx.ds.accounts[r].industry),
            F::AccRegion => o(&ctx.ds.accounts[r].region),
            F::AccHistory => o(&ctx.ds.accounts[r].history),
            F::AccNeeds => o(&ctx.ds.accounts[r].needs),
            F::AccDevelopmentPlans => o(&ctx.ds.accounts[r].development_plans),
            F::AccBand => ctx.account_result(r).map(|x| Cow::Borrowed(&*x.band)),
            F::AccDossierGaps => ctx.dossier.as_ref().map(|d| {
                let gaps: Vec<String> = d.gaps(ctx.ds, r).map(|g| g.to_string()).collect();
                Cow::Owned(gaps.join("; "))
            }),
            F::ComAccountId => b(&ctx.ds.accounts[self.account()].id),
            F::ComAccountName => b(&ctx.ds.accounts[self.account()].name),
            F::ComAccountLevel => b(ctx.ds.accounts[self.account()].level),
            F::ComAccountBand => ctx
                .account_result(self.account())
                .map(|x| Cow::Borrowed(&*x.band)),
            F::ComKamId => b(self.kam.id),
            F::ComKamLevel => self.kam.level.map(Cow::Borrowed),
            F::ComKamCommissionBasis => self.kam.basis.map(Cow::Borrowed),
            _ => None,
        }
    }
}

/// A number field of an activity (`as_of`: the period's reference date, for `days_open`).
/// Inlined into the column loops of [`Block`], where `f` is a constant.
#[inline(always)]
fn activity_num(a: &crate::model::Activity, as_of: Option<f64>, f: F) -> Option<f64> {
    let between = |from: Option<f64>, to: Option<f64>, f: fn(f64, f64) -> f64| {
        from.zip(to).map(|(x, y)| f(x, y))
    };
    match f {
        F::ActDate => a.date,
        F::ActPlannedStart => a.planned_start,
        F::ActActualStart => a.actual_start,
        F::ActConfirmed => a.confirmed,
        F::ActFollowedUp => a.followed_up,
        F::ActExpiry => a.expiry,
        F::ActResolved => a.resolved,
        F::ActAmount => a.amount,
        F::ActMargin => a.margin,
        F::ActMinutesLate => between(a.planned_start, a.actual_start, |x, y| {
            ((y - x) * 1440.0 * 1e6).round() / 1e6
        }),
        F::ActDaysToConfirm => between(a.date, a.confirmed, business_days_between),
        F::ActDaysToFollowUp => between(a.date, a.followed_up, business_days_between),
        F::ActDaysOpen => between(a.date, as_of, business_days_between),
        F::ActDaysToResolve => between(a.date, a.resolved, |x, y| y.floor() - x.floor()),
        F::ActDaysValid => between(a.date, a.expiry, |x, y| y.floor() - x.floor()),
        _ => None,
    }
}

/// A yes/no field of an activity.
#[inline(always)]
fn activity_flag(a: &crate::model::Activity, f: F) -> Option<bool> {
    match f {
        F::ActAgenda => a.agenda,
        F::ActArgued => a.argued,
        F::ActInterrupted => a.interrupted,
        F::ActBadManners => a.bad_manners,
        F::ActNextStep => a.next_step,
        _ => None,
    }
}

/// The quarter number of a label `YYYY-Qn` (as [`parse_period`] numbers quarters). Read for
/// every quarter of every account: the `-Q` is found by a byte scan, not a substring searcher.
fn quarter_of_label(label: &str) -> Option<i64> {
    let at = label.as_bytes().windows(2).position(|w| w == b"-Q")?;
    let (y, q) = (&label[..at], &label[at + 2..]);
    Some(y.parse::<i64>().ok()? * 4 + q.parse::<i64>().ok()? - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;
    use crate::model::value::format_date;

    #[test]
    fn sheet_names_are_numbered_once_per_name() {
        let names = SheetNames::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let activities: Arc<str> = Arc::from("Activities");
        let same_text: Arc<str> = Arc::from("Activities");
        let tagged: Arc<str> = Arc::from("[south.xlsx]Activities");
        assert_eq!(names.number(&activities, &mut a), 0);
        assert_eq!(names.number(&tagged, &mut a), 1);
        // Another worker, and a name that is another allocation of the same text.
        assert_eq!(names.number(&same_text, &mut b), 0);
        assert_eq!(names.number(&tagged, &mut b), 1);
        assert_eq!(a.len(), 2);
        let list = names.into_names();
        assert_eq!(
            list.iter().map(|x| &**x).collect::<Vec<_>>(),
            ["Activities", "[south.xlsx]Activities"]
        );
    }

    #[test]
    fn quarter_labels_number_like_periods() {
        for (label, want) in [
            ("2026-Q1", parse_period("2026-Q1").ok().map(|p| p.0)),
            ("2026-Q4", parse_period("2026-Q4").ok().map(|p| p.0)),
            ("1999-Q3", parse_period("1999-Q3").ok().map(|p| p.0)),
            ("2026", None),
            ("2026-H1", None),
            ("-Q1", None),
            ("2026-Q", None),
            ("2026-1-Q2", None),
            ("", None),
        ] {
            assert_eq!(quarter_of_label(label), want, "{label}");
        }
    }

    #[test]
    fn periods_parse_and_line_up_with_quarters() {
        assert_eq!(parse_period("2026"), Ok((2026 * 4, 2026 * 4 + 3)));
        assert_eq!(parse_period("2026-Q3"), Ok((2026 * 4 + 2, 2026 * 4 + 2)));
        assert_eq!(parse_period("2026-H2"), Ok((2026 * 4 + 2, 2026 * 4 + 3)));
        assert!(parse_period("2026-Q5").is_err());
        assert!(parse_period("Q3").is_err());
        assert_eq!(format_date(quarter_start(2026 * 4 + 2)), "2026-07-01");
        assert_eq!(format_date(quarter_end(2026 * 4 + 2)), "2026-09-30");
        let ds = Dataset::default();
        let p = resolve_period(&ds, Some("2026-Q3")).unwrap();
        assert_eq!(
            p.previous.map(|(a, b)| (format_date(a), format_date(b))),
            Some(("2026-04-01".into(), "2026-06-30".into()))
        );
        assert!(p.contains(Some(days_from_civil(2026, 9, 30) as f64 + 0.75)));
        assert!(!p.contains(Some(days_from_civil(2026, 10, 1) as f64)));
        assert!(p.contains(None));
        let all = resolve_period(&ds, Some("auto")).unwrap();
        assert_eq!(all.label, "all");
    }

    #[test]
    fn kams_only_activities_or_tenders_name_are_judged_and_the_others_keep_their_rows() {
        let mut ds =
            crate::import::import_bytes("s.xlsx", crate::SAMPLE_WORKBOOK, &Default::default())
                .unwrap();
        let rules = crate::rules::load(None, &[]).unwrap();
        let engine = crate::score::Engine::new(&rules, &ds.account_extras.names).unwrap();
        let accounts = engine.score(&ds, 1, false).unwrap().accounts;
        let run = |ds: &Dataset| {
            let k = KamEngine::new(&rules, ds).unwrap().unwrap();
            let scored = k.score(ds, &accounts, 2, false, None).unwrap();
            scored
                .managers
                .iter()
                .map(|m| {
                    let metric = |id: &str| scored.metric(m, id).map(|x| x.rows + x.unknown);
                    (
                        m.kam_id.clone(),
                        (
                            m.activities_in_period + m.activities_outside_period,
                            m.tenders_outside_period,
                            metric("late_meetings"),
                            metric("tenders_prepared_late"),
                        ),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        let before = run(&ds);
        // A meeting and a tender of the period move to ids no Managers row and no account
        // names, one sorting before every other id and one after.
        let period = resolve_period(&ds, None).unwrap();
        let act = ds
            .activities
            .iter()
            .position(|a| a.kind == "meeting" && period.contains(a.date))
            .unwrap();
        let ten = ds
            .tenders
            .iter()
            .position(|t| period.contains(t.date))
            .unwrap();
        let act_owner = ds.activities[act].kam_id.clone().unwrap();
        let ten_owner = ds.tenders[ten].kam_id.clone().unwrap();
        ds.activities[act].kam_id = Some("0 first".into());
        ds.tenders[ten].kam_id = Some("zz last".into());
        let after = run(&ds);
        assert_eq!(after.len(), before.len() + 2, "{after:#?}");
        assert_eq!(after["0 first"].0, 1);
        assert_eq!(after["0 first"].2, Some(1));
        assert_eq!(after["zz last"].0, 0);
        assert_eq!(after["zz last"].3, Some(1));
        for (id, was) in &before {
            let now = &after[id];
            let lost_activity = u32::from(*id == act_owner);
            assert_eq!(now.0, was.0 - lost_activity, "{id}");
            let rows = |x: Option<u32>| x.unwrap_or(0);
            assert_eq!(rows(now.2), rows(was.2) - lost_activity, "{id}");
            let lost_tender = u32::from(*id == ten_owner);
            assert_eq!(rows(now.3), rows(was.3) - lost_tender, "{id}");
        }
    }

    #[test]
    fn chunks_merge_in_row_order_and_a_failing_row_fails_only_its_kams_metric() {
        // The sample's activities repeated past three chunks of the pass, with two extra
        // columns: `flag`, counted by a metric, and `mark`, the `among` of another (both
        // evaluated row by row, by tree walk): yes/no on most rows, empty on some of `mark`,
        // text (an error) on a few.
        let mut ds =
            crate::import::import_bytes("s.xlsx", crate::SAMPLE_WORKBOOK, &Default::default())
                .unwrap();
        let one = ds.activities.clone();
        while ds.activities.len() < 3 * 16_384 + 100 {
            ds.activities.extend(one.iter().cloned());
        }
        ds.activity_extras.names = vec!["flag".into(), "mark".into()];
        let period = resolve_period(&ds, None).unwrap();
        let kam_of = |a: &crate::model::Activity| a.kam_id.clone().unwrap_or_default();
        let in_period: Vec<usize> = (0..ds.activities.len())
            .filter(|&r| {
                period.contains(ds.activities[r].date) && ds.activities[r].kam_id.is_some()
            })
            .collect();
        let first_kam = kam_of(&ds.activities[in_period[0]]);
        let other_kam = in_period
            .iter()
            .map(|&r| kam_of(&ds.activities[r]))
            .find(|k| *k != first_kam)
            .unwrap();
        let rows_of = |kam: &str| -> Vec<usize> {
            in_period
                .iter()
                .copied()
                .filter(|&r| kam_of(&ds.activities[r]) == kam)
                .collect()
        };
        let (a_rows, b_rows) = (rows_of(&first_kam), rows_of(&other_kam));
        // KAM a fails in the first chunk and again in the third; KAM b never does.
        let fail_a = [
            *a_rows.iter().find(|&&r| r >= 100).unwrap(),
            *a_rows.iter().find(|&&r| r >= 2 * 16_384 + 10).unwrap(),
        ];
        let mark = |r: usize| match r % 5 {
            1 => Value::Empty,
            _ => Value::Bool(r.is_multiple_of(2)),
        };
        for (r, a) in ds.activities.iter_mut().enumerate() {
            a.extra = if fail_a.contains(&r) {
                vec![Value::Text("oops".into()), Value::Text("oops".into())]
            } else {
                vec![Value::Bool(r % 3 == 0), mark(r)]
            };
        }
        let files: Vec<(std::path::PathBuf, String)> = crate::rules::DEFAULT_FILES
            .iter()
            .map(|(n, t)| {
                let t = t.replacen(
                    "\nmetrics:\n",
                    "\nmetrics:\n  - id: flagged\n    over: activities\n    count: flag\n    finding: \"flagged on {date}\"\n  - id: marked_meetings\n    over: activities\n    among: mark\n    count: kind == 'meeting'\n    finding: \"marked {date}\"\n",
                    1,
                );
                (std::path::PathBuf::from(*n), t)
            })
            .collect();
        let (rules, problems) = crate::rules::load_files(None, &files, &[]);
        assert!(problems.is_empty(), "{problems:?}");
        let engine = crate::score::Engine::new(&rules, &ds.account_extras.names).unwrap();
        let accounts = engine.score(&ds, 1, false).unwrap().accounts;
        let k = KamEngine::new(&rules, &ds).unwrap().unwrap();
        let run = |jobs: usize| {
            let scored = k.score(&ds, &accounts, jobs, false, None).unwrap();
            let of = |id: &str, metric: &str| {
                let m = scored.managers.iter().find(|m| m.kam_id == id).unwrap();
                let v = scored.metric(m, metric).unwrap();
                let rows: Vec<u32> = v.evidence.iter().map(|e| e.row).collect();
                let errors: Vec<String> = m
                    .verdict
                    .errors
                    .iter()
                    .filter(|e| &*e.rule == metric)
                    .map(|e| e.message.clone())
                    .collect();
                (v.value, v.rows, v.unknown, rows, errors)
            };
            (
                of(&first_kam, "flagged"),
                of(&other_kam, "flagged"),
                of(&first_kam, "marked_meetings"),
                of(&other_kam, "marked_meetings"),
            )
        };
        let all = run(2);
        let (a, b, ma, mb) = all.clone();
        // KAM a: no value, and the error cites the first failing row, not the later one.
        assert_eq!(a.0, None);
        assert_eq!(a.4.len(), 1, "{:?}", a.4);
        let cell = ds.activities[fail_a[0]].origin.cell(0);
        assert!(a.4[0].contains(&format!("at {cell}:")), "{:?}", a.4);
        assert!(a.4[0].contains("yes/no"), "{:?}", a.4);
        // The same for the metric whose `among` fails there.
        assert_eq!(ma.0, None);
        assert_eq!(ma.4.len(), 1, "{:?}", ma.4);
        assert!(
            ma.4[0].contains(&format!("at {cell}: `among` must be yes/no")),
            "{:?}",
            ma.4
        );
        // KAM b: every row of the period judged, the flagged ones as evidence in row order.
        let flagged: Vec<u32> = b_rows
            .iter()
            .filter(|&&r| r % 3 == 0)
            .map(|&r| r as u32)
            .collect();
        assert!(
            b_rows.iter().any(|&r| r >= 2 * 16_384),
            "KAM b has rows in the last chunk"
        );
        assert_eq!(b.0, Some(flagged.len() as f64));
        assert_eq!(b.1 as usize, b_rows.len());
        assert_eq!(b.2, 0);
        assert_eq!(b.3, flagged);
        assert!(b.4.is_empty(), "{:?}", b.4);
        // Its marked rows: judged where `mark` is yes, not known where it is empty.
        let marked: Vec<usize> = b_rows
            .iter()
            .copied()
            .filter(|&r| mark(r) == Value::Bool(true))
            .collect();
        let meetings: Vec<u32> = marked
            .iter()
            .filter(|&&r| ds.activities[r].kind == "meeting")
            .map(|&r| r as u32)
            .collect();
        assert!(!meetings.is_empty() && meetings.len() < marked.len());
        assert_eq!(mb.0, Some(meetings.len() as f64));
        assert_eq!(mb.1 as usize, marked.len());
        assert_eq!(
            mb.2 as usize,
            b_rows.iter().filter(|&&r| r % 5 == 1).count()
        );
        assert_eq!(mb.3, meetings);
        assert!(mb.4.is_empty(), "{:?}", mb.4);
        assert_eq!(run(1), all, "the same with one worker");
    }

    #[test]
    fn a_sheet_whose_rules_read_the_account_results_waits_for_them() {
        let ds = crate::import::import_bytes("s.xlsx", crate::SAMPLE_WORKBOOK, &Default::default())
            .unwrap();
        let rules = crate::rules::load(None, &[]).unwrap();
        // The default pack: only the accounts' rules read a result (`key`).
        let k = KamEngine::new(&rules, &ds).unwrap().unwrap();
        assert_eq!(k.after_scoring, [false, false, false, true]);
        // A metric over activities that reads its account's key; a pay reason its band.
        let pack = |metric: bool, pay: bool| {
            let files: Vec<(std::path::PathBuf, String)> = crate::rules::DEFAULT_FILES
                .iter()
                .map(|(n, t)| {
                    let mut t = t.to_string();
                    if metric {
                        t = t.replacen(
                            "\nmetrics:\n",
                            "\nmetrics:\n  - id: key_meetings\n    over: activities\n    among: account.key\n    count: kind == 'meeting'\n",
                            1,
                        );
                    }
                    if pay {
                        t = t.replacen(
                            "{rate:%} of the margin",
                            "{rate:%} ({account.band}) of the margin",
                            1,
                        );
                    }
                    (std::path::PathBuf::from(*n), t)
                })
                .collect();
            let (rules, problems) = crate::rules::load_files(None, &files, &[]);
            assert!(problems.is_empty(), "{problems:?}");
            rules
        };
        let pay_only = KamEngine::new(&pack(false, true), &ds).unwrap().unwrap();
        assert_eq!(pay_only.after_scoring, [true, false, false, true]);
        let rules = pack(true, false);
        let engine = crate::score::Engine::new(&rules, &ds.account_extras.names).unwrap();
        let accounts = engine.score(&ds, 1, false).unwrap().accounts;
        let k = KamEngine::new(&rules, &ds).unwrap().unwrap();
        assert_eq!(k.after_scoring, [true, false, false, true]);
        let period = resolve_period(&ds, None).unwrap();
        let key = |a: usize| accounts.iter().find(|r| r.index == a).unwrap().key;
        let scored = k.score(&ds, &accounts, 2, false, None).unwrap();
        let mut checked = 0;
        for m in &scored.managers {
            let rows: Vec<&crate::model::Activity> = ds
                .activities
                .iter()
                .filter(|a| a.kam_id.as_deref() == Some(m.kam_id.as_str()))
                .filter(|a| period.contains(a.date) && key(a.account))
                .collect();
            let meetings = rows.iter().filter(|a| a.kind == "meeting").count();
            let v = scored.metric(m, "key_meetings").unwrap();
            assert_eq!(v.rows as usize, rows.len(), "{}", m.kam_id);
            assert_eq!(v.unknown, 0, "{}", m.kam_id);
            let want = (!rows.is_empty()).then_some(meetings as f64);
            assert_eq!(v.value, want, "{}", m.kam_id);
            checked += usize::from(meetings > 0);
        }
        assert!(
            checked >= 2,
            "the sample has KAMs with meetings at key accounts"
        );
        // Without the results, every row's key is not known: the metric depends on them.
        let blind = k.score(&ds, &[], 2, false, None).unwrap();
        assert!(blind.managers.iter().all(|m| {
            let v = blind.metric(m, "key_meetings").unwrap();
            v.rows == 0 && v.value.is_none()
        }));
    }

    #[test]
    fn dossier_gaps_name_every_missing_item_however_long_the_standard() {
        let ds = crate::import::import_bytes("s.xlsx", crate::SAMPLE_WORKBOOK, &Default::default())
            .unwrap();
        // The first contact with no birthday but hobbies, and its account.
        let c = ds
            .contacts
            .iter()
            .find(|c| c.birthday.is_none() && c.hobbies.is_some() && c.name.is_some())
            .unwrap();
        let gap_of = |items: Vec<String>| {
            let spec = crate::rules::kam::Dossier {
                among: None,
                account: Vec::new(),
                contact: items,
                span: crate::diag::Span {
                    file: "test.yaml".into(),
                    line: 1,
                    col: 1,
                    len: 1,
                    source_line: String::new(),
                },
            };
            let d = DossierIndex::new(&spec, &ds);
            d.gaps(&ds, c.account)
                .map(|g| g.to_string())
                .find(|g| g.starts_with(c.name.as_deref().unwrap()))
        };
        let name = c.name.clone().unwrap();
        assert_eq!(
            gap_of(vec!["hobbies".into(), "birthday".into()]),
            Some(format!("{name}: birthday"))
        );
        // Past the 64 items remembered as bits, items are tested again when printed.
        let mut items: Vec<String> = vec!["hobbies".into(); 70];
        items[3] = "birthday".into();
        items.push("birthday".into());
        assert_eq!(gap_of(items), Some(format!("{name}: birthday, birthday")));
        let mut items: Vec<String> = vec!["hobbies".into(); 70];
        items[66] = "birthday".into();
        assert_eq!(gap_of(items), Some(format!("{name}: birthday")));
    }

    #[test]
    fn the_default_packs_row_expressions_run_on_typed_nodes() {
        let rules = crate::rules::load(None, &[]).unwrap();
        let k = KamEngine::new(&rules, &Dataset::default())
            .unwrap()
            .unwrap();
        assert_eq!(k.aggs.len(), k.rules.metrics.len());
        assert!(k.aggs.iter().all(Compiled::is_typed));
        assert!(
            k.plans
                .iter()
                .all(|p| p.amongs.iter().all(Compiled::is_typed))
        );
        let pay = k.pay_plan.as_ref().unwrap();
        assert!(pay.among.is_typed());
        assert!(pay.rules.iter().flatten().all(Compiled::is_typed));
    }
}
