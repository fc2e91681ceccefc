//! The workspace's binaries as tests run them: where they are, daemons that
//! are killed (by PID) when the test ends, even on panic, and temporary
//! directories removed the same way.
//!
//! The binaries are not built by `cargo test -p corepath-tests` (cargo builds
//! only the libraries of dependencies, and a test cannot run cargo itself
//! while `cargo test` holds the build directory lock). `scripts/test.sh`
//! runs `cargo build --workspace --all-targets --release` first; by hand:
//! `cargo build --release -p corepath-rpc -p corepath-bench --bins`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The profile directory the running test was built into (`target/release`
/// or `target/debug`): the test executable sits in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let deps = exe.parent().expect("test executable has a parent directory");
    deps.parent().expect("deps/ has a parent directory").to_path_buf()
}

/// The path of binary `name` built with the same profile as this test.
///
/// # Panics
/// When it has not been built, with the command that builds it.
pub fn binary(name: &str) -> PathBuf {
    let dir = profile_dir();
    let path = dir.join(name);
    if !path.is_file() {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let flag = if profile == "release" { " --release" } else { "" };
        panic!(
            "{} is missing: build the binaries first with `cargo build{flag} -p corepath-rpc -p corepath-bench --bins` \
             (scripts/test.sh does)",
            path.display()
        );
    }
    path
}

/// A temporary directory, removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

static TEMP_SEQ: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    /// Creates `<tmp>/corepath-<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str) -> TempDir {
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("corepath-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process that is killed by PID when dropped (also on panic).
/// Its stdout and stderr go to files, shown by [`Daemon::logs`].
pub struct Daemon {
    child: Option<Child>,
    name: String,
    log_path: PathBuf,
}

impl Daemon {
    /// Starts `program args...`, logging to `log_path`.
    pub fn spawn(program: &Path, args: &[&str], log_path: &Path) -> Daemon {
        let log = File::create(log_path).expect("create daemon log");
        let log2 = log.try_clone().expect("clone daemon log handle");
        Self::spawn_with(program, args, log, log2, log_path)
    }

    /// Starts `program args...` with its standard output in `stdout_path`
    /// (a report to parse) and its standard error in `log_path`.
    pub fn spawn_split(program: &Path, args: &[&str], stdout_path: &Path, log_path: &Path) -> Daemon {
        let out = File::create(stdout_path).expect("create daemon stdout file");
        let log = File::create(log_path).expect("create daemon log");
        Self::spawn_with(program, args, out, log, log_path)
    }

    fn spawn_with(program: &Path, args: &[&str], log: File, log2: File, log_path: &Path) -> Daemon {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Daemon {
            child: Some(child),
            name: program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            log_path: log_path.to_path_buf(),
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the daemon wrote so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The exit status, if it has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the daemon to exit by itself; `None` if it is still running then.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Some(s);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits up to `timeout` for the exit; `None` if it
    /// is still running then.
    pub fn signal_and_wait(&mut self, signal: libc::c_int, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) with the PID of our own child, which has not been
        // reaped yet (try_wait above saw it running), so the PID is still ours.
        unsafe { libc::kill(pid, signal) };
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(s)) = child.try_wait() {
                self.child = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                // Child::kill sends SIGKILL to this child's PID only.
                let _ = child.kill();
            }
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- {} log ---\n{}", self.name, std::fs::read_to_string(&self.log_path).unwrap_or_default());
            }
        }
    }
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Runs `program args...` to completion, killing it (by PID) if it takes
/// longer than `timeout`; `None` then.
pub fn run_with_timeout(program: &Path, args: &[&str], timeout: Duration) -> Option<Finished> {
    let dir = TempDir::new("run");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = status?;
    Some(Finished {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    })
}

/// Waits up to 10 s for the `corepath-tgt` (or `corepath-bench --rpc-socket`)
/// started as `daemon` to answer `spdk_get_version` on `socket`.
///
/// # Panics
/// When it exits first or does not answer in time, with its log.
pub fn wait_for_rpc(daemon: &mut Daemon, socket: &Path, what: &str) {
    let ready = crate::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        if let Some(status) = daemon.try_exit_status() {
            panic!("{what} exited at start with {status}:\n{}", daemon.logs());
        }
        let mut c = rpc::RpcClient::connect(socket).ok()?;
        c.set_timeout(Duration::from_secs(2)).ok()?;
        c.call("spdk_get_version", None).ok()
    });
    assert!(ready.is_some(), "{what}: RPC not answering within 10 s:\n{}", daemon.logs());
}

/// Runs `corepath-rpc -s <socket> -t 10 args...` against `daemon` and
/// returns its stdout.
///
/// # Panics
/// When the call fails, with its error and the daemon's log.
pub fn corepath_rpc_ok(daemon: &Daemon, socket: &Path, args: &[&str]) -> String {
    let out = Command::new(binary("corepath-rpc"))
        .args(["-s", socket.to_str().expect("UTF-8 socket path"), "-t", "10"])
        .args(args)
        .output()
        .expect("run corepath-rpc");
    assert!(
        out.status.success(),
        "corepath-rpc {args:?} failed ({}):\n{}\ndaemon log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        daemon.logs()
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
