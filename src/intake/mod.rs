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
mod directory;
pub mod dockerignore;
mod git;

pub use git::sweep_temp_dirs as sweep_git_temp_dirs;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::sha256_hex;

pub use git::{intake_git, is_git_source};

/// Longest name of one path component: Linux's NAME_MAX (the builder could not create it).
pub const MAX_NAME_BYTES: usize = 255;

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
    pub git_timeout: Duration,
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Directory,
    Tar,
    TarGz,
    Git,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Directory => "directory",
            SourceKind::Tar => "tar",
            SourceKind::TarGz => "tar.gz",
            SourceKind::Git => "git",
        }
    }
}

/// A vetted build context.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub kind: SourceKind,
    /// Canonical tar of the context, ready to send to the engine.
    pub tar: Vec<u8>,
    pub dockerfile: String,
    /// Regular files in the context.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    pub sha256: String,
    /// Entries left out by `.dockerignore`. A directory walk does not enter an ignored
    /// directory, so it counts once there, while an archive counts every entry it held.
    pub ignored: u64,
    /// For a git source, the commit that was checked out (full hex id).
    pub commit: Option<String>,
}

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

fn rejected(entry: impl Into<String>, rule: impl Into<String>) -> IntakeError {
    IntakeError::Rejected {
        entry: entry.into(),
        rule: rule.into(),
    }
}

/// The rules' wording, shared by every source so that one rule reads the same everywhere.
fn rule_entries(l: &Limits) -> String {
    format!("more than {} entries in the submission", l.max_entries)
}
fn rule_depth(l: &Limits) -> String {
    format!("nested deeper than {} levels", l.max_depth)
}
fn rule_path(l: &Limits) -> String {
    format!("path is longer than {} bytes", l.max_path_bytes)
}
fn rule_file(l: &Limits) -> String {
    format!("file is larger than {}", mib(l.max_file_bytes))
}
fn rule_total(l: &Limits) -> String {
    format!(
        "submission is larger than {} in total",
        mib(l.max_total_bytes)
    )
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Control characters and the bidirectional-text controls that make a name display as
/// something else ("Trojan Source").
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name as it may appear in a message: not UTF-8 replaced, unsafe characters escaped, and
/// cut short.
pub(crate) fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= 300 {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// One component of a path.
fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "a name in the path is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if let Some(c) = name.chars().find(|&c| is_unsafe_char(c)) {
        return Err(format!(
            "name contains the control character {} (names must be printable)",
            c.escape_unicode()
        ));
    }
    Ok(())
}

/// Normalizes a path as an archive spells it: relative, no `..`, UTF-8, printable names.
/// `./a/b/` becomes `a/b`; `./` itself gives `None`.
fn normalize(raw: &[u8]) -> Result<Option<String>, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "name is not valid UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err("absolute path (entries must be relative to the submission's root)".into());
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path contains '..'".into()),
            p => {
                check_name(p)?;
                parts.push(p);
            }
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

/// The candidate's git metadata is never part of the build (and may hold hooks or config).
fn excluded(path: &str) -> bool {
    path.split('/').any(|p| p == ".git")
}

#[derive(Debug)]
enum Node {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
}

/// Collected entries, keyed by normalized relative path; enforces the limits as they arrive.
struct Tree {
    nodes: BTreeMap<String, Node>,
    bytes: u64,
    ignored: u64,
    limits: Limits,
}

impl Tree {
    fn new(limits: Limits) -> Tree {
        Tree {
            nodes: BTreeMap::new(),
            bytes: 0,
            ignored: 0,
            limits,
        }
    }

    /// Fails before a file's data is read when it cannot fit.
    fn check_size(&self, path: &str, size: u64) -> Result<(), IntakeError> {
        if size > self.limits.max_file_bytes {
            return Err(rejected(path, rule_file(&self.limits)));
        }
        if self.bytes.saturating_add(size) > self.limits.max_total_bytes {
            return Err(rejected(path, rule_total(&self.limits)));
        }
        Ok(())
    }

    fn insert(&mut self, path: String, node: Node) -> Result<(), IntakeError> {
        if path.len() > self.limits.max_path_bytes {
            return Err(rejected(&path, rule_path(&self.limits)));
        }
        if path.split('/').count() > self.limits.max_depth {
            return Err(rejected(&path, rule_depth(&self.limits)));
        }
        if self.nodes.len() as u64 >= self.limits.max_entries {
            return Err(rejected(&path, rule_entries(&self.limits)));
        }
        if let Node::File { data, .. } = &node {
            self.check_size(&path, data.len() as u64)?;
        }
        if let Node::Symlink(target) = &node {
            check_symlink(&path, target, &self.limits)?;
        }
        // Nothing may sit below a file or a symlink: an entry "a/evil" after a symlink "a"
        // would be written through the link by whoever unpacks the context.
        let mut end = 0;
        for part in path.split('/').take(path.split('/').count() - 1) {
            end += part.len();
            match self.nodes.get(&path[..end]) {
                Some(Node::Symlink(t)) => {
                    return Err(rejected(
                        &path,
                        format!(
                            "lies below {}, which is a symlink (to {t}): writing through a link is not allowed",
                            &path[..end]
                        ),
                    ))
                }
                Some(Node::File { .. }) => {
                    return Err(rejected(
                        &path,
                        format!("lies below {}, which is a file", &path[..end]),
                    ))
                }
                _ => {}
            }
            end += 1;
        }
        if !matches!(node, Node::Dir) {
            let below = format!("{path}/");
            if let Some((child, _)) = self.nodes.range(below.clone()..).next() {
                if child.starts_with(&below) {
                    return Err(rejected(
                        &path,
                        format!("is not a directory, but the archive has {child} below it"),
                    ));
                }
            }
        }
        match self.nodes.get(&path) {
            Some(Node::Dir) if matches!(node, Node::Dir) => Ok(()),
            Some(_) => Err(rejected(&path, "appears twice in the archive")),
            None => {
                if let Node::File { data, .. } = &node {
                    self.bytes += data.len() as u64;
                }
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    /// Applies `.dockerignore` (unless the walk already did), completes parent directories,
    /// checks symlink chains and emits the canonical tar.
    fn finish(
        mut self,
        kind: SourceKind,
        commit: Option<String>,
        ignore_applied: bool,
    ) -> Result<BuildContext, IntakeError> {
        let dockerfile = match self.nodes.get("Dockerfile") {
            Some(Node::File { data, .. }) => String::from_utf8_lossy(data).into_owned(),
            Some(_) => return Err(rejected("Dockerfile", "must be a regular file")),
            None => return Err(IntakeError::NoDockerfile),
        };
        let removed = if ignore_applied {
            Vec::new()
        } else {
            self.apply_dockerignore()?
        };
        // Every parent directory is present, whether the source listed it or not.
        let mut parents = Vec::new();
        for path in self.nodes.keys() {
            let mut end = 0;
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                end += part.len();
                if !self.nodes.contains_key(&path[..end]) {
                    parents.push(path[..end].to_string());
                }
                end += 1;
            }
        }
        for p in parents {
            self.nodes.insert(p, Node::Dir);
        }
        // A directory left out but holding kept entries is back as their parent.
        self.ignored += removed
            .iter()
            .filter(|p| !self.nodes.contains_key(*p))
            .count() as u64;
        for (path, node) in &self.nodes {
            if let Node::Symlink(target) = node {
                check_symlink_chain(&self.nodes, path, target)?;
            }
        }
        let mut files = 0;
        let mut bytes = 0;
        for node in self.nodes.values() {
            if let Node::File { data, .. } = node {
                files += 1;
                bytes += data.len() as u64;
            }
        }
        let tar = canonical_tar(&self.nodes).map_err(|source| IntakeError::Io {
            path: "(build context)".into(),
            source,
        })?;
        Ok(BuildContext {
            kind,
            sha256: sha256_hex(&tar),
            tar,
            dockerfile,
            files,
            bytes,
            ignored: self.ignored,
            commit,
        })
    }

    /// Drops what `.dockerignore` excludes; returns the paths dropped.
    fn apply_dockerignore(&mut self) -> Result<Vec<String>, IntakeError> {
        let data = match self.nodes.get(".dockerignore") {
            None => return Ok(Vec::new()),
            Some(Node::File { data, .. }) => data,
            Some(_) => return Err(rejected(".dockerignore", "must be a regular file")),
        };
        if data.len() as u64 > dockerignore::MAX_BYTES {
            return Err(rejected(".dockerignore", "is larger than 1 MiB"));
        }
        let mut rules =
            dockerignore::Dockerignore::parse(data).map_err(|e| rejected(".dockerignore", e))?;
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        rules.keep_build_files();
        let keep: std::collections::HashSet<String> = dockerignore::filter(
            &rules,
            self.nodes
                .iter()
                .map(|(p, n)| (p.as_str(), matches!(n, Node::Dir))),
        )
        .into_iter()
        .map(String::from)
        .collect();
        let mut removed = Vec::new();
        self.nodes.retain(|p, _| {
            let k = keep.contains(p);
            if !k {
                removed.push(p.clone());
            }
            k
        });
        Ok(removed)
    }
}

/// A symlink may only point inside the submission, by a relative path (checked on the text of
/// the target; [`check_symlink_chain`] then follows the links it goes through).
fn check_symlink(path: &str, target: &str, limits: &Limits) -> Result<(), IntakeError> {
    if target.is_empty() {
        return Err(rejected(path, "symlink without a target"));
    }
    if target.len() > limits.max_path_bytes {
        return Err(rejected(
            path,
            format!(
                "symlink target is longer than {} bytes",
                limits.max_path_bytes
            ),
        ));
    }
    if let Some(c) = target.chars().find(|&c| is_unsafe_char(c)) {
        return Err(rejected(
            path,
            format!(
                "symlink target contains the control character {}",
                c.escape_unicode()
            ),
        ));
    }
    if target.starts_with('/') {
        return Err(rejected(
            path,
            format!("symlink to an absolute path ({target}) is not allowed"),
        ));
    }
    let mut depth: i64 = path.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(rejected(
                        path,
                        format!("symlink points outside the submission ({target})"),
                    ));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Most links followed while resolving one symlink (Linux's MAXSYMLINKS).
const MAX_LINK_HOPS: usize = 40;

/// Resolves a symlink through the other symlinks of the tree: `d/up -> ..` is harmless on its
/// own, but `x -> d/up/..` then leaves the tree although its text does not.
fn check_symlink_chain(
    nodes: &BTreeMap<String, Node>,
    path: &str,
    target: &str,
) -> Result<(), IntakeError> {
    let mut stack: Vec<&str> = path.split('/').collect();
    stack.pop();
    let mut pending: Vec<&str> = target.split('/').rev().collect();
    let mut hops = 0;
    let mut via: Option<String> = None;
    while let Some(part) = pending.pop() {
        match part {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    let through = via
                        .map(|v| format!(", through the symlink {v}"))
                        .unwrap_or_default();
                    return Err(rejected(
                        path,
                        format!("symlink points outside the submission ({target}{through})"),
                    ));
                }
            }
            name => {
                stack.push(name);
                let here = stack.join("/");
                if let Some(Node::Symlink(next)) = nodes.get(&here) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(rejected(
                            path,
                            format!("symlink chain is longer than {MAX_LINK_HOPS} links (a loop?)"),
                        ));
                    }
                    stack.pop();
                    if next.starts_with('/') {
                        return Err(rejected(
                            path,
                            format!("symlink leads to an absolute path through {here}"),
                        ));
                    }
                    pending.extend(next.split('/').rev());
                    via = Some(here);
                }
            }
        }
    }
    Ok(())
}

/// Reads a submission from `path`: a directory, or a `.tar`, `.tar.gz` or `.tgz` file.
pub fn intake(path: &Path, limits: &Limits) -> Result<BuildContext, IntakeError> {
    let meta = fs::metadata(path).map_err(|_| IntakeError::NotFound(path.to_owned()))?;
    if meta.is_dir() {
        return directory::read(path, limits, SourceKind::Directory, None);
    }
    archive::read_file(path, &meta, limits)
}

/// Sorted entries, owner 0:0, mtime 0, modes 0644/0755: the same files always give the same
/// bytes.
fn canonical_tar(nodes: &BTreeMap<String, Node>) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    for (path, node) in nodes {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match node {
            Node::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Node::File { data, executable } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *executable { 0o755 } else { 0o644 });
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            Node::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Write the raw name so that hostile paths ('..', '/') survive the builder's checks.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    pub(super) fn read(bytes: Vec<u8>) -> Result<BuildContext, IntakeError> {
        read_with(bytes, &Limits::default())
    }

    pub(super) fn read_with(bytes: Vec<u8>, limits: &Limits) -> Result<BuildContext, IntakeError> {
        archive::from_tar(std::io::Cursor::new(bytes), limits, SourceKind::Tar)
    }

    pub(super) const DF: (&str, tar::EntryType, &[u8], Option<&str>) =
        ("Dockerfile", tar::EntryType::Regular, b"FROM x\n", None);

    fn rule(err: IntakeError) -> (String, String) {
        match err {
            IntakeError::Rejected { entry, rule } => (entry, rule),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_plain_archive() {
        let ctx = read(tar_with(&[
            DF,
            ("app/main.py", tar::EntryType::Regular, b"print(1)", None),
        ]))
        .unwrap();
        assert_eq!(ctx.dockerfile, "FROM x\n");
        assert_eq!(ctx.files, 2);
        assert_eq!(ctx.ignored, 0);
        assert!(ctx.commit.is_none());
    }

    #[test]
    fn rejects_parent_and_absolute_paths_naming_the_entry() {
        let err = read(tar_with(&[
            DF,
            ("../evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert_eq!(rule(err), ("../evil".into(), "path contains '..'".into()));
        let err = read(tar_with(&[
            DF,
            ("/etc/evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "/etc/evil");
        assert!(r.contains("absolute"), "{r}");
    }

    #[test]
    fn rejects_escaping_and_absolute_symlinks_and_hard_links() {
        let err = read(tar_with(&[
            DF,
            (
                "a/l",
                tar::EntryType::Symlink,
                b"",
                Some("../../etc/passwd"),
            ),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err = read(tar_with(&[
            DF,
            ("l", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
        let err = read(tar_with(&[
            DF,
            ("h", tar::EntryType::Link, b"", Some("Dockerfile")),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
        read(tar_with(&[
            DF,
            ("a/l", tar::EntryType::Symlink, b"", Some("../Dockerfile")),
        ]))
        .unwrap();
    }

    #[test]
    fn symlink_chains_are_followed_through_the_tree() {
        // d/up -> .. is the root (fine); x -> d/up/.. reads as "x's dir" but is the root's
        // parent once d/up is followed.
        let err = read(tar_with(&[
            DF,
            ("d/up", tar::EntryType::Symlink, b"", Some("..")),
            ("x", tar::EntryType::Symlink, b"", Some("d/up/..")),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "x");
        assert!(r.contains("outside") && r.contains("d/up"), "{r}");
        let err = read(tar_with(&[
            DF,
            ("a", tar::EntryType::Symlink, b"", Some("b")),
            ("b", tar::EntryType::Symlink, b"", Some("a")),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("loop"), "{err}");
        read(tar_with(&[
            DF,
            ("d/up", tar::EntryType::Symlink, b"", Some("..")),
            ("x", tar::EntryType::Symlink, b"", Some("d/up/Dockerfile")),
        ]))
        .unwrap();
    }

    #[test]
    fn nothing_may_lie_below_a_symlink_or_a_file() {
        let err = read(tar_with(&[
            DF,
            ("a", tar::EntryType::Symlink, b"", Some("b")),
            ("a/evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "a/evil");
        assert!(r.contains("below a") && r.contains("symlink"), "{r}");
        // The other order: the child first, then the link over its directory.
        let err = read(tar_with(&[
            DF,
            ("a/evil", tar::EntryType::Regular, b"x", None),
            ("a", tar::EntryType::Symlink, b"", Some("b")),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "a");
        assert!(r.contains("a/evil"), "{r}");
        let err = read(tar_with(&[
            DF,
            ("f", tar::EntryType::Regular, b"x", None),
            ("f/g", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("which is a file"), "{err}");
    }

    #[test]
    fn rejects_duplicates_and_devices() {
        let err = read(tar_with(&[DF, DF])).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = read(tar_with(&[DF, ("dev", tar::EntryType::Char, b"", None)])).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn rejects_unprintable_and_non_utf8_names() {
        let err = read(tar_with(&[
            DF,
            ("a\x1b[2Jb", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "a\\u{1b}[2Jb", "the message carries no raw escape");
        assert!(r.contains("control character"), "{r}");
        let err = read(tar_with(&[
            DF,
            ("evil\u{202e}txt.py", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("\\u{202e}"), "{err}");
        let mut bytes = tar_with(&[DF, ("bad-X", tar::EntryType::Regular, b"x", None)]);
        // Patch the name's last byte to 0xFF and fix the header checksum.
        let off = 1024;
        assert_eq!(&bytes[off..off + 5], b"bad-X");
        bytes[off + 4] = 0xFF;
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&bytes[off..off + 512]);
        h.set_cksum();
        bytes[off..off + 512].copy_from_slice(h.as_bytes());
        let err = read(bytes).unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "bad-\u{FFFD}");
        assert_eq!(r, "name is not valid UTF-8");
    }

    #[test]
    fn requires_a_dockerfile() {
        let err = read(tar_with(&[("app.py", tar::EntryType::Regular, b"", None)])).unwrap_err();
        assert!(matches!(err, IntakeError::NoDockerfile));
    }

    #[test]
    fn entry_count_is_capped() {
        let many: Vec<(String, Vec<u8>)> = (0..30).map(|i| (format!("f{i}"), vec![])).collect();
        let mut entries = vec![DF];
        entries.extend(
            many.iter()
                .map(|(n, d)| (n.as_str(), tar::EntryType::Regular, d.as_slice(), None)),
        );
        let limits = Limits {
            max_entries: 10,
            ..Limits::default()
        };
        let err = read_with(tar_with(&entries), &limits).unwrap_err();
        assert!(err.to_string().contains("more than 10 entries"), "{err}");
    }

    #[test]
    fn gzip_bomb_is_stopped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.tar.gz");
        let big = vec![0u8; 64 << 20];
        let tar = tar_with(&[DF, ("zeros", tar::EntryType::Regular, &big, None)]);
        let mut gz = flate2::write::GzEncoder::new(
            fs::File::create(&path).unwrap(),
            flate2::Compression::best(),
        );
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap();
        let err = intake(&path, &Limits::default()).unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "zeros");
        assert!(r.contains("compression bomb"), "{r}");
    }

    #[test]
    fn directory_and_archive_give_the_same_context() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir_all(sub.join("app")).unwrap();
        fs::create_dir_all(sub.join(".git")).unwrap();
        fs::write(sub.join(".git/config"), "[core]").unwrap();
        fs::write(sub.join("Dockerfile"), "FROM x\n").unwrap();
        fs::write(sub.join("app/main.py"), "print(1)").unwrap();
        std::os::unix::fs::symlink("../Dockerfile", sub.join("app/link")).unwrap();
        let a = intake(&sub, &Limits::default()).unwrap();
        assert_eq!(a.files, 2, ".git must be left out");
        let b = read(a.tar.clone()).unwrap();
        assert_eq!(a.sha256, b.sha256);
        // Without directory entries the archive still gives the same context.
        let c = read(tar_with(&[
            DF,
            (
                "app/link",
                tar::EntryType::Symlink,
                b"",
                Some("../Dockerfile"),
            ),
            ("app/main.py", tar::EntryType::Regular, b"print(1)", None),
        ]))
        .unwrap();
        assert_eq!(a.sha256, c.sha256);
    }

    #[test]
    fn directory_symlink_to_host_file_is_rejected_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", dir.path().join("secret")).unwrap();
        let err = intake(dir.path(), &Limits::default()).unwrap_err();
        assert!(err.is_submission_fault());
        assert!(
            err.to_string().contains("secret") && err.to_string().contains("absolute"),
            "{err}"
        );
    }

    #[test]
    fn dockerignore_is_applied_to_archives_and_directories_alike() {
        let ignore = b"# build junk (*.pyc alone would only match at the root)\n**/*.pyc\ndata\n!data/keep.csv\nDockerfile\n";
        let entries = [
            DF,
            (".dockerignore", tar::EntryType::Regular, &ignore[..], None),
            ("app/main.py", tar::EntryType::Regular, b"print(1)", None),
            ("app/main.pyc", tar::EntryType::Regular, b"junk", None),
            ("data/big.bin", tar::EntryType::Regular, b"0000", None),
            ("data/keep.csv", tar::EntryType::Regular, b"a,b", None),
        ];
        let ctx = read(tar_with(&entries)).unwrap();
        let names = list(&ctx.tar);
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "app/",
                "app/main.py",
                "data/",
                "data/keep.csv"
            ]
        );
        assert_eq!(ctx.files, 4);
        assert_eq!(ctx.ignored, 2, "main.pyc and data/big.bin");

        let dir = tempfile::tempdir().unwrap();
        for (path, _, data, _) in entries {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        }
        let from_dir = intake(dir.path(), &Limits::default()).unwrap();
        assert_eq!(from_dir.sha256, ctx.sha256);
        assert_eq!(from_dir.ignored, 2);
    }

    #[test]
    fn ignored_directories_are_not_walked() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile"), "FROM x\n").unwrap();
        fs::write(dir.path().join(".dockerignore"), ".venv\n").unwrap();
        let venv = dir.path().join(".venv/lib");
        fs::create_dir_all(&venv).unwrap();
        for i in 0..50 {
            fs::write(venv.join(format!("m{i}.py")), "x").unwrap();
        }
        // Would be rejected if the walk entered .venv.
        std::os::unix::fs::symlink("/etc/passwd", venv.join("escape")).unwrap();
        let limits = Limits {
            max_entries: 10,
            ..Limits::default()
        };
        let ctx = intake(dir.path(), &limits).unwrap();
        assert_eq!(ctx.files, 2);
        assert_eq!(ctx.ignored, 1);
    }

    #[test]
    fn a_broken_dockerignore_names_its_line() {
        let err = read(tar_with(&[
            DF,
            (
                ".dockerignore",
                tar::EntryType::Regular,
                b"ok\n[oops\n",
                None,
            ),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, ".dockerignore");
        assert!(r.starts_with("line 2"), "{r}");
    }

    pub(super) fn list(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                String::from_utf8(e.path_bytes().into_owned()).unwrap()
            })
            .collect()
    }
}
