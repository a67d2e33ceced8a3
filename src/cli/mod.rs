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
/// Run with no arguments to process the embedded sample workbook into ./kam-out. Without a
/// command, workbooks and the options of `kam run` run the main job (`kam clients.xlsx`,
/// `kam --lang ru`).
#[derive(Debug, Parser)]
#[command(
    name = "kam",
    version,
    propagate_version = true,
    max_term_width = 100,
    override_usage = "kam [COMMAND]\n       kam [WORKBOOK]... [OPTIONS OF kam run]"
)]
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
    /// Internal: removes previous outputs that `kam run` moved aside. `kam run` starts it in
    /// the background, so that it returns as soon as the new output is in place.
    #[command(name = "remove-previous-output", hide = true)]
    RemovePreviousOutput(run::RemoveArgs),
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

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e` of `mimalloc.h`; the option
/// is not exported by name). A unit test checks that it still holds the documented default of
/// 1000 ms, so a renumbering in a new mimalloc cannot go unnoticed.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

// mimalloc's C library, which the binary's allocator (and this library's option calls) use.
extern crate mimalloc;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Keeps memory the run frees for the run's next stage instead of handing it back to the
/// system after mimalloc's default second: stage after stage frees and allocates large buffers,
/// and every page handed back is zeroed again by the kernel when touched anew. At a million
/// accounts that is about 1.5 s of the run for about 220 MB more peak memory
/// (docs/performance.md). `MIMALLOC_PURGE_DELAY`, when set, still decides.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one mimalloc option (a number) for this process; callable at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    prefer_small_pages();
    keep_freed_memory();
    install_panic_hook();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cli = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_FAILED } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // This process ends when the run returns (see `RunArgs::process_ends`).
    match &mut cli.command {
        Some(Command::Run(args)) => args.process_ends = true,
        None => {
            cli.command = Some(Command::Run(run::RunArgs {
                process_ends: true,
                ..Default::default()
            }))
        }
        _ => {}
    }
    ExitCode::from(run(cli))
}

/// Parses a command line (program name first). Without a command, the options and workbooks
/// of `kam run` run the main job: `kam --lang ru` is `kam run --lang ru`, `kam clients.xlsx` is
/// `kam run clients.xlsx`. A word that is neither a command nor a workbook (`kam rn`) is still
/// an unknown command, and an option no command knows is still clap's error.
pub fn parse(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    use clap::error::ErrorKind;
    let e = match Cli::try_parse_from(args) {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    let Some(first) = args.get(1).map(|a| a.to_string_lossy()) else {
        return Err(e);
    };
    let is_option = first.starts_with('-');
    let is_workbook = || {
        let lower = first.to_ascii_lowercase();
        run::WORKBOOK_EXTENSIONS
            .iter()
            .any(|x| lower.ends_with(&format!(".{x}")))
            || std::path::Path::new(&*first).is_dir()
    };
    let main_job = match e.kind() {
        ErrorKind::UnknownArgument => is_option,
        ErrorKind::InvalidSubcommand => !is_option && is_workbook(),
        _ => false,
    };
    if !main_job {
        return Err(e);
    }
    let mut with_run = args.to_vec();
    with_run.insert(1, "run".into());
    match Cli::try_parse_from(&with_run) {
        Ok(c) => Ok(c),
        // An option `kam run` knows, with a bad value: its own message says what is wrong.
        Err(run_error) if run_error.kind() != ErrorKind::UnknownArgument => Err(run_error),
        Err(_) => Err(e),
    }
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
        Some(Command::RemovePreviousOutput(args)) => run::remove_previous_output(&args),
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

#[cfg(test)]
mod tests {
    unsafe extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    }

    #[test]
    fn the_purge_delay_option_is_where_mimalloc_documents_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one mimalloc option.
        let delay = unsafe { mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            delay,
            1000,
            "option {} is not mimalloc's purge delay (default 1000 ms): see mi_option_e in mimalloc.h",
            super::MI_OPTION_PURGE_DELAY
        );
    }
}
