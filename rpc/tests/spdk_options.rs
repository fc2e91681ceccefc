//! SPDK's parameters as its current `rpc.py` sends them: each accepted,
//! implemented or reported back; refused only with the field and the reason
//! (the exact messages users see); later issues' methods named as such.

mod common;

use common::{gateway_router, NQN};
use corepath_rpc::{load_config, Router};
use serde_json::{json, Value};

fn err(router: &Router, method: &str, params: Value) -> (i32, String) {
    let e = router.call(method, Some(&params)).expect_err(&format!("{method} {params} should fail"));
    (e.code, e.message)
}

fn ok(router: &Router, method: &str, params: Value) -> Value {
    router.call(method, Some(&params)).unwrap_or_else(|e| panic!("{method} {params}: {e}"))
}

fn refused(message: &str) -> (i32, String) {
    (-32602, format!("Invalid parameters: {message}"))
}

/// `nvmf_create_transport -t TCP -m 64` as rpc.py v26.09-pre sends it.
fn rpc_py_tcp_transport() -> Value {
    json!({"c2h_success": true, "dif_insert_or_strip": false, "disable_adaptive_irq": false,
           "disable_command_passthru": false, "disable_mappable_bar0": false, "disable_shadow_doorbells": false,
           "max_io_qpairs_per_ctrlr": 64, "no_srq": false, "no_wr_batching": false, "trtype": "TCP", "zcopy": false})
}

#[test]
fn rpc_py_transport_options_are_accepted_reported_and_saved() {
    let (router, _, state) = gateway_router();
    let mut params = rpc_py_tcp_transport();
    // Options without effect keep the value given, whatever it is.
    params["zcopy"] = json!(true);
    params["no_srq"] = json!(true);
    params["sock_priority"] = json!(3);
    assert_eq!(ok(&router, "nvmf_create_transport", params.clone()), json!(true));
    let t = &ok(&router, "nvmf_get_transports", json!({}))[0];
    for (name, value) in params.as_object().unwrap() {
        let want = if name == "trtype" { json!("TCP") } else { value.clone() };
        assert_eq!(t[name], want, "{name} reported as set: {t}");
    }
    // Implemented ones are what the transport runs with.
    let opts = state.lock().unwrap().transport(engine::TrType::Tcp).unwrap().opts.clone();
    assert_eq!((opts.max_qpairs_per_ctrlr, opts.c2h_success), (65, true));

    // save_config carries them, and a gateway loaded from it reports the same.
    let saved = router.save_config();
    let create = saved["subsystems"][1]["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == "nvmf_create_transport")
        .cloned()
        .unwrap();
    assert_eq!((create["params"]["zcopy"].clone(), create["params"]["no_srq"].clone()), (json!(true), json!(true)));
    let (fresh, _, _) = gateway_router();
    load_config(&saved, &fresh).unwrap();
    assert_eq!(fresh.call("nvmf_get_transports", None).unwrap(), ok(&router, "nvmf_get_transports", json!({})));
}

#[test]
fn a_transport_without_options_reports_the_values_true_of_every_transport() {
    let (router, _, _) = gateway_router();
    ok(&router, "nvmf_create_transport", json!({"trtype": "TCP", "c2h_success": false}));
    let t = &ok(&router, "nvmf_get_transports", json!({"trtype": "TCP"}))[0];
    assert_eq!(
        (t["c2h_success"].clone(), t["dif_insert_or_strip"].clone(), t["zcopy"].clone(), t["no_srq"].clone()),
        (json!(false), json!(false), json!(false), Value::Null),
        "{t}"
    );
}

#[test]
fn transport_values_we_cannot_honour_are_refused_naming_the_field() {
    let (router, _, _) = gateway_router();
    let mut p = rpc_py_tcp_transport();
    p["dif_insert_or_strip"] = json!(true);
    assert_eq!(
        err(&router, "nvmf_create_transport", p),
        refused("dif_insert_or_strip is not supported: corepath bdevs have no protection information")
    );
    let mut p = rpc_py_tcp_transport();
    p["trtype"] = json!("RDMA");
    assert_eq!(
        err(&router, "nvmf_create_transport", p),
        refused("the RDMA transport is not implemented yet (issue 14)")
    );
    assert_eq!(
        err(&router, "nvmf_create_transport", json!({"trtype": "TCP", "tgt_name": "other"})),
        refused(r#"tgt_name "other" is not supported (only "nvmf_tgt")"#)
    );
    // A field SPDK does not have either stays an error.
    let (code, message) = err(&router, "nvmf_create_transport", json!({"trtype": "TCP", "no_such_option": false}));
    assert_eq!(code, -32602);
    assert!(message.contains("unknown field `no_such_option`"), "{message}");
    // Nothing was created by the refused calls.
    assert_eq!(ok(&router, "nvmf_get_transports", json!({})), json!([]));
}

#[test]
fn subsystem_namespace_and_listener_options_of_rpc_py() {
    let (router, data_plane, _) = gateway_router();
    ok(&router, "nvmf_create_transport", rpc_py_tcp_transport());
    ok(
        &router,
        "bdev_malloc_create",
        json!({"block_size": 4096, "dif_is_head_of_md": true, "md_interleave": true,
                                             "name": "Malloc0", "num_blocks": 256}),
    );
    ok(
        &router,
        "bdev_null_create",
        json!({"block_size": 4096, "dif_is_head_of_md": true, "name": "Null0",
                                           "num_blocks": 256}),
    );
    let create = json!({"allow_any_host": true, "ana_reporting": false, "enable_nssr": false, "max_cntlid": 32760,
                        "min_cntlid": 1, "nqn": NQN, "passthrough": false, "serial_number": "SPDK_BDEV_0"});
    for (name, why) in [
        ("passthrough", "corepath bdevs are not NVMe devices, so there is nothing to pass commands through to"),
        ("enable_nssr", "corepath gateways do not implement NVM Subsystem Reset"),
    ] {
        let mut p = create.clone();
        p[name] = json!(true);
        assert_eq!(err(&router, "nvmf_create_subsystem", p), refused(&format!("{name} is not supported: {why}")));
    }
    assert_eq!(ok(&router, "nvmf_create_subsystem", create), json!(true));

    let ns = |extra: Value| {
        let mut n = json!({"bdev_name": "Malloc0", "hide_metadata": false, "no_auto_visible": false});
        n.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"nqn": NQN, "namespace": n})
    };
    assert_eq!(
        err(&router, "nvmf_subsystem_add_ns", ns(json!({"no_auto_visible": true}))),
        refused(
            "no_auto_visible is not supported: corepath namespaces are visible to every host the subsystem allows \
             (no per-host visibility)"
        )
    );
    assert_eq!(
        err(&router, "nvmf_subsystem_add_ns", ns(json!({"eui64": "0011223344556677"}))),
        refused("eui64 is not supported: corepath namespaces are identified by UUID and NGUID only")
    );
    // hide_metadata: no metadata to hide, either value gives the same namespace.
    assert_eq!(ok(&router, "nvmf_subsystem_add_ns", ns(json!({"hide_metadata": true}))), json!(1));

    let listener = |secure: bool, trtype: &str| {
        json!({"listen_address": {"adrfam": "ipv4", "traddr": "127.0.0.2", "trsvcid": "4420", "trtype": trtype},
               "nqn": NQN, "secure_channel": secure})
    };
    assert_eq!(
        err(&router, "nvmf_subsystem_add_listener", listener(true, "tcp")),
        refused("secure_channel is not supported: corepath's NVMe/TCP has no TLS")
    );
    assert_eq!(
        err(&router, "nvmf_subsystem_add_listener", listener(false, "rdma")),
        refused("the RDMA transport is not implemented yet (issue 14)")
    );
    assert!(data_plane.events().is_empty(), "refused listeners opened nothing: {:?}", data_plane.events());
    assert_eq!(ok(&router, "nvmf_subsystem_add_listener", listener(false, "tcp")), json!(true));
    let s = &ok(&router, "nvmf_get_subsystems", json!({"nqn": NQN}))[0];
    assert_eq!(s["namespaces"][0]["bdev_name"], "Malloc0");
    assert_eq!(s["listen_addresses"][0]["traddr"], "127.0.0.2");
}

#[test]
fn aio_options_of_rpc_py() {
    let (router, _, _) = gateway_router();
    let path =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("aio-opts-{}.img", std::process::id()));
    std::fs::File::create(&path).and_then(|f| f.set_len(1 << 20)).unwrap();
    let aio = |extra: Value| {
        let mut p = json!({"block_size": 4096, "fallocate": false, "filename": path, "name": "aio0",
                           "nowait": false, "readonly": false});
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        p
    };
    assert_eq!(
        err(&router, "bdev_aio_create", aio(json!({"readonly": true}))),
        refused("readonly is not supported: corepath AIO bdevs always open their file read-write")
    );
    assert_eq!(
        err(&router, "bdev_aio_create", aio(json!({"nowait": true}))),
        refused("nowait is not supported: corepath's AIO bdev does not submit IO with RWF_NOWAIT")
    );
    let created = router.call("bdev_aio_create", Some(&aio(json!({}))));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(created.unwrap(), json!("aio0"));
    // fallocate false is accepted; Write Zeroes and Deallocate still use fallocate, and say so.
    let b = &ok(&router, "bdev_get_bdevs", json!({"name": "aio0"}))[0];
    assert_eq!(b["driver_specific"]["aio"]["fallocate"], true, "{b}");
}

#[test]
fn bdev_get_bdevs_has_numa_id_and_memory_domains_where_spdk_puts_them() {
    let (router, _, _) = gateway_router();
    ok(&router, "bdev_malloc_create", json!({"name": "Malloc0", "num_blocks": 16, "block_size": 512}));
    let b = &ok(&router, "bdev_get_bdevs", json!({}))[0];
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    let at = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert_eq!((b["numa_id"].clone(), b["memory_domains"].clone()), (json!(-1), json!([])));
    assert_eq!(at("numa_id"), at("uuid") + 1, "{keys:?}");
    assert_eq!(at("memory_domains"), at("supported_io_types") + 1, "{keys:?}");
    assert_eq!(keys.last(), Some(&"driver_specific"));
}

#[test]
fn framework_methods_take_rpc_py_params_and_later_methods_say_what_is_missing() {
    let (router, _, _) = gateway_router();
    let all = ok(&router, "rpc_get_methods", json!({}));
    assert_eq!(ok(&router, "rpc_get_methods", json!({"current": false, "include_aliases": false})), all);
    assert_eq!(ok(&router, "rpc_get_methods", json!({"current": true, "include_aliases": true})), all);
    assert!(!all.as_array().unwrap().contains(&json!("bdev_rbd_create")), "not listed before it exists");
    assert_eq!(
        ok(&router, "framework_get_subsystems", json!({})),
        json!([{"subsystem": "bdev", "depends_on": []}, {"subsystem": "nvmf", "depends_on": ["bdev"]}])
    );
    assert_eq!(
        err(
            &router,
            "bdev_rbd_create",
            json!({"name": "rbd0", "pool_name": "volumes", "rbd_name": "x",
                                               "block_size": 4096})
        ),
        (-32601, "bdev_rbd_create: Ceph RBD bdevs are not implemented yet (issue 13)".to_string())
    );
    assert_eq!(
        err(&router, "bdev_rbd_register_cluster", json!({"name": "c"})),
        (-32601, "bdev_rbd_register_cluster: Ceph RBD bdevs are not implemented yet (issue 13)".to_string())
    );
    assert_eq!(err(&router, "bdev_foo", json!({})), (-32601, "Method not found: bdev_foo".to_string()));
}
