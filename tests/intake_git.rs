//! Git sources at the intake level: local repositories made by the tests (no network but the
//! loopback), taken at HEAD, a tag, a branch and a commit id; hostile configuration, hooks,
//! filters and submodules that must not run or be fetched; unreachable and stalled servers; git
//! bombs; and the private temporary directory, removed whatever happens.
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
    let out = Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
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

#[test]
fn an_oversized_repository_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "--quiet"]);
    write(&src.join("Dockerfile"), "FROM x\n");
    // Incompressible, so the fetched pack is as big as the file.
    let mut noise = vec![0u8; 3 << 20];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(src.join("weights.bin"), &noise).unwrap();
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
        let ctx = intake_git(&src, Some("main"), &Limits::default()).unwrap();
        assert_eq!(
            file(&ctx, "model.bin").as_deref(),
            Some("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n"),
            "LFS pointers stay pointers"
        );
        assert_eq!(file(&ctx, "app.py").as_deref(), Some("print('hi')\n"));
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
