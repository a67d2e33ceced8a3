//! Import: a workbook (any layout kam can recognise or a mapping file describes) becomes a
//! [`Dataset`]. Nothing is lost: every row is used or listed in the rejects with its cell and
//! a reason, and every doubtful cell is listed too.

pub mod biff;
pub mod book;
pub mod cells;
pub mod mapping;
pub mod merge;
mod pending;
pub mod sheet;
pub mod xlsx;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::diag::{Diagnostic, did_you_mean};
use crate::error::{Error, Result};
use crate::model::schema::{SheetKind, normalize_key};
use crate::model::value::{quarter_index, quarter_label};
use crate::model::{
    Account, Activity, Contact, Dataset, ExtraColumns, Figures, Manager, PlanItem, Reject,
    RejectScope, Tender, cell_ref,
};
pub use book::{Book, Format};
pub use mapping::Mapping;
use pending::{Ids, Pending};
use rayon::prelude::*;
use sheet::{Outcome, Row, read_sheet};

/// Account id → index in Accounts. ahash with a random seed: several times faster than SipHash
/// on a million ids, and still keyed per process against crafted collisions.
pub(crate) type IdIndex = HashMap<String, usize, ahash::RandomState>;

/// Collects rejects; with `fail_fast` the first one stops the run.
#[derive(Debug, Default)]
pub struct Rejects {
    /// The workbook's file name.
    pub file: String,
    /// What was rejected so far.
    pub list: Vec<Reject>,
    /// Stop at the first reject.
    pub fail_fast: bool,
}

impl Rejects {
    /// Records a reject; returns an error when `fail_fast` is set.
    pub fn push(
        &mut self,
        sheet: &str,
        cell: String,
        field: &str,
        value: impl Into<String>,
        reason: impl Into<String>,
        scope: RejectScope,
    ) -> Result<()> {
        let reject = Reject {
            file: self.file.clone(),
            sheet: sheet.to_string(),
            cell,
            field: field.to_string(),
            value: value.into(),
            reason: reason.into(),
            scope,
        };
        if self.fail_fast {
            return Err(Error::FailFast(format!(
                "{}: {}: {}",
                reject.file, reject.cell, reject.reason
            )));
        }
        self.list.push(reject);
        Ok(())
    }
}

/// How to import.
pub struct ImportOptions<'a> {
    /// A mapping file for this workbook.
    pub mapping: Option<&'a Mapping>,
    /// Stop at the first reject.
    pub fail_fast: bool,
    /// Called with (sheet, rows read so far) as a sheet is read.
    pub progress: &'a (dyn Fn(&str, u64) + Sync),
    /// Read the sheets on several readers at once, one per core (2 to 4); the results are
    /// the same as with one.
    pub parallel: bool,
}

impl Default for ImportOptions<'_> {
    fn default() -> Self {
        ImportOptions {
            mapping: None,
            fail_fast: false,
            progress: &|_, _| {},
            parallel: true,
        }
    }
}

/// Imports a workbook file.
pub fn import_path(path: &Path, opts: &ImportOptions<'_>) -> Result<Dataset> {
    let bytes = read_workbook(path)?;
    import_bytes(&path.display().to_string(), &bytes, opts)
}

/// Reads a workbook file into memory, with plain-words errors (and a "did you mean" for a
/// mistyped name).
pub fn read_workbook(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(Error::workbook(
            &name,
            "this is a folder; give a workbook file (.xlsx, .xlsm, .xlsb, .xls or .ods)",
        ));
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let wanted = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let present: Vec<String> = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let hint = did_you_mean(&wanted, present.iter().map(String::as_str))
                .map(|s| format!("; did you mean {}?", dir.join(s).display()))
                .unwrap_or_default();
            return Err(Error::workbook(&name, format!("no such file{hint}")));
        }
        Err(e) => return Err(Error::io(format!("cannot read {name}"), e)),
    };
    Ok(bytes)
}

fn field(kind: SheetKind, name: &str) -> usize {
    kind.field_index(name)
        .unwrap_or_else(|| panic!("{} has no field {name}", kind.name()))
}

/// Per-account totals from Transactions.
#[derive(Default, Clone)]
struct TxTotals {
    revenue: f64,
    gross_profit: f64,
    gp_lines: u32,
    lines: u32,
    /// Sorted by quarter: a handful per account (a map's first node would be 370 bytes).
    quarters: Vec<(i64, Figures)>,
}

const UNDATED: i64 = i64::MIN;

/// Imports a workbook held in memory; `file` names it in messages. A file that makes the
/// Excel reader fail inside (a malformed part it does not check) is reported as damaged.
pub fn import_bytes(file: &str, bytes: &[u8], opts: &ImportOptions<'_>) -> Result<Dataset> {
    crate::panics::contain(|| import_bytes_unguarded(file, bytes, opts))
        .unwrap_or_else(|detail| Err(damaged_inside(file, &detail)))
}

/// The error for a file that made the Excel reader panic (`detail`: the panic's message).
fn damaged_inside(file: &str, detail: &str) -> Error {
    Error::workbook(
        file,
        format!(
            "the file is damaged in a way the Excel reader cannot handle ({detail}): open it in Excel or LibreOffice and save it again"
        ),
    )
}

fn import_bytes_unguarded(file: &str, bytes: &[u8], opts: &ImportOptions<'_>) -> Result<Dataset> {
    let format = book::detect(file, bytes)?;
    let readers = if opts.parallel {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, MAX_READERS)
    } else {
        1
    };
    // The sheets' sizes order the readers' work (below). An .xlsx of several sheets is opened
    // by every reader at once: opening parses the shared strings (0.6 s at a million accounts),
    // which the second reader would otherwise do after the first, while the first reads.
    let sizes = book::sheet_sizes(format, bytes);
    let spare_readers = readers.min(sizes.len()).saturating_sub(1);
    // kam's own reader of .xlsx cells reads the shared strings and styles once for all the
    // readers, beside their opening.
    let (book, spare, fast) = std::thread::scope(|scope| {
        let fast = (format == Format::Xlsx)
            .then(|| scope.spawn(|| xlsx::Workbook::open(bytes).map(std::sync::Arc::new)));
        let spare: Vec<_> = (0..spare_readers)
            .map(|_| scope.spawn(|| Book::open(file, format, bytes).ok()))
            .collect();
        let book = Book::open(file, format, bytes);
        // A reader that could not open (or panicked opening) leaves its share to the others.
        let spare: Vec<Book<'_>> = spare
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect();
        let fast = fast.and_then(|h| h.join().ok().flatten());
        (book, spare, fast)
    });
    let mut book = book?;
    book.use_fast_reader(fast.clone());
    let spare: Vec<Book<'_>> = spare
        .into_iter()
        .map(|mut b| {
            b.use_fast_reader(fast.clone());
            b
        })
        .collect();
    let listed = book.sheets();
    let mapping_path = opts.mapping.map(|m| m.path.as_path());

    // Which workbook sheet is which.
    let mut assigned: BTreeMap<SheetKind, String> = BTreeMap::new();
    for kind in SheetKind::ALL {
        let wanted = opts
            .mapping
            .and_then(|m| m.sheets.get(&kind))
            .and_then(|s| s.sheet.clone());
        if let Some((name, span)) = wanted {
            let key = normalize_key(&name);
            let found = listed
                .iter()
                .find(|s| s.name == name)
                .or_else(|| listed.iter().find(|s| normalize_key(&s.name) == key));
            let Some(found) = found else {
                let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
                let hint = match did_you_mean(&name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the sheets of {file} are: {}", names.join(", ")),
                };
                return Err(Diagnostic::new(format!(
                    "{}: sheet `{name}` (for {}) is not in {file}",
                    mapping_path
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    kind.name()
                ))
                .with_span(span)
                .with_hint(hint)
                .into());
            };
            assigned.insert(kind, found.name.clone());
            continue;
        }
        let aliases: Vec<String> = kind.aliases().iter().map(|a| normalize_key(a)).collect();
        if let Some(found) = listed.iter().find(|s| {
            s.is_worksheet
                && aliases.contains(&normalize_key(&s.name))
                && !assigned.values().any(|v| *v == s.name)
        }) {
            assigned.insert(kind, found.name.clone());
        }
    }
    let mut ignored_sheets = Vec::new();
    for s in &listed {
        if assigned.values().any(|v| *v == s.name) {
            continue;
        }
        let reason = if !s.is_worksheet {
            "not a worksheet (chart or macro sheet)".to_string()
        } else {
            let names = SheetKind::ALL.map(|k| k.name());
            match did_you_mean(&s.name, names) {
                Some(n) => format!("not a sheet kam knows; did you mean {n}?"),
                None => format!("not a sheet kam knows ({})", names.join(", ")),
            }
        };
        ignored_sheets.push((s.name.clone(), reason));
    }
    if !assigned.contains_key(&SheetKind::Accounts)
        && !assigned.contains_key(&SheetKind::Transactions)
    {
        let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
        let guess = did_you_mean("Accounts", names.iter().copied())
            .map(|s| format!(" ('{s}'?)"))
            .unwrap_or_default();
        return Err(Error::workbook(
            file,
            format!(
                "no Accounts sheet{guess} and no Transactions sheet to derive accounts from; its sheets are: {}. Name the client sheet 'Accounts' (or Клиенты, Müştərilər), or say which sheet it is in a mapping file",
                names.join(", ")
            ),
        ));
    }

    let mut ds = Dataset {
        file: file.to_string(),
        format: format.name(),
        ignored_sheets,
        ..Default::default()
    };
    let cx = Cx {
        file,
        assigned: &assigned,
        opts,
        mapping_path,
    };
    let derive_accounts = !assigned.contains_key(&SheetKind::Accounts);
    // With an Accounts sheet the other sheets are read at the same time as it, their account ids
    // numbered and looked up once it is read (`Pending`). With --fail-fast they are read after
    // it, so that the first reject stops the run where a reader going down the sheets would;
    // without an Accounts sheet, Transactions makes the accounts and comes first.
    let later = !derive_accounts && !opts.fail_fast;

    let mut first: Option<AccountsPart> = None;
    let mut tx_first: Option<TxPart> = None;
    if !later {
        let mut part = read_accounts(&mut book, &cx)?;
        if derive_accounts {
            let ids = TxIds::Create {
                index: &mut part.index,
                accounts: &mut part.accounts,
            };
            tx_first = read_transactions(&mut book, &cx, ids)?;
        }
        first = Some(part);
    }

    // The sheets left, shared among the readers (each with its own reader of the workbook);
    // results are put back in sheet order.
    let mut tasks = Vec::new();
    if later {
        tasks.push(Task::Accounts);
    }
    if tx_first.is_none() && assigned.contains_key(&SheetKind::Transactions) {
        tasks.push(Task::Transactions);
    }
    for k in [
        SheetKind::Contacts,
        SheetKind::Activities,
        SheetKind::Tenders,
        SheetKind::Plans,
    ] {
        if assigned.contains_key(&k) {
            tasks.push(Task::Child(k));
        }
    }
    // The readers take the largest sheets first, so that no reader is left with a large sheet
    // after the others are done (with --fail-fast, in sheet order, so that the first reject
    // stops the run where a reader going down the sheets would). Sheets of unknown size keep
    // their order, after the others.
    let mut schedule: Vec<usize> = (0..tasks.len()).collect();
    if !opts.fail_fast {
        let size = |t: &Task| {
            let kind = match t {
                Task::Accounts => SheetKind::Accounts,
                Task::Transactions => SheetKind::Transactions,
                Task::Child(k) => *k,
            };
            cx.sheet(kind)
                .and_then(|n| sizes.get(n))
                .copied()
                .unwrap_or(0)
        };
        schedule.sort_by_key(|&i| std::cmp::Reverse(size(&tasks[i])));
    }
    let index_now = first.as_ref().map(|p| &p.index);
    let slots: Vec<std::sync::Mutex<Option<Result<Part>>>> =
        tasks.iter().map(|_| Default::default()).collect();
    // Accounts, when a reader reads it here; then the sheets read beside it can be resolved.
    let accounts_read: std::sync::OnceLock<AccountsPart> = std::sync::OnceLock::new();
    // Sheets whose ids a reader resolved between two sheets.
    let resolved: Vec<std::sync::Mutex<Option<Done>>> =
        tasks.iter().map(|_| Default::default()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    // Resolves the sheets read so far, once Accounts is read: by each reader between two
    // sheets, so that the resolving is shared like the reading instead of waiting for the last
    // sheet (about half a second at a million accounts).
    let resolve_read = || {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(acc) = first.as_ref().or_else(|| accounts_read.get()) else {
            return;
        };
        for (slot, done) in slots.iter().zip(&resolved) {
            if failed.load(Relaxed) {
                return;
            }
            // Only a sheet read without failure is taken; one not read yet, taken by another
            // reader, or failed is left as it is.
            let Ok(mut s) = slot.lock() else { continue };
            let Some(Ok(part)) = s.take_if(|r| r.is_ok()) else {
                continue;
            };
            drop(s);
            let d = resolve_part(part, acc, file);
            if let Ok(mut r) = done.lock() {
                *r = Some(d);
            }
        }
    };
    let work = |book: &mut Book<'_>| {
        use std::sync::atomic::Ordering::Relaxed;
        while !failed.load(Relaxed) {
            let Some(&i) = schedule.get(next.fetch_add(1, Relaxed)) else {
                break;
            };
            let task = &tasks[i];
            // A reader that panics on a malformed part fails its task with the panic's message
            // (the scope would otherwise report only that a thread panicked).
            let result = crate::panics::contain(|| run_task(book, &cx, *task, index_now));
            let result = result.unwrap_or_else(|detail| Err(damaged_inside(file, &detail)));
            match result {
                Ok(Part::Accounts(a)) => {
                    let _ = accounts_read.set(*a);
                }
                Err(e) => {
                    // Tasks are taken in schedule order: those before this one are done or
                    // running.
                    failed.store(true, Relaxed);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(Err(e));
                    }
                }
                Ok(part) => {
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(Ok(part));
                    }
                }
            }
            resolve_read();
        }
    };
    let mut spare = spare.into_iter();
    std::thread::scope(|scope| {
        for _ in 1..readers.min(tasks.len()) {
            let opened = spare.next();
            let work = &work;
            let fast = fast.clone();
            scope.spawn(move || {
                // A second reader that cannot open leaves its share to the others.
                let own = match opened {
                    Some(b) => Some(b),
                    None => Book::open(file, format, bytes).ok().map(|mut b| {
                        b.use_fast_reader(fast.clone());
                        b
                    }),
                };
                if let Some(mut own) = own {
                    work(&mut own);
                }
            });
        }
        work(&mut book);
    });
    // The first failure in schedule order: the tasks before it all ran, so it is the same
    // failure on every run.
    for &i in &schedule {
        if let Ok(mut slot) = slots[i].lock()
            && let Some(Err(_)) = slot.as_ref()
            && let Some(Err(e)) = slot.take()
        {
            return Err(e);
        }
    }
    // In sheet order: Transactions when read before the others, then each task's sheet,
    // resolved by a reader or still to resolve.
    enum Sheet {
        Resolved(Done),
        Read(Part),
    }
    let mut parts: Vec<Sheet> = Vec::new();
    if let Some(t) = tx_first {
        parts.push(Sheet::Read(Part::Tx(Some(Box::new(t)))));
    }
    for (slot, done) in slots.into_iter().zip(resolved) {
        if let Some(d) = done.into_inner().ok().flatten() {
            parts.push(Sheet::Resolved(d));
            continue;
        }
        // Failures were returned above; Accounts is not in a slot; a task after a failure was
        // never taken.
        if let Some(Ok(p)) = slot.into_inner().ok().flatten() {
            parts.push(Sheet::Read(p));
        }
    }
    if first.is_none() {
        first = accounts_read.into_inner();
    }
    let Some(acc) = first else {
        return Err(Error::Usage(
            "internal error: the import left no Accounts result".into(),
        ));
    };
    // The sheets left to resolve, in parallel; the results stay in sheet order, so the
    // rejects keep their order.
    let done: Vec<Done> = parts
        .into_par_iter()
        .map(|p| match p {
            Sheet::Resolved(d) => d,
            Sheet::Read(part) => resolve_part(part, &acc, file),
        })
        .collect();
    let mut tx_done = None;
    let mut kids_done = Vec::new();
    for d in done {
        match d {
            Done::Tx(t) => tx_done = Some(t),
            Done::Child(c) => kids_done.push(c),
            Done::Nothing => {}
        }
    }

    let AccountsPart {
        accounts,
        index: _,
        account_kam_col,
        account_columns,
        account_extras,
        managers,
        manager_extras,
        manager_ids,
        sheets,
        rejects: first_rejects,
    } = acc;
    ds.accounts = accounts;
    ds.account_columns = account_columns;
    ds.account_extras = account_extras;
    ds.managers = managers;
    ds.manager_extras = manager_extras;
    ds.sheets = sheets;
    let mut rejects = Rejects {
        file: file.to_string(),
        list: first_rejects,
        fail_fast: opts.fail_fast,
    };
    let mut totals: Vec<TxTotals> = Vec::new();
    if let Some((report, list, t, lines)) = tx_done {
        totals = t;
        ds.transaction_lines = lines;
        rejects.list.extend(list);
        ds.sheets.push(report);
    }
    totals.resize_with(ds.accounts.len(), TxTotals::default);
    for (report, list, records, extras) in kids_done {
        match records {
            Records::Contacts(v) => (ds.contacts, ds.contact_extras) = (v, extras),
            Records::Activities(v) => (ds.activities, ds.activity_extras) = (v, extras),
            Records::Tenders(v) => (ds.tenders, ds.tender_extras) = (v, extras),
            Records::Plans(v) => (ds.plans, ds.plan_extras) = (v, extras),
        }
        rejects.list.extend(list);
        ds.sheets.push(report);
    }

    // Figures from the transactions, per account (in parallel: a million accounts each get
    // their quarters).
    ds.accounts
        .par_iter_mut()
        .zip(&totals)
        .for_each(|(acc, t)| {
            if t.lines == 0 {
                return;
            }
            if acc.revenue.is_none() {
                acc.revenue = Some(t.revenue);
                acc.figures_source = "transactions";
            }
            if acc.gross_profit.is_none() && t.gp_lines > 0 {
                acc.gross_profit = Some(t.gross_profit);
                acc.figures_source = "transactions";
            }
            acc.quarters = t
                .quarters
                .iter()
                .map(|(q, f)| {
                    let key = if *q == UNDATED {
                        "undated".to_string()
                    } else {
                        quarter_label(*q)
                    };
                    (key, *f)
                })
                .collect();
            // In label order ("undated" last), as the list is kept.
            acc.quarters.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        });

    // Accounts whose KAM is not in Managers.
    if !ds.managers.is_empty() {
        for acc in &ds.accounts {
            if let Some(kam) = &acc.kam_id
                && !manager_ids.contains_key(kam)
            {
                let ids: Vec<&str> = ds.managers.iter().map(|m| m.id.as_str()).collect();
                let hint = did_you_mean(kam, ids.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                rejects.push(
                    &acc.origin.sheet,
                    acc.origin.cell(account_kam_col.unwrap_or(0) as u32),
                    "kam_id",
                    kam.clone(),
                    format!("KAM `{kam}` is not in Managers{hint}; the account keeps it, but no manager data applies"),
                    RejectScope::Cell,
                )?;
            }
        }
    }
    ds.rejects = rejects.list;
    Ok(ds)
}

/// At most this many readers of one workbook at a time (each holds its own copy of the shared
/// strings).
const MAX_READERS: usize = 4;

/// What the sheet readers share.
struct Cx<'a> {
    file: &'a str,
    assigned: &'a BTreeMap<SheetKind, String>,
    opts: &'a ImportOptions<'a>,
    mapping_path: Option<&'a Path>,
}

impl Cx<'_> {
    fn sheet(&self, kind: SheetKind) -> Option<&str> {
        self.assigned.get(&kind).map(String::as_str)
    }
    fn mapping(&self, kind: SheetKind) -> Option<&mapping::SheetMapping> {
        self.opts.mapping.and_then(|m| m.sheets.get(&kind))
    }
    fn progress(&self, name: &str) -> impl Fn(u64) + '_ {
        let name = name.to_string();
        move |n: u64| (self.opts.progress)(&name, n)
    }
    /// Reads one of the workbook's sheets with its mapping and progress (see [`read_sheet`]).
    fn read(
        &self,
        book: &mut Book<'_>,
        kind: SheetKind,
        name: &str,
        rejects: &mut Rejects,
        handle: &mut dyn FnMut(&Row<'_>, &mut Rejects) -> Result<Outcome>,
    ) -> Result<(crate::model::SheetReport, sheet::Layout)> {
        read_sheet(
            book,
            kind,
            name,
            self.mapping(kind),
            self.mapping_path,
            rejects,
            &self.progress(name),
            handle,
        )
    }
    fn rejects(&self) -> Rejects {
        Rejects {
            file: self.file.to_string(),
            list: Vec::new(),
            fail_fast: self.opts.fail_fast,
        }
    }
}

/// One sheet (or, for Accounts, the Accounts and Managers sheets) for a reader.
#[derive(Clone, Copy)]
enum Task {
    Accounts,
    Transactions,
    Child(SheetKind),
}

enum Part {
    Accounts(Box<AccountsPart>),
    Tx(Option<Box<TxPart>>),
    Child(Box<ChildPart>),
}

fn run_task(book: &mut Book<'_>, cx: &Cx<'_>, task: Task, index: Option<&IdIndex>) -> Result<Part> {
    let ids = || match index {
        Some(i) => Ids::Now(i),
        None => Ids::Later(Pending::default()),
    };
    Ok(match task {
        Task::Accounts => Part::Accounts(Box::new(read_accounts(book, cx)?)),
        Task::Transactions => {
            Part::Tx(read_transactions(book, cx, TxIds::Ids(ids()))?.map(Box::new))
        }
        Task::Child(kind) => Part::Child(Box::new(read_child(book, cx, kind, ids())?)),
    })
}

/// The Accounts and Managers sheets.
#[derive(Default)]
struct AccountsPart {
    accounts: Vec<Account>,
    index: IdIndex,
    account_kam_col: Option<usize>,
    account_columns: BTreeMap<String, u32>,
    account_extras: ExtraColumns,
    managers: Vec<Manager>,
    manager_extras: ExtraColumns,
    manager_ids: HashMap<String, u32>,
    sheets: Vec<crate::model::SheetReport>,
    rejects: Vec<Reject>,
}

fn read_accounts(book: &mut Book<'_>, cx: &Cx<'_>) -> Result<AccountsPart> {
    let mut part = AccountsPart::default();
    let mut rejects = cx.rejects();
    if let Some(name) = cx.sheet(SheetKind::Accounts) {
        let k = SheetKind::Accounts;
        let [
            f_id,
            f_name,
            f_kam,
            f_ind,
            f_reg,
            f_lvl,
            f_rev,
            f_gp,
            f_wal,
            f_ref,
            f_brand,
            f_part,
            f_comp,
            f_inn,
            f_hist,
            f_needs,
            f_dev,
        ] = [
            "id",
            "name",
            "kam_id",
            "industry",
            "region",
            "level",
            "revenue",
            "gross_profit",
            "wallet",
            "reference",
            "brand_score",
            "partnership",
            "competence",
            "innovator",
            "history",
            "needs",
            "development_plans",
        ]
        .map(|n| field(k, n));
        let accounts = &mut part.accounts;
        let index_ref = &mut part.index;
        let mut id_col = 0;
        let (report, layout) = cx.read(
            &mut *book,
            k,
            name,
            &mut rejects,
            &mut |row: &Row<'_>, rj: &mut Rejects| {
                id_col = row.layout.field_cols[f_id].unwrap_or(0);
                let Some(id) = row.text(f_id) else {
                    rj.push(name, row.cell_of(f_id), "id", "", "no account id: the row cannot be matched to anything; fill in the id or delete the row", RejectScope::Row)?;
                    return Ok(Outcome::Rejected);
                };
                if let Some(&first) = index_ref.get(&id) {
                    let first_row = accounts[first].origin.row;
                    rj.push(
                        name,
                        row.cell_of(f_id),
                        "id",
                        id.clone(),
                        format!(
                            "duplicate account id `{id}`: already used at {}; this row is not used",
                            cell_ref(name, first_row, id_col as u32)
                        ),
                        RejectScope::Row,
                    )?;
                    return Ok(Outcome::Rejected);
                }
                index_ref.insert(id.clone(), accounts.len());
                reserve_declared(accounts, row);
                accounts.push(Account {
                    name: row.text(f_name).unwrap_or_else(|| id.clone()),
                    id,
                    kam_id: row.text(f_kam),
                    industry: row.text(f_ind),
                    region: row.text(f_reg),
                    level: row.choice(f_lvl).unwrap_or("company"),
                    revenue: row.num(f_rev),
                    gross_profit: row.num(f_gp),
                    figures_source: "accounts",
                    wallet: row.num(f_wal),
                    reference: row.flag(f_ref),
                    brand_score: row.num(f_brand),
                    partnership: row.num(f_part),
                    competence: row.num(f_comp),
                    innovator: row.flag(f_inn),
                    history: row.text(f_hist),
                    needs: row.text(f_needs),
                    development_plans: row.text(f_dev),
                    quarters: Vec::new(),
                    extra: row.extras(),
                    origin: row.origin.clone(),
                });
                Ok(Outcome::Used)
            },
        )?;
        part.account_kam_col = layout.field_cols[f_kam];
        for (i, col) in layout.field_cols.iter().enumerate() {
            if let Some(c) = col {
                part.account_columns
                    .insert(k.fields()[i].name.to_string(), *c as u32);
            }
        }
        for (c, name) in &layout.extras {
            part.account_columns.insert(name.clone(), *c as u32);
        }
        part.account_extras = ExtraColumns {
            names: layout.extra_names(),
        };
        part.sheets.push(report);
    }

    if let Some(name) = cx.sheet(SheetKind::Managers) {
        let k = SheetKind::Managers;
        let [f_id, f_name, f_reg, f_lvl, f_plan, f_pk, f_basis, f_rate] = [
            "id",
            "name",
            "region",
            "level",
            "plan",
            "product_knowledge",
            "commission_basis",
            "commission_rate",
        ]
        .map(|n| field(k, n));
        let managers = &mut part.managers;
        let ids = &mut part.manager_ids;
        let (report, layout) = cx.read(
            &mut *book,
            k,
            name,
            &mut rejects,
            &mut |row: &Row<'_>, rj: &mut Rejects| {
                let Some(id) = row.text(f_id) else {
                    rj.push(
                        name,
                        row.cell_of(f_id),
                        "id",
                        "",
                        "no KAM id: fill in the id or delete the row",
                        RejectScope::Row,
                    )?;
                    return Ok(Outcome::Rejected);
                };
                if let Some(first) = ids.get(&id) {
                    let col = row.layout.field_cols[f_id].unwrap_or(0) as u32;
                    rj.push(
                        name,
                        row.cell_of(f_id),
                        "id",
                        id.clone(),
                        format!(
                            "duplicate KAM id `{id}`: already used at {}; this row is not used",
                            cell_ref(name, *first, col)
                        ),
                        RejectScope::Row,
                    )?;
                    return Ok(Outcome::Rejected);
                }
                ids.insert(id.clone(), row.origin.row);
                managers.push(Manager {
                    id,
                    name: row.text(f_name),
                    region: row.text(f_reg),
                    level: row.choice(f_lvl),
                    plan: row.num(f_plan),
                    product_knowledge: row.num(f_pk),
                    commission_basis: row.choice(f_basis),
                    commission_rate: row.num(f_rate),
                    extra: row.extras(),
                    origin: row.origin.clone(),
                });
                Ok(Outcome::Used)
            },
        )?;
        part.manager_extras = ExtraColumns {
            names: layout.extra_names(),
        };
        part.sheets.push(report);
    }
    part.rejects = rejects.list;
    Ok(part)
}

/// How Transactions finds its rows' accounts.
enum TxIds<'a> {
    /// No Accounts sheet: a new id makes a new account.
    Create {
        index: &'a mut IdIndex,
        accounts: &'a mut Vec<Account>,
    },
    /// As the other child sheets.
    Ids(Ids<'a>),
}

/// The Transactions sheet: totals per account (or per provisional number, see [`Pending`]).
struct TxPart {
    out: SheetOut,
    lines: u64,
    totals: Vec<TxTotals>,
}

/// A sheet's waiting ids and the account of each of their numbers (`None`: not in Accounts).
type Resolved = (Pending, Vec<Option<usize>>);

/// What reading a sheet with account ids leaves besides its rows.
struct SheetOut {
    report: crate::model::SheetReport,
    rejects: Rejects,
    /// The sheet's account ids, when they wait for Accounts.
    pending: Option<Pending>,
    /// The account id's column, to cite it.
    account_col: u32,
}

impl SheetOut {
    /// The report and the rejects, with the rows whose id is not in Accounts rejected, and the
    /// waiting ids with the account of each number.
    fn resolve(
        mut self,
        index: &IdIndex,
        file: &str,
    ) -> (crate::model::SheetReport, Vec<Reject>, Option<Resolved>) {
        let mut list = std::mem::take(&mut self.rejects.list);
        let pending = self.pending.map(|p| {
            let by_number = p.resolve(index, self.account_col, &mut list, file, &mut self.report);
            (p, by_number)
        });
        (self.report, list, pending)
    }
}

/// A resolved Transactions sheet: its report, rejects, totals per account and lines used.
type TxDone = (crate::model::SheetReport, Vec<Reject>, Vec<TxTotals>, u64);

/// Resolves the account ids of a Transactions sheet read beside Accounts.
fn resolve_transactions(mut t: TxPart, index: &IdIndex, file: &str, accounts: usize) -> TxDone {
    let (report, list, pending) = t.out.resolve(index, file);
    match pending {
        Some((p, by_number)) => {
            let mut totals = vec![TxTotals::default(); accounts];
            for (n, a) in by_number.iter().enumerate() {
                if let (Some(a), Some(tot)) = (a, t.totals.get_mut(n)) {
                    totals[*a] = std::mem::take(tot);
                }
            }
            let lines = p
                .rows
                .iter()
                .filter(|[n, ..]| by_number[*n as usize].is_some())
                .count() as u64;
            (report, list, totals, lines)
        }
        None => (report, list, t.totals, t.lines),
    }
}

/// A resolved child sheet: its report, rejects, records and extra columns.
type ChildDone = (
    crate::model::SheetReport,
    Vec<Reject>,
    Records,
    ExtraColumns,
);

/// Resolves the account ids of a child sheet and places its records on their accounts;
/// activities and tenders without a KAM take their account's.
fn resolve_child(mut c: ChildPart, index: &IdIndex, file: &str, accounts: &[Account]) -> ChildDone {
    let (report, list, pending) = c.out.resolve(index, file);
    if let Some((p, by_number)) = pending {
        c.records = match c.records {
            Records::Contacts(v) => Records::Contacts(p.place(v, &by_number, |r| &mut r.account)),
            Records::Activities(v) => {
                Records::Activities(p.place(v, &by_number, |r| &mut r.account))
            }
            Records::Tenders(v) => Records::Tenders(p.place(v, &by_number, |r| &mut r.account)),
            Records::Plans(v) => Records::Plans(p.place(v, &by_number, |r| &mut r.account)),
        };
    }
    match &mut c.records {
        Records::Activities(v) => {
            for a in v.iter_mut().filter(|a| a.kam_id.is_none()) {
                a.kam_id = accounts[a.account].kam_id.clone();
            }
        }
        Records::Tenders(v) => {
            for t in v.iter_mut().filter(|t| t.kam_id.is_none()) {
                t.kam_id = accounts[t.account].kam_id.clone();
            }
        }
        _ => {}
    }
    (report, list, c.records, c.extras)
}

/// A sheet with its account ids resolved.
enum Done {
    /// Transactions.
    Tx(TxDone),
    /// Contacts, Activities, Tenders or Plans.
    Child(ChildDone),
    /// No sheet (a Transactions task that found none).
    Nothing,
}

/// Resolves the account ids of a sheet read beside Accounts (see [`resolve_transactions`] and
/// [`resolve_child`]).
fn resolve_part(part: Part, acc: &AccountsPart, file: &str) -> Done {
    match part {
        Part::Tx(Some(t)) => Done::Tx(resolve_transactions(
            *t,
            &acc.index,
            file,
            acc.accounts.len(),
        )),
        Part::Child(c) => Done::Child(resolve_child(*c, &acc.index, file, &acc.accounts)),
        // Accounts itself is never among the sheets to resolve.
        Part::Tx(None) | Part::Accounts(_) => Done::Nothing,
    }
}

fn read_transactions(
    book: &mut Book<'_>,
    cx: &Cx<'_>,
    mut ids: TxIds<'_>,
) -> Result<Option<TxPart>> {
    let Some(name) = cx.sheet(SheetKind::Transactions) else {
        return Ok(None);
    };
    let k = SheetKind::Transactions;
    let [
        f_date,
        f_acc,
        f_accname,
        f_kam,
        f_type,
        f_qty,
        f_price,
        f_amount,
        f_cost,
        f_margin,
    ] = [
        "date",
        "account_id",
        "account_name",
        "kam_id",
        "type",
        "quantity",
        "unit_price",
        "amount",
        "cost",
        "margin",
    ]
    .map(|n| field(k, n));
    let mut rejects = cx.rejects();
    let mut totals: Vec<TxTotals> = Vec::new();
    let mut lines = 0u64;
    let (report, layout) = cx.read(
        &mut *book,
        k,
        name,
        &mut rejects,
        &mut |row: &Row<'_>, rj: &mut Rejects| {
            let acc = match &mut ids {
                TxIds::Create { index, .. } => match account_of(row, f_acc, name, index, rj)? {
                    None => return Ok(Outcome::Rejected),
                    Some(a) => a,
                },
                TxIds::Ids(ids) => match ids.account(row, f_acc, name, rj)? {
                    None => return Ok(Outcome::Rejected),
                    Some(a) => AccountRef::Known(a),
                },
            };
            let before = rj.list.len();
            let note = |ids: &mut TxIds<'_>, acc: &AccountRef, used: bool| {
                if let (TxIds::Ids(ids), AccountRef::Known(a)) = (ids, acc) {
                    ids.note(*a, row, used, before);
                }
            };
            let amount = match (row.num(f_amount), row.num(f_qty), row.num(f_price)) {
                (Some(a), _, _) => a,
                (None, Some(q), Some(p)) => q * p,
                _ => {
                    rj.push(
                        name,
                        row.cell_of(f_amount),
                        "amount",
                        "",
                        "no amount: fill in the amount, or quantity and unit price",
                        RejectScope::Row,
                    )?;
                    note(&mut ids, &acc, false);
                    return Ok(Outcome::Rejected);
                }
            };
            let mut margin = row
                .num(f_margin)
                .or_else(|| row.num(f_cost).map(|c| amount - c));
            let mut amount = amount;
            if matches!(row.choice(f_type), Some("return" | "credit_note")) && amount > 0.0 {
                amount = -amount;
                margin = margin.map(|m| -m);
            }
            note(&mut ids, &acc, true);
            let acc = match (acc, &mut ids) {
                (AccountRef::Known(i), _) => i,
                (AccountRef::New(id), TxIds::Create { index, accounts }) => {
                    let i = accounts.len();
                    index.insert(id.clone(), i);
                    let name = row.text(f_accname).unwrap_or_else(|| id.clone());
                    let mut account = Account::new(id, name, row.origin.clone());
                    account.kam_id = row.text(f_kam);
                    account.figures_source = "transactions";
                    accounts.push(account);
                    i
                }
                (AccountRef::New(_), TxIds::Ids(_)) => {
                    return Err(Error::Usage(
                        "internal error: a new account outside of derived accounts".into(),
                    ));
                }
            };
            // Derived accounts take the first KAM their lines name.
            if let TxIds::Create { accounts, .. } = &mut ids
                && accounts[acc].kam_id.is_none()
            {
                accounts[acc].kam_id = row.text(f_kam);
            }
            if totals.len() <= acc {
                totals.resize_with(acc + 1, TxTotals::default);
            }
            let t = &mut totals[acc];
            t.revenue += amount;
            t.lines += 1;
            if let Some(m) = margin {
                t.gross_profit += m;
                t.gp_lines += 1;
            }
            let q = row.date(f_date).map_or(UNDATED, quarter_index);
            let fq = crate::model::sorted_entry(&mut t.quarters, &q, || q);
            fq.revenue += amount;
            fq.gross_profit += margin.unwrap_or(0.0);
            fq.lines += 1;
            lines += 1;
            Ok(Outcome::Used)
        },
    )?;
    let pending = match ids {
        TxIds::Ids(Ids::Later(p)) => Some(p),
        _ => None,
    };
    Ok(Some(TxPart {
        out: SheetOut {
            report,
            rejects,
            pending,
            account_col: layout.field_cols[f_acc].unwrap_or(0) as u32,
        },
        lines,
        totals,
    }))
}

/// A child sheet's records, each pointing at its account.
enum Records {
    Contacts(Vec<Contact>),
    Activities(Vec<Activity>),
    Tenders(Vec<Tender>),
    Plans(Vec<PlanItem>),
}

struct ChildPart {
    out: SheetOut,
    records: Records,
    extras: ExtraColumns,
}

/// Contacts, Activities, Tenders or Plans. A record's `kam_id` is only what its row says; the
/// account's KAM is filled in once the accounts are known.
fn read_child(
    book: &mut Book<'_>,
    cx: &Cx<'_>,
    k: SheetKind,
    mut ids: Ids<'_>,
) -> Result<ChildPart> {
    let name = cx.sheet(k).unwrap_or_default();
    let mut rejects = cx.rejects();
    let rj = &mut rejects;
    let (records, (report, extras, account_col)) = match k {
        SheetKind::Contacts => {
            let [
                f_name,
                f_role,
                f_inf,
                f_rel,
                f_att,
                f_bday,
                f_hob,
                f_fam,
                f_val,
                f_last,
            ] = [
                "name",
                "role",
                "influence",
                "relationship",
                "attitude",
                "birthday",
                "hobbies",
                "family",
                "values",
                "last_contact",
            ]
            .map(|n| field(k, n));
            let (list, rest) =
                read_child_sheet(book, cx, k, name, &mut ids, rj, |row, account, _| {
                    Ok(Some(Contact {
                        account,
                        name: row.text(f_name),
                        role: row.text(f_role),
                        influence: row.num(f_inf),
                        relationship: row.num(f_rel),
                        attitude: row.text(f_att),
                        birthday: row.date(f_bday),
                        hobbies: row.text(f_hob),
                        family: row.text(f_fam),
                        values: row.text(f_val),
                        last_contact: row.date(f_last),
                        extra: row.extras(),
                        origin: row.origin.clone(),
                    }))
                })?;
            (Records::Contacts(list), rest)
        }
        SheetKind::Activities => {
            let [
                f_kam,
                f_type,
                f_date,
                f_ps,
                f_as,
                f_agenda,
                f_arg,
                f_int,
                f_bad,
                f_next,
                f_conf,
                f_fu,
                f_exp,
                f_dmu,
                f_res,
                f_amt,
                f_margin,
                f_notes,
            ] = [
                "kam_id",
                "type",
                "date",
                "planned_start",
                "actual_start",
                "agenda",
                "argued",
                "interrupted",
                "bad_manners",
                "next_step",
                "confirmed",
                "followed_up",
                "expiry",
                "dmu_roles",
                "resolved",
                "amount",
                "margin",
                "notes",
            ]
            .map(|n| field(k, n));
            let (list, rest) = read_child_sheet(
                book,
                cx,
                k,
                name,
                &mut ids,
                rj,
                |row, account, rj| {
                    let Some(kind) = row.choice(f_type) else {
                        rj.push(name, row.cell_of(f_type), "type", "", "no activity type: write meeting, call, proposal, complaint, reference_letter, referral or deal", RejectScope::Row)?;
                        return Ok(None);
                    };
                    Ok(Some(Activity {
                        account,
                        kam_id: row.text(f_kam),
                        kind,
                        date: row.date(f_date),
                        planned_start: row.date(f_ps),
                        actual_start: row.date(f_as),
                        agenda: row.flag(f_agenda),
                        argued: row.flag(f_arg),
                        interrupted: row.flag(f_int),
                        bad_manners: row.flag(f_bad),
                        next_step: row.flag(f_next),
                        confirmed: row.date(f_conf),
                        followed_up: row.date(f_fu),
                        expiry: row.date(f_exp),
                        dmu_roles: row.text(f_dmu),
                        resolved: row.date(f_res),
                        amount: row.num(f_amt),
                        margin: row.num(f_margin),
                        notes: row.text(f_notes),
                        extra: row.extras(),
                        origin: row.origin.clone(),
                    }))
                },
            )?;
            (Records::Activities(list), rest)
        }
        SheetKind::Tenders => {
            let [f_kam, f_name, f_date, f_prep, f_val, f_out] =
                ["kam_id", "name", "date", "prep_start", "value", "outcome"].map(|n| field(k, n));
            let (list, rest) =
                read_child_sheet(book, cx, k, name, &mut ids, rj, |row, account, _| {
                    Ok(Some(Tender {
                        account,
                        kam_id: row.text(f_kam),
                        name: row.text(f_name),
                        date: row.date(f_date),
                        prep_start: row.date(f_prep),
                        value: row.num(f_val),
                        outcome: row.choice(f_out),
                        extra: row.extras(),
                        origin: row.origin.clone(),
                    }))
                })?;
            (Records::Tenders(list), rest)
        }
        _ => {
            let [f_kind, f_text, f_owner, f_due, f_status] =
                ["kind", "text", "owner", "due", "status"].map(|n| field(k, n));
            let (list, rest) = read_child_sheet(
                book,
                cx,
                k,
                name,
                &mut ids,
                rj,
                |row, account, rj| {
                    let Some(kind) = row.choice(f_kind) else {
                        rj.push(name, row.cell_of(f_kind), "kind", "", "no plan item kind: write objective, strategy, value_proposition, strength, weakness, opportunity, threat or action", RejectScope::Row)?;
                        return Ok(None);
                    };
                    let Some(text) = row.text(f_text) else {
                        rj.push(
                            name,
                            row.cell_of(f_text),
                            "text",
                            "",
                            "empty plan item: write the text or delete the row",
                            RejectScope::Row,
                        )?;
                        return Ok(None);
                    };
                    Ok(Some(PlanItem {
                        account,
                        kind,
                        text,
                        owner: row.text(f_owner),
                        due: row.date(f_due),
                        status: row.choice(f_status),
                        extra: row.extras(),
                        origin: row.origin.clone(),
                    }))
                },
            )?;
            (Records::Plans(list), rest)
        }
    };
    let pending = match ids {
        Ids::Later(p) => Some(p),
        Ids::Now(_) => None,
    };
    Ok(ChildPart {
        out: SheetOut {
            report,
            rejects,
            pending,
            account_col,
        },
        records,
        extras,
    })
}

/// Reads a sheet whose rows belong to an account: finds the account of each row (rejecting
/// rows whose account is missing or unknown, now or once Accounts is read) and collects what
/// `build` makes of each row (`None`: the row was rejected by `build`, which recorded why).
/// Returns the records, the sheet's report, its extra columns and the account id's column.
fn read_child_sheet<T>(
    book: &mut Book<'_>,
    cx: &Cx<'_>,
    kind: SheetKind,
    name: &str,
    ids: &mut Ids<'_>,
    rejects: &mut Rejects,
    mut build: impl FnMut(&Row<'_>, usize, &mut Rejects) -> Result<Option<T>>,
) -> Result<(Vec<T>, (crate::model::SheetReport, ExtraColumns, u32))> {
    let f_acc = field(kind, "account_id");
    let mut out = Vec::new();
    let (report, layout) = cx.read(book, kind, name, rejects, &mut |row, rj| {
        let Some(account) = ids.account(row, f_acc, name, rj)? else {
            return Ok(Outcome::Rejected);
        };
        let before = rj.list.len();
        Ok(match build(row, account, rj)? {
            Some(t) => {
                reserve_declared(&mut out, row);
                out.push(t);
                ids.note(account, row, true, before);
                Outcome::Used
            }
            None => {
                ids.note(account, row, false, before);
                Outcome::Rejected
            }
        })
    })?;
    let extras = ExtraColumns {
        names: layout.extra_names(),
    };
    let col = layout.field_cols[f_acc].unwrap_or(0) as u32;
    Ok((out, (report, extras, col)))
}

/// Before a sheet's first record, room for as many as the sheet declares rows: a million
/// records then fill one allocation instead of being copied from one doubled vector to the
/// next (and the old and new vectors never coexist). Only reserved, not touched: a sheet that
/// declares more rows than it has costs address space, not memory; when even that is refused,
/// the vector grows as usual.
fn reserve_declared<T>(out: &mut Vec<T>, row: &Row<'_>) {
    if out.capacity() == 0 {
        let _ = out.try_reserve_exact(row.declared_rows.max(1));
    }
}

enum AccountRef {
    Known(usize),
    New(String),
}

/// Resolves a Transactions row's account id when the accounts are derived from Transactions (a
/// new id makes a new account); records a row reject when it is missing.
fn account_of(
    row: &Row<'_>,
    f_acc: usize,
    sheet: &str,
    index: &IdIndex,
    rj: &mut Rejects,
) -> Result<Option<AccountRef>> {
    let Some(id) = pending::account_id(row, f_acc, sheet, rj)? else {
        return Ok(None);
    };
    Ok(Some(match index.get(id) {
        Some(&i) => AccountRef::Known(i),
        None => AccountRef::New(id.to_string()),
    }))
}
