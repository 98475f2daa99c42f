//! What a git source may be: the spec (a URL or a path), the ref, and a local repository that
//! can be read without reaching anything else on the machine.

use std::fs;
use std::path::{Path, PathBuf};

use crate::intake::error::IntakeError;
use crate::intake::names::shown;

/// True when `spec` names a git repository by URL: any `scheme://…` (only `https://` and
/// `file://` are fetched; [`intake_git`](super::intake_git) explains the others), or anything prefixed `git+`
/// (`git+https://…`, `git+file:///abs/path`).
///
/// A plain path is never a git source by itself: it is read as a directory (the working tree as
/// it is, uncommitted changes included, `.git` left out). To grade a local repository's
/// committed state instead, pass it with a ref (`--ref HEAD`, a branch, a tag or a commit id) or
/// spell it `git+file:///abs/path`.
pub fn is_git_source(spec: &str) -> bool {
    let s = spec.trim();
    if s.starts_with("git+") {
        return true;
    }
    match s.find("://") {
        Some(i) if i > 0 => {
            let scheme = &s[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }
        _ => false,
    }
}

pub(super) enum Source {
    Https(String),
    Local(PathBuf),
}

fn bad(msg: impl Into<String>) -> IntakeError {
    IntakeError::BadSource(msg.into())
}

pub(super) fn parse_source(spec: &str) -> Result<Source, IntakeError> {
    let s = spec.strip_prefix("git+").unwrap_or(spec);
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(format!(
            "{}: a git source must be a URL or a path without spaces or control characters",
            shown(spec.as_bytes())
        )));
    }
    if let Some(rest) = s.strip_prefix("https://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(bad(format!("{spec}: the URL has no host")));
        }
        if authority.contains('@') {
            return Err(bad(format!(
                "{}: credentials in the URL are not accepted (they would be recorded in the report and visible to other users of this machine); fetch a private repository yourself and pass its path",
                spec.split('@').next_back().map(|h| format!("https://…@{h}")).unwrap_or_default()
            )));
        }
        if s.len() > 2048 {
            return Err(bad("the URL is longer than 2048 characters"));
        }
        return Ok(Source::Https(s.to_string()));
    }
    if let Some(rest) = s.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(bad(format!(
                "{spec}: a file URL must be file:///absolute/path"
            )));
        }
        return Ok(Source::Local(PathBuf::from(rest)));
    }
    if let Some(i) = s.find("://") {
        return Err(bad(format!(
            "{spec}: only https:// URLs and repositories on this machine can be fetched, not {}://",
            &s[..i]
        )));
    }
    if spec.starts_with("git+") {
        return Err(bad(format!(
            "{spec}: git+ must be followed by https:// or file://"
        )));
    }
    Ok(Source::Local(PathBuf::from(s)))
}

/// A ref as `git check-ref-format` would take it, or a commit id; nothing that git could read as
/// an option, a refspec or a revision expression.
pub(super) fn check_rev(rev: &str) -> Result<(), IntakeError> {
    let ok = !rev.is_empty()
        && rev.len() <= 255
        && !rev.starts_with(['-', '+', '/', '.'])
        && !rev.ends_with(['/', '.'])
        && !rev.ends_with(".lock")
        && !rev.contains("..")
        && !rev.contains("//")
        && !rev.contains("@{")
        && rev != "@"
        && !rev
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "--ref {}: not a branch, tag or commit id",
            shown(rev.as_bytes())
        )))
    }
}

pub(super) fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A local repository that `upload-pack` can serve without reaching anything else on the
/// machine. Returns the path to fetch from.
pub(super) fn check_local(path: &Path) -> Result<PathBuf, IntakeError> {
    if fs::symlink_metadata(path).is_err() {
        return Err(IntakeError::NotFound(path.to_owned()));
    }
    let root = fs::canonicalize(path).map_err(|source| IntakeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let shown_root = root.display();
    let dotgit = root.join(".git");
    let gitdir = match fs::symlink_metadata(&dotgit) {
        Ok(m) if m.is_dir() => dotgit,
        Ok(m) if m.is_file() => {
            return Err(bad(format!(
                "{shown_root}/.git is a file pointing to another directory (a worktree or a submodule); give the repository it belongs to"
            )))
        }
        Ok(_) => return Err(bad(format!("{shown_root}/.git is a symlink"))),
        Err(_) => {
            let bare = fs::symlink_metadata(root.join("HEAD")).is_ok_and(|m| m.is_file())
                && fs::symlink_metadata(root.join("objects")).is_ok_and(|m| m.is_dir());
            if !bare {
                return Err(bad(format!("{shown_root} is not a git repository")));
            }
            root.clone()
        }
    };
    if gitdir.join("commondir").exists() {
        return Err(bad(format!(
            "{} is a linked worktree's git directory; give the main repository",
            gitdir.display()
        )));
    }
    let objects = gitdir.join("objects");
    match fs::symlink_metadata(&objects) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(bad(format!(
                "{} is missing or a symlink",
                objects.display()
            )))
        }
    }
    for name in ["info/alternates", "info/http-alternates"] {
        if fs::symlink_metadata(objects.join(name)).is_ok() {
            return Err(bad(format!(
                "{} uses objects/{name}, which would read objects from elsewhere on this machine; give a self-contained repository (git repack -a)",
                gitdir.display()
            )));
        }
    }
    // upload-pack opens object and pack files wherever their links point.
    let mut stack = vec![objects];
    let mut seen = 0u64;
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| IntakeError::Io {
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            seen += 1;
            if seen > 1_000_000 {
                return Err(bad(format!(
                    "{} has more than a million object files",
                    gitdir.display()
                )));
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                return Err(bad(format!(
                    "{} is a symlink inside the repository's object store",
                    e.path().display()
                )));
            }
            if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{intake_git, Limits};

    #[test]
    fn git_sources_are_urls_or_git_plus() {
        for yes in [
            "https://github.com/a/b.git",
            "https://example.org/repo",
            "git+https://example.org/repo",
            "git+file:///srv/repo",
            "ssh://host/repo",
            "http://host/repo.git",
        ] {
            assert!(is_git_source(yes), "{yes}");
        }
        for no in [
            "./submission",
            "/abs/submission.tar.gz",
            "submission",
            "a:b",
        ] {
            assert!(!is_git_source(no), "{no}");
        }
        assert!(!is_git_source("://nothing"));
    }

    #[test]
    fn only_https_and_local_are_fetched() {
        for (spec, word) in [
            ("http://host/r.git", "only https"),
            ("ssh://host/r.git", "only https"),
            ("git+ssh://host/r.git", "only https"),
            ("https://user:token@host/r.git", "credentials"),
            ("https:///path", "no host"),
            ("file://relative/x", "file:///"),
            ("git+/abs", "git+ must be followed"),
            ("https://host/a b", "without spaces"),
        ] {
            let err = intake_git(spec, None, &Limits::default()).unwrap_err();
            assert!(err.is_usage_error(), "{spec}: {err:?}");
            assert!(err.to_string().contains(word), "{spec}: {err}");
            assert!(!err.to_string().contains("token"), "{err}");
        }
    }

    #[test]
    fn refs_that_git_could_misread_are_refused() {
        for rev in [
            "-x",
            "--upload-pack=evil",
            "+main",
            "a:b",
            "HEAD~1",
            "a..b",
            "x@{1}",
            "a b",
            "",
            "main.lock",
            "a\\b",
        ] {
            assert!(check_rev(rev).is_err(), "{rev:?}");
        }
        for rev in ["main", "v1.2.3", "feature/x", "HEAD", &"a".repeat(40)] {
            assert!(check_rev(rev).is_ok(), "{rev:?}");
        }
    }
}
