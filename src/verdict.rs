//! Why a run ended without a full grade, as the report's `verdict` names it, and whose fault
//! that is. The names are the contract with CI pipelines (README, exit codes 3 and 4); the
//! kind decides the status and the exit code, so no verdict is ever compared as a string.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whose fault a verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// What the submission did: `submission_error`, exit code 3.
    Submission,
    /// The harness or its machine: `infrastructure_error`, exit code 4, never a grade.
    Infrastructure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    // The submission's.
    ArchiveRejected,
    BaseImageNotAllowed,
    NetworkAccess,
    DockerfileInvalid,
    BuildFailed,
    BuildTimeout,
    ImageTooLarge,
    NeverReady,
    Exited,
    OomKilled,
    CrashedDuringGrading,
    // The machine's.
    EngineUnreachable,
    EngineError,
    EngineTimeout,
    BaseImageMissing,
    FetchFailed,
    LatencyMeasurementInvalid,
    ReferenceFailed,
    Interrupted,
}

impl Verdict {
    pub fn fault(self) -> Fault {
        use Verdict::*;
        match self {
            ArchiveRejected | BaseImageNotAllowed | NetworkAccess | DockerfileInvalid
            | BuildFailed | BuildTimeout | ImageTooLarge | NeverReady | Exited | OomKilled
            | CrashedDuringGrading => Fault::Submission,
            EngineUnreachable
            | EngineError
            | EngineTimeout
            | BaseImageMissing
            | FetchFailed
            | LatencyMeasurementInvalid
            | ReferenceFailed
            | Interrupted => Fault::Infrastructure,
        }
    }

    /// The report's name for it (`build_failed`, ...).
    pub fn as_str(self) -> &'static str {
        use Verdict::*;
        match self {
            ArchiveRejected => "archive_rejected",
            BaseImageNotAllowed => "base_image_not_allowed",
            NetworkAccess => "network_access",
            DockerfileInvalid => "dockerfile_invalid",
            BuildFailed => "build_failed",
            BuildTimeout => "build_timeout",
            ImageTooLarge => "image_too_large",
            NeverReady => "never_ready",
            Exited => "exited",
            OomKilled => "oom_killed",
            CrashedDuringGrading => "crashed_during_grading",
            EngineUnreachable => "engine_unreachable",
            EngineError => "engine_error",
            EngineTimeout => "engine_timeout",
            BaseImageMissing => "base_image_missing",
            FetchFailed => "fetch_failed",
            LatencyMeasurementInvalid => "latency_measurement_invalid",
            ReferenceFailed => "reference_failed",
            Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_match_as_str() {
        for v in [
            Verdict::ArchiveRejected,
            Verdict::CrashedDuringGrading,
            Verdict::LatencyMeasurementInvalid,
            Verdict::Interrupted,
        ] {
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(v.as_str().into())
            );
        }
        assert_eq!(Verdict::OomKilled.fault(), Fault::Submission);
        assert_eq!(Verdict::FetchFailed.fault(), Fault::Infrastructure);
    }
}
