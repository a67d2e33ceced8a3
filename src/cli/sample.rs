//! `kam sample`: writes a synthetic workbook.

use std::path::PathBuf;

use crate::diag::count;
use clap::Args;

use crate::error::Result;
use crate::sample::{SampleOptions, write_sample};

/// Arguments of `kam sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Where to write the workbook (.xlsx).
    #[arg(value_name = "OUT.xlsx")]
    pub out: PathBuf,
    /// Number of accounts.
    #[arg(long, default_value_t = 1000)]
    pub accounts: usize,
    /// Number of key account managers.
    #[arg(long, default_value_t = 10)]
    pub kams: usize,
    /// Random seed: the same seed gives the same workbook, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Transaction lines (default: 10 per account; at most one sheet, 1 048 000).
    #[arg(long)]
    pub transactions: Option<usize>,
    /// Activities (default: 10 per account; at most 1 048 000).
    #[arg(long)]
    pub activities: Option<usize>,
    /// Print nothing.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `kam sample`.
pub fn execute(args: &SampleArgs) -> Result<u8> {
    let opts = SampleOptions {
        accounts: args.accounts,
        kams: args.kams,
        seed: args.seed,
        transactions: args.transactions,
        activities: args.activities,
    };
    let c = write_sample(&opts, &args.out)?;
    if !args.quiet {
        eprintln!(
            "kam: wrote {}: {}, {}, {}, {}, {}, {}, {}",
            args.out.display(),
            count(c.accounts, "account", "accounts"),
            count(c.transactions, "transaction line", "transaction lines"),
            count(c.contacts, "contact", "contacts"),
            count(c.activities, "activity", "activities"),
            count(c.tenders, "tender", "tenders"),
            count(c.managers, "manager", "managers"),
            count(c.plans, "plan item", "plan items")
        );
    }
    Ok(super::EXIT_OK)
}
