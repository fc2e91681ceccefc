//! Embedding the engine: start reactors, attach a controller by transport ID,
//! then write and read back through the cross-thread rings from `main`.
//!
//! ```text
//! cargo run --release -p corepath-engine --example write_read -- \
//!   'trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:nqn.2021-06.io.spdk:ctc_rbd0'
//! ```

use std::time::Duration;

use corepath_engine::{
    ControllerOptions, Engine, EngineOptions, IdlePolicy, IoBuf, IoChannel, IoOp, RingIo, TransportId,
};
use transport_tcp::TcpHostTransport;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trid: TransportId = std::env::args().nth(1).ok_or("usage: write_read '<transport ID>'")?.parse()?;

    // One reactor on core 0; yield when idle since this example mostly waits.
    let mut opts = EngineOptions::on_cores(&[0]);
    opts.idle = IdlePolicy::adaptive();
    let engine = Engine::start(opts, |_| TcpHostTransport::new())?;
    let ctrlr = engine.attach_controller(&trid, &ControllerOptions::default())?;
    println!(
        "attached {} cntlid {} serial '{}' model '{}'",
        ctrlr.trid, ctrlr.data.cntlid, ctrlr.data.serial_number, ctrlr.data.model_number
    );
    let nsid = ctrlr.data.namespaces.first().ok_or("no namespace")?.nsid;
    let ns = ctrlr.namespace(nsid).ok_or("no namespace")?;
    println!("namespace {nsid}: {} blocks of {} bytes", ns.num_blocks, ns.block_size);

    // The ring is served by a job on reactor 0; we talk to it from this thread.
    let (chan, job): (IoChannel, _) = IoChannel::new(16);
    engine.spawn_job(0, Box::new(job))?;

    let blocks = 8u32;
    let len = (blocks * ns.block_size) as usize;
    let mut wbuf = IoBuf::new(len);
    for (i, b) in wbuf.as_mut_slice().iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let expected = wbuf.as_slice().to_vec();
    chan.submit(RingIo { ns: ns.clone(), op: IoOp::Write, lba: 0, num_blocks: blocks, buf: Some(wbuf), tag: 1 })
        .map_err(|_| "ring full")?;
    let done = chan.wait_completion(Duration::from_secs(10)).ok_or("write timed out")?;
    println!("write: {}", done.status);

    chan.submit(RingIo {
        ns: ns.clone(),
        op: IoOp::Read,
        lba: 0,
        num_blocks: blocks,
        buf: Some(IoBuf::new(len)),
        tag: 2,
    })
    .map_err(|_| "ring full")?;
    let done = chan.wait_completion(Duration::from_secs(10)).ok_or("read timed out")?;
    let same = done.buf.as_ref().is_some_and(|b| b.as_slice() == expected.as_slice());
    println!("read: {}, data {}", done.status, if same { "matches" } else { "DIFFERS" });

    chan.close();
    engine.detach_controller(&ctrlr);
    engine.shutdown();
    if same {
        Ok(())
    } else {
        Err("read data differs from written data".into())
    }
}
