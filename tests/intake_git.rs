//! Git sources at the intake level: local repositories made by the tests (no network but the
//! loopback), taken at HEAD, a tag, a branch and a commit id; hostile configuration, hooks,
//! filters and submodules that must not run or be fetched; unreachable and stalled servers; git
//! bombs; the private temporary directory, removed whatever happens; and the opt-in history
//! (`Limits::history_commits`): its numbers, the git commands it runs and where, and hostile
//! histories that must neither run anything nor fail the intake.
//!
//! Some checks need an environment the test process must not change for the other tests (a
//! hostile HOME and git config, a TMPDIR to inspect): those re-run this test binary as a child
//! with `PROCTOR_INTAKE_CHILD` set, and the child runs only the named scenario.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proctor::intake::{
    intake, intake_git, is_git_source, BuildContext, IntakeError, Limits, SourceKind,
};

const CHILD: &str = "PROCTOR_INTAKE_CHILD";

/// Runs git for the test's own setup, insulated from the developer's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, args, &[])
}

/// [`git`] with more environment (author and committer dates, say).
fn git_with(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .envs(envs.iter().copied())
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.org",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the tests need git on PATH");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A repository with three states of app.py: v1 (tagged v1), v2 on main, v3 on branch feature.
struct Repo {
    path: PathBuf,
    v1: String,
    v2: String,
}

fn repo(dir: &Path) -> Repo {
    let path = dir.join("src");
    fs::create_dir_all(&path).unwrap();
    git(&path, &["init", "--quiet"]);
    write(&path.join("Dockerfile"), "FROM proctor/busybox:test\n");
    write(&path.join("app.py"), "v1\n");
    git(&path, &["add", "."]);
    git(&path, &["commit", "--quiet", "-m", "one"]);
    git(&path, &["tag", "-a", "v1", "-m", "first"]);
    let v1 = git(&path, &["rev-parse", "HEAD"]);
    write(&path.join("app.py"), "v2\n");
    git(&path, &["commit", "--quiet", "-am", "two"]);
    let v2 = git(&path, &["rev-parse", "HEAD"]);
    git(&path, &["checkout", "--quiet", "-b", "feature"]);
    write(&path.join("app.py"), "v3\n");
    git(&path, &["commit", "--quiet", "-am", "three"]);
    git(&path, &["checkout", "--quiet", "main"]);
    Repo { path, v1, v2 }
}

fn file(ctx: &BuildContext, name: &str) -> Option<String> {
    let mut a = tar::Archive::new(ctx.tar.as_slice());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            return Some(s);
        }
    }
    None
}

fn names(ctx: &BuildContext) -> Vec<String> {
    let mut a = tar::Archive::new(ctx.tar.as_slice());
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect()
}

fn rejection(err: IntakeError) -> (String, String) {
    match err {
        IntakeError::Rejected { entry, rule } => (entry, rule),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_local_repository_is_taken_at_head_a_tag_a_branch_and_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let src = r.path.to_str().unwrap();
    // Uncommitted work is not part of a git source.
    write(&r.path.join("app.py"), "uncommitted\n");
    write(&r.path.join("scratch.txt"), "untracked\n");
    let limits = Limits::default();

    let head = intake_git(src, None, &limits).unwrap();
    assert_eq!(head.kind, SourceKind::Git);
    assert_eq!(head.kind.as_str(), "git");
    assert_eq!(head.commit.as_deref(), Some(r.v2.as_str()));
    assert_eq!(file(&head, "app.py").as_deref(), Some("v2\n"));
    assert_eq!(
        names(&head),
        ["Dockerfile", "app.py"],
        "no .git, nothing untracked"
    );
    assert_eq!(head.dockerfile, "FROM proctor/busybox:test\n");

    let tag = intake_git(src, Some("v1"), &limits).unwrap();
    assert_eq!(
        tag.commit.as_deref(),
        Some(r.v1.as_str()),
        "the tag is peeled"
    );
    assert_eq!(file(&tag, "app.py").as_deref(), Some("v1\n"));

    let by_id = intake_git(src, Some(&r.v1), &limits).unwrap();
    assert_eq!(by_id.sha256, tag.sha256);

    let branch = intake_git(src, Some("feature"), &limits).unwrap();
    assert_eq!(file(&branch, "app.py").as_deref(), Some("v3\n"));

    let url = format!("git+file://{}", r.path.canonicalize().unwrap().display());
    assert!(is_git_source(&url));
    assert!(!is_git_source(src), "a plain path is read as a directory");
    assert_eq!(
        intake_git(&url, Some("HEAD"), &limits).unwrap().sha256,
        head.sha256
    );

    // The same files as a directory give the same context.
    let plain = dir.path().join("plain");
    write(&plain.join("Dockerfile"), "FROM proctor/busybox:test\n");
    write(&plain.join("app.py"), "v2\n");
    assert_eq!(intake(&plain, &limits).unwrap().sha256, head.sha256);

    let err = intake_git(src, Some("no-such-branch"), &limits).unwrap_err();
    assert!(
        matches!(&err, IntakeError::Fetch { reason, .. } if reason.contains("no-such-branch")),
        "{err:?}"
    );
    assert!(!err.is_submission_fault() && !err.is_usage_error());
    let err = intake_git(src, Some(&r.v1[..12]), &limits).unwrap_err();
    assert!(err.to_string().contains("all 40 characters"), "{err}");

    let err = intake_git(dir.path().join("plain").to_str().unwrap(), None, &limits).unwrap_err();
    assert!(
        err.is_usage_error() && err.to_string().contains("not a git repository"),
        "{err}"
    );
}

#[test]
fn the_commit_is_vetted_like_any_submission() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    write(&src.join("Dockerfile"), "FROM x\n");
    write(&src.join(".dockerignore"), "notes/\n");
    write(&src.join("notes/todo.md"), "secret plans\n");
    git(&src, &["add", "."]);
    git(&src, &["commit", "--quiet", "-m", "ok"]);
    let ctx = intake_git(src.to_str().unwrap(), None, &Limits::default()).unwrap();
    assert_eq!(
        names(&ctx),
        [".dockerignore", "Dockerfile"],
        ".dockerignore is honoured"
    );

    std::os::unix::fs::symlink("/etc/passwd", src.join("passwd")).unwrap();
    git(&src, &["add", "passwd"]);
    git(&src, &["commit", "--quiet", "-m", "link"]);
    let err = intake_git(src.to_str().unwrap(), None, &Limits::default()).unwrap_err();
    assert_eq!(
        rejection(err),
        (
            "passwd".into(),
            "symlink to an absolute path (/etc/passwd) is not allowed".into()
        )
    );
}

#[test]
fn submodules_are_not_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner");
    fs::create_dir_all(&inner).unwrap();
    git(&inner, &["init", "--quiet"]);
    write(&inner.join("SECRET.txt"), "from the submodule\n");
    git(&inner, &["add", "."]);
    git(&inner, &["commit", "--quiet", "-m", "inner"]);
    let outer = dir.path().join("outer");
    fs::create_dir_all(&outer).unwrap();
    git(&outer, &["init", "--quiet"]);
    write(&outer.join("Dockerfile"), "FROM x\n");
    git(&outer, &["add", "."]);
    git(
        &outer,
        &[
            "submodule",
            "add",
            "--quiet",
            inner.to_str().unwrap(),
            "vendor/inner",
        ],
    );
    git(&outer, &["commit", "--quiet", "-m", "with a submodule"]);
    let ctx = intake_git(outer.to_str().unwrap(), None, &Limits::default()).unwrap();
    let n = names(&ctx);
    assert!(n.contains(&".gitmodules".to_string()), "{n:?}");
    assert!(
        n.contains(&"vendor/inner/".to_string()),
        "an empty directory: {n:?}"
    );
    assert!(
        !n.iter().any(|p| p.contains("SECRET")),
        "the submodule was fetched: {n:?}"
    );
}

#[test]
fn an_unreachable_url_fails_at_once_with_a_clear_error() {
    let t = Instant::now();
    // Port 1 on the loopback: nothing listens, the connection is refused.
    let err = intake_git("https://127.0.0.1:1/nobody.git", None, &Limits::default()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let IntakeError::Fetch { url, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(url, "https://127.0.0.1:1/nobody.git");
    assert!(
        reason.contains("127.0.0.1") && reason.to_lowercase().contains("connect"),
        "{reason}"
    );
    assert!(!err.is_submission_fault() && !err.is_usage_error());
}

/// Accepts connections on the loopback and never answers; stops when dropped.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let until = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < until {
                if let Ok((c, _)) = listener.accept() {
                    held.push(c);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Silent { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn a_stalled_server_is_cut_off_at_the_deadline_with_all_its_processes() {
    let server = Silent::start();
    let url = format!("https://127.0.0.1:{}/stalled.git", server.port);
    let limits = Limits {
        git_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let t = Instant::now();
    let err = intake_git(&url, None, &limits).unwrap_err();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(
        matches!(&err, IntakeError::Fetch { reason, .. } if reason == "git did not finish within 2 s"),
        "{err:?}"
    );
    let left = processes_mentioning(&format!("127.0.0.1:{}", server.port));
    assert!(
        left.is_empty(),
        "git processes outlived the deadline: {left:?}"
    );
}

#[test]
fn a_git_bomb_is_stopped_before_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("bomb");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    let blob = {
        write(&src.join("x"), "boom\n");
        git(&src, &["hash-object", "-w", "x"])
    };
    let mktree = |entries: String| -> String {
        let mut child = Command::new("git")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["mktree"])
            .current_dir(&src)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), entries.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    // Ten entries per level, six levels: a million files from a few hundred bytes.
    let mut level = mktree(
        (0..10)
            .map(|i| format!("100644 blob {blob}\tf{i}\n"))
            .collect(),
    );
    for _ in 0..5 {
        level = mktree(
            (0..10)
                .map(|i| format!("040000 tree {level}\td{i}\n"))
                .collect(),
        );
    }
    let df = git(
        &src,
        &["hash-object", "-w", "--stdin", "--path", "Dockerfile"],
    );
    let _ = df;
    let commit = git(&src, &["commit-tree", &level, "-m", "bomb"]);
    git(&src, &["update-ref", "refs/heads/main", &commit]);
    let t = Instant::now();
    let err = intake_git(src.to_str().unwrap(), None, &Limits::default()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let (entry, rule) = rejection(err);
    assert_eq!(rule, "more than 20000 entries in the submission");
    assert!(entry.starts_with("d"), "{entry}");
}

/// Writes `data` as a raw object of `kind`, unchecked (`hash-object --literally`).
fn raw_object(repo: &Path, kind: &str, data: &[u8]) -> String {
    let mut child = Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["hash-object", "-t", kind, "-w", "--literally", "--stdin"])
        .current_dir(repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn tree_entry(mode: &str, name: &str, oid_hex: &str) -> Vec<u8> {
    let mut e = format!("{mode} {name}\0").into_bytes();
    e.extend(
        (0..oid_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&oid_hex[i..i + 2], 16).unwrap()),
    );
    e
}

#[test]
fn a_tree_that_plants_git_metadata_is_rejected() {
    // The classic: a commit whose tree holds .git/hooks/post-checkout. git's own fsck refuses
    // it on arrival; it is the repository's fault, not a fetch failure.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("evil");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    let hook = raw_object(&src, "blob", b"#!/bin/sh\ntouch /tmp/pwned\n");
    let hooks = raw_object(&src, "tree", &tree_entry("100755", "post-checkout", &hook));
    let dotgit = raw_object(&src, "tree", &tree_entry("40000", "hooks", &hooks));
    let mut root = tree_entry("40000", ".git", &dotgit);
    root.extend(tree_entry("100644", "Dockerfile", &hook));
    let root = raw_object(&src, "tree", &root);
    let commit = git(&src, &["commit-tree", &root, "-m", "evil"]);
    git(&src, &["update-ref", "refs/heads/main", &commit]);
    let err = intake_git(src.to_str().unwrap(), None, &Limits::default()).unwrap_err();
    let (entry, rule) = rejection(err);
    assert_eq!(entry, src.to_str().unwrap());
    assert!(
        rule.starts_with("the repository fails git's integrity checks") && rule.contains(".git"),
        "{rule}"
    );
}

/// Incompressible bytes, so a fetched pack is as big as the file.
fn noise(len: usize) -> Vec<u8> {
    let mut noise = vec![0u8; len];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    noise
}

#[test]
fn an_oversized_repository_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    write(&src.join("Dockerfile"), "FROM x\n");
    fs::write(src.join("weights.bin"), noise(3 << 20)).unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "--quiet", "-m", "big"]);
    let limits = Limits {
        max_total_bytes: 1 << 20,
        ..Limits::default()
    };
    let (entry, rule) = rejection(intake_git(src.to_str().unwrap(), None, &limits).unwrap_err());
    assert_eq!(entry, src.to_str().unwrap());
    assert_eq!(
        rule,
        "the repository's commit needs more than 1 MiB on disk"
    );
    // With room for the pack, the listing still holds the file to the per-file cap.
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let (entry, rule) = rejection(intake_git(src.to_str().unwrap(), None, &limits).unwrap_err());
    assert_eq!(
        (entry.as_str(), rule.as_str()),
        ("weights.bin", "file is larger than 1 MiB")
    );
}

/// Re-runs this test binary with `envs`, running only `test` (in child mode).
fn run_child(test: &str, envs: &[(&str, &std::ffi::OsStr)]) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child {test} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn script(path: &Path, marker: &Path) {
    write(
        path,
        &format!(
            "#!/bin/sh\ntouch '{}'-\"$(basename \"$0\")\"-\"$1\"\ncat\n",
            marker.display()
        ),
    );
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn host_and_repository_configuration_hooks_and_filters_never_run() {
    if std::env::var_os(CHILD).is_some() {
        // Child: the environment below is hostile. The fetch must still work, untouched.
        let src = std::env::var("PROCTOR_TEST_SOURCE").unwrap();
        let plain = intake_git(&src, Some("main"), &Limits::default()).unwrap();
        assert!(plain.history.is_none());
        // With the history asked for, git runs twice more (a fetch, a log): still nothing of
        // the hostile environment or repository runs.
        let with_history = Limits {
            history_commits: Some(10),
            ..Limits::default()
        };
        let deep = intake_git(&src, Some("main"), &with_history).unwrap();
        assert_eq!(deep.sha256, plain.sha256);
        let h = deep.history.as_ref().expect("the history was asked for");
        assert_eq!((h.error.as_deref(), h.commits, h.cut), (None, 1, false));
        for ctx in [&plain, &deep] {
            assert_eq!(
                file(ctx, "model.bin").as_deref(),
                Some("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n"),
                "LFS pointers stay pointers"
            );
            assert_eq!(file(ctx, "app.py").as_deref(), Some("print('hi')\n"));
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("pwned");
    let evil = d.join("bin/evil");
    script(&evil, &marker);
    let hooks = d.join("hooks");
    for h in [
        "post-checkout",
        "post-merge",
        "pre-commit",
        "reference-transaction",
        "post-index-change",
        "pre-auto-gc",
        "fsmonitor-watchman",
    ] {
        script(&hooks.join(h), &marker);
    }
    let templates = d.join("templates");
    script(&templates.join("hooks/post-checkout"), &marker);
    let e = evil.display();
    let config = format!(
        "[core]\n\thooksPath = {hooks}\n\tfsmonitor = {e} fsmonitor\n\taskPass = {e} askpass\n\tsshCommand = {e} ssh\n\
         [filter \"evil\"]\n\tsmudge = {e} smudge\n\tclean = {e} clean\n\tprocess = {e} process\n\trequired = true\n\
         [filter \"lfs\"]\n\tsmudge = {e} lfs-smudge\n\tprocess = {e} lfs-process\n\trequired = true\n\
         [credential]\n\thelper = {e} credential\n\
         [init]\n\ttemplateDir = {templates}\n\
         [protocol]\n\tallow = always\n\
         [url \"file:///nonexistent/\"]\n\tinsteadOf = /\n",
        hooks = hooks.display(),
        templates = templates.display(),
    );
    let home = d.join("home");
    write(&home.join(".gitconfig"), &config);
    write(&home.join(".config/git/config"), &config);
    write(&home.join(".config/git/attributes"), "* filter=evil\n");
    write(&d.join("system-gitconfig"), &config);

    // The source: LFS and an evil filter in its attributes; then, after committing, hostile
    // repository config and hooks of its own (upload-pack reads that config).
    let src = d.join("src");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    write(&src.join("Dockerfile"), "FROM x\n");
    write(&src.join("app.py"), "print('hi')\n");
    write(
        &src.join(".gitattributes"),
        "* filter=evil\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
    );
    write(
        &src.join("model.bin"),
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
    );
    git(&src, &["add", "."]);
    git(&src, &["commit", "--quiet", "-m", "hostile"]);
    let repo_config = fs::read_to_string(src.join(".git/config")).unwrap();
    write(
        &src.join(".git/config"),
        &format!(
            "{repo_config}{config}[uploadpack]\n\tpackObjectsHook = {e} pack-objects\n[include]\n\tpath = {home}/.gitconfig\n",
            home = home.display()
        ),
    );
    for h in [
        "post-checkout",
        "pre-upload-pack",
        "post-upload-pack",
        "reference-transaction",
    ] {
        script(&src.join(".git/hooks").join(h), &marker);
    }

    let tmp = d.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let src_s = src.as_os_str();
    let params = format!(
        "'core.hookspath'='{}' 'filter.evil.smudge'='{e} params'",
        hooks.display()
    );
    run_child(
        "host_and_repository_configuration_hooks_and_filters_never_run",
        &[
            ("PROCTOR_TEST_SOURCE", src_s),
            ("HOME", home.as_os_str()),
            ("XDG_CONFIG_HOME", home.join(".config").as_os_str()),
            ("GIT_CONFIG_GLOBAL", home.join(".gitconfig").as_os_str()),
            ("GIT_CONFIG_SYSTEM", d.join("system-gitconfig").as_os_str()),
            ("GIT_CONFIG_COUNT", "1".as_ref()),
            ("GIT_CONFIG_KEY_0", "core.hooksPath".as_ref()),
            ("GIT_CONFIG_VALUE_0", hooks.as_os_str()),
            ("GIT_CONFIG_PARAMETERS", params.as_ref()),
            ("GIT_TEMPLATE_DIR", templates.as_os_str()),
            ("GIT_ASKPASS", evil.as_os_str()),
            ("SSH_ASKPASS", evil.as_os_str()),
            ("GIT_SSH_COMMAND", evil.as_os_str()),
            ("GIT_EXEC_PATH", "/nonexistent".as_ref()),
            ("GIT_DIR", "/nonexistent".as_ref()),
            ("GIT_ALLOW_PROTOCOL", "ext:file:https:ssh".as_ref()),
            ("TMPDIR", tmp.as_os_str()),
        ],
    );
    let fired: Vec<String> = fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(fired.is_empty(), "hostile code ran: {fired:?}");
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "the private checkout was left behind: {left:?}"
    );
}

#[test]
fn the_private_directory_is_removed_after_success_and_failure() {
    if std::env::var_os(CHILD).is_some() {
        let dir = Path::new(&std::env::var_os("PROCTOR_TEST_SOURCE").unwrap()).to_owned();
        let src = dir.join("src");
        let src = src.to_str().unwrap();
        intake_git(src, Some("v1"), &Limits::default()).unwrap();
        // Rejected after checkout (no Dockerfile at that commit), rejected before it (size),
        // a fetch failure, and a timeout.
        let err = intake_git(src, Some("nodocker"), &Limits::default()).unwrap_err();
        assert!(matches!(err, IntakeError::NoDockerfile), "{err:?}");
        let small = Limits {
            max_file_bytes: 2,
            ..Limits::default()
        };
        assert!(intake_git(src, None, &small)
            .unwrap_err()
            .is_submission_fault());
        assert!(intake_git(src, Some("missing"), &Limits::default()).is_err());
        let server = Silent::start();
        let quick = Limits {
            git_timeout: Duration::from_millis(800),
            ..Limits::default()
        };
        let url = format!("https://127.0.0.1:{}/x.git", server.port);
        assert!(intake_git(&url, None, &quick).is_err());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    git(&r.path, &["checkout", "--quiet", "--orphan", "nodocker"]);
    git(&r.path, &["rm", "--quiet", "-rf", "--cached", "Dockerfile"]);
    git(&r.path, &["commit", "--quiet", "-m", "no dockerfile"]);
    git(&r.path, &["checkout", "--quiet", "-f", "main"]);
    let tmp = dir.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    run_child(
        "the_private_directory_is_removed_after_success_and_failure",
        &[
            ("PROCTOR_TEST_SOURCE", dir.path().as_os_str()),
            ("TMPDIR", tmp.as_os_str()),
        ],
    );
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

const ANN: &str = "Ann <ann@example.org>";
const BEA: &str = "Bea <bea@example.org>";
/// 2024-03-04T00:00:00Z.
const DAY0: i64 = 1_709_510_400;

/// One commit of [`HISTORY`]: author, day, hour, subject, body, files written.
type Step = (
    &'static str,
    i64,
    i64,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// Twelve commits by two authors over three days, oldest first. Four generic subjects (wip,
/// fix, update, asdf), one over 72 characters, one with a body; code and tests that grow
/// together most of the time.
const HISTORY: &[Step] = &[
    (
        ANN,
        0,
        10,
        "Initial commit",
        "",
        &["Dockerfile", "app/main.py"],
    ),
    (
        ANN,
        0,
        11,
        "Add the feature pipeline",
        "",
        &["app/features.py"],
    ),
    (
        ANN,
        0,
        12,
        "Add tests for the features",
        "",
        &["tests/test_features.py"],
    ),
    (BEA, 0, 15, "wip", "", &["app/model.py"]),
    (BEA, 1, 9, "fix", "", &["app/model.py"]),
    (
        BEA,
        1,
        10,
        "Train the churn model and save it",
        "Gradient boosting on the public training data.",
        &["train.py", "tests/test_train.py"],
    ),
    (ANN, 1, 11, "update", "", &["README.md"]),
    (
        ANN,
        1,
        14,
        "Handle missing values in the request",
        "",
        &["app/main.py"],
    ),
    (
        ANN,
        1,
        15,
        "Test missing values",
        "",
        &["tests/test_api.py"],
    ),
    (BEA, 2, 9, "asdf", "", &["app/drift.py"]),
    (
        BEA,
        2,
        10,
        "Add drift detection with a KS test per feature and a chi-square test for categories",
        "",
        &["app/drift.py", "app/drift_test.py"],
    ),
    (
        ANN,
        2,
        11,
        "Document how to run the service",
        "",
        &["README.md"],
    ),
];

fn history_repo(dir: &Path) -> PathBuf {
    let path = dir.join("history");
    fs::create_dir_all(&path).unwrap();
    git(&path, &["init", "--quiet"]);
    for (n, (author, day, hour, subject, body, files)) in HISTORY.iter().enumerate() {
        for f in *files {
            let p = path.join(f);
            let text = if *f == "Dockerfile" {
                "FROM proctor/busybox:test\n".to_string()
            } else {
                format!("{f} at commit {n}\n")
            };
            write(&p, &text);
        }
        git(&path, &["add", "."]);
        let date = format!("{} +0000", DAY0 + day * 86_400 + hour * 3600);
        let mut args = vec!["commit", "--quiet", "--author", author, "-m", subject];
        if !body.is_empty() {
            args.extend(["-m", body]);
        }
        git_with(
            &path,
            &args,
            &[
                ("GIT_AUTHOR_DATE", date.as_str()),
                ("GIT_COMMITTER_DATE", date.as_str()),
            ],
        );
    }
    path
}

fn with_history(n: u32) -> Limits {
    Limits {
        history_commits: Some(n),
        ..Limits::default()
    }
}

#[test]
fn the_history_is_read_into_numbers_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let src = history_repo(dir.path());
    let src = src.to_str().unwrap();

    let plain = intake_git(src, None, &Limits::default()).unwrap();
    assert!(plain.history.is_none(), "not asked for");

    let all = intake_git(src, None, &with_history(100)).unwrap();
    assert_eq!(all.sha256, plain.sha256, "the same build context");
    assert_eq!(all.commit, plain.commit);
    let h = all.history.expect("asked for");
    assert_eq!(h.error, None);
    assert_eq!(
        (h.limit, h.commits, h.cut, h.truncated),
        (100, 12, false, false)
    );
    assert_eq!((h.merges, h.authors), (0, 2));
    assert_eq!(h.first_commit.as_deref(), Some("2024-03-04T10:00:00Z"));
    assert_eq!(h.last_commit.as_deref(), Some("2024-03-06T11:00:00Z"));
    assert_eq!(h.span_days, Some(2.0417));
    assert_eq!(h.active_days, 3);
    assert_eq!(h.commits_per_active_day, Some(4.0));
    assert_eq!(
        h.busiest_day_share,
        Some(0.4167),
        "5 of 12 on the second day"
    );
    let s = &h.subjects;
    assert_eq!(s.commits, 12);
    assert_eq!(s.generic_share, Some(0.3333), "wip, fix, update, asdf");
    assert_eq!(s.short_share, Some(0.3333));
    assert_eq!(s.long_share, Some(0.0833));
    assert_eq!(s.with_body_share, Some(0.0833));
    assert_eq!(
        s.capitalized_or_imperative_share,
        Some(0.8333),
        "all but wip and asdf"
    );
    // Lengths sorted: 3 3 4 6 14 19 24 26 31 33 36 84.
    assert_eq!(s.median_length, Some(21.5));
    let t = &h.tests;
    assert_eq!(t.code_commits, 8);
    assert_eq!(t.test_commits, 4);
    assert_eq!(t.code_and_test_commits, 2);
    // Untested: the initial commit (the next adds no test) and "wip" (nor does "fix").
    assert_eq!(t.code_with_tests_share, Some(0.75));

    // Five of twelve: the history is cut, and the fifth commit's parent (the shallow
    // boundary) is not counted.
    let five = intake_git(src, None, &with_history(5)).unwrap();
    assert_eq!(five.sha256, plain.sha256);
    let h = five.history.expect("asked for");
    assert_eq!(h.error, None);
    assert_eq!(
        (h.limit, h.commits, h.cut, h.truncated),
        (5, 5, true, false)
    );
    assert_eq!(h.authors, 2);
    assert_eq!(h.active_days, 2);
    assert_eq!(h.first_commit.as_deref(), Some("2024-03-05T14:00:00Z"));
    assert_eq!(h.subjects.generic_share, Some(0.2), "asdf");
    assert_eq!(h.subjects.long_share, Some(0.2));
    assert_eq!(
        (
            h.tests.code_commits,
            h.tests.test_commits,
            h.tests.code_and_test_commits
        ),
        (3, 2, 1)
    );
    assert_eq!(h.tests.code_with_tests_share, Some(1.0));

    // Exactly as many as there are: not cut (the root is not mistaken for a boundary).
    let twelve = intake_git(src, None, &with_history(12))
        .unwrap()
        .history
        .unwrap();
    assert_eq!((twelve.commits, twelve.cut), (12, false));
    let eleven = intake_git(src, None, &with_history(11))
        .unwrap()
        .history
        .unwrap();
    assert_eq!((eleven.commits, eleven.cut), (11, true));

    // A directory has no history, whatever the limits say.
    let plain_dir = dir.path().join("plain");
    write(&plain_dir.join("Dockerfile"), "FROM x\n");
    assert!(intake(&plain_dir, &with_history(5))
        .unwrap()
        .history
        .is_none());
}

/// Where the real git is (the tests' PATH).
fn real_git() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .expect("the tests need git on PATH")
}

#[test]
fn history_runs_git_only_in_proctors_own_repository_and_leaves_nothing() {
    let log_var = "PROCTOR_TEST_GIT_LOG";
    if std::env::var_os(CHILD).is_some() {
        let src = std::env::var("PROCTOR_TEST_SOURCE").unwrap();
        let log = std::env::var(log_var).unwrap();
        let mark = |what: &str| {
            let mut text = fs::read_to_string(&log).unwrap_or_default();
            text.push_str(&format!("== {what}\n"));
            fs::write(&log, text).unwrap();
        };
        mark("default");
        assert!(intake_git(&src, None, &Limits::default())
            .unwrap()
            .history
            .is_none());
        mark("history");
        let h = intake_git(&src, None, &with_history(5))
            .unwrap()
            .history
            .unwrap();
        assert_eq!((h.error, h.commits), (None, 5));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let src = history_repo(&d);
    let log = d.join("git.log");
    // A git that logs where and how proctor runs it, then runs the real one.
    let wrapper = d.join("bin/git");
    write(
        &wrapper,
        &format!(
            "#!/bin/sh\nprintf '%s\\t%s\\n' \"$PWD\" \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_git().display()
        ),
    );
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = d.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let path = std::env::join_paths(std::iter::once(d.join("bin")).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    run_child(
        "history_runs_git_only_in_proctors_own_repository_and_leaves_nothing",
        &[
            ("PROCTOR_TEST_SOURCE", src.as_os_str()),
            (log_var, log.as_os_str()),
            ("TMPDIR", tmp.as_os_str()),
            ("PATH", path.as_os_str()),
        ],
    );

    let text = fs::read_to_string(&log).unwrap();
    let (default, history) = text.split_once("== history\n").expect("both runs logged");
    // The git subcommand of each logged run, after the `-c` options.
    let commands = |section: &str| -> Vec<(String, String)> {
        section
            .lines()
            .filter(|l| !l.starts_with("=="))
            .map(|l| {
                let (cwd, args) = l.split_once('\t').unwrap();
                (cwd.to_string(), args.to_string())
            })
            .collect()
    };
    let sub = |args: &str| -> String {
        let words: Vec<&str> = args.split(' ').collect();
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                "-c" => i += 2,
                "--git-dir" | "--work-tree" => i += 2,
                w => return w.to_string(),
            }
        }
        String::new()
    };
    let default = commands(default);
    let history = commands(history);
    let names = |cmds: &[(String, String)]| cmds.iter().map(|c| sub(&c.1)).collect::<Vec<_>>();
    assert_eq!(
        names(&default),
        ["init", "fetch", "rev-parse", "ls-tree", "checkout"],
        "{default:#?}"
    );
    assert_eq!(
        names(&history),
        [
            "init",
            "fetch",
            "rev-parse",
            "ls-tree",
            "checkout",
            "fetch",
            "log"
        ],
        "{history:#?}"
    );
    let first_fetch = |cmds: &[(String, String)]| cmds[1].1.clone();
    for cmds in [&default, &history] {
        let f = first_fetch(cmds);
        assert!(
            f.contains(" --depth=1 ") && !f.contains("--filter"),
            "the commit is fetched as without history: {f}"
        );
    }
    let deepen = &history[5].1;
    assert!(
        deepen.contains(" --depth=6 --filter=blob:none --no-tags "),
        "{deepen}"
    );
    let commit = git(&src, &["rev-parse", "HEAD"]);
    assert!(
        deepen.contains(&format!(" -c remote.proctor.url={} ", src.display()))
            && deepen.ends_with(&format!("--end-of-options proctor {commit}")),
        "fetched from the source by commit id: {deepen}"
    );
    let log_args = &history[6].1;
    for flag in [
        "--no-renames",
        "--name-only",
        "--no-mailmap",
        "--no-ext-diff",
        "--no-textconv",
        "--max-count=6",
    ] {
        assert!(log_args.contains(flag), "{flag}: {log_args}");
    }
    assert!(log_args.ends_with(&format!("--end-of-options {commit} --")));
    let private = tmp.join("proctor-git-");
    for (cwd, args) in default.iter().chain(&history) {
        // Every git runs in the private directory's empty home, on the private bare repository.
        assert!(
            cwd.starts_with(private.to_str().unwrap()) && cwd.ends_with("/home"),
            "{cwd}"
        );
        if sub(args) != "init" {
            assert!(
                args.contains(&format!(
                    " --git-dir {}",
                    Path::new(cwd).parent().unwrap().join("repo.git").display()
                )),
                "{args}"
            );
        }
        assert_eq!(
            args.contains("--work-tree"),
            sub(args) == "checkout",
            "only the checkout has a work tree: {args}"
        );
        assert!(
            !args.contains(&format!("{}/.git", src.display())),
            "the submission's .git is never git's directory: {args}"
        );
    }
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn hostile_history_is_bounded_and_never_fails_the_intake() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clean_tip = |src: &Path, parent: &str| -> String {
        let df = raw_object(src, "blob", b"FROM x\n");
        let tree = raw_object(src, "tree", &tree_entry("100644", "Dockerfile", &df));
        git(src, &["commit-tree", &tree, "-p", parent, "-m", "Clean up"])
    };

    // An old commit whose tree plants .git/hooks/post-checkout under a clean tip: the commit
    // alone is fine; its history fails git's checks, which only the history reports.
    let evil = d.join("evil");
    fs::create_dir_all(&evil).unwrap();
    git(&evil, &["init", "--quiet"]);
    let hook = raw_object(&evil, "blob", b"#!/bin/sh\ntouch /tmp/pwned-history\n");
    let hooks = raw_object(&evil, "tree", &tree_entry("100755", "post-checkout", &hook));
    let dotgit = raw_object(&evil, "tree", &tree_entry("40000", "hooks", &hooks));
    let mut root = tree_entry("40000", ".git", &dotgit);
    root.extend(tree_entry("100644", "Dockerfile", &hook));
    let root = raw_object(&evil, "tree", &root);
    let old = git(&evil, &["commit-tree", &root, "-m", "evil"]);
    let tip = clean_tip(&evil, &old);
    git(&evil, &["update-ref", "refs/heads/main", &tip]);
    let src = evil.to_str().unwrap();
    let plain = intake_git(src, None, &Limits::default()).unwrap();
    assert!(plain.history.is_none(), "depth 1 never sees the old commit");
    let ctx = intake_git(src, None, &with_history(10)).unwrap();
    assert_eq!(ctx.sha256, plain.sha256);
    let h = ctx.history.unwrap();
    assert_eq!(
        h.error.as_deref(),
        Some("the history fails git's integrity checks")
    );
    assert_eq!(h.commits, 0);
    assert!(!Path::new("/tmp/pwned-history").exists());

    // A git bomb (a million files) in an old commit: the tip deletes it, so the tip's own
    // listing is a million names. The reading stops at its caps, in bounded time.
    let bomb = d.join("bomb");
    fs::create_dir_all(&bomb).unwrap();
    git(&bomb, &["init", "--quiet"]);
    let blob = raw_object(&bomb, "blob", b"boom\n");
    let mut level = raw_object(
        &bomb,
        "tree",
        &(0..10)
            .flat_map(|i| tree_entry("100644", &format!("f{i}"), &blob))
            .collect::<Vec<u8>>(),
    );
    for _ in 0..5 {
        level = raw_object(
            &bomb,
            "tree",
            &(0..10)
                .flat_map(|i| tree_entry("40000", &format!("d{i}"), &level))
                .collect::<Vec<u8>>(),
        );
    }
    let old = git(&bomb, &["commit-tree", &level, "-m", "bomb"]);
    let tip = clean_tip(&bomb, &old);
    git(&bomb, &["update-ref", "refs/heads/main", &tip]);
    let t = Instant::now();
    let ctx = intake_git(bomb.to_str().unwrap(), None, &with_history(10)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let h = ctx.history.unwrap();
    assert_eq!(h.error, None);
    assert!(h.truncated && h.cut, "{h:?}");
    assert_eq!(
        h.commits, 1,
        "the tip, its million deletions cut at the caps"
    );
}

#[test]
fn the_history_brings_no_file_contents() {
    // 3 MiB of weights committed, then deleted: the commit fits in 1 MiB, and so does its
    // history, because the history is fetched without blobs.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    write(&src.join("Dockerfile"), "FROM x\n");
    fs::write(src.join("weights.bin"), noise(3 << 20)).unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "--quiet", "-m", "Add the weights"]);
    git(&src, &["rm", "--quiet", "weights.bin"]);
    git(&src, &["commit", "--quiet", "-m", "Remove the weights"]);
    let limits = Limits {
        max_total_bytes: 1 << 20,
        history_commits: Some(10),
        ..Limits::default()
    };
    let src = src.to_str().unwrap();
    let h = intake_git(src, None, &limits).unwrap().history.unwrap();
    assert_eq!((h.error.as_deref(), h.commits, h.cut), (None, 2, false));

    // The size watch still holds for the history: an old commit with 3 MiB of message is too
    // big for 1 MiB. Only the history says so; the intake stands.
    let big = dir.path().join("big");
    fs::create_dir_all(&big).unwrap();
    git(&big, &["init", "--quiet"]);
    let message: String = noise(3 << 19).iter().map(|b| format!("{b:02x}")).collect();
    write(&big.join("message.txt"), &message);
    git(
        &big,
        &["commit", "--quiet", "--allow-empty", "-F", "message.txt"],
    );
    write(&big.join("Dockerfile"), "FROM x\n");
    git(&big, &["add", "Dockerfile"]);
    git(&big, &["commit", "--quiet", "-m", "Add the Dockerfile"]);
    let ctx = intake_git(big.to_str().unwrap(), None, &limits).unwrap();
    assert_eq!(names(&ctx), ["Dockerfile"]);
    let h = ctx.history.unwrap();
    assert_eq!(
        (h.error.as_deref(), h.commits),
        (Some("the history needs more than 1 MiB on disk"), 0)
    );
}
