//! `corepath-bench`: parse the command line, run the jobs, print fio's report.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use corepath_bench::cli::{available_cores, BenchConfig, CliError, OutputFormat};
use corepath_bench::report::{json_report, normal_report, RunReport};
use corepath_bench::{run, sys};

/// fio's exit status after Ctrl-C (its `sig_int` sets `exit_value = 128`).
const EXIT_INTERRUPTED: u8 = 128;

fn main() -> ExitCode {
    let config = match BenchConfig::parse_from(std::env::args_os()) {
        Ok(config) => config,
        // --help and --version come through here too; clap prints and exits.
        Err(CliError::Usage(error)) => error.exit(),
        Err(error @ CliError::Config(_)) => {
            eprintln!("corepath-bench: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = config.check_cores(&available_cores()) {
        eprintln!("corepath-bench: {error}");
        return ExitCode::from(2);
    }
    for note in &config.notes {
        eprintln!("corepath-bench: note: {note}");
    }
    sys::install_sigint_handler();
    let result = run(&config);
    if sys::stop_requested() {
        if let Err(error) = &result {
            eprintln!("corepath-bench: {error:#}");
        }
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(error) => {
            eprintln!("corepath-bench: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs the jobs and prints the report; returns the report's exit code.
fn run(config: &BenchConfig) -> anyhow::Result<i32> {
    let start = SystemTime::now();
    let timestamp_ms = start.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    // The errors say what went wrong themselves (an argument that does not
    // fit the namespace, a refused connect): no "running the jobs:" before them.
    let outcome = run::run_job(config)?;
    let report = RunReport {
        jobs: outcome.jobs,
        options: config.job_options(),
        timestamp_ms,
        group_reporting: config.group_reporting,
        multipath: outcome.multipath,
    };
    match config.output_format {
        OutputFormat::Normal => print!("{}", normal_report(&report)),
        OutputFormat::Json => println!("{}", json_report(&report)),
    }
    Ok(report.exit_code())
}
