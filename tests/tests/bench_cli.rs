//! corepath-bench as a fio user runs it (issue 16): the binary on the command
//! line, its messages and its report checked as text or JSON. Each run is
//! short (1-2 s) against the bench's own in-process gateways, listening on a
//! free port of 127.0.0.2/127.0.0.3 so that parallel test runs do not collide.
//!
//! Needs the binary built with this test's profile:
//! `cargo build --release -p corepath-bench --bins` (scripts/test.sh does).

use std::path::PathBuf;
use std::time::Duration;

use corepath_tests::bins::{binary, run_with_timeout, Daemon, Finished, TempDir};
use corepath_tests::gateway::free_port;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn bench(args: &[&str]) -> Finished {
    run_with_timeout(&binary("corepath-bench"), args, TIMEOUT)
        .unwrap_or_else(|| panic!("corepath-bench {args:?} did not finish within {TIMEOUT:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--embedded --trid ...` for one in-process gateway (malloc namespace) on a free port.
fn one_gateway() -> Vec<String> {
    let port = free_port("127.0.0.2");
    vec![
        "--gateways".into(),
        "1".into(),
        "--embedded".into(),
        "--trid".into(),
        format!("trtype:tcp traddr:127.0.0.2 trsvcid:{port}"),
    ]
}

fn with(base: &[String], more: &[&str]) -> Vec<String> {
    base.iter().cloned().chain(more.iter().map(|s| s.to_string())).collect()
}

fn bench_owned(args: &[String]) -> Finished {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    bench(&refs)
}

fn describe(f: &Finished) -> String {
    format!("exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", f.status, text(&f.stdout), text(&f.stderr))
}

/// A file on the build directory's disk (O_DIRECT works there, not on tmpfs); removed when dropped.
struct ImageFile(PathBuf);

impl Drop for ImageFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn verify_never_fails_on_data_an_earlier_unverified_run_left() {
    let image =
        ImageFile(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-cli-{}.img", std::process::id())));
    let path = image.0.to_str().expect("UTF-8 path").to_string();
    // The same shared file each time: two gateways, nobody killed, a small
    // region so that the runs overwrite each other's blocks many times.
    let run = |verify: bool| {
        let (a, b) = (free_port("127.0.0.2"), free_port("127.0.0.3"));
        let mut args: Vec<String> = [
            "--embedded",
            "--trid",
            &format!("trtype:tcp traddr:127.0.0.2 trsvcid:{a}"),
            "--trid",
            &format!("trtype:tcp traddr:127.0.0.3 trsvcid:{b}"),
            "--kill-a-after",
            "0",
            "--embedded-file",
            &path,
            "--rw",
            "randrw",
            "--bs",
            "4k",
            "--iodepth",
            "16",
            "--size",
            "4m",
            "--runtime",
            "1",
            "--status-interval",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if verify {
            args.push("--verify".into());
        }
        let f = bench_owned(&args);
        assert!(f.status.success(), "verify={verify}: {}", describe(&f));
        let out = text(&f.stdout);
        assert!(out.contains("verify_errors=0"), "verify={verify}: {}", describe(&f));
        assert!(out.contains("io_errors=0"), "verify={verify}: {}", describe(&f));
    };
    run(true);
    // Without --verify, reads bring stamped blocks into the buffers and
    // writes put them back elsewhere: stamps naming other offsets.
    run(false);
    // fio's rule: this run checks only what it wrote itself.
    run(true);
}

#[test]
fn bs_above_the_controllers_mdts_is_refused_up_front_naming_the_limit() {
    let f = bench_owned(&with(&one_gateway(), &["--bs", "2m", "--runtime", "1"]));
    assert_eq!(f.status.code(), Some(1), "{}", describe(&f));
    let err = text(&f.stderr);
    assert!(
        err.contains(
            "--bs 2m (2097152 bytes) is above the controller's maximum data transfer size (MDTS) of 1m (1048576 bytes)"
        ),
        "{}",
        describe(&f)
    );
    assert!(!err.contains("running the jobs"), "{}", describe(&f));
    assert!(text(&f.stdout).is_empty(), "no report for a refused run: {}", describe(&f));
}

#[test]
fn argument_mistakes_are_named_in_words() {
    // A core no machine here has.
    let f = bench(&["--cpumask", "[1000]", "--gateways", "1", "--runtime", "1"]);
    assert_eq!(f.status.code(), Some(2), "{}", describe(&f));
    assert!(
        text(&f.stderr).contains("--cpumask names core 1000, which this machine does not have"),
        "{}",
        describe(&f)
    );

    let f = bench_owned(&with(&one_gateway(), &["--offset", "300m", "--runtime", "1"]));
    assert_eq!(f.status.code(), Some(1), "{}", describe(&f));
    let err = text(&f.stderr);
    assert!(
        err.contains("--offset 300m (314572800 bytes) is at or past the end of the namespace (64m, 67108864 bytes)"),
        "{}",
        describe(&f)
    );
    assert!(!err.contains("--size"), "no --size was given: {}", describe(&f));

    let f = bench_owned(&with(&one_gateway(), &["--size", "2k", "--runtime", "1"]));
    assert_eq!(f.status.code(), Some(1), "{}", describe(&f));
    let err = text(&f.stderr);
    assert!(
        err.contains("the region of 2k (2048 bytes) is smaller than one --bs (4k): make --size at least 4k"),
        "{}",
        describe(&f)
    );
    assert!(!err.contains("1 jobs"), "{}", describe(&f));

    let f = bench(&["--trid", "trtype:tcp traddr:127.0.0.2 trsvcid:4420", "--runtime", "1"]);
    assert_eq!(f.status.code(), Some(2), "{}", describe(&f));
    assert!(text(&f.stderr).contains("names no subnqn"), "{}", describe(&f));
}

#[test]
fn fio_flags_numjobs_name_filename_ioengine_and_direct_work_as_in_fio() {
    let help = bench(&["--help"]);
    let help_text = text(&help.stdout);
    for flag in ["--name <NAME>", "--numjobs <N>", "--filename <BDEV>", "--ioengine <ENGINE>", "--direct <0|1>"] {
        assert!(help_text.contains(flag), "{flag} missing from --help:\n{help_text}");
    }

    let f = bench_owned(&with(
        &one_gateway(),
        &[
            "--name",
            "fiojob",
            "--numjobs",
            "3",
            "--filename",
            "Nvme0n1",
            "--ioengine",
            "libaio",
            "--direct",
            "1",
            "--rw",
            "randread",
            "--iodepth",
            "4",
            "--runtime",
            "1",
            "--output-format",
            "json",
        ],
    ));
    assert!(f.status.success(), "{}", describe(&f));
    assert!(text(&f.stderr).contains("note: --ioengine libaio ignored"), "{}", describe(&f));
    let v: Value = serde_json::from_slice(&f.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&f)));
    let jobs = v["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "{v:#}");
    for job in jobs {
        assert_eq!(job["jobname"], "fiojob");
        assert!(job["read"]["total_ios"].as_u64().unwrap_or(0) > 0, "{job:#}");
        assert_eq!(job["job options"]["filename"], "Nvme0n1");
    }
    assert_eq!(v["global options"]["numjobs"], "3");

    let f = bench_owned(&with(&one_gateway(), &["--filename", "Nvme0n9", "--runtime", "1"]));
    assert_eq!(f.status.code(), Some(1), "{}", describe(&f));
    assert!(
        text(&f.stderr).contains("--filename Nvme0n9: no such bdev here; the target has Nvme0n1"),
        "{}",
        describe(&f)
    );
}

#[test]
fn json_report_has_the_keys_tools_read_from_fio() {
    let f = bench_owned(&with(
        &one_gateway(),
        &[
            "--rw",
            "randrw",
            "--bs",
            "8k",
            "--iodepth",
            "8",
            "--size",
            "8m",
            "--runtime",
            "1",
            "--output-format",
            "json",
        ],
    ));
    assert!(f.status.success(), "{}", describe(&f));
    let v: Value = serde_json::from_slice(&f.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&f)));
    assert!(v["fio version"].is_string(), "{v:#}");
    assert!(v["time"].as_str().is_some_and(|t| t.len() >= 24), "{v:#}");
    let job = &v["jobs"][0];
    let options = &job["job options"];
    for (key, value) in [("rw", "randrw"), ("bs", "8k"), ("iodepth", "8"), ("size", "8m"), ("runtime", "1")] {
        assert_eq!(options[key], value, "job options[{key}]: {options:#}");
    }
    for key in ["usr_cpu", "sys_cpu", "ctx", "iodepth_level", "latency_ns", "latency_us", "latency_ms"] {
        assert!(job.get(key).is_some(), "{key} missing: {job:#}");
    }
    assert!(job["usr_cpu"].as_f64().unwrap() + job["sys_cpu"].as_f64().unwrap() > 0.0, "{job:#}");
    // --iodepth 8 keeps 8 out: most IOs go out at depth 8 (fio's bucket "8" is 8-15).
    assert!(job["iodepth_level"]["8"].as_f64().unwrap() > 50.0, "{job:#}");
    let latency: f64 = ["latency_ns", "latency_us", "latency_ms"]
        .iter()
        .flat_map(|k| job[*k].as_object().unwrap().values())
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((latency - 100.0).abs() < 0.01, "{job:#}");
}

#[test]
fn ctrl_c_stops_the_jobs_and_prints_the_partial_report() {
    let dir = TempDir::new("bench-cli-sigint");
    let args = with(&one_gateway(), &["--rw", "randread", "--runtime", "30", "--iodepth", "4"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, log) = (dir.join("stdout"), dir.join("stderr"));
    let mut bench = Daemon::spawn_split(&binary("corepath-bench"), &refs, &out, &log);
    std::thread::sleep(Duration::from_secs(3));
    assert!(bench.try_exit_status().is_none(), "ended early:\n{}", bench.logs());
    let status = bench.signal_and_wait(libc::SIGINT, Duration::from_secs(15));
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("still running 15 s after Ctrl-C:\n{}", bench.logs()));
    // fio's exit status after SIGINT (its sig_int sets exit_value = 128).
    assert_eq!(status.code(), Some(128), "{report}\n{}", bench.logs());
    assert!(bench.logs().contains("terminating on signal 2"), "{}", bench.logs());
    assert!(report.contains("Run status group 0 (all jobs):"), "{report}");
    assert!(report.contains("  read: IOPS="), "{report}");
    assert!(report.contains("io_errors=0"), "{report}");
}

#[test]
fn a_wrong_subsystem_nqn_is_reported_with_the_status_name() {
    // A bench with a gateway to connect to, then a second one asking it for
    // a subsystem it does not have.
    let port = free_port("127.0.0.2");
    let dir = TempDir::new("bench-cli-nqn");
    let listen = format!("trtype:tcp traddr:127.0.0.2 trsvcid:{port}");
    let target = Daemon::spawn(
        &binary("corepath-bench"),
        &["--gateways", "1", "--embedded", "--trid", &listen, "--runtime", "20", "--rw", "randread"],
        &dir.join("target.log"),
    );
    let up = corepath_tests::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        target.logs().contains("embedded gateway on core").then_some(())
    });
    assert!(up.is_some(), "{}", target.logs());
    let wrong = format!("{listen} subnqn:nqn.2016-06.io.example:nosuch");
    let f = bench(&["--trid", &wrong, "--runtime", "1", "--status-interval", "0"]);
    assert_eq!(f.status.code(), Some(1), "{}", describe(&f));
    assert!(text(&f.stderr).contains("Connect Invalid Parameters (sct 1, sc 0x82"), "{}", describe(&f));
    drop(target);
}
