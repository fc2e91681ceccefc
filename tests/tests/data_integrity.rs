//! Data integrity end to end over NVMe/TCP loopback: an in-process gateway
//! with a malloc namespace and a host engine. Every IO size from 512 B to
//! 1 MiB writes the whole namespace with a pattern unique to (size, offset)
//! and reads it all back, without and with header and data digests; and one
//! verifying `corepath-bench` run against the same kind of gateway.

use std::time::{Duration, Instant};

use corepath_tests::bins::{binary, run_with_timeout};
use corepath_tests::gateway::{GatewaySetup, TestGateway, NQN};
use corepath_tests::gateway_and_host_cores;
use corepath_tests::host::{test_controller_options, write_and_verify_every_size, TestHost};
use corepath_tests::raw_host::RawQpair;
use serde_json::Value;

/// IOs in flight per pass.
const QUEUE_DEPTH: usize = 32;

fn run_every_size(traddr: &str, malloc_bytes: u64, digests: bool) {
    let (gw_core, host_core) = gateway_and_host_cores();
    let gw = TestGateway::start(&GatewaySetup::new(gw_core, traddr, malloc_bytes));
    let mut opts = test_controller_options();
    opts.header_digest = digests;
    opts.data_digest = digests;
    let host = TestHost::attach(&gw.trid(NQN), &[host_core], &opts).expect("attach");
    // The engine's queue pairs are this transport's; check the gateway grants what was asked.
    let raw = RawQpair::connect(&gw.trid(NQN), 1, 4, digests).expect("raw connect");
    assert_eq!(raw.digests(), Some((digests, digests)), "digests negotiated in ICResp");
    assert_eq!(host.ns.num_blocks * u64::from(host.ns.block_size), malloc_bytes);
    assert!(host.ns.max_transfer_bytes >= 1 << 20, "MDTS below 1 MiB: {}", host.ns.max_transfer_bytes);
    let start = Instant::now();
    let sizes = write_and_verify_every_size(&host, 0, QUEUE_DEPTH, usize::MAX);
    assert_eq!(sizes.len(), 12, "512 B ..= 1 MiB is 12 sizes");
    eprintln!("digests={digests}: {} MiB x {} sizes in {:?}", malloc_bytes >> 20, sizes.len(), start.elapsed());
}

#[test]
fn every_io_size_from_512b_to_1mib_reads_back_what_it_wrote() {
    run_every_size("127.0.0.3", 8 << 20, false);
}

#[test]
fn every_io_size_reads_back_what_it_wrote_with_header_and_data_digests() {
    run_every_size("127.0.0.4", 4 << 20, true);
}

#[test]
fn bench_randrw_with_verify_finds_no_errors() {
    let (gw_core, host_core) = gateway_and_host_cores();
    let gw = TestGateway::start(&GatewaySetup::new(gw_core, "127.0.0.5", 16 << 20));
    let trid = gw.trid(NQN).to_string();
    let cpumask = format!("0x{:x}", 1u32 << host_core);
    let args = [
        "--trid",
        trid.as_str(),
        "--rw",
        "randrw",
        "--verify",
        "--iodepth",
        "32",
        "--runtime",
        "3",
        "--cpumask",
        cpumask.as_str(),
        "--output-format",
        "json",
    ];
    let start = Instant::now();
    let out = run_with_timeout(&binary("corepath-bench"), &args, Duration::from_secs(60))
        .expect("corepath-bench still running after 60 s (killed)");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "corepath-bench {args:?} failed: {:?}\n{stderr}", out.status);
    assert!(elapsed < Duration::from_secs(30), "a 3 s run took {elapsed:?}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}", String::from_utf8_lossy(&out.stdout)));
    let job = &report["jobs"][0];
    assert_eq!(job["error"], 0, "job error: {job}");
    assert_eq!(job["corepath"]["verify_errors"], 0, "verify errors: {}", job["corepath"]);
    let reads = job["read"]["total_ios"].as_u64().unwrap_or(0);
    let writes = job["write"]["total_ios"].as_u64().unwrap_or(0);
    assert!(reads > 0 && writes > 0, "randrw moved no IO: read {reads}, write {writes}\n{job}");
}
