//! The rule commands: `kam init`, `kam validate`, `kam test`, `kam explain`, and the
//! `--rules`/`--set` options they share with `kam run`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::diag::count;
use crate::error::{Error, Result};
use crate::import::{self, ImportOptions, Mapping};
use crate::model::Dataset;
use crate::rules::{self, RuleSet};
use crate::score::kams::KamEngine;
use crate::score::{Engine, explain, testing};

/// Options choosing the rules.
#[derive(Debug, Args, Clone, Default)]
pub struct RulesArgs {
    /// Folder of rule packs (*.yaml and their Lua files) replacing the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Override a param for this run (what-if), e.g. --set key_share=0.15. Repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

impl RulesArgs {
    /// Loads what can be loaded, with every problem found (for `kam validate`).
    pub fn load_lenient(&self) -> Result<(RuleSet, Vec<crate::diag::Diagnostic>)> {
        rules::load_lenient(self.rules.as_deref(), &self.sets()?).map_err(Error::Rules)
    }

    fn sets(&self) -> Result<Vec<(String, String)>> {
        self.set
            .iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| Error::Usage(format!("--set takes NAME=VALUE, not `{s}`")))
            })
            .collect()
    }

    /// Loads the rules with the `--set` values applied.
    pub fn load(&self) -> Result<RuleSet> {
        let mut sets = Vec::new();
        for s in &self.set {
            let Some((k, v)) = s.split_once('=') else {
                return Err(Error::Usage(format!("--set takes NAME=VALUE, not `{s}`")));
            };
            sets.push((k.trim().to_string(), v.trim().to_string()));
        }
        rules::load(self.rules.as_deref(), &sets).map_err(Error::Rules)
    }
}

/// Binds rules to a dataset.
pub fn engine(rules: &RuleSet, ds: &Dataset) -> Result<Engine> {
    Engine::new(rules, &ds.account_extras.names).map_err(Error::Rules)
}

/// Binds the KAM packs to a dataset (`None` when the rules have none).
pub fn kam_engine(rules: &RuleSet, ds: &Dataset) -> Result<Option<KamEngine>> {
    KamEngine::new(rules, ds).transpose().map_err(Error::Rules)
}

/// Imports one workbook (or the embedded sample) quietly.
pub fn import_quiet(workbook: Option<&Path>, mapping: Option<&Path>) -> Result<Dataset> {
    let mapping = match (mapping, workbook) {
        (Some(m), _) => Some(Mapping::load(m)?),
        (None, Some(w)) => Mapping::discover(w)
            .as_deref()
            .map(Mapping::load)
            .transpose()?,
        (None, None) => None,
    };
    let opts = ImportOptions {
        mapping: mapping.as_ref(),
        ..Default::default()
    };
    match workbook {
        Some(w) => import::import_path(w, &opts),
        None => import::import_bytes(crate::SAMPLE_NAME, crate::SAMPLE_WORKBOOK, &opts),
    }
}

/// Arguments of `kam init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write the default rule packs into (created if needed); the report templates
    /// go into its `templates/` subfolder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

/// Runs `kam init`.
pub fn init(args: &InitArgs) -> Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Error::io(format!("cannot create {}", args.dir.display()), e))?;
    use crate::report::templates::{DEFAULT_LANGS, DEFAULT_TEMPLATES};
    let tdir = args.dir.join("templates");
    let files: Vec<(PathBuf, &str)> = rules::DEFAULT_FILES
        .iter()
        .map(|(n, t)| (args.dir.join(n), *t))
        .chain(DEFAULT_TEMPLATES.iter().map(|(n, t)| (tdir.join(n), *t)))
        .chain(
            DEFAULT_LANGS
                .iter()
                .map(|(c, t)| (tdir.join("lang").join(format!("{c}.yaml")), *t)),
        )
        .collect();
    for (path, _) in &files {
        if path.exists() && !args.force {
            return Err(Error::Usage(format!(
                "{} exists; pass --force to overwrite it",
                path.display()
            )));
        }
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        std::fs::write(path, text)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        eprintln!("kam: wrote {}", path.display());
    }
    eprintln!(
        "kam: edit them, then `kam validate --rules {0}` and `kam run --rules {0} --templates {1}` \
         (keep only the templates you change: the others come from kam)",
        args.dir.display(),
        tdir.display()
    );
    Ok(super::EXIT_OK)
}

/// Arguments of `kam validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Rules to check.
    #[command(flatten)]
    pub rules: RulesArgs,
    /// A workbook, to check that the rules only read fields it has.
    #[arg(value_name = "WORKBOOK")]
    pub workbook: Option<PathBuf>,
    /// Mapping file for the workbook.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
}

/// Runs `kam validate`.
pub fn validate(args: &ValidateArgs) -> Result<u8> {
    let (rules, mut problems) = args.rules.load_lenient()?;
    let ds = match &args.workbook {
        Some(w) => import_quiet(Some(w), args.mapping.as_deref())?,
        None => Dataset::default(),
    };
    // A pack that could not be parsed would make every later check speak of what it lacks.
    if !rules.incomplete {
        if let Err(bind_problems) = Engine::new(&rules, &ds.account_extras.names) {
            problems.extend(bind_problems);
        }
        if let Some(Err(bind_problems)) = KamEngine::new(&rules, &ds) {
            problems.extend(bind_problems);
        }
    }
    if !problems.is_empty() {
        if args.workbook.is_none() {
            for p in &mut problems {
                if p.message.contains("is not a field, fact, param or measure")
                    && !p.hint.as_deref().unwrap_or("").starts_with("did you mean")
                {
                    p.hint = Some("if it is a column of your workbook, pass the workbook: kam validate WORKBOOK".into());
                }
            }
        }
        return Err(Error::Rules(problems));
    }
    println!(
        "rules OK: {} ({}), {}, {}, {}, {}, {}, {}",
        count(rules.packs.len(), "pack", "packs"),
        rules
            .packs
            .iter()
            .map(|p| p.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        count(rules.params.len(), "param", "params"),
        count(rules.measures.len(), "measure", "measures"),
        count(rules.tables.len(), "table", "tables"),
        count(rules.criteria.len(), "criterion", "criteria"),
        count(rules.bands.len(), "band", "bands"),
        count(rules.tests.len(), "test", "tests")
    );
    if !rules.kam.is_empty() {
        let k = &rules.kam;
        println!(
            "KAM rules: {}, {}, {}, {}, {}, {}, {}{}",
            count(k.metrics.len(), "metric", "metrics"),
            count(k.mistakes.len(), "mistake", "mistakes"),
            count(k.measures.len(), "measure", "measures"),
            count(k.tables.len(), "table", "tables"),
            count(k.criteria.len(), "criterion", "criteria"),
            count(k.bands.len(), "band", "bands"),
            k.pay.as_ref().map_or("no pay rules".to_string(), |p| count(
                p.rules.len(),
                "pay rule",
                "pay rules"
            )),
            if k.dossier.is_some() {
                ", a dossier standard"
            } else {
                ""
            }
        );
    }
    Ok(super::EXIT_OK)
}

/// Arguments of `kam test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Folder of rule packs (default: the built-in packs).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `kam test`.
pub fn test(args: &TestArgs) -> Result<u8> {
    let rules = rules::load(args.dir.as_deref(), &[]).map_err(Error::Rules)?;
    let outcomes = testing::run(&rules);
    let failed = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    for o in &outcomes {
        if o.failures.is_empty() {
            println!("ok      {} :: {}", o.pack, o.name);
        } else {
            println!("FAILED  {} :: {}  ({})", o.pack, o.name, o.location);
            for f in &o.failures {
                println!("        {f}");
            }
        }
    }
    println!("{} passed, {} failed", outcomes.len() - failed, failed);
    Ok(if failed > 0 {
        super::EXIT_PROBLEMS
    } else {
        super::EXIT_OK
    })
}

/// Arguments of `kam explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The account's id (leave out with --kam).
    #[arg(value_name = "ACCOUNT_ID", required_unless_present = "kam")]
    pub account: Option<String>,
    /// Explain a key account manager instead: every metric with its rows, the mistakes, the
    /// dossier, pay line by line, level, style and score (`kam explain --kam K1 [WORKBOOK]`).
    #[arg(long, value_name = "KAM_ID")]
    pub kam: Option<String>,
    /// The workbook (default: the embedded sample).
    #[arg(value_name = "WORKBOOK")]
    pub workbook: Option<PathBuf>,
    /// Rules to use.
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Mapping file for the workbook.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
}

/// Runs `kam explain`.
pub fn explain_cmd(args: &ExplainArgs) -> Result<u8> {
    let rules = args.rules.load()?;
    // With --kam, a lone positional is the workbook.
    let (account, workbook) = match (&args.kam, &args.account, &args.workbook) {
        (Some(_), Some(a), None) => (None, Some(PathBuf::from(a))),
        (Some(_), Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give either an account id or --kam, not both".into(),
            ));
        }
        _ => (args.account.clone(), args.workbook.clone()),
    };
    let ds = import_quiet(workbook.as_deref(), args.mapping.as_deref())?;
    if let Some(kam) = &args.kam {
        return explain_kam(&rules, &ds, kam);
    }
    let account = account.unwrap_or_default();
    let Some(index) = ds.account_index(&account) else {
        let ids: Vec<&str> = ds.accounts.iter().map(|a| a.id.as_str()).collect();
        let hint = crate::diag::did_you_mean(&account, ids.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(Error::Usage(format!(
            "no account `{account}` in {}{hint}",
            ds.file
        )));
    };
    let engine = engine(&rules, &ds)?;
    let scored = engine.explain_account(&ds, index);
    print!(
        "{}",
        explain::render(&engine, &ds, &scored, &scored.accounts[0])
    );
    Ok(super::EXIT_OK)
}

fn explain_kam(rules: &RuleSet, ds: &Dataset, kam: &str) -> Result<u8> {
    let Some(kam_engine) = kam_engine(rules, ds)? else {
        return Err(Error::Usage(
            "these rules have no KAM pack (scope: kams); `kam init DIR` writes the default one"
                .into(),
        ));
    };
    let engine = engine(rules, ds)?;
    let scored = engine.score(ds, 0, false)?;
    let all = kam_engine.score(ds, &scored.accounts, 0, true, None)?;
    let Some(m) = all.managers.iter().find(|m| m.kam_id == kam) else {
        let ids: Vec<&str> = all.managers.iter().map(|m| m.kam_id.as_str()).collect();
        let hint = crate::diag::did_you_mean(kam, ids.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| format!("; the KAMs are {}", ids.join(", ")));
        return Err(Error::Usage(format!("no KAM `{kam}` in {}{hint}", ds.file)));
    };
    print!(
        "{}",
        explain::render_kam(&kam_engine, ds, &scored.accounts, &all, m)
    );
    Ok(super::EXIT_OK)
}
