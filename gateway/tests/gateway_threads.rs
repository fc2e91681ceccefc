//! The gateway on real reactor threads, with an in-memory transport: queue
//! pairs spread over the cores, listeners start and stop, shutdown closes
//! every connection.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use corepath_gateway::{Gateway, GatewayError, GatewayOptions};
use engine::{AdrFam, IdlePolicy, MonotonicClock, TrType};
use protocol::fabrics::CNTLID_DYNAMIC;
use protocol::features::{fid, set_features_sqe};
use protocol::property::Cc;
use protocol::Sqe;

fn start(cores: Vec<usize>) -> (Gateway<FakeTransport>, FakeTransport) {
    let (state, _bdev) = configured_state(&RigConfig::default());
    let transport = FakeTransport::default();
    let opts = GatewayOptions {
        cores,
        idle: IdlePolicy::adaptive(),
        trtype: TrType::Tcp,
        clock: Arc::new(MonotonicClock::new()),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start(transport.clone(), Arc::new(Mutex::new(state)), opts).unwrap();
    (gw, transport)
}

/// Waits until `cond` holds (reactors run on their own threads).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends a command and waits for its completion.
fn exec(h: &FakeHandle, sqe: Sqe, data: Vec<u8>) -> Completion {
    h.submit(sqe, data);
    let mut done = Vec::new();
    eventually("a completion", || {
        done = h.take_completions();
        !done.is_empty()
    });
    done.remove(0)
}

fn qpairs_per_reactor(gw: &Gateway<FakeTransport>) -> Vec<u64> {
    gw.reactors()["reactors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lw_threads"][0]["qpairs"].as_u64().unwrap())
        .collect()
}

#[test]
fn accepted_connections_are_spread_round_robin_over_the_reactors() {
    let (gw, transport) = start(vec![0, 1]);
    gw.listen(&listen_addr(), &target_opts()).unwrap();
    let handles: Vec<FakeHandle> = (0..4).map(|_| transport.dial()).collect();
    eventually("2 queue pairs on each reactor", || qpairs_per_reactor(&gw) == vec![2, 2]);
    let report = gw.reactors();
    assert_eq!(report["tick_rate"], 1_000_000_000u64);
    assert_eq!(report["reactors"][1]["lcore"], 1);
    assert!(report["reactors"][0].get("busy").is_some() && report["reactors"][0].get("idle").is_some());
    gw.shutdown();
    assert!(handles.iter().all(FakeHandle::is_closed), "shutdown closes every connection");
}

#[test]
fn host_connects_and_does_io_through_the_threaded_gateway() {
    let (gw, transport) = start(vec![0, 1]);
    gw.listen(&listen_addr(), &target_opts()).unwrap();
    let admin_q = transport.dial();
    let c = exec(&admin_q, connect_sqe(0, 31, 10_000), connect_data(CNTLID_DYNAMIC, SUBNQN, HOST_A));
    assert!(c.is_success(), "{:?}", c.status());
    let cntlid = c.cqe.dw0 as u16;
    assert!(exec(&admin_q, Sqe::property_set(0x14, false, u64::from(Cc::enable_nvm().to_u32())), vec![]).is_success());
    assert!(exec(&admin_q, set_features_sqe(fid::NUMBER_OF_QUEUES, 0x0001_0001, false), vec![]).is_success());
    // Two IO queues: the second connection lands on the other reactor.
    let io1 = transport.dial();
    let io2 = transport.dial();
    assert!(exec(&io1, connect_sqe(1, 127, 0), connect_data(cntlid, SUBNQN, HOST_A)).is_success());
    assert!(exec(&io2, connect_sqe(2, 127, 0), connect_data(cntlid, SUBNQN, HOST_A)).is_success());
    let data = pattern(4, 11);
    assert!(exec(&io1, write_sqe(1, 64, 4), data.clone()).is_success());
    let c = exec(&io2, read_sqe(1, 64, 4), vec![]);
    assert!(c.is_success());
    assert_eq!(c.data, data);
    assert_eq!(gw.controllers(Some(SUBNQN))[0].num_io_qpairs, 2);

    // The host drops the admin queue: the IO queues on both reactors go too.
    admin_q.close();
    eventually("IO queues torn down", || io1.is_closed() && io2.is_closed());
    assert!(gw.controllers(None).is_empty());
}

#[test]
fn listen_is_idempotent_stop_listening_closes_and_other_transports_are_refused() {
    let (gw, transport) = start(vec![0]);
    gw.listen(&listen_addr(), &target_opts()).unwrap();
    gw.listen(&listen_addr(), &target_opts()).unwrap();
    assert_eq!(gw.listen_addresses(), vec![listen_addr()]);
    let rdma = corepath_gateway::config::ListenAddress {
        trtype: TrType::Rdma,
        adrfam: AdrFam::Ipv4,
        traddr: "10.0.0.1".into(),
        trsvcid: "4420".into(),
    };
    assert!(matches!(gw.listen(&rdma, &target_opts()), Err(GatewayError::WrongTransport { .. })));

    gw.stop_listening(&listen_addr()).unwrap();
    assert!(gw.listen_addresses().is_empty());
    assert!(matches!(gw.stop_listening(&listen_addr()), Err(GatewayError::NotListening(_))));
    // Nobody accepts any more.
    let h = transport.dial();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(qpairs_per_reactor(&gw), vec![0]);
    assert!(!h.is_closed());
    gw.shutdown();
    assert!(matches!(gw.listen(&listen_addr(), &target_opts()), Err(GatewayError::ShutDown)));
}
