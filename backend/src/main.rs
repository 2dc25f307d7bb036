use clap::Parser;

fn main() -> std::process::ExitCode {
    seal::telemetry::init();
    match seal::cli::run(seal::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
