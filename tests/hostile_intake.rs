//! The hostile corpus at the intake level: each submission is rejected with the exact entry and
//! rule, nothing is written anywhere (the test's temporary directory is unchanged and no escape
//! target appears), and no host file is read: every host file a submission points at is a FIFO,
//! which would block the reader forever if it were opened, and intake runs under a watchdog.
//!
//! The last two tests go through the `proctor` binary: these submissions fail at intake, before
//! Docker is touched, so they need no engine.

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proctor::intake::{intake, BuildContext, IntakeError, Limits};
use tar::EntryType as T;

/// A temporary directory holding a FIFO that stands for a host file.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let fifo = CString::new(dir.path().join("host-fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        Host { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn fifo(&self) -> String {
        self.path().join("host-fifo").to_str().unwrap().to_string()
    }
    /// Every path under the directory, links not followed.
    fn snapshot(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if e.file_type().unwrap().is_dir() {
                    stack.push(p.clone());
                }
                out.insert(p);
            }
        }
        out
    }
}

/// A tar with raw names (hostile paths survive), then the end-of-archive marker.
fn tar_raw(entries: &[(&str, T, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        assert!(path.len() <= 100, "{path}");
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

const DF: (&str, T, &[u8], Option<&str>) = ("Dockerfile", T::Regular, b"FROM x\n", None);

/// Runs intake on `path` under a watchdog: a reader that opened a FIFO would hang here.
fn intake_guarded(path: &Path, limits: &Limits) -> Result<BuildContext, IntakeError> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_owned();
    let l = limits.clone();
    std::thread::spawn(move || {
        let _ = tx.send(intake(&p, &l));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("intake blocked: it opened a host file it must never read")
}

/// Writes `bytes` as `name` in the host directory, runs intake, and checks the rejection and
/// that nothing else appeared in the directory.
fn reject(host: &Host, name: &str, bytes: &[u8], limits: &Limits) -> (String, String) {
    let path = host.path().join(name);
    fs::write(&path, bytes).unwrap();
    let before = host.snapshot();
    let err = intake_guarded(&path, limits).unwrap_err();
    assert_eq!(
        host.snapshot(),
        before,
        "intake wrote into {}",
        host.path().display()
    );
    assert!(err.is_submission_fault(), "{err:?}");
    match err {
        IntakeError::Rejected { entry, rule } => (entry, rule),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn pair(entry: &str, rule: &str) -> (String, String) {
    (entry.to_string(), rule.to_string())
}

#[test]
fn parent_directory_entry() {
    let host = Host::new();
    // Were it extracted from anywhere near the root, this would land in the host directory.
    let target = format!(
        "{}{}/escaped",
        "../".repeat(12),
        host.path().to_str().unwrap().trim_start_matches('/')
    );
    let bytes = tar_raw(&[DF, (&target, T::Regular, b"owned", None)]);
    assert_eq!(
        reject(&host, "s.tar", &bytes, &Limits::default()),
        pair(&target, "path contains '..'")
    );
    assert!(!host.path().join("escaped").exists());
}

#[test]
fn absolute_path_entry() {
    let host = Host::new();
    let target = format!("{}/abs-escaped", host.path().display());
    let bytes = tar_raw(&[DF, (&target, T::Regular, b"owned", None)]);
    assert_eq!(
        reject(&host, "s.tar", &bytes, &Limits::default()),
        pair(
            &target,
            "absolute path (entries must be relative to the submission's root)"
        )
    );
    assert!(!host.path().join("abs-escaped").exists());
}

#[test]
fn symlink_escape_then_write_through() {
    let host = Host::new();
    let limits = Limits::default();
    // a -> .. then a/evil: the link is refused before anything could be written through it.
    let bytes = tar_raw(&[
        DF,
        ("a", T::Symlink, b"", Some("..")),
        ("a/evil", T::Regular, b"owned", None),
    ]);
    assert_eq!(
        reject(&host, "up.tar", &bytes, &limits),
        pair("a", "symlink points outside the submission (..)")
    );
    // The same with an absolute link to the host directory.
    let dir = host.path().to_str().unwrap().to_string();
    let bytes = tar_raw(&[
        DF,
        ("a", T::Symlink, b"", Some(&dir)),
        ("a/evil", T::Regular, b"owned", None),
    ]);
    assert_eq!(
        reject(&host, "abs.tar", &bytes, &limits),
        pair(
            "a",
            &format!("symlink to an absolute path ({dir}) is not allowed")
        )
    );
    // A link that stays inside is fine, but nothing may be written through it either.
    let bytes = tar_raw(&[
        DF,
        ("sub/", T::Directory, b"", None),
        ("a", T::Symlink, b"", Some("sub")),
        ("a/evil", T::Regular, b"owned", None),
    ]);
    assert_eq!(
        reject(&host, "through.tar", &bytes, &limits),
        pair(
            "a/evil",
            "lies below a, which is a symlink (to sub): writing through a link is not allowed"
        )
    );
    // A chain whose text stays inside but whose links lead out.
    let bytes = tar_raw(&[
        DF,
        ("d/up", T::Symlink, b"", Some("..")),
        ("x", T::Symlink, b"", Some("d/up/..")),
    ]);
    assert_eq!(
        reject(&host, "chain.tar", &bytes, &limits),
        pair(
            "x",
            "symlink points outside the submission (d/up/.., through the symlink d/up)"
        )
    );
    assert!(!host.path().join("evil").exists());
}

#[test]
fn hard_link_to_a_host_file() {
    let host = Host::new();
    let fifo = host.fifo();
    let bytes = tar_raw(&[DF, ("h", T::Link, b"", Some(&fifo))]);
    assert_eq!(
        reject(&host, "s.tar", &bytes, &Limits::default()),
        pair(
            "h",
            &format!("hard links are not allowed (this one links to {fifo})")
        )
    );
    let bytes = tar_raw(&[DF, ("h", T::Link, b"", Some("../../etc/shadow"))]);
    assert_eq!(
        reject(&host, "rel.tar", &bytes, &Limits::default()),
        pair(
            "h",
            "hard links are not allowed (this one links to ../../etc/shadow)"
        )
    );
}

#[test]
fn symlinks_to_host_files_are_never_followed() {
    let host = Host::new();
    let fifo = host.fifo();
    let limits = Limits::default();
    let sub = |name: &str| {
        let d = host.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("Dockerfile"), "FROM x\n").unwrap();
        d
    };
    let check = |dir: &Path, want: (String, String)| {
        let before = host.snapshot();
        let err = intake_guarded(dir, &limits).unwrap_err();
        assert_eq!(host.snapshot(), before);
        assert!(err.is_submission_fault(), "{err:?}");
        let IntakeError::Rejected { entry, rule } = err else {
            panic!("{err:?}")
        };
        assert_eq!((entry, rule), want);
    };
    // An absolute link, in a directory submission.
    let d = sub("abs");
    std::os::unix::fs::symlink(&fifo, d.join("secret")).unwrap();
    check(
        &d,
        pair(
            "secret",
            &format!("symlink to an absolute path ({fifo}) is not allowed"),
        ),
    );
    // A relative link that climbs out of the submission.
    let d = sub("rel");
    std::os::unix::fs::symlink("../host-fifo", d.join("up")).unwrap();
    check(
        &d,
        pair("up", "symlink points outside the submission (../host-fifo)"),
    );
    // .dockerignore and Dockerfile are read by intake itself: as links they are refused too.
    let d = sub("ignore");
    std::os::unix::fs::symlink(&fifo, d.join(".dockerignore")).unwrap();
    check(&d, pair(".dockerignore", "must be a regular file"));
    let d = sub("dockerfile");
    fs::remove_file(d.join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(&fifo, d.join("Dockerfile")).unwrap();
    check(
        &d,
        pair(
            "Dockerfile",
            &format!("symlink to an absolute path ({fifo}) is not allowed"),
        ),
    );
    // A FIFO inside the submission is not opened either.
    let d = sub("fifo");
    let p = CString::new(d.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o600) }, 0);
    check(
        &d,
        pair(
            "pipe",
            "is a FIFO: only regular files, directories and symlinks are allowed",
        ),
    );
    // And the same absolute link in an archive.
    let bytes = tar_raw(&[DF, ("secret", T::Symlink, b"", Some(&fifo))]);
    assert_eq!(
        reject(&host, "s.tar", &bytes, &limits),
        pair(
            "secret",
            &format!("symlink to an absolute path ({fifo}) is not allowed")
        )
    );
}

#[test]
fn gzip_bomb() {
    let host = Host::new();
    let zeros = vec![0u8; 48 << 20];
    let tar = tar_raw(&[DF, ("zeros", T::Regular, &zeros, None)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 100 << 10, "{} bytes compressed", gz.len());
    let t = Instant::now();
    assert_eq!(
        reject(&host, "bomb.tar.gz", &gz, &Limits::default()),
        pair(
            "zeros",
            "the archive decompresses to more than 16 MiB (a compression bomb, or over the size limit)"
        )
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn a_hundred_thousand_tiny_files_stop_at_the_entry_cap_quickly() {
    let host = Host::new();
    let names: Vec<String> = (0..100_000).map(|i| format!("f{i}")).collect();
    let mut entries = vec![DF];
    entries.extend(
        names
            .iter()
            .map(|n| (n.as_str(), T::Regular, &b""[..], None)),
    );
    let bytes = tar_raw(&entries);
    let t = Instant::now();
    // The Dockerfile and f0..f19998 make 20,000 entries: f19999 is one too many.
    assert_eq!(
        reject(&host, "many.tar", &bytes, &Limits::default()),
        pair("f19999", "more than 20000 entries in the submission")
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn deep_nesting() {
    let host = Host::new();
    let deep = format!("{}f", "d/".repeat(40));
    let bytes = tar_raw(&[DF, (&deep, T::Regular, b"x", None)]);
    assert_eq!(
        reject(&host, "deep.tar", &bytes, &Limits::default()),
        pair(&deep, "nested deeper than 32 levels")
    );
}

#[test]
fn duplicate_entry() {
    let host = Host::new();
    let bytes = tar_raw(&[
        DF,
        ("app.py", T::Regular, b"print('seen by the reviewer')", None),
        ("app.py", T::Regular, b"print('what actually runs')", None),
    ]);
    assert_eq!(
        reject(&host, "dup.tar", &bytes, &Limits::default()),
        pair("app.py", "appears twice in the archive")
    );
}

#[test]
fn device_nodes_and_fifos() {
    let host = Host::new();
    for (kind, name, what) in [
        (T::Char, "dev/null", "character devices"),
        (T::Block, "dev/sda", "block devices"),
        (T::Fifo, "run/pipe", "FIFOs"),
    ] {
        let bytes = tar_raw(&[DF, (name, kind, b"", None)]);
        assert_eq!(
            reject(&host, "dev.tar", &bytes, &Limits::default()),
            pair(
                name,
                &format!("{what} are not allowed (only regular files, directories and symlinks)")
            )
        );
    }
}

#[test]
fn a_file_over_the_single_file_cap() {
    let host = Host::new();
    // A header that claims 200 MiB: refused before a byte of it is read or allocated.
    let mut bytes = tar_raw(&[DF]);
    bytes.truncate(bytes.len() - 1024);
    let mut h = tar::Header::new_gnu();
    h.set_path("huge.bin").unwrap();
    h.set_size(200 << 20);
    h.set_entry_type(T::Regular);
    h.set_cksum();
    bytes.extend_from_slice(h.as_bytes());
    let t = Instant::now();
    assert_eq!(
        reject(&host, "huge.tar", &bytes, &Limits::default()),
        pair("huge.bin", "file is larger than 128 MiB")
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    // A real one over a lowered cap.
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let big = vec![7u8; 2 << 20];
    let bytes = tar_raw(&[DF, ("model.bin", T::Regular, &big, None)]);
    assert_eq!(
        reject(&host, "big.tar", &bytes, &limits),
        pair("model.bin", "file is larger than 1 MiB")
    );
}

#[test]
fn pax_path_override_is_checked_as_the_final_path() {
    let host = Host::new();
    let record = b"25 path=../../etc/passwd\n";
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("Dockerfile").unwrap();
    h.set_size(7);
    h.set_entry_type(T::Regular);
    h.set_cksum();
    b.append(&h, &b"FROM x\n"[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(T::XHeader);
    h.set_path("PaxHeaders/harmless").unwrap();
    h.set_size(record.len() as u64);
    h.set_cksum();
    b.append(&h, &record[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("harmless.txt").unwrap();
    h.set_size(1);
    h.set_entry_type(T::Regular);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    assert_eq!(
        reject(&host, "pax.tar", &bytes, &Limits::default()),
        pair("../../etc/passwd", "path contains '..'")
    );
}

#[test]
fn names_with_control_characters_or_invalid_utf8() {
    let host = Host::new();
    // An OSC sequence that would retitle the grader's terminal if printed raw.
    let bytes = tar_raw(&[DF, ("a\x1b]0;pwned\x07b", T::Regular, b"x", None)]);
    assert_eq!(
        reject(&host, "ctl.tar", &bytes, &Limits::default()),
        pair(
            "a\\u{1b}]0;pwned\\u{7}b",
            "name contains the control character \\u{1b} (names must be printable)"
        )
    );
    let mut bytes = tar_raw(&[DF, ("latin-X.py", T::Regular, b"x", None)]);
    let off = 1024; // second header
    bytes[off + 6] = 0xE9; // 'X' -> a Latin-1 e-acute, not UTF-8
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(&bytes[off..off + 512]);
    h.set_cksum();
    bytes[off..off + 512].copy_from_slice(h.as_bytes());
    assert_eq!(
        reject(&host, "latin1.tar", &bytes, &Limits::default()),
        pair("latin-\u{FFFD}.py", "name is not valid UTF-8")
    );
}

#[test]
fn truncated_archives_and_trailing_garbage() {
    let host = Host::new();
    let good = tar_raw(&[DF, ("app.py", T::Regular, &[b'x'; 3000], None)]);
    assert_eq!(
        reject(&host, "cut.tar", &good[..512 * 4], &Limits::default()),
        pair(
            "app.py",
            "the archive ends in the middle of this file (truncated?)"
        )
    );
    assert_eq!(
        reject(
            &host,
            "nomarker.tar",
            &good[..good.len() - 1024],
            &Limits::default()
        ),
        pair(
            "(archive)",
            "the archive ends without its end-of-archive marker (truncated?)"
        )
    );
    let mut appended = good.clone();
    appended.extend_from_slice(&tar_raw(&[("smuggled", T::Regular, b"x", None)]));
    assert_eq!(
        reject(&host, "appended.tar", &appended, &Limits::default()),
        pair(
            "(archive)",
            "data after the end-of-archive marker (a second archive appended, or garbage)"
        )
    );
}

/// `proctor grade` run from a working directory inside the host directory.
fn grade_in(host: &Host, submission: &Path) -> common::Run {
    let work = host.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let out = host.path().join("report.json");
    let output = common::proctor()
        .arg("grade")
        .arg(submission)
        .arg("--grader")
        .arg(common::fixture("graders/tiny.toml"))
        .arg("--out")
        .arg(&out)
        .current_dir(&work)
        .output()
        .expect("proctor runs");
    common::finish(output, &out)
}

fn assert_archive_rejected(run: &common::Run, entry: &str) {
    assert_eq!(run.code, 3, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["status"], "submission_error", "{}", run.explain());
    assert_eq!(r["verdict"], "archive_rejected", "{}", run.explain());
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("{entry}: ")), "{reason}");
}

#[test]
fn proctor_grade_rejects_a_parent_directory_entry() {
    let host = Host::new();
    let target = format!("{}escaped-by-grade", "../".repeat(3));
    let tar = host.path().join("hostile.tar");
    fs::write(&tar, tar_raw(&[DF, (&target, T::Regular, b"owned", None)])).unwrap();
    let t = Instant::now();
    let run = grade_in(&host, &tar);
    assert_archive_rejected(&run, &target);
    assert!(run.report()["reason"]
        .as_str()
        .unwrap()
        .contains("path contains '..'"));
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    // From work/, ../../../ would have reached above the host directory; nothing was written
    // there, nor anywhere in the host directory but the report.
    let written: Vec<_> = host
        .snapshot()
        .into_iter()
        .filter(|p| !p.ends_with("report.json") && !p.ends_with("hostile.tar"))
        .filter(|p| !p.ends_with("work") && !p.ends_with("host-fifo"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    assert!(!host
        .path()
        .parent()
        .unwrap()
        .join("escaped-by-grade")
        .exists());
}

#[test]
fn proctor_grade_rejects_a_write_through_symlink() {
    let host = Host::new();
    let tar = host.path().join("hostile.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_raw(&[
        DF,
        ("a", T::Symlink, b"", Some("..")),
        ("a/evil", T::Regular, b"owned", None),
    ]))
    .unwrap();
    fs::write(&tar, gz.finish().unwrap()).unwrap();
    let run = grade_in(&host, &tar);
    assert_archive_rejected(&run, "a");
    assert!(
        run.report()["reason"]
            .as_str()
            .unwrap()
            .contains("symlink points outside the submission (..)"),
        "{}",
        run.explain()
    );
    assert!(!host.path().join("evil").exists());
    assert!(!host.path().join("work/evil").exists());
}

/// Every hostile archive of this file, handed to `proctor grade` itself: each is
/// `archive_rejected` naming its entry and rule, within a deadline (a read of the host FIFO
/// would hang it), writes nothing in the host directory but the report, and leaves nothing in
/// Docker.
#[test]
fn proctor_grade_rejects_every_hostile_archive() {
    let host = Host::new();
    let fifo = host.fifo();
    let abs = format!("{}/abs-escaped", host.path().display());
    let zeros = vec![0u8; 48 << 20];
    let names: Vec<String> = (0..100_000).map(|i| format!("f{i}")).collect();
    let mut many = vec![DF];
    many.extend(
        names
            .iter()
            .map(|n| (n.as_str(), T::Regular, &b""[..], None)),
    );
    let gzip = |tar: Vec<u8>| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "absolute.tar",
            tar_raw(&[DF, (&abs, T::Regular, b"owned", None)]),
            &abs,
            "absolute path",
        ),
        (
            "hardlink.tar",
            tar_raw(&[DF, ("h", T::Link, b"", Some(&fifo))]),
            "h",
            "hard links are not allowed",
        ),
        (
            "abs-symlink.tar",
            tar_raw(&[DF, ("secret", T::Symlink, b"", Some(&fifo))]),
            "secret",
            "symlink to an absolute path",
        ),
        (
            "bomb.tar.gz",
            gzip(tar_raw(&[DF, ("zeros", T::Regular, &zeros, None)])),
            "zeros",
            "decompresses to more than",
        ),
        (
            "many.tar",
            tar_raw(&many),
            "f19999",
            "more than 20000 entries",
        ),
    ];
    for (name, bytes, entry, rule) in cases {
        let path = host.path().join(name);
        fs::write(&path, bytes).unwrap();
        let before = host.snapshot();
        let (tx, rx) = mpsc::channel();
        let (h, p) = (host.path().to_owned(), path.clone());
        std::thread::spawn(move || {
            let out = h.join("report.json");
            let output = common::proctor()
                .arg("grade")
                .arg(&p)
                .arg("--grader")
                .arg(common::fixture("graders/tiny.toml"))
                .arg("--out")
                .arg(&out)
                .output()
                .expect("proctor runs");
            let _ = tx.send(common::finish(output, &out));
        });
        let run = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{name}: proctor grade hung (did it open the host FIFO?)"));
        assert_archive_rejected(&run, entry);
        let reason = run.report()["reason"].as_str().unwrap();
        assert!(reason.contains(rule), "{name}: {reason}");
        let written: Vec<_> = host
            .snapshot()
            .into_iter()
            .filter(|p| !before.contains(p) && !p.ends_with("report.json"))
            .collect();
        assert!(written.is_empty(), "{name}: {written:?}");
        common::assert_no_leftovers(&run.run_id());
        fs::remove_file(&path).unwrap();
    }
    assert!(!host.path().join("abs-escaped").exists());
}
