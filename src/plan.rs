//! The run plan: what one run decides at run time, beside the grader file, which it never
//! changes. The grader says what to check; the plan says how this run on this machine does it:
//! the seed, the deadlines after command-line overrides, which cores the service and the load
//! generator get, how far a latency reference widened the latency curves, and which phases run
//! (all of them, or the latency reference's selection).

use std::time::Duration;

use crate::grader::{LatencySpec, LoadedGrader, SandboxLimits, AUTO_CPUSET};
use crate::report::ReferenceScale;

/// Why a run is made: to grade, or to measure the latency reference under the same load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Grade,
    /// Readiness, the scripted checks (so the reference is as warm as a candidate when its load
    /// starts) and the latency load without its throughput search.
    LatencyReference,
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub purpose: Purpose,
    /// Seed of every random choice: the same seed regrades the same.
    pub seed: u64,
    pub build_timeout: Duration,
    pub ready_timeout: Duration,
    /// The container's limits as this run applies them: the grader's, with `cpuset` placed on
    /// this machine's cores.
    pub sandbox: SandboxLimits,
    /// The load generator's cores (`None`: wherever the scheduler puts it).
    pub load_cpus: Option<Vec<usize>>,
    /// Latency objectives widened to a reference measured in this run.
    pub latency_scales: Vec<ReferenceScale>,
    /// Send every contract probe (`--probe all`), not the grader's seeded sample of them.
    pub probe_all: bool,
}

impl RunPlan {
    /// The plan of a run that takes the grader as written (no cores placed, no reference).
    pub fn new(
        grader: &LoadedGrader,
        seed: u64,
        build_timeout: Option<Duration>,
        ready_timeout: Option<Duration>,
    ) -> RunPlan {
        let g = &grader.grader;
        RunPlan {
            purpose: Purpose::Grade,
            seed,
            build_timeout: build_timeout
                .unwrap_or(Duration::from_secs(g.submission.build_timeout_secs)),
            ready_timeout: ready_timeout
                .unwrap_or(Duration::from_secs(g.submission.ready_timeout_secs)),
            sandbox: g.sandbox.clone(),
            load_cpus: g.latency.as_ref().and_then(LatencySpec::load_cpus),
            latency_scales: Vec::new(),
            probe_all: false,
        }
    }

    /// The factor objective `name`'s curve is widened by (1 when it is not).
    pub fn latency_factor(&self, name: &str) -> f64 {
        self.latency_scales
            .iter()
            .find(|s| s.name == name)
            .map_or(1.0, |s| s.factor)
    }

    /// Keeps the service and the load generator off each other's cores, given the cores this
    /// process may use. `[sandbox] cpuset = "auto"` pins the service to the last `ceil(cpus)`
    /// cores (at most all but one); whenever the service is pinned and `[latency] load_cpuset`
    /// is not given, the load generator gets the cores the service does not have. Returns a
    /// warning when the machine cannot keep them apart.
    pub fn place_on_cores(&mut self, grader: &LoadedGrader, allowed: &[usize]) -> Option<String> {
        let latency = grader.grader.latency.as_ref();
        let join = |cores: &[usize]| {
            cores
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        if self.sandbox.cpuset.as_deref() == Some(AUTO_CPUSET) {
            if allowed.len() < 2 {
                self.sandbox.cpuset = None;
                return Some(format!(
                    "only {} core available: the service runs under a CPU quota of {} and shares \
                     the core with the load generator, so latency is noisier than on a machine \
                     with two or more cores",
                    allowed.len(),
                    self.sandbox.cpus
                ));
            }
            let asked = (self.sandbox.cpus.ceil() as usize).max(1);
            if asked > allowed.len() - 1 {
                // Pinning to fewer cores than `cpus` would make the service slower than the
                // grader means it to be: keep the quota, shared with the load generator.
                self.sandbox.cpuset = None;
                return Some(format!(
                    "the service should get {} CPUs but only {} cores are available, one of \
                     them for the load generator: the service runs under a CPU quota and shares \
                     cores with the load generator, so latency is noisier",
                    self.sandbox.cpus,
                    allowed.len()
                ));
            }
            self.sandbox.cpuset = Some(join(&allowed[allowed.len() - asked..]));
        }
        let service = match self
            .sandbox
            .cpuset
            .as_deref()
            .map(crate::load::sys::parse_cpuset)
        {
            Some(Ok(cores)) => cores,
            _ => return None,
        };
        if latency.is_some_and(|l| l.load_cpuset.is_none()) {
            let rest: Vec<usize> = allowed
                .iter()
                .copied()
                .filter(|c| !service.contains(c))
                .collect();
            if rest.is_empty() {
                return Some(format!(
                    "the service is pinned to cores {} and no other core is left for the load \
                     generator; latency is measured with both on the same cores",
                    join(&service)
                ));
            }
            self.load_cpus = Some(rest);
        }
        None
    }

    /// Widens each objective that declares `reference_ms` by how much slower the reference
    /// measured here (`measured(percentile)`, in ms) than declared; never narrows. Fails with
    /// why this machine cannot grade latency when a factor exceeds `max_reference_factor`.
    pub fn scale_to_reference(
        &mut self,
        latency: &LatencySpec,
        measured: impl Fn(f64) -> f64,
    ) -> Result<(), String> {
        let mut scales = Vec::new();
        for o in &latency.objective {
            let Some(declared) = o.reference_ms else {
                continue;
            };
            let got = measured(o.percentile);
            let factor = (got / declared).max(1.0);
            if factor > latency.max_reference_factor {
                return Err(format!(
                    "the reference submission measured p{} = {got:.2} ms here, {factor:.1} times \
                     the {declared} ms the grader expects (at most {} times allowed): this \
                     machine is too slow or too busy to grade latency",
                    o.percentile, latency.max_reference_factor
                ));
            }
            scales.push(ReferenceScale {
                name: latency.objective_name(o),
                declared_ms: declared,
                measured_ms: got,
                factor: (factor * 1000.0).round() / 1000.0,
            });
        }
        self.latency_scales = scales;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::grader::fixtures::{loaded, MINIMAL};

    fn with_sandbox(sandbox: &str) -> (LoadedGrader, RunPlan) {
        let g = loaded(&format!(
            "{MINIMAL}\n[sandbox]\n{sandbox}\n[latency]\npath = \"/\"\nrate = 50\nduration_secs = 5\n"
        ));
        let plan = RunPlan::new(&g, 1, None, None);
        (g, plan)
    }

    #[test]
    fn auto_cpuset_splits_cores_between_service_and_load() {
        let (g, mut p) = with_sandbox("cpuset = \"auto\"\ncpus = 1.0");
        assert_eq!(p.place_on_cores(&g, &[0, 1]), None);
        assert_eq!(p.sandbox.cpuset.as_deref(), Some("1"));
        assert_eq!(p.load_cpus, Some(vec![0]));
        // The grader itself is not changed.
        assert_eq!(g.grader.sandbox.cpuset.as_deref(), Some("auto"));

        // Two CPUs' worth of service on eight cores: the last two, the load gets the rest.
        let (g, mut p) = with_sandbox("cpuset = \"auto\"\ncpus = 1.5");
        assert_eq!(p.place_on_cores(&g, &(0..8).collect::<Vec<_>>()), None);
        assert_eq!(p.sandbox.cpuset.as_deref(), Some("6,7"));
        assert_eq!(p.load_cpus, Some(vec![0, 1, 2, 3, 4, 5]));

        // Two CPUs' worth of service on two cores would leave the load none: the quota.
        let (g, mut p) = with_sandbox("cpuset = \"auto\"\ncpus = 2.0");
        let w = p.place_on_cores(&g, &[0, 1]).unwrap();
        assert!(w.contains("should get 2 CPUs"), "{w}");
        assert_eq!(p.sandbox.cpuset, None);

        // One core: back to the quota, with a warning.
        let (g, mut p) = with_sandbox("cpuset = \"auto\"");
        let w = p.place_on_cores(&g, &[3]).unwrap();
        assert!(w.contains("only 1 core"), "{w}");
        assert_eq!(p.sandbox.cpuset, None);
        assert_eq!(p.load_cpus, None);
    }

    #[test]
    fn explicit_cpusets_are_kept_and_the_load_takes_the_other_cores() {
        let (g, mut p) = with_sandbox("cpuset = \"0\"");
        assert_eq!(p.place_on_cores(&g, &[0, 1, 2]), None);
        assert_eq!(p.sandbox.cpuset.as_deref(), Some("0"));
        assert_eq!(p.load_cpus, Some(vec![1, 2]));

        let (g, mut p) = with_sandbox("cpuset = \"0-1\"");
        assert!(p
            .place_on_cores(&g, &[0, 1])
            .unwrap()
            .contains("no other core"));

        // Without a pinned service nothing moves.
        let (g, mut p) = with_sandbox("cpus = 1.0");
        assert_eq!(p.place_on_cores(&g, &[0, 1]), None);
        assert_eq!(p.load_cpus, None);
    }

    #[test]
    fn reference_scaling_widens_never_narrows_and_has_a_ceiling() {
        let g = loaded(&format!(
            "{MINIMAL}\n[latency]\npath = \"/\"\nrate = 100\nduration_secs = 10\n\
             [[latency.objective]]\npercentile = 50\nfull_points_ms = 10\nzero_points_ms = 50\npoints = 1\nreference_ms = 2\n\
             [[latency.objective]]\npercentile = 99\nfull_points_ms = 10\nzero_points_ms = 50\npoints = 1\nreference_ms = 20\n\
             [[latency.objective]]\npercentile = 90\nfull_points_ms = 10\nzero_points_ms = 50\npoints = 1\n"
        ));
        let l = g.grader.latency.as_ref().unwrap();
        let mut p = RunPlan::new(&g, 1, None, None);
        p.scale_to_reference(l, |q| if q == 50.0 { 6.0 } else { 10.0 })
            .unwrap();
        assert_eq!(
            p.latency_scales.len(),
            2,
            "only objectives with reference_ms"
        );
        assert_eq!(p.latency_scales[0].factor, 3.0);
        assert_eq!(p.latency_scales[1].factor, 1.0, "never narrowed");
        assert_eq!(p.latency_factor(&p.latency_scales[0].name.clone()), 3.0);
        assert_eq!(p.latency_factor("p90 latency at 100 req/s"), 1.0);
        let err = p.scale_to_reference(l, |_| 100.0).unwrap_err();
        assert!(err.contains("too slow or too busy"), "{err}");
    }
}
