//! The previous run (`--previous DIR`): what its `scores.json` said about each account, to
//! report movements and actions done since.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// An account as the previous run scored it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PreviousAccount {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Score.
    #[serde(default)]
    pub score: Option<f64>,
    /// Band.
    #[serde(default)]
    pub band: Option<String>,
    /// Key.
    #[serde(default)]
    pub key: Option<bool>,
    /// Dependency.
    #[serde(default)]
    pub dependency: Option<String>,
    /// Shares.
    #[serde(default)]
    shares: Option<PreviousShares>,
    /// Share on the basis (from `shares.share`).
    #[serde(skip)]
    pub share: Option<f64>,
    /// Plan actions with their status.
    #[serde(default)]
    pub actions: Vec<PreviousAction>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct PreviousShares {
    #[serde(default)]
    share: Option<f64>,
}

/// An action of the previous run's plan.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PreviousAction {
    /// What.
    pub text: String,
    /// Its status then.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Deserialize)]
struct Doc {
    schema: Option<String>,
    accounts: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    #[serde(flatten)]
    account: PreviousAccount,
}

/// The previous run.
#[derive(Debug, Clone, PartialEq)]
pub struct Previous {
    /// The folder it was read from.
    pub dir: String,
    /// Accounts by id.
    pub accounts: BTreeMap<String, PreviousAccount>,
}

impl Previous {
    /// Reads `DIR/scores.json` of an earlier run.
    pub fn load(dir: &Path) -> Result<Previous> {
        let path = dir.join("scores.json");
        let file = std::fs::File::open(&path).map_err(|e| {
            Error::io(
                format!(
                    "cannot read the previous run {} (--previous takes the output folder of an earlier `kam run`)",
                    path.display()
                ),
                e,
            )
        })?;
        let doc: Doc = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
            Error::Usage(format!(
                "{}:{}:{}: not a kam scores.json: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        if let Some(s) = &doc.schema
            && !s.starts_with("kam-scores/")
        {
            return Err(Error::Usage(format!(
                "{}: schema `{s}` is not kam's (expected kam-scores/1)",
                path.display()
            )));
        }
        let accounts = doc
            .accounts
            .into_iter()
            .map(|mut e| {
                e.account.share = e.account.shares.as_ref().and_then(|s| s.share);
                (e.id, e.account)
            })
            .collect();
        Ok(Previous {
            dir: dir.display().to_string(),
            accounts,
        })
    }
}
