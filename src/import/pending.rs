//! Account ids of a child sheet (Transactions, Contacts, Activities, Tenders, Plans) read at the
//! same time as the Accounts sheet: each id is numbered in order of first use and looked up once
//! Accounts has been read. The rows whose id is not in Accounts are then rejected, with the same
//! reject, in the same place of the rejects list, as when the sheet is read after Accounts.

use std::collections::HashMap;

use super::Rejects;
use super::sheet::Row;
use crate::diag::did_you_mean;
use crate::error::Result;
use crate::model::{Reject, RejectScope, SheetReport, cell_ref};

/// How a child sheet turns a row's account id into an account number.
pub(super) enum Ids<'a> {
    /// Looked up in the Accounts index as each row is read; unknown ids are rejected at once.
    Now(&'a super::IdIndex),
    /// Numbered now, looked up when Accounts has been read ([`Pending::resolve`]).
    Later(Pending),
}

/// The ids of one sheet waiting for the Accounts sheet, and where its rows' rejects go.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Id → provisional number, in order of first use.
    numbers: HashMap<Box<str>, u32, ahash::RandomState>,
    /// Each row used so far: provisional number, row, and how many rejects the sheet had
    /// recorded when the row's own checks began (where its reject goes if its id is unknown).
    pub rows: Vec<[u32; 3]>,
    /// Rows the sheet's own checks rejected: the index of that reject, the provisional number
    /// and the row. Read after Accounts, such a row would have been rejected for its id.
    checked_out: Vec<(usize, u32, u32)>,
}

impl Ids<'_> {
    /// The account number of a row (provisional with [`Ids::Later`]), or `None` when the row
    /// was rejected (the reject is recorded).
    pub fn account(
        &mut self,
        row: &Row<'_>,
        f_acc: usize,
        sheet: &str,
        rj: &mut Rejects,
    ) -> Result<Option<usize>> {
        let Some(id) = account_id(row, f_acc, sheet, rj)? else {
            return Ok(None);
        };
        match self {
            Ids::Now(index) => match index.get(id) {
                Some(&i) => Ok(Some(i)),
                None => {
                    let (value, reason) = unknown_account(id, index);
                    rj.push(
                        sheet,
                        row.cell_of(f_acc),
                        "account_id",
                        value,
                        reason,
                        RejectScope::Row,
                    )?;
                    Ok(None)
                }
            },
            Ids::Later(p) => {
                // Looked up before inserting: most rows repeat an id already numbered, and
                // the entry API would copy the id for each of them.
                let n = match p.numbers.get(id) {
                    Some(&n) => n,
                    None => {
                        let n = p.numbers.len() as u32;
                        p.numbers.insert(Box::from(id), n);
                        n
                    }
                };
                Ok(Some(n as usize))
            }
        }
    }

    /// Notes how the sheet's own checks judged a row whose account number is `account`;
    /// `rejects_before` is the rejects count before those checks.
    pub fn note(&mut self, account: usize, row: &Row<'_>, used: bool, rejects_before: usize) {
        let Ids::Later(p) = self else { return };
        if used {
            p.rows
                .push([account as u32, row.origin.row, rejects_before as u32]);
        } else {
            p.checked_out
                .push((rejects_before, account as u32, row.origin.row));
        }
    }
}

impl Pending {
    /// Looks the ids up in the Accounts index. Returns the account of each provisional number
    /// (`None`: not in Accounts). Each row of the sheet `report` describes used with an unknown id becomes a rejected row:
    /// its reject is inserted where it would have been recorded, and `report` counts it.
    pub fn resolve(
        &self,
        index: &super::IdIndex,
        account_col: u32,
        rejects: &mut Vec<Reject>,
        file: &str,
        report: &mut SheetReport,
    ) -> Vec<Option<usize>> {
        let sheet = report.sheet.clone();
        let sheet = sheet.as_str();
        let mut ids: Vec<&str> = vec![""; self.numbers.len()];
        let mut by_number: Vec<Option<usize>> = vec![None; self.numbers.len()];
        for (id, &n) in &self.numbers {
            ids[n as usize] = id;
            by_number[n as usize] = index.get(&**id).copied();
        }
        let reject = |n: u32, row: u32| {
            let (value, reason) = unknown_account(ids[n as usize], index);
            Reject {
                file: file.to_string(),
                sheet: sheet.to_string(),
                cell: cell_ref(sheet, row, account_col),
                field: "account_id".to_string(),
                value,
                reason,
                scope: RejectScope::Row,
            }
        };
        for &(at, n, row) in &self.checked_out {
            if by_number[n as usize].is_none()
                && let Some(r) = rejects.get_mut(at)
            {
                *r = reject(n, row);
            }
        }
        let unknown = self
            .rows
            .iter()
            .filter(|[n, ..]| by_number[*n as usize].is_none())
            .count();
        if unknown == 0 {
            return by_number;
        }
        let old = std::mem::take(rejects);
        let mut out = Vec::with_capacity(old.len() + unknown);
        let mut old = old.into_iter();
        let mut taken = 0usize;
        for &[n, row, at] in &self.rows {
            if by_number[n as usize].is_some() {
                continue;
            }
            while taken < at as usize {
                let Some(r) = old.next() else { break };
                out.push(r);
                taken += 1;
            }
            out.push(reject(n, row));
        }
        out.extend(old);
        *rejects = out;
        report.rows_used -= unknown as u64;
        report.rows_rejected += unknown as u64;
        by_number
    }

    /// Keeps the records (one per row used, in order) whose account is known, with their
    /// account numbers set.
    pub fn place<T>(
        &self,
        records: Vec<T>,
        by_number: &[Option<usize>],
        account: impl Fn(&mut T) -> &mut usize,
    ) -> Vec<T> {
        debug_assert_eq!(records.len(), self.rows.len());
        records
            .into_iter()
            .zip(&self.rows)
            .filter_map(|(mut t, [n, ..])| {
                let a = by_number[*n as usize]?;
                *account(&mut t) = a;
                Some(t)
            })
            .collect()
    }
}

/// A child row's account id; `None` when it is empty (a row reject is recorded).
pub(super) fn account_id<'r>(
    row: &'r Row<'_>,
    f_acc: usize,
    sheet: &str,
    rj: &mut Rejects,
) -> Result<Option<&'r str>> {
    let id = row.str(f_acc);
    if id.is_none() {
        rj.push(
            sheet,
            row.cell_of(f_acc),
            "account_id",
            "",
            "no account id: the row cannot be matched to a client; fill it in or delete the row",
            RejectScope::Row,
        )?;
    }
    Ok(id)
}

/// The value and reason of the reject for an id that is not in Accounts.
pub(super) fn unknown_account(id: &str, index: &super::IdIndex) -> (String, String) {
    // A "did you mean" costs a comparison with every id: only for portfolios of human size.
    let hint = if index.len() <= 20_000 {
        did_you_mean(id, index.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default()
    } else {
        String::new()
    };
    (
        id.to_string(),
        format!("account `{id}` is not in Accounts{hint}; this row is not used"),
    )
}
