//! The vmlab guest from the tests' side (tests/vmlab/, docs/interop.md):
//! build or find the cached guest, boot it with a job script, wait for the
//! files it writes, read them, and judge the kernel's log.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::bins::{run_with_timeout, Daemon, TempDir};
use crate::wait_for;

/// `tests/vmlab`.
pub fn vmlab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vmlab")
}

/// Builds the guest once per test process (or finds it in the cache) and
/// returns its directory; panics with the builder's output when it cannot.
pub fn guest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = vmlab_dir().join("build.sh");
        let start = Instant::now();
        let out = run_with_timeout(&script, &[], Duration::from_secs(3600))
            .unwrap_or_else(|| panic!("{} still running after 60 min (killed)", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the vmlab guest could not be built ({}), so the kernel interop tests cannot run.\n\
             It needs Debian 12 (bookworm), root or sudo, and a reachable Debian mirror.\n--- build.sh stderr ---\n{stderr}",
            out.status
        );
        let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(dir.join("READY").is_file(), "build.sh printed {dir:?}, which is not a built guest:\n{stderr}");
        let versions = std::fs::read_to_string(dir.join("versions.txt")).unwrap_or_default();
        eprintln!("vmlab guest {} ({:?}):\n{versions}", dir.display(), start.elapsed());
        dir
    })
}

/// A running guest: QEMU started by PID (killed on drop, even on panic) and
/// the 9p share the job, its environment, logs and markers live in.
pub struct Guest {
    qemu: Daemon,
    share: TempDir,
    started: Instant,
}

impl Guest {
    /// Boots the guest with `tests/vmlab/jobs/<job>` as its job; `env` goes to
    /// `job.env`, `files` are copied into the share; `host_port` forwards
    /// 127.0.0.1:host_port to the guest's port 4420.
    pub fn start(job: &str, env: &[(&str, String)], files: &[PathBuf], host_port: Option<u16>) -> Guest {
        let guest = guest_dir();
        let share = TempDir::new("vmlab");
        let jobs = vmlab_dir().join("jobs");
        std::fs::copy(jobs.join(job), share.join("job.sh")).expect("copy the job");
        std::fs::copy(jobs.join("lib.sh"), share.join("lib.sh")).expect("copy lib.sh");
        let env_text: String = env.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        std::fs::write(share.join("job.env"), env_text).expect("write job.env");
        for f in files {
            let name = f.file_name().expect("file name");
            std::fs::copy(f, share.path().join(name)).unwrap_or_else(|e| panic!("copy {}: {e}", f.display()));
        }
        let guest_arg = guest.to_str().expect("UTF-8 path").to_string();
        let share_arg = share.path().to_str().expect("UTF-8 path").to_string();
        let port_arg = host_port.map(|p| p.to_string()).unwrap_or_default();
        let mut args = vec![guest_arg.as_str(), share_arg.as_str()];
        if host_port.is_some() {
            args.push(port_arg.as_str());
        }
        // boot.sh execs QEMU, so the Daemon's PID is QEMU's.
        let qemu = Daemon::spawn(&vmlab_dir().join("boot.sh"), &args, &share.join("qemu.log"));
        eprintln!("vmlab: guest pid {} running {job}, share {}", qemu.pid(), share.path().display());
        Guest { qemu, share, started: Instant::now() }
    }

    /// Waits for the guest to create `name` in the share; panics with the
    /// logs if the guest stops or `timeout` passes first.
    pub fn wait_for_file(&mut self, name: &str, timeout: Duration) {
        let path = self.share.join(name);
        let qemu = &mut self.qemu;
        let mut exited = None;
        let seen = wait_for(timeout, Duration::from_millis(200), || {
            if path.exists() {
                return Some(());
            }
            exited = qemu.try_exit_status();
            exited.map(|_| ())
        });
        if seen.is_none() || !path.exists() {
            panic!("guest did not create {name} within {timeout:?} (QEMU exit: {exited:?})\n{}", self.report());
        }
        eprintln!("vmlab: {name} after {:?}", self.started.elapsed());
    }

    /// Tells the guest job the host side is done.
    pub fn touch(&self, name: &str) {
        std::fs::write(self.share.join(name), b"").expect("write marker");
    }

    /// Waits for the guest to power off; returns the job's exit status.
    pub fn wait_job(&mut self, timeout: Duration) -> i32 {
        let qemu = &mut self.qemu;
        let status = wait_for(timeout, Duration::from_millis(200), || qemu.try_exit_status());
        let Some(status) = status else {
            panic!("guest still running after {timeout:?}; killed\n{}", self.report());
        };
        let rc = std::fs::read_to_string(self.share.join("job.rc")).ok().and_then(|s| s.trim().parse().ok());
        eprintln!("vmlab: guest exited ({status}) after {:?}, job rc {rc:?}", self.started.elapsed());
        rc.unwrap_or_else(|| panic!("the guest job did not finish (QEMU {status})\n{}", self.report()))
    }

    /// A file the guest wrote into the share (empty if none).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.share.join(name)).unwrap_or_default()
    }

    /// The job's output, the nvme lines of dmesg, the serial console and QEMU's output.
    pub fn report(&self) -> String {
        format!(
            "--- guest job output ---\n{}\n--- guest dmesg (nvme) ---\n{}\n--- serial console ---\n{}\n--- qemu ---\n{}",
            self.read("job.log"),
            nvme_lines(&self.read("dmesg.txt")),
            self.read("console.log"),
            self.read("qemu.log")
        )
    }

    /// Fails if the kernel logged a warning or a complaint about our PDUs;
    /// prints the nvme lines of dmesg either way.
    pub fn assert_kernel_quiet(&self) {
        let dmesg = self.read("dmesg.txt");
        assert!(!dmesg.is_empty(), "the guest saved no dmesg\n{}", self.report());
        eprintln!("--- guest dmesg (nvme) ---\n{}", nvme_lines(&dmesg));
        // The console also has what the kernel printed after dmesg was saved.
        let mut complaints = kernel_complaints(&dmesg);
        complaints.extend(kernel_complaints(&self.read("console.log")));
        assert!(complaints.is_empty(), "the kernel complained:\n{}\n{}", complaints.join("\n"), self.report());
    }
}

/// The nvme lines of a dmesg.
pub fn nvme_lines(dmesg: &str) -> String {
    dmesg.lines().filter(|l| l.contains("nvme")).collect::<Vec<_>>().join("\n")
}

/// dmesg lines that mean the kernel disliked something we sent or did:
/// warnings and oopses anywhere, and nvme/nvmet lines about PDUs, digests,
/// unknown tags or invalid fields.
pub fn kernel_complaints(dmesg: &str) -> Vec<String> {
    const ANYWHERE: [&str; 5] = ["WARNING:", "BUG:", "kernel BUG", "Call Trace", "Oops"];
    const ABOUT_US: [&str; 10] = [
        "pdu",
        "digest",
        "unexpected",
        "invalid",
        "malformed",
        "mismatch",
        "could not locate",
        "not found",
        "protocol error",
        "bad ",
    ];
    dmesg
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            ANYWHERE.iter().any(|p| l.contains(p))
                || (lower.contains("nvme") && ABOUT_US.iter().any(|p| lower.contains(p)))
        })
        .map(str::to_string)
        .collect()
}
