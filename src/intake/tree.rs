//! The vetted tree every source is collected into: limits enforced as entries arrive, nothing
//! below a file or a symlink, no symlink leading out of the tree, `.dockerignore` applied.

use std::collections::BTreeMap;

use crate::digest::sha256_hex;

use super::context::{canonical_tar, BuildContext, SourceKind};
use super::dockerignore;
use super::error::{rejected, IntakeError};
use super::limits::{rule_depth, rule_entries, rule_file, rule_path, rule_total, Limits};
use super::names::is_unsafe_char;

#[derive(Debug)]
pub(super) enum Node {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
}

/// Collected entries, keyed by normalized relative path; enforces the limits as they arrive.
pub(super) struct Tree {
    pub(super) nodes: BTreeMap<String, Node>,
    pub(super) bytes: u64,
    pub(super) ignored: u64,
    pub(super) limits: Limits,
}

impl Tree {
    pub(super) fn new(limits: Limits) -> Tree {
        Tree {
            nodes: BTreeMap::new(),
            bytes: 0,
            ignored: 0,
            limits,
        }
    }

    /// Fails before a file's data is read when it cannot fit.
    pub(super) fn check_size(&self, path: &str, size: u64) -> Result<(), IntakeError> {
        if size > self.limits.max_file_bytes {
            return Err(rejected(path, rule_file(&self.limits)));
        }
        if self.bytes.saturating_add(size) > self.limits.max_total_bytes {
            return Err(rejected(path, rule_total(&self.limits)));
        }
        Ok(())
    }

    pub(super) fn insert(&mut self, path: String, node: Node) -> Result<(), IntakeError> {
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
    pub(super) fn finish(
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
            history: None,
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

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::intake::test_support::{list, read, read_with, rule, tar_with, DF};
    use crate::intake::{intake, IntakeError, Limits};

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
}
