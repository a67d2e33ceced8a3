//! Account ids of a child sheet (Transactions, Contacts, Activities, Tenders, Plans) read at the
//! same time as the Accounts sheet: each id is numbered in order of first use and looked up once
//! Accounts has been read. The rows whose id is not in Accounts are then rejected, with the same
//! reject, in the same place of the rejects list, as when the sheet is read after Accounts.

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
    numbers: Numbers,
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
            Ids::Later(p) => Ok(Some(p.numbers.number(id) as usize)),
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
        let by_number: Vec<Option<usize>> = self
            .numbers
            .iter()
            .map(|id| index.get(id).copied())
            .collect();
        let reject = |n: u32, row: u32| {
            let (value, reason) = unknown_account(self.numbers.id(n), index);
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

/// Distinct ids numbered in order of first use: the ids laid end to end in one text, and a
/// table of numbers keyed by the ids' hashes. A million ids make three allocations instead of
/// a million boxed strings in a table of 24-byte entries, which kept the import's readers
/// busy zeroing fresh pages and rehashing (see docs/performance.md).
#[derive(Default)]
struct Numbers {
    /// The ids, end to end.
    text: String,
    /// Where each id ends in `text` (id `n` starts where id `n - 1` ends).
    ends: Vec<usize>,
    /// Each id's number and the low half of its hash (compared before the text).
    table: hashbrown::HashTable<(u32, u32)>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for Numbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The table's hash of an entry from the half kept in it: spread over all 64 bits, as the
/// table takes its buckets from the low bits and its tags from the top seven.
fn spread(low: u32) -> u64 {
    u64::from(low).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Numbers {
    /// The number of `id`, given the next free one if it is new.
    fn number(&mut self, id: &str) -> u32 {
        let low = self.hasher.hash_one(id.as_bytes()) as u32;
        let (text, ends) = (&self.text, &self.ends);
        let same = |&(n, h): &(u32, u32)| h == low && id_at(text, ends, n) == id;
        if let Some(&(n, _)) = self.table.find(spread(low), same) {
            return n;
        }
        let n = self.ends.len() as u32;
        self.text.push_str(id);
        self.ends.push(self.text.len());
        self.table
            .insert_unique(spread(low), (n, low), |&(_, h)| spread(h));
        n
    }

    /// The id numbered `n`.
    fn id(&self, n: u32) -> &str {
        id_at(&self.text, &self.ends, n)
    }

    /// The ids in order of their numbers.
    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|n| self.id(n))
    }
}

fn id_at<'t>(text: &'t str, ends: &[usize], n: u32) -> &'t str {
    let n = n as usize;
    let start = if n == 0 { 0 } else { ends[n - 1] };
    &text[start..ends[n]]
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

#[cfg(test)]
mod tests {
    use super::Numbers;

    #[test]
    fn ids_are_numbered_in_order_of_first_use_and_read_back() {
        let mut n = Numbers::default();
        // Ids that are prefixes of each other, repeated, and enough of them to make the table
        // grow several times (its entries are then placed by their kept hash halves).
        let ids: Vec<String> = (0..5_000).map(|i| format!("A{}", i % 1_700)).collect();
        let got: Vec<u32> = ids.iter().map(|id| n.number(id)).collect();
        let want: Vec<u32> = (0..5_000).map(|i| (i % 1_700) as u32).collect();
        assert_eq!(got, want);
        assert_eq!(n.iter().count(), 1_700);
        assert_eq!(n.id(0), "A0");
        assert_eq!(n.id(10), "A10");
        assert_eq!(n.id(1_699), "A1699");
        assert_eq!(n.number("A1"), 1);
        assert_eq!(n.number("A"), 1_700);
        assert_eq!(n.number("é ü"), 1_701);
        assert_eq!(n.iter().last(), Some("é ü"));
    }
}
