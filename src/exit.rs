//! The process exit codes: the contract with CI pipelines (see README). They live apart from
//! the command line so that every command's module (`cli`, `doctor`, ...) returns the same
//! codes without depending on the others.

/// Graded (and at or above --min-score when given).
pub const GRADED: i32 = 0;
/// Graded, but below --min-score.
pub const BELOW_MIN_SCORE: i32 = 1;
/// Usage or grader-file error: nothing was graded.
pub const USAGE: i32 = 2;
/// The submission could not be graded (build failed, never ready, crashed, rejected).
pub const SUBMISSION_ERROR: i32 = 3;
/// The harness or its machine failed (Docker unreachable, ...). Not a grade.
pub const INFRASTRUCTURE_ERROR: i32 = 4;
/// Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells do).
pub const INTERRUPTED: i32 = 130;
