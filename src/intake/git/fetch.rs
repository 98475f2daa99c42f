//! Fetching one commit: init a bare repository, fetch the commit, list its tree against the
//! limits, check it out, and hand the checkout to the directory walker; then, only when
//! [`Limits::history_commits`] asks, read the history's statistics (see `history`).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ChildStdout;

use super::history;
use super::runner::{dir_size, drain, find_git, read_bounded, Failure, Runner};
use super::source::{check_local, check_rev, is_commit_id, parse_source, Source};
use super::sweep::TEMP_PREFIX;
use crate::intake::context::{BuildContext, SourceKind};
use crate::intake::directory;
use crate::intake::error::{rejected, IntakeError};
use crate::intake::limits::{
    mib, rule_depth, rule_entries, rule_file, rule_path, rule_total, Limits,
};
use crate::intake::names::{normalize, shown};

/// Fetches one commit of a git repository and reads it as a build context.
///
/// `url` is an `https://` URL (optionally written `git+https://`), a `file:///absolute/path`
/// (or `git+file://…`), or a path to a repository on this machine (a working tree with a `.git`
/// directory, or a bare repository). `rev` is a branch, a tag or a full commit id; `None` takes
/// the repository's `HEAD`. See the `git` module's documentation for how `git` is confined.
///
/// Errors: a malformed source or ref is [`IntakeError::BadSource`] (a usage error); a
/// repository that cannot be fetched (unreachable, no such ref, past `limits.git_timeout`) is
/// [`IntakeError::Fetch`]; what the commit holds is judged like any submission
/// ([`IntakeError::Rejected`], [`IntakeError::NoDockerfile`]).
pub fn intake_git(
    url: &str,
    rev: Option<&str>,
    limits: &Limits,
) -> Result<BuildContext, IntakeError> {
    let source = parse_source(url)?;
    if let Some(r) = rev {
        check_rev(r)?;
    }
    let (remote, protocol): (OsString, &str) = match &source {
        Source::Https(u) => (u.into(), "https"),
        Source::Local(p) => (check_local(p)?.into_os_string(), "file"),
    };
    let fetch_error = |reason: String| IntakeError::Fetch {
        url: url.to_string(),
        reason,
    };
    let git = find_git().ok_or_else(|| {
        fetch_error("git is not installed (it is needed to fetch git sources)".into())
    })?;

    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| IntakeError::Io { path, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .tempdir()
        .map_err(io(&std::env::temp_dir()))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).map_err(io(tmp.path()))?;
    let home = tmp.path().join("home");
    let gitdir = tmp.path().join("repo.git");
    let tree = tmp.path().join("tree");
    for d in [&home, &tree] {
        fs::create_dir(d).map_err(io(d))?;
    }
    let runner = Runner::new(git, protocol, tmp.path(), &home, limits.git_timeout);
    let fail = |f: Failure| match f {
        Failure::Timeout => fetch_error(format!(
            "git did not finish within {} s",
            limits.git_timeout.as_secs_f64()
        )),
        Failure::TooBig => rejected(
            url,
            format!(
                "the repository's commit needs more than {} on disk",
                mib(limits.max_total_bytes)
            ),
        ),
        Failure::Exit(stderr) => fetch_error(stderr),
        Failure::Spawn(e) => fetch_error(format!("cannot run git: {e}")),
    };
    let gd: &OsStr = gitdir.as_os_str();

    runner
        .run(
            &[
                "init".as_ref(),
                "--quiet".as_ref(),
                "--bare".as_ref(),
                "--template=".as_ref(),
                gd,
            ],
            None,
            drain,
        )
        .1
        .map_err(fail)?;

    let refspec = format!("{}:refs/proctor/target", rev.unwrap_or("HEAD"));
    let fetched = runner
        .run(
            &[
                "--git-dir".as_ref(),
                gd,
                "fetch".as_ref(),
                "--quiet".as_ref(),
                "--depth=1".as_ref(),
                "--no-tags".as_ref(),
                "--no-recurse-submodules".as_ref(),
                "--end-of-options".as_ref(),
                &remote,
                refspec.as_ref(),
            ],
            Some((&gitdir, limits.max_total_bytes)),
            drain,
        )
        .1;
    if let Err(Failure::Exit(stderr)) = &fetched {
        // The objects arrived but fail git's own checks (a tree with a `.git` or `..` entry,
        // malformed objects): that is the repository's doing.
        if stderr.contains("fsck error") {
            return Err(rejected(
                url,
                format!("the repository fails git's integrity checks ({stderr})"),
            ));
        }
        let hint = match rev {
            Some(r)
                if !is_commit_id(r) && r.len() < 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                " (an abbreviated commit id cannot be fetched: give all 40 characters)"
            }
            _ => "",
        };
        return Err(fetch_error(format!("{stderr}{hint}")));
    }
    fetched.map_err(fail)?;
    if dir_size(&gitdir, limits.max_total_bytes) > limits.max_total_bytes {
        return Err(fail(Failure::TooBig));
    }

    let (out, status) = runner.run(
        &[
            "--git-dir".as_ref(),
            gd,
            "rev-parse".as_ref(),
            "--verify".as_ref(),
            "--quiet".as_ref(),
            "--end-of-options".as_ref(),
            "refs/proctor/target^{commit}".as_ref(),
        ],
        None,
        |r| read_bounded(r, 256),
    );
    let commit = String::from_utf8_lossy(&out.unwrap_or_default())
        .trim()
        .to_string();
    if status.is_err() || !is_commit_id(&commit) {
        return Err(fetch_error(format!(
            "{} does not name a commit",
            rev.unwrap_or("HEAD")
        )));
    }

    // List the tree before writing it out: limits first, so a bomb never reaches the disk.
    let (listed, status) = runner.run(
        &[
            "--git-dir".as_ref(),
            gd,
            "ls-tree".as_ref(),
            "-r".as_ref(),
            "-t".as_ref(),
            "-l".as_ref(),
            "-z".as_ref(),
            "--full-tree".as_ref(),
            commit.as_ref(),
        ],
        None,
        |r| precheck(r, limits, url),
    );
    match listed {
        Some(Err(e)) => return Err(e),
        Some(Ok(())) => status.map_err(fail)?,
        None => return Err(fetch_error("listing the commit failed".into())),
    }

    runner
        .run(
            &[
                "--git-dir".as_ref(),
                gd,
                "--work-tree".as_ref(),
                tree.as_os_str(),
                "checkout".as_ref(),
                "--quiet".as_ref(),
                "--force".as_ref(),
                "--no-recurse-submodules".as_ref(),
                "--detach".as_ref(),
                commit.as_ref(),
            ],
            // The listing bounded the files; this also covers what conversions add.
            Some((&tree, limits.max_total_bytes.saturating_mul(2))),
            drain,
        )
        .1
        .map_err(fail)?;

    // From here on only the walker looks at the checkout.
    let mut ctx = directory::read(&tree, limits, SourceKind::Git, Some(commit.clone()))?;
    if let Some(requested) = limits.history_commits {
        // Opt-in: git runs again, but only in proctor's own bare repository, and the checkout
        // is gone before it does.
        let _ = fs::remove_dir_all(&tree);
        ctx.history = Some(history::read(
            &runner,
            tmp.path(),
            &gitdir,
            &remote,
            &commit,
            requested,
            limits,
        ));
    }
    drop(tmp);
    Ok(ctx)
}

/// Holds the commit's listing (`ls-tree -r -t -l -z`) to the submission limits.
fn precheck(stdout: ChildStdout, limits: &Limits, url: &str) -> Result<(), IntakeError> {
    let mut r = BufReader::new(stdout);
    let mut rec = Vec::new();
    let mut entries = 0u64;
    let mut total = 0u64;
    let record_cap = limits.max_path_bytes as u64 + 256;
    let broken = |what: &str| IntakeError::Fetch {
        url: url.to_string(),
        reason: format!("unexpected output of git ls-tree: {what}"),
    };
    loop {
        rec.clear();
        let n = (&mut r)
            .take(record_cap)
            .read_until(0, &mut rec)
            .map_err(|e| broken(&e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        let complete = rec.last() == Some(&0);
        if complete {
            rec.pop();
        }
        let tab = rec
            .iter()
            .position(|&b| b == b'\t')
            .ok_or_else(|| broken("no tab"))?;
        let (meta, raw) = (&rec[..tab], &rec[tab + 1..]);
        if !complete {
            return Err(rejected(shown(raw), rule_path(limits)));
        }
        let meta = std::str::from_utf8(meta).map_err(|_| broken("not UTF-8"))?;
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let [_mode, kind, _oid, size] = fields[..] else {
            return Err(broken(meta));
        };
        let path = normalize(raw)
            .map_err(|rule| rejected(shown(raw), rule))?
            .ok_or_else(|| broken("empty path"))?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(rejected(&path, rule_entries(limits)));
        }
        if path.len() > limits.max_path_bytes {
            return Err(rejected(&path, rule_path(limits)));
        }
        if path.split('/').count() > limits.max_depth {
            return Err(rejected(&path, rule_depth(limits)));
        }
        if kind == "blob" {
            let size: u64 = size.parse().map_err(|_| broken(meta))?;
            if size > limits.max_file_bytes {
                return Err(rejected(&path, rule_file(limits)));
            }
            total += size;
            if total > limits.max_total_bytes {
                return Err(rejected(&path, rule_total(limits)));
            }
        }
    }
}
