//! What one seed of the simulation runs with ([`SimConfig`]) and what it
//! reports ([`SeedReport`]): shared by the runner and the simulated world.

/// What a run simulates; [`SimConfig::default`] is what CI runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Simulated time of the workload with faults, after attach.
    pub duration_ms: u64,
    /// Step sizes a seed picks from, µs.
    pub step_us: Vec<u64>,
    /// Keep-alive timeout range a seed picks from, ms.
    pub kato_ms: (u32, u32),
    /// Reconnect delay range a seed picks from, ms.
    pub reconnect_delay_ms: (u64, u64),
    /// Queue depth at most (a seed picks 1..=this).
    pub queue_depth: usize,
    /// Blocks per IO at most.
    pub max_blocks: u32,
    /// Namespace size in blocks.
    pub num_blocks: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Longest fault (and longest gap between faults), ms.
    pub max_fault_ms: u64,
    /// Faults per gateway at most.
    pub max_faults_per_gateway: usize,
    /// IO command timeouts a seed picks from, ms (0: none; keep-alive alone finds a hung path).
    pub io_timeout_ms: Vec<u64>,
    /// Largest one-way connection delay of a delay fault, µs.
    pub max_delay_us: u64,
    /// Per mille of IOs sent past the end of the namespace (they must fail once, with a command error).
    pub invalid_per_mille: u32,
    /// Step size once every fault healed (at least), µs.
    pub drain_step_us: u64,
    /// After every fault healed, how long the world may take to settle, ms.
    pub drain_limit_ms: u64,
    /// Keep the text of the last events (for failure reports).
    pub keep_text: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            duration_ms: 3_000,
            step_us: vec![1_000, 2_000],
            kato_ms: (400, 1_000),
            reconnect_delay_ms: (100, 300),
            queue_depth: 4,
            max_blocks: 4,
            num_blocks: 64,
            block_size: 512,
            max_fault_ms: 1_500,
            max_faults_per_gateway: 3,
            io_timeout_ms: vec![0, 0, 150, 400],
            max_delay_us: 300_000,
            invalid_per_mille: 5,
            drain_step_us: 5_000,
            drain_limit_ms: 20_000,
            keep_text: true,
        }
    }
}

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// The first invariant broken, if any.
    pub violation: Option<String>,
    /// Hash of the whole event trace (equal for two runs of one seed).
    pub trace_hash: u64,
    /// Events in the trace.
    pub events: u64,
    /// The last events, for the failure report.
    pub trace_tail: String,
    /// Simulated time at the end, ms.
    pub sim_ms: u64,
    /// World steps.
    pub steps: u64,
    /// IOs completed successfully.
    pub completed: u64,
    /// Out-of-range IOs that failed as they must.
    pub expected_errors: u64,
    /// Faults injected.
    pub faults: usize,
    /// Longest IO latency, ms.
    pub max_latency_ms: u64,
    /// IO commands that outlived the IO timeout.
    pub command_timeouts: u64,
    /// Aborts of timed-out commands that a gateway answered.
    pub aborts_answered: u64,
}

impl SeedReport {
    /// A failure report: seed, invariant, the last events.
    pub fn failure_text(&self) -> Option<String> {
        let v = self.violation.as_ref()?;
        Some(format!(
            "seed {} violated an invariant: {v}\n(at {} ms simulated, {} events, trace hash {:016x}); last events:\n{}",
            self.seed, self.sim_ms, self.events, self.trace_hash, self.trace_tail
        ))
    }
}
