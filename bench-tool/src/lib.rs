//! `corepath-bench`'s engine-independent core: command line, IO generation,
//! data verification, statistics, live status and fio-compatible reports.
//!
//! A run reads top to bottom: [`cli`] (the command line) → [`plan`] (one
//! [`job::JobSpec`] per core) → [`run`] (embedded gateways from [`embedded`],
//! or remote paths) → one `core_job::BenchCoreJob` per core over an
//! `io_source::IoSource`, the raw [`single_path`] or the [`multipath_run`]
//! channel → [`stats`] → [`report`].
#![warn(missing_docs, unreachable_pub)]
// `u64::is_multiple_of` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

pub mod cli;
mod core_job;
pub mod embedded;
pub mod failover;
pub mod final_pass;
pub mod io_source;
pub mod job;
pub mod multipath_run;
pub mod plan;
pub mod report;
pub mod run;
pub mod single_path;
pub mod size;
pub mod stats;
pub mod status;
pub mod sys;
pub mod verify;
pub mod workload;
