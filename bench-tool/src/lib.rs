//! `corepath-bench`'s engine-independent core: command line, IO generation,
//! data verification, statistics, live status and fio-compatible reports.
//! Connecting to the engine and driving one [`job::Job`] per core is the
//! [`glue`]'s business.
#![warn(missing_docs, unreachable_pub)]
// `u64::is_multiple_of` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

pub mod cli;
pub mod embedded;
pub mod failover;
pub mod final_pass;
pub mod glue;
pub mod job;
pub mod mpglue;
pub mod plan;
pub mod report;
pub mod size;
pub mod stats;
pub mod status;
pub mod verify;
pub mod workload;
