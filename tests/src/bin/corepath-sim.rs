//! `corepath-sim`: runs many seeds of the multipath simulation (long runs
//! beyond CI). Prints seeds/s and every violation with its seed; exits 1 on any.
//!
//! `corepath-sim --seeds N [--start S] [--threads T] [--stop-at-first] [--duration-ms MS]
//!  [--max-delay-us US] [--gateway-logs]`; `corepath-sim --seed S` runs one seed and prints its trace tail.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use corepath_tests::sim::{run_seed, run_seeds, SimConfig};

fn value<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let v = args.get(i + 1).with_context(|| format!("{name} needs a value"))?;
    v.parse().map_err(|e| anyhow::anyhow!("{name} {v}: {e}"))
}

/// Sends stderr (the gateways' event log: a few lines per seed) to /dev/null.
fn silence_stderr() -> Result<()> {
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null").context("open /dev/null")?;
    // SAFETY: dup2 on two valid descriptors; fd 2 is replaced atomically, devnull stays open until the call returns.
    let rc = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&devnull), 2) };
    if rc < 0 {
        bail!("dup2: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut seeds = 1_000u64;
    let mut start = 0u64;
    let mut threads = 2usize;
    let mut one_seed = None;
    let mut stop_at_first = false;
    let mut gateway_logs = false;
    let mut cfg = SimConfig { keep_text: false, ..SimConfig::default() };
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--seeds" => seeds = value(&args, i, "--seeds")?,
            "--start" => start = value(&args, i, "--start")?,
            "--threads" => threads = value(&args, i, "--threads")?,
            "--seed" => one_seed = Some(value::<u64>(&args, i, "--seed")?),
            "--duration-ms" => cfg.duration_ms = value(&args, i, "--duration-ms")?,
            "--max-delay-us" => cfg.max_delay_us = value(&args, i, "--max-delay-us")?,
            "--stop-at-first" => {
                stop_at_first = true;
                i += 1;
                continue;
            }
            "--gateway-logs" => {
                gateway_logs = true;
                i += 1;
                continue;
            }
            "-h" | "--help" => {
                println!(
                    "corepath-sim --seeds N [--start S] [--threads T] [--stop-at-first] [--duration-ms MS] \
                     [--max-delay-us US] [--gateway-logs] | --seed S"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other} (try --help)"),
        }
        i += 2;
    }
    if !gateway_logs {
        silence_stderr()?;
    }
    if let Some(seed) = one_seed {
        let cfg = SimConfig { keep_text: true, ..cfg };
        let t = Instant::now();
        let r = run_seed(seed, &cfg);
        println!(
            "seed {seed}: {} ms simulated in {} steps, {} IOs, {} faults, {} command timeouts, {} aborts answered, \
             {} events, trace hash {:016x}, {:.1} ms",
            r.sim_ms,
            r.steps,
            r.completed,
            r.faults,
            r.command_timeouts,
            r.aborts_answered,
            r.events,
            r.trace_hash,
            t.elapsed().as_secs_f64() * 1e3
        );
        match r.failure_text() {
            Some(text) => {
                println!("{text}");
                std::process::exit(1);
            }
            None => {
                println!("last events:\n{}", r.trace_tail);
                return Ok(());
            }
        }
    }
    let t = Instant::now();
    // In chunks, to print progress on long runs.
    let chunk = 10_000u64.min(seeds.max(1));
    let mut done = 0u64;
    let mut failures = Vec::new();
    while done < seeds {
        let n = chunk.min(seeds - done);
        let (f, ran) = run_seeds(start + done, n, threads, &cfg, stop_at_first);
        done += ran;
        for r in &f {
            let rerun = run_seed(r.seed, &SimConfig { keep_text: true, ..cfg.clone() });
            println!(
                "{}",
                rerun.failure_text().unwrap_or_else(|| format!("seed {} failed once but not again", r.seed))
            );
        }
        let stop = stop_at_first && !f.is_empty();
        failures.extend(f);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{done} seeds ({}..{}) in {secs:.1} s: {:.0} seeds/s, {} violations",
            start,
            start + done,
            done as f64 / secs,
            failures.len()
        );
        if stop || ran < n {
            break;
        }
    }
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|r| r.seed.to_string()).collect();
        println!("failing seeds: {}", list.join(" "));
        std::process::exit(1);
    }
    Ok(())
}
