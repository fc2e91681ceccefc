//! The admin commands of issue 11 (acceptance 4) from the Linux kernel's
//! NVMe/TCP host, nvme-cli 2.3, against corepath-tgt in the vmlab guest
//! (`tests/vmlab/jobs/kernel-admin.sh`, docs/interop.md): `nvme smart-log`
//! before and after 4 MiB written and 2 MiB read, `nvme get-feature -f 4`
//! and `-f 5` (and set-feature), `nvme effects-log` (with `--csi=0`: without
//! it nvme-cli 2.3 prints nothing over fabrics, having no PCI BAR to read CAP
//! from), and Identify CNS 06h through `nvme admin-passthru` (nvme-cli 2.3
//! has no `id-ctrl --cns`).
//!
//! One guest run serves every test here: the first test boots it and runs the
//! job, each test then judges its own command's exit status and values.
//! The first run builds the guest (several minutes; cached). Where it cannot
//! be built the tests fail with the builder's output; they never pass
//! without running.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::Duration;

use corepath_tests::bins::binary;
use corepath_tests::vmlab::{kernel_complaints, Guest};
use protocol::identify::IdentifyControllerNvm;
use protocol::log::{cmd_effects, CommandsSupportedAndEffects};
use protocol::opcode::{admin, io};

const NQN: &str = "nqn.2021-06.io.spdk:vmlab0";
const SERIAL: &str = "CPVMLAB0001";
/// Boot, the job and power-off (TCG, loaded 2-core machine).
const JOB_TIMEOUT: Duration = Duration::from_secs(600);
/// What the job writes with dd, then reads (bytes).
const WRITTEN: u64 = 4 << 20;
const READ: u64 = 2 << 20;

/// What the guest run left: every file the job wrote, the job's exit status and the logs.
struct Run {
    files: HashMap<String, String>,
    rc: i32,
    report: String,
    complaints: Vec<String>,
}

const FILES: [&str; 18] = [
    "smart-before",
    "smart-after",
    "feature4",
    "feature4-human",
    "feature4-set",
    "feature4-after",
    "feature4-sensor1",
    "feature5",
    "feature5-set",
    "feature5-after",
    "feature5-dulbe",
    "effects",
    "effects-bin",
    "cns6",
    "cns6-zns",
    "cap",
    "effects-csi0",
    "job",
];

/// Boots the guest once per test process; a failure (no guest, no boot) is
/// kept as an error for every test rather than booting again.
fn run() -> &'static Result<Run, String> {
    static RUN: OnceLock<Result<Run, String>> = OnceLock::new();
    RUN.get_or_init(|| {
        catch_unwind(AssertUnwindSafe(|| {
            let env = [
                ("NQN", NQN.to_string()),
                ("SERIAL", SERIAL.to_string()),
                ("MIN_CNTLID", "100".to_string()),
                ("MAX_CNTLID", "199".to_string()),
            ];
            let mut guest =
                Guest::start("kernel-admin.sh", &env, &[binary("corepath-tgt"), binary("corepath-rpc")], None);
            let rc = guest.wait_job(JOB_TIMEOUT);
            let mut files = HashMap::new();
            for name in FILES {
                for ext in ["out", "err", "rc", "hex", "log"] {
                    let text = guest.read(&format!("{name}.{ext}"));
                    if !text.is_empty() {
                        files.insert(format!("{name}.{ext}"), text);
                    }
                }
            }
            let mut complaints = kernel_complaints(&guest.read("dmesg.txt"));
            complaints.extend(kernel_complaints(&guest.read("console.log")));
            // Kept for a look after the run (the share goes with the guest).
            let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-admin");
            let _ = std::fs::create_dir_all(&keep);
            for name in ["job.log", "dmesg.txt", "console.log"] {
                let _ = std::fs::write(keep.join(name), guest.read(name));
            }
            eprintln!("--- guest job output (also in {}) ---\n{}", keep.display(), guest.read("job.log"));
            Run { files, rc, report: guest.report(), complaints }
        }))
        .map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the guest run panicked".into())
        })
    })
}

fn guest_run() -> &'static Run {
    match run() {
        Ok(r) => r,
        Err(e) => panic!("the vmlab guest run failed: {e}"),
    }
}

impl Run {
    fn file(&self, name: &str) -> &str {
        self.files.get(name).map(String::as_str).unwrap_or("")
    }

    /// Asserts that command NAME exited 0; returns its stdout.
    fn succeeded(&self, name: &str) -> &str {
        let rc = self.file(&format!("{name}.rc")).trim();
        assert_eq!(rc, "0", "`{name}` exited {rc:?}: {}\n{}", self.file(&format!("{name}.err")), self.report);
        self.file(&format!("{name}.out"))
    }

    /// Asserts that command NAME failed (the gateway refused it); returns its stderr.
    fn refused(&self, name: &str) -> &str {
        let rc = self.file(&format!("{name}.rc")).trim();
        assert!(!rc.is_empty() && rc != "0", "`{name}` should have been refused, exited {rc:?}\n{}", self.report);
        self.file(&format!("{name}.err"))
    }

    /// The bytes nvme-cli wrote for NAME (from the job's od dump).
    fn bytes(&self, name: &str) -> Vec<u8> {
        let hex = self.file(&format!("{name}.hex"));
        hex.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{name}.hex: {b:?}: {e}")))
            .collect()
    }
}

/// The number nvme-cli prints for `key` in its normal smart-log output
/// (`host_write_commands : 4`, `Data Units Written : 9 (4.61 MB)`: the key
/// compared lowercase with spaces as underscores, a thousands separator and
/// a size after the number ignored).
fn smart_value(out: &str, key: &str) -> u64 {
    let norm = |k: &str| k.trim().to_ascii_lowercase().replace(' ', "_");
    let line = out
        .lines()
        .find(|l| l.split(':').next().map(norm).as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in smart-log output:\n{out}"));
    let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
    let digits: String = value.split_whitespace().next().unwrap_or("").chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or_else(|e| panic!("{key}: {value:?}: {e}"))
}

/// The value nvme-cli prints after "Current value:" for get-feature.
fn current_value(out: &str) -> u32 {
    let v = out
        .split("Current value:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no current value in get-feature output:\n{out}"));
    let v = v.trim_start_matches("0x");
    u32::from_str_radix(v, 16).unwrap_or_else(|e| panic!("current value {v:?}: {e}"))
}

#[test]
fn kernel_host_smart_log_counts_what_it_wrote_and_read() {
    let r = guest_run();
    let before = r.succeeded("smart-before");
    let after = r.succeeded("smart-after");
    eprintln!("--- smart-log after the IO ---\n{after}");
    assert_eq!(smart_value(after, "critical_warning"), 0);
    // Nothing wrote to the namespace before dd: then 4 MiB = 8192 units of 512 bytes,
    // in thousands rounded up, is 9.
    assert_eq!(smart_value(before, "data_units_written"), 0);
    assert_eq!(smart_value(after, "data_units_written"), WRITTEN.div_ceil(512_000));
    // At least 4 writes (1 MiB each, split by MDTS or not).
    assert!(smart_value(after, "host_write_commands") >= 4, "{after}");
    // The kernel itself read the namespace (partition scan) before: reads grew by at least 2 MiB.
    let (units_before, units_after) = (smart_value(before, "data_units_read"), smart_value(after, "data_units_read"));
    assert!(units_after >= units_before + READ / 512_000, "data units read {units_before} -> {units_after}");
    assert!(smart_value(after, "host_read_commands") >= smart_value(before, "host_read_commands") + 2);
    // The gateway started within the hour.
    assert_eq!(smart_value(after, "power_on_hours"), 0);
}

#[test]
fn kernel_host_get_feature_4_reads_and_sets_the_temperature_threshold() {
    let r = guest_run();
    let out = r.succeeded("feature4");
    eprintln!("{out}{}", r.file("feature4-human.out"));
    // The Composite Temperature's over threshold: FFFFh by default (no sensor, never reached).
    assert_eq!(current_value(out), 0xFFFF, "{out}");
    r.succeeded("feature4-set");
    assert_eq!(current_value(r.succeeded("feature4-after")), 350);
    // Temperature sensor 1 is not implemented: Invalid Field in Command.
    let err = r.refused("feature4-sensor1");
    eprintln!("set-feature -f 4 on sensor 1: {err}");
}

#[test]
fn kernel_host_get_feature_5_reads_and_sets_error_recovery() {
    let r = guest_run();
    let out = r.succeeded("feature5");
    eprintln!("{out}");
    assert_eq!(current_value(out), 0, "TLER 0 (no limit), DULBE 0: {out}");
    r.succeeded("feature5-set");
    assert_eq!(current_value(r.succeeded("feature5-after")), 30);
    let err = r.refused("feature5-dulbe");
    eprintln!("set-feature -f 5 with DULBE: {err}");
}

#[test]
fn kernel_host_effects_log_lists_exactly_our_commands() {
    let r = guest_run();
    // `nvme effects-log` as typed exits 0; nvme-cli 2.3 prints a page only when it can read CAP
    // from a PCI BAR or is given --csi (see the job), so the page is read with --csi=0.
    r.succeeded("effects");
    let text = r.succeeded("effects-csi0");
    eprintln!("{text}");
    for line in ["ACS6     [Identify", "IOCS1    [Write                           ] 00000003"] {
        assert!(text.contains(line), "no {line:?} in effects-log --csi=0:\n{text}");
    }
    r.succeeded("effects-bin");
    let raw = r.bytes("effects-bin");
    assert_eq!(
        raw.len(),
        4096,
        "one Commands Supported and Effects page (NVM command set); stderr: {}; CAP: {}{}",
        r.file("effects-bin.err"),
        r.file("cap.out"),
        r.file("cap.err")
    );
    let log = CommandsSupportedAndEffects::parse(&raw).unwrap();
    let (csupp, lbcc) = (cmd_effects::CSUPP, cmd_effects::LBCC);
    let admin_ops = [
        admin::GET_LOG_PAGE,
        admin::IDENTIFY,
        admin::ABORT,
        admin::SET_FEATURES,
        admin::GET_FEATURES,
        admin::ASYNC_EVENT_REQUEST,
        admin::KEEP_ALIVE,
    ];
    for opc in 0..=255u8 {
        assert_eq!(log.acs[usize::from(opc)], if admin_ops.contains(&opc) { csupp } else { 0 }, "ACS {opc:#04x}");
    }
    let io_ops = [
        (io::FLUSH, csupp),
        (io::WRITE, csupp | lbcc),
        (io::READ, csupp),
        (io::WRITE_ZEROES, csupp | lbcc),
        (io::DATASET_MANAGEMENT, csupp | lbcc),
    ];
    for opc in 0..=255u8 {
        let want = io_ops.iter().find(|(o, _)| *o == opc).map_or(0, |(_, e)| *e);
        assert_eq!(log.iocs[usize::from(opc)], want, "IOCS {opc:#04x}");
    }
}

#[test]
fn kernel_host_identify_cns_06h_answers_through_admin_passthru() {
    let r = guest_run();
    r.succeeded("cns6");
    let raw = r.bytes("cns6");
    assert_eq!(raw.len(), 4096, "the I/O command set specific Identify Controller structure");
    let nvm = IdentifyControllerNvm::parse(&raw).unwrap();
    // No limit reported for Verify, Write Zeroes, Write Uncorrectable or Dataset Management.
    assert_eq!((nvm.vsl, nvm.wzsl, nvm.wusl, nvm.dmrl, nvm.dmrsl, nvm.dmsl), (0, 0, 0, 0, 0, 0));
    // Another command set's structure does not exist: refused, not a silent NVM answer.
    let err = r.refused("cns6-zns");
    eprintln!("CNS 06h CSI 02h: {err}");
}

#[test]
fn kernel_host_admin_commands_leave_the_job_passing_and_the_kernel_quiet() {
    let r = guest_run();
    let log = r.file("job.log");
    let failed: Vec<&str> = log.lines().filter(|l| l.starts_with("CHECK FAIL")).collect();
    assert!(log.contains("CHECK ok"), "the job checked nothing\n{}", r.report);
    assert!(failed.is_empty() && r.rc == 0, "job rc {}, failed checks:\n{}\n{}", r.rc, failed.join("\n"), r.report);
    assert!(r.complaints.is_empty(), "the kernel complained:\n{}\n{}", r.complaints.join("\n"), r.report);
}
