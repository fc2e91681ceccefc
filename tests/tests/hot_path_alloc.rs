//! The IO path allocates nothing in steady state: host engine, NVMe/TCP on
//! both sides and the gateway, in one process, counted by a global allocator
//! while thousands of reads and writes go through.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use corepath_tests::gateway::{GatewaySetup, TestGateway, NQN};
use corepath_tests::gateway_and_host_cores;
use corepath_tests::host::{test_controller_options, TestHost};
use engine::{IoBuf, IoOp};

struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn steady_state_reads_and_writes_allocate_nothing_on_host_or_gateway() {
    let (gateway_core, host_core) = gateway_and_host_cores();
    let gw = TestGateway::start(&GatewaySetup::new(gateway_core, "127.0.0.17", 8 << 20));
    let host = TestHost::attach(&gw.trid(NQN), &[host_core], &test_controller_options()).expect("attach");
    let blocks = 8u32;
    let mut buf = Some(IoBuf::new(host.bytes(blocks)));
    let mut run = |count: u64| {
        for i in 0..count {
            let op = if i % 2 == 0 { IoOp::Write } else { IoOp::Read };
            let lba = (i * 64) % (host.ns.num_blocks - u64::from(blocks));
            let (status, back) = host.io(0, op, lba, blocks, buf.take());
            assert!(status.is_success(), "{op:?} at {lba}: {status}");
            buf = back;
        }
    };
    // Warm up: slot buffers reach their size, queues and rings settle.
    run(1_000);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(10_000);
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(during, 0, "{during} allocations during 10000 steady-state IOs");
}
