//! `proctor doctor`: checks the machine before grading.
//!
//! A grade is only worth something when the machine under it is sound: an engine that answers,
//! a kernel that enforces the sandbox's limits, a runtime without known escapes, the base images
//! the graders allow, and room on disk. When any of these is missing, `proctor grade` reports an
//! `infrastructure_error` at best, and at worst a grade measured under limits that were silently
//! not applied. The doctor finds out before a candidate's submission is at stake, and says for
//! each problem what to do about it.
//!
//! Each check is one line: `ok`, `warn` (grading works, but something is weaker or slower than
//! it should be) or `FAIL` (grading will fail or cannot be trusted). The exit code is 1 when a
//! check fails, else 0.
//!
//! The checks live by what they look at (`engine`, `isolation`, `container`, `images`, `disk`,
//! `contention`); this module runs them in the order a reader would fix them and renders them.

mod container;
mod contention;
mod disk;
mod engine;
mod images;

pub use images::{grader_images, recipe};
mod isolation;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sandbox::{system, Engine};
use container::{container_check, lock_check, network_check, pid_check, Place};
use contention::{cpus_check, leftovers_check, priority_check, try_realtime};
use disk::{engine_disk_check, temp_disk_check};
use engine::{api_check, docker_host, engine_check, runc_check, storage_check, unreachable_check};
use images::{image_checks, repo_grader_images};
use isolation::{build_limit_check, cgroup_check, firewall_check, limits_check};

pub use engine::{MIN_API, TESTED_API};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result; `fix` says what to do when it is not ok.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check and prints them (as text, or as JSON with `json`). `root` is the repository
/// (as `proctor demo` finds it): its `graders/` and its base-image recipes. `graders` are extra
/// grader files whose base images must be present too. Returns the exit code: 0 when nothing
/// failed, 1 when something did, 2 when a grader file given cannot be read.
pub async fn run(root: &Path, graders: &[PathBuf], json: bool) -> i32 {
    let mut wanted = Vec::new();
    for path in graders {
        match grader_images(path) {
            Ok(images) => wanted.push((path.clone(), images)),
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::USAGE;
            }
        }
    }
    let checks = checks(root, wanted).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).expect("checks serialize")
        );
    } else {
        print!("{}", render(&checks));
    }
    if checks.iter().any(|c| c.status == Status::Fail) {
        1
    } else {
        0
    }
}

/// The checks as text: one line per check, and under each one that is not ok, what to do.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<5} {}: {}\n",
            c.status.label(),
            c.name,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (warns, fails) = (count(Status::Warn), count(Status::Fail));
    out.push_str(&match (warns, fails) {
        (_, 0) => format!(
            "ready to grade ({} ok, {warns} warning(s))\n",
            count(Status::Ok)
        ),
        _ => format!("not ready to grade: {fails} failure(s), {warns} warning(s)\n"),
    });
    out
}

/// All checks, in the order a reader would fix them: engine first (nothing else works without
/// it), then what the engine enforces, then what grading consumes.
pub async fn checks(root: &Path, extra: Vec<(PathBuf, Vec<String>)>) -> Vec<Check> {
    let mut out = Vec::new();
    let host = docker_host();
    let (mut images, mut grader_problems) = repo_grader_images(root);
    let canonical_root = std::fs::canonicalize(root).ok();
    for (path, imgs) in extra {
        // A grader inside the repository is named as the repository's graders are, once.
        let shown = std::fs::canonicalize(&path)
            .ok()
            .zip(canonical_root.as_ref())
            .and_then(|(p, r)| p.strip_prefix(r).ok().map(|p| p.display().to_string()))
            .unwrap_or_else(|| path.display().to_string());
        for img in imgs {
            let by = images.entry(img).or_default();
            if !by.contains(&shown) {
                by.push(shown.clone());
            }
        }
    }
    let place = Place::here();
    match Engine::connect().await {
        Ok(engine) => {
            out.push(engine_check(&engine.info, &host));
            out.push(api_check(engine.info.api_version.as_deref()));
            let info = system::system_info(&engine).await;
            out.push(runc_check(
                &engine.info,
                info.as_ref()
                    .ok()
                    .and_then(|i| i.default_runtime.as_deref()),
            ));
            match &info {
                Ok(info) => {
                    out.push(cgroup_check(info));
                    out.push(limits_check(info));
                    out.push(storage_check(info));
                }
                Err(e) => out.push(Check::fail(
                    "engine info",
                    e.to_string(),
                    "run `docker info` to see what the engine says; restart it if it does not answer",
                )),
            }
            out.push(container_check(&place));
            let (network, pid, reach) = namespace_checks(&engine, &place, &host).await;
            out.push(network);
            out.push(pid);
            out.push(build_limit_check(&engine.info, &place));
            out.push(firewall_check(&engine.info, &place, reach).await);
            out.push(lock_check(
                place.in_container(),
                &crate::load::exclusive::lock_path(),
                &place.mounts,
            ));
            out.append(&mut grader_problems);
            out.extend(image_checks(&engine, root, &images).await);
            let root_dir = info.as_ref().ok().and_then(|i| i.root_dir.clone());
            out.push(engine_disk_check(root_dir.as_deref(), &host));
            out.push(temp_disk_check());
            out.push(leftovers_check(&engine).await);
            let engine_cpus = info.as_ref().ok().and_then(|i| i.cpus);
            out.push(cpus_check(
                crate::load::sys::allowed_cpus().len(),
                engine_cpus,
            ));
            out.push(priority_check(
                try_realtime(),
                place.in_container(),
                Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists(),
            ));
        }
        Err(e) => {
            out.push(unreachable_check(&e, &host));
            out.push(container_check(&place));
            out.push(lock_check(
                place.in_container(),
                &crate::load::exclusive::lock_path(),
                &place.mounts,
            ));
            out.append(&mut grader_problems);
            out.push(temp_disk_check());
            out.push(cpus_check(crate::load::sys::allowed_cpus().len(), None));
        }
    }
    out
}

/// Whether proctor shares the engine's network and pid namespaces, and whether services on run
/// networks are reachable from here (the firewall check needs that verdict too).
async fn namespace_checks(
    engine: &Engine,
    place: &Place,
    host: &str,
) -> (Check, Check, container::Reach) {
    let container = place.in_container();
    let Some(socket) = host.strip_prefix("unix://").filter(|_| engine.info.local) else {
        let fix = "run proctor on the engine's machine";
        return (
            Check::warn(
                "network namespace",
                "the engine runs on another machine: proctor reaches services at their addresses on the run's network, which must be routable from here",
                fix,
            ),
            Check::warn(
                "pid namespace",
                "the engine runs on another machine, so its runs' pids are not this machine's",
                fix,
            ),
            container::Reach::Unknown,
        );
    };
    let peer = container::socket_peer_pid(Path::new(socket));
    let comm = peer
        .as_ref()
        .ok()
        .filter(|&&p| p > 0)
        .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok());
    let pid = pid_check(container, peer, comm.as_deref());
    let visible =
        container::interfaces(&std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default());
    let bridges = system::bridge_interfaces(engine)
        .await
        .map_err(|e| e.to_string());
    let (network, reach) = network_check(container, bridges, &visible);
    (network, pid, reach)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_a_fix_under_each_problem() {
        let text = render(&[
            Check::ok("a", "fine"),
            Check::fail("b", "broken", "mend it"),
        ]);
        assert!(text.contains("ok    a: fine\n"), "{text}");
        assert!(
            text.contains("FAIL  b: broken\n      fix: mend it\n"),
            "{text}"
        );
        assert!(text.contains("not ready to grade: 1 failure(s)"), "{text}");
    }
}
