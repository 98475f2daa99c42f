//! proctor grades ML-engineering take-home submissions: it builds the candidate's model service
//! in a sandbox, drives it with scripted HTTP checks and load, and writes a grade report.
//!
//! The modules follow the run (see `pipeline` and docs/architecture.md, whose module map
//! `tests/architecture.rs` checks): `intake` → `sandbox` → `target` → `phases` → `score` →
//! `report`. `grader` holds the grader-file model that configures every stage, `plan` what a
//! run decides at run time; `events` carries progress to the terminal.

pub mod batch;
pub mod check;
pub mod cli;
pub mod control;
pub mod data;
pub mod digest;
pub mod dockerfile;
pub mod doctor;
pub mod events;
pub mod exit;
pub mod expect;
pub mod gc;
pub mod grader;
pub mod http;
pub mod intake;
pub mod kit;
pub mod load;
pub mod phases;
pub mod pipeline;
pub mod plan;
pub mod prerequisite;
pub mod probe;
pub mod progress;
pub mod report;
pub mod review;
pub mod sandbox;
pub mod score;
pub mod target;
pub mod verdict;
