//! What a submission may contain, and how each limit is worded when it is broken.

use std::time::Duration;

/// Caps on what a submission may contain. The defaults suit a model-serving service with a
/// serialized model of up to a hundred MiB or so; a dataset does not belong in the image.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Sum of the sizes of all files (256 MiB). For an archive or a git commit this counts
    /// everything handed in, `.dockerignore`d files included; it also caps the objects fetched
    /// for a git source and, plus per-entry overhead, the bytes of the tar stream.
    pub max_total_bytes: u64,
    /// Largest single file (128 MiB).
    pub max_file_bytes: u64,
    /// Most entries: files, directories and symlinks (20,000).
    pub max_entries: u64,
    /// Deepest nesting in path components, `a/b/c` being 3 (32).
    pub max_depth: usize,
    /// Longest path in bytes (1,024; each component is also held to 255 bytes).
    pub max_path_bytes: usize,
    /// Largest decompressed/compressed ratio of a .tar.gz (200; gzip of zeros reaches ~1000:1).
    /// Output up to 16 MiB is always allowed, so small, very compressible submissions pass.
    pub max_gzip_ratio: u64,
    /// Deadline for fetching and checking out a git source (120 s); `git` is killed after it.
    /// With [`history_commits`](Self::history_commits) it also covers fetching and reading the
    /// history: the whole git intake ends within it.
    pub git_timeout: Duration,
    /// Opt-in: for a git source, also fetch up to this many commits of history (at most
    /// 10,000) and compute their statistics into [`BuildContext::history`]. `None` (the
    /// default) fetches the one commit at depth 1 and computes nothing. Directories and
    /// archives have no history and ignore it. See the `history` module of the git intake.
    ///
    /// [`BuildContext::history`]: super::BuildContext::history
    pub history_commits: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 256 << 20,
            max_file_bytes: 128 << 20,
            max_entries: 20_000,
            max_depth: 32,
            max_path_bytes: 1024,
            max_gzip_ratio: 200,
            git_timeout: Duration::from_secs(120),
            history_commits: None,
        }
    }
}

/// The rules' wording, shared by every source so that one rule reads the same everywhere.
pub(super) fn rule_entries(l: &Limits) -> String {
    format!("more than {} entries in the submission", l.max_entries)
}
pub(super) fn rule_depth(l: &Limits) -> String {
    format!("nested deeper than {} levels", l.max_depth)
}
pub(super) fn rule_path(l: &Limits) -> String {
    format!("path is longer than {} bytes", l.max_path_bytes)
}
pub(super) fn rule_file(l: &Limits) -> String {
    format!("file is larger than {}", mib(l.max_file_bytes))
}
pub(super) fn rule_total(l: &Limits) -> String {
    format!(
        "submission is larger than {} in total",
        mib(l.max_total_bytes)
    )
}

pub(super) fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}
