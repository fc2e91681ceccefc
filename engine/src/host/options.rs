//! What a user chooses per controller at attach time: keep-alive, queue
//! depth, digests, timeouts and the reconnect policy. A leaf module: the API
//! takes these from the user and the host's queues and supervisor read them.

/// Per-controller options (SPDK's `bdev_nvme_attach_controller` knobs that exist so far).
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Keep Alive Timeout sent in Connect; keep-alives go out at half of it.
    pub keep_alive_timeout_ms: u32,
    /// IO queue entries per core.
    pub io_queue_depth: u16,
    /// NVMe/TCP header digest.
    pub header_digest: bool,
    /// NVMe/TCP data digest.
    pub data_digest: bool,
    /// Give up bring-up after this long.
    pub connect_timeout_ms: u64,
    /// An IO outstanding longer than this triggers `action_on_timeout`
    /// (0 = no limit, SPDK's default; keep-alive still catches a hung controller).
    pub io_timeout_ms: u64,
    /// An admin command (other than an AER) unanswered this long fails the
    /// controller; 0 = the same as `io_timeout_ms` (SPDK's `timeout_admin_us`).
    /// Keep-alives keep their own KATO/2 deadline.
    pub admin_timeout_ms: u64,
    /// What a timed-out IO command leads to.
    pub action_on_timeout: TimeoutAction,
    /// When to reconnect after a failure, and for how long.
    pub reconnect: ReconnectPolicy,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        // SPDK's bdev_nvme defaults: 10 s keep-alive, 128-entry IO queues.
        ControllerOptions {
            keep_alive_timeout_ms: 10_000,
            io_queue_depth: 128,
            header_digest: false,
            data_digest: false,
            connect_timeout_ms: 10_000,
            io_timeout_ms: 0,
            admin_timeout_ms: 0,
            action_on_timeout: TimeoutAction::Abort,
            reconnect: ReconnectPolicy::default(),
        }
    }
}

/// What an IO command outstanding longer than `io_timeout_ms` leads to
/// (SPDK's `action_on_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutAction {
    /// Record it (a path event) and keep waiting.
    None,
    /// Reset the controller: its IOs move to another path.
    Reset,
    /// Send an Abort for the command; reset when the controller answers that
    /// it did not abort it and it is still outstanding, or when the Abort
    /// outlives the admin timeout.
    Abort,
}

impl TimeoutAction {
    /// SPDK's name: none, reset, abort.
    pub fn spdk_name(self) -> &'static str {
        match self {
            TimeoutAction::None => "none",
            TimeoutAction::Reset => "reset",
            TimeoutAction::Abort => "abort",
        }
    }

    /// Parses SPDK's name.
    pub fn from_spdk_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(TimeoutAction::None),
            "reset" => Some(TimeoutAction::Reset),
            "abort" => Some(TimeoutAction::Abort),
            _ => None,
        }
    }
}

/// Reconnect policy (SPDK's `-l`, `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait between reconnect attempts.
    pub reconnect_delay_ms: u64,
    /// Give up this long after the failure; `None` = reconnect forever (`-l -1`);
    /// `Some(0)` = one immediate attempt, then give up.
    pub ctrlr_loss_timeout_ms: Option<u64>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy { reconnect_delay_ms: 1_000, ctrlr_loss_timeout_ms: None }
    }
}
