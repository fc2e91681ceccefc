//! Interop with the Linux kernel's NVMe/TCP peers, in a QEMU guest the
//! project builds itself (`tests/vmlab/`, see docs/interop.md): the corepath
//! host against the kernel target (nvmet on a RAM disk, through a 127.0.0.1
//! port forward), and the kernel host (nvme-cli, nvme-tcp, fio) against
//! corepath-tgt running in the guest from the host's target/release, including
//! keep-alive and reconnect. The guest's dmesg is printed with every result,
//! and a kernel complaint about our PDUs fails the test.
//!
//! The first run builds the guest (several minutes; cached in
//! /var/cache/corepath-vmlab). Where it cannot be built the tests fail with
//! the builder's output; they never pass without running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use corepath_tests::bins::{binary, run_with_timeout};
use corepath_tests::gateway::free_port;
use corepath_tests::gateway_and_host_cores;
use corepath_tests::host::{test_controller_options, write_and_verify_every_size, TestHost};
use corepath_tests::vmlab::{kernel_complaints, Guest};
use engine::TransportId;
use serde_json::Value;

/// The subsystem the kernel target serves.
const KERNEL_TARGET_NQN: &str = "nqn.2026-11.io.corepath.vmlab:ram0";
/// Bytes of the kernel target's RAM disk (brd rd_size=16384 KiB).
const KERNEL_TARGET_BYTES: u64 = 16 << 20;
/// The subsystem corepath-tgt serves to the kernel host, its serial number and controller ID range.
const GATEWAY_NQN: &str = "nqn.2021-06.io.spdk:vmlab0";
const GATEWAY_SERIAL: &str = "CPVMLAB0001";
const GATEWAY_CNTLID: (u16, u16) = (100, 199);

/// The longest a guest job may run before the test kills the guest.
const JOB_TIMEOUT: Duration = Duration::from_secs(900);
/// IOs in flight per pass of the every-size check...
const QUEUE_DEPTH: usize = 32;
/// ...but at most this many bytes: under TCG and QEMU's user network 32 MiB
/// in flight would take seconds per IO, near the helpers' 10 s IO timeout.
const MAX_IN_FLIGHT_BYTES: usize = 4 << 20;

fn run_bench_verify(trid: &TransportId, digests: bool, host_core: usize) {
    let trid = trid.to_string();
    let cpumask = format!("0x{:x}", 1u32 << host_core);
    let mut args = vec![
        "--trid",
        trid.as_str(),
        "--rw",
        "randrw",
        "--verify",
        "--iodepth",
        "32",
        "--runtime",
        "5",
        "--cpumask",
        cpumask.as_str(),
        "--output-format",
        "json",
    ];
    if digests {
        args.extend(["--hdgst", "--ddgst"]);
    }
    let out = run_with_timeout(&binary("corepath-bench"), &args, Duration::from_secs(120))
        .expect("corepath-bench still running after 120 s (killed)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "corepath-bench {args:?} failed: {:?}\n{stderr}", out.status);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}", String::from_utf8_lossy(&out.stdout)));
    let job = &report["jobs"][0];
    assert_eq!(job["error"], 0, "job error: {job}");
    assert_eq!(job["corepath"]["verify_errors"], 0, "verify errors: {}", job["corepath"]);
    let reads = job["read"]["total_ios"].as_u64().unwrap_or(0);
    let writes = job["write"]["total_ios"].as_u64().unwrap_or(0);
    assert!(reads > 0 && writes > 0, "randrw moved no IO: read {reads}, write {writes}\n{job}");
    eprintln!("bench randrw --verify digests={digests}: {reads} reads, {writes} writes, 0 verify errors");
}

#[test]
fn corepath_host_verifies_every_io_size_and_bench_randrw_on_the_kernel_target() {
    let port = free_port("127.0.0.1");
    let env = [("NQN", KERNEL_TARGET_NQN.to_string()), ("WAIT_S", "900".to_string())];
    let mut guest = Guest::start("kernel-target.sh", &env, &[], Some(port));
    guest.wait_for_file("READY", Duration::from_secs(300));
    let trid = TransportId::tcp("127.0.0.1", &port.to_string(), KERNEL_TARGET_NQN);
    let (_, host_core) = gateway_and_host_cores();
    for digests in [false, true] {
        let mut opts = test_controller_options();
        opts.connect_timeout_ms = 30_000;
        opts.header_digest = digests;
        opts.data_digest = digests;
        let host = TestHost::attach(&trid, &[host_core], &opts)
            .unwrap_or_else(|e| panic!("attach to the kernel target (digests {digests}): {e:?}\n{}", guest.report()));
        assert_eq!(
            host.ns.num_blocks * u64::from(host.ns.block_size),
            KERNEL_TARGET_BYTES,
            "namespace size from Identify Namespace"
        );
        let start = Instant::now();
        let sizes = write_and_verify_every_size(&host, 0x6b65_726e, QUEUE_DEPTH, MAX_IN_FLIGHT_BYTES);
        assert_eq!(sizes.len(), 12, "512 B ..= 1 MiB is 12 sizes");
        eprintln!(
            "kernel target, digests={digests}: {} MiB x {} sizes written and verified in {:?}",
            KERNEL_TARGET_BYTES >> 20,
            sizes.len(),
            start.elapsed()
        );
        drop(host);
        run_bench_verify(&trid, digests, host_core);
    }
    guest.touch("HOSTDONE");
    let rc = guest.wait_job(Duration::from_secs(120));
    eprintln!("{}", guest.read("job.log"));
    assert_eq!(rc, 0, "guest job failed\n{}", guest.report());
    guest.assert_kernel_quiet();
}

fn gateway_job_env() -> Vec<(&'static str, String)> {
    vec![
        ("NQN", GATEWAY_NQN.to_string()),
        ("SERIAL", GATEWAY_SERIAL.to_string()),
        ("MIN_CNTLID", GATEWAY_CNTLID.0.to_string()),
        ("MAX_CNTLID", GATEWAY_CNTLID.1.to_string()),
        // fio block size:bytes written then verified, per digest setting.
        ("FIO_SIZES", "4k:8M 128k:32M 1m:64M".to_string()),
    ]
}

fn gateway_binaries() -> Vec<PathBuf> {
    vec![binary("corepath-tgt"), binary("corepath-rpc")]
}

/// Runs a kernel-host job against corepath-tgt in the guest and checks it
/// passed every CHECK with a quiet kernel.
fn run_kernel_host_job(job: &str) {
    let mut guest = Guest::start(job, &gateway_job_env(), &gateway_binaries(), None);
    let rc = guest.wait_job(JOB_TIMEOUT);
    let log = guest.read("job.log");
    eprintln!("--- guest job output ---\n{log}");
    assert!(log.contains("CHECK ok"), "the job checked nothing\n{}", guest.report());
    let failed: Vec<&str> = log.lines().filter(|l| l.starts_with("CHECK FAIL")).collect();
    assert!(failed.is_empty() && rc == 0, "job rc {rc}, failed checks:\n{}\n{}", failed.join("\n"), guest.report());
    guest.assert_kernel_quiet();
}

#[test]
fn kernel_host_discovers_connects_identifies_and_verifies_fio_on_corepath_tgt() {
    run_kernel_host_job("kernel-host.sh");
}

#[test]
fn kernel_host_reconnects_to_a_restarted_corepath_tgt_and_io_resumes_verified() {
    run_kernel_host_job("kernel-reconnect.sh");
}

#[test]
fn kernel_complaints_catch_oopses_and_pdu_errors_but_not_reconnect_messages() {
    let quiet = "[   25.05] nvme nvme0: starting error recovery\n\
                 [   26.06] nvme nvme0: failed to connect socket: -111\n\
                 [   31.38] nvme nvme0: Successfully reconnected (6 attempt)\n\
                 [   21.65] nvmet: creating nvm controller 1 for subsystem nqn.x for NQN nqn.y.";
    assert!(kernel_complaints(quiet).is_empty(), "{:?}", kernel_complaints(quiet));
    let loud = "[   61.11] usercopy: Kernel memory exposure attempt detected from page alloc\n\
                [   61.12] kernel BUG at mm/usercopy.c:101!\n\
                [   61.13] nvme nvme0: queue 1: data digest error\n\
                [   61.14] nvmet_tcp: unexpected pdu type 9";
    assert_eq!(kernel_complaints(loud).len(), 3, "{:?}", kernel_complaints(loud));
}
