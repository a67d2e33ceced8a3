//! The parts of a rule pack that only KAM packs (`scope: kams`) have: metrics over the rows of a
//! KAM's sheets, the classic mistakes, the dossier standard and the pay rules. Their
//! measures, tables, criteria and bands are the same machinery as in account packs.

use super::file::{self, Cond};
use super::{Band, Criterion, Ctx, Measure, SExpr, Table, Template};
use crate::diag::{Span, did_you_mean};

/// The sheets a KAM metric can range over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Activities: meetings, calls, proposals, complaints, deals, letters, referrals.
    Activities,
    /// Contacts: the DMU of the KAM's accounts.
    Contacts,
    /// Tenders of the KAM's accounts.
    Tenders,
    /// The KAM's accounts.
    Accounts,
}

impl Source {
    /// All sources, in output order.
    pub const ALL: [Source; 4] = [
        Source::Activities,
        Source::Contacts,
        Source::Tenders,
        Source::Accounts,
    ];

    /// `activities`, `contacts`, `tenders` or `accounts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Activities => "activities",
            Source::Contacts => "contacts",
            Source::Tenders => "tenders",
            Source::Accounts => "accounts",
        }
    }

    fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How a metric aggregates its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Agg {
    /// Rows where the condition holds.
    Count(SExpr),
    /// Sum of the expression.
    Sum(SExpr),
    /// Average of the expression.
    Avg(SExpr),
    /// Smallest value.
    Min(SExpr),
    /// Largest value.
    Max(SExpr),
}

impl Agg {
    /// The expression.
    pub fn expr(&self) -> &SExpr {
        match self {
            Agg::Count(e) | Agg::Sum(e) | Agg::Avg(e) | Agg::Min(e) | Agg::Max(e) => e,
        }
    }

    /// Mutable expression (for binding).
    pub fn expr_mut(&mut self) -> &mut SExpr {
        match self {
            Agg::Count(e) | Agg::Sum(e) | Agg::Avg(e) | Agg::Min(e) | Agg::Max(e) => e,
        }
    }

    /// `count`, `sum`, `avg`, `min` or `max`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Agg::Count(_) => "count",
            Agg::Sum(_) => "sum",
            Agg::Avg(_) => "avg",
            Agg::Min(_) => "min",
            Agg::Max(_) => "max",
        }
    }
}

/// A per-KAM metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Id (and the name KAM rules read).
    pub id: String,
    /// The sheet.
    pub over: Source,
    /// Rows looked at.
    pub among: Option<SExpr>,
    /// The aggregate.
    pub agg: Agg,
    /// Value when no row could be judged.
    pub default: Option<f64>,
    /// Finding per counted row.
    pub finding: Option<Template>,
    /// Actions when some row is counted.
    pub actions: Vec<String>,
    /// What it means.
    pub description: String,
    /// Where it was declared.
    pub span: Span,
}

/// A classic mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Observed when this holds.
    pub when: SExpr,
    /// Metric ids whose rows are the evidence.
    pub evidence: Vec<String>,
    /// Message.
    pub reason: Template,
}

/// The dossier standard.
#[derive(Debug, Clone, PartialEq)]
pub struct Dossier {
    /// Accounts judged.
    pub among: Option<SExpr>,
    /// Account fields required.
    pub account: Vec<String>,
    /// Contact fields required.
    pub contact: Vec<String>,
    /// Where it was declared.
    pub span: Span,
}

/// A pay rule.
#[derive(Debug, Clone, PartialEq)]
pub struct PayRule {
    /// Id.
    pub id: String,
    /// When it applies.
    pub when: SExpr,
    /// The base.
    pub base: SExpr,
    /// The rate.
    pub rate: SExpr,
    /// Explanation.
    pub reason: Template,
}

/// Pay for the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Pay {
    /// The sheet of the deals.
    pub over: Source,
    /// Which rows are deals.
    pub among: SExpr,
    /// Rules, first that holds decides.
    pub rules: Vec<PayRule>,
}

/// Every KAM pack of a rules folder, combined.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KamRules {
    /// Metrics in order.
    pub metrics: Vec<Metric>,
    /// Mistakes in order.
    pub mistakes: Vec<Mistake>,
    /// Dossier standard.
    pub dossier: Option<Dossier>,
    /// Pay rules.
    pub pay: Option<Pay>,
    /// Measures in order.
    pub measures: Vec<Measure>,
    /// Tables in order.
    pub tables: Vec<Table>,
    /// Criteria in order.
    pub criteria: Vec<Criterion>,
    /// Bands in order.
    pub bands: Vec<Band>,
}

impl KamRules {
    /// True when no KAM pack was loaded.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
            && self.mistakes.is_empty()
            && self.dossier.is_none()
            && self.pay.is_none()
            && self.measures.is_empty()
            && self.tables.is_empty()
            && self.criteria.is_empty()
            && self.bands.is_empty()
    }
}

fn source(cx: &mut Ctx<'_>, over: &str, from: usize, what: &str) -> Option<Source> {
    let s = Source::parse(over);
    if s.is_none() {
        let hint = did_you_mean(over, Source::ALL.iter().map(|s| s.as_str()))
            .map(|s| format!("did you mean `{s}`?"));
        cx.error(
            format!(
                "{what}: `over` must be activities, contacts, tenders or accounts, not `{over}`"
            ),
            cx.span(over, from),
            hint,
        );
    }
    s
}

/// Compiles the KAM-only sections of a pack into `kam`; `defined` is the shared namespace.
pub(super) fn compile(
    cx: &mut Ctx<'_>,
    file: &file::PackFile,
    kam: &mut KamRules,
    defined: &mut std::collections::BTreeMap<String, Span>,
) {
    let mut ids: std::collections::HashSet<String> =
        kam.metrics.iter().map(|m| m.id.clone()).collect();
    for m in &file.metrics {
        let span = cx.span(&format!("id: {}", m.id), 1);
        let from = span.line;
        let what = format!("metric `{}`", m.id);
        if !ids.insert(m.id.clone()) {
            cx.error(
                format!("metric id `{}` is used twice", m.id),
                span.clone(),
                None,
            );
        }
        super::define(cx, defined, &m.id, span.clone(), "metric", true);
        let Some(over) = source(cx, &m.over, from, &what) else {
            continue;
        };
        let among = m.among.as_ref().and_then(|c| cx.cond(c, from, &what));
        let given: Vec<(&str, Option<file::Cond>)> = vec![
            ("count", m.count.clone()),
            ("sum", m.sum.clone().map(Cond::Expr)),
            ("avg", m.avg.clone().map(Cond::Expr)),
            ("min", m.min.clone().map(Cond::Expr)),
            ("max", m.max.clone().map(Cond::Expr)),
        ];
        let present: Vec<&(&str, Option<Cond>)> =
            given.iter().filter(|(_, c)| c.is_some()).collect();
        if present.len() != 1 {
            cx.error(
                format!("{what} needs exactly one of count, sum, avg, min or max"),
                span.clone(),
                None,
            );
            continue;
        }
        let (kind, cond) = present[0];
        let Some(e) = cx.cond(cond.as_ref().expect("present"), from, &what) else {
            continue;
        };
        let agg = match *kind {
            "count" => Agg::Count(e),
            "sum" => Agg::Sum(e),
            "avg" => Agg::Avg(e),
            "min" => Agg::Min(e),
            _ => Agg::Max(e),
        };
        if m.finding.is_some() && !matches!(agg, Agg::Count(_)) {
            cx.error(
                format!("{what}: a `finding` goes with `count` (one finding per counted row)"),
                cx.span("finding", from),
                None,
            );
        }
        let finding = m.finding.as_ref().map(|f| cx.template(f, from));
        kam.metrics.push(Metric {
            id: m.id.clone(),
            over,
            among,
            agg,
            default: m.default,
            finding,
            actions: m.actions.clone(),
            description: m.description.clone(),
            span,
        });
    }
    let mut mistake_ids: std::collections::HashSet<String> =
        kam.mistakes.iter().map(|m| m.id.clone()).collect();
    for m in &file.mistakes {
        let span = cx.span(&format!("id: {}", m.id), 1);
        if !mistake_ids.insert(m.id.clone()) {
            cx.error(
                format!("mistake id `{}` is used twice", m.id),
                span.clone(),
                None,
            );
        }
        let what = format!("mistake `{}`", m.id);
        let Some(when) = cx.cond(&m.when, span.line, &what) else {
            continue;
        };
        for e in &m.evidence {
            if !file.metrics.iter().any(|x| x.id == *e) && !kam.metrics.iter().any(|x| x.id == *e) {
                let names: Vec<&str> = kam.metrics.iter().map(|x| x.id.as_str()).collect();
                let hint =
                    did_you_mean(e, names.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                let from = cx.span("evidence:", span.line).line;
                cx.error(
                    format!("{what}: evidence names `{e}`, which is not a metric"),
                    cx.span(e, from),
                    hint,
                );
            }
        }
        kam.mistakes.push(Mistake {
            id: m.id.clone(),
            title: m.title.clone(),
            when,
            evidence: m.evidence.clone(),
            reason: cx.template(&m.reason, span.line),
        });
    }
    if let Some(d) = &file.dossier {
        let span = cx.span("dossier:", 1);
        if kam.dossier.is_some() {
            cx.error(
                "a second pack declares `dossier`; only one may",
                span.clone(),
                None,
            );
        }
        let among = d
            .among
            .as_ref()
            .and_then(|c| cx.cond(c, span.line, "the dossier"));
        for f in &d.account {
            if !crate::score::names::ACCOUNT_ROW.iter().any(|(n, _)| n == f) {
                let hint =
                    did_you_mean(f, crate::score::names::ACCOUNT_ROW.iter().map(|(n, _)| *n))
                        .map(|s| format!("did you mean `{s}`?"));
                cx.error(
                    format!("dossier: `{f}` is not an account field"),
                    cx.span(f, span.line),
                    hint,
                );
            }
        }
        for f in &d.contact {
            if !crate::score::names::CONTACT_ROW.iter().any(|(n, _)| n == f) {
                let hint =
                    did_you_mean(f, crate::score::names::CONTACT_ROW.iter().map(|(n, _)| *n))
                        .map(|s| format!("did you mean `{s}`?"));
                cx.error(
                    format!("dossier: `{f}` is not a contact field"),
                    cx.span(f, span.line),
                    hint,
                );
            }
        }
        kam.dossier = Some(Dossier {
            among,
            account: d.account.clone(),
            contact: d.contact.clone(),
            span,
        });
    }
    if let Some(p) = &file.pay {
        let span = cx.span("pay:", 1);
        if kam.pay.is_some() {
            cx.error(
                "a second pack declares `pay`; only one may",
                span.clone(),
                None,
            );
        }
        let over = source(cx, &p.over, span.line, "pay");
        let among = cx.cond(&p.among, span.line, "pay");
        let mut rules = Vec::new();
        for r in &p.rules {
            let rspan = cx.span(&format!("id: {}", r.id), span.line);
            let what = format!("pay rule `{}`", r.id);
            let when = cx.cond(&r.when, rspan.line, &what);
            let base = cx.expr(&r.base, rspan.line, &what);
            let rate = cx.num_or_expr(&r.rate, rspan.line, &what);
            if let (Some(when), Some(base), Some(rate)) = (when, base, rate) {
                rules.push(PayRule {
                    id: r.id.clone(),
                    when,
                    base,
                    rate,
                    reason: cx.template(&r.reason, rspan.line),
                });
            }
        }
        if let (Some(over), Some(among)) = (over, among) {
            kam.pay = Some(Pay { over, among, rules });
        }
    }
}
