//! Intake: turns what a candidate handed in (a directory, a .tar or a .tar.gz) into a vetted,
//! canonical build context held in memory.
//!
//! Nothing from the submission is ever extracted onto the host, and no symlink of the submission
//! is followed: directories are walked with `symlink_metadata`, archives are streamed entry by
//! entry. Only regular files, directories and relative symlinks that stay inside the tree are
//! accepted. The context is re-emitted as a canonical tar (sorted, zeroed owners and times), so
//! the same files give the same `context_sha256` whichever form they came in.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::digest::sha256_hex;

/// Caps on what a submission may contain.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_total_bytes: u64,
    pub max_file_bytes: u64,
    pub max_entries: u64,
    pub max_depth: usize,
    pub max_path_bytes: usize,
    /// Largest decompressed/compressed ratio of a .tar.gz (a gzip of zeros is ~1000:1).
    pub max_gzip_ratio: u64,
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Directory,
    Tar,
    TarGz,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Directory => "directory",
            SourceKind::Tar => "tar",
            SourceKind::TarGz => "tar.gz",
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
    pub files: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The path given on the command line is not there: a usage error, not the candidate's.
    #[error("submission {0} does not exist")]
    NotFound(PathBuf),
    #[error("submission {0} is neither a directory nor a .tar, .tar.gz or .tgz file")]
    Unsupported(PathBuf),
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
}

impl IntakeError {
    /// True when the submission itself is at fault (its report is a `submission_error`).
    pub fn is_submission_fault(&self) -> bool {
        matches!(
            self,
            IntakeError::Rejected { .. } | IntakeError::NoDockerfile
        )
    }
}

fn rejected(entry: impl Into<String>, rule: impl Into<String>) -> IntakeError {
    IntakeError::Rejected {
        entry: entry.into(),
        rule: rule.into(),
    }
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
    limits: Limits,
}

impl Tree {
    fn new(limits: Limits) -> Tree {
        Tree {
            nodes: BTreeMap::new(),
            bytes: 0,
            limits,
        }
    }

    fn insert(&mut self, path: String, node: Node) -> Result<(), IntakeError> {
        if path.len() > self.limits.max_path_bytes {
            return Err(rejected(
                &path,
                format!("path is longer than {} bytes", self.limits.max_path_bytes),
            ));
        }
        let depth = path.split('/').count();
        if depth > self.limits.max_depth {
            return Err(rejected(
                &path,
                format!("nested deeper than {} levels", self.limits.max_depth),
            ));
        }
        if self.nodes.len() as u64 >= self.limits.max_entries {
            return Err(rejected(
                &path,
                format!(
                    "more than {} entries in the submission",
                    self.limits.max_entries
                ),
            ));
        }
        if let Node::File { data, .. } = &node {
            if data.len() as u64 > self.limits.max_file_bytes {
                return Err(rejected(
                    &path,
                    format!(
                        "file is larger than {} MiB",
                        self.limits.max_file_bytes >> 20
                    ),
                ));
            }
            self.bytes += data.len() as u64;
            if self.bytes > self.limits.max_total_bytes {
                return Err(rejected(
                    &path,
                    format!(
                        "submission is larger than {} MiB in total",
                        self.limits.max_total_bytes >> 20
                    ),
                ));
            }
        }
        if let Node::Symlink(target) = &node {
            check_symlink(&path, target)?;
        }
        match self.nodes.get(&path) {
            Some(Node::Dir) if matches!(node, Node::Dir) => Ok(()),
            Some(_) => Err(rejected(&path, "appears twice in the archive")),
            None => {
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    fn finish(self, kind: SourceKind) -> Result<BuildContext, IntakeError> {
        let dockerfile = match self.nodes.get("Dockerfile") {
            Some(Node::File { data, .. }) => String::from_utf8_lossy(data).into_owned(),
            Some(_) => return Err(rejected("Dockerfile", "must be a regular file")),
            None => return Err(IntakeError::NoDockerfile),
        };
        let files = self
            .nodes
            .values()
            .filter(|n| matches!(n, Node::File { .. }))
            .count() as u64;
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
            bytes: self.bytes,
        })
    }
}

/// A symlink may only point inside the submission, by a relative path.
fn check_symlink(path: &str, target: &str) -> Result<(), IntakeError> {
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

/// Normalizes an archive path: relative, no `..`, no empty result. `./a/b/` becomes `a/b`.
fn normalize(raw: &Path) -> Result<Option<String>, String> {
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => {
                let p = p
                    .to_str()
                    .ok_or_else(|| "path is not valid UTF-8".to_string())?;
                parts.push(p.to_string());
            }
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

fn excluded(path: &str) -> bool {
    // The candidate's git metadata is never part of the build (and may hold hooks or config).
    path == ".git"
        || path.starts_with(".git/")
        || path.contains("/.git/")
        || path.ends_with("/.git")
}

/// Reads a submission from `path`.
pub fn intake(path: &Path, limits: &Limits) -> Result<BuildContext, IntakeError> {
    let meta = fs::metadata(path).map_err(|_| IntakeError::NotFound(path.to_owned()))?;
    if meta.is_dir() {
        return from_directory(path, limits);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let io = |source| IntakeError::Io {
        path: path.to_owned(),
        source,
    };
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let file = fs::File::open(path).map_err(io)?;
        let compressed = meta.len().max(1);
        // The tar stream is the files plus headers; the ratio bound stops bombs early, with a
        // floor so that small, highly compressible submissions still pass.
        let tar_cap = limits.max_total_bytes + limits.max_entries * 1024;
        let cap = tar_cap.min(
            compressed
                .saturating_mul(limits.max_gzip_ratio)
                .max(16 << 20),
        );
        let reader = CappedReader {
            inner: flate2::read::GzDecoder::new(file),
            left: cap,
            cap,
        };
        from_tar(reader, limits, SourceKind::TarGz)
    } else if name.ends_with(".tar") {
        from_tar(fs::File::open(path).map_err(io)?, limits, SourceKind::Tar)
    } else {
        Err(IntakeError::Unsupported(path.to_owned()))
    }
}

/// Fails the read (instead of a silent EOF, which would look like a truncated archive) once
/// more than `left` bytes came out of the decompressor.
struct CappedReader<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} MiB (a compression bomb, or over the size limit)",
                self.cap >> 20
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn from_tar<R: Read>(
    reader: R,
    limits: &Limits,
    kind: SourceKind,
) -> Result<BuildContext, IntakeError> {
    let mut archive = tar::Archive::new(reader);
    let mut tree = Tree::new(limits.clone());
    let bad = |e: std::io::Error| rejected("(archive)", format!("cannot be read: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let shown = raw.display().to_string();
        let Some(path) = normalize(&raw).map_err(|rule| rejected(&shown, rule))? else {
            continue; // "./" itself
        };
        if excluded(&path) {
            continue;
        }
        use tar::EntryType as T;
        let node = match entry.header().entry_type() {
            T::Directory => Node::Dir,
            T::Regular | T::Continuous => {
                let size = entry.header().size().map_err(bad)?;
                if size > limits.max_file_bytes {
                    return Err(rejected(
                        &path,
                        format!("file is larger than {} MiB", limits.max_file_bytes >> 20),
                    ));
                }
                let mut data = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut data).map_err(bad)?;
                let executable = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                Node::File { data, executable }
            }
            T::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| rejected(&path, "symlink without a target"))?;
                Node::Symlink(
                    target
                        .to_str()
                        .ok_or_else(|| rejected(&path, "symlink target is not UTF-8"))?
                        .to_string(),
                )
            }
            T::Link => return Err(rejected(&path, "hard links are not allowed")),
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            other => {
                return Err(rejected(
                    &path,
                    format!(
                    "entry type {other:?} is not allowed (only files, directories and symlinks)"
                ),
                ))
            }
        };
        tree.insert(path, node)?;
    }
    tree.finish(kind)
}

fn from_directory(root: &Path, limits: &Limits) -> Result<BuildContext, IntakeError> {
    let mut tree = Tree::new(limits.clone());
    walk(root, root, &mut tree)?;
    tree.finish(SourceKind::Directory)
}

fn walk(root: &Path, dir: &Path, tree: &mut Tree) -> Result<(), IntakeError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| IntakeError::Io { path, source }
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let full = e.path();
        let rel = full.strip_prefix(root).expect("walked below root");
        let rel = normalize(rel)
            .map_err(|rule| rejected(rel.display().to_string(), rule))?
            .expect("non-empty below root");
        if excluded(&rel) {
            continue;
        }
        // symlink_metadata: never follow a link the submission planted.
        let meta = fs::symlink_metadata(&full).map_err(io(&full))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(io(&full))?;
            let target = target
                .to_str()
                .ok_or_else(|| rejected(&rel, "symlink target is not UTF-8"))?
                .to_string();
            tree.insert(rel, Node::Symlink(target))?;
        } else if ft.is_dir() {
            tree.insert(rel, Node::Dir)?;
            walk(root, &full, tree)?;
        } else if ft.is_file() {
            if meta.len() > tree.limits.max_file_bytes {
                return Err(rejected(
                    &rel,
                    format!(
                        "file is larger than {} MiB",
                        tree.limits.max_file_bytes >> 20
                    ),
                ));
            }
            use std::os::unix::fs::PermissionsExt;
            let data = fs::read(&full).map_err(io(&full))?;
            tree.insert(
                rel,
                Node::File {
                    data,
                    executable: meta.permissions().mode() & 0o111 != 0,
                },
            )?;
        } else {
            return Err(rejected(
                &rel,
                "only regular files, directories and symlinks are allowed",
            ));
        }
    }
    Ok(())
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

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
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

    fn read(bytes: Vec<u8>) -> Result<BuildContext, IntakeError> {
        from_tar(
            std::io::Cursor::new(bytes),
            &Limits::default(),
            SourceKind::Tar,
        )
    }

    const DF: (&str, tar::EntryType, &[u8], Option<&str>) =
        ("Dockerfile", tar::EntryType::Regular, b"FROM x\n", None);

    #[test]
    fn accepts_a_plain_archive() {
        let ctx = read(tar_with(&[
            DF,
            ("app/main.py", tar::EntryType::Regular, b"print(1)", None),
        ]))
        .unwrap();
        assert_eq!(ctx.dockerfile, "FROM x\n");
        assert_eq!(ctx.files, 2);
    }

    #[test]
    fn rejects_parent_and_absolute_paths_naming_the_entry() {
        let err = read(tar_with(&[
            DF,
            ("../evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("../evil") && err.to_string().contains(".."),
            "{err}"
        );
        let err = read(tar_with(&[
            DF,
            ("/etc/evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
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
    fn rejects_duplicates_and_devices() {
        let err = read(tar_with(&[DF, DF])).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = read(tar_with(&[DF, ("dev", tar::EntryType::Char, b"", None)])).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
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
        let err = from_tar(
            std::io::Cursor::new(tar_with(&entries)),
            &limits,
            SourceKind::Tar,
        )
        .unwrap_err();
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
        assert!(err.to_string().contains("compression bomb"), "{err}");
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
        let b = from_tar(
            std::io::Cursor::new(a.tar.clone()),
            &Limits::default(),
            SourceKind::Tar,
        )
        .unwrap();
        assert_eq!(a.sha256, b.sha256);
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
}
