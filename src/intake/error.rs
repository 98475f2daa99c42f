//! Why intake fails, sorted by whose fault it is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The path given on the command line is not there: a usage error, not the candidate's.
    #[error("submission {0} does not exist")]
    NotFound(PathBuf),
    #[error("submission {0} is neither a directory nor a .tar, .tar.gz or .tgz file")]
    Unsupported(PathBuf),
    /// A git source proctor does not fetch (another scheme than https, credentials in the URL,
    /// a path that is not a repository, a malformed ref): a usage error.
    #[error("{0}")]
    BadSource(String),
    /// Something in the submission breaks a rule: the candidate's to fix.
    #[error("{entry}: {rule}")]
    Rejected { entry: String, rule: String },
    #[error("no Dockerfile at the top level of the submission")]
    NoDockerfile,
    /// Reading the submission failed for a reason of the host (permissions, I/O).
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A git source could not be fetched: unreachable, refused, no such ref, too slow, or no
    /// `git` on this machine. Nothing was handed in to judge, so this is neither a grade nor the
    /// candidate's fault: report it as an infrastructure error.
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
}

impl IntakeError {
    /// True when the submission itself is at fault (its report is a `submission_error`).
    pub fn is_submission_fault(&self) -> bool {
        matches!(
            self,
            IntakeError::Rejected { .. } | IntakeError::NoDockerfile
        )
    }

    /// True when the command line named something proctor cannot read (exit code 2).
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            IntakeError::NotFound(_)
                | IntakeError::Unsupported(_)
                | IntakeError::BadSource(_)
                | IntakeError::Io { .. }
        )
    }
}

pub(super) fn rejected(entry: impl Into<String>, rule: impl Into<String>) -> IntakeError {
    IntakeError::Rejected {
        entry: entry.into(),
        rule: rule.into(),
    }
}
