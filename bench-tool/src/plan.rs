//! Turns a [`BenchConfig`] and the namespace's geometry (known only after
//! connecting) into one [`JobSpec`] per core.

use crate::cli::BenchConfig;
use crate::job::{JobSpec, VerifySpec};
use crate::verify::{UnwrittenPolicy, STAMP_HEADER_BYTES};
use crate::workload::{job_region, job_seed, splitmix64};

/// What the glue learns about the namespace from Identify Namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceGeometry {
    /// Logical block size in bytes (from the LBA format in use).
    pub block_size_bytes: u32,
    /// Namespace size in logical blocks (NSZE).
    pub num_blocks: u64,
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
    /// `--offset` not on a block boundary.
    #[error("--offset {offset_bytes} is not a multiple of the namespace block size {block_size_bytes}")]
    OffsetNotBlockAligned {
        /// `--offset`.
        offset_bytes: u64,
        /// Namespace block size.
        block_size_bytes: u32,
    },
    /// The region reaches past the namespace.
    #[error("--offset {offset_bytes} + --size {size_bytes} exceeds the namespace ({namespace_bytes} bytes)")]
    RegionBeyondNamespace {
        /// `--offset`.
        offset_bytes: u64,
        /// Region size.
        size_bytes: u64,
        /// Namespace size.
        namespace_bytes: u64,
    },
    /// Some job's share of the region is smaller than one IO.
    #[error("a region of {size_bytes} bytes gives {jobs} jobs less than one --bs each")]
    RegionTooSmall {
        /// Region size.
        size_bytes: u64,
        /// Number of jobs.
        jobs: u32,
    },
    /// The block size cannot hold a verify stamp.
    #[error("namespace block size {0} is too small to verify")]
    BlockTooSmallToVerify(u32),
}

/// One job per core of `config.cores`, in that order. Without `--verify` all
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
    if config.verify && ((block as usize) < STAMP_HEADER_BYTES || block % 8 != 0) {
        return Err(PlanError::BlockTooSmallToVerify(block));
    }
    let namespace_bytes = ns.size_bytes();
    let offset = config.region_offset_bytes;
    let size = config.region_size_bytes.unwrap_or(namespace_bytes.saturating_sub(offset));
    let fits = matches!(offset.checked_add(size), Some(end) if end <= namespace_bytes);
    if !fits {
        return Err(PlanError::RegionBeyondNamespace { offset_bytes: offset, size_bytes: size, namespace_bytes });
    }
    let jobs = config.cores.len() as u32;
    let unwritten = if config.verify_expect_zero { UnwrittenPolicy::Zeroed } else { UnwrittenPolicy::Unknown };
    config
        .cores
        .iter()
        .enumerate()
        .map(|(index, &core)| {
            let job_index = index as u32;
            let region = job_region(offset, size, io, jobs, job_index, config.verify)
                .ok_or(PlanError::RegionTooSmall { size_bytes: size, jobs })?;
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

    const NS: NamespaceGeometry = NamespaceGeometry { block_size_bytes: 512, num_blocks: 2048 }; // 1 MiB

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
        let big_blocks = NamespaceGeometry { block_size_bytes: 4096, num_blocks: 256 };
        assert!(matches!(plan_jobs(&config(&["--bs=512"]), big_blocks, 0), Err(PlanError::BsNotBlockMultiple { .. })));
        assert!(matches!(
            plan_jobs(&config(&["--offset=1k"]), big_blocks, 0),
            Err(PlanError::OffsetNotBlockAligned { .. })
        ));
        assert!(matches!(
            plan_jobs(&config(&["--offset=512k", "--size=1m"]), NS, 0),
            Err(PlanError::RegionBeyondNamespace { .. })
        ));
        assert!(matches!(plan_jobs(&config(&["--offset=2m"]), NS, 0), Err(PlanError::RegionBeyondNamespace { .. })));
        assert!(matches!(
            plan_jobs(&config(&["--verify", "--cpumask=0xff", "--size=16k", "--bs=4k"]), NS, 0),
            Err(PlanError::RegionTooSmall { jobs: 8, .. })
        ));
        // The default size runs from --offset to the end.
        let specs = plan_jobs(&config(&["--offset=512k"]), NS, 0).unwrap();
        assert_eq!(specs[0].region, Region { start_bytes: 512 << 10, len_bytes: 512 << 10 });
    }
}
