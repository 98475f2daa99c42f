//! The confined `git`: cleared environment, fixed config, its own process group, a deadline and
//! a cap on what it writes; and the readers of its output.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::intake::names::is_unsafe_char;

pub(super) fn find_git() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}
pub(super) fn drain(mut r: ChildStdout) {
    let _ = std::io::copy(&mut r, &mut std::io::sink());
}

pub(super) fn read_bounded(r: impl Read, max: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = r.take(max).read_to_end(&mut out);
    out
}

/// Bytes under `dir` (files only, no link followed), counted up to a little past `cap`.
pub(super) fn dir_size(dir: &Path, cap: u64) -> u64 {
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

pub(super) enum Failure {
    Timeout,
    TooBig,
    Exit(String),
    Spawn(std::io::Error),
}

/// Runs `git` confined: cleared environment, fixed config, own process group, deadline.
pub(super) struct Runner {
    git: PathBuf,
    env: Vec<(&'static str, OsString)>,
    config: Vec<String>,
    cwd: PathBuf,
    deadline: Instant,
}

impl Runner {
    pub(super) fn new(
        git: PathBuf,
        protocol: &str,
        tmp: &Path,
        home: &Path,
        timeout: Duration,
    ) -> Runner {
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

    /// The same confinement and the same deadline, with `GIT_CONFIG_GLOBAL` pointing at
    /// `config`, a file proctor wrote into its own temporary directory, instead of `/dev/null`.
    /// Unlike `-c`, which git keeps from the `upload-pack` it starts for a local repository,
    /// this reaches that `upload-pack` too.
    pub(super) fn with_global_config(&self, config: &Path) -> Runner {
        let env = self
            .env
            .iter()
            .map(|(k, v)| {
                let v = if *k == "GIT_CONFIG_GLOBAL" {
                    config.into()
                } else {
                    v.clone()
                };
                (*k, v)
            })
            .collect();
        Runner {
            git: self.git.clone(),
            env,
            config: self.config.clone(),
            cwd: self.cwd.clone(),
            deadline: self.deadline,
        }
    }

    /// Runs one git command; `consume` reads its stdout on a thread. The command is killed (with
    /// everything it started) past the deadline, or when `watch`'s directory grows past its cap.
    pub(super) fn run<T: Send>(
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
