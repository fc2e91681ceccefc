//! Fuzzes the JSON-RPC control plane with arbitrary bytes: the one-shot
//! request parser, the stream framer (fed in two pieces), and dispatch of
//! whatever parses to the gateway's methods over a fresh configuration.
//!
//! Any panic or sanitizer report is a bug: every input must end in a result
//! or a JSON-RPC error. `bdev_malloc_*` is not dispatched, so that a fuzzed
//! size cannot make the sanitizer's allocator give up on a huge allocation.
#![no_main]

use std::sync::{Arc, Mutex};

use corepath_rpc::jsonrpc::{parse_request, request_from_value, JsonStream};
use corepath_rpc::{GatewayRpc, NoDataPlane, Router};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_request(data);

    // The framer must agree with the one-shot parser on a single value, wherever the bytes are split.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut stream = JsonStream::new(1 << 20);
    stream.push(&data[..split]);
    let mut values = Vec::new();
    while let Ok(Some(v)) = stream.next_value() {
        values.push(v);
    }
    stream.push(&data[split..]);
    while let Ok(Some(v)) = stream.next_value() {
        values.push(v);
    }
    for value in values {
        let _ = request_from_value(value);
    }

    if let Ok(request) = parsed {
        if request.method.starts_with("bdev_malloc") {
            return;
        }
        let mut router = Router::new();
        let state = Arc::new(Mutex::new(Default::default()));
        let gateway = GatewayRpc::new(state, Arc::new(NoDataPlane));
        if router.add(Arc::new(gateway)).is_ok() {
            // Twice: the second call meets the state the first one left.
            let _ = router.call(&request.method, request.params.as_ref());
            let _ = router.call(&request.method, request.params.as_ref());
            let _ = router.save_config();
        }
    }
});
