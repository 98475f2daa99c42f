//! The vetted build context, and the canonical tar it is sent to the engine as.

use std::collections::BTreeMap;

use super::tree::Node;
use super::History;

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
    /// Statistics of the commit's history: only for a git source taken with
    /// [`Limits::history_commits`](super::Limits::history_commits), `None` otherwise. A history
    /// that could not be read does not fail the intake: it is `Some` with
    /// [`History::error`] set.
    pub history: Option<History>,
}

/// Sorted entries, owner 0:0, mtime 0, modes 0644/0755: the same files always give the same
/// bytes.
pub(super) fn canonical_tar(nodes: &BTreeMap<String, Node>) -> std::io::Result<Vec<u8>> {
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
    use std::fs;

    use crate::intake::test_support::{read, tar_with, DF};
    use crate::intake::{intake, Limits};

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
        assert!(ctx.history.is_none());
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
}
