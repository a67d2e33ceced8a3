//! `kam run --merge`: several workbooks (regional exports of one company) as one portfolio.
//!
//! - Every record's origin names its workbook: `[north.xlsx]Accounts` row 5 prints as
//!   `'[north.xlsx]Accounts'!A5`, the way Excel cites a cell of another workbook.
//! - An account id found in several workbooks is one account. Sales figures summed from
//!   Transactions lines add up across the workbooks; the Accounts-sheet fields are taken from
//!   the first workbook that fills them in. A later row whose filled-in fields differ from the
//!   kept ones is a conflict: it is listed in the rejects with each differing field and the
//!   cell it conflicts with, and the first workbook's values are used.
//! - Managers are merged the same way by KAM id.
//! - Contacts, activities, tenders and plan items are all kept, pointing at the merged
//!   accounts; extra columns are the union of the workbooks' extra columns, by name.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{
    Account, Dataset, ExtraColumns, Manager, Origin, Reject, RejectScope, RowCell, SheetReport,
    Value,
};

/// An account or KAM id found in more than one workbook.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Duplicate {
    /// `account` or `kam`.
    pub kind: &'static str,
    /// The id.
    pub id: String,
    /// The row kept (the first workbook's).
    pub kept: String,
    /// The later row.
    pub row: String,
    /// Fields that differ, each as `field: kept value ≠ this value`; empty when the rows agree.
    pub conflicts: Vec<String>,
    /// Fields the first row left empty and this row filled in (used when the rows agree).
    pub filled: Vec<String>,
}

/// How two rows of one id compare.
#[derive(Default)]
struct Diff {
    conflicts: Vec<String>,
    filled: Vec<String>,
}

/// What merging found, for `import.json`, the manifest and the summary.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct MergeReport {
    /// The workbooks, in the order given.
    pub files: Vec<String>,
    /// Ids in more than one workbook.
    pub duplicates: Vec<Duplicate>,
}

impl MergeReport {
    /// Duplicates whose rows disagree.
    pub fn conflicts(&self) -> usize {
        self.duplicates
            .iter()
            .filter(|d| !d.conflicts.is_empty())
            .count()
    }
}

fn tagged(file: &str, sheet: &str) -> Arc<str> {
    Arc::from(format!("[{file}]{sheet}"))
}

fn retag(origin: &mut Origin, file: &str, cache: &mut HashMap<Arc<str>, Arc<str>>) {
    let t = cache
        .entry(origin.sheet.clone())
        .or_insert_with(|| tagged(file, &origin.sheet))
        .clone();
    origin.sheet = t;
}

/// Maps one workbook's extra values onto the union of names.
fn remap_extras(union: &mut ExtraColumns, part: &ExtraColumns) -> Vec<usize> {
    // By hash: a sheet may have thousands of extra columns.
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, u) in union.names.iter().enumerate() {
        at.entry(u.clone()).or_insert(i);
    }
    part.names
        .iter()
        .map(|n| match at.get(n) {
            Some(&i) => i,
            None => {
                union.names.push(n.clone());
                at.insert(n.clone(), union.names.len() - 1);
                union.names.len() - 1
            }
        })
        .collect()
}

fn place(values: Vec<Value>, map: &[usize]) -> Vec<Value> {
    let width = map.iter().map(|i| i + 1).max().unwrap_or(0);
    let mut out = vec![Value::Empty; width];
    for (v, &i) in values.into_iter().zip(map) {
        out[i] = v;
    }
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::Empty => String::new(),
        Value::Number(n) => crate::model::value::format_number(*n),
        Value::Text(t) => t.to_string(),
        Value::Symbol(s) => s.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Date(d) => crate::model::value::format_number(*d),
    }
}

/// Compares one optional field: fills the kept value in when it is empty; records a conflict
/// when both are filled in and differ.
fn field<T: PartialEq + Clone>(
    name: &str,
    kept: &mut Option<T>,
    other: &Option<T>,
    fmt: impl Fn(&T) -> String,
    fill: bool,
    d: &mut Diff,
) {
    match (kept.as_ref(), other) {
        (Some(a), Some(b)) if a != b => {
            d.conflicts.push(format!("{name}: {} ≠ {}", fmt(a), fmt(b)));
        }
        (None, Some(b)) => {
            d.filled.push(name.to_string());
            if fill {
                *kept = Some(b.clone());
            }
        }
        _ => {}
    }
}

/// Account fields compared between duplicates; `fill` writes the later row's values into
/// the kept account's empty fields.
fn compare_accounts(kept: &mut Account, other: &Account, fill: bool, c: &mut Diff) {
    let num = |v: &f64| crate::model::value::format_number(*v);
    let text = |v: &String| v.clone();
    let flag = |v: &bool| if *v { "yes" } else { "no" }.to_string();
    if kept.name != other.name {
        c.conflicts
            .push(format!("name: {} ≠ {}", kept.name, other.name));
    }
    if kept.level != other.level {
        c.conflicts
            .push(format!("level: {} ≠ {}", kept.level, other.level));
    }
    field("kam_id", &mut kept.kam_id, &other.kam_id, text, fill, c);
    field(
        "industry",
        &mut kept.industry,
        &other.industry,
        text,
        fill,
        c,
    );
    field("region", &mut kept.region, &other.region, text, fill, c);
    field("wallet", &mut kept.wallet, &other.wallet, num, fill, c);
    field(
        "reference",
        &mut kept.reference,
        &other.reference,
        flag,
        fill,
        c,
    );
    field(
        "brand_score",
        &mut kept.brand_score,
        &other.brand_score,
        num,
        fill,
        c,
    );
    field(
        "partnership",
        &mut kept.partnership,
        &other.partnership,
        num,
        fill,
        c,
    );
    field(
        "competence",
        &mut kept.competence,
        &other.competence,
        num,
        fill,
        c,
    );
    field(
        "innovator",
        &mut kept.innovator,
        &other.innovator,
        flag,
        fill,
        c,
    );
    field("history", &mut kept.history, &other.history, text, fill, c);
    field("needs", &mut kept.needs, &other.needs, text, fill, c);
    field(
        "development_plans",
        &mut kept.development_plans,
        &other.development_plans,
        text,
        fill,
        c,
    );
    // Figures written on the Accounts sheet are compared; figures summed from Transactions
    // lines are added up by the caller.
    if kept.figures_source == "accounts" && other.figures_source == "accounts" {
        field("revenue", &mut kept.revenue, &other.revenue, num, fill, c);
        field(
            "gross_profit",
            &mut kept.gross_profit,
            &other.gross_profit,
            num,
            fill,
            c,
        );
    }
}

fn compare_managers(kept: &mut Manager, other: &Manager, fill: bool, c: &mut Diff) {
    let num = |v: &f64| crate::model::value::format_number(*v);
    let text = |v: &String| v.clone();
    let sym = |v: &&'static str| v.to_string();
    field("name", &mut kept.name, &other.name, text, fill, c);
    field("region", &mut kept.region, &other.region, text, fill, c);
    field("level", &mut kept.level, &other.level, sym, fill, c);
    field("plan", &mut kept.plan, &other.plan, num, fill, c);
    field(
        "product_knowledge",
        &mut kept.product_knowledge,
        &other.product_knowledge,
        num,
        fill,
        c,
    );
    field(
        "commission_basis",
        &mut kept.commission_basis,
        &other.commission_basis,
        sym,
        fill,
        c,
    );
    field(
        "commission_rate",
        &mut kept.commission_rate,
        &other.commission_rate,
        num,
        fill,
        c,
    );
}

/// Extra columns compared by name (values already placed on the union's names).
fn compare_extras(
    names: &[String],
    kept: &mut Vec<Value>,
    other: &[Value],
    fill: bool,
    d: &mut Diff,
) {
    if kept.len() < other.len() {
        kept.resize(other.len(), Value::Empty);
    }
    for (i, b) in other.iter().enumerate() {
        let a = &kept[i];
        if b.is_empty() {
            continue;
        }
        if a.is_empty() {
            d.filled.push(names[i].clone());
            if fill {
                kept[i] = b.clone();
            }
        } else if a != b {
            d.conflicts
                .push(format!("{}: {} ≠ {}", names[i], show(a), show(b)));
        }
    }
}

/// A conflicting row as a reject, cited within its own workbook like import's rejects.
fn conflict_reject(file: &str, origin: &Origin, id: &str, kind: &str, d: &Duplicate) -> Reject {
    Reject {
        file: file.to_string(),
        sheet: origin.sheet.to_string(),
        cell: RowCell(origin).to_string(),
        field: "id".to_string(),
        value: id.to_string(),
        reason: format!(
            "{kind} {id} is also in {} with different values ({}): the first workbook's row is used; correct one of them",
            d.kept,
            d.conflicts.join("; ")
        ),
        scope: RejectScope::Row,
    }
}

/// A record that may stand in several workbooks under one id: an account or a KAM.
trait Mergeable: Clone {
    /// `account` or `kam` in `import.json`.
    const KIND: &'static str;
    /// How a reject names it.
    const LABEL: &'static str;
    fn id(&self) -> &str;
    fn origin(&self) -> &Origin;
    fn extra(&self) -> &[Value];
    fn extra_mut(&mut self) -> &mut Vec<Value>;
    /// Compares the fields (and fills the empty ones in when `fill`).
    fn compare(&mut self, other: &Self, fill: bool, d: &mut Diff);
}

/// Implements [`Mergeable`] for a record with `id`, `origin` and `extra` fields.
macro_rules! mergeable {
    ($t:ty, $kind:literal, $label:literal, $compare:ident) => {
        impl Mergeable for $t {
            const KIND: &'static str = $kind;
            const LABEL: &'static str = $label;
            fn id(&self) -> &str {
                &self.id
            }
            fn origin(&self) -> &Origin {
                &self.origin
            }
            fn extra(&self) -> &[Value] {
                &self.extra
            }
            fn extra_mut(&mut self) -> &mut Vec<Value> {
                &mut self.extra
            }
            fn compare(&mut self, other: &Self, fill: bool, d: &mut Diff) {
                $compare(self, other, fill, d)
            }
        }
    };
}

mergeable!(Account, "account", "account", compare_accounts);
mergeable!(Manager, "kam", "KAM", compare_managers);

/// A later row of an id already kept: when it agrees, it fills in what the kept row left
/// empty; when it does not, it is a reject (`plain` is its origin within its own workbook).
fn merge_duplicate<T: Mergeable>(
    kept: &mut T,
    other: &T,
    plain: &Origin,
    file: &str,
    extra_names: &[String],
    rejects: &mut Vec<Reject>,
) -> Duplicate {
    let mut diff = Diff::default();
    kept.clone().compare(other, false, &mut diff);
    let mut extra = kept.extra().to_vec();
    compare_extras(extra_names, &mut extra, other.extra(), false, &mut diff);
    let d = Duplicate {
        kind: T::KIND,
        id: other.id().to_string(),
        kept: RowCell(kept.origin()).to_string(),
        row: RowCell(other.origin()).to_string(),
        conflicts: diff.conflicts,
        filled: diff.filled,
    };
    if d.conflicts.is_empty() {
        let mut none = Diff::default();
        kept.compare(other, true, &mut none);
        compare_extras(
            extra_names,
            kept.extra_mut(),
            other.extra(),
            true,
            &mut none,
        );
    } else {
        rejects.push(conflict_reject(file, plain, other.id(), T::LABEL, &d));
    }
    d
}

/// Merges workbooks, in the order given, into one dataset; `parts` must not be empty.
pub fn merge(parts: Vec<Dataset>) -> (Dataset, MergeReport) {
    let mut report = MergeReport {
        files: parts.iter().map(|p| p.file.clone()).collect(),
        ..Default::default()
    };
    let formats: Vec<&'static str> = parts.iter().map(|p| p.format).collect();
    let mut out = Dataset {
        file: report.files.join(" + "),
        format: if formats.iter().all(|f| *f == formats[0]) {
            formats[0]
        } else {
            "mixed"
        },
        ..Default::default()
    };
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut kam_by_id: HashMap<String, usize> = HashMap::new();
    // Origins name the workbook by its file name, or by its path when two share a name.
    let names: Vec<String> = parts
        .iter()
        .map(|p| {
            std::path::Path::new(&p.file)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| p.file.clone())
        })
        .collect();
    let tags: Vec<String> = names
        .iter()
        .zip(&parts)
        .map(|(n, p)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                p.file.clone()
            } else {
                n.clone()
            }
        })
        .collect();
    for (part, tag) in parts.into_iter().zip(tags) {
        let file = part.file.clone();
        let mut cache = HashMap::new();
        let acc_map = remap_extras(&mut out.account_extras, &part.account_extras);
        let con_map = remap_extras(&mut out.contact_extras, &part.contact_extras);
        let act_map = remap_extras(&mut out.activity_extras, &part.activity_extras);
        let ten_map = remap_extras(&mut out.tender_extras, &part.tender_extras);
        let man_map = remap_extras(&mut out.manager_extras, &part.manager_extras);
        let plan_map = remap_extras(&mut out.plan_extras, &part.plan_extras);
        if out.account_columns.is_empty() {
            out.account_columns = part.account_columns.clone();
        } else if out.account_columns != part.account_columns
            && let Some(a) = part.accounts.first()
        {
            out.account_columns_by_sheet.insert(
                format!("[{tag}]{}", a.origin.sheet),
                part.account_columns.clone(),
            );
        }
        // Account index in this workbook → index in the merged dataset.
        let mut index = Vec::with_capacity(part.accounts.len());
        for mut a in part.accounts {
            let plain = a.origin.clone();
            retag(&mut a.origin, &tag, &mut cache);
            a.extra = place(std::mem::take(&mut a.extra), &acc_map);
            if let Some(&i) = by_id.get(&a.id) {
                index.push(i);
                let kept = &mut out.accounts[i];
                // Transaction sums add up whether or not the Accounts rows agree: the lines
                // themselves are used.
                if a.figures_source == "transactions" && kept.figures_source == "transactions" {
                    kept.revenue = add(kept.revenue, a.revenue);
                    kept.gross_profit = add(kept.gross_profit, a.gross_profit);
                    for (q, f) in &a.quarters {
                        crate::model::add_quarter(&mut kept.quarters, q, f);
                    }
                }
                let d = merge_duplicate(
                    kept,
                    &a,
                    &plain,
                    &file,
                    &out.account_extras.names,
                    &mut out.rejects,
                );
                report.duplicates.push(d);
            } else {
                by_id.insert(a.id.clone(), out.accounts.len());
                index.push(out.accounts.len());
                out.accounts.push(a);
            }
        }
        for mut m in part.managers {
            let plain = m.origin.clone();
            retag(&mut m.origin, &tag, &mut cache);
            m.extra = place(std::mem::take(&mut m.extra), &man_map);
            if let Some(&i) = kam_by_id.get(&m.id) {
                let d = merge_duplicate(
                    &mut out.managers[i],
                    &m,
                    &plain,
                    &file,
                    &out.manager_extras.names,
                    &mut out.rejects,
                );
                report.duplicates.push(d);
            } else {
                kam_by_id.insert(m.id.clone(), out.managers.len());
                out.managers.push(m);
            }
        }
        // Child records: their workbook in the origin, the merged account, the union's extras.
        macro_rules! children {
            ($from:ident, $map:ident) => {
                for mut r in part.$from {
                    retag(&mut r.origin, &tag, &mut cache);
                    r.account = index[r.account];
                    r.extra = place(std::mem::take(&mut r.extra), &$map);
                    out.$from.push(r);
                }
            };
        }
        children!(contacts, con_map);
        children!(activities, act_map);
        children!(tenders, ten_map);
        children!(plans, plan_map);
        out.transaction_lines += part.transaction_lines;
        out.rejects.extend(part.rejects);
        out.sheets
            .extend(part.sheets.into_iter().map(|s| SheetReport {
                sheet: format!("[{tag}]{}", s.sheet),
                ..s
            }));
        out.ignored_sheets.extend(
            part.ignored_sheets
                .into_iter()
                .map(|(s, why)| (format!("[{tag}]{s}"), why)),
        );
    }
    // Records of one workbook may have fewer extra values than the union has names.
    let pad = |v: &mut Vec<Value>, n: usize| v.resize(n.max(v.len()), Value::Empty);
    let n = out.account_extras.names.len();
    out.accounts.iter_mut().for_each(|a| pad(&mut a.extra, n));
    let n = out.contact_extras.names.len();
    out.contacts.iter_mut().for_each(|c| pad(&mut c.extra, n));
    let n = out.activity_extras.names.len();
    out.activities.iter_mut().for_each(|a| pad(&mut a.extra, n));
    let n = out.tender_extras.names.len();
    out.tenders.iter_mut().for_each(|t| pad(&mut t.extra, n));
    let n = out.manager_extras.names.len();
    out.managers.iter_mut().for_each(|m| pad(&mut m.extra, n));
    let n = out.plan_extras.names.len();
    out.plans.iter_mut().for_each(|p| pad(&mut p.extra, n));
    (out, report)
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}
