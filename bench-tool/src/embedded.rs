//! The embedded default: a gateway in this process with a malloc namespace,
//! configured through the same RPC calls a user would send to corepath-tgt.

use engine::TransportId;

/// A gateway running inside corepath-bench; stops when dropped.
pub struct EmbeddedGateway {
    trids: Vec<TransportId>,
}

impl EmbeddedGateway {
    /// Starts the gateway listening on `listen` (default 127.0.0.2:4420).
    pub fn start(listen: &[TransportId]) -> anyhow::Result<Self> {
        let _ = listen;
        anyhow::bail!("the embedded gateway is not wired yet")
    }

    /// Where hosts connect.
    pub fn trids(&self) -> &[TransportId] {
        &self.trids
    }
}
