//! `corepath-rpc`: SPDK's `rpc.py` command line for corepath's JSON-RPC methods.
//!
//! Same subcommands, positional arguments and flags as rpc.py; results are
//! printed as rpc.py prints them (JSON with a 2-space indent; a bare string
//! without quotes), and a JSON-RPC error goes to stderr in rpc.py's format
//! with exit status 1.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use corepath_rpc::{ClientError, RpcClient, DEFAULT_SOCKET_PATH};
use serde_json::{json, Map, Value};

#[derive(Parser)]
#[command(name = "corepath-rpc", version, about = "corepath JSON-RPC client (SPDK rpc.py compatible)")]
struct Cli {
    /// RPC server Unix socket path.
    #[arg(short = 's', long = "server", default_value = DEFAULT_SOCKET_PATH)]
    server: String,
    /// Seconds to wait for a response.
    #[arg(short = 't', long = "timeout", default_value_t = 60.0)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an NVMf transport.
    #[command(name = "nvmf_create_transport")]
    NvmfCreateTransport {
        /// Transport type (TCP, RDMA); case-insensitive.
        #[arg(short = 't', long = "trtype")]
        trtype: String,
        /// Max number of outstanding IO per queue.
        #[arg(short = 'q', long = "max-queue-depth")]
        max_queue_depth: Option<u16>,
        /// Max number of IO qpairs per controller.
        #[arg(short = 'm', long = "max-io-qpairs-per-ctrlr")]
        max_io_qpairs_per_ctrlr: Option<u16>,
        /// Max in-capsule data size.
        #[arg(short = 'c', long = "in-capsule-data-size")]
        in_capsule_data_size: Option<u32>,
        /// Max IO size (bytes).
        #[arg(short = 'i', long = "max-io-size")]
        max_io_size: Option<u32>,
        /// IO unit size (bytes).
        #[arg(short = 'u', long = "io-unit-size")]
        io_unit_size: Option<u32>,
        /// Disable the C2H success optimization (TCP: a read's last C2HData
        /// PDU carries SUCCESS and no response capsule follows). On by default.
        #[arg(short = 'o', long = "c2h-success")]
        disable_c2h_success: bool,
    },
    /// Display NVMf transports.
    #[command(name = "nvmf_get_transports")]
    NvmfGetTransports {
        /// Transport type.
        #[arg(long = "trtype")]
        trtype: Option<String>,
    },
    /// Create a bdev with malloc backend.
    #[command(name = "bdev_malloc_create")]
    BdevMallocCreate {
        /// Size of malloc bdev in MiB (float > 0).
        total_size: f64,
        /// Data block size for this bdev.
        block_size: u32,
        /// Name of the bdev.
        #[arg(short = 'b', long = "name")]
        name: Option<String>,
        /// UUID of the bdev.
        #[arg(short = 'u', long = "uuid")]
        uuid: Option<String>,
    },
    /// Delete a malloc disk.
    #[command(name = "bdev_malloc_delete")]
    BdevMallocDelete {
        /// Name of malloc bdev.
        name: String,
    },
    /// Add a bdev with null backend.
    #[command(name = "bdev_null_create")]
    BdevNullCreate {
        /// Block device name.
        name: String,
        /// Size of null bdev in MiB (int > 0).
        total_size: u64,
        /// Data block size for this bdev.
        block_size: u32,
        /// UUID of the bdev.
        #[arg(short = 'u', long = "uuid")]
        uuid: Option<String>,
    },
    /// Delete a null bdev.
    #[command(name = "bdev_null_delete")]
    BdevNullDelete {
        /// Name of null bdev.
        name: String,
    },
    /// Create a bdev on a file or block device, with Linux AIO (O_DIRECT).
    #[command(name = "bdev_aio_create")]
    BdevAioCreate {
        /// Path of the file or device.
        filename: String,
        /// Block device name.
        name: String,
        /// Block size for this bdev (default 512).
        block_size: Option<u32>,
        /// UUID of the bdev.
        #[arg(short = 'u', long = "uuid")]
        uuid: Option<String>,
    },
    /// Delete an AIO bdev.
    #[command(name = "bdev_aio_delete")]
    BdevAioDelete {
        /// Name of the AIO bdev.
        name: String,
    },
    /// Display current blockdev list or the required blockdev.
    #[command(name = "bdev_get_bdevs")]
    BdevGetBdevs {
        /// Name of the blockdev.
        #[arg(short = 'b', long = "name")]
        name: Option<String>,
    },
    /// Create an NVMe-oF subsystem.
    #[command(name = "nvmf_create_subsystem")]
    NvmfCreateSubsystem {
        /// Subsystem NQN.
        nqn: String,
        /// Serial number of the virtual NVMe controller.
        #[arg(short = 's', long = "serial-number")]
        serial_number: Option<String>,
        /// Model number of the virtual NVMe controller.
        #[arg(short = 'd', long = "model-number")]
        model_number: Option<String>,
        /// Allow any host to connect.
        #[arg(short = 'a', long = "allow-any-host")]
        allow_any_host: bool,
        /// Maximum number of namespaces.
        #[arg(short = 'm', long = "max-namespaces")]
        max_namespaces: Option<u32>,
        /// Enable ANA reporting.
        #[arg(short = 'r', long = "ana-reporting")]
        ana_reporting: bool,
        /// Minimum controller ID.
        #[arg(short = 'i', long = "min-cntlid")]
        min_cntlid: Option<u16>,
        /// Maximum controller ID.
        #[arg(short = 'I', long = "max-cntlid")]
        max_cntlid: Option<u16>,
    },
    /// Delete an NVMe-oF subsystem.
    #[command(name = "nvmf_delete_subsystem")]
    NvmfDeleteSubsystem {
        /// Subsystem NQN.
        nqn: String,
    },
    /// Add a namespace to an NVMe-oF subsystem.
    #[command(name = "nvmf_subsystem_add_ns")]
    NvmfSubsystemAddNs {
        /// Subsystem NQN.
        nqn: String,
        /// Name of the bdev to expose as a namespace.
        bdev_name: String,
        /// Namespace ID.
        #[arg(short = 'n', long = "nsid")]
        nsid: Option<u32>,
        /// Namespace UUID.
        #[arg(short = 'u', long = "uuid")]
        uuid: Option<String>,
        /// 16-byte namespace globally unique identifier in hexadecimal.
        #[arg(short = 'g', long = "nguid")]
        nguid: Option<String>,
        /// ANA group ID (default: the NSID).
        #[arg(short = 'a', long = "anagrpid")]
        anagrpid: Option<u32>,
    },
    /// Remove a namespace from an NVMe-oF subsystem.
    #[command(name = "nvmf_subsystem_remove_ns")]
    NvmfSubsystemRemoveNs {
        /// Subsystem NQN.
        nqn: String,
        /// Namespace ID.
        nsid: u32,
    },
    /// Set the ANA state of a listener (all its ANA groups, or one).
    #[command(name = "nvmf_subsystem_listener_set_ana_state")]
    NvmfSubsystemListenerSetAnaState {
        #[command(flatten)]
        listener: ListenerArgs,
        /// ANA state: optimized, non_optimized, inaccessible.
        #[arg(short = 'n', long = "ana-state")]
        ana_state: String,
        /// ANA group ID (default: every group).
        #[arg(short = 'g', long = "anagrpid")]
        anagrpid: Option<u32>,
    },
    /// Display the listeners of an NVMe-oF subsystem, with their ANA states.
    #[command(name = "nvmf_subsystem_get_listeners")]
    NvmfSubsystemGetListeners {
        /// Subsystem NQN.
        nqn: String,
    },
    /// Display the controllers of an NVMe-oF subsystem.
    #[command(name = "nvmf_subsystem_get_controllers")]
    NvmfSubsystemGetControllers {
        /// Subsystem NQN.
        nqn: String,
    },
    /// Add a listener to an NVMe-oF subsystem.
    #[command(name = "nvmf_subsystem_add_listener")]
    NvmfSubsystemAddListener(ListenerArgs),
    /// Remove a listener from an NVMe-oF subsystem.
    #[command(name = "nvmf_subsystem_remove_listener")]
    NvmfSubsystemRemoveListener(ListenerArgs),
    /// Add a host to an NVMe-oF subsystem's allowed list.
    #[command(name = "nvmf_subsystem_add_host")]
    NvmfSubsystemAddHost {
        /// Subsystem NQN.
        nqn: String,
        /// Host NQN.
        host: String,
    },
    /// Remove a host from an NVMe-oF subsystem's allowed list.
    #[command(name = "nvmf_subsystem_remove_host")]
    NvmfSubsystemRemoveHost {
        /// Subsystem NQN.
        nqn: String,
        /// Host NQN.
        host: String,
    },
    /// Display NVMe-oF subsystems or the required subsystem.
    #[command(name = "nvmf_get_subsystems")]
    NvmfGetSubsystems {
        /// Subsystem NQN.
        nqn: Option<String>,
    },
    /// Display reactors and their threads.
    #[command(name = "framework_get_reactors")]
    FrameworkGetReactors,
    /// List the RPC methods the server answers.
    #[command(name = "rpc_get_methods")]
    RpcGetMethods,
    /// Display the server's version.
    #[command(name = "spdk_get_version")]
    SpdkGetVersion,
    /// Print the configuration as replayable JSON (load it with corepath-tgt -c).
    #[command(name = "save_config")]
    SaveConfig,
    /// The host's bdev_nvme_* methods (corepath-bench --rpc-socket serves them).
    #[command(flatten)]
    Host(corepath_rpc::HostCommand),
    /// Call any method with optional JSON parameters.
    #[command(name = "call")]
    Call {
        /// Method name.
        method: String,
        /// Parameters as a JSON object.
        params: Option<String>,
    },
}

#[derive(clap::Args)]
struct ListenerArgs {
    /// Subsystem NQN ('discovery' is the discovery subsystem).
    nqn: String,
    /// NVMe-oF transport type: e.g. tcp, rdma.
    #[arg(short = 't', long = "trtype")]
    trtype: String,
    /// NVMe-oF transport address: e.g. an IP address.
    #[arg(short = 'a', long = "traddr")]
    traddr: String,
    /// NVMe-oF transport service ID: e.g. a port number.
    #[arg(short = 's', long = "trsvcid")]
    trsvcid: Option<String>,
    /// NVMe-oF address family: ipv4, ipv6.
    #[arg(short = 'f', long = "adrfam")]
    adrfam: Option<String>,
}

/// How rpc.py shows a method's result.
enum Output {
    /// `print_dict`: JSON, 2-space indent.
    Dict,
    /// `print_json`: as Dict, but a bare string loses its quotes.
    Json,
    /// Nothing (the method's result is just `true`).
    Nothing,
}

/// Builds a params object, leaving out `None`s as rpc.py does.
fn params(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect();
    Value::Object(map)
}

fn some<T: Into<Value>>(v: T) -> Option<Value> {
    Some(v.into())
}

fn opt<T: Into<Value>>(v: Option<T>) -> Option<Value> {
    v.map(Into::into)
}

/// A store_true flag: rpc.py sends it whether set or not.
fn flag(on: bool) -> Option<Value> {
    Some(Value::Bool(on))
}

fn discovery_alias(nqn: String) -> String {
    if nqn == "discovery" {
        "nqn.2014-08.org.nvmexpress.discovery".to_string()
    } else {
        nqn
    }
}

fn listener_params(args: ListenerArgs) -> Value {
    let address = params(vec![
        ("trtype", some(args.trtype)),
        ("traddr", some(args.traddr)),
        ("trsvcid", opt(args.trsvcid)),
        ("adrfam", opt(args.adrfam)),
    ]);
    json!({"nqn": discovery_alias(args.nqn), "listen_address": address})
}

/// The method, its params, and how to print the result.
fn request(command: Command) -> anyhow::Result<(String, Value, Output)> {
    let (method, params, output) = match command {
        Command::NvmfCreateTransport {
            trtype,
            max_queue_depth,
            max_io_qpairs_per_ctrlr,
            in_capsule_data_size,
            max_io_size,
            io_unit_size,
            disable_c2h_success,
        } => (
            "nvmf_create_transport",
            params(vec![
                ("trtype", some(trtype.to_ascii_uppercase())),
                ("max_queue_depth", opt(max_queue_depth)),
                ("max_io_qpairs_per_ctrlr", opt(max_io_qpairs_per_ctrlr)),
                ("in_capsule_data_size", opt(in_capsule_data_size)),
                ("max_io_size", opt(max_io_size)),
                ("io_unit_size", opt(io_unit_size)),
                // As SPDK's rpc.py: -o/--c2h-success turns it off; otherwise the server's default (on).
                ("c2h_success", disable_c2h_success.then_some(json!(false))),
            ]),
            Output::Nothing,
        ),
        Command::NvmfGetTransports { trtype } => {
            ("nvmf_get_transports", params(vec![("trtype", opt(trtype))]), Output::Dict)
        }
        Command::BdevMallocCreate { total_size, block_size, name, uuid } => {
            if !total_size.is_finite() || total_size <= 0.0 || block_size == 0 {
                bail!("total_size must be > 0 and block_size must be > 0");
            }
            // rpc.py: num_blocks = int(total_size * 1024 * 1024 // block_size)
            let num_blocks = (total_size * 1024.0 * 1024.0 / f64::from(block_size)).floor() as u64;
            (
                "bdev_malloc_create",
                params(vec![
                    ("num_blocks", some(num_blocks)),
                    ("block_size", some(block_size)),
                    ("name", opt(name)),
                    ("uuid", opt(uuid)),
                ]),
                Output::Json,
            )
        }
        Command::BdevMallocDelete { name } => ("bdev_malloc_delete", json!({"name": name}), Output::Nothing),
        Command::BdevNullCreate { name, total_size, block_size, uuid } => {
            if block_size == 0 {
                bail!("block_size must be > 0");
            }
            let num_blocks = total_size
                .checked_mul(1024 * 1024)
                .map(|bytes| bytes / u64::from(block_size))
                .context("total_size too large")?;
            (
                "bdev_null_create",
                params(vec![
                    ("num_blocks", some(num_blocks)),
                    ("block_size", some(block_size)),
                    ("name", some(name)),
                    ("uuid", opt(uuid)),
                ]),
                Output::Json,
            )
        }
        Command::BdevNullDelete { name } => ("bdev_null_delete", json!({"name": name}), Output::Nothing),
        Command::BdevAioCreate { filename, name, block_size, uuid } => (
            "bdev_aio_create",
            params(vec![
                ("filename", some(filename)),
                ("name", some(name)),
                ("block_size", opt(block_size)),
                ("uuid", opt(uuid)),
            ]),
            Output::Json,
        ),
        Command::BdevAioDelete { name } => ("bdev_aio_delete", json!({"name": name}), Output::Nothing),
        Command::BdevGetBdevs { name } => ("bdev_get_bdevs", params(vec![("name", opt(name))]), Output::Dict),
        Command::NvmfCreateSubsystem {
            nqn,
            serial_number,
            model_number,
            allow_any_host,
            max_namespaces,
            ana_reporting,
            min_cntlid,
            max_cntlid,
        } => (
            "nvmf_create_subsystem",
            params(vec![
                ("nqn", some(nqn)),
                ("serial_number", opt(serial_number)),
                ("model_number", opt(model_number)),
                ("allow_any_host", flag(allow_any_host)),
                ("max_namespaces", opt(max_namespaces)),
                ("ana_reporting", flag(ana_reporting)),
                ("min_cntlid", opt(min_cntlid)),
                ("max_cntlid", opt(max_cntlid)),
            ]),
            Output::Nothing,
        ),
        Command::NvmfDeleteSubsystem { nqn } => ("nvmf_delete_subsystem", json!({"nqn": nqn}), Output::Nothing),
        Command::NvmfSubsystemAddNs { nqn, bdev_name, nsid, uuid, nguid, anagrpid } => {
            let namespace = params(vec![
                ("bdev_name", some(bdev_name)),
                ("nsid", opt(nsid)),
                ("uuid", opt(uuid)),
                ("nguid", opt(nguid)),
                ("anagrpid", opt(anagrpid)),
            ]);
            ("nvmf_subsystem_add_ns", json!({"nqn": nqn, "namespace": namespace}), Output::Nothing)
        }
        Command::NvmfSubsystemRemoveNs { nqn, nsid } => {
            ("nvmf_subsystem_remove_ns", json!({"nqn": nqn, "nsid": nsid}), Output::Nothing)
        }
        Command::NvmfSubsystemListenerSetAnaState { listener, ana_state, anagrpid } => {
            let mut p = listener_params(listener);
            if let Some(o) = p.as_object_mut() {
                o.insert("ana_state".into(), json!(ana_state));
                if let Some(g) = anagrpid {
                    o.insert("anagrpid".into(), json!(g));
                }
            }
            ("nvmf_subsystem_listener_set_ana_state", p, Output::Nothing)
        }
        Command::NvmfSubsystemGetListeners { nqn } => {
            ("nvmf_subsystem_get_listeners", json!({"nqn": discovery_alias(nqn)}), Output::Dict)
        }
        Command::NvmfSubsystemGetControllers { nqn } => {
            ("nvmf_subsystem_get_controllers", json!({"nqn": discovery_alias(nqn)}), Output::Dict)
        }
        Command::NvmfSubsystemAddListener(args) => {
            ("nvmf_subsystem_add_listener", listener_params(args), Output::Nothing)
        }
        Command::NvmfSubsystemRemoveListener(args) => {
            ("nvmf_subsystem_remove_listener", listener_params(args), Output::Nothing)
        }
        Command::NvmfSubsystemAddHost { nqn, host } => {
            ("nvmf_subsystem_add_host", json!({"nqn": nqn, "host": host}), Output::Nothing)
        }
        Command::NvmfSubsystemRemoveHost { nqn, host } => {
            ("nvmf_subsystem_remove_host", json!({"nqn": nqn, "host": host}), Output::Nothing)
        }
        Command::NvmfGetSubsystems { nqn } => ("nvmf_get_subsystems", params(vec![("nqn", opt(nqn))]), Output::Dict),
        Command::FrameworkGetReactors => ("framework_get_reactors", json!({}), Output::Dict),
        Command::RpcGetMethods => ("rpc_get_methods", json!({}), Output::Dict),
        Command::SpdkGetVersion => ("spdk_get_version", json!({}), Output::Dict),
        Command::SaveConfig => ("save_config", json!({}), Output::Dict),
        Command::Host(command) => {
            let r = command.into_request();
            let output = if r.prints_result { Output::Dict } else { Output::Nothing };
            return Ok((r.method.to_string(), r.params, output));
        }
        Command::Call { method, params } => {
            let params = match params {
                Some(text) => serde_json::from_str(&text).with_context(|| format!("params '{text}' are not JSON"))?,
                None => json!({}),
            };
            return Ok((method, params, Output::Dict));
        }
    };
    Ok((method.to_string(), params, output))
}

fn print_result(result: &Value, output: Output) -> anyhow::Result<()> {
    match (output, result) {
        (Output::Nothing, _) => {}
        (Output::Json, Value::String(s)) => println!("{s}"),
        (Output::Json | Output::Dict, value) => println!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (method, params, output) = request(cli.command)?;
    let mut client =
        RpcClient::connect(&cli.server).with_context(|| format!("is the target running on {}?", cli.server))?;
    if cli.timeout.is_finite() && cli.timeout > 0.0 {
        client.set_timeout(Duration::from_secs_f64(cli.timeout.min(1e9)))?;
    }
    let req_id = client.next_request_id();
    match client.call(&method, Some(params.clone())) {
        Ok(result) => {
            print_result(&result, output)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Rpc(error)) => {
            // rpc.py's format: the request's params plus method and req_id, then the error object.
            let mut shown = match params {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            shown.insert("method".into(), json!(method));
            shown.insert("req_id".into(), json!(req_id));
            eprintln!("request:");
            eprintln!("{}", serde_json::to_string_pretty(&Value::Object(shown))?);
            eprintln!("Got JSON-RPC error response");
            eprintln!("response:");
            eprintln!("{}", serde_json::to_string_pretty(&error.to_json())?);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).with_context(|| format!("{method} on {}", cli.server)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
