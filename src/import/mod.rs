//! Import: a workbook (any layout kam can recognise or a mapping file describes) becomes a
//! [`Dataset`]. Nothing is lost: every row is used or listed in the rejects with its cell and
//! a reason, and every doubtful cell is listed too.

pub mod biff;
pub mod book;
pub mod cells;
pub mod mapping;
pub mod merge;
pub mod sheet;

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
use sheet::{Outcome, Row, read_sheet};

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
    /// Read Transactions on a second thread beside the other sheets (results are the same).
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
    quarters: BTreeMap<i64, Figures>,
}

const UNDATED: i64 = i64::MIN;

/// Imports a workbook held in memory; `file` names it in messages. A file that makes the
/// Excel reader fail inside (a malformed part it does not check) is reported as damaged.
pub fn import_bytes(file: &str, bytes: &[u8], opts: &ImportOptions<'_>) -> Result<Dataset> {
    crate::panics::contain(|| import_bytes_unguarded(file, bytes, opts)).unwrap_or_else(|detail| {
        Err(Error::workbook(
            file,
            format!(
                "the file is damaged in a way the Excel reader cannot handle ({detail}): open it in Excel or LibreOffice and save it again"
            ),
        ))
    })
}

fn import_bytes_unguarded(file: &str, bytes: &[u8], opts: &ImportOptions<'_>) -> Result<Dataset> {
    let format = book::detect(file, bytes)?;
    let mut book = Book::open(file, format, bytes)?;
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

    let mut rejects = Rejects {
        file: file.to_string(),
        list: Vec::new(),
        fail_fast: opts.fail_fast,
    };
    let mut ds = Dataset {
        file: file.to_string(),
        format: format.name(),
        ignored_sheets,
        ..Default::default()
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let map_for = |k: SheetKind| opts.mapping.and_then(|m| m.sheets.get(&k));
    let progress_for = |name: &str| {
        let name = name.to_string();
        move |n: u64| (opts.progress)(&name, n)
    };
    let mut account_kam_col: Option<usize> = None;

    // Accounts.
    if let Some(name) = assigned.get(&SheetKind::Accounts).cloned() {
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
        let mut first_row: HashMap<String, u32> = HashMap::new();
        let accounts = &mut ds.accounts;
        let index_ref = &mut index;
        let mut id_col = 0;
        let (report, layout) = read_sheet(
            &mut book,
            k,
            &name,
            map_for(k),
            mapping_path,
            &mut rejects,
            &progress_for(&name),
            &mut |row: &Row<'_>, rj: &mut Rejects| {
                id_col = row.layout.field_cols[f_id].unwrap_or(0);
                let Some(id) = row.text(f_id) else {
                    rj.push(&name, row.cell_of(f_id), "id", "", "no account id: the row cannot be matched to anything; fill in the id or delete the row", RejectScope::Row)?;
                    return Ok(Outcome::Rejected);
                };
                if let Some(first) = first_row.get(&id) {
                    rj.push(
                        &name,
                        row.cell_of(f_id),
                        "id",
                        id.clone(),
                        format!(
                            "duplicate account id `{id}`: already used at {}; this row is not used",
                            cell_ref(&name, *first, id_col as u32)
                        ),
                        RejectScope::Row,
                    )?;
                    return Ok(Outcome::Rejected);
                }
                first_row.insert(id.clone(), row.origin.row);
                index_ref.insert(id.clone(), accounts.len());
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
                    quarters: BTreeMap::new(),
                    extra: row.extras(),
                    origin: row.origin.clone(),
                });
                Ok(Outcome::Used)
            },
        )?;
        account_kam_col = layout.field_cols[f_kam];
        for (i, col) in layout.field_cols.iter().enumerate() {
            if let Some(c) = col {
                ds.account_columns
                    .insert(k.fields()[i].name.to_string(), *c as u32);
            }
        }
        for (c, name) in &layout.extras {
            ds.account_columns.insert(name.clone(), *c as u32);
        }
        ds.account_extras = ExtraColumns {
            names: layout.extra_names(),
        };
        ds.sheets.push(report);
    }
    let derive_accounts = !assigned.contains_key(&SheetKind::Accounts);

    // Managers.
    let mut manager_ids: HashMap<String, u32> = HashMap::new();
    if let Some(name) = assigned.get(&SheetKind::Managers).cloned() {
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
        let managers = &mut ds.managers;
        let ids = &mut manager_ids;
        let (report, layout) = read_sheet(
            &mut book,
            k,
            &name,
            map_for(k),
            mapping_path,
            &mut rejects,
            &progress_for(&name),
            &mut |row: &Row<'_>, rj: &mut Rejects| {
                let Some(id) = row.text(f_id) else {
                    rj.push(
                        &name,
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
                        &name,
                        row.cell_of(f_id),
                        "id",
                        id.clone(),
                        format!(
                            "duplicate KAM id `{id}`: already used at {}; this row is not used",
                            cell_ref(&name, *first, col)
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
        ds.manager_extras = ExtraColumns {
            names: layout.extra_names(),
        };
        ds.sheets.push(report);
    }

    // Transactions, then the child sheets; in parallel (each on its own reader) unless the
    // accounts are derived from Transactions.
    let mut totals: Vec<TxTotals> = vec![TxTotals::default(); ds.accounts.len()];
    let run_tx = |book: &mut Book<'_>,
                  accounts: &mut Vec<Account>,
                  index: &mut HashMap<String, usize>,
                  totals: &mut Vec<TxTotals>,
                  rejects: &mut Rejects|
     -> Result<(Option<crate::model::SheetReport>, u64)> {
        let mut tx_report = None;
        let mut tx_lines = 0u64;
        let n_known = index.len();
        // Transactions.
        if let Some(name) = assigned.get(&SheetKind::Transactions).cloned() {
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
            let accounts = &mut *accounts;
            let index_ref = &mut *index;
            let totals_ref = &mut *totals;
            let lines = &mut tx_lines;
            let (report, _layout) = read_sheet(
                &mut *book,
                k,
                &name,
                map_for(k),
                mapping_path,
                &mut *rejects,
                &progress_for(&name),
                &mut |row: &Row<'_>, rj: &mut Rejects| {
                    let Some(acc) =
                        account_of(row, f_acc, &name, index_ref, n_known, derive_accounts, rj)?
                    else {
                        return Ok(Outcome::Rejected);
                    };
                    let amount = match (row.num(f_amount), row.num(f_qty), row.num(f_price)) {
                        (Some(a), _, _) => a,
                        (None, Some(q), Some(p)) => q * p,
                        _ => {
                            rj.push(
                                &name,
                                row.cell_of(f_amount),
                                "amount",
                                "",
                                "no amount: fill in the amount, or quantity and unit price",
                                RejectScope::Row,
                            )?;
                            return Ok(Outcome::Rejected);
                        }
                    };
                    let mut margin = row
                        .num(f_margin)
                        .or_else(|| row.num(f_cost).map(|c| amount - c));
                    let mut amount = amount;
                    if matches!(row.choice(f_type), Some("return" | "credit_note")) && amount > 0.0
                    {
                        amount = -amount;
                        margin = margin.map(|m| -m);
                    }
                    let acc = match acc {
                        AccountRef::Known(i) => i,
                        AccountRef::New(id) => {
                            let i = accounts.len();
                            index_ref.insert(id.clone(), i);
                            let name = row.text(f_accname).unwrap_or_else(|| id.clone());
                            let mut account = Account::new(id, name, row.origin.clone());
                            account.kam_id = row.text(f_kam);
                            account.figures_source = "transactions";
                            accounts.push(account);
                            totals_ref.push(TxTotals::default());
                            i
                        }
                    };
                    if derive_accounts && accounts[acc].kam_id.is_none() {
                        accounts[acc].kam_id = row.text(f_kam);
                    }
                    let t = &mut totals_ref[acc];
                    t.revenue += amount;
                    t.lines += 1;
                    if let Some(m) = margin {
                        t.gross_profit += m;
                        t.gp_lines += 1;
                    }
                    let q = row.date(f_date).map_or(UNDATED, quarter_index);
                    let fq = t.quarters.entry(q).or_default();
                    fq.revenue += amount;
                    fq.gross_profit += margin.unwrap_or(0.0);
                    fq.lines += 1;
                    *lines += 1;
                    Ok(Outcome::Used)
                },
            )?;
            tx_report = Some(report);
        }
        Ok((tx_report, tx_lines))
    };
    let run_children = |book: &mut Book<'_>,
                        accounts: &Vec<Account>,
                        index: &HashMap<String, usize>,
                        rejects: &mut Rejects|
     -> Result<Dataset> {
        let mut kids = Dataset::default();
        let child = |kind: SheetKind| {
            assigned
                .get(&kind)
                .map(|name| (kind, name.as_str(), map_for(kind), progress_for(name)))
        };
        if let Some((k, name, map, progress)) = child(SheetKind::Contacts) {
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
            let (list, report, extras) = read_child_sheet(
                &mut *book,
                k,
                name,
                map,
                mapping_path,
                index,
                &mut *rejects,
                &progress,
                |row, account, _| {
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
                },
            )?;
            (kids.contacts, kids.contact_extras) = (list, extras);
            kids.sheets.push(report);
        }
        if let Some((k, name, map, progress)) = child(SheetKind::Activities) {
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
            let (list, report, extras) = read_child_sheet(
                &mut *book,
                k,
                name,
                map,
                mapping_path,
                index,
                &mut *rejects,
                &progress,
                |row, account, rj| {
                    let Some(kind) = row.choice(f_type) else {
                        rj.push(name, row.cell_of(f_type), "type", "", "no activity type: write meeting, call, proposal, complaint, reference_letter, referral or deal", RejectScope::Row)?;
                        return Ok(None);
                    };
                    Ok(Some(Activity {
                        account,
                        kam_id: row.text(f_kam).or_else(|| accounts[account].kam_id.clone()),
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
            (kids.activities, kids.activity_extras) = (list, extras);
            kids.sheets.push(report);
        }
        if let Some((k, name, map, progress)) = child(SheetKind::Tenders) {
            let [f_kam, f_name, f_date, f_prep, f_val, f_out] =
                ["kam_id", "name", "date", "prep_start", "value", "outcome"].map(|n| field(k, n));
            let (list, report, extras) = read_child_sheet(
                &mut *book,
                k,
                name,
                map,
                mapping_path,
                index,
                &mut *rejects,
                &progress,
                |row, account, _| {
                    Ok(Some(Tender {
                        account,
                        kam_id: row.text(f_kam).or_else(|| accounts[account].kam_id.clone()),
                        name: row.text(f_name),
                        date: row.date(f_date),
                        prep_start: row.date(f_prep),
                        value: row.num(f_val),
                        outcome: row.choice(f_out),
                        extra: row.extras(),
                        origin: row.origin.clone(),
                    }))
                },
            )?;
            (kids.tenders, kids.tender_extras) = (list, extras);
            kids.sheets.push(report);
        }
        if let Some((k, name, map, progress)) = child(SheetKind::Plans) {
            let [f_kind, f_text, f_owner, f_due, f_status] =
                ["kind", "text", "owner", "due", "status"].map(|n| field(k, n));
            let (list, report, extras) = read_child_sheet(
                &mut *book,
                k,
                name,
                map,
                mapping_path,
                index,
                &mut *rejects,
                &progress,
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
            (kids.plans, kids.plan_extras) = (list, extras);
            kids.sheets.push(report);
        }
        Ok(kids)
    };
    let mut tx_rejects = Rejects {
        file: file.to_string(),
        list: Vec::new(),
        fail_fast: opts.fail_fast,
    };
    let mut kid_rejects = Rejects {
        file: file.to_string(),
        list: Vec::new(),
        fail_fast: opts.fail_fast,
    };
    let (tx_result, kids_result) = if derive_accounts || !opts.parallel {
        let tx = run_tx(
            &mut book,
            &mut ds.accounts,
            &mut index,
            &mut totals,
            &mut tx_rejects,
        );
        let kids = match &tx {
            Ok(_) => run_children(&mut book, &ds.accounts, &index, &mut kid_rejects),
            Err(_) => Ok(Dataset::default()),
        };
        (tx, kids)
    } else {
        let accounts_ro = &ds.accounts;
        let index_ro = &index;
        let totals_ref = &mut totals;
        let tx_rejects_ref = &mut tx_rejects;
        let run_tx = &run_tx;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                let mut own = Book::open(file, format, bytes)?;
                let mut no_new_accounts = Vec::new();
                let mut index = index_ro.clone();
                run_tx(
                    &mut own,
                    &mut no_new_accounts,
                    &mut index,
                    totals_ref,
                    tx_rejects_ref,
                )
            });
            let kids = run_children(&mut book, accounts_ro, index_ro, &mut kid_rejects);
            let tx = handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (tx, kids)
        })
    };
    let (tx_report, tx_lines) = tx_result?;
    let kids = kids_result?;
    ds.transaction_lines = tx_lines;
    ds.sheets.extend(tx_report);
    ds.sheets.extend(kids.sheets);
    ds.contacts = kids.contacts;
    ds.contact_extras = kids.contact_extras;
    ds.activities = kids.activities;
    ds.activity_extras = kids.activity_extras;
    ds.tenders = kids.tenders;
    ds.tender_extras = kids.tender_extras;
    ds.plans = kids.plans;
    ds.plan_extras = kids.plan_extras;
    rejects.list.extend(tx_rejects.list);
    rejects.list.extend(kid_rejects.list);

    for (acc, t) in ds.accounts.iter_mut().zip(&totals) {
        if t.lines == 0 {
            continue;
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
    }

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

/// Reads a sheet whose rows belong to an account: resolves the account id (rejecting rows whose
/// account is missing or unknown) and collects what `build` makes of each row (`None`: the row
/// was rejected by `build`, which recorded why).
#[allow(clippy::too_many_arguments)]
fn read_child_sheet<T>(
    book: &mut Book<'_>,
    kind: SheetKind,
    name: &str,
    mapping: Option<&mapping::SheetMapping>,
    mapping_path: Option<&Path>,
    index: &HashMap<String, usize>,
    rejects: &mut Rejects,
    progress: &dyn Fn(u64),
    mut build: impl FnMut(&Row<'_>, usize, &mut Rejects) -> Result<Option<T>>,
) -> Result<(Vec<T>, crate::model::SheetReport, ExtraColumns)> {
    let f_acc = field(kind, "account_id");
    let mut out = Vec::new();
    let (report, layout) = read_sheet(
        book,
        kind,
        name,
        mapping,
        mapping_path,
        rejects,
        progress,
        &mut |row, rj| {
            let Some(AccountRef::Known(account)) =
                account_of(row, f_acc, name, index, index.len(), false, rj)?
            else {
                return Ok(Outcome::Rejected);
            };
            Ok(match build(row, account, rj)? {
                Some(t) => {
                    out.push(t);
                    Outcome::Used
                }
                None => Outcome::Rejected,
            })
        },
    )?;
    Ok((
        out,
        report,
        ExtraColumns {
            names: layout.extra_names(),
        },
    ))
}

enum AccountRef {
    Known(usize),
    New(String),
}

/// Resolves a child row's account id; records a row reject when it is missing or unknown.
fn account_of(
    row: &Row<'_>,
    f_acc: usize,
    sheet: &str,
    index: &HashMap<String, usize>,
    n_accounts: usize,
    may_create: bool,
    rj: &mut Rejects,
) -> Result<Option<AccountRef>> {
    let Some(id) = row.str(f_acc) else {
        rj.push(
            sheet,
            row.cell_of(f_acc),
            "account_id",
            "",
            "no account id: the row cannot be matched to a client; fill it in or delete the row",
            RejectScope::Row,
        )?;
        return Ok(None);
    };
    if let Some(&i) = index.get(id) {
        return Ok(Some(AccountRef::Known(i)));
    }
    let id = id.to_string();
    if may_create {
        return Ok(Some(AccountRef::New(id)));
    }
    let hint = if n_accounts <= 20_000 {
        did_you_mean(&id, index.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default()
    } else {
        String::new()
    };
    rj.push(
        sheet,
        row.cell_of(f_acc),
        "account_id",
        id.clone(),
        format!("account `{id}` is not in Accounts{hint}; this row is not used"),
        RejectScope::Row,
    )?;
    Ok(None)
}
