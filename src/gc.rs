//! Removing what killed runs left behind, on every side: the engine's labelled containers,
//! networks and images, the host's build cgroups and firewall rules (the sandbox's), and git
//! intake's temp dirs. The startup sweep and `proctor gc` both come here, so that neither the
//! sandbox nor intake needs to know of the other.

use crate::sandbox::cleanup::{self, Removed};
use crate::sandbox::{Engine, EngineError};

/// Removes the leftovers of runs whose owner is gone (`all`: of every run, kept images too).
/// Returns the runs swept and what was removed.
pub async fn sweep(engine: &Engine, all: bool) -> Result<(Vec<String>, Removed), EngineError> {
    let (swept, mut removed) = cleanup::sweep(engine, all).await?;
    removed.host += crate::intake::sweep_git_temp_dirs(|pid| {
        !all && (pid == std::process::id() || cleanup::owner_alive(pid))
    });
    Ok((swept, removed))
}

/// The startup sweep: a line saying what went, if anything did.
pub async fn sweep_leftovers(engine: &Engine) -> Option<String> {
    let (swept, removed) = sweep(engine, false).await.ok()?;
    (!swept.is_empty()).then(|| {
        format!(
            "removed leftovers of {} earlier run(s): {} container(s), {} network(s), {} image(s)",
            swept.len(),
            removed.containers,
            removed.networks,
            removed.images
        )
    })
}
