//! The gateway's RPC methods over a real Unix socket, with a fake data plane.

mod common;

use std::sync::Arc;

use common::{design_sequence, gateway_router, TestServer, NQN};
use corepath_rpc::{load_config, load_config_file, ClientError, RpcClient};
use serde_json::{json, Value};

fn call(client: &mut RpcClient, method: &str, params: Value) -> Result<Value, (i32, String)> {
    client.call(method, Some(params)).map_err(|e| match e {
        ClientError::Rpc(e) => (e.code, e.message),
        other => panic!("{method}: transport failure {other}"),
    })
}

#[test]
fn design_sequence_produces_spdks_nvmf_get_subsystems_shape() {
    let server = TestServer::start("design");
    let mut client = server.client();
    design_sequence(&mut client);
    let uuid = server.state.lock().unwrap().bdev("Malloc0").map(|b| gateway::bdev::format_uuid(&b.uuid())).unwrap();
    let nguid = uuid.replace('-', "").to_uppercase();
    let subsystems = call(&mut client, "nvmf_get_subsystems", json!({})).unwrap();
    let expected = json!([
        {
            "nqn": "nqn.2014-08.org.nvmexpress.discovery",
            "subtype": "Discovery",
            "listen_addresses": [],
            "allow_any_host": true,
            "hosts": []
        },
        {
            "nqn": NQN,
            "subtype": "NVMe",
            "listen_addresses": [{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.2", "trsvcid": "4420"}],
            "allow_any_host": true,
            "hosts": [],
            "serial_number": "SPDK_BDEV_0",
            "model_number": "SPDK bdev Controller",
            "max_namespaces": 32,
            "passthrough": false,
            "min_cntlid": 1,
            "max_cntlid": 32760,
            "dmrsl": 2097152,
            "wzsl": 12,
            "namespaces": [{"nsid": 1, "bdev_name": "Malloc0", "name": "Malloc0", "nguid": nguid, "uuid": uuid}]
        }
    ]);
    assert_eq!(subsystems, expected);
    // Key order is part of the shape users diff against.
    assert_eq!(serde_json::to_string(&subsystems).unwrap(), serde_json::to_string(&expected).unwrap());
    assert_eq!(call(&mut client, "nvmf_get_subsystems", json!({"nqn": NQN})).unwrap(), json!([expected[1]]));
    assert_eq!(server.data_plane.events(), ["listen TCP:127.0.0.2:4420 qd=128"]);

    let transports = call(&mut client, "nvmf_get_transports", json!({})).unwrap();
    assert_eq!(transports[0]["trtype"], "TCP");
    assert_eq!(transports[0]["max_io_qpairs_per_ctrlr"], 64);
    let bdevs = call(&mut client, "bdev_get_bdevs", json!({"name": "Malloc0"})).unwrap();
    assert_eq!(bdevs[0]["product_name"], "Malloc disk");
    assert_eq!(bdevs[0]["num_blocks"], 131072);
    assert_eq!(bdevs[0]["claimed"], true);
    assert_eq!(bdevs[0]["aliases"], json!([uuid]));
    let reactors = call(&mut client, "framework_get_reactors", json!({})).unwrap();
    assert_eq!(reactors["reactors"][0]["lcore"], 0);
}

#[test]
fn save_config_replayed_into_a_fresh_gateway_gives_the_same_state() {
    let server = TestServer::start("save");
    let mut client = server.client();
    design_sequence(&mut client);
    call(&mut client, "bdev_null_create", json!({"name": "Null0", "num_blocks": 2048, "block_size": 4096})).unwrap();
    call(&mut client, "bdev_malloc_create", json!({"num_blocks": 16, "block_size": 4096})).unwrap();
    call(&mut client, "nvmf_create_subsystem", json!({"nqn": "nqn.2016-06.io.spdk:cnode2", "max_namespaces": 4}))
        .unwrap();
    call(
        &mut client,
        "nvmf_subsystem_add_ns",
        json!({"nqn": "nqn.2016-06.io.spdk:cnode2", "namespace": {"bdev_name": "Null0", "nsid": 3, "nguid": "00112233445566778899AABBCCDDEEFF"}}),
    )
    .unwrap();
    call(&mut client, "nvmf_subsystem_add_host", json!({"nqn": "nqn.2016-06.io.spdk:cnode2", "host": "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"})).unwrap();
    call(
        &mut client,
        "nvmf_subsystem_add_listener",
        json!({"nqn": "nqn.2016-06.io.spdk:cnode2", "listen_address": {"trtype": "TCP", "traddr": "127.0.0.2", "trsvcid": "4420"}}),
    )
    .unwrap();

    let saved = call(&mut client, "save_config", json!({})).unwrap();
    assert_eq!(saved["subsystems"][0]["subsystem"], "bdev");
    assert_eq!(saved["subsystems"][0]["config"][0]["method"], "bdev_malloc_create");
    assert_eq!(saved["subsystems"][1]["subsystem"], "nvmf");
    assert_eq!(saved["subsystems"][1]["config"][0]["method"], "nvmf_create_transport");

    let path = common::temp_socket("saved-config").with_extension("json");
    std::fs::write(&path, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    let (fresh, fresh_data_plane, _) = gateway_router();
    load_config_file(&path, &fresh).unwrap();
    std::fs::remove_file(&path).unwrap();

    for method in ["nvmf_get_subsystems", "bdev_get_bdevs", "nvmf_get_transports"] {
        assert_eq!(fresh.call(method, None).unwrap(), call(&mut client, method, json!({})).unwrap(), "{method}");
    }
    // Replay started the shared listener once, as the original calls did.
    assert_eq!(fresh_data_plane.events(), ["listen TCP:127.0.0.2:4420 qd=128"]);
    assert_eq!(fresh.save_config(), saved, "saving again is a fixed point");
}

#[test]
fn loading_a_config_stops_at_the_first_failing_call() {
    let (router, _, _) = gateway_router();
    let config = json!({"subsystems": [
        {"subsystem": "nvmf", "config": [{"method": "nvmf_create_subsystem", "params": {"nqn": "bad"}}]},
        {"subsystem": "bdev", "config": [{"method": "bdev_wait_for_examine"}, {"method": "bdev_null_create", "params": {"name": "N", "num_blocks": 8, "block_size": 512}}]},
    ]});
    let err = load_config(&config, &router).unwrap_err();
    assert!(format!("{err:#}").contains("nvmf_create_subsystem failed"), "{err:#}");
    // bdev went first, despite coming second in the file; SPDK-only tuning calls are skipped.
    assert_eq!(router.call("bdev_get_bdevs", None).unwrap().as_array().unwrap().len(), 1);
}

#[test]
fn shared_listen_address_is_listened_on_once_and_stopped_with_its_last_subsystem() {
    let server = TestServer::start("shared");
    let mut client = server.client();
    design_sequence(&mut client);
    let other = "nqn.2016-06.io.spdk:cnode1";
    call(&mut client, "nvmf_create_subsystem", json!({"nqn": other})).unwrap();
    let listener = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.2", "trsvcid": "4420"});
    call(&mut client, "nvmf_subsystem_add_listener", json!({"nqn": other, "listen_address": listener})).unwrap();
    assert_eq!(server.data_plane.events().len(), 1);
    call(&mut client, "nvmf_subsystem_remove_listener", json!({"nqn": NQN, "listen_address": listener})).unwrap();
    assert_eq!(server.data_plane.events().len(), 1, "still used by {other}");
    call(&mut client, "nvmf_delete_subsystem", json!({"nqn": other})).unwrap();
    assert_eq!(server.data_plane.events(), ["listen TCP:127.0.0.2:4420 qd=128", "stop TCP:127.0.0.2:4420"]);
}

#[test]
fn a_listen_failure_is_an_internal_error_and_leaves_no_listener_recorded() {
    let server = TestServer::start("listen-fail");
    let mut client = server.client();
    design_sequence(&mut client);
    *server.data_plane.fail_port.lock().unwrap() = Some("4421".into());
    let (code, message) = call(
        &mut client,
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": {"trtype": "TCP", "traddr": "127.0.0.2", "trsvcid": "4421"}}),
    )
    .unwrap_err();
    assert_eq!(code, -32603);
    assert!(message.contains("Address already in use"), "{message}");
    let listeners =
        call(&mut client, "nvmf_get_subsystems", json!({"nqn": NQN})).unwrap()[0]["listen_addresses"].clone();
    assert_eq!(listeners.as_array().unwrap().len(), 1);
}

#[test]
fn each_bad_parameter_gets_its_code_and_a_message_naming_the_problem() {
    let server = TestServer::start("bad-params");
    let mut client = server.client();
    let tcp_4420 = json!({"trtype": "TCP", "traddr": "127.0.0.2", "trsvcid": "4420"});
    // Before any transport exists.
    call(&mut client, "nvmf_create_subsystem", json!({"nqn": NQN})).unwrap();
    let cases: Vec<(&str, Value, i32, &str)> = vec![
        (
            "nvmf_subsystem_add_listener",
            json!({"nqn": NQN, "listen_address": tcp_4420}),
            -32602,
            "nvmf_create_transport",
        ),
        ("nvmf_get_transports", json!({"trtype": "TCP"}), -19, "TCP"),
        ("nvmf_create_transport", json!({"trtype": "FC"}), -32602, "Invalid transport type 'FC'"),
        ("nvmf_create_transport", json!({"trtype": "TCP", "max_queue_depth": 1}), -32602, "max_queue_depth"),
        ("nvmf_create_transport", json!({"trtype": "TCP", "max_io_qpairs_per_ctrlr": 65535}), -32602, "too large"),
        (
            "nvmf_create_transport",
            json!({"trtype": "TCP", "in_capsule_data_size": 8192, "max_io_size": 4096}),
            -32602,
            "in_capsule_data_size",
        ),
        ("nvmf_create_transport", json!({"trtype": "TCP", "bogus": 1}), -32602, "bogus"),
        ("bdev_malloc_create", json!({"block_size": 512}), -32602, "num_blocks"),
        ("bdev_malloc_create", json!({"num_blocks": "many", "block_size": 512}), -32602, "invalid type"),
        ("bdev_malloc_create", json!({"num_blocks": 8, "block_size": 512, "size": 1}), -32602, "size"),
        ("bdev_malloc_create", json!({"num_blocks": 8, "block_size": 520}), -22, "512"),
        ("bdev_malloc_create", json!({"num_blocks": 0, "block_size": 512}), -22, "num_blocks"),
        ("bdev_malloc_create", json!({"num_blocks": 8, "block_size": 512, "uuid": "not-a-uuid"}), -32602, "uuid"),
        ("bdev_malloc_create", json!({"num_blocks": 8, "block_size": 512, "md_size": 8}), -32602, "md_size"),
        ("bdev_malloc_create", json!([8, 512]), -32602, "object"),
        ("bdev_malloc_delete", json!({"name": "Nope"}), -19, "Nope"),
        ("bdev_null_delete", json!({"name": "Nope"}), -19, "Nope"),
        ("bdev_get_bdevs", json!({"name": "Nope"}), -19, "Nope"),
        ("nvmf_create_subsystem", json!({"nqn": "iqn.2016-06.io.spdk:x"}), -32602, "nqn."),
        (
            "nvmf_create_subsystem",
            json!({"nqn": "nqn.2016-06.io.spdk:x", "serial_number": "012345678901234567890"}),
            -32602,
            "serial_number",
        ),
        (
            "nvmf_create_subsystem",
            json!({"nqn": "nqn.2016-06.io.spdk:x", "model_number": "bad\u{7f}"}),
            -32602,
            "model_number",
        ),
        (
            "nvmf_create_subsystem",
            json!({"nqn": "nqn.2016-06.io.spdk:x", "min_cntlid": 100, "max_cntlid": 99}),
            -32602,
            "Invalid cntlid range [100-99]",
        ),
        ("nvmf_create_subsystem", json!({"nqn": "nqn.2016-06.io.spdk:x", "max_cntlid": 65520}), -32602, "cntlid"),
        ("nvmf_create_subsystem", json!({"nqn": NQN}), -32602, "already exists"),
        ("nvmf_create_subsystem", json!({}), -32602, "nqn"),
        ("nvmf_delete_subsystem", json!({"nqn": "nqn.2016-06.io.spdk:none"}), -32602, "not found"),
        (
            "nvmf_subsystem_add_ns",
            json!({"nqn": NQN, "namespace": {"bdev_name": "Nope"}}),
            -32602,
            "bdev 'Nope' does not exist",
        ),
        ("nvmf_subsystem_add_ns", json!({"nqn": NQN, "bdev_name": "Nope"}), -32602, "bdev_name"),
        ("nvmf_subsystem_remove_ns", json!({"nqn": NQN, "nsid": 7}), -32602, "namespace 7"),
        ("nvmf_get_subsystems", json!({"nqn": "nqn.2016-06.io.spdk:none"}), -32602, "not found"),
        ("no_such_method", json!({}), -32601, "no_such_method"),
        ("spdk_get_version", json!({"verbose": true}), -32602, "requires no parameters"),
    ];
    for (method, params, code, needle) in cases {
        let result = call(&mut client, method, params.clone());
        let (got_code, message) = result.expect_err(&format!("{method} {params} should fail"));
        assert_eq!(got_code, code, "{method} {params}: {message}");
        assert!(message.contains(needle), "{method} {params}: message {message:?} lacks {needle:?}");
    }

    // Now with a transport, a bdev and a namespace: the claim and listener rules.
    call(&mut client, "nvmf_create_transport", json!({"trtype": "TCP"})).unwrap();
    let (code, _) = call(&mut client, "nvmf_create_transport", json!({"trtype": "tcp"})).unwrap_err();
    assert_eq!(code, -32602);
    call(&mut client, "bdev_malloc_create", json!({"name": "Malloc0", "num_blocks": 8, "block_size": 512})).unwrap();
    let (code, message) =
        call(&mut client, "bdev_null_create", json!({"name": "Malloc0", "num_blocks": 8, "block_size": 512}))
            .unwrap_err();
    assert_eq!((code, message.contains("Malloc0")), (-17, true), "{message}");
    call(&mut client, "nvmf_subsystem_add_ns", json!({"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})).unwrap();
    call(&mut client, "nvmf_create_subsystem", json!({"nqn": "nqn.2016-06.io.spdk:x"})).unwrap();
    let (code, message) = call(
        &mut client,
        "nvmf_subsystem_add_ns",
        json!({"nqn": "nqn.2016-06.io.spdk:x", "namespace": {"bdev_name": "Malloc0"}}),
    )
    .unwrap_err();
    assert_eq!(code, -32602);
    assert!(message.contains("already claimed"), "{message}");
    let (code, message) = call(&mut client, "bdev_malloc_delete", json!({"name": "Malloc0"})).unwrap_err();
    assert_eq!(code, -16);
    assert!(message.contains("in use"), "{message}");
    call(&mut client, "nvmf_subsystem_add_listener", json!({"nqn": NQN, "listen_address": tcp_4420})).unwrap();
    let (code, message) =
        call(&mut client, "nvmf_subsystem_add_listener", json!({"nqn": NQN, "listen_address": tcp_4420})).unwrap_err();
    assert_eq!(code, -32602);
    assert!(message.contains("already exists"), "{message}");
    let (code, _) = call(
        &mut client,
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": {"trtype": "TCP", "traddr": "127.0.0.2"}}),
    )
    .unwrap_err();
    assert_eq!(code, -32602);

    // The server still answers, on the same connection and on a new one.
    assert!(call(&mut client, "spdk_get_version", json!({})).is_ok());
    assert!(server
        .client()
        .call("rpc_get_methods", None)
        .unwrap()
        .as_array()
        .unwrap()
        .contains(&json!("nvmf_subsystem_add_ns")));
}

#[test]
fn notification_gets_no_response_and_the_router_is_shared() {
    let server = TestServer::start("notify");
    let mut client = server.client();
    client
        .send_raw(
            br#"{"jsonrpc":"2.0","method":"bdev_null_create","params":{"name":"N0","num_blocks":8,"block_size":512}}"#,
        )
        .unwrap();
    // The next response is for the next request, and the notification took effect.
    let bdevs = client.call("bdev_get_bdevs", None).unwrap();
    assert_eq!(bdevs[0]["name"], "N0");
    assert!(Arc::strong_count(&server.router) >= 1);
}
