//! The `lanternfish` command-line binary; all logic lives in `lanternfish::cli`.

fn main() -> std::process::ExitCode {
    lanternfish::cli::main()
}
