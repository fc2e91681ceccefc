//! Turns a [`BenchConfig`] and the namespace's geometry (known only after
//! connecting) into one [`JobSpec`] per core.

use crate::cli::BenchConfig;
use crate::job::{JobSpec, VerifySpec};
use crate::size::format_size;
use crate::verify::{UnwrittenPolicy, STAMP_HEADER_BYTES};
use crate::workload::{job_region, job_seed, splitmix64};

/// What the glue learns about the namespace from Identify Namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceGeometry {
    /// Logical block size in bytes (from the LBA format in use).
    pub block_size_bytes: u32,
    /// Namespace size in logical blocks (NSZE).
    pub num_blocks: u64,
    /// Largest transfer of one command (the controller's MDTS; with several
    /// paths, the smallest of them); `u32::MAX` when the controller sets none.
    pub max_transfer_bytes: u32,
}

impl NamespaceGeometry {
    /// Namespace size in bytes (saturating).
    pub fn size_bytes(&self) -> u64 {
        self.num_blocks.saturating_mul(u64::from(self.block_size_bytes))
    }
}

/// Why the configuration does not fit the namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--bs` is not a multiple of the namespace's block size.
    #[error("--bs {io_size_bytes} is not a multiple of the namespace block size {block_size_bytes}")]
    BsNotBlockMultiple {
        /// `--bs`.
        io_size_bytes: u32,
        /// Namespace block size.
        block_size_bytes: u32,
    },
    /// `--bs` above what one command may carry (the controller's MDTS).
    #[error(
        "--bs {} ({io_size_bytes} bytes) is above the controller's maximum data transfer size (MDTS) of {} \
         ({max_transfer_bytes} bytes): use --bs {} or less",
        format_size(u64::from(*io_size_bytes)),
        format_size(u64::from(*max_transfer_bytes)),
        format_size(u64::from(*max_transfer_bytes))
    )]
    BsAboveMaxTransfer {
        /// `--bs`.
        io_size_bytes: u32,
        /// The controller's limit.
        max_transfer_bytes: u32,
    },
    /// `--offset` not on a block boundary.
    #[error("--offset {offset_bytes} is not a multiple of the namespace block size {block_size_bytes}")]
    OffsetNotBlockAligned {
        /// `--offset`.
        offset_bytes: u64,
        /// Namespace block size.
        block_size_bytes: u32,
    },
    /// `--offset` at or past the end of the namespace (no `--size` given).
    #[error(
        "--offset {} ({offset_bytes} bytes) is at or past the end of the namespace ({}, {namespace_bytes} bytes)",
        format_size(*offset_bytes),
        format_size(*namespace_bytes)
    )]
    OffsetBeyondNamespace {
        /// `--offset`.
        offset_bytes: u64,
        /// Namespace size.
        namespace_bytes: u64,
    },
    /// The region reaches past the namespace.
    #[error(
        "--offset {} + --size {} ends at byte {}, past the end of the namespace ({}, {namespace_bytes} bytes)",
        format_size(*offset_bytes),
        format_size(*size_bytes),
        offset_bytes.saturating_add(*size_bytes),
        format_size(*namespace_bytes)
    )]
    RegionBeyondNamespace {
        /// `--offset`.
        offset_bytes: u64,
        /// Region size.
        size_bytes: u64,
        /// Namespace size.
        namespace_bytes: u64,
    },
    /// Some job's share of the region is smaller than one IO.
    #[error("{}", region_too_small(*size_bytes, *jobs, *io_size_bytes, *split))]
    RegionTooSmall {
        /// Region size.
        size_bytes: u64,
        /// Number of jobs.
        jobs: u32,
        /// `--bs`.
        io_size_bytes: u32,
        /// Whether the jobs split the region (`--verify`) or share it.
        split: bool,
    },
    /// The block size cannot hold a verify stamp.
    #[error("namespace block size {0} is too small to verify")]
    BlockTooSmallToVerify(u32),
}

fn region_too_small(size_bytes: u64, jobs: u32, io_size_bytes: u32, split: bool) -> String {
    let (size, bs) = (format_size(size_bytes), format_size(u64::from(io_size_bytes)));
    if split && jobs > 1 {
        format!(
            "the region of {size} ({size_bytes} bytes), split among {jobs} jobs as --verify does, leaves each job \
             less than one --bs ({bs}): make --size at least {} or use fewer jobs",
            format_size(u64::from(io_size_bytes) * u64::from(jobs))
        )
    } else {
        format!("the region of {size} ({size_bytes} bytes) is smaller than one --bs ({bs}): make --size at least {bs}")
    }
}

/// One job per entry of `config.job_cores()` (one per core of the mask, or
/// `--numjobs` of them on those cores in turn), in that order. Without `--verify` all
/// jobs share the whole region (as fio's jobs do); with it, each gets a
/// disjoint share. `run_nonce` makes this run's verify stamps differ from any
/// earlier run's (pass e.g. the start time); it does not affect which IOs are
/// generated.
pub fn plan_jobs(config: &BenchConfig, ns: NamespaceGeometry, run_nonce: u64) -> Result<Vec<JobSpec>, PlanError> {
    let block = ns.block_size_bytes;
    let io = config.io_size_bytes;
    if block == 0 || io % block != 0 {
        return Err(PlanError::BsNotBlockMultiple { io_size_bytes: io, block_size_bytes: block });
    }
    if config.region_offset_bytes % u64::from(block) != 0 {
        return Err(PlanError::OffsetNotBlockAligned {
            offset_bytes: config.region_offset_bytes,
            block_size_bytes: block,
        });
    }
    if io > ns.max_transfer_bytes {
        return Err(PlanError::BsAboveMaxTransfer { io_size_bytes: io, max_transfer_bytes: ns.max_transfer_bytes });
    }
    if config.verify && ((block as usize) < STAMP_HEADER_BYTES || block % 8 != 0) {
        return Err(PlanError::BlockTooSmallToVerify(block));
    }
    let namespace_bytes = ns.size_bytes();
    let offset = config.region_offset_bytes;
    if config.region_size_bytes.is_none() && offset >= namespace_bytes {
        return Err(PlanError::OffsetBeyondNamespace { offset_bytes: offset, namespace_bytes });
    }
    let size = config.region_size_bytes.unwrap_or(namespace_bytes.saturating_sub(offset));
    let fits = matches!(offset.checked_add(size), Some(end) if end <= namespace_bytes);
    if !fits {
        return Err(PlanError::RegionBeyondNamespace { offset_bytes: offset, size_bytes: size, namespace_bytes });
    }
    let job_cores = config.job_cores();
    let jobs = job_cores.len() as u32;
    let unwritten = if config.verify_expect_zero { UnwrittenPolicy::Zeroed } else { UnwrittenPolicy::Unknown };
    job_cores
        .iter()
        .enumerate()
        .map(|(index, &core)| {
            let job_index = index as u32;
            let region = job_region(offset, size, io, jobs, job_index, config.verify)
                .ok_or(PlanError::RegionTooSmall { size_bytes: size, jobs, io_size_bytes: io, split: config.verify })?;
            let seed = job_seed(config.seed, job_index);
            Ok(JobSpec {
                job_index,
                core,
                pattern: config.pattern,
                rwmixread_pct: config.rwmixread_pct,
                io_size_bytes: io,
                block_size_bytes: block,
                region,
                iodepth: config.iodepth,
                seed,
                verify: config.verify.then(|| VerifySpec {
                    stamp_tag: splitmix64(seed ^ run_nonce),
                    unwritten,
                    final_pass: config.verify_final_pass,
                }),
                ramp_ns: config.ramp_ns,
                runtime_ns: config.runtime_ns,
                rate_interval_ns: config.rate_iops.and_then(|r| r.interval_ns(config.pattern, config.rwmixread_pct)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Region;

    fn config(args: &[&str]) -> BenchConfig {
        BenchConfig::parse_from(std::iter::once("corepath-bench").chain(args.iter().copied())).unwrap()
    }

    const NS: NamespaceGeometry =
        NamespaceGeometry { block_size_bytes: 512, num_blocks: 2048, max_transfer_bytes: 1 << 20 }; // 1 MiB

    #[test]
    fn unverified_jobs_share_the_region_and_differ_in_seed() {
        let specs = plan_jobs(&config(&["--cpumask=0x6", "--rw=randread"]), NS, 1).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[0].core, specs[1].core), (1, 2));
        assert_eq!(specs[0].region, Region { start_bytes: 0, len_bytes: 1 << 20 });
        assert_eq!(specs[0].region, specs[1].region);
        assert_ne!(specs[0].seed, specs[1].seed);
        assert!(specs[0].verify.is_none());
    }

    #[test]
    fn the_final_pass_reaches_every_verified_job() {
        let specs = plan_jobs(&config(&["--cpumask=0x3", "--verify", "--verify_final_pass"]), NS, 1).unwrap();
        assert!(specs.iter().all(|s| s.verify.is_some_and(|v| v.final_pass)));
        let specs = plan_jobs(&config(&["--verify"]), NS, 1).unwrap();
        assert!(specs.iter().all(|s| s.verify.is_some_and(|v| !v.final_pass)));
    }

    #[test]
    fn verified_jobs_get_disjoint_regions_and_distinct_stamps() {
        let c = config(&["--cpumask=[0-2]", "--verify", "--offset=64k", "--size=512k", "--bs=8k"]);
        let specs = plan_jobs(&c, NS, 77).unwrap();
        let regions: Vec<Region> = specs.iter().map(|s| s.region).collect();
        for pair in regions.windows(2) {
            assert_eq!(pair[0].start_bytes + pair[0].len_bytes, pair[1].start_bytes);
        }
        assert_eq!(regions[0].start_bytes, 64 << 10);
        assert!(regions.iter().all(|r| r.len_bytes % (8 << 10) == 0 && r.len_bytes > 0));
        assert!(regions[2].start_bytes + regions[2].len_bytes <= (64 + 512) << 10);
        let tags: Vec<u64> = specs.iter().map(|s| s.verify.unwrap().stamp_tag).collect();
        assert_ne!(tags[0], tags[1]);
        let again = plan_jobs(&c, NS, 78).unwrap();
        assert_ne!(again[0].verify.unwrap().stamp_tag, tags[0], "a new run stamps differently");
        assert_eq!(again[0].seed, specs[0].seed, "but generates the same IOs");
    }

    #[test]
    fn checks_the_config_against_the_namespace() {
        let big_blocks = NamespaceGeometry { block_size_bytes: 4096, num_blocks: 256, max_transfer_bytes: u32::MAX };
        assert!(matches!(plan_jobs(&config(&["--bs=512"]), big_blocks, 0), Err(PlanError::BsNotBlockMultiple { .. })));
        assert!(matches!(
            plan_jobs(&config(&["--offset=1k"]), big_blocks, 0),
            Err(PlanError::OffsetNotBlockAligned { .. })
        ));
        assert!(matches!(
            plan_jobs(&config(&["--offset=512k", "--size=1m"]), NS, 0),
            Err(PlanError::RegionBeyondNamespace { .. })
        ));
        assert!(matches!(plan_jobs(&config(&["--offset=2m"]), NS, 0), Err(PlanError::OffsetBeyondNamespace { .. })));
        assert!(matches!(
            plan_jobs(&config(&["--verify", "--cpumask=0xff", "--size=16k", "--bs=4k"]), NS, 0),
            Err(PlanError::RegionTooSmall { jobs: 8, .. })
        ));
        // The default size runs from --offset to the end.
        let specs = plan_jobs(&config(&["--offset=512k"]), NS, 0).unwrap();
        assert_eq!(specs[0].region, Region { start_bytes: 512 << 10, len_bytes: 512 << 10 });
    }

    #[test]
    fn errors_name_what_was_given_in_words() {
        let err = plan_jobs(&config(&["--offset=2m"]), NS, 0).unwrap_err().to_string();
        assert_eq!(err, "--offset 2m (2097152 bytes) is at or past the end of the namespace (1m, 1048576 bytes)");
        assert!(!err.contains("--size"), "{err}");
        let err = plan_jobs(&config(&["--size=2k", "--bs=4k"]), NS, 0).unwrap_err().to_string();
        assert_eq!(err, "the region of 2k (2048 bytes) is smaller than one --bs (4k): make --size at least 4k");
        let err = plan_jobs(&config(&["--verify", "--cpumask=0xff", "--size=16k"]), NS, 0).unwrap_err().to_string();
        assert!(err.contains("split among 8 jobs as --verify does"), "{err}");
        assert!(err.contains("make --size at least 32k"), "{err}");
        let err = plan_jobs(&config(&["--offset=512k", "--size=1m"]), NS, 0).unwrap_err().to_string();
        assert!(err.starts_with("--offset 512k + --size 1m ends at byte 1572864, past the end"), "{err}");
    }

    #[test]
    fn bs_above_the_controllers_mdts_is_refused_naming_the_limit() {
        let ns = NamespaceGeometry { block_size_bytes: 4096, num_blocks: 1 << 20, max_transfer_bytes: 1 << 20 };
        let err = plan_jobs(&config(&["--bs=2m"]), ns, 0).unwrap_err();
        assert_eq!(err, PlanError::BsAboveMaxTransfer { io_size_bytes: 2 << 20, max_transfer_bytes: 1 << 20 });
        assert!(err.to_string().contains("maximum data transfer size (MDTS) of 1m"), "{err}");
        assert!(plan_jobs(&config(&["--bs=1m"]), ns, 0).is_ok());
    }
}
