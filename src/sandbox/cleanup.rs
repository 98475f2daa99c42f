//! Removing what runs created. Resources are found by label, never by name, so that cleanup
//! catches what a run created even when it was interrupted before it learned the id, and never
//! touches anything proctor did not create.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};

use super::{deadline, labels, Engine};

/// What a cleanup removed, and what it could not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub images: usize,
    /// Host-side pieces of dead runs: firewall rules, build cgroups, git intake temp dirs.
    pub host: usize,
    pub errors: Vec<String>,
}

impl Removed {
    fn absorb(&mut self, other: Removed) {
        self.containers += other.containers;
        self.networks += other.networks;
        self.images += other.images;
        self.host += other.host;
        self.errors.extend(other.errors);
    }
}

const STEP: Duration = Duration::from_secs(20);

/// Which images `remove_matching` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Images {
    All,
    /// All but those kept with `--keep-image` (tagged `KEPT_REPO:<run id>`).
    NotKept,
    None,
}

/// The repository a `--keep-image` image is tagged into once its run is over; sweeps leave it
/// alone, `proctor gc --all` removes it.
pub const KEPT_REPO: &str = "proctor/kept";

fn is_kept(tags: &[String]) -> bool {
    tags.iter().any(|t| t.starts_with(&format!("{KEPT_REPO}:")))
}

/// Removes every container, network and image labelled with `filter`, in dependency order
/// (containers, then the networks and images they used).
async fn remove_matching(
    engine: &Engine,
    filter: &HashMap<String, Vec<String>>,
    images: Images,
) -> Removed {
    let d = &engine.docker;
    let mut out = Removed::default();
    let containers = deadline(
        STEP,
        "list containers",
        d.list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(filter)
                .build(),
        )),
    )
    .await;
    match containers {
        Ok(cs) => {
            for id in cs.into_iter().filter_map(|c| c.id) {
                let opts = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                match deadline(
                    STEP,
                    "remove a container",
                    d.remove_container(&id, Some(opts)),
                )
                .await
                {
                    Ok(()) => out.containers += 1,
                    Err(e) if is_gone(&e.to_string()) => {}
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
        }
        Err(e) => out.errors.push(e.to_string()),
    }
    match deadline(
        STEP,
        "list networks",
        d.list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(filter).build(),
        )),
    )
    .await
    {
        Ok(ns) => {
            for id in ns.into_iter().filter_map(|n| n.id) {
                match deadline(STEP, "remove a network", d.remove_network(&id)).await {
                    Ok(()) => out.networks += 1,
                    Err(e) if is_gone(&e.to_string()) => {}
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
        }
        Err(e) => out.errors.push(e.to_string()),
    }
    if images == Images::None {
        return out;
    }
    match deadline(
        STEP,
        "list images",
        d.list_images(Some(
            ListImagesOptionsBuilder::new()
                .all(true)
                .filters(filter)
                .build(),
        )),
    )
    .await
    {
        Ok(found) => {
            for img in found {
                if images == Images::NotKept && is_kept(&img.repo_tags) {
                    continue;
                }
                let opts = RemoveImageOptionsBuilder::new().force(true).build();
                match deadline(
                    STEP,
                    "remove an image",
                    d.remove_image(&img.id, Some(opts), None),
                )
                .await
                {
                    Ok(_) => out.images += 1,
                    Err(e) if is_gone(&e.to_string()) => {}
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
        }
        Err(e) => out.errors.push(e.to_string()),
    }
    out
}

fn is_gone(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("no such") || m.contains("not found") || m.contains("is already in progress")
}

/// Removes everything of one run (`keep_images`: all but its images). Two passes: an engine
/// call that was in flight when the run was interrupted may create a resource just after the
/// first pass listed.
pub async fn remove_run(engine: &Engine, run_id: &str, keep_images: bool) -> Removed {
    let filter = labels::run_filter(run_id);
    let images = if keep_images {
        Images::None
    } else {
        Images::NotKept
    };
    let mut total = remove_matching(engine, &filter, images).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    total.absorb(remove_matching(engine, &filter, images).await);
    if keep_images {
        if let Err(e) = keep_image(engine, run_id).await {
            total.errors.push(e.to_string());
        }
    }
    if engine.info.local {
        let (_, errors) = super::firewall::remove_where(|run| run == run_id).await;
        total.errors.extend(errors);
    }
    total
}

/// Retags a run's image as `KEPT_REPO:<run id>` (and drops its working tag), so that sweeps
/// leave it alone.
async fn keep_image(engine: &Engine, run_id: &str) -> Result<(), super::EngineError> {
    let working = format!("proctor/submission:{run_id}");
    let options = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(KEPT_REPO)
        .tag(run_id)
        .build();
    deadline(
        STEP,
        "tag the kept image",
        engine.docker.tag_image(&working, Some(options)),
    )
    .await?;
    let untag = RemoveImageOptionsBuilder::new().noprune(true).build();
    deadline(
        STEP,
        "untag the kept image",
        engine.docker.remove_image(&working, Some(untag), None),
    )
    .await
    .map(|_| ())
}

/// Runs that own proctor resources, with the pid that created them. Images kept with
/// `--keep-image` count only with `include_kept`.
pub async fn managed_runs(
    engine: &Engine,
    include_kept: bool,
) -> Result<BTreeMap<String, Option<u32>>, super::EngineError> {
    let d = &engine.docker;
    let filter = labels::managed_filter();
    let mut runs: BTreeMap<String, Option<u32>> = BTreeMap::new();
    let mut note = |l: &HashMap<String, String>, trusted: bool| {
        if let Some(run) = l.get(labels::RUN) {
            // An image's labels come partly from the submission's Dockerfile (`LABEL
            // io.proctor.pid=...`): for images only the run id, which proctor chose, counts.
            let pid = l
                .get(labels::PID)
                .filter(|_| trusted)
                .and_then(|p| p.parse().ok())
                .or_else(|| labels::pid_of_run(run));
            runs.entry(run.clone()).or_insert(pid);
        }
    };
    let cs = deadline(
        STEP,
        "list containers",
        d.list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        )),
    )
    .await?;
    cs.iter()
        .filter_map(|c| c.labels.as_ref())
        .for_each(|l| note(l, true));
    let ns = deadline(
        STEP,
        "list networks",
        d.list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        )),
    )
    .await?;
    ns.iter()
        .filter_map(|n| n.labels.as_ref())
        .for_each(|l| note(l, true));
    let is = deadline(
        STEP,
        "list images",
        // Images carry only the run label (see `labels::for_build`): an image left on its own
        // (a run killed between its build and its container) is found by that label.
        d.list_images(Some(
            ListImagesOptionsBuilder::new()
                .all(true)
                .filters(&labels::image_filter())
                .build(),
        )),
    )
    .await?;
    is.iter()
        .filter(|i| include_kept || !is_kept(&i.repo_tags))
        .for_each(|i| note(&i.labels, false));
    Ok(runs)
}

/// True while the process that created a run is still running on this machine. A pid that has
/// been reused by an unrelated program does not count.
pub fn owner_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim().starts_with("proctor"),
        Err(_) => false,
    }
}

/// Removes the resources of runs whose owner is gone (`all`: of every run). Returns the runs
/// swept and what was removed.
pub async fn sweep(
    engine: &Engine,
    all: bool,
) -> Result<(Vec<String>, Removed), super::EngineError> {
    let alive = |run: &str| {
        let pid = labels::pid_of_run(run);
        pid == Some(std::process::id()) || pid.is_some_and(owner_alive)
    };
    // Build cgroups and firewall rules carry the run id or pid in their name,
    // not a label.
    let mut host = super::build_cgroup::sweep(|run| !all && alive(run));
    let mut errors = Vec::new();
    if engine.info.local {
        let (removed, failed) = super::firewall::remove_where(|run| all || !alive(run)).await;
        host += removed;
        errors = failed;
    }
    let runs = managed_runs(engine, all).await?;
    let mut swept = Vec::new();
    let mut total = Removed {
        host,
        errors,
        ..Removed::default()
    };
    for (run, pid) in runs {
        let alive = pid == Some(std::process::id()) || pid.is_some_and(owner_alive);
        if all || !alive {
            let images = if all { Images::All } else { Images::NotKept };
            total.absorb(remove_matching(engine, &labels::run_filter(&run), images).await);
            swept.push(run);
        }
    }
    Ok((swept, total))
}
