//! Intake: turns what a candidate handed in (a directory, a .tar or .tar.gz, or a git
//! repository) into a vetted, canonical build context held in memory.
//!
//! Nothing from the submission is ever extracted onto the host, and no symlink of the submission
//! is followed: directories are walked with `lstat` and files opened with `O_NOFOLLOW`, archives
//! are streamed entry by entry, and a git source is fetched by a locked-down `git` into a private
//! temporary directory that is then walked like any directory (see [`intake_git`]).
//!
//! Only regular files, directories and relative symlinks that stay inside the tree are accepted.
//! Every rejection names the entry and the rule it broke ([`IntakeError::Rejected`]).
//!
//! The submission's `.dockerignore` is applied as `docker build` applies it (see
//! `dockerignore`): what it excludes never reaches the builder, while `Dockerfile` and
//! `.dockerignore` always do. The limits bound what proctor reads: an archive or a git commit is
//! vetted whole, ignored files included; a directory is walked the way the docker CLI walks it,
//! so ignored directories (a virtualenv, `node_modules`) are not entered at all.
//!
//! The context is re-emitted as a canonical tar (sorted, every parent directory present, owner
//! 0:0, mtime 0, modes 0644/0755), so the same files give the same `sha256` whichever form they
//! came in.

mod archive;
mod context;
mod directory;
pub mod dockerignore;
mod error;
mod git;
mod limits;
mod names;
#[cfg(test)]
mod test_support;
mod tree;

use std::fs;
use std::path::Path;

pub use context::{BuildContext, SourceKind};
pub use error::IntakeError;
pub use git::{
    history, intake_git, is_git_source, sweep_temp_dirs as sweep_git_temp_dirs, History,
    SubjectStats, TestStats,
};
pub use limits::Limits;
pub use names::MAX_NAME_BYTES;

/// Reads a submission from `path`: a directory, or a `.tar`, `.tar.gz` or `.tgz` file.
pub fn intake(path: &Path, limits: &Limits) -> Result<BuildContext, IntakeError> {
    let meta = fs::metadata(path).map_err(|_| IntakeError::NotFound(path.to_owned()))?;
    if meta.is_dir() {
        return directory::read(path, limits, SourceKind::Directory, None);
    }
    archive::read_file(path, &meta, limits)
}
