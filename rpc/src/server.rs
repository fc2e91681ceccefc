//! The JSON-RPC server on a Unix socket: blocking IO on its own threads (this
//! is the control plane), one thread per connection up to a limit.
//!
//! A connection may carry many requests, back to back. Bytes that are not
//! JSON get a -32700 answer and the connection is closed (the stream cannot
//! be resynchronised); a request larger than [`MAX_REQUEST_BYTES`] gets
//! -32600 and is closed too. Nothing a client sends takes the server down.
//!
//! Limits, so that no client can lock the operator out: at most
//! [`MAX_CONNECTIONS`] connections are served at once; one more is answered
//! with a "server busy" error (-32000) and closed; a connection that sends no
//! request for [`IDLE_TIMEOUT`] is closed.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::error::RpcError;
use crate::jsonrpc::{error_response, request_from_value, success_response, FrameError, JsonStream};
use crate::router::Router;

/// Where `corepath-tgt` listens and `corepath-rpc` connects by default.
pub const DEFAULT_SOCKET_PATH: &str = "/var/tmp/corepath.sock";
/// Largest request accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Most connections served at once; more get a "server busy" answer.
pub const MAX_CONNECTIONS: usize = 128;
/// A connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Refusals under way at once at most; beyond that a connection is just closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 32;
/// How long a refusal may take (writing it, then reading what the client sent).
const REFUSAL_WAIT: Duration = Duration::from_millis(200);
/// JSON-RPC's implementation-defined server error, for "busy".
const SERVER_BUSY: i32 = -32000;
/// How often blocked threads look at the shutdown flag.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait for a client to take a response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server. Dropping it shuts it down too.
#[derive(Debug)]
pub struct ServerHandle {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, waits for open connections to finish their current
    /// request, and removes the socket file.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts serving `router` on `socket_path`. A stale socket file (nobody
/// listening) is replaced; a live server on the path is an error, as is a
/// path that exists and is not a socket.
pub fn serve(socket_path: impl AsRef<Path>, router: Arc<Router>) -> Result<ServerHandle, RpcError> {
    let path = socket_path.as_ref().to_path_buf();
    let shown = path.display();
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_socket() {
            return Err(RpcError::internal(format!("{shown} exists and is not a socket")));
        }
        if UnixStream::connect(&path).is_ok() {
            return Err(RpcError::internal(format!("another RPC server is listening on {shown}")));
        }
        std::fs::remove_file(&path).map_err(|e| RpcError::internal(format!("remove stale {shown}: {e}")))?;
    }
    let listener = UnixListener::bind(&path).map_err(|e| RpcError::internal(format!("bind {shown}: {e}")))?;
    // Non-blocking accept, so the thread can notice shutdown.
    listener.set_nonblocking(true).map_err(|e| RpcError::internal(format!("set_nonblocking {shown}: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept_stop = stop.clone();
    let accept_thread = std::thread::Builder::new()
        .name("rpc-accept".into())
        .spawn(move || accept_loop(listener, router, accept_stop))
        .map_err(|e| RpcError::internal(format!("spawn RPC thread: {e}")))?;
    Ok(ServerHandle { path, stop, accept_thread: Some(accept_thread) })
}

fn accept_loop(listener: UnixListener, router: Arc<Router>, stop: Arc<AtomicBool>) {
    let open = Arc::new(AtomicUsize::new(0));
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        workers.retain(|w| !w.is_finished());
        match listener.accept() {
            Ok((stream, _)) => {
                if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    refuse_busy(stream, &refusing);
                    continue;
                }
                open.fetch_add(1, Ordering::SeqCst);
                let (router, stop, open_count) = (router.clone(), stop.clone(), open.clone());
                let spawned = std::thread::Builder::new().name("rpc-conn".into()).spawn(move || {
                    serve_connection(stream, &router, &stop);
                    open_count.fetch_sub(1, Ordering::SeqCst);
                });
                match spawned {
                    Ok(worker) => workers.push(worker),
                    Err(_) => {
                        open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                std::thread::sleep(POLL_INTERVAL / 4)
            }
            // Transient failures (EMFILE, ECONNABORTED): back off and go on.
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

/// Tells a client over the connection limit that the server is busy, in
/// words, on a short-lived thread (at most [`MAX_REFUSALS_IN_FLIGHT`] at
/// once; past that the connection is only closed). The answer goes out at
/// once; then what the client sent is read for a moment, so that closing
/// does not reset the connection before the client has read the answer.
fn refuse_busy(stream: UnixStream, refusing: &Arc<AtomicUsize>) {
    if refusing.fetch_add(1, Ordering::SeqCst) >= MAX_REFUSALS_IN_FLIGHT {
        refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let count = refusing.clone();
    let spawned = std::thread::Builder::new().name("rpc-busy".into()).spawn(move || {
        let mut stream = stream;
        let error = RpcError::new(
            SERVER_BUSY,
            format!(
                "the server is busy: {MAX_CONNECTIONS} connections are open, its limit; \
                 try again when one closes (idle ones close after {} s)",
                IDLE_TIMEOUT.as_secs()
            ),
        );
        if stream.set_nonblocking(false).is_ok()
            && stream.set_write_timeout(Some(REFUSAL_WAIT)).is_ok()
            && write_response(&mut stream, &error_response(&Value::Null, &error)).is_ok()
        {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(REFUSAL_WAIT / 4));
            let started = std::time::Instant::now();
            let mut sink = [0u8; 16 * 1024];
            while started.elapsed() < REFUSAL_WAIT {
                match stream.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    }
                    Err(_) => break,
                }
            }
        }
        count.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        refusing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one connection until the peer closes it, it sends garbage, it
/// stays idle for [`IDLE_TIMEOUT`], or shutdown.
fn serve_connection(mut stream: UnixStream, router: &Router, stop: &AtomicBool) {
    // The accepted socket inherits nothing from the listener on Linux, but be explicit.
    let configured = stream.set_nonblocking(false).is_ok()
        && stream.set_read_timeout(Some(POLL_INTERVAL)).is_ok()
        // A client that never reads its answers must not pin this thread forever.
        && stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok();
    if !configured {
        return;
    }
    let mut frames = JsonStream::new(MAX_REQUEST_BYTES);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_request = std::time::Instant::now();
    loop {
        // Answer every complete request already buffered.
        loop {
            match frames.next_value() {
                Ok(Some(value)) => {
                    last_request = std::time::Instant::now();
                    if let Some(response) = handle_value(router, value) {
                        if write_response(&mut stream, &response).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let error = match e {
                        FrameError::Parse(detail) => RpcError::parse_error(detail),
                        FrameError::TooLarge { limit_bytes } => {
                            RpcError::invalid_request(format!("request exceeds {limit_bytes} bytes"))
                        }
                    };
                    if write_response(&mut stream, &error_response(&Value::Null, &error)).is_ok() {
                        close_after_error(&mut stream);
                    }
                    return;
                }
            }
        }
        if stop.load(Ordering::SeqCst) || last_request.elapsed() > IDLE_TIMEOUT {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => frames.push(chunk.get(..n).unwrap_or(&[])),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return,
        }
    }
}

/// Runs one request; `None` for a notification (no id), which gets no answer.
fn handle_value(router: &Router, value: Value) -> Option<Value> {
    match request_from_value(value) {
        Ok(request) => {
            let result = router.call(&request.method, request.params.as_ref());
            let id = request.id?;
            Some(match result {
                Ok(result) => success_response(&id, result),
                Err(error) => error_response(&id, &error),
            })
        }
        Err((id, error)) => Some(error_response(&id, &error)),
    }
}

/// Closes after a fatal error without losing the error response: closing a
/// Unix socket with unread input resets the peer, which may then never read
/// our answer. So stop writing, and drain (bounded) what the client still sends.
fn close_after_error(stream: &mut UnixStream) {
    const DRAIN_LIMIT_BYTES: usize = 4 * MAX_REQUEST_BYTES;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 16 * 1024];
    let mut drained = 0;
    let mut idle_polls = 0;
    while drained < DRAIN_LIMIT_BYTES && idle_polls < 10 {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                idle_polls += 1
            }
            Err(_) => return,
        }
    }
}

fn write_response(stream: &mut UnixStream, response: &Value) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    stream.write_all(&bytes)
}
