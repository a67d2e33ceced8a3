//! The trace of one account as text, for `kam explain`.

use std::fmt::Write;

use super::kams::{KamEngine, KamScored, ManagerResult};
use super::{AccountResult, Engine, Outcome, Scored};
use crate::diag::count;
use crate::model::Dataset;
use crate::model::value::format_number;
use crate::rules::Compute;

fn pct(x: Option<f64>) -> String {
    x.map_or("not known".into(), |v| format!("{:.1} %", v * 100.0))
}

/// Renders the full trace of one account (scored with tracing on).
pub fn render(engine: &Engine, ds: &Dataset, scored: &Scored, r: &AccountResult) -> String {
    let a = &ds.accounts[r.index];
    let mut o = String::new();
    let _ = writeln!(o, "Account {} — {}", a.id, a.name);
    let _ = writeln!(
        o,
        "  KAM {}, key level {}, source {}",
        a.kam_id.as_deref().unwrap_or("not known"),
        a.level,
        a.origin.cell(0)
    );
    let _ = writeln!(
        o,
        "  revenue {}, gross profit {} (from {}), wallet {}",
        a.revenue.map_or("not known".into(), format_number),
        a.gross_profit.map_or("not known".into(), format_number),
        a.figures_source,
        a.wallet.map_or("not known".into(), format_number)
    );
    let f = &r.facts;
    let _ = writeln!(
        o,
        "\nPortfolio (basis {}): share {}, profit share {}, revenue share {}, rank {} of {}, cumulative before {}, class {}{}",
        scored.portfolio.basis,
        pct(f.share),
        pct(f.profit_share),
        pct(f.revenue_share),
        f.rank,
        scored.portfolio.accounts,
        pct(f.cum_share_before),
        f.abc,
        if f.abc == "A" && f.share.is_some() {
            " (Pareto set)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "\nScore {} → band {}{}{}",
        format_number(r.score),
        r.band,
        if r.key { ", key" } else { "" },
        if r.plan { ", gets an account plan" } else { "" }
    );
    let _ = writeln!(
        o,
        "Labels: {}",
        if r.labels.is_empty() {
            "none".to_string()
        } else {
            r.labels.join(", ")
        }
    );
    for (k, v) in scored.output_names.iter().zip(&r.outputs) {
        let _ = writeln!(o, "{k}: {}", v.as_deref().unwrap_or("not known"));
    }
    if !engine.rules().measures.is_empty() {
        let _ = writeln!(o, "\nMeasures");
        for m in &engine.rules().measures {
            let how = match &m.compute {
                Compute::Expr(e) => e.text.clone(),
                Compute::Lua(f, _) => format!("Lua {f}()"),
            };
            let v = r.measure(&scored.measure_names, &m.name);
            let _ = writeln!(
                o,
                "  {} = {}    ({how})",
                m.name,
                v.map_or("not known".into(), format_number)
            );
        }
    }
    let _ = writeln!(o, "\nRules");
    write_contributions(&mut o, &r.contributions);
    if !r.errors.is_empty() {
        let _ = writeln!(o, "\nErrors");
        for e in &r.errors {
            let _ = writeln!(o, "  {}: {}", e.rule, e.message);
        }
    }
    let _ = writeln!(o, "\nBands (first that applies)");
    let params: Vec<crate::expr::V<'_>> = engine
        .rules()
        .params
        .iter()
        .map(|p| super::param_v(&p.value))
        .collect();
    for b in &engine.logic().bands {
        let mut cond = Vec::new();
        if let Some(m) = &b.min_score
            && let Ok(v) = m.expr.eval(&|s| params[s].clone())
        {
            cond.push(format!("score ≥ {v}"));
        }
        if !b.labels.is_empty() {
            cond.push(format!("label {}", b.labels.join(" or ")));
        }
        if cond.is_empty() {
            cond.push("every other account".into());
        }
        let _ = writeln!(
            o,
            "  {}{}{}: {}",
            if b.name == r.band { "→ " } else { "  " },
            b.name,
            if b.key { " (key)" } else { "" },
            cond.join(" or ")
        );
    }
    o
}

fn write_contributions(o: &mut String, contributions: &[super::Contribution]) {
    for c in contributions {
        let mark = match c.outcome {
            Outcome::Matched => "[x]",
            Outcome::NotMatched => "[ ]",
            Outcome::NotKnown => "[?]",
            Outcome::Error => "[!]",
        };
        let mut head = format!("  {mark} {} ({}, {})", c.rule, c.kind, c.outcome.as_str());
        if c.points != 0.0 {
            let _ = write!(head, " {:+}", c.points);
        }
        if let Some(l) = &c.label {
            let _ = write!(head, " label {l}");
        }
        if let Some((k, v)) = &c.output {
            let _ = write!(head, " → {k} = {v}");
        }
        let _ = writeln!(o, "{head}");
        if !c.reason.is_empty() {
            let _ = writeln!(o, "      {}", c.reason);
        }
        if !c.inputs.is_empty() {
            let seen: Vec<String> = c.inputs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let _ = writeln!(o, "      saw: {}", seen.join(", "));
        }
        if !c.cells.is_empty() {
            let _ = writeln!(o, "      cells: {}", c.cells.join(", "));
        }
        for act in c.actions.iter() {
            let _ = writeln!(o, "      action: {act}");
        }
    }
}

fn num(x: Option<f64>) -> String {
    x.map_or("not known".into(), format_number)
}

/// Renders the full trace of one KAM (judged with tracing on).
pub fn render_kam(
    engine: &KamEngine,
    ds: &Dataset,
    accounts: &[AccountResult],
    all: &KamScored,
    m: &ManagerResult,
) -> String {
    let renderer = all.renderer(ds, accounts, m);
    use crate::model::value::format_date;
    let mut o = String::new();
    let p = &all.period;
    let _ = writeln!(
        o,
        "KAM {} — {}",
        m.kam_id,
        m.name.as_deref().unwrap_or("(not on the Managers sheet)")
    );
    let _ = writeln!(
        o,
        "  level recorded {}, {}, source {}",
        m.level.unwrap_or("not known"),
        count(m.accounts, "account", "accounts"),
        m.origin.as_ref().map_or("none".to_string(), |o| o.cell(0))
    );
    let span = match (p.start, p.end) {
        (Some(a), Some(b)) => format!("{} to {}", format_date(a), format_date(b)),
        _ => "all dates".to_string(),
    };
    let _ = writeln!(
        o,
        "  period {} ({span}; {}), data as of {}",
        p.label,
        p.source,
        p.as_of.map_or("not known".into(), format_date)
    );
    let _ = writeln!(
        o,
        "  {} in the period, {} outside it and {} outside it (ignored)",
        count(m.activities_in_period, "activity", "activities"),
        m.activities_outside_period,
        count(m.tenders_outside_period, "tender", "tenders")
    );
    let v = &m.verdict;
    let _ = writeln!(
        o,
        "\nScore {} → band {}, rank {} of {}",
        format_number(v.score),
        v.band,
        m.rank,
        all.managers.len()
    );
    let _ = writeln!(
        o,
        "Labels: {}",
        if v.labels.is_empty() {
            "none".to_string()
        } else {
            v.labels.join(", ")
        }
    );
    for (k, x) in all.output_names.iter().zip(&v.outputs) {
        let _ = writeln!(o, "{k}: {}", x.as_deref().unwrap_or("not known"));
    }
    let _ = writeln!(o, "\nMetrics (value, rows it rests on, rows not judgeable)");
    for (i, metric) in engine.rules().metrics.iter().enumerate() {
        let mv = &m.metrics[i];
        let _ = writeln!(
            o,
            "  {} = {}    ({} over {}; {}{})",
            metric.id,
            num(mv.value),
            metric.agg.as_str(),
            metric.over.as_str(),
            count(mv.rows, "row", "rows"),
            if mv.unknown > 0 {
                format!(", {} not known", mv.unknown)
            } else {
                String::new()
            }
        );
        for e in &mv.evidence {
            let _ = writeln!(o, "      {}: {}", e.cell(ds), renderer.reason(i, e));
        }
    }
    if !engine.logic().measures.is_empty() {
        let _ = writeln!(o, "\nMeasures");
        for (i, me) in engine.logic().measures.iter().enumerate() {
            let how = match &me.compute {
                Compute::Expr(e) => e.text.clone(),
                Compute::Lua(f, _) => format!("Lua {f}()"),
            };
            let _ = writeln!(o, "  {} = {}    ({how})", me.name, num(v.measures[i]));
        }
    }
    let _ = writeln!(o, "\nThe seven mistakes");
    for mi in &m.mistakes {
        let status = match mi.outcome {
            Outcome::Matched => "observed",
            Outcome::NotMatched => "not observed",
            Outcome::NotKnown => "not known",
            Outcome::Error => "error",
        };
        let _ = writeln!(o, "  {}: {status}", mi.title);
        if !mi.reason.is_empty() {
            let _ = writeln!(o, "      {}", mi.reason);
        }
        if !mi.inputs.is_empty() {
            let seen: Vec<String> = mi
                .inputs
                .iter()
                .map(|(k, x)| format!("{k} = {x}"))
                .collect();
            let _ = writeln!(o, "      saw: {}", seen.join(", "));
        }
        for &i in &mi.evidence {
            for e in &m.metrics[i].evidence {
                let _ = writeln!(o, "      {}: {}", e.cell(ds), renderer.reason(i, e));
            }
        }
    }
    if !m.dossier.is_empty() {
        let _ = writeln!(o, "\nDossiers");
        for d in &m.dossier {
            let a = &ds.accounts[d.account];
            let _ = writeln!(
                o,
                "  {} {} ({}): {}{}",
                a.id,
                a.name,
                d.cell(ds),
                d.completeness.map_or("not known".into(), |c| format!(
                    "{:.0} % complete",
                    c * 100.0
                )),
                {
                    let gaps = all.dossier_gaps(ds, d.account);
                    if gaps.is_empty() {
                        String::new()
                    } else {
                        format!("; missing {}", gaps.join("; "))
                    }
                }
            );
        }
    }
    let _ = writeln!(
        o,
        "\nPay for the period: {}",
        m.pay_total.map_or("no deal".into(), format_number)
    );
    for l in &m.pay {
        let _ = writeln!(
            o,
            "  {} {} {}: {} × {} = {}    [{}] {}",
            l.row.cell(ds),
            l.row.account(ds),
            l.date.map_or("(no date)".into(), format_date),
            num(l.base),
            num(l.rate),
            num(l.amount),
            l.rule.as_deref().unwrap_or("no rule"),
            l.reason
        );
    }
    let _ = writeln!(o, "\nRules");
    write_contributions(&mut o, &v.contributions);
    if !v.errors.is_empty() {
        let _ = writeln!(o, "\nErrors");
        for e in &v.errors {
            let _ = writeln!(o, "  {}: {}", e.rule, e.message);
        }
    }
    let _ = writeln!(o, "\nBands (first that applies)");
    let params = engine.param_values();
    for b in &engine.logic().bands {
        let mut conds = Vec::new();
        if let Some(m) = &b.min_score {
            conds.push(match m.expr.eval(&|s| params[s].clone()) {
                Ok(x) => format!("score ≥ {x}"),
                Err(_) => format!("score ≥ {}", m.text),
            });
        }
        if !b.labels.is_empty() {
            conds.push(format!("label {}", b.labels.join(" or ")));
        }
        let cond = if conds.is_empty() {
            "every other KAM".to_string()
        } else {
            conds.join(" or ")
        };
        let _ = writeln!(
            o,
            "  {}{}: {cond}",
            if b.name == v.band { "→ " } else { "  " },
            b.name
        );
    }
    o
}
