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
//! - git is never run again once the files are checked out: the directory walker reads them
//!   (no link followed, `.git` left out, `.dockerignore` applied).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::context::{BuildContext, SourceKind};
use super::error::{rejected, IntakeError};
use super::limits::{mib, rule_depth, rule_entries, rule_file, rule_path, rule_total, Limits};
use super::names::{is_unsafe_char, normalize, shown};

/// True when `spec` names a git repository by URL: any `scheme://…` (only `https://` and
/// `file://` are fetched; [`intake_git`] explains the others), or anything prefixed `git+`
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

enum Source {
    Https(String),
    Local(PathBuf),
}

fn bad(msg: impl Into<String>) -> IntakeError {
    IntakeError::BadSource(msg.into())
}

fn parse_source(spec: &str) -> Result<Source, IntakeError> {
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
fn check_rev(rev: &str) -> Result<(), IntakeError> {
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

fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A local repository that `upload-pack` can serve without reaching anything else on the
/// machine. Returns the path to fetch from.
fn check_local(path: &Path) -> Result<PathBuf, IntakeError> {
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

fn find_git() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Fetches one commit of a git repository and reads it as a build context.
///
/// `url` is an `https://` URL (optionally written `git+https://`), a `file:///absolute/path`
/// (or `git+file://…`), or a path to a repository on this machine (a working tree with a `.git`
/// directory, or a bare repository). `rev` is a branch, a tag or a full commit id; `None` takes
/// the repository's `HEAD`. See the module documentation for how `git` is confined.
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
    let ctx = super::directory::read(&tree, limits, SourceKind::Git, Some(commit));
    drop(tmp);
    ctx
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

fn drain(mut r: ChildStdout) {
    let _ = std::io::copy(&mut r, &mut std::io::sink());
}

fn read_bounded(r: impl Read, max: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = r.take(max).read_to_end(&mut out);
    out
}

/// Bytes under `dir` (files only, no link followed), counted up to a little past `cap`.
fn dir_size(dir: &Path, cap: u64) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
                if total > cap {
                    return total;
                }
            }
        }
    }
    total
}

enum Failure {
    Timeout,
    TooBig,
    Exit(String),
    Spawn(std::io::Error),
}

/// Runs `git` confined: cleared environment, fixed config, own process group, deadline.
struct Runner {
    git: PathBuf,
    env: Vec<(&'static str, OsString)>,
    config: Vec<String>,
    cwd: PathBuf,
    deadline: Instant,
}

impl Runner {
    fn new(git: PathBuf, protocol: &str, tmp: &Path, home: &Path, timeout: Duration) -> Runner {
        let mut path = OsString::from("/usr/local/bin:/usr/bin:/bin");
        if let Some(dir) = git.parent() {
            path.push(":");
            path.push(dir);
        }
        let env: Vec<(&'static str, OsString)> = vec![
            ("PATH", path),
            ("HOME", home.into()),
            ("XDG_CONFIG_HOME", home.join(".config").into()),
            ("TMPDIR", tmp.into()),
            ("LC_ALL", "C".into()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_CONFIG_SYSTEM", "/dev/null".into()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
            ("GIT_ATTR_NOSYSTEM", "1".into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
            ("GIT_ALLOW_PROTOCOL", protocol.into()),
            ("GIT_LFS_SKIP_SMUDGE", "1".into()),
            ("GIT_NO_LAZY_FETCH", "1".into()),
            ("GIT_NO_REPLACE_OBJECTS", "1".into()),
            ("GIT_OPTIONAL_LOCKS", "0".into()),
        ];
        let config = [
            "core.hooksPath=/dev/null",
            "core.fsmonitor=false",
            "core.symlinks=true",
            "core.protectNTFS=true",
            "core.protectHFS=true",
            "core.autocrlf=false",
            "core.askPass=",
            "credential.helper=",
            "protocol.allow=never",
            &format!("protocol.{protocol}.allow=always"),
            "transfer.fsckObjects=true",
            "fetch.recurseSubmodules=false",
            "submodule.recurse=false",
            "filter.lfs.smudge=",
            "filter.lfs.process=",
            "filter.lfs.required=false",
            "gc.auto=0",
            "maintenance.auto=false",
            "advice.detachedHead=false",
            "init.defaultBranch=proctor",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Runner {
            git,
            env,
            config,
            cwd: home.to_owned(),
            deadline: Instant::now() + timeout,
        }
    }

    /// Runs one git command; `consume` reads its stdout on a thread. The command is killed (with
    /// everything it started) past the deadline, or when `watch`'s directory grows past its cap.
    fn run<T: Send>(
        &self,
        args: &[&OsStr],
        watch: Option<(&Path, u64)>,
        consume: impl FnOnce(ChildStdout) -> T + Send,
    ) -> (Option<T>, Result<(), Failure>) {
        let mut cmd = Command::new(&self.git);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for c in &self.config {
            cmd.arg("-c").arg(c);
        }
        cmd.args(args);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return (None, Err(Failure::Spawn(e))),
        };
        let pid = child.id() as libc::pid_t;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        std::thread::scope(|s| {
            let out = s.spawn(move || consume(stdout));
            let err = s.spawn(move || read_tail(stderr, 16 << 10));
            let mut failure = None;
            let mut next_watch = Instant::now();
            loop {
                match exited(pid) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        failure = Some(Failure::Spawn(e));
                        break;
                    }
                }
                let now = Instant::now();
                if now >= self.deadline {
                    failure = Some(Failure::Timeout);
                    break;
                }
                if let Some((dir, cap)) = watch {
                    if now >= next_watch {
                        if dir_size(dir, cap) > cap {
                            failure = Some(Failure::TooBig);
                            break;
                        }
                        next_watch = now + Duration::from_millis(200);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // The leader is not reaped yet (or still running), so its pid, which is the group's
            // id, cannot have been reused: the group holds only what this git started. Nothing
            // of it may outlive this call.
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let status = child.wait();
            // Give the rest of the group (a remote helper, upload-pack) a moment to be gone.
            // Signal 0 only asks; it cannot hurt a process that might later reuse the id.
            let until = Instant::now() + Duration::from_millis(500);
            // SAFETY: as above.
            while unsafe { libc::kill(-pid, 0) } == 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            let value = out.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let stderr = err.join().unwrap_or_default();
            let result = match (failure, status) {
                (Some(f), _) => Err(f),
                (None, Err(e)) => Err(Failure::Spawn(e)),
                (None, Ok(st)) if st.success() => Ok(()),
                (None, Ok(st)) => Err(Failure::Exit(summarize(&stderr, st))),
            };
            (Some(value), result)
        })
    }
}

/// Whether the process has exited, without reaping it.
fn exited(pid: libc::pid_t) -> std::io::Result<bool> {
    // SAFETY: siginfo_t is plain data; waitid fills it in. WNOWAIT leaves the child waitable.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: si_pid is valid for a WEXITED report and zero when nothing has exited.
    Ok(unsafe { info.si_pid() } != 0)
}

fn read_tail(mut r: impl Read, max: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * max {
                    tail.drain(..tail.len() - max);
                }
            }
        }
    }
}

/// The last lines git printed, printable and short.
fn summarize(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| !is_unsafe_char(*c))
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let last: Vec<&String> = lines.iter().rev().take(4).collect::<Vec<_>>();
    let mut msg = last
        .into_iter()
        .rev()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if msg.chars().count() > 600 {
        msg = format!(
            "…{}",
            msg.chars()
                .rev()
                .take(600)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        );
    }
    if msg.is_empty() {
        format!("git failed ({status})")
    } else {
        msg
    }
}

/// Temp dirs of git intake are named `proctor-git-<pid>-<random>`, so that a run killed before
/// it could remove its own can be found and removed later.
const TEMP_PREFIX: &str = "proctor-git-";

/// Removes git intake temp dirs of processes that are gone (`alive` says which pids are not).
/// Returns how many were removed.
pub fn sweep_temp_dirs(alive: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Only directories this user made: never follow a symlink planted under the name, and
        // leave other users' alone (the temp dir is shared).
        let ours = e.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions.
            m.is_dir() && m.uid() == unsafe { libc::geteuid() }
        });
        if ours && !alive(pid) && fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_of_dead_processes_are_swept_and_live_ones_kept() {
        let me = std::process::id();
        // Beyond any pid_max: a process that cannot be alive.
        let dead = 4_000_000_000u32;
        let mk = |pid: u32| {
            tempfile::Builder::new()
                .prefix(&format!("{TEMP_PREFIX}{pid}-"))
                .tempdir()
                .unwrap()
                .keep()
        };
        let (mine, orphan) = (mk(me), mk(dead));
        fs::write(orphan.join("f"), "x").unwrap();
        let removed = sweep_temp_dirs(|pid| pid != dead);
        assert!(removed >= 1);
        assert!(!orphan.exists());
        assert!(mine.exists());
        fs::remove_dir_all(mine).unwrap();
    }

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
