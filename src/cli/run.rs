//! `kam run`: import each workbook and write the output folder.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::{EXIT_OK, EXIT_PROBLEMS};
use crate::diag::count;
use crate::error::{Error, Result};
use crate::import::{self, ImportOptions, Mapping};
use crate::model::Dataset;
use crate::output::scores::{AccountJson, ScoresWriter};
use crate::output::{self, Staging, exports, files, slug};
use crate::report::templates::sha256_hex;
use crate::report::{self, Previous, Templates};
use crate::score::Keep;

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
    /// Record every rule in scores.json, not only those that matched, and each KAM evidence
    /// row's finding.
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
    /// Folder of report templates replacing the built-in ones by name (`kam init` copies them).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Language of the reports: en or ru.
    #[arg(long, value_name = "CODE", default_value = "en")]
    pub lang: String,
    /// Write an account plan for every account, not only for the bands marked `plan`.
    #[arg(long)]
    pub all_plans: bool,
    /// Write no account plan: the portfolio summary, manager reviews and exports only.
    #[arg(long, conflicts_with = "all_plans")]
    pub no_plans: bool,
    /// Output folder of an earlier run to compare with (movements, actions done since).
    #[arg(long, value_name = "DIR")]
    pub previous: Option<PathBuf>,
    /// Treat the workbooks as one portfolio (regional exports of one company): account and
    /// KAM ids found in several workbooks are one, conflicting rows are listed as rejects.
    #[arg(long)]
    pub merge: bool,
    /// Set by the binary, not an option: the process ends when the run returns, so the
    /// workbooks' records and scores are left to the system instead of freed one by one.
    #[arg(skip)]
    pub process_ends: bool,
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
            templates: None,
            lang: "en".to_string(),
            all_plans: false,
            no_plans: false,
            previous: None,
            merge: false,
            process_ends: false,
        }
    }
}

/// Arguments of the hidden `kam remove-previous-output`, which `kam run` starts in the
/// background.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Previous outputs moved aside, named `.NAME.kam-tmp-PID.old`; any other folder is
    /// refused and nothing is removed.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// `kam remove-previous-output DIR...`: removes previous outputs that `kam run` moved aside.
pub fn remove_previous_output(args: &RemoveArgs) -> Result<u8> {
    if let Some(d) = args.dirs.iter().find(|d| !output::is_previous_output(d)) {
        return Err(Error::Usage(format!(
            "{} is not a previous kam output moved aside (a folder named .NAME.kam-tmp-PID.old): nothing removed",
            d.display()
        )));
    }
    // Tests hold the removal until a file appears, to see the run return before it.
    if let Some(gate) = std::env::var_os("KAM_TEST_REMOVAL_GATE") {
        let gate = PathBuf::from(gate);
        for _ in 0..6000 {
            if gate.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    args.dirs.iter().for_each(|d| output::remove_previous(d));
    Ok(EXIT_OK)
}

/// Starts `kam remove-previous-output` on `dirs`, detached (no terminal, its own process
/// group): whether it started.
fn remove_in_background(dirs: &[PathBuf]) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("remove-previous-output")
        .args(dirs)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().is_ok()
}

struct Input {
    display: String,
    path: Option<PathBuf>,
}

struct Imported {
    input: Input,
    dataset: Dataset,
    /// SHA-256 of the workbook's bytes, hex.
    sha256: String,
    /// Size in bytes.
    bytes: usize,
    /// With `--merge`: the workbooks merged into this one, and what merging found.
    merged: Option<Merged>,
}

/// The workbooks of a `--merge` run.
struct Merged {
    /// Each workbook: name, format, SHA-256, bytes, accounts.
    parts: Vec<(String, &'static str, String, usize, usize)>,
    report: import::merge::MergeReport,
}

/// Merges the imported workbooks into one (`--merge`).
fn merge_imported(imported: Vec<Imported>) -> Imported {
    let parts = imported
        .iter()
        .map(|i| {
            (
                i.input.display.clone(),
                i.dataset.format,
                i.sha256.clone(),
                i.bytes,
                i.dataset.accounts.len(),
            )
        })
        .collect();
    let bytes = imported.iter().map(|i| i.bytes).sum();
    let mut hash_input = String::new();
    for i in &imported {
        hash_input.push_str(&i.sha256);
        hash_input.push('\n');
    }
    let (dataset, report) = import::merge::merge(imported.into_iter().map(|i| i.dataset).collect());
    Imported {
        input: Input {
            display: dataset.file.clone(),
            path: None,
        },
        dataset,
        sha256: sha256_hex(hash_input.as_bytes()),
        bytes,
        merged: Some(Merged { parts, report }),
    }
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

/// One workbook of a batch, as `batch.json` and the batch `index.html` show it.
#[derive(serde::Serialize)]
struct BatchRow {
    file: String,
    status: &'static str,
    error: Option<String>,
    output: Option<String>,
    index: Option<String>,
    accounts: usize,
    key_accounts: usize,
    rows_rejected: usize,
    cells_doubtful: usize,
    rule_errors: usize,
    plans: usize,
    reviews: usize,
}

/// `batch.json` and the batch `index.html`: every workbook of the run in the order given, with
/// its folder and counts, or why it could not be read.
#[allow(clippy::too_many_arguments)]
fn write_batch(
    staging: &Staging,
    templates: &mut Templates,
    inputs: &[Input],
    imported: &[Imported],
    folders: &[String],
    scored: &[crate::score::Scored],
    written: &[report::Written],
    failed: &[(String, String)],
) -> Result<()> {
    let mut rows = Vec::new();
    let mut ok = imported
        .iter()
        .zip(folders)
        .zip(scored)
        .zip(written)
        .peekable();
    for input in inputs {
        match ok.peek() {
            Some((((imp, _), _), _)) if imp.input.display == input.display => {
                let (((imp, folder), sc), w) = ok.next().expect("peeked");
                let ds = &imp.dataset;
                let rows_rejected = ds.rows_rejected();
                let folder = folder.trim_end_matches('/').to_string();
                rows.push(BatchRow {
                    file: input.display.clone(),
                    status: "ok",
                    error: None,
                    index: Some(format!("{folder}/index.html")),
                    output: Some(folder),
                    accounts: ds.accounts.len(),
                    key_accounts: sc.accounts.iter().filter(|a| a.key).count(),
                    rows_rejected,
                    cells_doubtful: ds.rejects.len() - rows_rejected,
                    rule_errors: sc.error_count(),
                    plans: w.plans,
                    reviews: w.reviews,
                });
            }
            _ => {
                let error = failed
                    .iter()
                    .find(|(f, _)| *f == input.display)
                    .map(|(_, e)| e.clone());
                rows.push(BatchRow {
                    file: input.display.clone(),
                    status: "failed",
                    error,
                    output: None,
                    index: None,
                    accounts: 0,
                    key_accounts: 0,
                    rows_rejected: 0,
                    cells_doubtful: 0,
                    rule_errors: 0,
                    plans: 0,
                    reviews: 0,
                });
            }
        }
    }
    let doc = serde_json::json!({
        "schema": "kam-batch/1",
        "kam_version": env!("CARGO_PKG_VERSION"),
        "workbooks": rows,
        "totals": {
            "workbooks": rows.len(),
            "failed": failed.len(),
            "accounts": rows.iter().map(|r| r.accounts).sum::<usize>(),
            "key_accounts": rows.iter().map(|r| r.key_accounts).sum::<usize>(),
        },
    });
    staging.write("batch.json", &files::to_json_bytes(&doc))?;
    let common = report::context::Common {
        lang: templates.locale.code(),
        kam_version: env!("CARGO_PKG_VERSION"),
        file: format!("{} workbooks", rows.len()),
        as_of: None,
        period: None,
        params: Default::default(),
        previous: None,
    };
    templates.set_common(&common);
    let mut ctx = tera::Context::new();
    ctx.insert("root", "");
    ctx.insert("workbooks", &rows);
    ctx.insert("failed", &failed.len());
    for name in ["index.html", "index.md"] {
        let text = templates.render(&format!("batch.{}", &name[6..]), &ctx)?;
        staging.write(name, text.as_bytes())?;
    }
    Ok(())
}

/// The workbook files kam reads.
pub(crate) const WORKBOOK_EXTENSIONS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// Workbook arguments with folders expanded to the workbooks they hold (not recursive; sorted by
/// name; Excel's `~$` lock files and hidden files skipped).
fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for p in paths {
        if !p.is_dir() {
            inputs.push(Input {
                display: p.display().to_string(),
                path: Some(p.clone()),
            });
            continue;
        }
        let entries = std::fs::read_dir(p)
            .map_err(|e| Error::io(format!("cannot read the folder {}", p.display()), e))?;
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|f| {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let ext = f
                    .extension()
                    .map(|x| x.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                f.is_file()
                    && !name.starts_with("~$")
                    && !name.starts_with('.')
                    && WORKBOOK_EXTENSIONS.contains(&ext.as_str())
            })
            .collect();
        if found.is_empty() {
            return Err(Error::Usage(format!(
                "the folder {} holds no workbook ({})",
                p.display(),
                WORKBOOK_EXTENSIONS
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        found.sort();
        inputs.extend(found.into_iter().map(|f| Input {
            display: f.display().to_string(),
            path: Some(f),
        }));
    }
    Ok(inputs)
}

fn render_bar(enabled: bool, total: u64, file: &str) -> Option<ProgressBar> {
    if !enabled || total == 0 {
        return None;
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(format!("rendering reports of {file}"));
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
        sha256: sha256_hex(bytes),
        bytes: bytes.len(),
        merged: None,
    })
}

/// Runs `kam run`.
pub fn execute(args: &RunArgs) -> Result<u8> {
    if args.jobs == Some(0) {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    let rules = args.rules.load()?;
    // Templates and the previous run are checked before any work: a broken template stops
    // the run at once, naming its file and line.
    let mut templates = Templates::load(args.templates.as_deref(), &args.lang)?;
    let previous = args.previous.as_deref().map(Previous::load).transpose()?;
    let inputs: Vec<Input> = if args.workbooks.is_empty() {
        vec![Input {
            display: crate::SAMPLE_NAME.to_string(),
            path: None,
        }]
    } else {
        expand_inputs(&args.workbooks)?
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
    let started = std::time::Instant::now();
    let results: Vec<Result<Imported>> = pool.install(|| {
        inputs
            .par_iter()
            .map(|input| import_one(input, args, &bar))
            .collect()
    });
    // In a batch a workbook that cannot be read is reported and the others go on (unless
    // --fail-fast); alone, it stops the run as before. Input order decides which error is first.
    // Merged, a workbook that cannot be read stops the run: the portfolio would be incomplete.
    let batch = inputs.len() > 1 && !args.merge;
    let mut imported: Vec<Imported> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for (input, r) in inputs.iter().zip(results) {
        match r {
            Ok(i) => imported.push(i),
            Err(e) if args.merge && inputs.len() > 1 => {
                if let Some(pb) = &bar {
                    pb.finish_and_clear();
                }
                return Err(Error::Usage(format!(
                    "{e}\n--merge needs every workbook of the portfolio; fix this one or leave it out"
                )));
            }
            Err(e) if batch && !args.fail_fast => {
                failed.push((input.display.clone(), e.to_string()))
            }
            Err(e) => {
                if let Some(pb) = &bar {
                    pb.finish_and_clear();
                }
                return Err(e);
            }
        }
    }
    if imported.is_empty() {
        if let Some(pb) = &bar {
            pb.finish_and_clear();
        }
        return Err(Error::Usage(format!(
            "{}:\n{}",
            if failed.len() == 1 {
                "the workbook could not be read".to_string()
            } else {
                format!("none of the {} workbooks could be read", failed.len())
            },
            failed
                .iter()
                .map(|(f, e)| format!("  {f}: {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    if args.merge && imported.len() > 1 {
        imported = vec![merge_imported(imported)];
    }
    let import_s = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let packs: Vec<(String, String)> = rules
        .packs
        .iter()
        .map(|p| (p.name.clone(), p.path.display().to_string()))
        .collect();
    let staging = Staging::begin(&args.out)?;
    // Tests force an internal error on a worker thread, with output half written, to check
    // what a user would see.
    if std::env::var_os("KAM_TEST_PANIC").is_some() {
        staging.write("scores.json", b"{}")?;
        pool.install(|| {
            rayon::join(
                || (),
                || panic!("KAM_TEST_PANIC is set: an internal error forced for a test"),
            )
        });
    }
    // One folder per workbook when there are several.
    let multi = batch;
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
    // Each part of the KAM metrics, when a KAM pack ran.
    let mut kam_phases: Option<crate::score::kams::KamPhases> = None;
    for (imp, prefix) in imported.iter().zip(&folders) {
        let ds = &imp.dataset;
        if let Some(pb) = &bar {
            pb.set_message(format!(
                "scoring {}: {} accounts",
                imp.input.display,
                ds.accounts.len()
            ));
        }
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
        let json = AccountJson::new(ds, &output_names, &measure_names);
        let render = |r: &crate::score::AccountResult| json.render(r);
        let jobs = args.jobs.unwrap_or(0);
        // The KAM pack's work that does not read the account results (most of it) runs beside
        // the account scoring, whose workers wait on the writing of scores.json at times;
        // after it when the run is to use one worker.
        let beside = match jobs {
            0 => std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
            n => n > 1,
        };
        let (s, prepared) = std::thread::scope(|sc| {
            let prepare = kam_engine.as_ref().filter(|_| beside).map(|k| {
                sc.spawn(move || {
                    let t = std::time::Instant::now();
                    (k.prepare(ds, jobs), t.elapsed().as_secs_f64())
                })
            });
            let s = engine.score_streaming(
                ds,
                jobs,
                args.trace,
                match (args.no_plans, args.all_plans) {
                    (true, _) => Keep::None,
                    (false, true) => Keep::All,
                    (false, false) => Keep::Plans,
                },
                &render,
                &mut |r, bytes| {
                    if args.fail_fast
                        && let Some(e) = r.errors.first()
                    {
                        return Err(Error::FailFast(format!(
                            "{}: account {}: rule {}: {}",
                            imp.input.display, ds.accounts[r.index].id, e.rule, e.message
                        )));
                    }
                    out.account(&bytes).map_err(io_error)
                },
            );
            let prepared =
                prepare.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (s, prepared)
        });
        let mut s = s?;
        if let Some(k) = &kam_engine {
            let (prepared, prepare_s) = prepared.unwrap_or_else(|| {
                let t = std::time::Instant::now();
                (k.prepare(ds, jobs), t.elapsed().as_secs_f64())
            });
            let t = std::time::Instant::now();
            let (m, phases) = k.finish_timed(prepared?, &s.accounts, args.trace, None)?;
            kam_s += prepare_s + t.elapsed().as_secs_f64();
            kam_phases.get_or_insert_default().add(&phases);
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
        // The KAMs of scores.json are serialised on the run's workers (--jobs).
        pool.install(|| out.finish(ds, &s, &packs))
            .map_err(io_error)?;
        std::io::Write::flush(&mut file).map_err(io_error)?;
        scored.push(s);
    }
    let scoring_s = started.elapsed().as_secs_f64();
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    // Exports (the files a spreadsheet or another program reads) and reports (plans, reviews,
    // the portfolio summary and the index) need only the scores: they are written at the same
    // time, each export on its own worker, the reports on the rest of the pool. Each stage's
    // time is its own duration; they overlap.
    let mut exports_s = 0.0;
    let mut report_s = 0.0;
    let mut written = Vec::new();
    for ((imp, prefix), sc) in imported.iter().zip(&folders).zip(&scored) {
        let ds = &imp.dataset;
        let exports = || -> Result<f64> {
            let t = std::time::Instant::now();
            // Streamed to their files: a million accounts make exports of hundreds of MB.
            let xlsx = || -> Result<()> {
                let (path, mut file) = staging.create_seekable(&format!("{prefix}scores.xlsx"))?;
                exports::scores_xlsx(&mut file, ds, sc)?;
                std::io::Write::flush(&mut file)
                    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
            };
            let rest = || -> Result<()> {
                let (_, file) = staging.create(&format!("{prefix}rejects.csv"))?;
                files::rejects_csv(file, &[ds])?;
                let (_, file) = staging.create(&format!("{prefix}accounts.csv"))?;
                files::accounts_csv(file, ds)?;
                let mut import_json = files::import_json(ds);
                if let (Some(m), Some(o)) = (&imp.merged, import_json.as_object_mut()) {
                    o.insert(
                        "merge".into(),
                        serde_json::to_value(&m.report).unwrap_or_default(),
                    );
                }
                staging.write(
                    &format!("{prefix}import.json"),
                    &files::to_json_bytes(&import_json),
                )?;
                let (_, file) = staging.create(&format!("{prefix}scores.csv"))?;
                exports::scores_csv(file, ds, sc)
            };
            let (a, b) = rayon::join(xlsx, rest);
            a?;
            b?;
            Ok(t.elapsed().as_secs_f64())
        };
        let total = sc
            .accounts
            .iter()
            .filter(|r| !args.no_plans && (args.all_plans || r.plan))
            .count()
            + sc.managers.as_ref().map_or(0, |m| m.managers.len());
        let pb = render_bar(show_progress, total as u64, &imp.input.display);
        let progress = |n: u64| {
            if let Some(pb) = &pb {
                pb.set_position(n);
            }
        };
        let templates = &mut templates;
        let reports = || -> Result<(report::Written, f64)> {
            let t = std::time::Instant::now();
            let w = report::write_all(
                &staging,
                templates,
                ds,
                sc,
                &rules,
                crate::output::scores::portfolio_json(sc),
                &report::Options {
                    all_plans: args.all_plans,
                    no_plans: args.no_plans,
                    previous: previous.as_ref(),
                    strict: args.strict,
                    prefix,
                },
                &progress,
            )?;
            Ok((w, t.elapsed().as_secs_f64()))
        };
        // On the run's worker threads (--jobs).
        let (e, r) = pool.install(|| rayon::join(exports, reports));
        exports_s += e?;
        let (w, secs) = r?;
        report_s += secs;
        if let Some(pb) = &pb {
            pb.finish_and_clear();
        }
        written.push(w);
    }
    let started = std::time::Instant::now();
    if batch {
        write_batch(
            &staging,
            &mut templates,
            &inputs,
            &imported,
            &folders,
            &scored,
            &written,
            &failed,
        )?;
    }
    report_s += started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let ms = |x: f64| (x * 1000.0).round() / 1000.0;
    let manifest = serde_json::json!({
        "kam_version": env!("CARGO_PKG_VERSION"),
        "inputs": imported.iter().zip(&folders).zip(&scored).zip(&written).map(|(((i, f), sc), w)| {
            let ds = &i.dataset;
            let rows = ds.rows_rejected();
            serde_json::json!({
                "file": i.input.display,
                "format": ds.format,
                "sha256": i.sha256,
                "bytes": i.bytes,
                "output": if f.is_empty() { ".".to_string() } else { f.trim_end_matches('/').to_string() },
                "counts": {
                    "accounts": ds.accounts.len(),
                    "key_accounts": sc.accounts.iter().filter(|a| a.key).count(),
                    "transaction_lines": ds.transaction_lines,
                    "contacts": ds.contacts.len(),
                    "activities": ds.activities.len(),
                    "tenders": ds.tenders.len(),
                    "managers": ds.managers.len(),
                    "plan_items": ds.plans.len(),
                    "rows_rejected": rows,
                    "cells_doubtful": ds.rejects.len() - rows,
                    "rule_errors": sc.error_count(),
                    "plans_written": w.plans,
                    "reviews_written": w.reviews,
                },
                "merged_from": i.merged.as_ref().map(|m| m.parts.iter().map(|(file, format, sha, bytes, accounts)| serde_json::json!({
                    "file": file, "format": format, "sha256": sha, "bytes": bytes, "accounts": accounts,
                })).collect::<Vec<_>>()),
                "report_problems": w.problems.iter().map(|(f, m)| serde_json::json!({ "file": f, "error": m })).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "rule_packs": rules.packs.iter().map(|p| serde_json::json!({
            "pack": p.name,
            "file": p.path.display().to_string(),
            "sha256": sha256_hex(p.text.as_bytes()),
        })).collect::<Vec<_>>(),
        "params": report::context::params_map(&rules),
        "set": args.rules.set,
        "templates": {
            "lang": args.lang,
            "dir": args.templates.as_ref().map(|d| d.display().to_string()),
            "files": templates.sources.iter().map(|t| serde_json::json!({
                "name": t.name, "origin": t.origin, "sha256": t.sha256,
            })).collect::<Vec<_>>(),
        },
        "failed": failed.iter().map(|(f, e)| serde_json::json!({ "file": f, "error": e })).collect::<Vec<_>>(),
        "previous": previous.as_ref().map(|p| p.dir.clone()),
        "options": { "all_plans": args.all_plans, "no_plans": args.no_plans, "trace": args.trace, "strict": args.strict, "merge": args.merge },
        // Wall-clock seconds per stage: the only part of the output that differs between runs.
        "timings": {
            "import_s": ms(import_s),
            "scoring_s": ms(scoring_s),
            "kam_metrics_s": ms(kam_s),
            "exports_s": ms(exports_s),
            "reports_s": ms(report_s),
            "writing_s": ms(started.elapsed().as_secs_f64()),
        },
    });
    staging.write(crate::output::MARKER, &files::to_json_bytes(&manifest))?;
    let (out, previous) = staging.commit_keeping_previous()?;
    // The previous output (at a million accounts 3 GB, about 2.5 s to remove on the machines
    // measured, mostly waiting on the device) and any left by runs whose removal did not
    // finish are removed by a `kam` of their own once this one has returned; here when that
    // cannot start, or when the process goes on after the run (a library caller, tests).
    let mut old: Vec<PathBuf> = previous.into_iter().collect();
    for p in output::stale_previous(&args.out) {
        if !old.contains(&p) {
            old.push(p);
        }
    }
    let in_background = !old.is_empty() && args.process_ends && remove_in_background(&old);
    if !in_background {
        old.iter().for_each(|d| output::remove_previous(d));
    }
    let writing_s = started.elapsed().as_secs_f64();
    if args.timings {
        eprintln!(
            "kam: timings: import {import_s:.3} s, scoring {scoring_s:.3} s (of which KAM metrics {kam_s:.3} s), exports {exports_s:.3} s, reports {report_s:.3} s, writing {writing_s:.3} s"
        );
        if let Some(p) = kam_phases {
            eprintln!("kam: timings: KAM metrics by part: {p}");
        }
    }

    let rejects: usize = imported.iter().map(|i| i.dataset.rejects.len()).sum();
    let rule_errors: usize = scored.iter().map(|s| s.error_count()).sum();
    if !args.quiet {
        for (imp, sc) in imported.iter().zip(&scored) {
            let ds = &imp.dataset;
            let rows = ds.rows_rejected();
            let cells = ds.rejects.len() - rows;
            eprintln!(
                "kam: {}: {}, {}, {}, {}, {}, {}, {}; {} rejected, {} doubtful",
                imp.input.display,
                count(ds.accounts.len(), "account", "accounts"),
                count(
                    ds.transaction_lines,
                    "transaction line",
                    "transaction lines"
                ),
                count(ds.contacts.len(), "contact", "contacts"),
                count(ds.activities.len(), "activity", "activities"),
                count(ds.tenders.len(), "tender", "tenders"),
                count(ds.managers.len(), "manager", "managers"),
                count(ds.plans.len(), "plan item", "plan items"),
                count(rows, "row", "rows"),
                count(cells, "cell", "cells")
            );
            if let Some(m) = &imp.merged {
                let conflicts = m.report.conflicts();
                eprintln!(
                    "kam:   merged {} workbooks: {} in more than one ({} with conflicting values{})",
                    m.parts.len(),
                    count(m.report.duplicates.len(), "id", "ids"),
                    conflicts,
                    if conflicts > 0 {
                        ", listed in rejects.csv; the first workbook's rows are used"
                    } else {
                        ""
                    }
                );
            }
            let mut bands: Vec<(String, usize)> = Vec::new();
            for b in &rules.bands {
                let n = sc.accounts.iter().filter(|a| a.band == b.name).count();
                bands.push((b.name.clone(), n));
            }
            eprintln!(
                "kam:   {} ({}); {}{}",
                count(
                    sc.accounts.iter().filter(|a| a.key).count(),
                    "key account",
                    "key accounts"
                ),
                bands
                    .iter()
                    .map(|(b, n)| format!("{b} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                count(sc.error_count(), "rule error", "rule errors"),
                sc.portfolio
                    .warnings
                    .iter()
                    .chain(sc.portfolio_flags.iter().map(|f| &f.reason))
                    .map(|w| format!("; {w}"))
                    .collect::<String>()
            );
            if let Some(m) = sc.managers.as_ref().filter(|m| !m.managers.is_empty()) {
                let mut ranked: Vec<&crate::score::kams::ManagerResult> =
                    m.managers.iter().collect();
                ranked.sort_by_key(|k| k.rank);
                // The first ten by rank; a large team is read in the reviews, not on stderr.
                eprintln!(
                    "kam:   {} judged for {}: {}{}",
                    count(m.managers.len(), "KAM", "KAMs"),
                    m.period.label,
                    ranked
                        .iter()
                        .take(10)
                        .map(|k| format!("{} {}", k.kam_id, k.verdict.band))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if ranked.len() > 10 {
                        format!(" … and {} more", ranked.len() - 10)
                    } else {
                        String::new()
                    }
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
        // The same template error on many reports is printed once.
        let mut shown: Vec<(&str, usize)> = Vec::new();
        for w in &written {
            for (file, msg) in &w.problems {
                match shown.iter_mut().find(|(m, _)| *m == msg.as_str()) {
                    Some((_, n)) => *n += 1,
                    None => {
                        eprintln!("kam:   report {file} not written: {msg}");
                        shown.push((msg, 0));
                    }
                }
            }
        }
        for (_, n) in shown.iter().filter(|(_, n)| *n > 0) {
            eprintln!(
                "kam:   … and {} with the same template error",
                count(*n, "more report", "more reports")
            );
        }
        let accounts: usize = imported.iter().map(|i| i.dataset.accounts.len()).sum();
        let key: usize = scored
            .iter()
            .map(|s| s.accounts.iter().filter(|a| a.key).count())
            .sum();
        let plans: usize = written.iter().map(|w| w.plans).sum();
        let reviews: usize = written.iter().map(|w| w.reviews).sum();
        let problems: usize = written.iter().map(|w| w.problems.len()).sum();
        for (file, error) in &failed {
            eprintln!("kam: {file}: not processed: {error}");
        }
        let index = out.join("index.html").display().to_string();
        eprintln!(
            "kam: {}, {}, {}, {}; {} and {}{}; open {index}{see}",
            count(accounts, "account", "accounts"),
            count(key, "key account", "key accounts"),
            count(rejects, "reject", "rejects"),
            count(rule_errors, "rule error", "rule errors"),
            count(plans, "account plan", "account plans"),
            count(reviews, "manager review", "manager reviews"),
            if problems > 0 {
                format!(
                    " ({} could not be written)",
                    count(problems, "report", "reports")
                )
            } else {
                String::new()
            }
        );
    }
    if args.process_ends {
        // Millions of records freed one by one take about half a second at a million
        // accounts; the system takes the memory back at once when the process ends.
        std::mem::forget(imported);
        std::mem::forget(scored);
    }
    Ok(
        if !failed.is_empty() || args.strict && (rejects > 0 || rule_errors > 0) {
            EXIT_PROBLEMS
        } else {
            EXIT_OK
        },
    )
}
