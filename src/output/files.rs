//! The files a run writes from an imported dataset: `rejects.csv`, `accounts.csv`,
//! `import.json` and `manifest.json`. Their columns are documented in `docs/outputs.md`.

use serde_json::json;

use super::neutralise;
use crate::error::{Error, Result};
use crate::model::value::format_number;
use crate::model::{Dataset, Value};

fn csv_error(e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("internal error while writing CSV: {e}"))
}

fn finish<W: std::io::Write>(w: csv::Writer<W>) -> Result<()> {
    let mut inner = w.into_inner().map_err(csv_error)?;
    inner
        .flush()
        .map_err(|e| Error::io("cannot write a CSV file", e))
}

/// `rejects.csv`: file, sheet, cell, field, value, scope, reason — one line per rejected row
/// or doubtful cell.
pub fn rejects_csv(out: impl std::io::Write, datasets: &[&Dataset]) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["file", "sheet", "cell", "field", "value", "scope", "reason"])
        .map_err(csv_error)?;
    for ds in datasets {
        for r in &ds.rejects {
            w.write_record([
                neutralise(&r.file).as_ref(),
                neutralise(&r.sheet).as_ref(),
                &r.cell,
                &r.field,
                neutralise(&r.value).as_ref(),
                r.scope.as_str(),
                neutralise(&r.reason).as_ref(),
            ])
            .map_err(csv_error)?;
        }
    }
    finish(w)
}

fn opt_num(v: Option<f64>) -> String {
    v.map(format_number).unwrap_or_default()
}

fn opt_bool(v: Option<bool>) -> String {
    v.map(|b| if b { "yes" } else { "no" }.to_string())
        .unwrap_or_default()
}

/// `accounts.csv`: every account as kam read it, with derived figures, child-row counts, the
/// source row and the extra columns.
pub fn accounts_csv(out: impl std::io::Write, ds: &Dataset) -> Result<()> {
    let mut contacts = vec![0u32; ds.accounts.len()];
    let mut activities = vec![0u32; ds.accounts.len()];
    let mut tenders = vec![0u32; ds.accounts.len()];
    let mut plans = vec![0u32; ds.accounts.len()];
    ds.contacts.iter().for_each(|c| contacts[c.account] += 1);
    ds.activities
        .iter()
        .for_each(|a| activities[a.account] += 1);
    ds.tenders.iter().for_each(|t| tenders[t.account] += 1);
    ds.plans.iter().for_each(|p| plans[p.account] += 1);
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = [
        "id",
        "name",
        "kam_id",
        "industry",
        "region",
        "level",
        "revenue",
        "gross_profit",
        "figures_source",
        "wallet",
        "reference",
        "brand_score",
        "partnership",
        "competence",
        "innovator",
        "contacts",
        "activities",
        "tenders",
        "plan_items",
        "source",
    ]
    .map(String::from)
    .to_vec();
    header.extend(ds.account_extras.names.iter().cloned());
    w.write_record(&header).map_err(csv_error)?;
    for (i, a) in ds.accounts.iter().enumerate() {
        let mut rec: Vec<String> = vec![
            neutralise(&a.id).into_owned(),
            neutralise(&a.name).into_owned(),
            a.kam_id
                .as_deref()
                .map(|s| neutralise(s).into_owned())
                .unwrap_or_default(),
            a.industry
                .as_deref()
                .map(|s| neutralise(s).into_owned())
                .unwrap_or_default(),
            a.region
                .as_deref()
                .map(|s| neutralise(s).into_owned())
                .unwrap_or_default(),
            a.level.to_string(),
            opt_num(a.revenue),
            opt_num(a.gross_profit),
            a.figures_source.to_string(),
            opt_num(a.wallet),
            opt_bool(a.reference),
            opt_num(a.brand_score),
            opt_num(a.partnership),
            opt_num(a.competence),
            opt_bool(a.innovator),
            contacts[i].to_string(),
            activities[i].to_string(),
            tenders[i].to_string(),
            plans[i].to_string(),
            a.origin.cell(0),
        ];
        for j in 0..ds.account_extras.names.len() {
            let v = a.extra.get(j).cloned().unwrap_or(Value::Empty);
            rec.push(neutralise(&v.to_string()).into_owned());
        }
        w.write_record(&rec).map_err(csv_error)?;
    }
    finish(w)
}

/// `import.json`: how each sheet was read (header row, column → field, row counts), which
/// sheets were ignored and why, and the totals.
pub fn import_json(ds: &Dataset) -> serde_json::Value {
    let rows_rejected = ds.rows_rejected();
    json!({
        "file": ds.file,
        "format": ds.format,
        "sheets": ds.sheets.iter().map(|s| json!({
            "kind": s.kind.map(|k| k.name()),
            "sheet": s.sheet,
            "header_row": s.header_row,
            "rows_seen": s.rows_seen,
            "rows_used": s.rows_used,
            "rows_rejected": s.rows_rejected,
            "columns": s.columns.iter().map(|(h, f)| json!({"header": h, "field": f})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "ignored_sheets": ds.ignored_sheets.iter().map(|(n, r)| json!({"sheet": n, "reason": r})).collect::<Vec<_>>(),
        "counts": {
            "accounts": ds.accounts.len(),
            "transaction_lines": ds.transaction_lines,
            "contacts": ds.contacts.len(),
            "activities": ds.activities.len(),
            "tenders": ds.tenders.len(),
            "managers": ds.managers.len(),
            "plan_items": ds.plans.len(),
            "rejected_rows": rows_rejected,
            "rejected_cells": ds.rejects.len() - rows_rejected,
        },
        "extra_columns": {
            "Accounts": ds.account_extras.names,
            "Contacts": ds.contact_extras.names,
            "Activities": ds.activity_extras.names,
            "Tenders": ds.tender_extras.names,
            "Managers": ds.manager_extras.names,
            "Plans": ds.plan_extras.names,
        },
    })
}

/// Pretty JSON with a trailing newline.
pub fn to_json_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s.into_bytes()
}
