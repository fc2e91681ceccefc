//! A gateway with its RPC methods, ready to configure: what `corepath-tgt`
//! runs, and what `corepath-bench` and the tests embed in-process.
//!
//! Configuration goes through [`GatewayService::call`], the same router the
//! Unix socket serves, so an embedded gateway is set up with exactly the
//! calls a user sends with `corepath-rpc`.

use std::sync::{Arc, Mutex};

use engine::{TargetOptions, TargetTransport};
use gateway::config::{ListenAddress, TargetState};
use gateway::{Gateway, GatewayError, GatewayOptions};
use serde_json::Value;

use crate::{DataPlane, GatewayRpc, Router, RpcError};

/// Lets the RPC handlers start and stop listeners on a running gateway.
pub struct GatewayDataPlane<T: TargetTransport + Send + Sync + 'static>(pub Arc<Gateway<T>>);

impl<T: TargetTransport + Send + Sync + 'static> DataPlane for GatewayDataPlane<T> {
    fn listen(&self, addr: &ListenAddress, opts: &TargetOptions) -> Result<(), String> {
        self.0.listen(addr, opts).map_err(|e| e.to_string())?;
        self.0.config_changed();
        Ok(())
    }

    fn stop_listening(&self, addr: &ListenAddress) -> Result<(), String> {
        self.0.stop_listening(addr).map_err(|e| e.to_string())?;
        self.0.config_changed();
        Ok(())
    }

    fn reactors(&self) -> Value {
        self.0.reactors()
    }

    fn controllers(&self, nqn: &str) -> Vec<Value> {
        self.0.controllers(Some(nqn)).iter().map(|c| c.to_json()).collect()
    }

    fn config_changed(&self) {
        self.0.config_changed();
    }
}

/// A running gateway and the router of its RPC methods.
pub struct GatewayService<T: TargetTransport + Send + Sync + 'static> {
    gateway: Arc<Gateway<T>>,
    router: Arc<Router>,
    state: Arc<Mutex<TargetState>>,
}

impl<T: TargetTransport + Send + Sync + 'static> GatewayService<T> {
    /// Starts reactors on `opts.cores` with an empty configuration.
    pub fn start(transport: T, opts: GatewayOptions) -> Result<Self, GatewayError> {
        let state = Arc::new(Mutex::new(TargetState::new()));
        let gateway = Arc::new(Gateway::start(transport, state.clone(), opts)?);
        let mut router = Router::new();
        // A fresh router has no methods, so adding the gateway's cannot clash.
        let _ = router.add(Arc::new(GatewayRpc::new(state.clone(), Arc::new(GatewayDataPlane(gateway.clone())))));
        Ok(GatewayService { gateway, router: Arc::new(router), state })
    }

    /// Calls an RPC method, as a client on the socket would.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let params = (!params.is_null()).then_some(params);
        self.router.call(method, params.as_ref())
    }

    /// The router, to serve on a socket.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// The gateway.
    pub fn gateway(&self) -> &Arc<Gateway<T>> {
        &self.gateway
    }

    /// The configuration.
    pub fn state(&self) -> &Arc<Mutex<TargetState>> {
        &self.state
    }

    /// Stops the reactors and closes every connection.
    pub fn shutdown(&self) {
        self.gateway.shutdown();
    }
}

impl<T: TargetTransport + Send + Sync + 'static> Drop for GatewayService<T> {
    fn drop(&mut self) {
        self.gateway.shutdown();
    }
}
