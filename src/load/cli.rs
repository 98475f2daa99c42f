//! `proctor load URL`: the load generator on its own, against any HTTP endpoint, with a JSON
//! result (like oha or wrk2). Exit 0 for a valid measurement, 1 when the measurement is
//! invalid (the generator could not keep its schedule: its numbers are not to be trusted), 2 for
//! bad arguments or an unreachable URL.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::search::{SearchResult, SearchSpec};
use super::{
    percentiles, schedule, sys, Arrivals, Mode, Outcome, Percentiles, Plan, RequestSpec, Stage,
    Window,
};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
  proctor load http://127.0.0.1:8080/ --rate 2000 --duration 10\n  \
  proctor load http://127.0.0.1:8080/ --arrivals poisson --stages 5:100..1000,10:1000\n  \
  proctor load http://127.0.0.1:8080/ --closed -c 64 --duration 10 --cpus 0\n  \
  proctor load http://127.0.0.1:8080/ --search-slo-ms 50 --search-max-rate 20000")]
pub struct LoadArgs {
    /// The full URL to load, e.g. http://127.0.0.1:8080/v1/models/churn:predict
    pub url: String,
    /// Requests per second (open loop: sends do not wait for earlier responses).
    #[arg(long, short, default_value_t = 100.0)]
    pub rate: f64,
    /// Measured duration in seconds.
    #[arg(long, short, default_value_t = 10.0)]
    pub duration: f64,
    /// Rate profile instead of --rate/--duration: SECS:RATE holds a rate, SECS:FROM..TO ramps,
    /// comma-separated (e.g. 5:100..1000,10:1000).
    #[arg(long, conflicts_with_all = ["closed"])]
    pub stages: Option<String>,
    /// Arrival times: evenly spaced, or a seeded Poisson process.
    #[arg(long, value_enum, default_value_t = ArrivalsArg::Constant)]
    pub arrivals: ArrivalsArg,
    /// Closed loop: every connection sends again as soon as it is answered (throughput; no
    /// latency correction is possible).
    #[arg(long)]
    pub closed: bool,
    /// Unmeasured warm-up before it, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Connections, hence most requests in flight at once.
    #[arg(long, short, default_value_t = 64)]
    pub concurrency: usize,
    /// Load threads (default: one per 20k req/s in open loop, one per core in closed loop).
    #[arg(long, short)]
    pub threads: Option<usize>,
    /// Pin the load threads to these cores, e.g. 0 or 0-1 (keep them off the service's).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Keep the load threads at normal priority (by default open-loop threads ask for
    /// real-time priority, which needs root or CAP_SYS_NICE).
    #[arg(long)]
    pub no_realtime: bool,
    /// Microseconds before each send to stop sleeping and poll instead.
    #[arg(long, default_value_t = 50)]
    pub spin_us: u64,
    /// HTTP method (POST when --body is given, else GET).
    #[arg(long, short)]
    pub method: Option<String>,
    /// Request body; repeat it to draw bodies at random (seeded).
    #[arg(long, short)]
    pub body: Vec<String>,
    /// Content type of the bodies.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
    /// The status that counts as a success.
    #[arg(long, default_value_t = 200)]
    pub ok_status: u16,
    /// Total deadline of one request in milliseconds (connect, headers, body).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Response bodies are read up to this many bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Fewer measured requests make the run invalid.
    #[arg(long, default_value_t = 1)]
    pub min_requests: u64,
    /// Seed of the body order and of Poisson arrivals.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Throughput search: the highest rate whose --search-percentile latency stays at or under
    /// this many milliseconds.
    #[arg(long)]
    pub search_slo_ms: Option<f64>,
    /// The percentile the search's objective bounds.
    #[arg(long, default_value_t = 99.0)]
    pub search_percentile: f64,
    /// Largest share of failed requests in a passing step.
    #[arg(long, default_value_t = 0.01)]
    pub search_max_error_rate: f64,
    /// First rate tried.
    #[arg(long, default_value_t = 100.0)]
    pub search_start_rate: f64,
    /// The search never tries a higher rate.
    #[arg(long, default_value_t = 100_000.0)]
    pub search_max_rate: f64,
    /// Most steps (short runs) the search makes.
    #[arg(long, default_value_t = 12)]
    pub search_max_steps: usize,
    /// Seconds measured per step (after --warmup).
    #[arg(long, default_value_t = 5.0)]
    pub search_step_secs: f64,
    /// Stop when the passing and failing rates are this close (relative).
    #[arg(long, default_value_t = 0.05)]
    pub search_precision: f64,
    /// Valid measurements that decide a step by majority (a clear pass decides alone).
    #[arg(long, default_value_t = super::search::DEFAULT_REPEATS)]
    pub search_repeats: usize,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalsArg {
    Constant,
    Poisson,
}

/// The JSON printed by `proctor load`.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub url: String,
    /// `open` or `closed`.
    pub mode: &'static str,
    pub arrivals: Option<Arrivals>,
    /// Mean rate the schedule asked for (open loop).
    pub target_rate: Option<f64>,
    /// Measured requests sent per second of the schedule.
    pub send_rate: f64,
    /// Measured requests finished per second.
    pub achieved_rate: f64,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub concurrency: usize,
    pub threads: usize,
    pub realtime: bool,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub body_bytes: u64,
    /// Requests that waited for a free connection (the service was saturated).
    pub queued: u64,
    /// Of those, requests still waiting at the deadline (the schedule's end plus one request
    /// timeout): never sent, counted as timeouts.
    pub unsent: u64,
    /// From the intended send time (coordinated-omission corrected).
    pub corrected: Percentiles,
    /// From the actual send.
    pub uncorrected: Percentiles,
    /// Actual send minus intended send (includes waits for a free connection).
    pub send_lateness: Percentiles,
    /// When the generator noticed a send was due, minus its intended time.
    pub dispatch_lateness: Percentiles,
    pub windows: Vec<Window>,
    pub stable: Option<bool>,
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
    /// CPU time of the load threads.
    pub client_cpu_secs: f64,
    pub cpu_us_per_request: f64,
    pub warnings: Vec<String>,
}

impl LoadResult {
    pub fn new(url: &str, plan: &Plan, o: &Outcome) -> LoadResult {
        let (mode, arrivals) = match &plan.mode {
            Mode::Open { arrivals, .. } => ("open", Some(*arrivals)),
            Mode::Closed { .. } => ("closed", None),
        };
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        LoadResult {
            url: url.to_string(),
            mode,
            arrivals,
            target_rate: o.target_rate.map(r2),
            send_rate: r2(o.send_rate),
            achieved_rate: r2(o.achieved_rate),
            duration_secs: o.measured_secs,
            warmup_secs: plan.warmup.as_secs_f64(),
            concurrency: plan.concurrency,
            threads: o.threads,
            realtime: o.realtime,
            requests: o.requests,
            ok: o.ok,
            errors: o.errors.clone(),
            statuses: o.statuses.clone(),
            body_bytes: o.body_bytes,
            queued: o.queued,
            unsent: o.unsent,
            corrected: percentiles(&o.corrected),
            uncorrected: percentiles(&o.uncorrected),
            send_lateness: percentiles(&o.lateness),
            dispatch_lateness: percentiles(&o.dispatch_lateness),
            windows: o.windows.clone(),
            stable: o.stable,
            valid: o.validity.valid,
            invalid_reasons: o.validity.reasons.clone(),
            client_cpu_secs: (o.cpu_secs * 1e6).round() / 1e6,
            cpu_us_per_request: r2(o.cpu_us_per_request()),
            warnings: o.warnings.clone(),
        }
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!("error: {msg}");
    2
}

fn print(value: &impl Serialize) {
    let text = serde_json::to_string_pretty(value).expect("result serializes");
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Runs the load and prints the result; returns the exit code.
pub async fn run(args: LoadArgs) -> i32 {
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !(positive(args.rate)
        && positive(args.duration)
        && args.warmup.is_finite()
        && args.warmup >= 0.0)
    {
        return usage("--rate and --duration must be positive, --warmup zero or more");
    }
    if args.concurrency == 0 || args.threads == Some(0) {
        return usage("--concurrency and --threads must be at least 1");
    }
    let method = match args.method.as_deref().map(str::to_ascii_uppercase) {
        Some(m) => match reqwest::Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => return usage(&format!("{m:?} is not an HTTP method")),
        },
        None if !args.body.is_empty() => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    let cpus = match args.cpus.as_deref().map(sys::parse_cpuset).transpose() {
        Ok(c) => c,
        Err(e) => return usage(&format!("--cpus: {e}")),
    };
    let arrivals = match args.arrivals {
        ArrivalsArg::Constant => Arrivals::Constant,
        ArrivalsArg::Poisson => Arrivals::Poisson,
    };
    let mode = if args.closed {
        Mode::Closed {
            duration: Duration::from_secs_f64(args.duration),
        }
    } else {
        let stages = match &args.stages {
            Some(text) => match schedule::parse_stages(text) {
                Ok(s) => s,
                Err(e) => return usage(&format!("--stages: {e}")),
            },
            None => vec![Stage::constant(
                args.rate,
                Duration::from_secs_f64(args.duration),
            )],
        };
        Mode::Open { stages, arrivals }
    };
    let spec = RequestSpec {
        method,
        url: args.url.clone(),
        content_type: args.content_type.clone(),
        bodies: args.body.clone(),
        ok_status: args.ok_status,
        timeout: Duration::from_millis(args.timeout_ms),
        max_body: args.max_body,
    };
    let plan = Plan {
        mode,
        warmup: Duration::from_secs_f64(args.warmup),
        concurrency: args.concurrency,
        seed: args.seed,
        threads: args.threads,
        cpus,
        min_requests: args.min_requests,
        realtime: !args.no_realtime,
        spin: Duration::from_micros(args.spin_us),
        curves: Vec::new(),
    };

    if let Some(slo_ms) = args.search_slo_ms {
        if args.closed || args.stages.is_some() {
            return usage(
                "a throughput search runs its own constant rates: drop --closed and --stages",
            );
        }
        let s = SearchSpec {
            percentile: args.search_percentile,
            slo_ms,
            max_error_rate: args.search_max_error_rate,
            start_rate: args.search_start_rate,
            max_rate: args.search_max_rate,
            max_steps: args.search_max_steps.max(1),
            precision: args.search_precision,
            step_duration: Duration::from_secs_f64(args.search_step_secs),
            step_warmup: plan.warmup,
            arrivals,
            cooldown: Duration::from_millis(500),
            repeats: args.search_repeats.max(1),
            clear_margin: super::search::DEFAULT_CLEAR_MARGIN,
        };
        let sane = positive(s.slo_ms)
            && positive(s.start_rate)
            && s.max_rate >= s.start_rate
            && s.percentile > 0.0
            && s.percentile <= 100.0
            && positive(args.search_step_secs);
        if !sane {
            return usage("search: the SLO, rates and step length must be positive, the percentile in (0, 100], --search-max-rate at least --search-start-rate");
        }
        let result: SearchResult = match super::search::search(&spec, &plan, &s, |step| {
            eprintln!(
                "search: {:.1} req/s {} ({})",
                step.rate,
                if step.passed { "passed" } else { "failed" },
                if step.passed {
                    format!("p{} {:.2} ms", s.percentile, step.latency_ms)
                } else {
                    step.reason.clone()
                }
            )
        })
        .await
        {
            Ok(r) => r,
            Err(e) => return usage(&e.to_string()),
        };
        print(&result);
        return 0;
    }

    let outcome = match super::run(&spec, &plan, |_, _| {}).await {
        Ok(o) => o,
        Err(e) => return usage(&e.to_string()),
    };
    let result = LoadResult::new(&args.url, &plan, &outcome);
    print(&result);
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    if result.valid {
        0
    } else {
        for r in &result.invalid_reasons {
            eprintln!("invalid measurement: {r}");
        }
        1
    }
}
