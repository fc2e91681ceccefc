//! Two cores on each side: a gateway on two reactors and a host engine on
//! two reactors, so the host has one IO queue pair per core and the
//! gateway spreads the queue pairs over its reactors. Both halves of the
//! namespace are written at once, each through its own queue pair, and read
//! back crosswise through the other.

use std::time::Instant;

use corepath_tests::gateway::{GatewaySetup, TestGateway, NQN};
use corepath_tests::host::{extents, test_controller_options, Extent, TestHost};
use corepath_tests::pattern;
use engine::IoOp;
use serde_json::json;

const NS_BYTES: u64 = 16 << 20;
const IO_BLOCKS: u32 = 64; // 32 KiB
const TAG: u64 = 0x2C;

fn reactor_stats(gw: &TestGateway) -> Vec<(u64, u64)> {
    let r = gw.call("framework_get_reactors", json!({}));
    r["reactors"]
        .as_array()
        .expect("reactors array")
        .iter()
        .map(|x| (x["busy"].as_u64().unwrap_or(0), x["lw_threads"][0]["qpairs"].as_u64().unwrap_or(0)))
        .collect()
}

fn write(host: &TestHost, write_reactor: usize, plan: &[Extent]) {
    let bs = u64::from(host.ns.block_size);
    host.pipeline(
        write_reactor,
        IoOp::Write,
        plan,
        32,
        |i, buf| pattern::fill(buf, TAG, plan[i].lba * bs),
        |i, s, _| assert!(s.is_success(), "write lba {} via reactor {write_reactor}: {s:?}", plan[i].lba),
    );
}

#[test]
fn two_host_cores_and_two_gateway_reactors_both_carry_verified_io() {
    // Reactors pin to cores 0 and 1; on a one-core machine pinning fails and
    // they run unpinned, which still gives two reactors with a queue pair each.
    let mut setup = GatewaySetup::new(0, "127.0.0.16", NS_BYTES);
    setup.cores = vec![0, 1];
    let gw = TestGateway::start(&setup);
    let host = TestHost::attach(&gw.trid(NQN), &[0, 1], &test_controller_options()).expect("attach on two cores");
    assert!(host.ctrlr.data.io_queues_granted >= 2, "granted {} IO queues", host.ctrlr.data.io_queues_granted);

    let before = reactor_stats(&gw);
    assert_eq!(before.len(), 2, "two gateway reactors");
    let qpairs: Vec<u64> = before.iter().map(|s| s.1).collect();
    assert_eq!(qpairs.iter().sum::<u64>(), 3, "admin + 2 IO queue pairs, per reactor {qpairs:?}");
    assert!(qpairs.iter().all(|&n| n >= 1), "a gateway reactor has no queue pair: {qpairs:?}");

    let half = host.ns.num_blocks / 2;
    let plans = [extents(0, half, IO_BLOCKS), extents(half, half, IO_BLOCKS)];
    let start = Instant::now();
    std::thread::scope(|s| {
        for (r, plan) in plans.iter().enumerate() {
            let host = &host;
            s.spawn(move || write(host, r, plan));
        }
    });
    // Read each half back through the other core's queue pair.
    std::thread::scope(|s| {
        for (r, plan) in plans.iter().enumerate() {
            let host = &host;
            s.spawn(move || {
                let reader = 1 - r;
                let bs = u64::from(host.ns.block_size);
                host.pipeline(
                    reader,
                    IoOp::Read,
                    plan,
                    32,
                    |_, _| {},
                    |i, st, data| {
                        assert!(st.is_success(), "read lba {} via reactor {reader}: {st:?}", plan[i].lba);
                        if let Some(at) = pattern::first_mismatch(data, TAG, plan[i].lba * bs) {
                            panic!("lba {} read via reactor {reader}: differs at byte {at}", plan[i].lba);
                        }
                    },
                );
            });
        }
    });
    eprintln!("{} MiB written and read crosswise on 2+2 cores in {:?}", NS_BYTES >> 20, start.elapsed());
    let after = reactor_stats(&gw);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a.0 > b.0, "gateway reactor {i} did no work during the IO (busy {} -> {})", b.0, a.0);
    }
}
