//! The Linux kernel's native NVMe multipath across two corepath gateways
//! (issue 5, acceptance 7), in the QEMU guest of `tests/vmlab/` (see
//! docs/interop.md). The guest job `jobs/kernel-multipath.sh` runs gateways
//! A and B (two corepath-tgt processes on 127.0.0.2 and 127.0.0.3) over one
//! shared AIO file with the same namespace UUID, NQN and serial, ANA
//! reporting on and disjoint controller-ID ranges; the kernel host connects
//! to both, and rounds of fio randwrite with crc32c verification run while
//! A's listener is set inaccessible, then optimized again, then A is
//! SIGKILLed.
//! This test boots the guest with that job and checks what the job recorded:
//! one subsystem with two live paths then one, one block device, the ANA log
//! of each controller with both states, every fio round exit 0 with `err= 0`
//! and no verify error, and a quiet kernel.
//!
//! The first run builds the guest (several minutes; cached). Where it cannot
//! be built the test fails with the builder's output; it never passes
//! without running.

use std::time::Duration;

use corepath_tests::bins::binary;
use corepath_tests::vmlab::{kernel_complaints, nvme_lines, Guest};

/// The subsystem both gateways serve (DESIGN.md's names).
const NQN: &str = "nqn.2021-06.io.spdk:ctc_rbd0";
const SERIAL: &str = "SPDK_BDEV_0";
/// The namespace UUID both gateways give the shared file.
const NS_UUID: &str = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// Gateway A's and B's listener addresses inside the guest (loopback).
const ADDR_A: &str = "127.0.0.2";
const ADDR_B: &str = "127.0.0.3";
/// Size of the shared file, and what each fio round writes then verifies
/// (4 KiB blocks; about 15-20 s a round under TCG).
const NS_MIB: u32 = 128;
const FIO_BS: &str = "4k";
const FIO_SIZE: &str = "16M";
/// Boot, the job and power-off must finish within this (TCG, loaded 2-core machine).
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// The `nvme list-subsys` path lines (` +- nvmeN tcp traddr=...,trsvcid=... STATE`).
fn path_lines(list_subsys: &str) -> Vec<&str> {
    list_subsys.lines().filter(|l| l.contains(" tcp ") && l.contains("traddr=")).collect()
}

fn live_paths<'a>(paths: &[&'a str]) -> Vec<&'a str> {
    paths.iter().copied().filter(|l| l.split_whitespace().any(|w| w == "live")).collect()
}

/// The ANA state `nvme ana-log` reports for group `grpid`.
fn ana_log_group_state(ana_log: &str, grpid: u32) -> Option<String> {
    let mut in_group = false;
    for line in ana_log.lines() {
        let mut kv = line.splitn(2, ':').map(str::trim);
        let (Some(key), Some(value)) = (kv.next(), kv.next()) else { continue };
        match key {
            "grpid" => in_group = value.parse::<u32>().ok() == Some(grpid),
            "state" if in_group => return Some(value.to_string()),
            _ => {}
        }
    }
    None
}

#[test]
fn kernel_native_multipath_keeps_fio_verified_through_ana_inaccessible_and_gateway_kill() {
    let ns_mib = NS_MIB.to_string();
    let env = [
        ("NQN", NQN),
        ("SERIAL", SERIAL),
        ("NS_UUID", NS_UUID),
        ("ADDR_A", ADDR_A),
        ("ADDR_B", ADDR_B),
        ("NS_MIB", ns_mib.as_str()),
        ("FIO_BS", FIO_BS),
        ("FIO_SIZE", FIO_SIZE),
    ];
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let mut guest = Guest::start("kernel-multipath.sh", &env, &[binary("corepath-tgt"), binary("corepath-rpc")], None);
    let rc = guest.wait_job(JOB_TIMEOUT);
    let log = guest.read("job.log");
    eprintln!("--- guest job output ---\n{log}");
    let report = guest.report();

    assert_eq!(guest.read("multipath.txt").trim(), "Y", "nvme_core native multipath is off\n{report}");

    // One subsystem, two live paths (A and B), one block device.
    let connected = guest.read("list-subsys-connected.txt");
    assert_eq!(connected.matches(&format!("NQN={NQN}")).count(), 1, "one subsystem:\n{connected}\n{report}");
    let paths = path_lines(&connected);
    let live = live_paths(&paths);
    assert_eq!(live.len(), 2, "two live paths after connecting both:\n{connected}\n{report}");
    for addr in [ADDR_A, ADDR_B] {
        assert!(live.iter().any(|l| l.contains(&format!("traddr={addr},"))), "a live path to {addr}:\n{connected}");
    }
    let devices = guest.read("block-devices.txt");
    let namespaces: Vec<&str> = devices
        .lines()
        .filter(|l| l.starts_with("nvme") && l.trim_start_matches(|c: char| c.is_ascii_alphanumeric()).is_empty())
        .collect();
    assert_eq!(namespaces.len(), 1, "one namespace block device for the subsystem: {namespaces:?}\n{report}");

    // The ANA log of each controller: group 1 optimized on both, then
    // inaccessible through A while B stays optimized.
    for (file, want) in [
        ("ana-log-A-connected.txt", "optimized"),
        ("ana-log-B-connected.txt", "optimized"),
        ("ana-log-A-inaccessible.txt", "inaccessible"),
        ("ana-log-B-inaccessible.txt", "optimized"),
    ] {
        let text = guest.read(file);
        assert_eq!(ana_log_group_state(&text, 1).as_deref(), Some(want), "{file}:\n{text}\n{report}");
    }
    assert_eq!(
        guest.read("ana-state-inaccessible.txt").trim(),
        "A=inaccessible B=optimized",
        "the host's per-path ana_state while A is inaccessible\n{report}"
    );

    // After A's SIGKILL: one live path, to B.
    let killed = guest.read("list-subsys-killed.txt");
    let live_after = live_paths(&path_lines(&killed));
    assert_eq!(live_after.len(), 1, "one live path after A is killed:\n{killed}\n{report}");
    assert!(live_after[0].contains(&format!("traddr={ADDR_B},")), "B's path is the live one:\n{killed}");

    // fio: every round exit 0, no IO error, every block verified.
    let fio = guest.read("fio.txt");
    let rounds = fio.lines().filter(|l| l.starts_with("=== fio round")).count();
    let statuses: Vec<String> = guest.read("fio.rc").lines().map(str::to_string).collect();
    assert!(rounds >= 1, "no fio round ran:\n{fio}\n{report}");
    assert_eq!(statuses.len(), rounds, "one exit status per fio round: {statuses:?}\n{fio}");
    assert!(statuses.iter().all(|s| s == "0"), "fio exit statuses {statuses:?}:\n{fio}");
    assert_eq!(fio.matches("err= 0").count(), rounds, "every fio round reports err= 0:\n{fio}");
    assert!(!fio.contains("verify: bad") && !fio.contains("verify failed"), "fio verify:\n{fio}");
    eprintln!("{rounds} fio rounds of {FIO_BS} randwrite + crc32c verify over {FIO_SIZE}: all exit 0, err= 0");
    eprintln!("per-path writes:\n{}", guest.read("path-io.txt"));

    // Every check of the job passed, and the kernel did not complain.
    assert!(log.contains("CHECK ok"), "the job checked nothing\n{report}");
    let failed: Vec<&str> = log.lines().filter(|l| l.starts_with("CHECK FAIL")).collect();
    assert!(failed.is_empty() && rc == 0, "job rc {rc}, failed checks:\n{}\n{report}", failed.join("\n"));
    let dmesg = guest.read("dmesg.txt");
    assert!(!dmesg.is_empty(), "the guest saved no dmesg\n{report}");
    eprintln!("--- guest dmesg (nvme) ---\n{}", nvme_lines(&dmesg));
    let mut complaints = kernel_complaints(&dmesg);
    complaints.extend(kernel_complaints(&guest.read("console.log")));
    assert!(complaints.is_empty(), "the kernel complained:\n{}\n{report}", complaints.join("\n"));
}

#[test]
fn kernel_complaints_pass_the_expected_failover_messages_but_not_pdu_errors() {
    let expected = "[  132.59] nvme nvme0: starting error recovery\n\
                    [  132.84] nvme nvme0: Reconnecting in 1 seconds...\n\
                    [  133.86] nvme nvme0: failed to connect socket: -111\n\
                    [  133.87] nvme nvme0: Failed reconnect attempt 1\n\
                    [  166.73] nvme nvme0: Removing ctrl: NQN \"nqn.2021-06.io.spdk:ctc_rbd0\"\n\
                    [  166.77] nvme nvme0: Property Set error: 880, offset 0x14";
    assert!(kernel_complaints(expected).is_empty(), "{:?}", kernel_complaints(expected));
    let loud = "[   87.05] nvme nvme0: Invalid MNAN value 0\n\
                [   90.00] nvme nvme1: queue 1: data digest error";
    assert_eq!(kernel_complaints(loud).len(), 2, "{:?}", kernel_complaints(loud));
}
