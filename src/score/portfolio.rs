//! The portfolio pass: totals, shares, rank, cumulative share, ABC class, Pareto set, HHI and
//! top shares, computed once before accounts are scored.
//!
//! Conventions (documented in `docs/rules.md`): rank by the basis value descending, ties by
//! account id; an account is class A while the cumulative share *before* it is below the A
//! cut-off (so the account that crosses 80 % is A), B while below the B cut-off, else C; the
//! Pareto set is class A. Accounts whose basis value is not known are ranked last and have no
//! share. When the total is zero or negative, shares are not known and a warning says why.

use crate::model::Dataset;
use rayon::prelude::*;

/// Which figure the portfolio is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Gross profit (the methodology's preference).
    GrossProfit,
    /// Revenue.
    Revenue,
}

impl Basis {
    /// `gross_profit` or `revenue`.
    pub fn name(self) -> &'static str {
        match self {
            Basis::GrossProfit => "gross_profit",
            Basis::Revenue => "revenue",
        }
    }
}

/// Per-account facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFacts {
    /// Share on the basis.
    pub share: Option<f64>,
    /// Share of gross profit.
    pub profit_share: Option<f64>,
    /// Share of revenue.
    pub revenue_share: Option<f64>,
    /// Rank (1-based).
    pub rank: usize,
    /// Cumulative share before.
    pub cum_share_before: Option<f64>,
    /// Cumulative share including the account.
    pub cum_share: Option<f64>,
    /// 'A', 'B' or 'C' (unknown share: 'C').
    pub abc: &'static str,
}

/// Portfolio aggregates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortfolioFacts {
    /// Basis.
    pub basis: &'static str,
    /// Accounts.
    pub accounts: usize,
    /// Total gross profit of accounts where it is known.
    pub total_gross_profit: f64,
    /// Total revenue of accounts where it is known.
    pub total_revenue: f64,
    /// Total on the basis.
    pub total_basis: f64,
    /// HHI (0–1), when shares are known.
    pub hhi: Option<f64>,
    /// Largest share.
    pub top1_share: Option<f64>,
    /// Five largest shares.
    pub top5_share: Option<f64>,
    /// Accounts in class A.
    pub pareto_accounts: usize,
    /// Innovator accounts.
    pub innovators: usize,
    /// A cut-off used.
    pub a_cutoff: f64,
    /// B cut-off used.
    pub b_cutoff: f64,
    /// What made facts unknown (zero or negative totals, …).
    pub warnings: Vec<String>,
}

fn share_of(v: Option<f64>, total: f64) -> Option<f64> {
    if total > 0.0 {
        v.map(|x| x / total)
    } else {
        None
    }
}

/// Runs the portfolio pass.
pub fn compute(
    ds: &Dataset,
    basis: Basis,
    a_cutoff: f64,
    b_cutoff: f64,
) -> (Vec<AccountFacts>, PortfolioFacts) {
    let n = ds.accounts.len();
    let total_gp: f64 = ds.accounts.iter().filter_map(|a| a.gross_profit).sum();
    let total_rev: f64 = ds.accounts.iter().filter_map(|a| a.revenue).sum();
    let value = |i: usize| match basis {
        Basis::GrossProfit => ds.accounts[i].gross_profit,
        Basis::Revenue => ds.accounts[i].revenue,
    };
    let total = match basis {
        Basis::GrossProfit => total_gp,
        Basis::Revenue => total_rev,
    };
    // Largest first, accounts without a value last, then by id (then by row, so the order is
    // total). Sorted on compact keys in parallel: a million accounts sorted through their
    // records took a cache miss per comparison.
    let mut keys: Vec<(Option<f64>, usize)> =
        (0..n).into_par_iter().map(|i| (value(i), i)).collect();
    keys.par_sort_unstable_by(|&(vx, x), &(vy, y)| {
        match (vx, vy) {
            (Some(a), Some(b)) => b.total_cmp(&a),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| ds.accounts[x].id.cmp(&ds.accounts[y].id))
        .then(x.cmp(&y))
    });
    let order: Vec<usize> = keys.into_iter().map(|(_, i)| i).collect();
    let mut facts = vec![AccountFacts::default(); n];
    let mut cum = 0.0;
    let mut hhi = 0.0;
    let mut pareto = 0;
    for (r, &i) in order.iter().enumerate() {
        let share = share_of(value(i), total);
        let f = &mut facts[i];
        f.rank = r + 1;
        f.share = share;
        f.profit_share = share_of(ds.accounts[i].gross_profit, total_gp);
        f.revenue_share = share_of(ds.accounts[i].revenue, total_rev);
        f.abc = "C";
        if let Some(s) = share {
            f.cum_share_before = Some(cum);
            f.abc = if cum < a_cutoff {
                "A"
            } else if cum < b_cutoff {
                "B"
            } else {
                "C"
            };
            cum += s;
            f.cum_share = Some(cum);
            hhi += s * s;
            if f.abc == "A" {
                pareto += 1;
            }
        }
    }
    let known = total > 0.0;
    let mut warnings = Vec::new();
    if !known {
        warnings.push(format!(
            "total {} of the portfolio is {}: shares, ABC classes, Pareto set and HHI are not known",
            basis.name().replace('_', " "),
            crate::model::value::format_number(total)
        ));
    } else if ds
        .accounts
        .iter()
        .any(|a| matches!(basis, Basis::GrossProfit) && a.gross_profit.is_some_and(|g| g < 0.0))
    {
        warnings.push("some accounts have negative gross profit: their shares are negative and the others' add up to more than 100 %".to_string());
    }
    let top = |k: usize| -> Option<f64> {
        known.then(|| order.iter().take(k).filter_map(|&i| facts[i].share).sum())
    };
    let portfolio = PortfolioFacts {
        basis: basis.name(),
        accounts: n,
        total_gross_profit: total_gp,
        total_revenue: total_rev,
        total_basis: total,
        hhi: known.then_some(hhi),
        top1_share: top(1),
        top5_share: top(5),
        pareto_accounts: pareto,
        innovators: ds
            .accounts
            .iter()
            .filter(|a| a.innovator == Some(true))
            .count(),
        a_cutoff,
        b_cutoff,
        warnings,
    };
    (facts, portfolio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Account, Origin};
    use std::sync::Arc;

    fn ds(gps: &[(&str, Option<f64>)]) -> Dataset {
        let accounts = gps
            .iter()
            .map(|(id, gp)| {
                let mut a = Account::new(
                    id.to_string(),
                    id.to_string(),
                    Origin {
                        sheet: Arc::from("Accounts"),
                        row: 2,
                    },
                );
                a.revenue = gp.map(|g| g * 4.0);
                a.gross_profit = *gp;
                a
            })
            .collect();
        Dataset {
            accounts,
            ..Default::default()
        }
    }

    #[test]
    fn the_account_that_crosses_the_cutoff_is_class_a_and_ties_go_by_id() {
        let d = ds(&[
            ("B", Some(50.0)),
            ("A", Some(30.0)),
            ("C", Some(30.0)),
            ("D", Some(10.0)),
            ("E", None),
        ]);
        let (f, p) = compute(&d, Basis::GrossProfit, 0.8, 0.95);
        let ranks: Vec<usize> = f.iter().map(|x| x.rank).collect();
        assert_eq!(
            ranks,
            [1, 2, 3, 4, 5],
            "B 50, then A and C tied at 30 by id, D, then the unknown E"
        );
        let classes: Vec<&str> = f.iter().map(|x| x.abc).collect();
        // Cumulative before: B 0, A 0.4166…, C 0.6666… (< 0.8: A), D 0.9166… (< 0.95: B), E unknown.
        assert_eq!(classes, ["A", "A", "A", "B", "C"]);
        assert_eq!(p.pareto_accounts, 3);
        assert_eq!(f[4].share, None);
        let hhi =
            (50.0f64 / 120.0).powi(2) + 2.0 * (30.0f64 / 120.0).powi(2) + (10.0f64 / 120.0).powi(2);
        assert!((p.hhi.unwrap() - hhi).abs() < 1e-12);
        assert!((p.top1_share.unwrap() - 50.0 / 120.0).abs() < 1e-12);
    }

    #[test]
    fn a_zero_or_negative_total_makes_shares_unknown_and_says_so() {
        let (f, p) = compute(
            &ds(&[("A", Some(0.0)), ("B", Some(0.0))]),
            Basis::GrossProfit,
            0.8,
            0.95,
        );
        assert!(f.iter().all(|x| x.share.is_none() && x.abc == "C"));
        assert_eq!(p.hhi, None);
        assert_eq!(
            p.warnings,
            [
                "total gross profit of the portfolio is 0: shares, ABC classes, Pareto set and HHI are not known"
            ]
        );
        let (_, p) = compute(
            &ds(&[("A", Some(-5.0)), ("B", Some(2.0))]),
            Basis::GrossProfit,
            0.8,
            0.95,
        );
        assert_eq!(
            p.warnings,
            [
                "total gross profit of the portfolio is -3: shares, ABC classes, Pareto set and HHI are not known"
            ]
        );
        let (f, p) = compute(
            &ds(&[("A", Some(-5.0)), ("B", Some(10.0))]),
            Basis::GrossProfit,
            0.8,
            0.95,
        );
        assert_eq!(f[1].share, Some(2.0));
        assert!(p.warnings[0].starts_with("some accounts have negative gross profit"));
    }

    #[test]
    fn one_account_with_all_the_profit() {
        let (f, p) = compute(
            &ds(&[("A", Some(100.0)), ("B", Some(0.0))]),
            Basis::Revenue,
            0.8,
            0.95,
        );
        assert_eq!(f[0].share, Some(1.0));
        assert_eq!(p.hhi, Some(1.0));
        assert_eq!(p.basis, "revenue");
        assert_eq!(f[1].abc, "C");
    }
}
