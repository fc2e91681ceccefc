//! `corepath-bench`'s engine-independent core: command line, IO generation,
//! data verification, statistics and fio-compatible reports. The engine glue
//! (connecting, pinning cores, submitting IO) lives in [`glue`] and uses
//! [`job::Job`] per core.
#![warn(missing_docs, unreachable_pub)]

pub mod job;
pub mod size;
pub mod stats;
pub mod verify;
pub mod workload;
