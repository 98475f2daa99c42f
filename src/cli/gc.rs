//! `proctor gc`: removes the Docker resources, firewall rules, build cgroups and temp dirs that
//! killed runs left behind, and reports what it removed. The sweep itself is
//! `crate::gc`'s; this is its command line.

use crate::exit;
use crate::sandbox::Engine;

/// Sweeps the leftovers of runs whose process is gone (with `all`, of every run); returns the
/// exit code: 4 when the engine is unreachable or something could not be removed.
pub(super) async fn gc(all: bool) -> i32 {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INFRASTRUCTURE_ERROR;
        }
    };
    match crate::gc::sweep(&engine, all).await {
        Ok((runs, removed)) => {
            println!(
                "removed {} container(s), {} network(s), {} image(s) of {} run(s), and {} \
                 firewall rule(s), build cgroup(s) and temp dir(s)",
                removed.containers,
                removed.networks,
                removed.images,
                runs.len(),
                removed.host
            );
            for e in &removed.errors {
                eprintln!("warning: {e}");
            }
            if removed.errors.is_empty() {
                exit::GRADED
            } else {
                exit::INFRASTRUCTURE_ERROR
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INFRASTRUCTURE_ERROR
        }
    }
}
