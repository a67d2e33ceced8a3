//! The typed data model every stage after import works on.
//!
//! Import turns a workbook into a [`Dataset`]: accounts with their figures, and the child
//! records (contacts, activities, tenders, plans) that point at them by index. Every record
//! remembers the row it came from, so findings can cite `Activities!A17`.

pub mod prefetch;
pub mod schema;
pub mod value;

pub use schema::{FieldKind, FieldSpec, SheetKind};
pub use value::Value;

use std::collections::BTreeMap;

/// Where a record came from: the workbook sheet name and the 1-based row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The sheet's name as written in the workbook.
    pub sheet: std::sync::Arc<str>,
    /// 1-based row number.
    pub row: u32,
}

/// An [`Origin`]'s first cell, to print without building a string (`Activities!A17`).
pub struct RowCell<'a>(pub &'a Origin);

impl std::fmt::Display for RowCell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sheet = &self.0.sheet;
        if sheet.chars().any(|c| !c.is_alphanumeric() && c != '_') {
            write!(f, "'{}'!A{}", sheet.replace('\'', "''"), self.0.row)
        } else {
            write!(f, "{sheet}!A{}", self.0.row)
        }
    }
}

impl Origin {
    /// A cell reference such as `Transactions!G812` for a 0-based column.
    pub fn cell(&self, col: u32) -> String {
        cell_ref(&self.sheet, self.row, col)
    }
}

/// Formats a cell reference (`Sheet!B7`); quotes sheet names with spaces like Excel does.
pub fn cell_ref(sheet: &str, row: u32, col: u32) -> String {
    let mut s = String::new();
    let _ = write_cell_ref(&mut s, sheet, row, col);
    s
}

/// Writes [`cell_ref`]'s text to `w` without building a string.
pub fn write_cell_ref<W: std::fmt::Write + ?Sized>(
    w: &mut W,
    sheet: &str,
    row: u32,
    col: u32,
) -> std::fmt::Result {
    let needs_quotes = sheet.chars().any(|c| !c.is_alphanumeric() && c != '_');
    if needs_quotes {
        write!(
            w,
            "'{}'!{}{}",
            sheet.replace('\'', "''"),
            column_letters(col),
            row
        )
    } else {
        w.write_str(sheet)?;
        w.write_str("!")?;
        if col == 0 {
            w.write_str("A")?;
        } else {
            w.write_str(&column_letters(col))?;
        }
        w.write_str(itoa::Buffer::new().format(row))
    }
}

/// Spreadsheet column letters for a 0-based column index (0 → `A`, 27 → `AB`).
pub fn column_letters(col: u32) -> String {
    let mut n = col as u64 + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// Extra (non-canonical) columns of one sheet: their rule-visible names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraColumns {
    /// Normalised names (`strategic_fit`), in column order.
    pub names: Vec<String>,
}

/// Per-quarter sales figures of one account, netted (returns subtract).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Net revenue.
    pub revenue: f64,
    /// Net gross profit (only from lines where margin or cost is known).
    pub gross_profit: f64,
    /// Number of lines.
    pub lines: u32,
}

/// The value under `key` in a list of pairs kept sorted by key; a new key is inserted in its
/// place (made by `make`, with a default value).
pub fn sorted_entry<'v, K, Q, V>(
    list: &'v mut Vec<(K, V)>,
    key: &Q,
    make: impl FnOnce() -> K,
) -> &'v mut V
where
    K: std::borrow::Borrow<Q>,
    Q: Ord + ?Sized,
    V: Default,
{
    let at = match list.binary_search_by(|(k, _)| k.borrow().cmp(key)) {
        Ok(at) => at,
        Err(at) => {
            list.insert(at, (make(), V::default()));
            at
        }
    };
    &mut list[at].1
}

/// Adds `f` to quarter `label` of a list sorted by label.
///
/// A sorted vector and not a map: an account has a handful of quarters, and a tree's first
/// node alone takes over 500 bytes, half a gigabyte over a million accounts.
pub fn add_quarter(quarters: &mut Vec<(String, Figures)>, label: &str, f: &Figures) {
    let e = sorted_entry(quarters, label, || label.to_string());
    e.revenue += f.revenue;
    e.gross_profit += f.gross_profit;
    e.lines += f.lines;
}

/// A client.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Unique id.
    pub id: String,
    /// Name (the id when unknown).
    pub name: String,
    /// KAM id.
    pub kam_id: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Key level: company, manager or department.
    pub level: &'static str,
    /// Revenue for the period: stated, or derived from Transactions.
    pub revenue: Option<f64>,
    /// Gross profit for the period: stated, or derived from Transactions.
    pub gross_profit: Option<f64>,
    /// Where revenue and gross profit came from: `accounts` or `transactions`.
    pub figures_source: &'static str,
    /// Client's budget for our category.
    pub wallet: Option<f64>,
    /// Reference / well-known client.
    pub reference: Option<bool>,
    /// Brand standing score.
    pub brand_score: Option<f64>,
    /// Partnership openness score.
    pub partnership: Option<f64>,
    /// Competence score.
    pub competence: Option<f64>,
    /// Innovator flag.
    pub innovator: Option<bool>,
    /// Dossier: history.
    pub history: Option<String>,
    /// Dossier: needs.
    pub needs: Option<String>,
    /// Dossier: development plans.
    pub development_plans: Option<String>,
    /// Sales per quarter (`2026-Q1`), from Transactions, sorted by label (see
    /// [`add_quarter`]).
    pub quarters: Vec<(String, Figures)>,
    /// Extra columns, aligned with [`Dataset::account_extras`].
    pub extra: Vec<Value>,
    /// Source row (Accounts, or the first Transactions row for derived accounts).
    pub origin: Origin,
}

impl Account {
    /// An account with only an id, a name and its origin; everything else not known, key level
    /// `company`.
    pub fn new(id: String, name: String, origin: Origin) -> Account {
        Account {
            id,
            name,
            kam_id: None,
            industry: None,
            region: None,
            level: "company",
            revenue: None,
            gross_profit: None,
            figures_source: "accounts",
            wallet: None,
            reference: None,
            brand_score: None,
            partnership: None,
            competence: None,
            innovator: None,
            history: None,
            needs: None,
            development_plans: None,
            quarters: Vec::new(),
            extra: Vec::new(),
            origin,
        }
    }
}

/// A member of an account's decision-making unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Index into [`Dataset::accounts`].
    pub account: usize,
    /// Name.
    pub name: Option<String>,
    /// DMU role (canonical when recognised, else as written).
    pub role: Option<String>,
    /// Influence.
    pub influence: Option<f64>,
    /// Relationship strength.
    pub relationship: Option<f64>,
    /// Attitude towards us.
    pub attitude: Option<String>,
    /// Birthday.
    pub birthday: Option<f64>,
    /// Hobbies.
    pub hobbies: Option<String>,
    /// Family.
    pub family: Option<String>,
    /// Values.
    pub values: Option<String>,
    /// Last contact date.
    pub last_contact: Option<f64>,
    /// Extra columns, aligned with [`Dataset::contact_extras`].
    pub extra: Vec<Value>,
    /// Source row.
    pub origin: Origin,
}

/// One thing a KAM did.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// Index into [`Dataset::accounts`].
    pub account: usize,
    /// KAM (stated, else the account's KAM).
    pub kam_id: Option<String>,
    /// Canonical type: meeting, call, proposal, complaint, reference_letter, referral, deal.
    pub kind: &'static str,
    /// Date.
    pub date: Option<f64>,
    /// Planned start.
    pub planned_start: Option<f64>,
    /// Actual start.
    pub actual_start: Option<f64>,
    /// Agenda prepared.
    pub agenda: Option<bool>,
    /// Feedback: argued.
    pub argued: Option<bool>,
    /// Feedback: interrupted.
    pub interrupted: Option<bool>,
    /// Feedback: bad manners.
    pub bad_manners: Option<bool>,
    /// Next step agreed.
    pub next_step: Option<bool>,
    /// Proposal confirmed.
    pub confirmed: Option<f64>,
    /// Proposal followed up.
    pub followed_up: Option<f64>,
    /// Proposal expiry.
    pub expiry: Option<f64>,
    /// DMU roles addressed.
    pub dmu_roles: Option<String>,
    /// Complaint resolved.
    pub resolved: Option<f64>,
    /// Value.
    pub amount: Option<f64>,
    /// Margin.
    pub margin: Option<f64>,
    /// Notes.
    pub notes: Option<String>,
    /// Extra columns, aligned with [`Dataset::activity_extras`].
    pub extra: Vec<Value>,
    /// Source row.
    pub origin: Origin,
}

/// A tender.
#[derive(Debug, Clone, PartialEq)]
pub struct Tender {
    /// Index into [`Dataset::accounts`].
    pub account: usize,
    /// KAM.
    pub kam_id: Option<String>,
    /// Subject.
    pub name: Option<String>,
    /// Tender date.
    pub date: Option<f64>,
    /// Preparation start.
    pub prep_start: Option<f64>,
    /// Value.
    pub value: Option<f64>,
    /// won, lost, pending or cancelled.
    pub outcome: Option<&'static str>,
    /// Extra columns, aligned with [`Dataset::tender_extras`].
    pub extra: Vec<Value>,
    /// Source row.
    pub origin: Origin,
}

/// A key account manager.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// D1–D4.
    pub level: Option<&'static str>,
    /// Plan for the period.
    pub plan: Option<f64>,
    /// Product knowledge score.
    pub product_knowledge: Option<f64>,
    /// margin or deal.
    pub commission_basis: Option<&'static str>,
    /// Commission rate (fraction).
    pub commission_rate: Option<f64>,
    /// Extra columns (competency assessments …), aligned with [`Dataset::manager_extras`].
    pub extra: Vec<Value>,
    /// Source row.
    pub origin: Origin,
}

/// One item of a KAM's account plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    /// Index into [`Dataset::accounts`].
    pub account: usize,
    /// objective, strategy, value_proposition, strength, weakness, opportunity, threat, action.
    pub kind: &'static str,
    /// The KAM's words.
    pub text: String,
    /// Owner.
    pub owner: Option<String>,
    /// Due date.
    pub due: Option<f64>,
    /// Status of an action.
    pub status: Option<&'static str>,
    /// Extra columns, aligned with [`Dataset::plan_extras`].
    pub extra: Vec<Value>,
    /// Source row.
    pub origin: Origin,
}

/// Why a row or cell was not used as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reject {
    /// Workbook file name.
    pub file: String,
    /// Sheet name as written in the workbook.
    pub sheet: String,
    /// Cell reference (`Transactions!G812`), or the row (`Transactions!812:812`).
    pub cell: String,
    /// Canonical field, when one is concerned.
    pub field: String,
    /// The value as written.
    pub value: String,
    /// What happened and what to do, in plain words.
    pub reason: String,
    /// Whether the whole row was dropped (`row`) or only the cell left empty (`cell`).
    pub scope: RejectScope,
}

/// What a reject cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectScope {
    /// The row was not used.
    Row,
    /// The row was used; this cell was treated as empty.
    Cell,
}

impl RejectScope {
    /// `row` or `cell`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectScope::Row => "row",
            RejectScope::Cell => "cell",
        }
    }
}

/// How one sheet was read: for the import report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SheetReport {
    /// Canonical sheet.
    pub kind: Option<SheetKind>,
    /// Sheet name in the workbook.
    pub sheet: String,
    /// 1-based header row.
    pub header_row: u32,
    /// Column header → canonical field (or `extra:name`).
    pub columns: Vec<(String, String)>,
    /// Data rows seen.
    pub rows_seen: u64,
    /// Rows used.
    pub rows_used: u64,
    /// Rows rejected whole.
    pub rows_rejected: u64,
}

/// Everything imported from one workbook.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// The workbook's file name.
    pub file: String,
    /// The workbook's format (`xlsx`, `xlsb`, `xls`, `ods`).
    pub format: &'static str,
    /// Accounts, in workbook order.
    pub accounts: Vec<Account>,
    /// Names of extra Accounts columns.
    pub account_extras: ExtraColumns,
    /// Column (0-based) of each Accounts field and extra column, to cite cells.
    pub account_columns: BTreeMap<String, u32>,
    /// A merged dataset (`--merge`): the Accounts columns of each workbook whose layout differs
    /// from the first's, by origin sheet (`[south.xlsx]Accounts`).
    pub account_columns_by_sheet: BTreeMap<String, BTreeMap<String, u32>>,
    /// Contacts.
    pub contacts: Vec<Contact>,
    /// Names of extra Contacts columns.
    pub contact_extras: ExtraColumns,
    /// Activities.
    pub activities: Vec<Activity>,
    /// Names of extra Activities columns.
    pub activity_extras: ExtraColumns,
    /// Tenders.
    pub tenders: Vec<Tender>,
    /// Names of extra Tenders columns.
    pub tender_extras: ExtraColumns,
    /// Managers.
    pub managers: Vec<Manager>,
    /// Names of extra Managers columns.
    pub manager_extras: ExtraColumns,
    /// Plan items.
    pub plans: Vec<PlanItem>,
    /// Names of extra Plans columns.
    pub plan_extras: ExtraColumns,
    /// Transaction lines used.
    pub transaction_lines: u64,
    /// Rejected rows and cells, sorted by sheet order and row.
    pub rejects: Vec<Reject>,
    /// How each sheet was read.
    pub sheets: Vec<SheetReport>,
    /// Sheets of the workbook that kam did not recognise (name, reason).
    pub ignored_sheets: Vec<(String, String)>,
}

impl Dataset {
    /// Rows dropped whole (the other rejects are doubtful cells of rows that were used).
    pub fn rows_rejected(&self) -> usize {
        self.rejects
            .iter()
            .filter(|r| r.scope == RejectScope::Row)
            .count()
    }

    /// The column of an Accounts field or extra column in the sheet `account` came from.
    pub fn account_column(&self, account: &Account, name: &str) -> Option<u32> {
        match self.account_columns_by_sheet.get(&*account.origin.sheet) {
            Some(cols) => cols.get(name).copied(),
            None => self.account_columns.get(name).copied(),
        }
    }

    /// Index of the account with this id.
    pub fn account_index(&self, id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.id == id)
    }

    /// The value of an extra Accounts column by its rule-visible name.
    pub fn account_extra<'a>(&'a self, account: &'a Account, name: &str) -> Option<&'a Value> {
        let i = self.account_extras.names.iter().position(|n| n == name)?;
        account.extra.get(i).filter(|v| !v.is_empty())
    }
}

/// Row numbers of one sheet grouped by account, in row order: one offsets table and one row
/// list (a million accounts would otherwise make a million small lists).
#[derive(Debug, Clone, Default)]
pub struct RowsByAccount {
    start: Vec<u32>,
    rows: Vec<u32>,
}

impl RowsByAccount {
    /// Groups rows `0..` of a sheet by the account each belongs to (`n` accounts); `accounts`
    /// yields each row's account index, in row order.
    pub fn new(n: usize, accounts: impl Iterator<Item = usize> + Clone) -> RowsByAccount {
        let mut start = vec![0u32; n + 1];
        for a in accounts.clone() {
            start[a + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut rows = vec![0u32; start[n] as usize];
        for (row, a) in accounts.enumerate() {
            rows[next[a] as usize] = row as u32;
            next[a] += 1;
        }
        RowsByAccount { start, rows }
    }

    /// Starts loading where the rows of account `a` are listed (`list`: the list itself,
    /// once that is loaded). Only a hint (see the [`prefetch`] module).
    pub fn prefetch(&self, a: usize, list: bool) {
        match (list, self.start.get(a)) {
            (false, Some(s)) => prefetch::prefetch_line(s),
            (true, Some(&s)) => {
                prefetch::prefetch_line(self.rows.as_ptr().wrapping_add(s as usize))
            }
            _ => {}
        }
    }

    /// The rows of account `a`, in row order.
    pub fn of(&self, a: usize) -> &[u32] {
        &self.rows[self.start[a] as usize..self.start[a + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_account_keep_row_order_and_empty_accounts() {
        let g = RowsByAccount::new(4, [2usize, 0, 2, 3, 2].into_iter());
        // Hints for any account, listed or not, past the end or not, change nothing.
        for a in 0..8 {
            g.prefetch(a, false);
            g.prefetch(a, true);
        }
        assert_eq!(g.of(0), [1]);
        assert!(g.of(1).is_empty());
        assert_eq!(g.of(2), [0, 2, 4]);
        assert_eq!(g.of(3), [3]);
    }

    #[test]
    fn column_letters_follow_excel() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn cell_refs_quote_like_excel() {
        assert_eq!(cell_ref("Transactions", 812, 6), "Transactions!G812");
        assert_eq!(cell_ref("Sales 2026", 3, 0), "'Sales 2026'!A3");
    }

    #[test]
    fn quarters_stay_in_label_order_and_add_up() {
        let f = |revenue: f64| Figures {
            revenue,
            gross_profit: revenue / 2.0,
            lines: 1,
        };
        let mut q = Vec::new();
        for (label, x) in [
            ("undated", 1.0),
            ("2026-Q3", 2.0),
            ("2025-Q4", 4.0),
            ("2026-Q3", 8.0),
            ("2026-Q1", 16.0),
            ("undated", 32.0),
        ] {
            add_quarter(&mut q, label, &f(x));
        }
        let map: std::collections::BTreeMap<&str, (f64, f64, u32)> = [
            ("2025-Q4", (4.0, 2.0, 1)),
            ("2026-Q1", (16.0, 8.0, 1)),
            ("2026-Q3", (10.0, 5.0, 2)),
            ("undated", (33.0, 16.5, 2)),
        ]
        .into_iter()
        .collect();
        let got: Vec<(&str, (f64, f64, u32))> = q
            .iter()
            .map(|(l, x)| (l.as_str(), (x.revenue, x.gross_profit, x.lines)))
            .collect();
        assert_eq!(got, map.into_iter().collect::<Vec<_>>());
    }
}
