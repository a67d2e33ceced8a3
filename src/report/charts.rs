//! Inline SVG charts of the portfolio summary: the directional policy matrix, the Pareto curve
//! and the share bars. Every text in them is XML-escaped; they need no script and no network.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::context::{Inputs, param_num};
use super::locale::Locale;
use crate::score::AccountResult;

/// Escapes text for SVG/XML.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn s<'a>(strings: &'a BTreeMap<String, String>, key: &'a str) -> &'a str {
    strings.get(key).map(String::as_str).unwrap_or(key)
}

/// A centred red line of text saying why a chart is empty.
fn note(o: &mut String, x: f64, y: f64, text: &str) {
    let _ = write!(
        o,
        r##"<text x="{x}" y="{y}" font-size="12" text-anchor="middle" fill="#a00">{}</text>"##,
        xml(text)
    );
}

/// All charts, by name: `matrix`, `pareto`, `shares`.
pub fn all(
    inputs: &Inputs<'_>,
    strings: &BTreeMap<String, String>,
    locale: Locale,
) -> BTreeMap<&'static str, String> {
    let ranked: Vec<&AccountResult> = inputs.ranked().collect();
    let limit = param_num(inputs.rules, "chart_accounts")
        .unwrap_or(f64::INFINITY)
        .max(1.0);
    let mut charts = BTreeMap::new();
    charts.insert("matrix", matrix(inputs, &ranked, limit, strings));
    charts.insert("pareto", pareto(inputs, &ranked, strings, locale));
    charts.insert("shares", shares(inputs, &ranked, limit, strings, locale));
    charts
}

fn matrix(
    inputs: &Inputs<'_>,
    ranked: &[&AccountResult],
    limit: f64,
    strings: &BTreeMap<String, String>,
) -> String {
    let s_ = inputs.scored;
    let ds = inputs.ds;
    let mid = param_num(inputs.rules, "matrix_mid").unwrap_or(50.0);
    let (w, h, m) = (560.0, 480.0, 50.0);
    let (pw, ph) = (w - 2.0 * m, h - 2.0 * m);
    let x_of = |v: f64| m + pw * v.clamp(0.0, 100.0) / 100.0;
    let y_of = |v: f64| m + ph * (1.0 - v.clamp(0.0, 100.0) / 100.0);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        xml(s(strings, "chart_matrix"))
    );
    let _ = write!(
        o,
        r##"<rect x="{m}" y="{m}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>"##
    );
    let (mx, my) = (x_of(mid), y_of(mid));
    let _ = write!(
        o,
        r##"<line x1="{mx}" y1="{m}" x2="{mx}" y2="{}" stroke="#999" stroke-dasharray="4 3"/><line x1="{m}" y1="{my}" x2="{}" y2="{my}" stroke="#999" stroke-dasharray="4 3"/>"##,
        m + ph,
        m + pw
    );
    let quadrants = [
        ("chart_q_selective", m + 6.0, m + 16.0, "start"),
        ("chart_q_strategic", m + pw - 6.0, m + 16.0, "end"),
        ("chart_q_manage_for_cash", m + 6.0, m + ph - 8.0, "start"),
        ("chart_q_maintain", m + pw - 6.0, m + ph - 8.0, "end"),
    ];
    for (key, x, y, anchor) in quadrants {
        let _ = write!(
            o,
            r##"<text x="{x}" y="{y}" font-size="12" fill="#666" text-anchor="{anchor}">{}</text>"##,
            xml(s(strings, key))
        );
    }
    let _ = write!(
        o,
        r##"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"##,
        m + pw / 2.0,
        h - 12.0,
        xml(s(strings, "axis_strength"))
    );
    let _ = write!(
        o,
        r##"<text x="14" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"##,
        m + ph / 2.0,
        m + ph / 2.0,
        xml(s(strings, "axis_attractiveness"))
    );
    let chosen: Vec<&&AccountResult> = ranked
        .iter()
        .filter(|r| r.key || r.plan)
        .take(limit as usize)
        .collect();
    let max_gp = chosen
        .iter()
        .filter_map(|r| ds.accounts[r.index].gross_profit)
        .fold(0.0f64, f64::max);
    let mut plotted = 0;
    for r in &chosen {
        let (Some(a), Some(st)) = (
            r.measure(&s_.measure_names, "attractiveness"),
            r.measure(&s_.measure_names, "strength"),
        ) else {
            continue;
        };
        let acc = &ds.accounts[r.index];
        let gp = acc.gross_profit.unwrap_or(0.0).max(0.0);
        let radius = if max_gp > 0.0 {
            4.0 + 16.0 * (gp / max_gp).sqrt()
        } else {
            4.0
        };
        let (cx, cy) = (x_of(st), y_of(a));
        let _ = write!(
            o,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="{radius:.1}" fill="#3b6ea5" fill-opacity="0.45" stroke="#1d3b5c"><title>{} — {}</title></circle><text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"##,
            xml(&acc.id),
            xml(&acc.name),
            cy + 3.0,
            xml(&acc.id)
        );
        plotted += 1;
    }
    if plotted == 0 {
        note(
            &mut o,
            m + pw / 2.0,
            m + ph / 2.0,
            s(strings, "chart_matrix_empty"),
        );
    }
    o.push_str("</svg>");
    o
}

fn pareto(
    inputs: &Inputs<'_>,
    ranked: &[&AccountResult],
    strings: &BTreeMap<String, String>,
    locale: Locale,
) -> String {
    let (w, h, m) = (480.0, 300.0, 44.0);
    let (pw, ph) = (w - 2.0 * m, h - 2.0 * m);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        xml(s(strings, "chart_pareto"))
    );
    let _ = write!(
        o,
        r##"<rect x="{m}" y="{m}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>"##
    );
    let with_share: Vec<f64> = ranked.iter().filter_map(|r| r.facts.cum_share).collect();
    let n = with_share.len();
    if n == 0 {
        note(
            &mut o,
            m + pw / 2.0,
            m + ph / 2.0,
            s(strings, "chart_no_shares"),
        );
        o.push_str("</svg>");
        return o;
    }
    // At most about 400 points: every k-th account and the last.
    let step = n.div_ceil(400).max(1);
    let mut pts = format!("{m:.1},{:.1}", m + ph);
    for (i, c) in with_share.iter().enumerate() {
        if i % step == 0 || i + 1 == n {
            let x = m + pw * (i + 1) as f64 / n as f64;
            let y = m + ph * (1.0 - c.clamp(0.0, 1.0));
            let _ = write!(pts, " {x:.1},{y:.1}");
        }
    }
    let _ = write!(
        o,
        r##"<polyline points="{pts}" fill="none" stroke="#3b6ea5" stroke-width="2"/>"##
    );
    if let Some(a) = param_num(inputs.rules, "abc_a") {
        let y = m + ph * (1.0 - a.clamp(0.0, 1.0));
        let _ = write!(
            o,
            r##"<line x1="{m}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#c60" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#c60">{}</text>"##,
            m + pw,
            m + pw - 4.0,
            y - 4.0,
            xml(&locale.percent(a))
        );
    }
    let _ = write!(
        o,
        r##"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text><text x="14" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"##,
        m + pw / 2.0,
        h - 10.0,
        xml(&format!("{} ({n})", s(strings, "axis_accounts_ranked"))),
        m + ph / 2.0,
        m + ph / 2.0,
        xml(s(strings, "axis_cumulative_share"))
    );
    o.push_str("</svg>");
    o
}

fn shares(
    inputs: &Inputs<'_>,
    ranked: &[&AccountResult],
    limit: f64,
    strings: &BTreeMap<String, String>,
    locale: Locale,
) -> String {
    let ds = inputs.ds;
    let rows: Vec<(&str, f64)> = ranked
        .iter()
        .filter_map(|r| r.facts.share.map(|x| (ds.accounts[r.index].id.as_str(), x)))
        .take(limit as usize)
        .collect();
    let (w, bar_h, left, right) = (480.0, 18.0, 90.0, 70.0);
    let h = 20.0 + rows.len().max(1) as f64 * (bar_h + 4.0);
    let max = rows.iter().map(|(_, x)| *x).fold(0.0f64, f64::max);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        xml(s(strings, "chart_shares"))
    );
    if rows.is_empty() {
        note(&mut o, w / 2.0, 24.0, s(strings, "chart_no_shares"));
    }
    for (i, (id, x)) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * (bar_h + 4.0);
        let len = if max > 0.0 {
            (w - left - right) * (x.max(0.0) / max)
        } else {
            0.0
        };
        let _ = write!(
            o,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{len:.1}" height="{bar_h}" fill="#3b6ea5"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
            left - 6.0,
            y + 13.0,
            xml(id),
            left + len + 4.0,
            y + 13.0,
            xml(&locale.percent(*x))
        );
    }
    o.push_str("</svg>");
    o
}
