//! The `portal` binary; everything lives in the `portal_server` library (see its docs).

fn main() -> std::process::ExitCode {
    portal_server::cli::main()
}
