//! The HTML view in a real browser: Debian's `chromium`, headless, opens the page of a full
//! report (`tests/fixtures/reports/full.json`: a reference-like grade with latency percentiles,
//! windows, search steps, drift, quality and container data) from disk.
//!
//! - The DOM after loading holds every SVG chart the report has data for.
//! - The screenshot is not blank.
//! - The page makes no network request (every request Chromium's network stack sees is logged
//!   with `--v=1`; the browser's own background services are told apart by their fixed URLs)
//!   and logs nothing to the console (CSP violations and script errors are console lines).
//! - A control page that does fetch and log proves both detectors see what they look for.
//!
//! Without `chromium` the test fails: `apt-get install chromium` (.ci/run installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proctor::report::{Html, Render, Report, View};

/// The charts of full.json: categories, latency percentiles, windows, throughput search, ROC,
/// reliability, drift p-values, the timeline of each of its two drift scenarios, container peaks.
const CHARTS: usize = 10;

/// Requests Chromium's own background services make (time, component updates, account and
/// dictionary downloads), whatever page it opens. A page never asks for these.
const BROWSER_OWN: &[&str] = &[
    "http://clients2.google.com/time/",
    "https://clients2.google.com/time/",
    "http://update.googleapis.com/service/update2/",
    "https://update.googleapis.com/service/update2/",
    "https://accounts.google.com/ListAccounts",
    "https://redirector.gvt1.com/edgedl/chrome/dict/",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

fn full_report() -> Report {
    serde_json::from_str(&std::fs::read_to_string(fixture("full.json")).unwrap()).unwrap()
}

fn chromium_present() {
    let found = Command::new("chromium").arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "chromium is not installed: this test needs Debian's headless Chromium \
         (apt-get install chromium; .ci/run installs it): {found:?}"
    );
}

/// Runs headless Chromium on `page` with `extra` arguments, logging to stderr; a profile of its
/// own in `dir` (tests run in parallel), no name resolution (nothing leaves the machine even if
/// a request were made; requests are still logged before resolution).
fn chromium(dir: &Path, page: &Path, extra: &[&str]) -> Output {
    let profile = dir.join(format!(
        "profile-{}",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every URL Chromium's network stack was asked for, less the browser's own background ones.
fn page_requests(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            l.split_once("NotifyBeforeURLRequest: ")
                .map(|(_, u)| u.trim())
        })
        .filter(|u| !BROWSER_OWN.iter().any(|own| u.starts_with(own)))
        .map(String::from)
        .collect()
}

fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// (pixels, distinct colours, share of pixels unlike the first one) of a PNG.
fn png_colours(path: &Path) -> (usize, usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the screenshot exists"),
    ));
    let mut reader = decoder.read_info().expect("the screenshot is a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("the PNG decodes");
    let bytes = &buf[..info.buffer_size()];
    let step = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let pixels: Vec<&[u8]> = bytes.chunks_exact(step).collect();
    let first = pixels[0];
    let differing = pixels.iter().filter(|p| **p != first).count();
    let distinct: std::collections::HashSet<&[u8]> = pixels.iter().copied().collect();
    (
        pixels.len(),
        distinct.len(),
        differing as f64 / pixels.len() as f64,
    )
}

#[test]
fn the_html_view_renders_in_headless_chromium_without_any_fetch() {
    chromium_present();
    let dir = tempfile::tempdir().unwrap();
    let r = full_report();
    let page = dir.path().join("report.html");
    let html = Html.render(&r, View::Grader);
    std::fs::write(&page, &html).unwrap();

    // The DOM after loading.
    let out = chromium(dir.path(), &page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("proctor: assignments/churn/reference"),
        "{dom}"
    );
    let svgs = dom.matches("<svg").count();
    assert!(
        svgs >= CHARTS,
        "{svgs} SVG charts in the DOM, expected {CHARTS}"
    );
    for id in [
        "categories",
        "latency",
        "quality",
        "drift",
        "container",
        "warnings",
    ] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "no {id} section");
    }
    let lower = dom.to_lowercase();
    for outside in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "url(",
        "@import",
        "<link",
        "<script",
        "<iframe",
    ] {
        assert!(
            !lower.contains(outside),
            "the DOM refers outside: {outside}"
        );
    }
    assert_eq!(
        page_requests(&stderr),
        Vec::<String>::new(),
        "requests made"
    );
    assert_eq!(console_lines(&stderr), Vec::<&str>::new(), "console output");

    // The screenshot.
    let shot = dir.path().join("report.png");
    let out = chromium(
        dir.path(),
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
            "--hide-scrollbars",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        page_requests(&stderr),
        Vec::<String>::new(),
        "requests made"
    );
    let (pixels, colours, differing) = png_colours(&shot);
    assert_eq!(pixels, 1280 * 2000, "the window's size");
    assert!(colours > 16, "{colours} colours: a blank screenshot");
    assert!(
        differing > 0.02,
        "{:.3}% of the pixels are drawn: a blank screenshot",
        differing * 100.0
    );
    if let Ok(keep) = std::env::var("PROCTOR_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }

    // The candidate's view in the browser: no hidden check, the counts instead.
    let page = dir.path().join("candidate.html");
    std::fs::write(&page, Html.render(&r, View::Candidate)).unwrap();
    let out = chromium(dir.path(), &page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(!dom.contains("secret"), "{dom}");
    assert!(dom.contains("2 hidden check(s)"), "{dom}");
    assert!(dom.matches("<svg").count() >= CHARTS);
}

/// The detectors see a page that fetches and logs: their silence above means something.
#[test]
fn the_detectors_see_a_fetch_and_a_console_line() {
    chromium_present();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/pixel.png\">\
         <script>console.error('control')</script></body></html>",
    )
    .unwrap();
    let out = chromium(dir.path(), &page, &["--dump-dom"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        page_requests(&stderr),
        ["http://127.0.0.1:9/pixel.png"],
        "{stderr}"
    );
    assert_eq!(console_lines(&stderr).len(), 1, "{stderr}");
}
