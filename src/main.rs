//! The `kam` binary: all logic lives in the library; see `kam::cli`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kam::cli::main()
}
