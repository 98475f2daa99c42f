//! The pipeline against a fake sandbox (no Docker) and an in-process service: the order of
//! stages, the verdict of each way a run can end, points kept when it ends early, and the
//! sandbox closed on every way out.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sandbox::Sandbox;
use super::*;
use crate::events::Silent;
use crate::grader::{SandboxLimits, SubmissionRules};
use crate::report::Status;
use crate::sandbox::build::{BuildFailure, Built};
use crate::sandbox::container::ExitInfo;
use crate::sandbox::{ContainerFacts, EngineError, EngineInfo, Service};

/// A service on 127.0.0.1: `/ready` and `/fast` answer at once, `/slow` after `slow`.
async fn service(slow: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if String::from_utf8_lossy(&got).starts_with("GET /slow") {
                    tokio::time::sleep(slow).await;
                }
                let body = "{\"ready\": true}";
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    url
}

#[derive(Clone, Copy, PartialEq)]
enum Build {
    Ok,
    Fails,
}

/// A sandbox whose build, start and service death are scripted.
struct Fake {
    info: EngineInfo,
    build: Build,
    base_missing: bool,
    start_fails: bool,
    url: String,
    /// The service dies this long after it started.
    dies_after: Option<Duration>,
    started: Option<Instant>,
    builds: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
}

impl Fake {
    fn new(url: String) -> Fake {
        Fake {
            info: EngineInfo::default(),
            build: Build::Ok,
            base_missing: false,
            start_fails: false,
            url,
            dies_after: None,
            started: None,
            builds: Arc::default(),
            closed: Arc::default(),
        }
    }

    fn death(&self) -> Option<Instant> {
        Some(self.started? + self.dies_after?)
    }
}

impl Sandbox for Fake {
    fn info(&self) -> &EngineInfo {
        &self.info
    }

    fn sweep_leftovers(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async { None })
    }

    fn check_base_images<'a>(
        &'a self,
        bases: &'a [String],
    ) -> BoxFuture<'a, Result<(), BaseImageError>> {
        Box::pin(async move {
            match self.base_missing {
                true => Err(BaseImageError::Missing(bases[0].clone())),
                false => Ok(()),
            }
        })
    }

    fn build<'a>(
        &'a mut self,
        _: Vec<u8>,
        _: &'a SubmissionRules,
        _: Duration,
        _: &'a Events,
        warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Result<Built, BuildFailure>, EngineError>> {
        self.builds.fetch_add(1, Ordering::SeqCst);
        warnings.push("a build warning".into());
        let build = self.build;
        Box::pin(async move {
            Ok(match build {
                Build::Ok => Ok(Built {
                    image_id: "sha256:1".into(),
                    tag: "t".into(),
                    size_bytes: Some(1),
                    log_tail: "Step 1/1".into(),
                }),
                Build::Fails => Err(BuildFailure {
                    verdict: Verdict::BuildFailed,
                    reason: "step 2 failed".into(),
                    log_tail: "pip: no such package".into(),
                }),
            })
        })
    }

    fn start<'a>(
        &'a mut self,
        _: &'a Built,
        _: &'a SandboxLimits,
        _: u16,
        _: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Service, EngineError>> {
        Box::pin(async move {
            if self.start_fails {
                return Err(EngineError::api("create the container", "no space left"));
            }
            self.started = Some(Instant::now());
            Ok(Service {
                url: self.url.clone(),
                container_id: "c1".into(),
            })
        })
    }

    fn wait_exit(&self) -> BoxFuture<'_, Result<ExitInfo, EngineError>> {
        let death = self.death();
        Box::pin(async move {
            match death {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
            Ok(ExitInfo {
                exit_code: Some(137),
                oom_killed: false,
            })
        })
    }

    fn exited(&self) -> BoxFuture<'_, Result<Option<ExitInfo>, EngineError>> {
        let dead = self.death().is_some_and(|at| Instant::now() >= at);
        Box::pin(async move {
            Ok(dead.then_some(ExitInfo {
                exit_code: Some(137),
                oom_killed: false,
            }))
        })
    }

    fn saw_exit(&mut self, _: ExitInfo) {}

    fn finish(&mut self) -> BoxFuture<'_, Option<ContainerFacts>> {
        let started = self.started.is_some();
        Box::pin(async move {
            started.then(|| ContainerFacts {
                log_tail: "service log".into(),
                ..Default::default()
            })
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Vec<String>> {
        self.closed.store(true, Ordering::SeqCst);
        Box::pin(async { Vec::new() })
    }
}

const GRADER: &str = r#"
[grader]
name = "t"
assignment = "a"

[submission]
allowed_base_images = ["base:1"]

[http]
request_timeout_ms = 3000

[readiness]
path = "/ready"
points = 1

[[correctness]]
name = "fast"
points = 2
path = "/fast"

[[correctness]]
name = "slow"
points = 3
path = "/slow"
"#;

/// The options of these tests, with grader file `text`.
fn options_with(text: &str) -> GradeOptions {
    options_with_all(&[text])
}

/// The options of these tests, graded by every grader file of `texts` (`g0.toml`, ...).
fn options_with_all(texts: &[&str]) -> GradeOptions {
    GradeOptions {
        source: Source::Submission("submission".into()),
        graders: texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = std::path::PathBuf::from(format!("g{i}.toml"));
                LoadedGrader {
                    grader: crate::grader::parse(text, &path).unwrap(),
                    path,
                    sha256: String::new(),
                    datasets: Default::default(),
                }
            })
            .collect(),
        seed: 1,
        keep_image: false,
        build_timeout: None,
        ready_timeout: Some(Duration::from_secs(5)),
        intake_limits: Limits::default(),
        latency_reference: None,
        probe_all: false,
    }
}

fn context() -> intake::BuildContext {
    intake::BuildContext {
        kind: intake::SourceKind::Directory,
        tar: Vec::new(),
        dockerfile: "FROM base:1\n".into(),
        files: 1,
        bytes: 12,
        sha256: "abc".into(),
        ignored: 0,
        commit: None,
        history: None,
    }
}

/// Grades `fake` as the pipeline would after intake; `cancel_after` presses Ctrl-C.
async fn grade_with(fake: Fake, cancel_after: Option<Duration>) -> (Report, bool) {
    grade_graded_by(fake, GRADER, cancel_after).await
}

/// [`grade_with`], with grader file `text`.
async fn grade_graded_by(fake: Fake, text: &str, cancel_after: Option<Duration>) -> (Report, bool) {
    grade_graded_by_all(fake, &[text], cancel_after).await
}

/// [`grade_with`], with every grader file of `texts` in one run.
async fn grade_graded_by_all(
    fake: Fake,
    texts: &[&str],
    cancel_after: Option<Duration>,
) -> (Report, bool) {
    let opts = options_with_all(texts);
    let plans: Vec<RunPlan> = opts
        .graders
        .iter()
        .map(|g| RunPlan::new(g, 1, None, opts.ready_timeout))
        .collect();
    let events: Events = Arc::new(Silent);
    let run = start_run(&opts, &events);
    let mut record = Record::new(&run.run_id, &run.graders);
    let closed = fake.closed.clone();
    let cancel = CancellationToken::new();
    if let Some(after) = cancel_after {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            c.cancel();
        });
    }
    let bases = vec!["base:1".to_string()];
    let ending = grade_opened(
        &opts,
        &plans,
        Box::new(fake),
        context(),
        bases,
        &mut record,
        &events,
        &cancel,
    )
    .await;
    let report = finish(&opts, &plans, run, ending, record);
    (report, closed.load(Ordering::SeqCst))
}

fn points_of<'a>(r: &'a Report, name: &str) -> (f64, &'a str) {
    let c = r.checks.iter().find(|c| c.name == name).unwrap();
    (c.points, c.message.as_str())
}

#[tokio::test]
async fn a_service_that_answers_is_graded_and_the_sandbox_closed() {
    let fake = Fake::new(service(Duration::from_millis(50)).await);
    let (r, closed) = grade_with(fake, None).await;
    assert_eq!(r.status, Status::Graded, "{}", r.reason);
    assert_eq!(r.score.unwrap().points, 6.0);
    assert!(closed);
    let stages: Vec<&str> = r.timings.iter().map(|t| t.stage.as_str()).collect();
    assert_eq!(stages, ["build", "start", "ready", "checks", "cleanup"]);
    assert_eq!(r.container.as_ref().unwrap().log_tail, "service log");
    assert!(r.warnings.contains(&"a build warning".to_string()));
}

#[tokio::test]
async fn a_failed_build_is_the_submissions_and_lists_every_check_as_not_run() {
    let mut fake = Fake::new(service(Duration::ZERO).await);
    fake.build = Build::Fails;
    let (r, closed) = grade_with(fake, None).await;
    assert_eq!(r.status, Status::SubmissionError);
    assert_eq!(r.verdict, Some(Verdict::BuildFailed));
    assert_eq!(r.build_log_tail.as_deref(), Some("pip: no such package"));
    let s = r.score.unwrap();
    assert_eq!(
        (s.points, s.max_points),
        (0.0, 6.0),
        "out of the full total"
    );
    assert!(points_of(&r, "slow")
        .1
        .starts_with("not run: step 2 failed"));
    assert!(r.container.is_none());
    assert!(closed);
}

#[tokio::test]
async fn an_engine_failure_is_never_a_grade() {
    let mut fake = Fake::new(service(Duration::ZERO).await);
    fake.start_fails = true;
    let (r, closed) = grade_with(fake, None).await;
    assert_eq!(r.status, Status::InfrastructureError);
    assert_eq!(r.verdict, Some(Verdict::EngineError));
    assert!(r.score.is_none() && r.categories.is_empty());
    assert!(r.reason.contains("not of the submission"), "{}", r.reason);
    assert!(closed);
}

#[tokio::test]
async fn a_missing_base_image_stops_before_the_build() {
    let mut fake = Fake::new(service(Duration::ZERO).await);
    fake.base_missing = true;
    let builds = fake.builds.clone();
    let (r, closed) = grade_with(fake, None).await;
    assert_eq!(r.verdict, Some(Verdict::BaseImageMissing));
    assert!(r.reason.contains("docker/base/build.sh"), "{}", r.reason);
    assert_eq!(builds.load(Ordering::SeqCst), 0);
    assert!(closed);
}

#[tokio::test]
async fn a_service_that_dies_keeps_the_points_it_earned() {
    let mut fake = Fake::new(service(Duration::from_secs(10)).await);
    // Readiness and `fast` answer at once; the service dies while `slow` is waiting.
    fake.dies_after = Some(Duration::from_millis(700));
    let started = Instant::now();
    let (r, closed) = grade_with(fake, None).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the death was not noticed"
    );
    assert_eq!(r.status, Status::SubmissionError);
    assert_eq!(r.verdict, Some(Verdict::CrashedDuringGrading));
    assert!(r.reason.contains("137"), "{}", r.reason);
    assert_eq!(points_of(&r, "becomes ready").0, 1.0);
    assert_eq!(points_of(&r, "fast").0, 2.0, "earned before the death");
    let (slow, why) = points_of(&r, "slow");
    assert_eq!(slow, 0.0);
    assert!(why.starts_with("not run"), "{why}");
    assert_eq!(r.score.unwrap().max_points, 6.0);
    assert!(closed);
}

#[tokio::test]
async fn ctrl_c_interrupts_cleans_up_and_is_not_a_grade() {
    let fake = Fake::new(service(Duration::from_secs(10)).await);
    let (r, closed) = grade_with(fake, Some(Duration::from_millis(500))).await;
    assert_eq!(r.verdict, Some(Verdict::Interrupted));
    assert_eq!(r.status, Status::InfrastructureError);
    assert!(r.score.is_none());
    assert!(closed, "an interrupted run must still close its sandbox");
}

#[test]
fn an_invalid_latency_measurement_is_the_machines_failure() {
    let spec: crate::grader::LatencySpec =
        toml::from_str("path = \"/\"\nrate = 50\nduration_secs = 10\n").unwrap();
    let mut l = phases::latency::empty_report(&spec);
    l.attempts = 2;
    l.invalid_reasons = vec!["the load generator sent 3.0% of requests more than 1 ms late".into()];
    match invalid_latency(Some(&l)) {
        Some(Ending::Stopped { verdict, reason }) => {
            assert_eq!(verdict, Verdict::LatencyMeasurementInvalid);
            assert!(
                reason.contains("after 2 attempts: the load generator sent 3.0%"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    l.valid = true;
    l.invalid_reasons.clear();
    assert!(invalid_latency(Some(&l)).is_none());
    assert!(invalid_latency(None).is_none());
}

/// [`GRADER`] with a check the test service fails (it answers no `/predictions`), `fast` gated
/// on `required`, and grade bands.
fn grader_with_prerequisite(required: &str) -> String {
    format!(
        r#"{GRADER}
[[correctness]]
name = "predicts"
points = 1
path = "/fast"
[[correctness.json]]
pointer = "/predictions"

[[prerequisite]]
name = "predictions carry signal"
requires = ["{required}"]
min_share = 0.5
gates = ["fast"]

[[grade.band]]
name = "strong"
min_percent = 70
[[grade.band]]
name = "does not meet"
min_percent = 0
"#
    )
}

#[tokio::test]
async fn an_unmet_prerequisite_withholds_points_and_the_report_keeps_them() {
    let fake = Fake::new(service(Duration::ZERO).await);
    let (r, _) = grade_graded_by(fake, &grader_with_prerequisite("predicts"), None).await;
    assert_eq!(r.status, Status::Graded, "{}", r.reason);
    let (fast, why) = points_of(&r, "fast");
    assert_eq!(fast, 0.0);
    assert!(
        why.starts_with("not earned: needs \"predictions carry signal\" ('predicts' earned 0 of 1"),
        "{why}"
    );
    let p = &r.prerequisites[0];
    assert_eq!(p.judgement, crate::report::Judgement::Unmet);
    assert_eq!(p.withheld.len(), 1);
    assert_eq!(
        (p.withheld[0].check.as_str(), p.withheld[0].points_before),
        ("fast", 2.0)
    );
    // Ready 1 + slow 3 of 7: without the prerequisite it would be 6 of 7, "strong".
    let s = r.score.unwrap();
    assert_eq!((s.points, s.max_points), (4.0, 7.0));
    assert_eq!(r.band.as_deref(), Some("does not meet"));
    let summary = crate::report::summary_text(&r);
    assert!(summary.contains("(57.1%, does not meet)"), "{summary}");
    assert!(
        summary.contains("\"predictions carry signal\" not met: 2.0 points withheld"),
        "{summary}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["prerequisites"][0]["withheld"][0]["points_before"],
        2.0
    );
}

#[tokio::test]
async fn a_prerequisite_whose_checks_never_ran_keeps_the_points_earned_before_a_crash() {
    let mut fake = Fake::new(service(Duration::from_secs(10)).await);
    // `fast` answers; the service dies while `slow`, the required check, is waiting.
    fake.dies_after = Some(Duration::from_millis(700));
    let (r, _) = grade_graded_by(fake, &grader_with_prerequisite("slow"), None).await;
    assert_eq!(r.verdict, Some(Verdict::CrashedDuringGrading));
    assert_eq!(points_of(&r, "fast").0, 2.0, "earned before the crash");
    let p = &r.prerequisites[0];
    assert_eq!(p.judgement, crate::report::Judgement::NotJudged);
    assert!(p.withheld.is_empty());
}

#[tokio::test]
async fn a_prerequisite_naming_no_check_stops_the_run_before_anything_is_built() {
    let opts = options_with(&grader_with_prerequisite("holdout AUC"));
    let err = grade(&opts, Arc::new(Silent), CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("g0.toml:"), "{err}");
    assert!(err.contains("prerequisite[0].requires"), "{err}");
    assert!(err.contains("\"holdout AUC\" is neither a check"), "{err}");
}

/// A second grader of the same assignment: the same readiness request with its own points, a
/// hidden check of its own, and a check whose name the first grader uses too.
const SECOND: &str = r#"
[grader]
name = "second"
assignment = "a"
visibility = "hidden"

[submission]
allowed_base_images = ["base:1"]

[readiness]
path = "/ready"
points = 4

[[correctness]]
name = "fast"
points = 5
path = "/fast"

[[robustness]]
name = "slow, hidden"
points = 1
path = "/slow"

[[prerequisite]]
name = "SECRET rule over the hidden check"
requires = ["slow, hidden"]
min_share = 0.5
gates = ["fast"]
"#;

#[tokio::test]
async fn composed_graders_build_once_and_report_every_graders_checks() {
    let fake = Fake::new(service(Duration::ZERO).await);
    let builds = fake.builds.clone();
    let (r, closed) = grade_graded_by_all(fake, &[GRADER, SECOND], None).await;
    assert!(closed);
    assert_eq!(
        builds.load(Ordering::SeqCst),
        1,
        "one build for both graders"
    );
    assert_eq!(r.status, Status::Graded, "{}", r.reason);
    // Each grader's checks, marked with their grader; the shared name is two checks.
    let of = |g: &str| r.checks.iter().filter(|c| c.grader == g).count();
    assert_eq!((of("t"), of("second")), (3, 3), "{:?}", r.checks);
    let fast: Vec<_> = r.checks.iter().filter(|c| c.name == "fast").collect();
    assert_eq!(fast.len(), 2);
    // Readiness ran once and counts in both, with each grader's points and visibility.
    let ready: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.category == crate::check::Category::Readiness)
        .map(|c| (c.grader.as_str(), c.max_points, c.visibility))
        .collect();
    assert_eq!(
        ready,
        [
            ("t", 1.0, crate::check::Visibility::Visible),
            ("second", 4.0, crate::check::Visibility::Hidden)
        ]
    );
    // The total is every grader's; each grader keeps its own score.
    let total = r.score.as_ref().unwrap();
    assert_eq!(total.max_points, 1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 1.0);
    let names: Vec<_> = r.graders.iter().map(|g| g.grader.name.as_str()).collect();
    assert_eq!(names, ["t", "second"]);
    let own: Vec<f64> = r
        .graders
        .iter()
        .map(|g| g.score.as_ref().unwrap().max_points)
        .collect();
    assert_eq!(own, [6.0, 10.0]);
    let ready_waits = r.timings.iter().filter(|t| t.stage == "ready").count();
    assert_eq!(ready_waits, 1, "one readiness wait for both graders");
    // Phase timings say whose phase they were.
    assert!(r
        .timings
        .iter()
        .any(|t| t.stage == "checks" && t.grader == "second"));
    // A candidate sees the hidden grader's checks only as counts.
    let c = r.for_view(crate::report::View::Candidate);
    assert!(c.checks.iter().all(|c| c.grader == "t"));
    assert_eq!(c.hidden_checks.unwrap().count, 3);
}

#[tokio::test]
async fn a_run_cut_short_lists_every_graders_missing_checks() {
    let fake = Fake {
        build: Build::Fails,
        ..Fake::new(String::new())
    };
    let (r, _) = grade_graded_by_all(fake, &[GRADER, SECOND], None).await;
    assert_eq!(r.verdict, Some(Verdict::BuildFailed));
    assert_eq!(r.checks.len(), 6, "{:?}", r.checks);
    assert!(r.checks.iter().all(|c| c.not_run() && !c.grader.is_empty()));
    assert_eq!(r.score.as_ref().unwrap().max_points, 16.0);
    // The hidden grader's rule named checks that never ran: hidden all the same.
    assert_eq!(r.prerequisites.len(), 1);
    let seen = serde_json::to_string(&r.for_view(crate::report::View::Candidate)).unwrap();
    assert!(
        !seen.contains("SECRET") && !seen.contains("slow, hidden"),
        "{seen}"
    );
}

#[tokio::test]
async fn graders_that_disagree_on_the_sandbox_stop_before_anything_runs() {
    let other = SECOND.replace("[readiness]", "[sandbox]\nmemory_mb = 256\n\n[readiness]");
    let opts = options_with_all(&[GRADER, &other]);
    let err = grade(&opts, Arc::new(Silent), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.0.contains("sandbox.memory_mb"), "{}", err.0);
    assert!(
        err.0.contains("g0.toml") && err.0.contains("g1.toml"),
        "{}",
        err.0
    );
}
