//! What the templates see: one serialisable context per report, built from the dataset, the
//! scores and (optionally) the previous run. The variables are documented in
//! `docs/templates.md`; kam computes facts and carries the KAM's own words, it never writes
//! strategy text.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::previous::Previous;
use crate::model::{Dataset, RejectScope, RowsByAccount};
use crate::rules::{ParamValue, RuleSet};
use crate::score::kams::{KamScored, ManagerResult};
use crate::score::{AccountResult, Outcome, Scored};

/// Row indexes per account, built once per run so each plan reads only its own rows.
pub struct Index {
    contacts: RowsByAccount,
    activities: RowsByAccount,
    tenders: RowsByAccount,
    plans: RowsByAccount,
    /// Account results (indexes into `Scored::accounts`) by rank on the share basis.
    ranked: Vec<usize>,
    /// Managers (indexes into `Dataset::managers`) by id.
    managers: HashMap<String, usize>,
}

impl Index {
    /// Indexes the rows of `ds` by account.
    pub fn new(ds: &Dataset, scored: &Scored) -> Index {
        let n = ds.accounts.len();
        let mut ix = Index {
            contacts: RowsByAccount::new(n, ds.contacts.iter().map(|c| c.account)),
            activities: RowsByAccount::new(n, ds.activities.iter().map(|a| a.account)),
            tenders: RowsByAccount::new(n, ds.tenders.iter().map(|t| t.account)),
            plans: RowsByAccount::new(n, ds.plans.iter().map(|p| p.account)),
            ranked: (0..scored.accounts.len()).collect(),
            managers: HashMap::with_capacity(ds.managers.len()),
        };
        for (i, m) in ds.managers.iter().enumerate() {
            ix.managers.entry(m.id.clone()).or_insert(i);
        }
        ix.ranked.sort_by_key(|&i| {
            let r = &scored.accounts[i];
            (r.facts.rank, r.index)
        });
        ix
    }

    /// The account results of `scored` (the dataset indexed) by rank, ties in workbook order.
    pub fn ranked<'s>(
        &'s self,
        scored: &'s Scored,
    ) -> impl Iterator<Item = &'s AccountResult> + 's {
        self.ranked.iter().map(|&i| &scored.accounts[i])
    }

    /// The name of the KAM `id` from the Managers sheet (the first row with that id).
    pub fn kam_name<'d>(&self, ds: &'d Dataset, id: &str) -> Option<&'d str> {
        self.managers
            .get(id)
            .and_then(|&i| ds.managers[i].name.as_deref())
    }
}

/// Param values by name, as numbers where they are numbers.
pub fn params_map(rules: &RuleSet) -> BTreeMap<String, serde_json::Value> {
    rules
        .params
        .iter()
        .map(|p| {
            let v = match &p.value {
                ParamValue::Num(x) => serde_json::json!(x),
                ParamValue::Text(t) => serde_json::json!(t),
                ParamValue::Bool(b) => serde_json::json!(b),
            };
            (p.name.clone(), v)
        })
        .collect()
}

/// A number param, if the packs declare it.
pub fn param_num(rules: &RuleSet, name: &str) -> Option<f64> {
    rules
        .params
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| match p.value {
            ParamValue::Num(x) => Some(x),
            _ => None,
        })
}

/// Everything every template sees.
#[derive(Debug, Serialize)]
pub struct Common {
    /// Language code.
    pub lang: &'static str,
    /// kam's version.
    pub kam_version: &'static str,
    /// The workbook.
    pub file: String,
    /// The last day the data covers (day number), when known.
    pub as_of: Option<f64>,
    /// The KAM review period label.
    pub period: Option<String>,
    /// Params after `--set`.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The previous run compared with, if any.
    pub previous: Option<String>,
}

/// A name and a value.
#[derive(Debug, Serialize, Clone)]
pub struct Named {
    /// Name.
    pub name: String,
    /// Value (none: not known).
    pub value: Option<serde_json::Value>,
}

/// A matched rule behind an account's status.
#[derive(Debug, Serialize)]
pub struct Why {
    /// Rule id.
    pub rule: String,
    /// criterion, table, band…
    pub kind: &'static str,
    /// Points it gave.
    pub points: f64,
    /// Label it granted.
    pub label: Option<String>,
    /// Its reason, with the values seen.
    pub reason: String,
    /// The values it saw.
    pub inputs: Vec<Named>,
    /// The cells those values came from.
    pub cells: Vec<String>,
}

/// The account as the plan shows it.
#[derive(Debug, Serialize)]
pub struct AccountView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The plan file (relative to the output folder), when it has one.
    pub link: Option<String>,
    /// KAM id.
    pub kam_id: Option<String>,
    /// KAM name.
    pub kam_name: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// company, manager or department.
    pub level: String,
    /// Band.
    pub band: String,
    /// Score.
    pub score: f64,
    /// Counts as key.
    pub key: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// Rank on the share basis.
    pub rank: usize,
    /// A, B or C.
    pub abc: &'static str,
    /// Share on the basis.
    pub share: Option<f64>,
    /// Share of gross profit.
    pub profit_share: Option<f64>,
    /// Share of revenue.
    pub revenue_share: Option<f64>,
    /// Cumulative share up to and including the account.
    pub cum_share: Option<f64>,
    /// Revenue.
    pub revenue: Option<f64>,
    /// Gross profit.
    pub gross_profit: Option<f64>,
    /// The client's budget for our category.
    pub wallet: Option<f64>,
    /// Our share of the wallet.
    pub sow: Option<f64>,
    /// Wallet not bought from us (competitors or nobody).
    pub unallocated: Option<f64>,
    /// accounts or transactions.
    pub figures_source: &'static str,
    /// Dependency output (none, key, critical, mono), when the packs have it.
    pub dependency: Option<String>,
    /// Matrix quadrant output, when the packs have it.
    pub quadrant: Option<String>,
    /// Attractiveness measure (0–100), when the packs have it.
    pub attractiveness: Option<f64>,
    /// Strength measure (0–100), when the packs have it.
    pub strength: Option<f64>,
    /// Dossier: the client's history with us.
    pub history: Option<String>,
    /// Dossier: the client's needs.
    pub needs: Option<String>,
    /// Dossier: the client's development plans.
    pub development_plans: Option<String>,
    /// Source cell.
    pub cell: String,
}

/// One quarter's figures.
#[derive(Debug, Serialize)]
pub struct Quarter {
    /// `2026-Q1`.
    pub quarter: String,
    /// Net revenue.
    pub revenue: f64,
    /// Net gross profit.
    pub gross_profit: f64,
}

/// A member of the DMU.
#[derive(Debug, Serialize)]
pub struct Person {
    /// Name.
    pub name: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// Influence.
    pub influence: Option<f64>,
    /// Relationship strength.
    pub relationship: Option<f64>,
    /// Attitude towards us.
    pub attitude: Option<String>,
    /// none, partial, in_depth or not_known.
    pub coverage: &'static str,
    /// The dossier items missing for this person.
    pub gaps: Vec<&'static str>,
    /// Source cell.
    pub cell: String,
}

/// Items of the KAM's plan, in the KAM's words.
#[derive(Debug, Serialize, Default)]
pub struct KamPlan {
    /// Whether the KAM wrote anything for this account.
    pub written: bool,
    /// Objectives.
    pub objectives: Vec<PlanText>,
    /// Strategies.
    pub strategies: Vec<PlanText>,
    /// Value proposition.
    pub value_propositions: Vec<PlanText>,
    /// SWOT: strengths.
    pub strengths: Vec<PlanText>,
    /// SWOT: weaknesses.
    pub weaknesses: Vec<PlanText>,
    /// SWOT: opportunities.
    pub opportunities: Vec<PlanText>,
    /// SWOT: threats.
    pub threats: Vec<PlanText>,
    /// Actions.
    pub actions: Vec<Action>,
    /// Actions done / all actions.
    pub actions_done: usize,
    /// Actions done since the previous run.
    pub done_since_previous: usize,
}

/// One text of the plan.
#[derive(Debug, Serialize)]
pub struct PlanText {
    /// The KAM's words.
    pub text: String,
    /// Source cell.
    pub cell: String,
}

/// An action of the plan.
#[derive(Debug, Serialize)]
pub struct Action {
    /// What.
    pub text: String,
    /// Who.
    pub owner: Option<String>,
    /// By when.
    pub due: Option<f64>,
    /// open, in_progress, done, cancelled (none: not stated).
    pub status: Option<&'static str>,
    /// Status in the previous run (none: not there, or no previous run).
    pub previous_status: Option<String>,
    /// Done now, not done in the previous run.
    pub done_since_previous: bool,
    /// Not done and past its due date.
    pub overdue: bool,
    /// Source cell.
    pub cell: String,
}

/// A tender with its preparation window.
#[derive(Debug, Serialize)]
pub struct TenderView {
    /// Subject.
    pub name: Option<String>,
    /// Tender date.
    pub date: Option<f64>,
    /// When preparation should start (date − `tender_prep_months`).
    pub prep_due: Option<f64>,
    /// When preparation started.
    pub prep_start: Option<f64>,
    /// Preparation started after `prep_due`, or has not started and `prep_due` has passed.
    pub late: bool,
    /// Value.
    pub value: Option<f64>,
    /// won, lost, pending, cancelled.
    pub outcome: Option<&'static str>,
    /// Source cell.
    pub cell: String,
}

/// A proposal waiting for the client.
#[derive(Debug, Serialize)]
pub struct ProposalView {
    /// Sent on.
    pub date: Option<f64>,
    /// Follow-up due (date + `follow_up_days` business days).
    pub follow_up_due: Option<f64>,
    /// Followed up on.
    pub followed_up: Option<f64>,
    /// Overdue: no follow-up in time.
    pub overdue: bool,
    /// Expires on.
    pub expiry: Option<f64>,
    /// Days from the data's last day to the expiry (negative: expired).
    pub days_left: Option<f64>,
    /// Notes.
    pub notes: Option<String>,
    /// Source cell.
    pub cell: String,
}

/// A complaint.
#[derive(Debug, Serialize)]
pub struct ComplaintView {
    /// Raised on.
    pub date: Option<f64>,
    /// Resolved on.
    pub resolved: Option<f64>,
    /// Days to resolve (or open so far, to the data's last day).
    pub days: Option<f64>,
    /// Still open.
    pub open: bool,
    /// Notes.
    pub notes: Option<String>,
    /// Source cell.
    pub cell: String,
}

/// Changes since the previous run.
#[derive(Debug, Serialize, Default)]
pub struct Changes {
    /// A previous run was given and had this account.
    pub known: bool,
    /// The account is new since then.
    pub new: bool,
    /// Score then.
    pub score_before: Option<f64>,
    /// Band then.
    pub band_before: Option<String>,
    /// Key then.
    pub key_before: Option<bool>,
    /// Dependency then.
    pub dependency_before: Option<String>,
    /// Share then.
    pub share_before: Option<f64>,
    /// Share now − then.
    pub share_delta: Option<f64>,
    /// Score now − then.
    pub score_delta: Option<f64>,
}

/// The per-account plan.
#[derive(Debug, Serialize)]
pub struct PlanContext {
    /// The account.
    pub account: AccountView,
    /// The rules that made it what it is.
    pub why: Vec<Why>,
    /// Rule errors on this account.
    pub errors: Vec<Named>,
    /// Recommended actions from the rules (not strategy: checks to do).
    pub rule_actions: Vec<String>,
    /// Quarterly figures.
    pub quarters: Vec<Quarter>,
    /// The DMU, key people first.
    pub dmu: Vec<Person>,
    /// DMU roles present, with the proposal guidance for each (from the language file).
    pub guidance: Vec<&'static str>,
    /// Account dossier items missing (history, needs, development plans, financials).
    pub dossier_gaps: Vec<&'static str>,
    /// The KAM's own plan.
    pub kam_plan: KamPlan,
    /// Tenders with their preparation windows.
    pub tenders: Vec<TenderView>,
    /// Proposals waiting for a follow-up.
    pub follow_ups: Vec<ProposalView>,
    /// Proposals expiring within `proposal_expiring_days` (or expired, unconfirmed).
    pub expiring: Vec<ProposalView>,
    /// Complaints.
    pub complaints: Vec<ComplaintView>,
    /// Changes since the previous run.
    pub changes: Changes,
    /// When to look at the plan again (as of + `plan_review_months`).
    pub review_next: Option<f64>,
    /// Counts for the summary.
    pub counts: Counts,
    /// The KAM's actions not done or cancelled, by due date.
    pub next_actions: Vec<NextAction>,
}

/// Counts shown in a plan's summary.
#[derive(Debug, Serialize)]
pub struct Counts {
    /// Proposals waiting for a follow-up.
    pub follow_ups: usize,
    /// Of which overdue.
    pub overdue_follow_ups: usize,
    /// Tenders prepared late.
    pub late_tenders: usize,
    /// Complaints still open.
    pub open_complaints: usize,
}

/// An open action of the KAM's plan.
#[derive(Debug, Serialize)]
pub struct NextAction {
    /// What.
    pub text: String,
    /// Who.
    pub owner: Option<String>,
    /// By when.
    pub due: Option<f64>,
    /// Past its due date.
    pub overdue: bool,
}

/// The values a rule saw, as the reports list them.
fn named_inputs(inputs: &[(std::sync::Arc<str>, String)]) -> Vec<Named> {
    inputs
        .iter()
        .map(|(k, v)| Named {
            name: k.to_string(),
            value: Some(serde_json::json!(v)),
        })
        .collect()
}

/// The matched rules of a trace, as the reports show them.
fn why_of(contributions: &[crate::score::Contribution]) -> Vec<Why> {
    contributions
        .iter()
        .filter(|c| c.outcome == Outcome::Matched)
        .map(|c| Why {
            rule: c.rule.to_string(),
            kind: c.kind,
            points: c.points,
            label: c.label.clone(),
            reason: c.reason.clone(),
            inputs: named_inputs(&c.inputs),
            cells: c.cells.clone(),
        })
        .collect()
}

/// Rule errors as (rule, message) pairs.
fn errors_of(errors: &[crate::score::RuleError]) -> Vec<Named> {
    errors
        .iter()
        .map(|e| Named {
            name: e.rule.to_string(),
            value: Some(serde_json::json!(e.message)),
        })
        .collect()
}

fn opt_json_num(x: Option<f64>) -> Option<serde_json::Value> {
    x.map(|v| serde_json::json!(v))
}

fn add_months(days: f64, months: f64) -> f64 {
    use crate::model::value::{civil_from_days, days_from_civil};
    let (y, m, d) = civil_from_days(days.floor() as i64);
    let total = y * 12 + (m as i64 - 1) + months.round() as i64;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    let last = match nm {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (ny % 4 == 0 && ny % 100 != 0) || ny % 400 == 0 => 29,
        _ => 28,
    };
    days_from_civil(ny, nm, d.min(last)) as f64
}

fn add_business_days(from: f64, n: f64) -> f64 {
    let mut d = from.floor();
    let mut left = n.max(0.0).round() as i64;
    while left > 0 {
        d += 1.0;
        if crate::model::value::weekday(d) < 5 {
            left -= 1;
        }
    }
    d
}

/// What a run's reports are built from.
pub struct Inputs<'a> {
    /// The dataset.
    pub ds: &'a Dataset,
    /// Its scores.
    pub scored: &'a Scored,
    /// The rules.
    pub rules: &'a RuleSet,
    /// The previous run.
    pub previous: Option<&'a Previous>,
    /// Row indexes.
    pub index: &'a Index,
    /// Plan file per account index (relative), for accounts that get a plan.
    pub plan_links: &'a HashMap<usize, String>,
    /// Review file per KAM id.
    pub review_links: &'a HashMap<String, String>,
    /// The data's last day.
    pub as_of: Option<f64>,
}

impl Inputs<'_> {
    /// The values every template sees.
    pub fn common(&self) -> Common {
        Common {
            lang: "",
            kam_version: env!("CARGO_PKG_VERSION"),
            file: self.ds.file.clone(),
            as_of: self.as_of,
            period: self
                .scored
                .managers
                .as_ref()
                .map(|m| m.period.label.clone()),
            params: params_map(self.rules),
            previous: self.previous.map(|p| p.dir.clone()),
        }
    }

    /// The account as reports show it.
    pub fn account_view(&self, r: &AccountResult) -> AccountView {
        let ds = self.ds;
        let s = self.scored;
        let a = &ds.accounts[r.index];
        let f = &r.facts;
        let sow = match (a.revenue, a.wallet) {
            (r, Some(w)) if w > 0.0 => Some(r.unwrap_or(0.0) / w),
            _ => None,
        };
        let kam_name = a
            .kam_id
            .as_ref()
            .and_then(|k| self.index.kam_name(ds, k))
            .map(str::to_string);
        AccountView {
            id: a.id.clone(),
            name: a.name.clone(),
            link: self.plan_links.get(&r.index).cloned(),
            kam_id: a.kam_id.clone(),
            kam_name,
            industry: a.industry.clone(),
            region: a.region.clone(),
            level: a.level.to_string(),
            band: r.band.clone(),
            score: r.score,
            key: r.key,
            labels: r.labels.clone(),
            rank: f.rank,
            abc: f.abc,
            share: f.share,
            profit_share: f.profit_share,
            revenue_share: f.revenue_share,
            cum_share: f.cum_share,
            revenue: a.revenue,
            gross_profit: a.gross_profit,
            wallet: a.wallet,
            sow,
            unallocated: a.wallet.map(|w| (w - a.revenue.unwrap_or(0.0)).max(0.0)),
            figures_source: a.figures_source,
            dependency: r.output(&s.output_names, "dependency").map(str::to_string),
            quadrant: r.output(&s.output_names, "quadrant").map(str::to_string),
            attractiveness: r.measure(&s.measure_names, "attractiveness"),
            strength: r.measure(&s.measure_names, "strength"),
            history: a.history.clone(),
            needs: a.needs.clone(),
            development_plans: a.development_plans.clone(),
            cell: a.origin.cell(0),
        }
    }

    /// The plan of one account.
    pub fn plan(&self, r: &AccountResult) -> PlanContext {
        let ds = self.ds;
        let a = &ds.accounts[r.index];
        let as_of = self.as_of;
        let why = why_of(&r.contributions);
        let mut rule_actions: Vec<String> = Vec::new();
        for c in &r.contributions {
            if c.outcome == Outcome::Matched {
                for x in c.actions.iter() {
                    if !rule_actions.contains(x) {
                        rule_actions.push(x.clone());
                    }
                }
            }
        }
        let threshold = param_num(self.rules, "relationship_threshold");
        let key_influence = param_num(self.rules, "key_person_influence");
        let mut dmu: Vec<Person> = self
            .index
            .contacts
            .of(r.index)
            .iter()
            .map(|&i| {
                let c = &ds.contacts[i as usize];
                let coverage = match (c.relationship, threshold) {
                    (None, _) => "not_known",
                    (Some(x), _) if x <= 0.0 => "none",
                    (Some(x), Some(t)) if x >= t => "in_depth",
                    (Some(_), _) => "partial",
                };
                let mut gaps = Vec::new();
                if c.role.is_none() {
                    gaps.push("role");
                }
                if c.birthday.is_none() {
                    gaps.push("birthday");
                }
                if c.hobbies.is_none() {
                    gaps.push("hobbies");
                }
                if c.family.is_none() {
                    gaps.push("family");
                }
                if c.values.is_none() {
                    gaps.push("values");
                }
                Person {
                    name: c.name.clone(),
                    role: c.role.clone(),
                    influence: c.influence,
                    relationship: c.relationship,
                    attitude: c.attitude.clone(),
                    coverage,
                    gaps,
                    cell: c.origin.cell(0),
                }
            })
            .collect();
        let is_key_person = |p: &Person| {
            matches!(p.role.as_deref(), Some("executive" | "vip" | "kol"))
                || matches!((p.influence, key_influence), (Some(i), Some(k)) if i >= k)
        };
        // Key people first, then by influence (highest first); ties keep workbook order.
        dmu.sort_by(|x, y| {
            is_key_person(y).cmp(&is_key_person(x)).then(
                y.influence
                    .unwrap_or(-1.0)
                    .partial_cmp(&x.influence.unwrap_or(-1.0))
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
        });
        let mut guidance = Vec::new();
        for p in &dmu {
            let g = match p.role.as_deref() {
                Some("executive" | "vip") => "guidance_executive",
                Some("hr") => "guidance_hr",
                Some("finance" | "technical" | "procurement") => "guidance_numbers",
                Some("kol") => "guidance_kol",
                _ => continue,
            };
            if !guidance.contains(&g) {
                guidance.push(g);
            }
        }
        let mut dossier_gaps = Vec::new();
        if a.history.is_none() {
            dossier_gaps.push("history");
        }
        if a.needs.is_none() {
            dossier_gaps.push("needs");
        }
        if a.development_plans.is_none() {
            dossier_gaps.push("development_plans");
        }
        if a.revenue.is_none() || a.gross_profit.is_none() {
            dossier_gaps.push("financials");
        }
        if a.wallet.is_none() {
            dossier_gaps.push("wallet");
        }
        let kam_plan = self.kam_plan(r.index, &a.id);
        let prep_months = param_num(self.rules, "tender_prep_months");
        let tenders: Vec<TenderView> = self
            .index
            .tenders
            .of(r.index)
            .iter()
            .map(|&i| {
                let t = &ds.tenders[i as usize];
                let prep_due = match (t.date, prep_months) {
                    (Some(d), Some(m)) => Some(add_months(d, -m)),
                    _ => None,
                };
                let late = match (prep_due, t.prep_start) {
                    (Some(due), Some(start)) => start > due,
                    (Some(due), None) => {
                        t.outcome.is_none_or(|o| o == "pending") && as_of.is_some_and(|x| x > due)
                    }
                    _ => false,
                };
                TenderView {
                    name: t.name.clone(),
                    date: t.date,
                    prep_due,
                    prep_start: t.prep_start,
                    late,
                    value: t.value,
                    outcome: t.outcome,
                    cell: t.origin.cell(0),
                }
            })
            .collect();
        let follow_days = param_num(self.rules, "follow_up_days");
        let expiring_days = param_num(self.rules, "proposal_expiring_days");
        let mut follow_ups = Vec::new();
        let mut expiring = Vec::new();
        let mut complaints = Vec::new();
        for &i in self.index.activities.of(r.index) {
            let x = &ds.activities[i as usize];
            match x.kind {
                "proposal" if x.confirmed.is_none() => {
                    let due = match (x.date, follow_days) {
                        (Some(d), Some(n)) => Some(add_business_days(d, n)),
                        _ => None,
                    };
                    let overdue = match (due, x.followed_up) {
                        (Some(due), Some(f)) => f > due,
                        (Some(due), None) => as_of.is_some_and(|t| t > due),
                        _ => false,
                    };
                    let days_left = match (x.expiry, as_of) {
                        (Some(e), Some(t)) => Some((e - t).floor()),
                        _ => None,
                    };
                    let view = |overdue| ProposalView {
                        date: x.date,
                        follow_up_due: due,
                        followed_up: x.followed_up,
                        overdue,
                        expiry: x.expiry,
                        days_left,
                        notes: x.notes.clone(),
                        cell: x.origin.cell(0),
                    };
                    if x.followed_up.is_none() || overdue {
                        follow_ups.push(view(overdue));
                    }
                    if let (Some(left), Some(limit)) = (days_left, expiring_days)
                        && left <= limit
                    {
                        expiring.push(view(overdue));
                    }
                }
                "complaint" => {
                    let days = match (x.date, x.resolved.or(as_of)) {
                        (Some(d), Some(e)) => Some((e - d).floor().max(0.0)),
                        _ => None,
                    };
                    complaints.push(ComplaintView {
                        date: x.date,
                        resolved: x.resolved,
                        days,
                        open: x.resolved.is_none(),
                        notes: x.notes.clone(),
                        cell: x.origin.cell(0),
                    });
                }
                _ => {}
            }
        }
        let share_now = r.facts.share;
        let changes = match self.previous {
            None => Changes::default(),
            Some(p) => match p.accounts.get(&a.id) {
                None => Changes {
                    known: true,
                    new: true,
                    ..Default::default()
                },
                Some(b) => Changes {
                    known: true,
                    new: false,
                    score_before: b.score,
                    band_before: b.band.clone(),
                    key_before: b.key,
                    dependency_before: b.dependency.clone(),
                    share_before: b.share,
                    share_delta: match (share_now, b.share) {
                        (Some(x), Some(y)) => Some(x - y),
                        _ => None,
                    },
                    score_delta: b.score.map(|s| r.score - s),
                },
            },
        };
        let review_next = match (as_of, param_num(self.rules, "plan_review_months")) {
            (Some(d), Some(m)) => Some(add_months(d, m)),
            _ => None,
        };
        let counts = Counts {
            follow_ups: follow_ups.len(),
            overdue_follow_ups: follow_ups.iter().filter(|p| p.overdue).count(),
            late_tenders: tenders.iter().filter(|t: &&TenderView| t.late).count(),
            open_complaints: complaints.iter().filter(|c| c.open).count(),
        };
        let next_actions = kam_plan
            .actions
            .iter()
            .filter(|a| !matches!(a.status, Some("done" | "cancelled")))
            .map(|a| NextAction {
                text: a.text.clone(),
                owner: a.owner.clone(),
                due: a.due,
                overdue: a.overdue,
            })
            .collect();
        PlanContext {
            account: self.account_view(r),
            why,
            errors: errors_of(&r.errors),
            rule_actions,
            quarters: a
                .quarters
                .iter()
                .map(|(q, f)| Quarter {
                    quarter: q.clone(),
                    revenue: f.revenue,
                    gross_profit: f.gross_profit,
                })
                .collect(),
            dmu,
            guidance,
            dossier_gaps,
            kam_plan,
            tenders,
            follow_ups,
            expiring,
            complaints,
            changes,
            review_next,
            counts,
            next_actions,
        }
    }

    fn kam_plan(&self, account: usize, id: &str) -> KamPlan {
        let ds = self.ds;
        let before = self.previous.and_then(|p| p.accounts.get(id));
        let mut plan = KamPlan::default();
        for &i in self.index.plans.of(account) {
            let p = &ds.plans[i as usize];
            let text = PlanText {
                text: p.text.clone(),
                cell: p.origin.cell(0),
            };
            plan.written = true;
            match p.kind {
                "objective" => plan.objectives.push(text),
                "strategy" => plan.strategies.push(text),
                "value_proposition" => plan.value_propositions.push(text),
                "strength" => plan.strengths.push(text),
                "weakness" => plan.weaknesses.push(text),
                "opportunity" => plan.opportunities.push(text),
                "threat" => plan.threats.push(text),
                _ => {
                    let previous_status = before.and_then(|b| {
                        b.actions
                            .iter()
                            .find(|x| x.text == p.text)
                            .map(|x| x.status.clone().unwrap_or_default())
                    });
                    let done = p.status == Some("done");
                    let done_since_previous =
                        done && previous_status.as_ref().is_some_and(|s| s != "done");
                    let overdue = !matches!(p.status, Some("done" | "cancelled"))
                        && matches!((p.due, self.as_of), (Some(d), Some(t)) if t > d);
                    plan.actions_done += done as usize;
                    plan.done_since_previous += done_since_previous as usize;
                    plan.actions.push(Action {
                        text: p.text.clone(),
                        owner: p.owner.clone(),
                        due: p.due,
                        status: p.status,
                        previous_status,
                        done_since_previous,
                        overdue,
                        cell: p.origin.cell(0),
                    });
                }
            }
        }
        // Open actions by due date (no date last); done and cancelled after them.
        plan.actions.sort_by(|x, y| {
            let closed = |a: &Action| matches!(a.status, Some("done" | "cancelled"));
            closed(x).cmp(&closed(y)).then(
                x.due
                    .unwrap_or(f64::INFINITY)
                    .partial_cmp(&y.due.unwrap_or(f64::INFINITY))
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
        });
        plan
    }
}

/// A metric in a review, as the template sees it (with `evidence`, its rows).
#[derive(Debug, Serialize)]
pub struct MetricView<'a> {
    /// Id.
    pub id: &'a str,
    /// What it means.
    pub description: &'a str,
    /// Value (none: not known).
    pub value: Option<f64>,
    /// Rows it rests on.
    pub rows: u32,
    /// Rows that could not be judged.
    pub not_known_rows: u32,
}

/// One evidence row.
#[derive(Debug, Serialize)]
pub struct EvidenceView<'a> {
    /// Cell (`Activities!A17`).
    pub cell: &'a str,
    /// Account id.
    pub account: &'a str,
    /// The finding on that row.
    pub reason: &'a str,
}

/// One of the classic mistakes, as the template sees it (with `evidence`, the rows of its
/// metrics).
#[derive(Debug, Serialize)]
pub struct MistakeView<'a> {
    /// Id.
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// observed, not_observed, not_known or error.
    pub status: &'static str,
    /// Why.
    pub reason: &'a str,
    /// Values seen.
    pub inputs: Vec<Named>,
}

/// An account's dossier in a review.
#[derive(Debug, Serialize)]
pub struct DossierView<'a> {
    /// Account id.
    pub account: &'a str,
    /// Account name.
    pub name: &'a str,
    /// Completeness (0–1), none when nothing to check.
    pub completeness: Option<f64>,
    /// What is missing.
    pub gaps: &'a [String],
    /// Source cell.
    pub cell: &'a str,
}

/// One deal of the pay breakdown.
#[derive(Debug, Serialize)]
pub struct PayView<'a> {
    /// Deal cell.
    pub cell: &'a str,
    /// Account id.
    pub account: &'a str,
    /// Date.
    pub date: Option<f64>,
    /// Rule applied (none: no rule applied).
    pub rule: Option<&'a str>,
    /// Base.
    pub base: Option<f64>,
    /// Rate.
    pub rate: Option<f64>,
    /// Amount.
    pub amount: Option<f64>,
    /// Why.
    pub reason: &'a str,
}

/// `view` as a template map with `key` added (an array already built, shared, not copied).
fn with_list(view: &impl Serialize, key: &'static str, list: tera::Value) -> tera::Value {
    let mut map = tera::Value::from_serializable(view)
        .into_map()
        .unwrap_or_default();
    map.insert(tera::value::Key::Str(key), list);
    tera::Value::from(map)
}

/// The KAM as a review shows it.
#[derive(Debug, Serialize)]
pub struct KamView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// The review file.
    pub link: Option<String>,
    /// Recorded D1–D4.
    pub level: Option<&'static str>,
    /// Rank.
    pub rank: usize,
    /// Of how many.
    pub of: usize,
    /// Score.
    pub score: f64,
    /// Band.
    pub band: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Accounts.
    pub accounts: usize,
    /// Company-level key accounts (from the key-client pack).
    pub key_accounts: Option<usize>,
    /// Load limit (`max_key_accounts_per_kam`).
    pub max_key_accounts: Option<f64>,
    /// Activities in / outside the period.
    pub activities_in_period: u32,
    /// Activities outside the period (ignored).
    pub activities_outside_period: u32,
    /// Tenders outside the period (ignored).
    pub tenders_outside_period: u32,
    /// Pay for the period.
    pub pay_total: Option<f64>,
    /// Source cell on the Managers sheet.
    pub cell: Option<String>,
}

/// The manager review of one KAM: the small parts serialised, the long lists (every evidence
/// row, deal and dossier: hundreds of thousands in a large run) built straight as template
/// values, without an owned copy of each row first.
#[derive(Debug, Serialize)]
pub struct ReviewContext {
    /// The KAM.
    pub kam: KamView,
    /// Period start, end and the last day of data.
    pub period_start: Option<f64>,
    /// Period end.
    pub period_end: Option<f64>,
    /// Outcome measures (the pack's measures), in order.
    pub outcomes: Vec<Named>,
    /// Table outputs (suggested level, style …).
    pub outputs: BTreeMap<String, Option<String>>,
    /// Metrics by id.
    pub metric: BTreeMap<String, usize>,
    /// Load flags from the key-client pack.
    pub flags: Vec<Named>,
    /// Metrics with no row to judge: stated as not known.
    pub data_gaps: Vec<String>,
    /// The rules that scored the KAM.
    pub why: Vec<Why>,
    /// Rule errors.
    pub errors: Vec<Named>,
    /// `metrics` (every metric in pack order, [`MetricView`] with its `evidence` rows),
    /// `mistakes` ([`MistakeView`] with the rows of its metrics), `dossier` ([`DossierView`])
    /// and `pay` ([`PayView`] deal by deal), as template values.
    #[serde(skip)]
    pub lists: Vec<(&'static str, tera::Value)>,
}

impl ReviewContext {
    /// The template context of the review.
    pub fn into_context(self) -> tera::TeraResult<tera::Context> {
        let mut c = tera::Context::from_serialize(&self)?;
        for (key, list) in self.lists {
            c.insert_value(key, list);
        }
        Ok(c)
    }
}

impl Inputs<'_> {
    /// The review of one KAM.
    pub fn review(&self, all: &KamScored, m: &ManagerResult) -> ReviewContext {
        use std::fmt::Write as _;
        use tera::Value;
        let ds = self.ds;
        let renderer = all.renderer(ds, &self.scored.accounts, m);
        // The cell from the sheet and line noted in the metric pass: the row itself is read
        // only for its finding. Cells and findings are written into two reused buffers.
        let (mut cell, mut reason) = (String::new(), String::new());
        let cell_of = |e: &crate::score::kams::Evidence, out: &mut String| {
            out.clear();
            let (sheet, line) = all.sheet_name(ds, e);
            let _ = crate::model::write_cell_ref(out, sheet, line, 0);
        };
        let defs = &self.rules.kam.metrics;
        let evidence: Vec<Value> = defs
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let evidence = &m.metrics[i].evidence;
                let rows: Vec<Value> = evidence
                    .iter()
                    .enumerate()
                    .map(|(j, e)| {
                        // The rows are scattered over the dataset: their records are asked
                        // for 16 rows ahead, the texts they point to 8 rows ahead.
                        if let Some(ahead) = evidence.get(j + 16) {
                            renderer.prefetch(ahead);
                        }
                        if let Some(ahead) = evidence.get(j + 8) {
                            renderer.prefetch_text(ahead);
                        }
                        cell_of(e, &mut cell);
                        reason.clear();
                        let _ = write!(reason, "{}", renderer.display(i, e));
                        Value::from_serializable(&EvidenceView {
                            cell: &cell,
                            account: all.account_id(ds, e.account as usize),
                            reason: &reason,
                        })
                    })
                    .collect();
                Value::from(rows)
            })
            .collect();
        let metrics: Vec<Value> = defs
            .iter()
            .zip(&m.metrics)
            .zip(&evidence)
            .map(|((def, mv), rows)| {
                let view = MetricView {
                    id: &def.id,
                    description: &def.description,
                    value: mv.value,
                    rows: mv.rows,
                    not_known_rows: mv.unknown,
                };
                with_list(&view, "evidence", rows.clone())
            })
            .collect();
        let mistakes: Vec<Value> = m
            .mistakes
            .iter()
            .map(|x| {
                let view = MistakeView {
                    id: &x.id,
                    title: &x.title,
                    status: match x.outcome {
                        Outcome::Matched => "observed",
                        Outcome::NotMatched => "not_observed",
                        Outcome::NotKnown => "not_known",
                        Outcome::Error => "error",
                    },
                    reason: &x.reason,
                    inputs: named_inputs(&x.inputs),
                };
                // The rows of the mistake's metrics, as the metrics show them: one metric's
                // list is shared, several are joined.
                let lists: Vec<&Value> =
                    x.evidence.iter().filter_map(|&i| evidence.get(i)).collect();
                let rows = match lists.as_slice() {
                    [one] => (*one).clone(),
                    _ => Value::from(
                        lists
                            .iter()
                            .flat_map(|l| l.as_array().unwrap_or_default().iter().cloned())
                            .collect::<Vec<Value>>(),
                    ),
                };
                with_list(&view, "evidence", rows)
            })
            .collect();
        let mut prefetch = all.dossier_prefetcher(ds, m.dossier.iter().map(|d| d.account));
        let dossier: Vec<Value> = m
            .dossier
            .iter()
            .map(|d| {
                prefetch();
                let a = &ds.accounts[d.account];
                cell.clear();
                let _ = crate::model::write_cell_ref(&mut cell, &a.origin.sheet, a.origin.row, 0);
                Value::from_serializable(&DossierView {
                    account: all.account_id(ds, d.account),
                    name: &a.name,
                    completeness: d.completeness,
                    gaps: &all.dossier_gaps(ds, d.account),
                    cell: &cell,
                })
            })
            .collect();
        let pay: Vec<Value> = m
            .pay
            .iter()
            .map(|p| {
                cell_of(&p.row, &mut cell);
                Value::from_serializable(&PayView {
                    cell: &cell,
                    account: all.account_id(ds, p.row.account as usize),
                    date: p.date,
                    rule: p.rule.as_deref(),
                    base: p.base,
                    rate: p.rate,
                    amount: p.amount,
                    reason: &p.reason,
                })
            })
            .collect();
        let kr = self.scored.kams.iter().find(|k| k.kam_id == m.kam_id);
        let v = &m.verdict;
        let kam = KamView {
            id: m.kam_id.clone(),
            name: m.name.clone(),
            link: self.review_links.get(&m.kam_id).cloned(),
            level: m.level,
            rank: m.rank,
            of: all.managers.len(),
            score: v.score,
            band: v.band.clone(),
            labels: v.labels.clone(),
            accounts: m.accounts,
            key_accounts: kr.map(|k| k.key_accounts),
            max_key_accounts: param_num(self.rules, "max_key_accounts_per_kam"),
            activities_in_period: m.activities_in_period,
            activities_outside_period: m.activities_outside_period,
            tenders_outside_period: m.tenders_outside_period,
            pay_total: m.pay_total,
            cell: m.origin.as_ref().map(|o| o.cell(0)),
        };
        ReviewContext {
            kam,
            period_start: all.period.start,
            period_end: all.period.end,
            outcomes: all
                .measure_names
                .iter()
                .zip(&v.measures)
                .map(|(n, x)| Named {
                    name: n.clone(),
                    value: opt_json_num(*x),
                })
                .collect(),
            outputs: all
                .output_names
                .iter()
                .zip(&v.outputs)
                .map(|(n, x)| (n.clone(), x.as_deref().map(str::to_string)))
                .collect(),
            metric: defs
                .iter()
                .enumerate()
                .map(|(i, x)| (x.id.clone(), i))
                .collect(),
            data_gaps: defs
                .iter()
                .zip(&m.metrics)
                .filter(|(_, x)| x.value.is_none())
                .map(|(d, _)| d.id.clone())
                .collect(),
            flags: kr
                .map(|k| {
                    k.flags
                        .iter()
                        .map(|f| Named {
                            name: f.flag.clone(),
                            value: Some(serde_json::json!(f.reason)),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            why: why_of(&v.contributions),
            errors: errors_of(&v.errors),
            lists: vec![
                ("metrics", Value::from(metrics)),
                ("mistakes", Value::from(mistakes)),
                ("dossier", Value::from(dossier)),
                ("pay", Value::from(pay)),
            ],
        }
    }
}

/// A count per class or band.
#[derive(Debug, Serialize)]
pub struct ClassRow {
    /// A, B, C or a band name.
    pub name: String,
    /// Accounts.
    pub accounts: usize,
    /// Revenue.
    pub revenue: f64,
    /// Gross profit.
    pub gross_profit: f64,
    /// Share of total revenue.
    pub revenue_share: Option<f64>,
    /// Share of total gross profit.
    pub profit_share: Option<f64>,
    /// Key band.
    pub key: bool,
    /// Plan band.
    pub plan: bool,
}

impl ClassRow {
    fn empty(name: &str, key: bool, plan: bool) -> ClassRow {
        ClassRow {
            name: name.to_string(),
            accounts: 0,
            revenue: 0.0,
            gross_profit: 0.0,
            revenue_share: None,
            profit_share: None,
            key,
            plan,
        }
    }
}

/// A KAM row of the portfolio.
#[derive(Debug, Serialize)]
pub struct KamRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Accounts.
    pub accounts: usize,
    /// Company-level key accounts.
    pub key_accounts: usize,
    /// Flags (load).
    pub flags: Vec<String>,
    /// KAM band, when a KAM pack ran.
    pub band: Option<String>,
    /// KAM score.
    pub score: Option<f64>,
    /// KAM rank.
    pub rank: Option<usize>,
    /// Review file.
    pub link: Option<String>,
}

/// Rejects per sheet.
#[derive(Debug, Serialize)]
pub struct RejectRow {
    /// Sheet.
    pub sheet: String,
    /// Rows dropped.
    pub rows: usize,
    /// Cells doubtful.
    pub cells: usize,
}

/// One change between runs.
#[derive(Debug, Serialize)]
pub struct Movement {
    /// Account id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Then.
    pub before: Option<String>,
    /// Now.
    pub after: Option<String>,
    /// Share delta.
    pub delta: Option<f64>,
    /// Plan file.
    pub link: Option<String>,
}

/// Movements against a previous run.
#[derive(Debug, Serialize, Default)]
pub struct Movements {
    /// A previous run was given.
    pub known: bool,
    /// Key now, not then (or new).
    pub new_key: Vec<Movement>,
    /// Key then, not now (or gone).
    pub lost_key: Vec<Movement>,
    /// Band changes.
    pub band_changes: Vec<Movement>,
    /// Dependency changes.
    pub dependency_changes: Vec<Movement>,
    /// Largest share changes (absolute), at most `movement_rows`.
    pub share_deltas: Vec<Movement>,
}

/// The key-account list against the practitioners' range.
#[derive(Debug, Serialize)]
pub struct KeyList {
    /// Key accounts.
    pub size: usize,
    /// Range low end (`key_list_min`).
    pub min: Option<f64>,
    /// Range high end (`key_list_max`).
    pub max: Option<f64>,
    /// Beyond this the effort is diluted (`key_list_dilute`).
    pub dilute: Option<f64>,
    /// below, within, above, diluted or not_known.
    pub verdict: &'static str,
}

/// The portfolio summary (also the index page's data).
#[derive(Debug, Serialize)]
pub struct PortfolioContext {
    /// The portfolio facts as in `scores.json`.
    pub portfolio: serde_json::Value,
    /// Key list size against the range.
    pub key_list: KeyList,
    /// ABC classes.
    pub abc: Vec<ClassRow>,
    /// Bands.
    pub bands: Vec<ClassRow>,
    /// Critical and mono-client dependencies, ranked, at most `summary_rows`.
    pub dependencies: Vec<AccountView>,
    /// Dependencies beyond `summary_rows`, not listed.
    pub dependencies_more: usize,
    /// Accounts with a plan (or key), ranked, at most `summary_rows`.
    pub key_accounts: Vec<AccountView>,
    /// Key accounts beyond `summary_rows`, not listed.
    pub key_accounts_more: usize,
    /// KAMs.
    pub kams: Vec<KamRow>,
    /// Rejects.
    pub rejects: Vec<RejectRow>,
    /// Rows dropped in all.
    pub rejected_rows: usize,
    /// Cells doubtful in all.
    pub rejected_cells: usize,
    /// Rule errors in all.
    pub rule_errors: usize,
    /// Movements against the previous run.
    pub movements: Movements,
    /// Inline SVG charts (matrix, pareto, shares).
    pub charts: BTreeMap<&'static str, String>,
    /// Accounts with a plan, ranked.
    pub planned: Vec<AccountView>,
    /// KAMs with a review, ranked.
    pub reviewed: Vec<KamRow>,
}

impl Inputs<'_> {
    /// The portfolio summary.
    pub fn portfolio(
        &self,
        portfolio_json: serde_json::Value,
        strings: &BTreeMap<String, String>,
        locale: super::locale::Locale,
    ) -> PortfolioContext {
        let ds = self.ds;
        let s = self.scored;
        let total_rev = s.portfolio.total_revenue;
        let total_gp = s.portfolio.total_gross_profit;
        let share_of = |x: f64, total: f64| (total > 0.0).then(|| x / total);
        let mut abc: Vec<ClassRow> = ["A", "B", "C"]
            .iter()
            .map(|c| ClassRow::empty(c, false, false))
            .collect();
        let mut bands: Vec<ClassRow> = self
            .rules
            .bands
            .iter()
            .map(|b| ClassRow::empty(&b.name, b.key, b.plan))
            .collect();
        for r in &s.accounts {
            let a = &ds.accounts[r.index];
            let (rev, gp) = (a.revenue.unwrap_or(0.0), a.gross_profit.unwrap_or(0.0));
            if let Some(c) = abc.iter_mut().find(|c| c.name == r.facts.abc) {
                c.accounts += 1;
                c.revenue += rev;
                c.gross_profit += gp;
            }
            if let Some(b) = bands.iter_mut().find(|b| b.name == r.band) {
                b.accounts += 1;
                b.revenue += rev;
                b.gross_profit += gp;
            }
        }
        for c in abc.iter_mut().chain(bands.iter_mut()) {
            c.revenue_share = share_of(c.revenue, total_rev);
            c.profit_share = share_of(c.gross_profit, total_gp);
        }
        let ranked: Vec<&AccountResult> = self.ranked().collect();
        // The account tables stop at `summary_rows` accounts (largest first); the rest are
        // counted (every account is in accounts.csv and scores.csv).
        let rows =
            param_num(self.rules, "summary_rows").map_or(usize::MAX, |x| x.max(0.0) as usize);
        let table = |keep: &dyn Fn(&AccountResult) -> bool| -> (Vec<AccountView>, usize) {
            let mut all = ranked.iter().filter(|r| keep(r));
            let shown = all
                .by_ref()
                .take(rows)
                .map(|r| self.account_view(r))
                .collect();
            (shown, all.count())
        };
        let (dependencies, dependencies_more) = table(&|r| {
            matches!(
                r.output(&s.output_names, "dependency"),
                Some("critical" | "mono")
            )
        });
        let (key_accounts, key_accounts_more) = table(&|r| r.key || r.plan);
        let size = s.accounts.iter().filter(|r| r.key).count();
        let (min, max, dilute) = (
            param_num(self.rules, "key_list_min"),
            param_num(self.rules, "key_list_max"),
            param_num(self.rules, "key_list_dilute"),
        );
        let n = size as f64;
        let verdict = match (min, max, dilute) {
            (_, _, Some(d)) if n > d => "diluted",
            (_, Some(hi), _) if n > hi => "above",
            (Some(lo), _, _) if n < lo => "below",
            (Some(_), Some(_), _) => "within",
            _ => "not_known",
        };
        let planned = ranked
            .iter()
            .filter(|r| self.plan_links.contains_key(&r.index))
            .map(|r| self.account_view(r))
            .collect();
        let managers = s.managers.as_ref();
        // Every KAM of the key-client pack, then every KAM reviewed, by rank.
        let kams: Vec<KamRow> = s
            .kams
            .iter()
            .map(|k| {
                let m = managers.and_then(|m| m.managers.iter().find(|x| x.kam_id == k.kam_id));
                self.kam_row(&k.kam_id, k.accounts, Some(k), m)
            })
            .collect();
        let mut reviewed: Vec<KamRow> = Vec::new();
        if let Some(all) = managers {
            let mut ms: Vec<&ManagerResult> = all.managers.iter().collect();
            ms.sort_by_key(|m| m.rank);
            for m in ms {
                let k = s.kams.iter().find(|k| k.kam_id == m.kam_id);
                reviewed.push(self.kam_row(&m.kam_id, m.accounts, k, Some(m)));
            }
        }
        let mut rejects: Vec<RejectRow> = Vec::new();
        for r in &ds.rejects {
            let row = match rejects.iter_mut().find(|x| x.sheet == r.sheet) {
                Some(x) => x,
                None => {
                    rejects.push(RejectRow {
                        sheet: r.sheet.clone(),
                        rows: 0,
                        cells: 0,
                    });
                    rejects.last_mut().expect("just pushed")
                }
            };
            match r.scope {
                RejectScope::Row => row.rows += 1,
                RejectScope::Cell => row.cells += 1,
            }
        }
        let rejected_rows = rejects.iter().map(|r| r.rows).sum();
        let rejected_cells = rejects.iter().map(|r| r.cells).sum();
        PortfolioContext {
            portfolio: portfolio_json,
            key_list: KeyList {
                size,
                min,
                max,
                dilute,
                verdict,
            },
            abc,
            bands,
            dependencies,
            dependencies_more,
            key_accounts,
            key_accounts_more,
            kams,
            rejects,
            rejected_rows,
            rejected_cells,
            rule_errors: s.error_count(),
            movements: self.movements(),
            charts: super::charts::all(self, strings, locale),
            planned,
            reviewed,
        }
    }

    /// A KAM's row: load and flags from the key-client pack, band, score and rank from the KAM
    /// pack when it ran.
    fn kam_row(
        &self,
        id: &str,
        accounts: usize,
        k: Option<&crate::score::KamResult>,
        m: Option<&ManagerResult>,
    ) -> KamRow {
        KamRow {
            id: id.to_string(),
            name: match m {
                Some(m) => m.name.clone(),
                None => self.index.kam_name(self.ds, id).map(str::to_string),
            },
            accounts,
            key_accounts: k.map_or(0, |k| k.key_accounts),
            flags: k
                .map(|k| k.flags.iter().map(|f| f.reason.clone()).collect())
                .unwrap_or_default(),
            band: m.map(|m| m.verdict.band.clone()),
            score: m.map(|m| m.verdict.score),
            rank: m.map(|m| m.rank),
            link: self.review_links.get(id).cloned(),
        }
    }

    /// The account results by rank on the share basis (ties in workbook order).
    pub fn ranked(&self) -> impl Iterator<Item = &AccountResult> + '_ {
        self.index.ranked(self.scored)
    }

    fn movements(&self) -> Movements {
        let Some(p) = self.previous else {
            return Movements::default();
        };
        let ds = self.ds;
        let s = self.scored;
        let mut m = Movements {
            known: true,
            ..Default::default()
        };
        let ranked: Vec<&AccountResult> = self.ranked().collect();
        let mut seen = std::collections::HashSet::new();
        let mut deltas = Vec::new();
        for r in &ranked {
            let a = &ds.accounts[r.index];
            seen.insert(a.id.as_str());
            let before = p.accounts.get(&a.id);
            let mv = |before: Option<String>, after: Option<String>, delta| Movement {
                id: a.id.clone(),
                name: a.name.clone(),
                before,
                after,
                delta,
                link: self.plan_links.get(&r.index).cloned(),
            };
            let was_key = before.and_then(|b| b.key).unwrap_or(false);
            if r.key && !was_key {
                m.new_key.push(mv(
                    before.and_then(|b| b.band.clone()),
                    Some(r.band.clone()),
                    None,
                ));
            }
            if !r.key && was_key {
                m.lost_key.push(mv(
                    before.and_then(|b| b.band.clone()),
                    Some(r.band.clone()),
                    None,
                ));
            }
            if let Some(b) = before {
                if b.band.as_deref() != Some(r.band.as_str()) {
                    m.band_changes
                        .push(mv(b.band.clone(), Some(r.band.clone()), None));
                }
                let dep = r.output(&s.output_names, "dependency").map(str::to_string);
                if b.dependency != dep {
                    m.dependency_changes
                        .push(mv(b.dependency.clone(), dep, None));
                }
                if let (Some(x), Some(y)) = (r.facts.share, b.share)
                    && x != y
                {
                    deltas.push(mv(None, None, Some(x - y)));
                }
            }
        }
        for (id, b) in &p.accounts {
            if !seen.contains(id.as_str()) && b.key == Some(true) {
                m.lost_key.push(Movement {
                    id: id.clone(),
                    name: b.name.clone().unwrap_or_default(),
                    before: b.band.clone(),
                    after: None,
                    delta: None,
                    link: None,
                });
            }
        }
        deltas.sort_by(|x, y| {
            let (a, b) = (x.delta.unwrap_or(0.0).abs(), y.delta.unwrap_or(0.0).abs());
            b.partial_cmp(&a)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(x.id.cmp(&y.id))
        });
        if let Some(limit) = param_num(self.rules, "movement_rows") {
            deltas.truncate(limit.max(0.0) as usize);
        }
        m.share_deltas = deltas;
        m
    }
}
