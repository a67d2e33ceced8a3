//! The command line: a thin layer that parses arguments, calls the library and maps the
//! outcome to an exit code (0 ok, 1 finished with problems under `--strict`, 2 could not run).

mod rules;
mod run;
mod sample;
mod schema;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kam — decides which clients are key and why, from your CRM/ERP Excel export.
///
/// Run with no arguments to process the embedded sample workbook into ./kam-out.
#[derive(Debug, Parser)]
#[command(name = "kam", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// What to do (default: `run` on the embedded sample).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import workbooks and write the results (the main job).
    Run(run::RunArgs),
    /// Write a realistic synthetic workbook with every sheet.
    Sample(sample::SampleArgs),
    /// Print the workbook data model: sheets, fields, types and header aliases.
    Schema(schema::SchemaArgs),
    /// Show why one account scored as it did: every rule, the values it saw, the bands.
    Explain(rules::ExplainArgs),
    /// Check rule packs: YAML, unknown keys, params, expressions, Lua, names a workbook lacks.
    Validate(rules::ValidateArgs),
    /// Run the rule packs' own test cases and print `N passed, N failed`.
    Test(rules::TestArgs),
    /// Write the default rule packs into a folder to edit them.
    Init(rules::InitArgs),
}

/// Exit code: everything fine.
pub const EXIT_OK: u8 = 0;
/// Exit code: finished, but `--strict` found rejects or errors.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: could not run (bad input, bad arguments, internal error).
pub const EXIT_FAILED: u8 = 2;

/// Turns transparent huge pages off for this process. kam allocates and frees many short-lived
/// buffers; with huge pages each fresh 2 MiB page is zeroed whole on first touch, which cost up
/// to a third of the run time on the machines measured (docs/performance.md).
pub fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of the calling process; no memory is touched.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    prefer_small_pages();
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_FAILED } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(cli))
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let result = match cli.command {
        None => run::execute(&run::RunArgs::default()),
        Some(Command::Run(args)) => run::execute(&args),
        Some(Command::Sample(args)) => sample::execute(&args),
        Some(Command::Schema(args)) => schema::execute(&args),
        Some(Command::Explain(args)) => rules::explain_cmd(&args),
        Some(Command::Validate(args)) => rules::validate(&args),
        Some(Command::Test(args)) => rules::test(&args),
        Some(Command::Init(args)) => rules::init(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // A reader failing on a malformed file: the import reports it for that workbook.
        if crate::panics::is_contained() {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        crate::output::abandon_all();
        eprintln!(
            "error: kam hit an internal error and stopped; sorry. Nothing was written. \
             Please report it with the command you ran.\n  detail: {payload}{location}"
        );
        std::process::exit(EXIT_FAILED as i32);
    }));
}
