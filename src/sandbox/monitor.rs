//! Watches the candidate's container while it is graded: its memory and process peaks (from the
//! engine's stats stream, one sample a second) and the kernel's out-of-memory kills inside it
//! (from the engine's events). A service that hits its limits without dying still gets a report
//! that says so: a fork bomb held at the pids limit, or a worker killed for memory and respawned,
//! would otherwise show only as slow or failed requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::query_parameters::{EventsOptions, StatsOptions};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::Engine;

/// The highest values seen while the container ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peaks {
    /// Highest memory use in bytes (the kernel's own maximum on cgroup v1; the highest sample
    /// on v2).
    pub memory_bytes: Option<u64>,
    /// Highest number of processes and threads sampled.
    pub pids: Option<u64>,
    /// Processes the kernel killed for memory inside the container.
    pub oom_kills: u64,
}

/// Samples a running container until stopped (or dropped).
pub struct Monitor {
    peaks: Arc<Mutex<Peaks>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Monitor {
    /// Starts watching container `id`. The engine streams stay open until `stop`.
    pub fn start(engine: &Engine, id: &str) -> Monitor {
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let stats = stats_task(engine, id, peaks.clone());
        let ooms = {
            let docker = engine.docker.clone();
            let (id, peaks) = (id.to_string(), peaks.clone());
            tokio::spawn(async move {
                let filters = HashMap::from([
                    ("container".to_string(), vec![id]),
                    ("event".to_string(), vec!["oom".to_string()]),
                ]);
                let options = EventsOptions {
                    filters: Some(filters),
                    ..Default::default()
                };
                let mut stream = docker.events(Some(options));
                while let Some(Ok(_)) = stream.next().await {
                    peaks.lock().unwrap_or_else(|e| e.into_inner()).oom_kills += 1;
                }
            })
        };
        Monitor {
            peaks,
            tasks: vec![stats, ooms],
        }
    }

    /// Watches the container's stats again after it was started again (the engine ends a
    /// stats stream when its container stops).
    pub fn watch_again(&mut self, engine: &Engine, id: &str) {
        self.tasks.push(stats_task(engine, id, self.peaks.clone()));
    }

    /// What has been seen so far.
    pub fn snapshot(&self) -> Peaks {
        self.peaks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops watching and returns what was seen. An OOM event the engine had not yet delivered
    /// is picked up by the caller from the container's final state (`ExitInfo::oom_killed`).
    pub fn stop(self) -> Peaks {
        for t in &self.tasks {
            t.abort();
        }
        self.snapshot()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Samples the container's stats stream (one a second) into `peaks` until it ends.
fn stats_task(engine: &Engine, id: &str, peaks: Arc<Mutex<Peaks>>) -> JoinHandle<()> {
    let docker = engine.docker.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let options = StatsOptions {
            stream: true,
            one_shot: false,
        };
        let mut stream = docker.stats(&id, Some(options));
        while let Some(Ok(s)) = stream.next().await {
            let memory = s
                .memory_stats
                .as_ref()
                .and_then(|m| m.max_usage.or(m.usage));
            let pids = s.pids_stats.as_ref().and_then(|p| p.current);
            let mut p = peaks.lock().unwrap_or_else(|e| e.into_inner());
            p.memory_bytes = max_of(p.memory_bytes, memory);
            p.pids = max_of(p.pids, pids);
        }
    })
}

fn max_of(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// What the peaks say about a service that pushed against its limits, for the report's
/// warnings: (pids limit, memory limit in bytes).
pub fn limit_warnings(peaks: &Peaks, pids_limit: i64, memory_limit: u64) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = peaks.pids {
        if p as i64 >= pids_limit {
            out.push(format!(
                "the service reached its process limit ({pids_limit} processes and threads): \
                 further forks failed (a fork bomb or an unbounded worker pool)"
            ));
        }
    }
    if peaks.oom_kills > 0 {
        out.push(format!(
            "the kernel killed {} process{} of the service for exceeding its memory limit \
             ({} MB, /tmp included)",
            peaks.oom_kills,
            if peaks.oom_kills == 1 { "" } else { "es" },
            memory_limit / (1024 * 1024)
        ));
    }
    // Memory use at the limit alone is not worth a warning: the page cache fills it too.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_reached_are_named() {
        let mb = 1024 * 1024;
        let calm = Peaks {
            memory_bytes: Some(20 * mb),
            pids: Some(3),
            oom_kills: 0,
        };
        assert!(limit_warnings(&calm, 32, 64 * mb).is_empty());

        let bomb = Peaks {
            pids: Some(32),
            ..calm.clone()
        };
        let w = limit_warnings(&bomb, 32, 64 * mb);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("process limit (32"), "{w:?}");

        let hog = Peaks {
            memory_bytes: Some(64 * mb),
            oom_kills: 2,
            ..calm.clone()
        };
        let w = limit_warnings(&hog, 32, 64 * mb);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("killed 2 processes") && w[0].contains("memory limit (64 MB"),
            "{w:?}"
        );

        // Memory at the limit without a kill is the page cache's doing as often as not.
        let full = Peaks {
            memory_bytes: Some(64 * mb),
            ..calm
        };
        assert!(limit_warnings(&full, 32, 64 * mb).is_empty());
    }

    #[test]
    fn peaks_keep_the_highest_sample() {
        assert_eq!(max_of(None, Some(3)), Some(3));
        assert_eq!(max_of(Some(5), Some(3)), Some(5));
        assert_eq!(max_of(Some(5), None), Some(5));
    }
}
