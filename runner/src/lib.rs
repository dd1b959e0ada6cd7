//! rsslab: a reproducible lab for Linux memory behaviour of services.
//!
//! The source tree is the pipeline. Each folder is one stage, listed here in the order the
//! data flows; a module uses only the modules listed above it, never one below (so there is no
//! import circle), and a stage's output type is named after what it is:
//!
//! ```text
//! exit       exit codes, and the error that carries one  -> Failure        (every stage's)
//! files      writing a file whole (temporary, sync, rename)               (every stage's)
//! elf        ELF files: programs, their loader and libraries, sections      (every stage's)
//! catalogue  kernels.toml, go-toolchains.toml, versions  -> Catalogue, GoCatalogue
//! scenario   scenarios/*.toml, parsed and validated      -> Scenario (with its [[expect]])
//! plan       scenarios x kernels x matrix, shards        -> Plan (one RunPlan per VM)
//! supply     Debian's archive, verified, cached          -> KernelFiles, GoRoot, Go binaries
//! image      agent + workloads + modules (no run spec)   -> Image (initramfs)
//! vm         QEMU (KVM or TCG), deadline, snapshots      -> VmOutput
//! records    the guest channel, written first            -> RunRecord on disk, LoadedRun
//! analysis   records -> verdicts                         -> ExpectationResult, Results, Comparison
//! output     results -> files                            -> Outputs: results.json, index.html, ...
//! lab        drives the stages: run, resume, merge       -> LabSummary
//! ```
//!
//! `runner/tests/layout.rs` holds the code to this map (the first word of each line above is
//! a module, in order; the declarations below are alphabetical, as rustfmt keeps them), and
//! checks that the files of one folder do not import each other in a circle either. The CLI
//! in `main.rs` is a thin layer over [`lab`] and the stages' entry functions.

pub mod analysis;
pub mod catalogue;
pub mod elf;
pub mod exit;
pub mod files;
pub mod image;
pub mod lab;
pub mod output;
pub mod plan;
pub mod records;
pub mod scenario;
pub mod supply;
pub mod vm;
