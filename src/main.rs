//! The `kam` binary: all logic lives in the library; see `kam::cli`.

fn main() -> std::process::ExitCode {
    kam::cli::main()
}
