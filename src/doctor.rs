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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::grader;
use crate::sandbox::system::{self, SystemFacts};
use crate::sandbox::{cleanup, Engine, EngineError, EngineInfo};

/// Below this API version the engine does not know fields the sandbox relies on: `Init` and
/// `NanoCpus` (1.25), `PidsLimit` (1.23), tmpfs mounts (1.22). bollard 0.21.1 (pinned in
/// Cargo.toml) sends requests without a version prefix (bollard issue #736), so the engine reads
/// them at its own API version, and an older engine drops fields it does not know without an
/// error: the container would run without them.
pub const MIN_API: (u32, u32) = (1, 25);

/// The oldest API version proctor is tested against (Docker 20.10). Between `MIN_API` and this,
/// grading should work but is untested; the build's builder selection (`version=1`, API 1.38) is
/// one of the fields an older engine ignores (harmlessly: it only has the classic builder).
pub const TESTED_API: (u32, u32) = (1, 41);

/// Free space on the engine's root dir below which grading will likely fail: a build writes the
/// context (up to 256 MiB), the candidate's layers and the container's logs there.
const ROOT_FAIL_BYTES: u64 = 1 << 30;
/// Below this, a few builds of an ML image (the base image alone is ~360 MB) fill the disk.
const ROOT_WARN_BYTES: u64 = 5 << 30;

/// Base images proctor knows how to build locally, and the script that builds each.
const RECIPES: &[(&str, &str)] = &[
    ("proctor/python-ml:3.11", "docker/base/build.sh"),
    ("proctor/busybox:test", "docker/testbase/build.sh"),
];

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
            out.push(build_limit_check(&engine.info));
            out.push(firewall_check(&engine.info).await);
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
        }
        Err(e) => {
            out.push(unreachable_check(&e, &host));
            out.append(&mut grader_problems);
            out.push(temp_disk_check());
            out.push(cpus_check(crate::load::sys::allowed_cpus().len(), None));
        }
    }
    out
}

/// The build's process limit (`sandbox::build_cgroup`): without it a `RUN` fork bomb can fill
/// the host's process table. Tried for real: a cgroup is created and removed.
fn build_limit_check(info: &EngineInfo) -> Check {
    const NAME: &str = "build process limit";
    let fix = "run proctor as root on the engine's machine, with the engine's cgroupfs driver \
               (dockerd --exec-opt native.cgroupdriver=cgroupfs), or grade in a throwaway VM";
    if !info.local {
        return Check::warn(NAME, "the engine runs on another machine", fix);
    }
    let probe = format!("doctor-{}-probe", std::process::id());
    match crate::sandbox::build_cgroup::create(&probe, 64, info.cgroup_driver.as_deref()) {
        Ok(_cgroup) => Check::ok(NAME, "builds run in a cgroup with a pids limit"),
        Err(e) => Check::warn(NAME, format!("builds run without one: {e}"), fix),
    }
}

/// The rule that closes the host's own ports to a candidate's container (`sandbox::firewall`).
async fn firewall_check(info: &EngineInfo) -> Check {
    const NAME: &str = "host firewall";
    let fix = "run proctor as root on the engine's machine, with iptables installed";
    if !info.local {
        return Check::warn(NAME, "the engine runs on another machine", fix);
    }
    match crate::sandbox::firewall::probe().await {
        Ok(()) => Check::ok(
            NAME,
            "each run's network is shut out of the host's ports (iptables INPUT rule)",
        ),
        Err(e) => Check::warn(
            NAME,
            format!("services could reach ports on this machine: {e}"),
            fix,
        ),
    }
}

/// Where proctor looks for the engine: `DOCKER_HOST`, as the docker CLI does, else the local
/// socket.
fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// The engine answers. Everything proctor does goes through it: intake aside, no stage can run
/// without it, and a grade run without one ends as `engine_unreachable`.
fn engine_check(info: &EngineInfo, host: &str) -> Check {
    Check::ok(
        "engine",
        format!(
            "Docker {} at {host}{}",
            info.version.as_deref().unwrap_or("(version not reported)"),
            info.os
                .as_deref()
                .map(|os| format!(" ({os})"))
                .unwrap_or_default()
        ),
    )
}

/// The engine did not answer: say why in the terms of the likely cause.
fn unreachable_check(e: &EngineError, host: &str) -> Check {
    let detail = match e {
        EngineError::Unreachable { detail, .. } => {
            format!("cannot reach the Docker engine at {host}: {detail}; the other engine checks were skipped")
        }
        other => format!("{other}; the other engine checks were skipped"),
    };
    let lower = detail.to_ascii_lowercase();
    let start = "start the engine: `sudo systemctl start docker`, or where there is no systemd `sudo dockerd >/var/log/dockerd.log 2>&1 &`";
    let fix = if lower.contains("permission denied") {
        format!("the socket at {host} is not accessible to this user: run proctor as root or add the user to the docker group (`sudo usermod -aG docker $USER`, then log in again)")
    } else if std::env::var_os("DOCKER_HOST").is_some() {
        format!("DOCKER_HOST is set to {host}: point it at a running engine (or unset it to use /var/run/docker.sock); if that engine is down, {start}")
    } else {
        format!("{start}; or set DOCKER_HOST to the engine's address (e.g. unix:///run/user/1000/docker.sock for rootless Docker)")
    };
    Check::fail("engine", detail, fix)
}

/// Parses `1.41` into (1, 41).
fn parse_api(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The engine's API version is new enough for the sandbox settings proctor sends (see `MIN_API`
/// for why an older one would run a submission without some of its limits).
fn api_check(api: Option<&str>) -> Check {
    let name = "api version";
    let fmt = |(a, b): (u32, u32)| format!("{a}.{b}");
    let upgrade =
        "upgrade the Docker engine (Debian: `apt-get install docker.io`; or Docker's own packages)";
    match api.and_then(parse_api) {
        None => Check::warn(
            name,
            format!("the engine reports no readable API version ({api:?})"),
            "check `docker version`: proctor needs API 1.25 or newer and is tested on 1.41",
        ),
        Some(v) if v < MIN_API => Check::fail(
            name,
            format!(
                "API {}: older than {}, so the engine would silently drop sandbox settings (init, CPU and pids limits)",
                fmt(v),
                fmt(MIN_API)
            ),
            upgrade,
        ),
        Some(v) if v < TESTED_API => Check::warn(
            name,
            format!(
                "API {}: proctor needs {} and is tested on {} and newer",
                fmt(v),
                fmt(MIN_API),
                fmt(TESTED_API)
            ),
            upgrade,
        ),
        Some(v) => Check::ok(
            name,
            format!(
                "API {} (needs {}; bollard 0.21.1 sends unversioned requests, read at the engine's version)",
                fmt(v),
                fmt(MIN_API)
            ),
        ),
    }
}

/// runc is the boundary between a candidate's code and the machine. Releases before 1.2.8 /
/// 1.3.3 have container escapes (2025 CVEs) reachable from an ordinary Dockerfile; the warning
/// is the one every report carries (`EngineInfo::runc_warning`). A default runtime other than
/// runc (e.g. gVisor's runsc) is what the sandbox runs under instead.
fn runc_check(info: &EngineInfo, default_runtime: Option<&str>) -> Check {
    let name = "runc";
    if let Some(rt) = default_runtime.filter(|rt| !rt.is_empty() && *rt != "runc") {
        return Check::ok(
            name,
            format!(
                "containers run under the default runtime {rt:?}, not runc (runc {})",
                info.runc_version.as_deref().unwrap_or("not reported")
            ),
        );
    }
    match (&info.runc_version, info.runc_warning()) {
        (None, _) => Check::warn(
            name,
            "the engine does not report a runc version, so proctor cannot tell whether it has the 2025 escape fixes",
            "check `docker version` (Server > runc) and make sure runc is 1.2.8, 1.3.3 or newer",
        ),
        (Some(_), Some(warning)) => Check::warn(
            name,
            warning,
            "install runc 1.2.8, 1.3.3 or newer for the engine (the distribution's runc/containerd update, or the static binary from github.com/opencontainers/runc releases), then restart the engine",
        ),
        (Some(v), None) => Check::ok(name, format!("runc {v} (has the 2025 escape fixes)")),
    }
}

/// The cgroup version and driver say which kernel mechanism enforces the sandbox's limits. The
/// driver `none` (rootless Docker on cgroup v1) means no limits at all.
fn cgroup_check(info: &SystemFacts) -> Check {
    let name = "cgroups";
    let version = info.cgroup_version.as_deref().unwrap_or("1");
    let driver = info.cgroup_driver.as_deref();
    let detail = format!(
        "cgroup v{version}, driver {}",
        driver.unwrap_or("not reported")
    );
    if driver == Some("none") {
        Check::fail(
            name,
            format!("{detail}: the engine cannot limit containers at all"),
            "run the engine with cgroups (rootless Docker needs cgroup v2 with systemd delegation: see docs.docker.com/engine/security/rootless)",
        )
    } else {
        Check::ok(name, detail)
    }
}

/// Whether the kernel enforces each limit the sandbox sets: memory (a submission could exhaust
/// the machine, and the OOM verdict needs it), pids (fork bombs), CPU quota (`nano_cpus`; the
/// engine refuses to create the container without it), swap (memory = swap is the "no swap"
/// rule; without it a service may swap past its limit and its latency means nothing) and
/// cpusets (graders that pin the service and the load generator to their own cores).
fn limits_check(info: &SystemFacts) -> Check {
    let name = "resource limits";
    let cgroup_v1 = info.cgroup_version.as_deref() != Some("2");
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    if !info.memory_limit {
        fails.push("memory limits are not enforced");
    }
    if !info.pids_limit {
        fails.push("pids limits are not enforced");
    }
    if !info.cpu_cfs_quota {
        fails.push("CPU quotas are not supported (the engine refuses CPU-limited containers)");
    }
    if !info.swap_limit {
        warns.push("swap is not limited (a service may swap beyond its memory limit)");
    }
    if !info.cpuset {
        warns.push("cpusets are not supported (graders with cpuset cannot pin cores)");
    }
    // The engine's own words about limits, next to ours.
    let engine_says: Vec<String> = info
        .warnings
        .iter()
        .filter(|w| {
            let w = w.to_ascii_lowercase();
            ["limit", "swap", "cgroup", "memory", "pids", "cpu"]
                .iter()
                .any(|k| w.contains(k))
        })
        .map(|w| crate::http::sanitize(w, 200))
        .collect();
    let mut detail = fails
        .iter()
        .chain(warns.iter())
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if !engine_says.is_empty() {
        detail.push_str(&format!(" (engine: {})", engine_says.join(" / ")));
    }
    let controllers = if cgroup_v1 {
        "enable the controllers on the kernel command line (e.g. `cgroup_enable=memory swapaccount=1` in GRUB_CMDLINE_LINUX, then update-grub and reboot)"
    } else {
        "make sure the memory, pids and cpu controllers are enabled and delegated to the engine (cgroup.subtree_control)"
    };
    if !fails.is_empty() {
        Check::fail(name, detail, controllers)
    } else if !warns.is_empty() {
        let fix = if info.swap_limit {
            controllers.to_string()
        } else {
            format!("{controllers}; or turn swap off (`swapoff -a`)")
        };
        Check::warn(name, detail, fix)
    } else {
        Check::ok(
            name,
            "memory, swap, pids, CPU quota and cpuset limits are enforced",
        )
    }
}

/// The storage driver decides how fast builds are and how much disk each layer costs. `vfs`
/// copies every layer in full; `aufs`, `devicemapper` and `overlay` are deprecated.
fn storage_check(info: &SystemFacts) -> Check {
    let name = "storage driver";
    let driver = info.storage_driver.clone().unwrap_or_default();
    let fix = "use overlay2 (`\"storage-driver\": \"overlay2\"` in /etc/docker/daemon.json, on an ext4 or xfs (ftype=1) root dir), then restart the engine; existing images must be rebuilt";
    match driver.as_str() {
        "overlay2" | "btrfs" | "zfs" => Check::ok(name, driver),
        "fuse-overlayfs" => Check::ok(
            name,
            "fuse-overlayfs (overlay in userspace: works, builds are slower than with overlay2)",
        ),
        "vfs" => Check::warn(
            name,
            "vfs: every layer is a full copy, so builds are slow and use a lot of disk",
            fix,
        ),
        "" => Check::warn(name, "the engine reports no storage driver", fix),
        other => Check::warn(
            name,
            format!(
                "{other}: deprecated or unusual; proctor is tested on overlay2 and fuse-overlayfs"
            ),
            fix,
        ),
    }
}

/// Base images the graders under `root/graders` allow, each with the graders that allow it,
/// and a warning per grader file that cannot be read.
fn repo_grader_images(root: &Path) -> (BTreeMap<String, Vec<String>>, Vec<Check>) {
    let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let dir = root.join("graders");
    let mut files = Vec::new();
    collect_toml(&dir, &mut files, 0);
    files.sort();
    for file in files {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        match grader_images(&file) {
            Ok(imgs) => {
                for img in imgs {
                    images.entry(img).or_default().push(shown.clone());
                }
            }
            Err(e) => problems.push(Check::warn(
                format!("grader {shown}"),
                format!("cannot be read, so its base images were not checked: {e}"),
                format!("fix the file (`proctor validate {}`)", file.display()),
            )),
        }
    }
    (images, problems)
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth < 4 => collect_toml(&path, out, depth + 1),
            Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == "toml") => out.push(path),
            _ => {}
        }
    }
}

/// The base images one grader file allows.
fn grader_images(path: &Path) -> Result<Vec<String>, grader::GraderError> {
    let text = std::fs::read_to_string(path).map_err(|source| grader::GraderError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(grader::parse(&text, path)?.submission.allowed_base_images)
}

/// Every base image a grader allows must be in the engine: no image is ever pulled (builds have
/// no network and there is no registry), so a missing one makes every grade with that grader
/// an infrastructure error (`base_image_missing`).
async fn image_checks(
    engine: &Engine,
    root: &Path,
    images: &BTreeMap<String, Vec<String>>,
) -> Vec<Check> {
    if images.is_empty() {
        return vec![Check::warn(
            "base images",
            format!(
                "no grader files found under {} and none given, so no base image was checked",
                root.join("graders").display()
            ),
            "pass the grader you will use: `proctor doctor --grader FILE`",
        )];
    }
    let mut out = Vec::new();
    for (image, by) in images {
        let name = format!("base image {image}");
        let used = format!("allowed by {}", by.join(", "));
        out.push(match system::find_image(engine, image).await {
            Ok(Some(i)) => {
                let id = i.id.as_deref().unwrap_or("");
                let id = id.strip_prefix("sha256:").unwrap_or(id);
                let size = i
                    .size
                    .map(|s| format!(", {} MB", s / 1_000_000))
                    .unwrap_or_default();
                Check::ok(
                    name,
                    format!("present ({}{size}; {used})", &id[..id.len().min(12)]),
                )
            }
            Ok(None) => Check::fail(
                name,
                format!("missing ({used}): every grade with that grader would fail"),
                build_fix(root, image),
            ),
            Err(e) => Check::fail(
                name,
                format!("could not be inspected: {e}"),
                "run `docker image inspect` on it to see what the engine says",
            ),
        });
    }
    out
}

/// The exact command that builds a missing base image.
fn build_fix(root: &Path, image: &str) -> String {
    match RECIPES.iter().find(|(i, _)| *i == image) {
        Some((_, script)) => {
            let path = root.join(script);
            if path.is_file() {
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                let time = if image.starts_with("proctor/python-ml") {
                    " (as root; two to three minutes, once)"
                } else {
                    ""
                };
                format!("build it: `bash {}`{time}", path.display())
            } else {
                format!(
                    "build it with {script} from proctor's repository (there is no copy at {})",
                    path.display()
                )
            }
        }
        None => format!(
            "build or import {image} into this engine under exactly that tag (`docker build -t {image} DIR`, or `docker load`/`docker import` from a file): proctor uses no registry and never pulls"
        ),
    }
}

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(s.f_bavail as u64 * s.f_frsize as u64)
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Grades free space against a warning and a failure threshold.
fn disk_verdict(
    name: &str,
    what: &str,
    free: u64,
    warn_below: u64,
    fail_below: u64,
    fix: &str,
) -> Check {
    let detail = format!("{} free on {what}", gib(free));
    if free < fail_below {
        Check::fail(
            name,
            format!("{detail} (needs at least {})", gib(fail_below)),
            fix,
        )
    } else if free < warn_below {
        Check::warn(
            name,
            format!("{detail} (less than {})", gib(warn_below)),
            fix,
        )
    } else {
        Check::ok(name, detail)
    }
}

/// The engine's root dir holds build contexts, image layers and container logs. A full disk
/// fails builds halfway (reported as the candidate's `build_failed`) or the engine itself. It is
/// measured only when the engine is local (a unix socket and the directory exists here).
fn engine_disk_check(root_dir: Option<&str>, host: &str) -> Check {
    let name = "disk (docker root)";
    let fix = "free space there: `proctor gc`, `docker image prune`, `docker builder prune`, or move the engine's data-root to a larger disk";
    let Some(dir) = root_dir.filter(|d| !d.is_empty()) else {
        return Check::warn(
            name,
            "the engine does not report its root dir, so its free space is unknown",
            "check free space where the engine keeps its data (`docker info`: Docker Root Dir)",
        );
    };
    let local = host.starts_with("unix://") && Path::new(dir).is_dir();
    if !local {
        return Check::warn(
            name,
            format!("{dir} is on the engine's machine ({host}), not here, so its free space was not measured"),
            format!("check it there: `df -h {dir}` (proctor needs more than 1 GiB and wants 5 GiB)"),
        );
    }
    match free_bytes(Path::new(dir)) {
        Ok(free) => disk_verdict(name, dir, free, ROOT_WARN_BYTES, ROOT_FAIL_BYTES, fix),
        Err(e) => Check::warn(
            name,
            format!("cannot measure free space on {dir}: {e}"),
            format!("check it yourself: `df -h {dir}`"),
        ),
    }
}

/// proctor's temp dir holds git sources while they are fetched: up to the intake cap of fetched
/// objects plus the same again checked out. Fails when that cannot fit or the dir is not
/// writable (every git source would be a `fetch_failed`).
fn temp_disk_check() -> Check {
    let name = "disk (temp)";
    let tmp = std::env::temp_dir();
    let cap = crate::intake::Limits::default().max_total_bytes;
    if let Err(e) = tempfile::Builder::new().prefix("proctor-doctor-").tempdir() {
        return Check::fail(
            name,
            format!("cannot create a directory in {}: {e}", tmp.display()),
            "make it writable, or point TMPDIR at a writable directory",
        );
    }
    match free_bytes(&tmp) {
        Ok(free) => disk_verdict(
            name,
            &tmp.display().to_string(),
            free,
            4 * cap,
            2 * cap,
            "free space there, or point TMPDIR at a larger writable directory (git sources are fetched there)",
        ),
        Err(e) => Check::warn(
            name,
            format!("cannot measure free space on {}: {e}", tmp.display()),
            format!("check it yourself: `df -h {}`", tmp.display()),
        ),
    }
}

/// Resources of runs whose process is gone (killed with SIGKILL, a crash, a lost machine):
/// containers keep running and holding memory and CPU, which skews the next run's latency, and
/// images hold disk. Counted with the same listing and liveness rule as `proctor gc`.
async fn leftovers_check(engine: &Engine) -> Check {
    let name = "leftovers";
    let runs = match cleanup::managed_runs(engine, false).await {
        Ok(r) => r,
        Err(e) => return Check::warn(
            name,
            format!("cannot list proctor's resources: {e}"),
            "run `docker ps -a --filter label=io.proctor.managed=1` to see what the engine says",
        ),
    };
    let me = std::process::id();
    let (live, dead): (Vec<_>, Vec<_>) = runs
        .iter()
        .partition(|(_, pid)| **pid == Some(me) || pid.is_some_and(cleanup::owner_alive));
    let live_note = if live.is_empty() {
        String::new()
    } else {
        format!("; {} run(s) in progress", live.len())
    };
    if dead.is_empty() {
        Check::ok(name, format!("no resources of dead runs{live_note}"))
    } else {
        let ids: Vec<&str> = dead.iter().map(|(r, _)| r.as_str()).take(5).collect();
        let more = if dead.len() > ids.len() { ", ..." } else { "" };
        Check::warn(
            name,
            format!(
                "{} dead run(s) left containers, networks or images: {}{more}{live_note}",
                dead.len(),
                ids.join(", ")
            ),
            "run `proctor gc` (it removes only runs whose process is gone)",
        )
    }
}

/// The latency phase measures a service while proctor's load generator runs on the same
/// machine. With one core they take turns, and the measured latency includes the generator's
/// own time.
fn cpus_check(cpus: usize, engine_cpus: Option<i64>) -> Check {
    let name = "cpus";
    let engine = engine_cpus
        .map(|n| format!(" (the engine reports {n})"))
        .unwrap_or_default();
    if cpus < 2 {
        Check::warn(
            name,
            format!("{cpus} CPU available to proctor{engine}: the service and the load generator cannot get separate cores, so latency grades are pessimistic"),
            "grade on a machine (or VM) with at least 2 CPUs, and do not restrict proctor with taskset",
        )
    } else {
        Check::ok(name, format!("{cpus} CPUs available to proctor{engine}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_graded_against_what_the_sandbox_needs() {
        assert_eq!(api_check(Some("1.24")).status, Status::Fail);
        assert_eq!(api_check(Some("1.25")).status, Status::Warn);
        assert_eq!(api_check(Some("1.40")).status, Status::Warn);
        assert_eq!(api_check(Some("1.41")).status, Status::Ok);
        assert_eq!(api_check(Some("1.53")).status, Status::Ok);
        assert_eq!(api_check(Some("2.0")).status, Status::Ok);
        assert_eq!(api_check(None).status, Status::Warn);
        assert_eq!(api_check(Some("x")).status, Status::Warn);
    }

    #[test]
    fn old_runc_warns_with_the_shared_warning() {
        let info = EngineInfo {
            runc_version: Some("1.1.5+ds1".into()),
            ..Default::default()
        };
        let c = runc_check(&info, Some("runc"));
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.detail, info.runc_warning().unwrap());
        let fixed = EngineInfo {
            runc_version: Some("1.3.3".into()),
            ..Default::default()
        };
        assert_eq!(runc_check(&fixed, None).status, Status::Ok);
        assert_eq!(runc_check(&info, Some("runsc")).status, Status::Ok);
    }

    #[test]
    fn missing_limits_fail_and_missing_swap_limit_warns() {
        let all = SystemFacts {
            memory_limit: true,
            pids_limit: true,
            swap_limit: true,
            cpu_cfs_quota: true,
            cpuset: true,
            ..Default::default()
        };
        assert_eq!(limits_check(&all).status, Status::Ok);
        let no_swap = SystemFacts {
            swap_limit: false,
            warnings: vec!["WARNING: No swap limit support".into()],
            ..all.clone()
        };
        let c = limits_check(&no_swap);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("No swap limit support"), "{}", c.detail);
        assert!(c.fix.unwrap().contains("swapaccount=1"));
        let no_pids = SystemFacts {
            pids_limit: false,
            ..all.clone()
        };
        assert_eq!(limits_check(&no_pids).status, Status::Fail);
        assert_eq!(limits_check(&SystemFacts::default()).status, Status::Fail);
    }

    #[test]
    fn disk_thresholds() {
        let c = |free| disk_verdict("d", "/x", free, 5 << 30, 1 << 30, "f").status;
        assert_eq!(c(512 << 20), Status::Fail);
        assert_eq!(c(2 << 30), Status::Warn);
        assert_eq!(c(6 << 30), Status::Ok);
    }

    #[test]
    fn remote_engines_root_dir_is_not_measured_here() {
        let c = engine_disk_check(Some("/"), "tcp://10.0.0.1:2375");
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("not measured"), "{}", c.detail);
        assert_eq!(
            engine_disk_check(Some("/"), "unix:///var/run/docker.sock").name,
            "disk (docker root)"
        );
    }

    #[test]
    fn one_cpu_warns() {
        assert_eq!(cpus_check(1, Some(1)).status, Status::Warn);
        assert_eq!(cpus_check(2, None).status, Status::Ok);
    }

    #[test]
    fn missing_images_name_the_command_that_builds_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (image, script) in RECIPES {
            let fix = build_fix(root, image);
            assert!(fix.contains(script), "{fix}");
            // The recipe must still build that tag by default.
            let text = std::fs::read_to_string(root.join(script)).unwrap();
            assert!(text.contains(image), "{script} no longer builds {image}");
        }
        let other = build_fix(root, "acme/ml:1");
        assert!(other.contains("no registry"), "{other}");
    }

    #[test]
    fn the_repository_graders_are_found() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (images, problems) = repo_grader_images(root);
        assert!(problems.is_empty(), "{problems:?}");
        let by = &images["proctor/python-ml:3.11"];
        assert!(by.iter().any(|g| g.ends_with("public.toml")), "{by:?}");
    }

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
