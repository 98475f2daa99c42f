//! What competes with a grade for the machine: resources of dead runs, which still hold memory,
//! CPU and disk, and too few CPUs for the service and the load generator to run apart.

use super::Check;
use crate::sandbox::{cleanup, Engine};

/// Resources of runs whose process is gone (killed with SIGKILL, a crash, a lost machine):
/// containers keep running and holding memory and CPU, which skews the next run's latency, and
/// images hold disk. Counted with the same listing and liveness rule as `proctor gc`.
pub(super) async fn leftovers_check(engine: &Engine) -> Check {
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
pub(super) fn cpus_check(cpus: usize, engine_cpus: Option<i64>) -> Check {
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

/// The load generator's threads ask for real-time priority (`load::sys::make_realtime`), so
/// that ordinary processes on their cores cannot delay a send by a scheduler time slice; each
/// grade warns when they cannot have it. Tried on a throwaway thread. That needs CAP_SYS_NICE,
/// and where the kernel schedules real-time tasks per cgroup (cgroup v1 with
/// `cpu.rt_runtime_us`) a real-time budget for proctor's cgroup, which a container has none of
/// unless its engine and its run grant one. `tried` is the attempt's outcome, `rt_budgets`
/// whether that per-cgroup budget applies here.
pub(super) fn priority_check(
    tried: Result<(), String>,
    container: bool,
    rt_budgets: bool,
) -> Check {
    let name = "load priority";
    match tried {
        Ok(()) => Check::ok(
            name,
            "the load generator's threads run at real-time priority",
        ),
        Err(e) => {
            let fix = match (container, rt_budgets) {
                (false, _) => "run proctor as root (or give it CAP_SYS_NICE)".to_string(),
                (true, false) => "run the container with `--cap-add SYS_NICE`".to_string(),
                (true, true) => "run the container with `--cap-add SYS_NICE --cpu-rt-runtime 950000`, on an engine started with `--cpu-rt-runtime 950000` (this kernel gives real-time time to cgroups that have a budget)".to_string(),
            };
            Check::warn(
                name,
                format!("the load generator's threads run at normal priority ({e}): other processes on their cores can delay sends, and each grade says so"),
                fix,
            )
        }
    }
}

/// Whether real-time priority can be had here: asked for on a thread that ends at once.
pub(super) fn try_realtime() -> Result<(), String> {
    std::thread::spawn(crate::load::sys::make_realtime)
        .join()
        .map_err(|_| "the probe thread panicked".to_string())?
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn real_time_priority_fixes_name_what_is_missing() {
        assert_eq!(priority_check(Ok(()), true, true).status, Status::Ok);
        let denied = || Err("Operation not permitted (os error 1)".to_string());
        let host = priority_check(denied(), false, true);
        assert_eq!(host.status, Status::Warn);
        assert!(host.fix.unwrap().contains("root"));
        assert!(priority_check(denied(), true, false)
            .fix
            .unwrap()
            .contains("--cap-add SYS_NICE"));
        let budget = priority_check(denied(), true, true).fix.unwrap();
        assert!(budget.contains("--cpu-rt-runtime"), "{budget}");
    }

    #[test]
    fn one_cpu_warns() {
        assert_eq!(cpus_check(1, Some(1)).status, Status::Warn);
        assert_eq!(cpus_check(2, None).status, Status::Ok);
    }
}
