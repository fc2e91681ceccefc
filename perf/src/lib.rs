//! Benchmark harness and reports: the loopback request/response floor that
//! corepath's figures are compared against, and the scripts that run the
//! benchmark table (`perf/run.sh`). Owns no IO path of its own.
