//! The history of a git submission, as numbers for a code review (opt-in with
//! [`Limits::history_commits`]).
//!
//! # How it is read
//!
//! Only after the commit has been checked out, read into the vetted build context and its
//! checkout deleted, and only in proctor's own bare repository (the temporary one the commit was
//! fetched into, never a `.git` of the submission), with the same confined `Runner` as the
//! fetch (cleared environment, fixed config, no hooks, process group, the intake's one
//! deadline):
//!
//! 1. `git -c remote.proctor.url=<source> fetch --depth=<n+1> --filter=blob:none --no-tags
//!    --no-recurse-submodules --end-of-options proctor <commit id>` deepens the fetched commit
//!    to `n + 1` commits of history: commits and trees only. The commit is fetched by its id,
//!    so a ref that moved since the first fetch changes nothing. The remote is named, on the
//!    command line only, because git records the remote of a partial fetch as its "promisor"
//!    and refuses a path as that name; the record (`remote.proctor.promisor`,
//!    `extensions.partialClone`) goes into the config of proctor's own repository. The fetch
//!    is watched like the first one, against `max_total_bytes` for the whole repository, and
//!    received objects are still checked (`transfer.fsckObjects`). For this command only,
//!    `GIT_CONFIG_GLOBAL` is a file proctor writes with `uploadpack.allowFilter=true`: git
//!    drops `-c` settings for the `upload-pack` it starts for a repository on this machine,
//!    and without the setting that `upload-pack` ignores the filter and sends every blob of
//!    the history. An https server that does not support filters sends the blobs too; the
//!    size watch still bounds them.
//! 2. `git -c core.quotePath=true log --no-renames --name-only --no-mailmap
//!    --no-show-signature --no-notes --no-color --no-ext-diff --no-textconv --date=raw
//!    --format=<fields> --max-count=<n+1> --end-of-options <commit id> --` reads commit
//!    metadata and the names of the files each commit changed, from trees alone: no rename
//!    detection, text conversion, external diff, mailmap or signature check, nothing that
//!    needs a blob or runs a program. Blobs are absent and `GIT_NO_LAZY_FETCH` forbids
//!    fetching them, so a command that wanted one would fail rather than reach the network.
//!    Merge commits show no files (git log's default without `-m`).
//!
//! Asking for `n + 1` commits tells whether history goes on past `n` ([`History::cut`]):
//! git marks the last fetched commit as a shallow boundary even when it is the root, so the
//! boundary alone cannot tell. A boundary commit (listed in the repository's `shallow` file)
//! is shown by git log as if it added every file of its tree, so its files are not counted.
//!
//! # Bounds
//!
//! At most [`MAX_HISTORY_COMMITS`] commits; at most 16 MiB of `git log` output is read (then
//! the pipe is closed and git stops); of each commit's header (identity, subject, body) the
//! first 16 KiB are looked at; file names are classified up to 10,000 per commit and 200,000
//! in all, each on its first 4 KiB. Past a cap the numbers cover what was read and
//! [`History::truncated`] says so.
//!
//! # What is kept
//!
//! Numbers and classifications only: no name, email, subject, body or file name leaves the
//! parser. Authors are told apart by a hash of their email, held while parsing and then
//! dropped. The format frames each commit as `RS <id> US … US <id> RS` (RS = 0x1e,
//! US = 0x1f): a message cannot contain its own commit's id, so no subject or body can end its
//! record early or forge the next one; file names come C-quoted (`core.quotePath`), so they
//! hold no raw control character. An identity or subject with a US inside can only shift the
//! fields of its own commit.
//!
//! A history that cannot be read does not fail the intake: [`History::error`] gives a short
//! reason from a fixed vocabulary (never git's or a server's own words) and the numbers are
//! zero.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::runner::{dir_size, drain, Failure, Runner};
use crate::intake::limits::{mib, Limits};

/// The most commits of history read, whatever [`Limits::history_commits`] asks.
pub const MAX_HISTORY_COMMITS: u32 = 10_000;
/// Bytes of `git log` output read at most.
const MAX_LOG_BYTES: u64 = 16 << 20;
/// Bytes of a commit's header (parents, date, email, subject, body) looked at.
const MAX_HEADER_BYTES: usize = 16 << 10;
/// Bytes of a file name looked at.
const MAX_NAME_BYTES: usize = 4 << 10;
/// File names classified per commit, and in all.
const MAX_FILES_PER_COMMIT: u32 = 10_000;
const MAX_FILES: u64 = 200_000;
/// Bytes of the repository's `shallow` file read (a boundary line is 41 or 65 bytes).
const MAX_SHALLOW_BYTES: u64 = 4 << 20;

const RS: u8 = 0x1e;
const US: u8 = 0x1f;
/// One record per commit: id, parents, author date (`<seconds> <+hhmm>`), author email,
/// subject, body, id again.
const FORMAT: &str = "--format=tformat:%x1e%H%x1f%P%x1f%ad%x1f%ae%x1f%s%x1f%b%x1f%H%x1e";
/// proctor's global config for the history fetch (see the module documentation).
const HISTORY_CONFIG: &str = "[uploadpack]\n\tallowFilter = true\n";

/// Statistics of a git submission's recent history, for a code review: aggregate numbers and
/// classifications only, never a name, an email, a message or a file name.
///
/// Commits are read newest first, as `git log` lists them (by commit date). Times are author
/// times. Shares are between 0 and 1, rounded to 4 decimals; a share or a median over no commit
/// is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct History {
    /// The most commits that were to be read: [`Limits::history_commits`], at least 1 and at
    /// most 10,000.
    pub limit: u32,
    /// Commits read (merges included).
    pub commits: u32,
    /// True when history goes on past the commits read: the limit was reached (the shallow
    /// fetch stopped there), or a read cap stopped the reading (`truncated`).
    pub cut: bool,
    /// True when a read cap (output bytes, file names) stopped the reading early; the numbers
    /// cover what was read.
    pub truncated: bool,
    /// Commits with more than one parent.
    pub merges: u32,
    /// Distinct author emails (compared without case). Only the count is kept.
    pub authors: u32,
    /// Earliest and latest author time of the commits read, RFC 3339 in UTC.
    pub first_commit: Option<String>,
    pub last_commit: Option<String>,
    /// Days between the earliest and the latest author time (fractional).
    pub span_days: Option<f64>,
    /// Distinct calendar days with a commit, each day taken in the author's own time zone.
    pub active_days: u32,
    /// Commits per active day.
    pub commits_per_active_day: Option<f64>,
    /// The largest share of the commits made on one day.
    pub busiest_day_share: Option<f64>,
    /// How the subject lines read (merge commits left out: git writes their subjects).
    pub subjects: SubjectStats,
    /// Whether tests grew with the code.
    pub tests: TestStats,
    /// Why the history could not be read, in a few fixed words; the numbers are then zero.
    /// Reading the history never fails the intake.
    pub error: Option<String>,
}

/// Subject lines of the non-merge commits read. A subject is git's `%s` (the first paragraph
/// of the message on one line), decoded as UTF-8 (invalid bytes replaced), control characters
/// removed, trimmed; lengths are in characters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubjectStats {
    /// Non-merge commits the shares are over.
    pub commits: u32,
    pub median_length: Option<f64>,
    /// Share of subjects longer than 72 characters.
    pub long_share: Option<f64>,
    /// Share of subjects shorter than 10 characters.
    pub short_share: Option<f64>,
    /// Share of generic subjects that say nothing of the change: see [`GENERIC_SUBJECTS`]. A
    /// subject is compared without case, with its whitespace collapsed and its trailing
    /// `.`, `!`, `?` and `…` removed. A subject with no letter or digit is generic. So are the
    /// GitHub web editor's defaults: "add files via upload", and "update", "create" or
    /// "delete" followed by one path (a word with a `.` or a `/`). An "initial commit" (see
    /// [`INITIAL_SUBJECTS`]) is fine once, for the oldest commit that says it, and generic
    /// after that.
    pub generic_share: Option<f64>,
    /// Share of subjects that start with a capital letter or an imperative verb of
    /// [`IMPERATIVE_VERBS`] ("add", "fix", "train"...), after a Conventional Commits prefix
    /// (`feat:`, `fix(api)!:`) if there is one. An approximation: it does not parse English.
    pub capitalized_or_imperative_share: Option<f64>,
    /// Share of commits whose message has a body (anything but whitespace past the subject).
    pub with_body_share: Option<f64>,
}

/// Code and test files the commits changed. A **test file** is any file under a directory
/// named `tests`, `test` or `__tests__`, or a code file named `test_*`, `*_test`, `*.test`,
/// `*_spec`, `*.spec`, `test` or `tests` (before its extension), or `conftest.py`. A **code
/// file** is a file with an extension of [`CODE_EXTENSIONS`] that is not a test file.
///
/// Merge commits (git lists no files for them) and shallow boundary commits (their files are
/// unknown) are left out of every number here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestStats {
    /// Commits that changed at least one code file.
    pub code_commits: u32,
    /// Commits that changed at least one test file.
    pub test_commits: u32,
    /// Commits that changed both.
    pub code_and_test_commits: u32,
    /// Of the code commits, the share that changed a test file too, or whose next commit (the
    /// next newer one in git log's order, merges and boundaries left out) did.
    pub code_with_tests_share: Option<f64>,
}

/// Subjects that say nothing of the change (compared as [`SubjectStats::generic_share`] says).
pub const GENERIC_SUBJECTS: &[&str] = &[
    "wip",
    "fix",
    "fixes",
    "fixed",
    "fix bug",
    "fix bugs",
    "bug fix",
    "bugfix",
    "bugfixes",
    "fix stuff",
    "small fix",
    "small fixes",
    "minor fix",
    "minor fixes",
    "quick fix",
    "update",
    "updates",
    "updated",
    "small update",
    "minor update",
    "change",
    "changes",
    "changed",
    "some changes",
    "more changes",
    "stuff",
    "more stuff",
    "things",
    "asdf",
    "asd",
    "qwe",
    "qwerty",
    "commit",
    "test",
    "tests",
    "testing",
    "tmp",
    "temp",
    "misc",
    "more",
    "minor",
    "save",
    "edit",
    "edits",
    "done",
    "work",
    "working",
    "progress",
    "foo",
    "final",
    "final version",
    "finished",
    "cleanup",
    "clean up",
    "refactor",
    "code",
    "files",
    "new",
    "add",
    "added",
    "push",
    "upload",
    "latest",
    "add files via upload",
];

/// "Initial commit" subjects: fine once, for the oldest commit that says it.
pub const INITIAL_SUBJECTS: &[&str] = &[
    "initial commit",
    "first commit",
    "init",
    "initial",
    "initial import",
    "initial version",
];

/// First words that count as an imperative verb.
pub const IMPERATIVE_VERBS: &[&str] = &[
    "add",
    "adjust",
    "allow",
    "apply",
    "avoid",
    "bump",
    "build",
    "cache",
    "change",
    "check",
    "clean",
    "compute",
    "configure",
    "convert",
    "create",
    "define",
    "delete",
    "deploy",
    "describe",
    "disable",
    "document",
    "drop",
    "enable",
    "ensure",
    "expose",
    "extract",
    "fix",
    "format",
    "handle",
    "ignore",
    "implement",
    "improve",
    "include",
    "increase",
    "initialize",
    "install",
    "introduce",
    "limit",
    "load",
    "log",
    "make",
    "merge",
    "move",
    "normalize",
    "optimize",
    "parse",
    "pin",
    "prepare",
    "prevent",
    "print",
    "reduce",
    "refactor",
    "remove",
    "rename",
    "reorganize",
    "replace",
    "restructure",
    "return",
    "revert",
    "rewrite",
    "run",
    "save",
    "serve",
    "set",
    "show",
    "simplify",
    "skip",
    "sort",
    "speed",
    "split",
    "start",
    "stop",
    "store",
    "support",
    "switch",
    "test",
    "track",
    "train",
    "tune",
    "update",
    "upgrade",
    "use",
    "validate",
    "wire",
    "write",
];

/// Extensions (compared without case) of code files.
pub const CODE_EXTENSIONS: &[&str] = &[
    "py", "pyi", "pyx", "ipynb", "r", "jl", "js", "jsx", "mjs", "cjs", "ts", "tsx", "go", "rs",
    "java", "kt", "scala", "c", "h", "cc", "cpp", "cxx", "hpp", "cs", "rb", "php", "swift", "sh",
    "sql",
];

impl History {
    /// A history that could not be read: `reason` and zeros.
    fn failed(limit: u32, reason: impl Into<String>) -> History {
        History {
            limit,
            error: Some(reason.into()),
            ..History::default()
        }
    }
}

/// Deepens proctor's bare repository at `gitdir` to `requested` commits behind `commit` and
/// reads their statistics. Never fails: a history that cannot be read has `error` set.
pub(super) fn read(
    runner: &Runner,
    tmp: &Path,
    gitdir: &Path,
    remote: &OsStr,
    commit: &str,
    requested: u32,
    limits: &Limits,
) -> History {
    let limit = requested.clamp(1, MAX_HISTORY_COMMITS);
    let failed = |reason: String| History::failed(limit, reason);
    let config = tmp.join("history.gitconfig");
    if fs::write(&config, HISTORY_CONFIG).is_err() {
        return failed("cannot prepare the history fetch".into());
    }
    let runner = runner.with_global_config(&config);
    let too_big = || {
        failed(format!(
            "the history needs more than {} on disk",
            mib(limits.max_total_bytes)
        ))
    };
    let timed_out = || {
        failed(format!(
            "the history could not be read within {} s",
            limits.git_timeout.as_secs_f64()
        ))
    };
    let gd = gitdir.as_os_str();
    let depth = format!("--depth={}", limit + 1);
    // A named remote: git keeps a partial fetch's objects apart as the remote's ("promisor"),
    // and refuses a remote named by a path as one.
    let mut url = OsString::from("remote.proctor.url=");
    url.push(remote);
    let fetched = runner
        .run(
            &[
                "-c".as_ref(),
                url.as_os_str(),
                "--git-dir".as_ref(),
                gd,
                "fetch".as_ref(),
                "--quiet".as_ref(),
                depth.as_ref(),
                "--filter=blob:none".as_ref(),
                "--no-tags".as_ref(),
                "--no-recurse-submodules".as_ref(),
                "--end-of-options".as_ref(),
                "proctor".as_ref(),
                commit.as_ref(),
            ],
            Some((gitdir, limits.max_total_bytes)),
            drain,
        )
        .1;
    match fetched {
        Ok(()) => {}
        Err(Failure::Timeout) => return timed_out(),
        Err(Failure::TooBig) => return too_big(),
        Err(Failure::Exit(stderr)) if stderr.contains("fsck error") => {
            return failed("the history fails git's integrity checks".into())
        }
        Err(Failure::Exit(_)) => return failed("git could not fetch the history".into()),
        Err(Failure::Spawn(_)) => return failed("cannot run git".into()),
    }
    if dir_size(gitdir, limits.max_total_bytes) > limits.max_total_bytes {
        return too_big();
    }
    let boundary = fs::File::open(gitdir.join("shallow"))
        .map(|f| {
            let mut raw = Vec::new();
            let _ = f.take(MAX_SHALLOW_BYTES).read_to_end(&mut raw);
            parse_shallow(&raw)
        })
        .unwrap_or_default();

    let max_count = format!("--max-count={}", limit + 1);
    let (parsed, status) = runner.run(
        &[
            // File names C-quoted: no raw control character in them (git's default, made sure).
            "-c".as_ref(),
            "core.quotePath=true".as_ref(),
            "--git-dir".as_ref(),
            gd,
            "log".as_ref(),
            "--no-renames".as_ref(),
            "--name-only".as_ref(),
            "--no-mailmap".as_ref(),
            "--no-show-signature".as_ref(),
            "--no-notes".as_ref(),
            "--no-color".as_ref(),
            "--no-ext-diff".as_ref(),
            "--no-textconv".as_ref(),
            "--date=raw".as_ref(),
            FORMAT.as_ref(),
            max_count.as_ref(),
            "--end-of-options".as_ref(),
            commit.as_ref(),
            "--".as_ref(),
        ],
        None,
        |out| parse_log(out, limit, &boundary),
    );
    match (parsed, status) {
        (_, Err(Failure::Timeout)) => timed_out(),
        (Some(parsed), Ok(())) => parsed.history,
        // The parser closed the pipe early (a cap, or the commit past the limit): git's
        // failure to write the rest is expected.
        (Some(parsed), Err(Failure::Exit(_))) if parsed.stopped_early => parsed.history,
        (_, Err(Failure::Spawn(_))) => failed("cannot run git".into()),
        _ => failed("git could not read the history".into()),
    }
}

/// The ids in a repository's `shallow` file: the boundary commits of a shallow fetch.
pub(super) fn parse_shallow(raw: &[u8]) -> HashSet<Vec<u8>> {
    raw.split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| matches!(l.len(), 40 | 64) && l.iter().all(u8::is_ascii_hexdigit))
        .map(|l| l.to_ascii_lowercase())
        .collect()
}

/// What [`parse_log`] read.
pub(super) struct Parsed {
    pub history: History,
    /// The parser stopped before the end of the output (a cap, or the commit past the limit).
    pub stopped_early: bool,
}

/// Reads `git log` output in [`FORMAT`] with `--name-only` (at most `limit + 1` commits asked)
/// into statistics. Pure but for reading `r`; every input is bounded (see the module
/// documentation): at most 16 MiB are read, whatever `r` holds.
pub(super) fn parse_log(mut r: impl Read, limit: u32, boundary: &HashSet<Vec<u8>>) -> Parsed {
    let limit = limit.clamp(1, MAX_HISTORY_COMMITS);
    let mut p = LogParser::new(limit, boundary);
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0u64;
    let mut stopped_early = false;
    loop {
        let room = (MAX_LOG_BYTES - read).min(buf.len() as u64) as usize;
        if room == 0 {
            // The cap: whatever follows is not read.
            p.truncated = true;
            stopped_early = true;
            break;
        }
        let n = match r.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        read += n as u64;
        if !p.feed(&buf[..n]) {
            stopped_early = true;
            break;
        }
    }
    Parsed {
        history: p.finish(),
        stopped_early,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generic {
    No,
    Yes,
    Initial,
}

/// One commit, reduced to what the statistics need.
#[derive(Debug)]
struct Commit {
    /// Author time (seconds) and the author's UTC offset (seconds).
    time: Option<(i64, i64)>,
    merge: bool,
    author: u64,
    subject_chars: usize,
    generic: Generic,
    styled: bool,
    body: bool,
    /// (code, test) files touched; `None` when unknown (a shallow boundary).
    files: Option<(bool, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records: the file names of the current commit, one per line.
    Names,
    /// After RS: the commit id, up to US.
    Id,
    /// The header, up to US + id + RS.
    Header,
}

struct LogParser<'a> {
    limit: u32,
    boundary: &'a HashSet<Vec<u8>>,
    state: State,
    id: Vec<u8>,
    end: Vec<u8>,
    matched: usize,
    header: Vec<u8>,
    seen: usize,
    line: Vec<u8>,
    current: Option<Commit>,
    names_in_commit: u32,
    names: u64,
    ids: HashSet<Vec<u8>>,
    commits: Vec<Commit>,
    more: bool,
    truncated: bool,
}

impl<'a> LogParser<'a> {
    fn new(limit: u32, boundary: &'a HashSet<Vec<u8>>) -> Self {
        LogParser {
            limit,
            boundary,
            state: State::Names,
            id: Vec::with_capacity(64),
            end: Vec::with_capacity(66),
            matched: 0,
            header: Vec::new(),
            seen: 0,
            line: Vec::new(),
            current: None,
            names_in_commit: 0,
            names: 0,
            ids: HashSet::new(),
            commits: Vec::new(),
            more: false,
            truncated: false,
        }
    }

    /// Takes the next bytes; false once nothing more is wanted.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            match self.state {
                State::Names => match b {
                    RS => {
                        self.end_line();
                        self.end_commit();
                        self.id.clear();
                        self.state = State::Id;
                    }
                    b'\n' => self.end_line(),
                    _ => {
                        if self.line.len() < MAX_NAME_BYTES {
                            self.line.push(b);
                        }
                    }
                },
                State::Id => match b {
                    _ if b.is_ascii_hexdigit() && self.id.len() < 64 => {
                        self.id.push(b.to_ascii_lowercase())
                    }
                    US if matches!(self.id.len(), 40 | 64) => {
                        self.end.clear();
                        self.end.push(US);
                        self.end.extend_from_slice(&self.id);
                        self.end.push(RS);
                        self.matched = 0;
                        self.header.clear();
                        self.seen = 0;
                        self.state = State::Header;
                    }
                    RS => self.id.clear(),
                    // Not a record: skip to the next one.
                    _ => self.state = State::Names,
                },
                State::Header => {
                    self.seen += 1;
                    if self.header.len() < MAX_HEADER_BYTES + self.end.len() {
                        self.header.push(b);
                    }
                    // US opens the end marker and appears nowhere else in it.
                    self.matched = if b == self.end[self.matched] {
                        self.matched + 1
                    } else {
                        usize::from(b == US)
                    };
                    if self.matched == self.end.len() {
                        self.state = State::Names;
                        if !self.end_header() {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// The header is complete; false once the commit past the limit is reached.
    fn end_header(&mut self) -> bool {
        let content = self.seen - self.end.len();
        self.header.truncate(content.min(MAX_HEADER_BYTES));
        if !self.ids.insert(self.id.clone()) {
            // A repeated id is not a new commit (git never repeats one).
            return true;
        }
        if self.commits.len() as u32 >= self.limit {
            self.more = true;
            return false;
        }
        let known = !self.boundary.contains(&self.id);
        self.current = Some(commit_from(&self.header, known));
        self.names_in_commit = 0;
        true
    }

    fn end_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        self.name(&line);
        self.line = line;
        self.line.clear();
    }

    /// One file name of the current commit.
    fn name(&mut self, line: &[u8]) {
        let Some(commit) = self.current.as_mut() else {
            return;
        };
        self.names_in_commit += 1;
        self.names += 1;
        if self.names_in_commit > MAX_FILES_PER_COMMIT || self.names > MAX_FILES {
            self.truncated = true;
            return;
        }
        if let Some((code, test)) = commit.files.as_mut() {
            let (c, t) = classify(&unquote(line));
            *code |= c;
            *test |= t;
        }
    }

    fn end_commit(&mut self) {
        if let Some(c) = self.current.take() {
            self.commits.push(c);
        }
    }

    fn finish(mut self) -> History {
        if self.state == State::Names {
            self.end_line();
            self.end_commit();
        }
        // A record cut short by the cap is left out.
        stats(self.limit, &self.commits, self.more, self.truncated)
    }
}

/// A commit from its header: parents US date US email US subject US body. `header` may be cut
/// at the cap: the fields it does not reach count as empty.
fn commit_from(header: &[u8], files_known: bool) -> Commit {
    let mut fields = header.splitn(5, |&b| b == US);
    let parents = fields.next().unwrap_or_default();
    let date = fields.next().unwrap_or_default();
    let email = fields.next().unwrap_or_default();
    let subject = clean(fields.next().unwrap_or_default());
    let body = fields.next().unwrap_or_default();
    let merge = parents
        .split(|&b| b == b' ')
        .filter(|p| !p.is_empty())
        .count()
        > 1;
    // Authors are told apart by a hash of their email; the email itself is not kept.
    let email = email.trim_ascii();
    let mut hasher = DefaultHasher::new();
    email[..email.len().min(256)]
        .to_ascii_lowercase()
        .hash(&mut hasher);
    Commit {
        time: parse_date(date),
        merge,
        author: hasher.finish(),
        subject_chars: subject.chars().count(),
        generic: generic(&subject),
        styled: styled(&subject),
        body: body.iter().any(|c| !c.is_ascii_whitespace()),
        files: files_known.then_some((false, false)),
    }
}

/// `<seconds> <+hhmm>` (git's `--date=raw`) as seconds and the offset in seconds.
fn parse_date(raw: &[u8]) -> Option<(i64, i64)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let secs: i64 = parts.next()?.parse().ok()?;
    // Years 1 to 9999: what RFC 3339 can write.
    if !(-62_135_596_800..=253_402_300_799).contains(&secs) {
        return None;
    }
    let zone = parts.next().unwrap_or("+0000");
    let offset = match zone.as_bytes() {
        [sign @ (b'+' | b'-'), digits @ ..]
            if digits.len() == 4 && digits.iter().all(u8::is_ascii_digit) =>
        {
            let n: i64 = zone[1..].parse().ok()?;
            let (h, m) = (n / 100, n % 100);
            if h > 23 || m > 59 {
                0
            } else {
                let s = h * 3600 + m * 60;
                if *sign == b'-' {
                    -s
                } else {
                    s
                }
            }
        }
        _ => 0,
    };
    Some((secs, offset))
}

/// A subject as text: lossy UTF-8, control characters removed, trimmed.
fn clean(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

/// Lower case, whitespace collapsed, trailing `.!?…` removed.
fn normalized(subject: &str) -> String {
    let words = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    words
        .to_lowercase()
        .trim_end_matches(|c: char| ".!?…".contains(c) || c.is_whitespace())
        .to_string()
}

fn generic(subject: &str) -> Generic {
    let s = normalized(subject);
    if !s.chars().any(char::is_alphanumeric) || GENERIC_SUBJECTS.contains(&s.as_str()) {
        return Generic::Yes;
    }
    if INITIAL_SUBJECTS.contains(&s.as_str()) {
        return Generic::Initial;
    }
    // The GitHub web editor's default subjects: "Update README.md", "Create app/main.py".
    let words: Vec<&str> = s.split(' ').collect();
    if let [verb, path] = words[..] {
        if matches!(verb, "update" | "create" | "delete") && path.contains(['.', '/']) {
            return Generic::Yes;
        }
    }
    Generic::No
}

/// Starts with a capital letter or an imperative verb, after a Conventional Commits prefix.
fn styled(subject: &str) -> bool {
    let s = strip_conventional_prefix(subject);
    if s.chars().next().is_some_and(char::is_uppercase) {
        return true;
    }
    let first = s
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase();
    IMPERATIVE_VERBS.contains(&first.as_str())
}

/// `feat: x`, `fix(api): x`, `refactor!: x` → `x`; anything else unchanged.
fn strip_conventional_prefix(s: &str) -> &str {
    let Some(colon) = s.find(": ") else {
        return s;
    };
    let head = &s[..colon];
    let head = head.strip_suffix('!').unwrap_or(head);
    let (kind, scope) = match head.find('(') {
        Some(i) => (&head[..i], Some(&head[i..])),
        None => (head, None),
    };
    let kind_ok =
        !kind.is_empty() && kind.len() <= 20 && kind.chars().all(|c| c.is_ascii_alphabetic());
    let scope_ok = scope.is_none_or(|sc| {
        sc.len() >= 2 && sc.ends_with(')') && !sc[1..sc.len() - 1].contains(['(', ')'])
    });
    if kind_ok && scope_ok {
        s[colon + 2..].trim_start()
    } else {
        s
    }
}

/// Undoes git's C-style quoting of a path (`core.quotePath`): `"a\tb\303\251"`.
fn unquote(line: &[u8]) -> Vec<u8> {
    let inner = match line {
        [b'"', inner @ .., b'"'] => inner,
        _ => return line.to_vec(),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' || i == inner.len() {
            out.push(b);
            continue;
        }
        let e = inner[i];
        i += 1;
        out.push(match e {
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'0'..=b'3'
                if inner.get(i).is_some_and(|d| (b'0'..=b'7').contains(d))
                    && inner.get(i + 1).is_some_and(|d| (b'0'..=b'7').contains(d)) =>
            {
                let v = (e - b'0') * 64 + (inner[i] - b'0') * 8 + (inner[i + 1] - b'0');
                i += 2;
                v
            }
            other => other,
        });
    }
    out
}

/// (code, test) for one path.
fn classify(path: &[u8]) -> (bool, bool) {
    let path = String::from_utf8_lossy(path).to_lowercase();
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some(name) = parts.pop() else {
        return (false, false);
    };
    let in_tests = parts
        .iter()
        .any(|d| matches!(*d, "tests" | "test" | "__tests__"));
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let code_ext = CODE_EXTENSIONS.contains(&ext);
    let test_name = code_ext
        && (stem.starts_with("test_")
            || stem.ends_with("_test")
            || stem.ends_with(".test")
            || stem.ends_with("_spec")
            || stem.ends_with(".spec")
            || matches!(stem, "test" | "tests" | "conftest"));
    let test = in_tests || test_name;
    (code_ext && !test, test)
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| round(part as f64 / whole as f64, 4))
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn rfc3339(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The statistics of `commits` (newest first).
fn stats(limit: u32, commits: &[Commit], more: bool, truncated: bool) -> History {
    let n = commits.len();
    let authors: HashSet<u64> = commits.iter().map(|c| c.author).collect();

    let times: Vec<(i64, i64)> = commits.iter().filter_map(|c| c.time).collect();
    let first = times.iter().map(|t| t.0).min();
    let last = times.iter().map(|t| t.0).max();
    let mut per_day: HashMap<i64, usize> = HashMap::new();
    for (secs, offset) in &times {
        *per_day
            .entry((secs + offset).div_euclid(86_400))
            .or_default() += 1;
    }
    let active_days = per_day.len();
    let busiest = per_day.values().copied().max().unwrap_or(0);

    // Subjects: non-merge commits, oldest first for the one allowed "initial commit".
    let own: Vec<&Commit> = commits.iter().filter(|c| !c.merge).collect();
    let mut initial_seen = false;
    let mut generic = 0;
    for c in own.iter().rev() {
        match c.generic {
            Generic::Yes => generic += 1,
            Generic::Initial if initial_seen => generic += 1,
            Generic::Initial => initial_seen = true,
            Generic::No => {}
        }
    }
    let mut lengths: Vec<usize> = own.iter().map(|c| c.subject_chars).collect();
    lengths.sort_unstable();
    let median = match lengths.len() {
        0 => None,
        k if k % 2 == 1 => Some(lengths[k / 2] as f64),
        k => Some((lengths[k / 2 - 1] + lengths[k / 2]) as f64 / 2.0),
    };
    let count = |f: &dyn Fn(&Commit) -> bool| own.iter().filter(|c| f(c)).count();
    let subjects = SubjectStats {
        commits: own.len() as u32,
        median_length: median,
        long_share: share(count(&|c| c.subject_chars > 72), own.len()),
        short_share: share(count(&|c| c.subject_chars < 10), own.len()),
        generic_share: share(generic, own.len()),
        capitalized_or_imperative_share: share(count(&|c| c.styled), own.len()),
        with_body_share: share(count(&|c| c.body), own.len()),
    };

    // Tests with code: non-merge commits with known files, newest first.
    let files: Vec<(bool, bool)> = own.iter().filter_map(|c| c.files).collect();
    let code = files.iter().filter(|f| f.0).count();
    let tested = (0..files.len())
        .filter(|&i| files[i].0 && (files[i].1 || (i > 0 && files[i - 1].1)))
        .count();
    let tests = TestStats {
        code_commits: code as u32,
        test_commits: files.iter().filter(|f| f.1).count() as u32,
        code_and_test_commits: files.iter().filter(|f| f.0 && f.1).count() as u32,
        code_with_tests_share: share(tested, code),
    };

    History {
        limit,
        commits: n as u32,
        cut: more || truncated,
        truncated,
        merges: commits.iter().filter(|c| c.merge).count() as u32,
        authors: authors.len() as u32,
        first_commit: first.and_then(rfc3339),
        last_commit: last.and_then(rfc3339),
        span_days: first
            .zip(last)
            .map(|(a, b)| round((b - a) as f64 / 86_400.0, 4)),
        active_days: active_days as u32,
        commits_per_active_day: (active_days > 0)
            .then(|| round(times.len() as f64 / active_days as f64, 4)),
        busiest_day_share: share(busiest, times.len()),
        subjects,
        tests,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> String {
        format!("{i:040x}")
    }

    /// One record as `git log` prints it with [`FORMAT`] and `--name-only`.
    fn rec(
        i: u32,
        parents: &str,
        date: &str,
        email: &str,
        subject: &[u8],
        body: &[u8],
        files: &[&str],
    ) -> Vec<u8> {
        let mut r = vec![RS];
        r.extend(id(i).bytes());
        for field in [
            parents.as_bytes(),
            date.as_bytes(),
            email.as_bytes(),
            subject,
            body,
        ] {
            r.push(US);
            r.extend_from_slice(field);
        }
        r.push(US);
        r.extend(id(i).bytes());
        r.push(RS);
        r.push(b'\n');
        if !files.is_empty() {
            r.push(b'\n');
            for f in files {
                r.extend(f.bytes());
                r.push(b'\n');
            }
        }
        r
    }

    /// A plain commit `i` by `email` at `secs` (UTC), child of `i - 1`.
    fn simple(i: u32, secs: i64, email: &str, subject: &str, files: &[&str]) -> Vec<u8> {
        let parent = if i > 0 { id(i - 1) } else { String::new() };
        rec(
            i,
            &parent,
            &format!("{secs} +0000"),
            email,
            subject.as_bytes(),
            b"",
            files,
        )
    }

    fn parse(raw: &[u8], limit: u32) -> History {
        parse_log(raw, limit, &HashSet::new()).history
    }

    const DAY: i64 = 86_400;
    const T0: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn a_small_history_gives_its_numbers() {
        // Newest first, as git log prints them.
        let mut raw = Vec::new();
        raw.extend(rec(
            5,
            &format!("{} {}", id(4), id(3)),
            &format!("{} +0000", T0 + 2 * DAY),
            "a@x.org",
            b"Merge branch 'feature'",
            b"",
            &[],
        ));
        raw.extend(simple(
            4,
            T0 + 2 * DAY,
            "B@X.org",
            "wip",
            &["tests/test_api.py"],
        ));
        raw.extend(rec(
            3,
            &id(2),
            &format!("{} +0000", T0 + DAY),
            "b@x.org",
            b"Add the churn model and its training script",
            b"Trained on the public data.\n",
            &["app/model.py", "train.py"],
        ));
        raw.extend(simple(2, T0 + 60, "a@x.org", "fix", &["README.md"]));
        raw.extend(simple(
            1,
            T0,
            "a@x.org",
            "Initial commit",
            &["Dockerfile", "app/main.py", "test_app.py"],
        ));
        let h = parse(&raw, 10);
        assert_eq!(h.limit, 10);
        assert_eq!(h.commits, 5);
        assert!(!h.cut && !h.truncated);
        assert_eq!(h.merges, 1);
        assert_eq!(h.authors, 2, "emails compared without case");
        assert_eq!(h.first_commit.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(h.last_commit.as_deref(), Some("2023-11-16T22:13:20Z"));
        assert_eq!(h.span_days, Some(2.0));
        assert_eq!(h.active_days, 3);
        assert_eq!(h.commits_per_active_day, Some(1.6667));
        assert_eq!(h.busiest_day_share, Some(0.4));
        let s = &h.subjects;
        assert_eq!(s.commits, 4, "the merge's subject is git's");
        // Lengths 3, 43, 3, 14.
        assert_eq!(s.median_length, Some(8.5));
        assert_eq!(s.long_share, Some(0.0));
        assert_eq!(s.short_share, Some(0.5));
        assert_eq!(
            s.generic_share,
            Some(0.5),
            "wip and fix; the first initial commit is fine"
        );
        assert_eq!(s.capitalized_or_imperative_share, Some(0.75), "all but wip");
        assert_eq!(s.with_body_share, Some(0.25));
        let t = &h.tests;
        assert_eq!(t.code_commits, 2, "3 and 1");
        assert_eq!(t.test_commits, 2, "4 and 1");
        assert_eq!(t.code_and_test_commits, 1);
        assert_eq!(
            t.code_with_tests_share,
            Some(1.0),
            "1 with its own test, 3 with the next commit's"
        );
        assert!(h.error.is_none());
    }

    #[test]
    fn the_commit_past_the_limit_marks_the_history_cut() {
        let raw: Vec<u8> = (0..4u32)
            .rev()
            .flat_map(|i| simple(i, T0 + i as i64, "a@x", "Add a thing to the app", &["a.py"]))
            .collect();
        let h = parse(&raw, 3);
        assert_eq!((h.commits, h.cut, h.truncated), (3, true, false));
        let h = parse(&raw, 4);
        assert_eq!((h.commits, h.cut), (4, false));
        // Zero is taken as one.
        assert_eq!(parse(&raw, 0).commits, 1);
    }

    #[test]
    fn a_shallow_boundary_commit_has_no_files() {
        let raw = [
            simple(2, T0 + 2, "a@x", "Test the model", &["tests/test_model.py"]),
            simple(1, T0 + 1, "a@x", "Add the model", &["model.py"]),
            // The boundary: git lists its whole tree.
            rec(
                0,
                "",
                &format!("{T0} +0000"),
                "a@x",
                b"Add the API",
                b"",
                &["api.py", "model.py", "tests/test_api.py"],
            ),
        ]
        .concat();
        let boundary = parse_shallow(format!("{}\n", id(0)).as_bytes());
        let h = parse_log(raw.as_slice(), 10, &boundary).history;
        assert_eq!(h.commits, 3);
        assert_eq!(h.tests.code_commits, 1);
        assert_eq!(h.tests.test_commits, 1);
        assert_eq!(h.tests.code_with_tests_share, Some(1.0));
        let h = parse(&raw, 10);
        assert_eq!((h.tests.code_commits, h.tests.test_commits), (2, 2));
    }

    #[test]
    fn initial_commit_is_fine_only_once() {
        let raw = [
            simple(2, T0 + 2, "a@x", "first commit", &[]),
            simple(1, T0 + 1, "a@x", "Initial commit.", &[]),
            simple(0, T0, "a@x", "initial commit", &[]),
        ]
        .concat();
        assert_eq!(parse(&raw, 10).subjects.generic_share, Some(0.6667));
    }

    #[test]
    fn subjects_are_classified() {
        for (s, g) in [
            ("wip", Generic::Yes),
            ("WIP!!", Generic::Yes),
            ("  Fix. ", Generic::Yes),
            (".", Generic::Yes),
            ("...", Generic::Yes),
            ("", Generic::Yes),
            ("Update README.md", Generic::Yes),
            ("Create app/main.py", Generic::Yes),
            ("Add files via upload", Generic::Yes),
            ("Initial commit", Generic::Initial),
            ("Fix the off-by-one in batching", Generic::No),
            ("Update the README with run instructions", Generic::No),
            ("Update dependencies", Generic::No),
        ] {
            assert_eq!(generic(s), g, "{s:?}");
        }
        for (s, yes) in [
            ("Add tests", true),
            ("add tests", true),
            ("feat: add a drift endpoint", true),
            ("fix(api)!: handle empty batches", true),
            ("refactor: Split features", true),
            ("tests pass now", false),
            ("feat: stuff", false),
            ("misc: things", false),
            ("123 go", false),
            ("über-fast path", false),
            ("Ünicode capital", true),
            ("", false),
        ] {
            assert_eq!(styled(s), yes, "{s:?}");
        }
        assert_eq!(strip_conventional_prefix("no: prefix? ok"), "prefix? ok");
        assert_eq!(strip_conventional_prefix("a b: c"), "a b: c");
        assert_eq!(strip_conventional_prefix("x(y(z)): w"), "x(y(z)): w");
    }

    #[test]
    fn files_are_classified_as_code_and_tests() {
        for (p, code, test) in [
            ("app/main.py", true, false),
            ("notebooks/eda.ipynb", true, false),
            ("test_app.py", false, true),
            ("app/model_test.py", false, true),
            ("tests/fixtures/rows.csv", false, true),
            ("src/test/java/AppTest.java", false, true),
            ("web/app.test.ts", false, true),
            ("conftest.py", false, true),
            ("tests.py", false, true),
            ("README.md", false, false),
            ("Dockerfile", false, false),
            ("data/test_split.csv", false, false),
            ("latest.py", true, false),
            (".py", false, false),
            ("APP/MAIN.PY", true, false),
        ] {
            assert_eq!(classify(p.as_bytes()), (code, test), "{p}");
        }
        assert_eq!(unquote(br#""t\303\253st_x.py""#), "tëst_x.py".as_bytes());
        assert_eq!(unquote(br#""a\tb\\c\"d\036""#), b"a\tb\\c\"d\x1e");
        assert_eq!(unquote(br#""\""#), b"\\");
        assert_eq!(unquote(br#""\9\""#), b"9\\");
        assert_eq!(unquote(b"plain name"), b"plain name");
    }

    #[test]
    fn dates_and_shallow_files_are_read_strictly() {
        assert_eq!(parse_date(b"1700000000 +0200"), Some((T0, 7200)));
        assert_eq!(parse_date(b"1700000000 -0130"), Some((T0, -5400)));
        assert_eq!(parse_date(b"1700000000"), Some((T0, 0)));
        assert_eq!(parse_date(b"1700000000 +9999"), Some((T0, 0)));
        assert_eq!(parse_date(b"1700000000 zone"), Some((T0, 0)));
        for bad in [
            &b""[..],
            b"x +0000",
            b"99999999999999999999999 +0000",
            b"253402300800 +0000",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        let s = parse_shallow(
            format!(
                "{}\nnot an id\n{}\r\n{}\n",
                id(1),
                "A".repeat(64),
                "a".repeat(41)
            )
            .as_bytes(),
        );
        assert_eq!(s.len(), 2);
        assert!(s.contains(&"a".repeat(64).into_bytes()));
    }

    #[test]
    fn the_author_day_is_the_authors_own() {
        // 23:30 and 00:30 the next day in UTC, both on the same evening at -0200.
        let day_start = 1_700_006_400; // 2023-11-15T00:00:00Z
        let raw = [
            rec(
                1,
                &id(0),
                &format!("{} -0200", day_start + 1800),
                "a@x",
                b"Two",
                b"",
                &[],
            ),
            rec(
                0,
                "",
                &format!("{} -0200", day_start - 1800),
                "a@x",
                b"One",
                b"",
                &[],
            ),
        ]
        .concat();
        let h = parse(&raw, 10);
        assert_eq!(h.active_days, 1);
        assert_eq!(h.busiest_day_share, Some(1.0));
        assert_eq!(h.first_commit.as_deref(), Some("2023-11-14T23:30:00Z"));
    }

    #[test]
    fn hostile_messages_cannot_break_the_framing() {
        // A subject and body full of separators and a forged record; an email with a US.
        let forged = rec(
            99,
            "",
            "1 +0000",
            "evil@x",
            b"forged",
            b"",
            &["forged_test.py"],
        );
        let mut body = b"line\n\x1e\x1f\x00\x07".to_vec();
        body.extend(&forged);
        let raw = [
            rec(
                2,
                &id(1),
                &format!("{T0} +0000"),
                "a@x",
                b"Sub\x1bject \x1e with \x07 controls\x1f",
                &body,
                &["app.py"],
            ),
            rec(
                1,
                &id(0),
                &format!("{T0} +0000"),
                "we\x1fird@x",
                b"Add \xff\xfe bytes",
                b"",
                &["\"t\\303\\253st_x.py\""],
            ),
            simple(0, T0, "a@x", "Add the API", &["api.py"]),
        ]
        .concat();
        let h = parse(&raw, 10);
        assert_eq!(h.commits, 3, "the forged record is part of a body");
        assert_eq!(h.authors, 2, "the forged author does not count");
        assert_eq!(h.tests.test_commits, 0, "the forged file does not count");
        assert_eq!(
            h.tests.code_commits, 3,
            "the quoted name unquoted: tëst_x.py is code"
        );
        assert_eq!(
            h.subjects.with_body_share,
            Some(0.6667),
            "the shifted email"
        );
        let json = serde_json::to_string(&h).unwrap();
        for leak in ["a@x", "evil", "forged", "Sub", "Add", "api.py", "ird"] {
            assert!(!json.contains(leak), "{leak} in {json}");
        }
    }

    #[test]
    fn a_huge_subject_is_bounded_and_the_next_commits_still_count() {
        let huge = vec![b'x'; 3 << 20];
        let raw = [
            rec(
                1,
                &id(0),
                &format!("{T0} +0000"),
                "a@x",
                &huge,
                &huge,
                &["a.py"],
            ),
            simple(0, T0, "b@x", "Add the API", &["test_api.py"]),
        ]
        .concat();
        let h = parse(&raw, 10);
        assert_eq!(h.commits, 2);
        assert_eq!(h.authors, 2);
        assert_eq!(h.subjects.long_share, Some(0.5));
        // The header's cap leaves the subject all but the 62 bytes of parents, date and email.
        assert_eq!(
            h.subjects.median_length,
            Some((MAX_HEADER_BYTES - 62 + 11) as f64 / 2.0)
        );
        assert_eq!(h.tests.code_with_tests_share, Some(0.0));
        assert!(!h.truncated);
    }

    #[test]
    fn missing_fields_and_broken_records_are_survived() {
        let mut raw = Vec::new();
        // Garbage before the first record.
        raw.extend(b"garbage\nmore\x1f\n");
        // An id that is not one, then a record with its id too short.
        raw.extend(b"\x1enot-hex\x1fx\n\x1e1234\x1fy\x1f1234\x1e\n");
        // Only the parents field.
        let i = id(7);
        raw.extend(format!("\x1e{i}\x1f\x1f{i}\x1e\n\nlost.py\n").bytes());
        // A normal one.
        raw.extend(simple(6, T0, "a@x", "Add the model", &["m.py"]));
        // The same commit again.
        raw.extend(simple(6, T0, "b@x", "Add the model", &["test_m.py"]));
        // A record cut off mid-header at the end.
        raw.extend(format!("\x1e{}\x1f{}\x1f12", id(5), id(4)).bytes());
        let h = parse(&raw, 10);
        assert_eq!(h.commits, 2);
        assert_eq!(h.authors, 2, "the empty email and a@x");
        assert_eq!(h.first_commit.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            h.busiest_day_share,
            Some(1.0),
            "over the commits with a time"
        );
        assert_eq!(h.tests.code_commits, 2);
        assert_eq!(h.tests.test_commits, 0, "the repeated commit is ignored");
        // Nothing at all.
        let h = parse(b"", 10);
        assert_eq!(h.commits, 0);
        assert_eq!(h.subjects.median_length, None);
        assert_eq!(h.commits_per_active_day, None);
        assert_eq!(h.tests.code_with_tests_share, None);
    }

    /// An endless reader: `head` once, then `unit` over and over.
    struct Endless {
        head: Vec<u8>,
        unit: Vec<u8>,
        pos: usize,
        served: u64,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let mut n = 0;
            while n < buf.len() {
                let src = if self.pos < self.head.len() {
                    &self.head[self.pos..]
                } else {
                    let at = (self.pos - self.head.len()) % self.unit.len();
                    &self.unit[at..]
                };
                let k = src.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&src[..k]);
                n += k;
                self.pos += k;
            }
            self.served += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_million_files_and_endless_output_are_cut_at_the_caps() {
        // One commit that lists names without end.
        let t = std::time::Instant::now();
        let mut endless = Endless {
            head: simple(1, T0, "a@x", "Add everything", &["test_first.py"]),
            unit: b"some/dir/file.py\n".to_vec(),
            pos: 0,
            served: 0,
        };
        let parsed = parse_log(&mut endless, 10, &HashSet::new());
        assert!(parsed.stopped_early);
        assert!(endless.served <= MAX_LOG_BYTES);
        let h = parsed.history;
        assert_eq!((h.commits, h.cut, h.truncated), (1, true, true));
        assert_eq!(h.tests.code_and_test_commits, 1);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );

        // Many commits of many files each: the total cap on names.
        let mut raw = Vec::new();
        for i in (0..30u32).rev() {
            let files: Vec<String> = (0..9_000).map(|k| format!("d/f{k}.txt")).collect();
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            raw.extend(simple(i, T0, "a@x", "Add data", &files));
        }
        raw.extend(simple(100, T0, "a@x", "Add the app", &["app.py"]));
        let h = parse(&raw, 1000);
        assert_eq!(h.commits, 31);
        assert!(h.truncated && h.cut);
        assert_eq!(
            h.tests.code_commits, 0,
            "names past the cap are not looked at"
        );
    }

    #[test]
    fn an_endless_header_is_bounded() {
        let mut endless = Endless {
            head: format!("\x1e{}\x1f\x1f1 +0000\x1fa@x\x1f", id(1)).into_bytes(),
            unit: b"subject ".to_vec(),
            pos: 0,
            served: 0,
        };
        let parsed = parse_log(&mut endless, 10, &HashSet::new());
        assert!(parsed.stopped_early);
        assert_eq!(
            parsed.history.commits, 0,
            "a record cut at the cap is left out"
        );
        assert!(parsed.history.truncated && parsed.history.cut);
    }

    #[test]
    fn the_history_is_a_report_type() {
        let h = History::failed(5, "git could not fetch the history");
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["error"], "git could not fetch the history");
        assert_eq!(json["commits"], 0);
        let back: History = serde_json::from_value(json).unwrap();
        assert_eq!(back, h);
        let schema = serde_json::to_string(&schemars::schema_for!(History)).unwrap();
        for field in [
            "generic_share",
            "code_with_tests_share",
            "busiest_day_share",
        ] {
            assert!(schema.contains(field), "{field}");
        }
    }
}
