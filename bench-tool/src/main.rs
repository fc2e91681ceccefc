//! `corepath-bench`: parse the command line, run the jobs, print fio's report.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use corepath_bench::cli::{BenchConfig, CliError, OutputFormat};
use corepath_bench::report::{json_report, normal_report, RunReport};
use corepath_bench::run;

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
    match run(&config) {
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
    let timestamp_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let outcome = run::run_job(config).context("running the jobs")?;
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
