//! rsslab: a reproducible lab for Linux memory behaviour of services.
//!
//! The pipeline, one module per arrow of DESIGN.md's data flow:
//!
//! ```text
//! scenario (parse + validate) -> plan (matrix x kernels) -> kernel + image (fetch, initramfs)
//!   -> vm (QEMU, deadline, console) -> collect (channel -> RunRecord, raw files first)
//!   -> results (results.json) -> report (index.html), export (junit.xml, summary.md)
//! ```
//!
//! [`lab::run_lab`] drives it top to bottom ([`resume`] finishes a lab that did not finish);
//! the CLI in `main.rs` is a thin layer over it.

pub mod cache;
pub mod catalog;
pub mod collect;
pub mod cpio;
pub mod deb;
pub mod diff;
pub mod doctor;
pub mod execute;
pub mod exit;
pub mod expect;
pub mod export;
pub mod fetch;
pub mod gobuild;
pub mod image;
pub mod images;
pub mod kernel;
pub mod lab;
pub mod merge;
pub mod modules;
pub mod plan;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod report;
pub mod results;
pub mod resume;
pub mod scenario;
pub mod shard;
pub mod toolchain;
pub mod unpacked;
pub mod vm;
pub mod vmlinux;
