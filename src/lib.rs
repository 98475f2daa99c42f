//! proctor grades ML-engineering take-home submissions: it builds the candidate's model service
//! in a sandbox, drives it with scripted HTTP checks and load, and writes a grade report.
//!
//! The modules follow the pipeline (see `pipeline`): `intake` → `sandbox` → `target` →
//! `scenario` (with `expect`, `load`) → `score` → `report`. `grader` holds the grader-file
//! model that configures every stage; `events` carries progress to the terminal.

pub mod check;
pub mod cli;
pub mod data;
pub mod digest;
pub mod doctor;
pub mod events;
pub mod exit;
pub mod expect;
pub mod gc;
pub mod grader;
pub mod http;
pub mod intake;
pub mod load;
pub mod phases;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod sandbox;
pub mod score;
pub mod target;
pub mod verdict;
