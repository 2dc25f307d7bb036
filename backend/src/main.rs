fn main() -> std::process::ExitCode {
    seal::telemetry::init();
    match seal::cli::run(seal::cli::Cli::from_env()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
