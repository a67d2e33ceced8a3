//! The trace of one account as text, for `kam explain`.

use std::fmt::Write;

use super::{AccountResult, Engine, Outcome, Scored};
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
    for c in &r.contributions {
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
