//! Directory submissions (and the checkout of a git source), walked without following any link.
//!
//! Types come from `lstat` (the directory entry), and files are opened with `O_NOFOLLOW` and
//! `O_NONBLOCK` and checked again with `fstat`, so that neither a symlink nor a FIFO swapped in
//! behind the walk's back makes proctor read something else or block. `.dockerignore` is applied
//! during the walk, the way the docker CLI walks a context: an excluded directory is not entered
//! unless an exception could bring something below it back.

use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::context::{BuildContext, SourceKind};
use super::dockerignore::{Decision, Dockerignore, MAX_BYTES};
use super::error::{rejected, IntakeError};
use super::limits::{rule_depth, rule_entries, rule_file, Limits};
use super::names::{check_name, shown};
use super::tree::{Node, Tree};

pub(super) fn read(
    root: &Path,
    limits: &Limits,
    kind: SourceKind,
    commit: Option<String>,
) -> Result<BuildContext, IntakeError> {
    let rules = read_rules(root)?;
    let mut walk = Walk {
        tree: Tree::new(limits.clone()),
        rules: rules.as_ref(),
        visited: 0,
    };
    walk.dir(root, "", None)?;
    walk.tree.finish(kind, commit, true)
}

/// The `.dockerignore` at the root, if any (a symlink there is refused, not followed).
fn read_rules(root: &Path) -> Result<Option<Dockerignore>, IntakeError> {
    let path = root.join(".dockerignore");
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IntakeError::Io { path, source }),
    };
    if !meta.file_type().is_file() {
        return Err(rejected(".dockerignore", "must be a regular file"));
    }
    let (data, _) = read_regular(&path, ".dockerignore", MAX_BYTES, "is larger than 1 MiB")?;
    let mut rules = Dockerignore::parse(&data).map_err(|e| rejected(".dockerignore", e))?;
    if rules.is_empty() {
        return Ok(None);
    }
    rules.keep_build_files();
    Ok(Some(rules))
}

/// Opens `path` only if it is a regular file at the time of opening, and reads at most `max`
/// bytes of it.
fn read_regular(
    path: &Path,
    rel: &str,
    max: u64,
    too_big: &str,
) -> Result<(Vec<u8>, bool), IntakeError> {
    let io = |source| IntakeError::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                rejected(rel, "changed into a symlink while it was being read")
            } else {
                io(e)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(rejected(
            rel,
            "changed into something other than a file while it was being read",
        ));
    }
    if meta.len() > max {
        return Err(rejected(rel, too_big));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 > max {
        return Err(rejected(rel, too_big));
    }
    Ok((data, meta.permissions().mode() & 0o111 != 0))
}

struct Walk<'a> {
    tree: Tree,
    rules: Option<&'a Dockerignore>,
    /// Entries looked at, ignored ones included: bounds the work on a huge ignored tree.
    visited: u64,
}

impl Walk<'_> {
    fn dir(
        &mut self,
        dir: &Path,
        prefix: &str,
        parent: Option<&[bool]>,
    ) -> Result<(), IntakeError> {
        let limits = self.tree.limits.clone();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| IntakeError::Io { path, source }
        };
        let mut entries = Vec::new();
        for e in fs::read_dir(dir).map_err(io(dir))? {
            entries.push(e.map_err(io(dir))?);
            self.visited += 1;
            if self.visited > limits.max_entries.saturating_mul(10) {
                let at = if prefix.is_empty() {
                    "(submission)"
                } else {
                    prefix
                };
                return Err(rejected(
                    at,
                    format!("{}, counting ignored ones tenfold", rule_entries(&limits)),
                ));
            }
        }
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let full = e.path();
            let joined = |n: &str| {
                if prefix.is_empty() {
                    n.to_string()
                } else {
                    format!("{prefix}/{n}")
                }
            };
            let Some(name) = name.to_str() else {
                let shown_rel = joined(&shown(name.as_bytes()));
                return Err(rejected(shown_rel, "name is not valid UTF-8"));
            };
            let rel = joined(name);
            check_name(name).map_err(|rule| rejected(shown(rel.as_bytes()), rule))?;
            if name == ".git" {
                continue;
            }
            // The entry's own type: a symlink is a symlink, never what it points to.
            let ft = e.file_type().map_err(io(&full))?;
            let (decision, info) = match self.rules {
                Some(r) => r.decide(&rel, ft.is_dir(), parent),
                None => (Decision::Keep, Vec::new()),
            };
            let info = self.rules.map(|_| info);
            match decision {
                Decision::Prune => {
                    self.tree.ignored += 1;
                    continue;
                }
                Decision::Skip if !ft.is_dir() => {
                    self.tree.ignored += 1;
                    continue;
                }
                Decision::Skip => {
                    if rel.split('/').count() > limits.max_depth {
                        return Err(rejected(&rel, rule_depth(&limits)));
                    }
                    let before = self.tree.nodes.len();
                    self.dir(&full, &rel, info.as_deref())?;
                    if self.tree.nodes.len() == before {
                        self.tree.ignored += 1;
                    }
                    continue;
                }
                Decision::Keep => {}
            }
            if ft.is_symlink() {
                let target = fs::read_link(&full).map_err(io(&full))?;
                let target = target
                    .to_str()
                    .ok_or_else(|| rejected(&rel, "symlink target is not valid UTF-8"))?
                    .to_string();
                self.tree.insert(rel, Node::Symlink(target))?;
            } else if ft.is_dir() {
                self.tree.insert(rel.clone(), Node::Dir)?;
                self.dir(&full, &rel, info.as_deref())?;
            } else if ft.is_file() {
                // Fail before reading what cannot fit (lstat: the size of the entry itself).
                let len = e.metadata().map_err(io(&full))?.len();
                self.tree.check_size(&rel, len)?;
                let (data, executable) =
                    read_regular(&full, &rel, limits.max_file_bytes, &rule_file(&limits))?;
                self.tree.insert(rel, Node::File { data, executable })?;
            } else {
                use std::os::unix::fs::FileTypeExt;
                let what = if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_socket() {
                    "a socket"
                } else if ft.is_char_device() {
                    "a character device"
                } else if ft.is_block_device() {
                    "a block device"
                } else {
                    "of an unknown type"
                };
                return Err(rejected(
                    &rel,
                    format!("is {what}: only regular files, directories and symlinks are allowed"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::intake::{intake, Limits};

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
}
