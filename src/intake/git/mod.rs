//! Git sources: an `https://` repository, or a repository on this machine.
//!
//! The system `git` fetches one commit into a private temporary directory (mode 0700, removed
//! afterwards, on error too), with nothing of the host's or the candidate's configuration in
//! effect:
//!
//! - the environment is cleared; `HOME` is an empty directory, system and global config are
//!   `/dev/null`, prompts are off, and `GIT_ALLOW_PROTOCOL` admits `https` only (`file` for a
//!   local repository);
//! - every command runs with hooks pointed at `/dev/null`, no fsmonitor, no credential helper,
//!   LFS smudging off (`GIT_LFS_SKIP_SMUDGE`, empty `filter.lfs.*`), submodules not recursed,
//!   received objects checked (`transfer.fsckObjects`: a tree that plants `.git` or `..`
//!   entries is rejected as the submission's doing);
//! - the commit is fetched with `--depth 1` into a bare repository made without templates (no
//!   sample hooks), by branch, tag or full commit id; a local repository is read through
//!   `upload-pack` like a remote one (git's "sanitized clone", `git clone --no-local`), so its
//!   config and hooks are never copied or run on our side, and one whose objects could come from
//!   elsewhere on the machine (alternates, symlinks, a `.git` file) is refused;
//! - before anything is written out, the commit's tree is listed and held to the same limits as
//!   any submission (entry count, depth, file and total size), so a "git bomb" stops there;
//! - the checkout goes to a separate directory with `core.symlinks` on (a symlink stays a
//!   symlink, which the walk then vets) and submodules left as empty directories;
//! - each `git` runs in its own process group, is watched for the deadline (`git_timeout`) and
//!   for the size of what it writes, and the whole group is killed past either;
//! - git is never run in the checkout: the directory walker reads it (no link followed, `.git`
//!   left out, `.dockerignore` applied). By default git is not run again at all.
//!
//! Opt-in ([`Limits::history_commits`](crate::intake::Limits::history_commits) = `Some(n)`):
//! once the build context is read and the checkout deleted, the same confined git deepens
//! proctor's own bare repository to `n + 1` commits of history (commits and trees, no blobs:
//! `--filter=blob:none`), under the same deadline, size watch and object checks, and
//! `git log` lists their metadata and changed file names, which are reduced to numbers
//! ([`History`]). The first fetch, the checkout and the build context are the same as without
//! it; a history that cannot be read only sets [`History::error`]. See `history.rs`.

mod fetch;
pub mod history;
mod runner;
mod source;
mod sweep;

pub use fetch::intake_git;
pub use history::{History, SubjectStats, TestStats};
pub use source::is_git_source;
pub use sweep::sweep_temp_dirs;
