//! The gateway's data path driven through an in-memory queue pair: Connect,
//! properties, admin commands, IO, discovery and keep-alive.

mod common;

use common::*;
use corepath_gateway::config::NamespaceParams;
use protocol::fabrics::{connect_invalid_param_decode, CNTLID_DYNAMIC};
use protocol::features::{aen_config, fid, get_features_sqe, set_features_sqe, FeatureSelect};
use protocol::identify::{cns, identify_sqe, parse_active_ns_list, parse_ns_id_descriptors};
use protocol::log::{lid, parse_discovery_log, GetLogPage};
use protocol::opcode::{admin, io};
use protocol::property::{Cap, Csts};
use protocol::status::{command_specific as cs, generic};
use protocol::{IdentifyController, IdentifyNamespace, NsIdDescriptor, SglDescriptor, Sqe, DISCOVERY_NQN};

fn admin_sqe(opc: u8) -> Sqe {
    Sqe { opc, ..Default::default() }
}

// ---------------------------------------------------------------- Connect

#[test]
fn connect_gives_the_lowest_cntlid_of_the_subsystem_range() {
    let mut rig = Rig::with(RigConfig { min_cntlid: 32761, max_cntlid: 65519, ..Default::default() });
    let (_h, c) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    assert!(c.is_success(), "{:?}", c.status());
    assert_eq!(c.cqe.dw0 & 0xFFFF, 32761);
    assert_eq!(rig.ctx.controllers(Some(SUBNQN)).len(), 1);
}

#[test]
fn second_host_gets_a_different_cntlid() {
    let mut rig = Rig::new();
    let (_a, ca) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    let (_b, cb) = rig.connect_admin(SUBNQN, HOST_B, 10_000);
    assert!(ca.is_success() && cb.is_success());
    assert_eq!(ca.cqe.dw0 as u16, 1);
    assert_eq!(cb.cqe.dw0 as u16, 2);
}

#[test]
fn exhausted_cntlid_range_answers_controller_busy_and_freed_ids_are_reused() {
    let mut rig = Rig::with(RigConfig { min_cntlid: 7, max_cntlid: 8, ..Default::default() });
    let (a, ca) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    let (_b, cb) = rig.connect_admin(SUBNQN, HOST_B, 10_000);
    assert_eq!((ca.cqe.dw0 as u16, cb.cqe.dw0 as u16), (7, 8));
    let (_c, cc) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    cc.assert_command_specific(cs::CONNECT_CONTROLLER_BUSY);

    // The first host goes away: its controller and ID go with its admin queue.
    a.close();
    rig.turn();
    assert!(a.is_closed());
    let (_d, cd) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    assert!(cd.is_success());
    assert_eq!(cd.cqe.dw0 as u16, 7);
}

#[test]
fn unknown_subnqn_is_invalid_parameters_pointing_at_subnqn() {
    let mut rig = Rig::new();
    let (_h, c) = rig.connect_admin("nqn.2021-06.io.spdk:nope", HOST_A, 10_000);
    c.assert_command_specific(cs::CONNECT_INVALID_PARAMETERS);
    assert!(c.status().dnr);
    assert_eq!(connect_invalid_param_decode(c.cqe.dw0), (true, 256));
}

#[test]
fn host_not_in_the_host_list_is_invalid_host() {
    let mut rig = Rig::new();
    let (_h, c) = rig.connect_admin(SUBNQN, HOST_DENIED, 10_000);
    c.assert_command_specific(cs::CONNECT_INVALID_HOST);
    assert!(rig.ctx.controllers(None).is_empty());
}

#[test]
fn connect_through_a_listener_the_subsystem_does_not_have_is_invalid_host() {
    let mut rig = Rig::new();
    let h = rig.add_qpair_at(tcp_addr("127.0.0.1", "4421"));
    let c = rig.exec(&h, connect_sqe(0, 31, 10_000), connect_data(CNTLID_DYNAMIC, SUBNQN, HOST_A));
    c.assert_command_specific(cs::CONNECT_INVALID_HOST);
}

#[test]
fn static_cntlid_on_the_admin_queue_is_invalid_parameters_at_cntlid() {
    let mut rig = Rig::new();
    let h = rig.add_qpair();
    let c = rig.exec(&h, connect_sqe(0, 31, 10_000), connect_data(5, SUBNQN, HOST_A));
    c.assert_command_specific(cs::CONNECT_INVALID_PARAMETERS);
    assert_eq!(connect_invalid_param_decode(c.cqe.dw0), (true, 16));
}

#[test]
fn sqsize_zero_or_beyond_max_queue_depth_is_invalid_parameters_at_sqsize() {
    let mut rig = Rig::new();
    for sqsize in [0u16, 128] {
        let h = rig.add_qpair();
        let c = rig.exec(&h, connect_sqe(0, sqsize, 10_000), connect_data(CNTLID_DYNAMIC, SUBNQN, HOST_A));
        c.assert_command_specific(cs::CONNECT_INVALID_PARAMETERS);
        assert_eq!(connect_invalid_param_decode(c.cqe.dw0), (false, 44), "sqsize {sqsize}");
    }
    let h = rig.add_qpair();
    let c = rig.exec(&h, connect_sqe(0, 127, 10_000), connect_data(CNTLID_DYNAMIC, SUBNQN, HOST_A));
    assert!(c.is_success());
}

#[test]
fn nonzero_recfmt_is_incompatible_format() {
    let mut rig = Rig::new();
    let h = rig.add_qpair();
    let mut sqe = connect_sqe(0, 31, 10_000);
    sqe.cdw10 |= 1;
    let c = rig.exec(&h, sqe, connect_data(CNTLID_DYNAMIC, SUBNQN, HOST_A));
    c.assert_command_specific(cs::CONNECT_INCOMPATIBLE_FORMAT);
}

#[test]
fn first_command_other_than_connect_is_a_sequence_error() {
    let mut rig = Rig::new();
    let h = rig.add_qpair();
    let c = rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]);
    c.assert_generic(generic::COMMAND_SEQUENCE_ERROR);
}

#[test]
fn connection_without_a_successful_connect_is_closed_after_5_seconds() {
    let mut rig = Rig::new();
    let idle = rig.add_qpair();
    let (refused, c) = rig.connect_admin(SUBNQN, HOST_DENIED, 10_000);
    c.assert_command_specific(cs::CONNECT_INVALID_HOST);
    let (ok, c) = rig.connect_admin(SUBNQN, HOST_A, 0);
    assert!(c.is_success());
    rig.clock.advance_ns(4_000 * MS);
    rig.turn();
    assert!(!idle.is_closed() && !refused.is_closed());
    rig.clock.advance_ns(2_000 * MS);
    rig.turn();
    assert!(idle.is_closed() && refused.is_closed());
    assert!(!ok.is_closed());
}

#[test]
fn io_connect_with_unknown_cntlid_is_invalid_parameters_at_cntlid() {
    let mut rig = Rig::new();
    let (_admin, cntlid) = rig.controller(HOST_A, 10_000);
    let (_io, c) = rig.connect_io(HOST_A, cntlid + 1, 1);
    c.assert_command_specific(cs::CONNECT_INVALID_PARAMETERS);
    assert_eq!(connect_invalid_param_decode(c.cqe.dw0), (true, 16));
}

#[test]
fn io_connect_from_another_host_is_refused() {
    let mut rig = Rig::new();
    let (_admin, cntlid) = rig.controller(HOST_A, 10_000);
    let (_io, c) = rig.connect_io(HOST_B, cntlid, 1);
    c.assert_command_specific(cs::CONNECT_INVALID_PARAMETERS);
}

#[test]
fn io_connect_beyond_granted_queues_or_twice_is_invalid_parameters_at_qid() {
    let mut rig = Rig::new();
    let (_admin, cntlid) = rig.controller(HOST_A, 10_000);
    let (_q1, c) = rig.connect_io(HOST_A, cntlid, 1);
    assert!(c.is_success());
    assert_eq!(c.cqe.sqid, 1);
    let (_again, c) = rig.connect_io(HOST_A, cntlid, 1);
    assert_eq!(connect_invalid_param_decode(c.cqe.dw0), (false, 42));
    let (_q5, c) = rig.connect_io(HOST_A, cntlid, 5);
    c.assert_command_specific(cs::CONNECT_INVALID_PARAMETERS);
    assert_eq!(connect_invalid_param_decode(c.cqe.dw0), (false, 42));
    let (_q4, c) = rig.connect_io(HOST_A, cntlid, 4);
    assert!(c.is_success());
}

#[test]
fn io_connect_before_the_controller_is_enabled_is_a_sequence_error() {
    let mut rig = Rig::new();
    let (_admin, c) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    let (_io, c) = rig.connect_io(HOST_A, c.cqe.dw0 as u16, 1);
    c.assert_generic(generic::COMMAND_SEQUENCE_ERROR);
}

#[test]
fn number_of_queues_is_capped_by_max_qpairs_per_ctrlr() {
    let mut rig = Rig::new();
    let (h, c) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    assert!(c.is_success());
    rig.enable(&h);
    let c = rig.exec(&h, set_features_sqe(fid::NUMBER_OF_QUEUES, 0x003F_003F, false), vec![]);
    assert!(c.is_success());
    // max_qpairs_per_ctrlr 5 = admin + 4 IO queues; 0's based.
    assert_eq!(c.cqe.dw0, 0x0003_0003);
    let c = rig.exec(&h, get_features_sqe(fid::NUMBER_OF_QUEUES, FeatureSelect::Current), vec![]);
    assert_eq!(c.cqe.dw0, 0x0003_0003);
}

// ---------------------------------------------------------------- Properties

#[test]
fn cc_enable_sets_csts_ready_and_disable_clears_it() {
    let mut rig = Rig::new();
    let (h, _) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    let csts = |rig: &mut Rig| Csts::from_u32(rig.exec(&h, Sqe::property_get(0x1C, false), vec![]).cqe.dw0);
    assert!(!csts(&mut rig).rdy);
    rig.enable(&h);
    assert!(csts(&mut rig).rdy);
    let c = rig.exec(&h, Sqe::property_set(0x14, false, 0), vec![]);
    assert!(c.is_success());
    assert!(!csts(&mut rig).rdy);
}

#[test]
fn cap_reports_mqes_from_max_queue_depth_and_vs_is_1_3() {
    let mut rig = Rig::new();
    let (h, _) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    let c = rig.exec(&h, Sqe::property_get(0x00, true), vec![]);
    assert!(c.is_success());
    let cap = Cap::from_u64(u64::from(c.cqe.dw0) | (u64::from(c.cqe.dw1) << 32));
    assert_eq!(cap.mqes, 127);
    assert_eq!(cap.css & 1, 1);
    assert!(cap.to > 0);
    let c = rig.exec(&h, Sqe::property_get(0x08, false), vec![]);
    assert_eq!(c.cqe.dw0, 0x0001_0300);
    // Writing a read-only property, or reading CAP as 4 bytes, is an invalid field.
    rig.exec(&h, Sqe::property_set(0x00, true, 0), vec![]).assert_generic(generic::INVALID_FIELD);
    rig.exec(&h, Sqe::property_get(0x00, false), vec![]).assert_generic(generic::INVALID_FIELD);
}

#[test]
fn shutdown_notification_completes_at_once() {
    let mut rig = Rig::new();
    let (h, _) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    rig.enable(&h);
    let cc_shn = protocol::property::Cc::enable_nvm().to_u32() | (1 << 14);
    assert!(rig.exec(&h, Sqe::property_set(0x14, false, u64::from(cc_shn)), vec![]).is_success());
    let csts = Csts::from_u32(rig.exec(&h, Sqe::property_get(0x1C, false), vec![]).cqe.dw0);
    assert_eq!(csts.shst, protocol::property::ShutdownStatus::Complete);
}

#[test]
fn admin_commands_before_enable_are_sequence_errors() {
    let mut rig = Rig::new();
    let (h, _) = rig.connect_admin(SUBNQN, HOST_A, 10_000);
    rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]).assert_generic(generic::COMMAND_SEQUENCE_ERROR);
    rig.exec(&h, admin_sqe(admin::KEEP_ALIVE), vec![]).assert_generic(generic::COMMAND_SEQUENCE_ERROR);
}

// ---------------------------------------------------------------- Identify

#[test]
fn identify_controller_reports_subsystem_and_transport_fields() {
    let mut rig = Rig::new();
    let (h, cntlid) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]);
    assert!(c.is_success());
    assert_eq!(c.data.len(), 4096);
    let id = IdentifyController::parse(&c.data).unwrap();
    assert_eq!(id.sn_str().unwrap(), "SPDK_BDEV_0");
    assert_eq!(id.mn_str().unwrap(), "corepath gateway");
    assert_eq!(id.cntlid, cntlid);
    assert_eq!(id.subnqn_str().unwrap(), SUBNQN);
    // max_io_size 64 KiB = 16 pages of 4 KiB = 2^4.
    assert_eq!(id.mdts, 4);
    assert_eq!(id.ioccsz, (64 + 4096) / 16);
    assert_eq!(id.iorcsz, 1);
    assert_eq!(id.cntrltype, 1);
    assert_eq!(id.sqes, 0x66);
    assert_eq!(id.cqes, 0x44);
    assert_eq!(id.nn, 32);
    assert_eq!(id.kas, 1);
    assert_eq!(id.aerl, 3);
    assert_eq!(id.cmic & 0b11, 0b11);
    assert_eq!(id.oncs & 0b1100, 0b1100);
    assert_eq!(id.sgls & 1, 1);
    assert_eq!(id.msdbd, 1);
    assert_eq!(id.ver, 0x0001_0300);
}

#[test]
fn identify_with_unknown_cns_is_invalid_field_with_dnr() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, identify_sqe(0x55, 0), vec![]);
    c.assert_generic(generic::INVALID_FIELD);
    assert!(c.status().dnr);
    assert!(c.data.is_empty());
}

#[test]
fn identify_namespace_describes_the_bdev() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, identify_sqe(cns::NAMESPACE, 1), vec![]);
    assert!(c.is_success());
    let ns = IdentifyNamespace::parse(&c.data).unwrap();
    assert_eq!(ns.nsze, NUM_BLOCKS);
    assert_eq!(ns.ncap, NUM_BLOCKS);
    assert_eq!(ns.block_size_bytes().unwrap(), BLOCK_SIZE);
    assert_eq!(ns.nlbaf, 0);
    assert_eq!(ns.nmic & 1, 1);
    assert_eq!(ns.nguid, BDEV_UUID);
    assert_eq!(ns.eui64, [0; 8]);
    assert_eq!(ns.anagrpid, 0);
    // An inactive NSID in range reads as zeroes; one beyond NN is an invalid namespace.
    let c = rig.exec(&h, identify_sqe(cns::NAMESPACE, 2), vec![]);
    assert!(c.is_success());
    assert!(c.data.iter().all(|&b| b == 0));
    rig.exec(&h, identify_sqe(cns::NAMESPACE, 33), vec![]).assert_generic(generic::INVALID_NAMESPACE);
}

#[test]
fn identify_namespace_reports_ana_group_when_ana_reporting() {
    let mut rig = Rig::with(RigConfig { ana_reporting: true, ..Default::default() });
    let (h, _) = rig.controller(HOST_A, 10_000);
    let ns = IdentifyNamespace::parse(&rig.exec(&h, identify_sqe(cns::NAMESPACE, 1), vec![]).data).unwrap();
    assert_eq!(ns.anagrpid, 1);
    let id = IdentifyController::parse(&rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]).data).unwrap();
    assert_eq!(id.cmic & 0b1000, 0b1000);
    let c = rig.exec(&h, GetLogPage::new(lid::ANA, 4096, 0).to_sqe(0), vec![]);
    assert!(c.is_success());
    let (hdr, groups) = protocol::log::parse_ana_log(&c.data).unwrap();
    assert_eq!(hdr.ngrps, 1);
    assert_eq!(groups[0].nsids, vec![1]);
    assert_eq!(groups[0].state, protocol::AnaState::Optimized);
}

#[test]
fn ns_descriptors_carry_the_bdev_uuid() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, identify_sqe(cns::NS_ID_DESCRIPTOR_LIST, 1), vec![]);
    assert!(c.is_success());
    let descs = parse_ns_id_descriptors(&c.data).unwrap();
    assert!(descs.contains(&NsIdDescriptor::Uuid(BDEV_UUID)), "{descs:?}");
    assert!(descs.contains(&NsIdDescriptor::Nguid(BDEV_UUID)));
    rig.exec(&h, identify_sqe(cns::NS_ID_DESCRIPTOR_LIST, 9), vec![]).assert_generic(generic::INVALID_NAMESPACE);
}

#[test]
fn active_namespace_list_lists_nsids_above_the_given_one() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, identify_sqe(cns::ACTIVE_NS_LIST, 0), vec![]);
    assert_eq!(parse_active_ns_list(&c.data).unwrap(), vec![1]);
    let c = rig.exec(&h, identify_sqe(cns::ACTIVE_NS_LIST, 1), vec![]);
    assert!(parse_active_ns_list(&c.data).unwrap().is_empty());
}

// ---------------------------------------------------------------- Other admin commands

#[test]
fn log_pages_error_smart_and_unknown() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, GetLogPage::new(lid::ERROR, 4096, 0).to_sqe(0xFFFF_FFFF), vec![]);
    assert!(c.is_success());
    assert!(c.data.iter().all(|&b| b == 0));
    let c = rig.exec(&h, GetLogPage::new(lid::SMART, 512, 0).to_sqe(0xFFFF_FFFF), vec![]);
    assert!(c.is_success());
    assert_eq!(protocol::log::SmartLog::parse(&c.data).unwrap().available_spare, 100);
    let c = rig.exec(&h, GetLogPage::new(0x7E, 512, 0).to_sqe(0), vec![]);
    c.assert_command_specific(cs::INVALID_LOG_PAGE);
    // The discovery log exists only on discovery controllers; ANA only with ANA reporting.
    rig.exec(&h, GetLogPage::new(lid::DISCOVERY, 4096, 0).to_sqe(0), vec![])
        .assert_command_specific(cs::INVALID_LOG_PAGE);
    rig.exec(&h, GetLogPage::new(lid::ANA, 4096, 0).to_sqe(0), vec![]).assert_command_specific(cs::INVALID_LOG_PAGE);
}

#[test]
fn features_keep_alive_async_config_and_unknown() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 4_950);
    // KATO is rounded up to the 100 ms granularity.
    let c = rig.exec(&h, get_features_sqe(fid::KEEP_ALIVE_TIMER, FeatureSelect::Current), vec![]);
    assert_eq!(c.cqe.dw0, 5_000);
    assert!(rig.exec(&h, set_features_sqe(fid::ASYNC_EVENT_CONFIG, 0x900, false), vec![]).is_success());
    let c = rig.exec(&h, get_features_sqe(fid::ASYNC_EVENT_CONFIG, FeatureSelect::Current), vec![]);
    assert_eq!(c.cqe.dw0, 0x900);
    rig.exec(&h, set_features_sqe(0x7D, 0, false), vec![]).assert_generic(generic::INVALID_FIELD);
    rig.exec(&h, get_features_sqe(0x7D, FeatureSelect::Current), vec![]).assert_generic(generic::INVALID_FIELD);
    rig.exec(&h, set_features_sqe(fid::ARBITRATION, 0x7, true), vec![])
        .assert_command_specific(cs::FEATURE_NOT_SAVEABLE);
    // Host Identifier: the 16-byte host ID from Connect.
    let mut s = get_features_sqe(fid::HOST_IDENTIFIER, FeatureSelect::Current);
    s.cdw11 = 1;
    s.dptr = SglDescriptor::TransportDataBlock { len: 16 }.to_bytes();
    let c = rig.exec(&h, s, vec![]);
    assert!(c.is_success());
    assert_eq!(c.data, hostid_of(HOST_A).to_vec());
}

#[test]
fn abort_answers_not_aborted_and_unknown_admin_opcode_is_invalid_opcode() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, admin_sqe(admin::ABORT), vec![]);
    assert!(c.is_success());
    assert_eq!(c.cqe.dw0 & 1, 1);
    rig.exec(&h, admin_sqe(0xC5), vec![]).assert_generic(generic::INVALID_OPCODE);
    // An IO command (Write, 01h) on the admin queue.
    rig.exec(&h, write_sqe(1, 0, 1), pattern(1, 1)).assert_generic(generic::INVALID_OPCODE);
}

#[test]
fn aers_are_held_up_to_the_limit_and_retired_without_completion_on_reset() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    for _ in 0..4 {
        rig.exec_no_completion(&h, admin_sqe(admin::ASYNC_EVENT_REQUEST), vec![]);
    }
    rig.exec(&h, admin_sqe(admin::ASYNC_EVENT_REQUEST), vec![]).assert_command_specific(cs::AER_LIMIT_EXCEEDED);
    // Controller reset: the four held AERs are retired without a completion (the host may reuse their
    // CIDs, as SPDK's does); only the Property Set is answered.
    h.submit(Sqe::property_set(0x14, false, 0), vec![]);
    rig.turn();
    let done = h.take_completions();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].is_success());
    assert_eq!(h.retired_count(), 4);
}

#[test]
fn shutdown_retires_held_aers_and_answers_the_property_set_on_a_reused_cid() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    for cid in 0..4 {
        rig.exec_no_completion(&h, Sqe { cid, ..admin_sqe(admin::ASYNC_EVENT_REQUEST) }, vec![]);
    }
    let shn = protocol::Cc { shn: protocol::property::ShutdownNotification::Normal, ..protocol::Cc::enable_nvm() };
    let c = rig.exec(&h, Sqe { cid: 0, ..Sqe::property_set(0x14, false, u64::from(shn.to_u32())) }, vec![]);
    assert!(c.is_success());
    assert_eq!(c.cqe.cid, 0);
    assert_eq!(h.retired_count(), 4);
    rig.turn();
    assert!(h.take_completions().is_empty(), "no completion for a retired AER");
}

#[test]
fn namespace_added_completes_an_aer_and_appears_in_the_changed_list() {
    let mut rig = Rig::new();
    let (h, _) = rig.controller(HOST_A, 10_000);
    let c = rig.exec(&h, set_features_sqe(fid::ASYNC_EVENT_CONFIG, aen_config::NS_ATTRIBUTE_NOTICES, false), vec![]);
    assert!(c.is_success());
    rig.exec_no_completion(&h, admin_sqe(admin::ASYNC_EVENT_REQUEST), vec![]);
    {
        let mut state = rig.state.lock().unwrap();
        state.bdev_malloc_create(Some("Malloc1"), 64, 512, None).unwrap();
        state
            .add_ns(SUBNQN, NamespaceParams { bdev_name: "Malloc1".into(), nsid: Some(3), ..Default::default() })
            .unwrap();
    }
    rig.ctx.config_changed();
    rig.turn();
    rig.turn();
    let done = h.take_completions();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].cqe.dw0, 0x0004_0002);
    let c = rig.exec(&h, GetLogPage::new(lid::CHANGED_NS_LIST, 4096, 0).to_sqe(0xFFFF_FFFF), vec![]);
    assert_eq!(&c.data[..8], &[3, 0, 0, 0, 0, 0, 0, 0]);
    let c = rig.exec(&h, identify_sqe(cns::ACTIVE_NS_LIST, 0), vec![]);
    assert_eq!(parse_active_ns_list(&c.data).unwrap(), vec![1, 3]);
}

// ---------------------------------------------------------------- IO

#[test]
fn write_then_read_returns_the_same_data() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    let data = pattern(8, 7);
    let c = rig.exec(&io_q, write_sqe(1, 100, 8), data.clone());
    assert!(c.is_success(), "{:?}", c.status());
    assert_eq!(c.cqe.sqid, 1);
    assert!(c.data.is_empty());
    let c = rig.exec(&io_q, read_sqe(1, 100, 8), vec![]);
    assert!(c.is_success());
    assert_eq!(c.data, data);
    assert_eq!(rig.bdev_bytes(100, 8), data);
    assert!(rig.exec(&io_q, Sqe { opc: io::FLUSH, nsid: 1, ..Default::default() }, vec![]).is_success());
}

#[test]
fn lba_out_of_range_writes_nothing() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    let c = rig.exec(&io_q, write_sqe(1, NUM_BLOCKS - 2, 4), pattern(4, 3));
    c.assert_generic(generic::LBA_OUT_OF_RANGE);
    assert!(c.status().dnr);
    assert!(rig.bdev_bytes(NUM_BLOCKS - 2, 2).iter().all(|&b| b == 0));
    rig.exec(&io_q, read_sqe(1, u64::MAX - 1, 4), vec![]).assert_generic(generic::LBA_OUT_OF_RANGE);
}

#[test]
fn transfer_larger_than_mdts_is_invalid_field() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    // 65536 bytes is the limit; 129 blocks of 512 is over it.
    let c = rig.exec(&io_q, read_sqe(1, 0, 129), vec![]);
    c.assert_generic(generic::INVALID_FIELD);
    assert!(c.status().dnr);
    assert!(rig.exec(&io_q, read_sqe(1, 0, 128), vec![]).is_success());
}

#[test]
fn sgl_length_different_from_nlb_is_data_sgl_length_invalid() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    let mut s = write_sqe(1, 0, 2);
    s.dptr = SglDescriptor::TransportDataBlock { len: 512 }.to_bytes();
    rig.exec(&io_q, s, pattern(1, 9)).assert_generic(generic::DATA_SGL_LENGTH_INVALID);
    assert!(rig.bdev_bytes(0, 2).iter().all(|&b| b == 0));
}

#[test]
fn write_whose_data_phase_failed_is_a_retryable_transport_error_and_writes_nothing() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    // The SGL says 2 blocks but the transport hands over less (as after a data digest error).
    let c = rig.exec(&io_q, write_sqe(1, 0, 2), pattern(1, 4));
    c.assert_generic(0x22);
    assert!(!c.status().dnr);
    assert!(rig.bdev_bytes(0, 2).iter().all(|&b| b == 0));
}

#[test]
fn io_to_an_inactive_namespace_is_invalid_namespace() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    rig.exec(&io_q, read_sqe(2, 0, 1), vec![]).assert_generic(generic::INVALID_NAMESPACE);
    rig.exec(&io_q, write_sqe(0, 0, 1), pattern(1, 1)).assert_generic(generic::INVALID_NAMESPACE);
}

#[test]
fn write_zeroes_and_deallocate_zero_the_data() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    assert!(rig.exec(&io_q, write_sqe(1, 0, 16), pattern(16, 5)).is_success());
    // Write Zeroes blocks 0..4.
    let wz = Sqe { opc: io::WRITE_ZEROES, nsid: 1, cdw10: 0, cdw12: 3, ..Default::default() };
    assert!(rig.exec(&io_q, wz, vec![]).is_success());
    assert!(rig.bdev_bytes(0, 4).iter().all(|&b| b == 0));
    assert_eq!(rig.bdev_bytes(4, 1), pattern(16, 5)[4 * 512..5 * 512].to_vec());
    // Deallocate blocks 8..12 and 14..16 (two ranges).
    let mut ranges = vec![0u8; 32];
    ranges[4..8].copy_from_slice(&4u32.to_le_bytes());
    ranges[8..16].copy_from_slice(&8u64.to_le_bytes());
    ranges[16 + 4..16 + 8].copy_from_slice(&2u32.to_le_bytes());
    ranges[16 + 8..32].copy_from_slice(&14u64.to_le_bytes());
    let dsm = Sqe {
        opc: io::DATASET_MANAGEMENT,
        nsid: 1,
        cdw10: 1,
        cdw11: 1 << 2,
        dptr: SglDescriptor::DataBlockOffset { offset: 0, len: 32 }.to_bytes(),
        ..Default::default()
    };
    assert!(rig.exec(&io_q, dsm, ranges).is_success());
    assert!(rig.bdev_bytes(8, 4).iter().all(|&b| b == 0));
    assert!(rig.bdev_bytes(14, 2).iter().all(|&b| b == 0));
    assert_eq!(rig.bdev_bytes(12, 2), pattern(16, 5)[12 * 512..14 * 512].to_vec());
    // A range beyond the end: nothing is deallocated.
    let mut bad = vec![0u8; 32];
    bad[4..8].copy_from_slice(&1u32.to_le_bytes());
    bad[8..16].copy_from_slice(&4u64.to_le_bytes());
    bad[16 + 4..16 + 8].copy_from_slice(&4u32.to_le_bytes());
    bad[16 + 8..32].copy_from_slice(&(NUM_BLOCKS - 1).to_le_bytes());
    rig.exec(&io_q, dsm, bad).assert_generic(generic::LBA_OUT_OF_RANGE);
    assert_eq!(rig.bdev_bytes(4, 1), pattern(16, 5)[4 * 512..5 * 512].to_vec());
}

#[test]
fn unknown_io_opcode_and_admin_opcode_on_io_queue_are_invalid_opcode() {
    let mut rig = Rig::new();
    let (_a, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    rig.exec(&io_q, Sqe { opc: 0x99, nsid: 1, ..Default::default() }, vec![]).assert_generic(generic::INVALID_OPCODE);
    rig.exec(&io_q, identify_sqe(cns::CONTROLLER, 0), vec![]).assert_generic(generic::INVALID_OPCODE);
}

#[test]
fn disconnect_closes_the_io_queue_and_frees_its_qid() {
    let mut rig = Rig::new();
    let (_a, io_q, cntlid) = rig.controller_with_io(HOST_A, 10_000);
    let c = rig.exec(&io_q, Sqe::fabrics(protocol::opcode::fctype::DISCONNECT), vec![]);
    assert!(c.is_success());
    assert!(io_q.is_closed());
    let (_again, c) = rig.connect_io(HOST_A, cntlid, 1);
    assert!(c.is_success());
}

// ---------------------------------------------------------------- Controller lifetime

#[test]
fn closing_the_admin_queue_destroys_the_controller_and_its_io_queues() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    admin_q.close();
    rig.turn();
    rig.turn();
    assert!(admin_q.is_closed());
    assert!(io_q.is_closed());
    assert!(rig.ctx.controllers(None).is_empty());
}

#[test]
fn keep_alive_expiry_tears_down_the_controller_and_a_late_write_is_not_executed() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 1_000);
    let old = pattern(4, 1);
    assert!(rig.exec(&io_q, write_sqe(1, 40, 4), old.clone()).is_success());

    // The host stops sending Keep Alive (it failed over); KATO passes. Its write
    // arrives, already in the socket when the reactor next turns.
    rig.clock.advance_ns(1_001 * MS);
    io_q.submit(write_sqe(1, 40, 4), pattern(4, 99));
    rig.turn();

    assert!(io_q.take_completions().is_empty(), "the late write must not complete");
    assert!(io_q.is_closed());
    assert!(admin_q.is_closed());
    assert_eq!(rig.bdev_bytes(40, 4), old, "the late write must not reach the bdev");
    assert!(rig.ctx.controllers(None).is_empty());
}

#[test]
fn keep_alive_commands_keep_the_controller_alive() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 1_000);
    for _ in 0..5 {
        rig.clock.advance_ns(600 * MS);
        assert!(rig.exec(&admin_q, admin_sqe(admin::KEEP_ALIVE), vec![]).is_success());
    }
    assert!(rig.exec(&io_q, write_sqe(1, 0, 1), pattern(1, 2)).is_success());
    assert!(!admin_q.is_closed() && !io_q.is_closed());
}

#[test]
fn kato_zero_disables_keep_alive_on_io_controllers() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 0);
    rig.clock.advance_ns(3_600_000 * MS);
    assert!(rig.exec(&io_q, write_sqe(1, 0, 1), pattern(1, 2)).is_success());
    assert!(!admin_q.is_closed());
}

#[test]
fn removing_the_listener_destroys_controllers_that_came_through_it() {
    let mut rig = Rig::new();
    let (admin_q, io_q, _) = rig.controller_with_io(HOST_A, 10_000);
    rig.state.lock().unwrap().remove_listener(SUBNQN, &listen_addr()).unwrap();
    rig.ctx.config_changed();
    rig.turn();
    rig.turn();
    assert!(admin_q.is_closed());
    assert!(io_q.is_closed());
}

// ---------------------------------------------------------------- Discovery

#[test]
fn discovery_controller_lists_the_listener_for_allowed_hosts() {
    let mut rig = Rig::new();
    rig.ctx.refresh_config();
    let (h, c) = rig.connect_admin(DISCOVERY_NQN, HOST_A, 0);
    assert!(c.is_success(), "{:?}", c.status());
    rig.enable(&h);
    let id = IdentifyController::parse(&rig.exec(&h, identify_sqe(cns::CONTROLLER, 0), vec![]).data).unwrap();
    assert_eq!(id.cntrltype, 2);
    assert_eq!(id.subnqn_str().unwrap(), DISCOVERY_NQN);

    let c = rig.exec(&h, GetLogPage::new(lid::DISCOVERY, 4096, 0).to_sqe(0), vec![]);
    assert!(c.is_success());
    let (hdr, entries) = parse_discovery_log(&c.data).unwrap();
    assert_eq!(hdr.numrec, 1);
    assert!(hdr.genctr > 0);
    let e = &entries[0];
    assert_eq!((e.trtype, e.adrfam, e.subtype, e.treq & 3), (3, 1, 2, 2));
    assert_eq!(e.cntlid, 0xFFFF);
    assert_eq!(e.asqsz, 32);
    assert_eq!(e.traddr_str().unwrap(), "127.0.0.1");
    assert_eq!(e.trsvcid_str().unwrap(), "4420");
    assert_eq!(e.subnqn_str().unwrap(), SUBNQN);

    // An offset read: the entry starts at byte 1024.
    let c = rig.exec(&h, GetLogPage::new(lid::DISCOVERY, 1024, 1024).to_sqe(0), vec![]);
    assert_eq!(c.data[0], 3);
    // Reading past the end of the page is an invalid field.
    rig.exec(&h, GetLogPage::new(lid::DISCOVERY, 4, 4096).to_sqe(0), vec![]).assert_generic(generic::INVALID_FIELD);
    // Identify Namespace is not for discovery controllers.
    rig.exec(&h, identify_sqe(cns::NAMESPACE, 1), vec![]).assert_generic(generic::INVALID_FIELD);

    // A host the subsystem does not admit sees no entry (but may use discovery).
    let (h2, c) = rig.connect_admin(DISCOVERY_NQN, HOST_DENIED, 0);
    assert!(c.is_success());
    rig.enable(&h2);
    let c = rig.exec(&h2, GetLogPage::new(lid::DISCOVERY, 4096, 0).to_sqe(0), vec![]);
    assert_eq!(parse_discovery_log(&c.data).unwrap().0.numrec, 0);
}

#[test]
fn discovery_controller_with_kato_zero_is_reaped_after_the_default_timeout() {
    let mut rig = Rig::new();
    let (h, c) = rig.connect_admin(DISCOVERY_NQN, HOST_A, 0);
    assert!(c.is_success());
    rig.clock.advance_ns(60_000 * MS);
    rig.turn();
    assert!(!h.is_closed());
    rig.clock.advance_ns(61_000 * MS);
    rig.turn();
    assert!(h.is_closed());
}
