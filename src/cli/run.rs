//! `kam run`: import each workbook and write the output folder.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::{EXIT_OK, EXIT_PROBLEMS};
use crate::error::{Error, Result};
use crate::import::{self, ImportOptions, Mapping};
use crate::model::{Dataset, RejectScope};
use crate::output::scores::ScoresWriter;
use crate::output::{Staging, files, slug};

/// Arguments of `kam run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Workbooks to process (.xlsx, .xlsm, .xlsb, .xls, .ods). None: the embedded sample.
    #[arg(value_name = "WORKBOOK")]
    pub workbooks: Vec<PathBuf>,
    /// Output folder; replaced as a whole when the run succeeds.
    #[arg(long, short, value_name = "DIR", default_value = "kam-out")]
    pub out: PathBuf,
    /// Rules to score with.
    #[command(flatten)]
    pub rules: super::rules::RulesArgs,
    /// Record every rule in scores.json, not only those that matched.
    #[arg(long)]
    pub trace: bool,
    /// Print the time each stage took (also in manifest.json).
    #[arg(long)]
    pub timings: bool,
    /// Mapping file for exports not in kam's layout (default: `<workbook>.mapping.yaml` or
    /// `kam-mapping.yaml` beside the workbook).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Exit with code 1 when any row or cell was rejected or any rule failed on an account.
    #[arg(long)]
    pub strict: bool,
    /// Stop at the first rejected row or cell, or rule error (exit code 2, previous output kept).
    #[arg(long)]
    pub fail_fast: bool,
    /// No progress and no summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            workbooks: Vec::new(),
            out: PathBuf::from("kam-out"),
            mapping: None,
            rules: Default::default(),
            trace: false,
            timings: false,
            jobs: None,
            strict: false,
            fail_fast: false,
            quiet: false,
        }
    }
}

struct Input {
    display: String,
    path: Option<PathBuf>,
}

struct Imported {
    input: Input,
    dataset: Dataset,
}

fn progress_bar(enabled: bool) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

fn import_one(input: &Input, args: &RunArgs, bar: &Option<ProgressBar>) -> Result<Imported> {
    let mapping_path = match (&args.mapping, &input.path) {
        (Some(m), _) => Some(m.clone()),
        (None, Some(p)) => Mapping::discover(p),
        (None, None) => None,
    };
    let mapping = mapping_path.as_deref().map(Mapping::load).transpose()?;
    let file = input.display.clone();
    let progress = move |sheet: &str, rows: u64| {
        if let Some(pb) = bar {
            pb.set_message(format!("importing {file}: {sheet} {rows} rows"));
        }
    };
    let opts = ImportOptions {
        mapping: mapping.as_ref(),
        fail_fast: args.fail_fast,
        progress: &progress,
        parallel: args.jobs != Some(1),
    };
    let owned;
    let bytes: &[u8] = match &input.path {
        Some(p) => {
            owned = import::read_workbook(p)?;
            &owned
        }
        None => crate::SAMPLE_WORKBOOK,
    };
    let dataset = import::import_bytes(&input.display, bytes, &opts)?;
    Ok(Imported {
        input: Input {
            display: input.display.clone(),
            path: input.path.clone(),
        },
        dataset,
    })
}

/// Runs `kam run`.
pub fn execute(args: &RunArgs) -> Result<u8> {
    if args.jobs == Some(0) {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    let rules = args.rules.load()?;
    let inputs: Vec<Input> = if args.workbooks.is_empty() {
        vec![Input {
            display: crate::SAMPLE_NAME.to_string(),
            path: None,
        }]
    } else {
        args.workbooks
            .iter()
            .map(|p| Input {
                display: p.display().to_string(),
                path: Some(p.clone()),
            })
            .collect()
    };
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let bar = progress_bar(show_progress);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot start {} worker threads: {e}",
                args.jobs.unwrap_or(0)
            ))
        })?;
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let started = std::time::Instant::now();
    let results: Vec<Option<Imported>> = pool.install(|| {
        inputs
            .par_iter()
            .map(|input| match import_one(input, args, &bar) {
                Ok(i) => Some(i),
                Err(e) => {
                    let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                    None
                }
            })
            .collect()
    });
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let imported: Vec<Imported> = results.into_iter().flatten().collect();
    let import_s = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let packs: Vec<(String, String)> = rules
        .packs
        .iter()
        .map(|p| (p.name.clone(), p.path.display().to_string()))
        .collect();
    let staging = Staging::begin(&args.out)?;
    // One folder per workbook when there are several.
    let multi = imported.len() > 1;
    let mut used_names: Vec<String> = Vec::new();
    let mut folders = Vec::new();
    for imp in &imported {
        folders.push(if multi {
            let stem = imp
                .input
                .path
                .as_deref()
                .and_then(Path::file_stem)
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "sample".into());
            let base = slug(&stem);
            let mut name = base.clone();
            let mut n = 2;
            while used_names.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            used_names.push(name.clone());
            format!("{name}/")
        } else {
            String::new()
        });
    }
    // Score each workbook, writing scores.json account by account as results come.
    let mut scored = Vec::new();
    let mut kam_s = 0.0;
    for (imp, prefix) in imported.iter().zip(&folders) {
        let ds = &imp.dataset;
        let engine = super::rules::engine(&rules, ds)?;
        let (path, mut file) = staging.create(&format!("{prefix}scores.json"))?;
        let io_error = |e: std::io::Error| Error::io(format!("cannot write {}", path.display()), e);
        let mut out = ScoresWriter::begin(&mut file).map_err(io_error)?;
        let output_names = engine.output_names().to_vec();
        let measure_names: Vec<String> = engine
            .rules()
            .measures
            .iter()
            .map(|m| m.name.clone())
            .collect();
        let kam_engine = super::rules::kam_engine(&rules, ds)?;
        let mut s = engine.score_streaming(ds, args.jobs.unwrap_or(0), args.trace, &mut |r| {
            if args.fail_fast
                && let Some(e) = r.errors.first()
            {
                return Err(Error::FailFast(format!(
                    "{}: account {}: rule {}: {}",
                    imp.input.display, ds.accounts[r.index].id, e.rule, e.message
                )));
            }
            out.account(ds, &output_names, &measure_names, r)
                .map_err(io_error)
        })?;
        if let Some(k) = &kam_engine {
            let t = std::time::Instant::now();
            let m = k.score(ds, &s.accounts, args.jobs.unwrap_or(0), args.trace, None)?;
            kam_s += t.elapsed().as_secs_f64();
            if args.fail_fast
                && let Some((kam, e)) = m
                    .managers
                    .iter()
                    .find_map(|k| k.verdict.errors.first().map(|e| (k, e)))
            {
                return Err(Error::FailFast(format!(
                    "{}: KAM {}: rule {}: {}",
                    imp.input.display, kam.kam_id, e.rule, e.message
                )));
            }
            s.managers = Some(m);
        }
        out.finish(ds, &s, &packs).map_err(io_error)?;
        std::io::Write::flush(&mut file).map_err(io_error)?;
        scored.push(s);
    }
    let scoring_s = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    for (imp, prefix) in imported.iter().zip(&folders) {
        let ds = &imp.dataset;
        staging.write(&format!("{prefix}rejects.csv"), &files::rejects_csv(&[ds])?)?;
        staging.write(&format!("{prefix}accounts.csv"), &files::accounts_csv(ds)?)?;
        staging.write(
            &format!("{prefix}import.json"),
            &files::to_json_bytes(&files::import_json(ds)),
        )?;
    }
    let manifest = serde_json::json!({
        "kam_version": env!("CARGO_PKG_VERSION"),
        "inputs": imported.iter().zip(&folders).map(|(i, f)| serde_json::json!({
            "file": i.input.display,
            "format": i.dataset.format,
            "output": if f.is_empty() { ".".to_string() } else { f.trim_end_matches('/').to_string() },
            "accounts": i.dataset.accounts.len(),
            "rejects": i.dataset.rejects.len(),
        })).collect::<Vec<_>>(),
        // Wall-clock seconds per stage: the only part of the output that differs between runs.
        "timings": {
            "import_s": (import_s * 1000.0).round() / 1000.0,
            "scoring_s": (scoring_s * 1000.0).round() / 1000.0,
            "kam_metrics_s": (kam_s * 1000.0).round() / 1000.0,
            "writing_s": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        },
    });
    staging.write(crate::output::MARKER, &files::to_json_bytes(&manifest))?;
    let out = staging.commit()?;
    let writing_s = started.elapsed().as_secs_f64();
    if args.timings {
        eprintln!(
            "kam: timings: import {import_s:.3} s, scoring {scoring_s:.3} s (of which KAM metrics {kam_s:.3} s), writing {writing_s:.3} s"
        );
    }

    let rejects: usize = imported.iter().map(|i| i.dataset.rejects.len()).sum();
    let rule_errors: usize = scored.iter().map(|s| s.error_count()).sum();
    if !args.quiet {
        for (imp, sc) in imported.iter().zip(&scored) {
            let ds = &imp.dataset;
            let rows = ds
                .rejects
                .iter()
                .filter(|r| r.scope == RejectScope::Row)
                .count();
            let cells = ds.rejects.len() - rows;
            eprintln!(
                "kam: {}: {} accounts, {} transaction lines, {} contacts, {} activities, {} tenders, {} managers, {} plan items; {} rows rejected, {} cells doubtful",
                imp.input.display,
                ds.accounts.len(),
                ds.transaction_lines,
                ds.contacts.len(),
                ds.activities.len(),
                ds.tenders.len(),
                ds.managers.len(),
                ds.plans.len(),
                rows,
                cells
            );
            let mut bands: Vec<(String, usize)> = Vec::new();
            for b in &rules.bands {
                let n = sc.accounts.iter().filter(|a| a.band == b.name).count();
                bands.push((b.name.clone(), n));
            }
            eprintln!(
                "kam:   {} key accounts ({}); {} rule errors{}",
                sc.accounts.iter().filter(|a| a.key).count(),
                bands
                    .iter()
                    .map(|(b, n)| format!("{b} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                sc.error_count(),
                sc.portfolio
                    .warnings
                    .iter()
                    .chain(sc.portfolio_flags.iter().map(|f| &f.reason))
                    .map(|w| format!("; {w}"))
                    .collect::<String>()
            );
            if let Some(m) = &sc.managers {
                let mut ranked: Vec<&crate::score::kams::ManagerResult> =
                    m.managers.iter().collect();
                ranked.sort_by_key(|k| k.rank);
                eprintln!(
                    "kam:   {} KAMs judged for {}: {}",
                    m.managers.len(),
                    m.period.label,
                    ranked
                        .iter()
                        .map(|k| format!("{} {}", k.kam_id, k.verdict.band))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let errors: Vec<String> = sc
                .accounts
                .iter()
                .flat_map(|r| r.errors.iter().map(move |e| (r, e)))
                .map(|(r, e)| {
                    format!(
                        "account {}: rule {}: {}",
                        ds.accounts[r.index].id, e.rule, e.message
                    )
                })
                .chain(sc.managers.iter().flat_map(|m| {
                    m.managers.iter().flat_map(|k| {
                        k.verdict.errors.iter().map(move |e| {
                            format!("KAM {}: rule {}: {}", k.kam_id, e.rule, e.message)
                        })
                    })
                }))
                .collect();
            for e in errors.iter().take(5) {
                eprintln!("kam:   rule error: {e}");
            }
            if errors.len() > 5 {
                eprintln!(
                    "kam:   … and {} more rule errors (see scores.json)",
                    errors.len() - 5
                );
            }
            for (sheet, reason) in &ds.ignored_sheets {
                eprintln!("kam:   sheet '{sheet}' ignored: {reason}");
            }
        }
        let see = if rejects > 0 {
            format!(" (see {})", out.join("rejects.csv").display())
        } else {
            String::new()
        };
        eprintln!("kam: wrote {}{see}", out.display());
    }
    Ok(if args.strict && (rejects > 0 || rule_errors > 0) {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    })
}
