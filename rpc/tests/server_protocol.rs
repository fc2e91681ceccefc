//! The server's framing and robustness, the socket file rules, and the
//! `corepath-rpc` binary.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::Duration;

use common::{gateway_router, temp_socket, TestServer, NQN};
use corepath_rpc::{serve, ClientError, RpcClient};
use serde_json::{json, Value};

/// Sends raw bytes and reads until the server closes the connection.
fn exchange_until_close(server: &TestServer, bytes: &[u8]) -> Vec<Value> {
    let mut stream = UnixStream::connect(&server.path).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    serde_json::Deserializer::from_slice(&out).into_iter::<Value>().map(Result::unwrap).collect()
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {response}"))
}

#[test]
fn back_to_back_requests_on_one_connection_are_answered_in_order() {
    let server = TestServer::start("pipeline");
    let responses = exchange_until_close(
        &server,
        br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":1}{"jsonrpc":"2.0","method":"nvmf_get_subsystems","id":"two"}
        {"jsonrpc":"2.0","method":"nope","id":3}"#,
    );
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["id"], 1);
    assert_eq!(responses[0]["result"]["version"], "corepath v0.1.0");
    assert_eq!(responses[1]["id"], "two");
    assert_eq!(responses[1]["jsonrpc"], "2.0");
    assert_eq!(error_code(&responses[2]), -32601);
}

#[test]
fn garbage_bytes_get_a_parse_error_and_the_connection_is_closed() {
    let server = TestServer::start("garbage");
    let responses = exchange_until_close(&server, b"\x00\xff{{{ not json");
    assert_eq!(responses.len(), 1);
    assert_eq!(error_code(&responses[0]), -32700);
    assert_eq!(responses[0]["id"], Value::Null);
    // The server is still up.
    assert!(server.client().call("spdk_get_version", None).is_ok());
}

#[test]
fn truncated_json_then_hangup_does_not_hurt_the_server() {
    let server = TestServer::start("truncated");
    let responses = exchange_until_close(&server, br#"{"jsonrpc":"2.0","method":"bdev_get_bd"#);
    assert!(responses.is_empty());
    assert!(server.client().call("spdk_get_version", None).is_ok());
}

#[test]
fn invalid_requests_get_invalid_request_and_the_connection_stays_usable() {
    let server = TestServer::start("invalid");
    let mut client = server.client();
    let cases: [(&[u8], Value); 5] = [
        (b"42", Value::Null),
        (b"[1,2]", Value::Null),
        (br#"{"jsonrpc":"2.0","id":5}"#, json!(5)),
        (br#"{"jsonrpc":"1.0","method":"spdk_get_version","id":6}"#, json!(6)),
        (br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":7,"params":"x"}"#, json!(7)),
    ];
    for (bytes, id) in cases {
        client.send_raw(bytes).unwrap();
        let response = client.recv_value().unwrap();
        assert_eq!(error_code(&response), -32600, "{}", String::from_utf8_lossy(bytes));
        assert_eq!(response["id"], id);
    }
    assert!(client.call("spdk_get_version", None).is_ok());
}

#[test]
fn oversized_request_is_refused_and_closed() {
    let server = TestServer::start("oversized");
    let mut request = br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":1,"params":{"x":""#.to_vec();
    request.extend(vec![b'a'; corepath_rpc::MAX_REQUEST_BYTES + 10]);
    let responses = exchange_until_close(&server, &request);
    assert_eq!(responses.len(), 1);
    assert_eq!(error_code(&responses[0]), -32600);
    assert!(responses[0]["error"]["message"].as_str().unwrap().contains("exceeds"));
    assert!(server.client().call("spdk_get_version", None).is_ok());
}

#[test]
fn stale_socket_file_is_replaced_and_a_live_server_is_not() {
    let path = temp_socket("stale");
    drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
    assert!(path.exists());
    let (router, _, _) = gateway_router();
    let first = serve(&path, router.clone()).unwrap();
    let second = serve(&path, router.clone());
    assert!(second.unwrap_err().message.contains("another RPC server"));
    assert!(RpcClient::connect(&path).unwrap().call("spdk_get_version", None).is_ok(), "first server unharmed");
    first.shutdown();
    assert!(!path.exists(), "shutdown removes the socket file");
    assert!(matches!(RpcClient::connect(&path), Err(ClientError::Io { .. })));

    let not_a_socket = temp_socket("regular-file");
    std::fs::write(&not_a_socket, b"keep me").unwrap();
    assert!(serve(&not_a_socket, router).is_err());
    assert_eq!(std::fs::read(&not_a_socket).unwrap(), b"keep me");
    std::fs::remove_file(&not_a_socket).unwrap();
}

fn corepath_rpc(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_corepath-rpc"))
        .arg("-s")
        .arg(&server.path)
        .args(args)
        .output()
        .expect("run corepath-rpc")
}

#[test]
fn corepath_rpc_binary_runs_the_design_sequence_like_rpc_py() {
    let server = TestServer::start("cli");
    let run_ok = |args: &[&str]| {
        let out = corepath_rpc(&server, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run_ok(&["nvmf_create_transport", "-t", "tcp", "-m", "64"]), "");
    assert_eq!(run_ok(&["bdev_malloc_create", "-b", "Malloc0", "64", "512"]), "Malloc0\n");
    assert_eq!(run_ok(&["nvmf_create_subsystem", NQN, "-a", "-s", "SPDK_BDEV_0", "-i", "1", "-I", "32760"]), "");
    assert_eq!(run_ok(&["nvmf_subsystem_add_ns", NQN, "Malloc0"]), "");
    assert_eq!(run_ok(&["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.2", "-s", "4420"]), "");

    let printed = run_ok(&["nvmf_get_subsystems", NQN]);
    let subsystems: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed.trim_end(), serde_json::to_string_pretty(&subsystems).unwrap(), "2-space indent as rpc.py");
    assert_eq!(subsystems[0]["max_cntlid"], 32760);
    assert_eq!(subsystems[0]["listen_addresses"][0]["traddr"], "127.0.0.2");
    let transports: Value = serde_json::from_str(&run_ok(&["nvmf_get_transports"])).unwrap();
    assert_eq!(transports[0]["trtype"], "TCP");
    assert_eq!(transports[0]["max_io_qpairs_per_ctrlr"], 64);
    let bdevs: Value = serde_json::from_str(&run_ok(&["bdev_get_bdevs", "-b", "Malloc0"])).unwrap();
    assert_eq!(bdevs[0]["num_blocks"], 131072, "64 MiB of 512-byte blocks");
    let version: Value = serde_json::from_str(&run_ok(&["call", "spdk_get_version"])).unwrap();
    assert_eq!(version["version"], "corepath v0.1.0");

    let out = corepath_rpc(&server, &["nvmf_delete_subsystem", "nqn.2016-06.io.spdk:none"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("request:\n{\n  \"nqn\": \"nqn.2016-06.io.spdk:none\",\n"), "{stderr}");
    assert!(stderr.contains("\"method\": \"nvmf_delete_subsystem\""), "{stderr}");
    assert!(stderr.contains("\"req_id\": 1"), "{stderr}");
    assert!(stderr.contains("Got JSON-RPC error response\nresponse:\n{\n  \"code\": -32602,"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_corepath-rpc"))
        .args(["-s", "/nonexistent/corepath.sock", "spdk_get_version"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/corepath.sock"));
}

#[test]
fn two_hundred_idle_connections_get_busy_in_words_and_the_operator_is_served_once_they_close() {
    let server = TestServer::start("busy");
    let idle: Vec<UnixStream> = (0..200).map(|_| UnixStream::connect(&server.path).unwrap()).collect();
    // The server serves MAX_CONNECTIONS of them; wait until it has taken them all.
    std::thread::sleep(Duration::from_millis(500));
    let out = corepath_rpc(&server, &["nvmf_get_subsystems"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "over the limit: {stderr}");
    assert!(
        stderr.contains("the server is busy: 128 connections are open"),
        "corepath-rpc says the server is busy, in words: {stderr}"
    );
    drop(idle);
    // Within 1 s of them closing, the operator is served again.
    let start = std::time::Instant::now();
    loop {
        let out = corepath_rpc(&server, &["nvmf_get_subsystems"]);
        if out.status.success() {
            assert!(serde_json::from_slice::<Value>(&out.stdout).unwrap().is_array(), "a list of subsystems");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "still refused 1 s after the idle connections closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
