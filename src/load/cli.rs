//! `proctor load URL`: the load generator on its own, against any HTTP endpoint, with a JSON
//! result (like oha or wrk2).

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::{percentiles, Plan, RequestSpec};
use crate::report::Percentiles;

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The full URL to load, e.g. http://127.0.0.1:8080/v1/models/churn:predict
    pub url: String,
    /// Requests per second (open loop: sends do not wait for earlier responses).
    #[arg(long, short, default_value_t = 100.0)]
    pub rate: f64,
    /// Measured duration in seconds.
    #[arg(long, short, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured warm-up before it, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Most requests in flight at once.
    #[arg(long, short, default_value_t = 64)]
    pub concurrency: usize,
    /// HTTP method (POST when --body is given, else GET).
    #[arg(long, short)]
    pub method: Option<String>,
    /// Request body (sent with content type application/json).
    #[arg(long, short)]
    pub body: Option<String>,
    /// The status that counts as a success.
    #[arg(long, default_value_t = 200)]
    pub ok_status: u16,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Seed of the body order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The JSON printed by `proctor load`.
#[derive(Debug, Serialize)]
pub struct LoadResult {
    pub url: String,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
    pub corrected: Percentiles,
    pub uncorrected: Percentiles,
    pub send_lateness: Percentiles,
}

/// Runs the load and prints the result; returns the exit code (2 for bad arguments).
pub async fn run(args: LoadArgs) -> i32 {
    if !(args.rate > 0.0 && args.rate.is_finite())
        || args.duration <= 0.0
        || args.warmup < 0.0
        || args.concurrency == 0
    {
        eprintln!(
            "error: --rate, --duration and --concurrency must be positive, --warmup zero or more"
        );
        return 2;
    }
    let method = match args.method.as_deref().map(str::to_ascii_uppercase) {
        Some(m) => match reqwest::Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                eprintln!("error: {m:?} is not an HTTP method");
                return 2;
            }
        },
        None if args.body.is_some() => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    let spec = RequestSpec {
        method,
        url: args.url.clone(),
        content_type: "application/json".into(),
        bodies: args.body.into_iter().collect(),
        ok_status: args.ok_status,
        timeout: Duration::from_millis(args.timeout_ms),
        max_body: 1 << 20,
    };
    let plan = Plan {
        rate: args.rate,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        concurrency: args.concurrency,
        seed: args.seed,
    };
    let client = crate::http::client(Duration::from_secs(2), args.concurrency);
    let outcome = super::run(&client, &spec, &plan, |_, _| {}).await;
    let result = LoadResult {
        url: args.url,
        target_rate: args.rate,
        achieved_rate: outcome.achieved_rate,
        requests: outcome.requests,
        ok: outcome.ok,
        errors: outcome.errors,
        corrected: percentiles(&outcome.corrected),
        uncorrected: percentiles(&outcome.uncorrected),
        send_lateness: percentiles(&outcome.lateness),
    };
    let text = serde_json::to_string_pretty(&result).expect("result serializes");
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    0
}
