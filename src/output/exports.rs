//! Exports for spreadsheets: `scores.csv` (one row per account) and `scores.xlsx` (accounts,
//! managers and rejects sheets with frozen headers, filters, number formats and widths).
//! Text that came from the workbook is neutralised against formula injection in both.

use super::neutralise;
use super::xlsx::{self, Cells, Column, Kind};
use crate::error::{Error, Result};
use crate::model::Dataset;
use crate::score::kams::ManagerResult;
use crate::score::{AccountResult, Scored};

fn col(name: &str, kind: Kind, width: f64) -> Column {
    Column {
        name: name.to_string(),
        kind,
        width,
    }
}

fn account_columns(s: &Scored) -> Vec<Column> {
    let mut cols = vec![
        col("id", Kind::Text, 12.0),
        col("name", Kind::Text, 30.0),
        col("kam_id", Kind::Text, 10.0),
        col("level", Kind::Code, 11.0),
        col("band", Kind::Code, 12.0),
        col("score", Kind::Num, 8.0),
        col("key", Kind::Code, 6.0),
        col("plan", Kind::Code, 6.0),
        col("labels", Kind::Code, 28.0),
    ];
    for n in &s.output_names {
        cols.push(col(n, Kind::Code, 14.0));
    }
    cols.extend([
        col("abc", Kind::Code, 5.0),
        col("rank", Kind::Num, 7.0),
        col("share", Kind::Share, 9.0),
        col("profit_share", Kind::Share, 9.0),
        col("revenue_share", Kind::Share, 9.0),
        col("cum_share", Kind::Share, 9.0),
        col("revenue", Kind::Money, 14.0),
        col("gross_profit", Kind::Money, 14.0),
        col("wallet", Kind::Money, 14.0),
    ]);
    for n in &s.measure_names {
        cols.push(col(n, Kind::Num, 12.0));
    }
    cols.extend([
        col("errors", Kind::Num, 7.0),
        col("source", Kind::Code, 14.0),
    ]);
    cols
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn account_row(ds: &Dataset, r: &AccountResult, c: &mut dyn Cells) {
    let a = &ds.accounts[r.index];
    let f = &r.facts;
    c.text(&a.id);
    c.text(&a.name);
    c.text(a.kam_id.as_deref().unwrap_or_default());
    c.text(a.level);
    c.text(&r.band);
    c.num(Some(r.score));
    c.text(yes_no(r.key));
    c.text(yes_no(r.plan));
    match r.labels.as_slice() {
        [one] => c.text(one),
        labels => c.text(&labels.join(" ")),
    }
    for o in &r.outputs {
        c.text(o.as_deref().unwrap_or_default());
    }
    c.text(f.abc);
    c.num(Some(f.rank as f64));
    c.num(f.share);
    c.num(f.profit_share);
    c.num(f.revenue_share);
    c.num(f.cum_share);
    c.num(a.revenue);
    c.num(a.gross_profit);
    c.num(a.wallet);
    for m in &r.measures {
        c.num(*m);
    }
    c.num(Some(r.errors.len() as f64));
    c.text(&a.origin.cell(0));
}

fn manager_columns(s: &Scored) -> Vec<Column> {
    let mut cols = vec![
        col("kam_id", Kind::Text, 10.0),
        col("name", Kind::Text, 24.0),
        col("rank", Kind::Num, 6.0),
        col("band", Kind::Code, 14.0),
        col("score", Kind::Num, 8.0),
        col("level", Kind::Code, 7.0),
        col("labels", Kind::Code, 28.0),
    ];
    if let Some(m) = &s.managers {
        for n in &m.output_names {
            cols.push(col(n, Kind::Code, 14.0));
        }
        for n in &m.measure_names {
            cols.push(col(n, Kind::Num, 12.0));
        }
    }
    cols.extend([
        col("accounts", Kind::Num, 9.0),
        col("key_accounts", Kind::Num, 9.0),
        col("activities_in_period", Kind::Num, 10.0),
        col("activities_outside_period", Kind::Num, 10.0),
        col("pay_total", Kind::Money, 12.0),
        col("errors", Kind::Num, 7.0),
        col("source", Kind::Code, 14.0),
    ]);
    cols
}

/// The KAMs in rank order.
fn ranked_managers(s: &Scored) -> Vec<&ManagerResult> {
    let mut ranked: Vec<_> = s.managers.iter().flat_map(|m| &m.managers).collect();
    ranked.sort_by_key(|k| k.rank);
    ranked
}

fn manager_row(s: &Scored, k: &ManagerResult, c: &mut dyn Cells) {
    let v = &k.verdict;
    c.text(&k.kam_id);
    c.text(k.name.as_deref().unwrap_or_default());
    c.num(Some(k.rank as f64));
    c.text(&v.band);
    c.num(Some(v.score));
    c.text(k.level.unwrap_or_default());
    c.text(&v.labels.join(" "));
    for o in &v.outputs {
        c.text(o.as_deref().unwrap_or_default());
    }
    for x in &v.measures {
        c.num(*x);
    }
    let key = s
        .kams
        .iter()
        .find(|x| x.kam_id == k.kam_id)
        .map(|x| x.key_accounts as f64);
    c.num(Some(k.accounts as f64));
    c.num(key);
    c.num(Some(k.activities_in_period as f64));
    c.num(Some(k.activities_outside_period as f64));
    c.num(k.pay_total);
    c.num(Some(v.errors.len() as f64));
    c.text(&k.origin.as_ref().map(|o| o.cell(0)).unwrap_or_default());
}

fn reject_columns() -> Vec<Column> {
    vec![
        col("file", Kind::Text, 20.0),
        col("sheet", Kind::Text, 14.0),
        col("cell", Kind::Text, 16.0),
        col("field", Kind::Code, 16.0),
        col("value", Kind::Text, 24.0),
        col("scope", Kind::Code, 6.0),
        col("reason", Kind::Text, 80.0),
    ]
}

fn reject_row(ds: &Dataset, i: usize, c: &mut dyn Cells) {
    let r = &ds.rejects[i];
    c.text(&r.file);
    c.text(&r.sheet);
    c.text(&r.cell);
    c.text(&r.field);
    c.text(&r.value);
    c.text(r.scope.as_str());
    c.text(&r.reason);
}

/// One CSV record: user text neutralised, numbers as kam prints them.
struct CsvRow<'a> {
    w: &'a mut csv::Writer<Vec<u8>>,
    cols: &'a [Column],
    col: usize,
    failed: Option<csv::Error>,
    /// Where a number is written before it becomes a field (reused from row to row).
    number: &'a mut String,
}

impl CsvRow<'_> {
    fn field(&mut self, bytes: &[u8]) {
        if let Err(e) = self.w.write_field(bytes) {
            self.failed.get_or_insert(e);
        }
        self.col += 1;
    }
}

impl Cells for CsvRow<'_> {
    fn text(&mut self, text: &str) {
        match self.cols.get(self.col) {
            Some(c) if c.kind == Kind::Text => self.field(neutralise(text).as_bytes()),
            _ => self.field(text.as_bytes()),
        }
    }

    fn num(&mut self, value: Option<f64>) {
        match value {
            None => self.field(b""),
            Some(x) => {
                let mut n = std::mem::take(self.number);
                n.clear();
                let _ = crate::model::value::write_number(&mut n, x);
                self.field(n.as_bytes());
                *self.number = n;
            }
        }
    }
}

/// Rows per chunk of `scores.csv` formatted as one piece of work.
const CSV_CHUNK: usize = 8192;

/// `scores.csv`: one row per account, in workbook order, the same columns as the Accounts sheet
/// of `scores.xlsx`. Chunks of rows are formatted on the worker threads and written in order
/// while the next ones are formatted.
pub fn scores_csv(mut out: impl std::io::Write + Send, ds: &Dataset, s: &Scored) -> Result<()> {
    let cols = account_columns(s);
    let err = |e: csv::Error| Error::Usage(format!("internal error while writing CSV: {e}"));
    let io = |e: std::io::Error| Error::io("cannot write scores.csv", e);
    let mut header = csv::Writer::from_writer(Vec::new());
    header
        .write_record(cols.iter().map(|c| c.name.as_str()))
        .map_err(err)?;
    out.write_all(
        &header
            .into_inner()
            .map_err(|e| err(e.into_error().into()))?,
    )
    .map_err(io)?;
    let chunks: Vec<&[AccountResult]> = s.accounts.chunks(CSV_CHUNK).collect();
    let render = |rows: &&[AccountResult]| -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200));
        let mut number = String::new();
        for r in rows.iter() {
            let mut row = CsvRow {
                w: &mut w,
                cols: &cols,
                col: 0,
                failed: None,
                number: &mut number,
            };
            account_row(ds, r, &mut row);
            if let Some(e) = row.failed {
                return Err(err(e));
            }
            w.write_record(None::<&[u8]>).map_err(err)?;
        }
        w.into_inner().map_err(|e| err(e.into_error().into()))
    };
    let window = rayon::current_num_threads().max(1) * 2;
    super::pipelined(&chunks, window, &render, &mut |p| {
        out.write_all(&p?).map_err(io)
    })?;
    out.flush().map_err(io)
}

/// `scores.xlsx`: Accounts, Managers (when a KAM pack ran) and Rejects sheets, with frozen
/// headers, filters, number formats and widths.
pub fn scores_xlsx(
    out: impl std::io::Write + std::io::Seek + Send,
    ds: &Dataset,
    s: &Scored,
) -> Result<()> {
    let accounts = account_columns(s);
    let account = |i: usize, c: &mut dyn Cells| account_row(ds, &s.accounts[i], c);
    let mut sheets = vec![xlsx::Sheet {
        name: "Accounts",
        columns: &accounts,
        rows: s.accounts.len(),
        row: &account,
    }];
    let managers = manager_columns(s);
    let ranked = ranked_managers(s);
    let manager = |i: usize, c: &mut dyn Cells| manager_row(s, ranked[i], c);
    if s.managers.is_some() {
        sheets.push(xlsx::Sheet {
            name: "Managers",
            columns: &managers,
            rows: ranked.len(),
            row: &manager,
        });
    }
    let rejects = reject_columns();
    let reject = |i: usize, c: &mut dyn Cells| reject_row(ds, i, c);
    sheets.push(xlsx::Sheet {
        name: "Rejects",
        columns: &rejects,
        rows: ds.rejects.len(),
        row: &reject,
    });
    // Level 2: the level chosen when rust_xlsxwriter wrote this file (100 000 accounts: about
    // 18 % larger than level 6 and 40 % faster).
    xlsx::write(out, &sheets, 2)
        .map(drop)
        .map_err(|e| Error::io("cannot write scores.xlsx", e))
}
