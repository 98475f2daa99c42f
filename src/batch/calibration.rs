//! A batch's calibration: the latency reference measured at the batch's start (every submission
//! is graded against that measurement) and again at its end. When the machine's speed moved by
//! more than the declared share in between, the submissions graded early and late were not
//! measured under the same conditions: the batch is flagged, in `calibration.json`, the
//! leaderboard and the exit code.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::pipeline::MeasuredReference;

/// The file a batch writes its calibration to, in its output folder.
pub const FILE: &str = "calibration.json";

/// One measurement of the reference: the first grader's that has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub run_id: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Measurement {
    pub fn of(m: &MeasuredReference) -> Option<Measurement> {
        let p = m.corrected.iter().flatten().next()?;
        Some(Measurement {
            run_id: m.run_id.clone(),
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The reference submission.
    pub reference: String,
    pub start: Option<Measurement>,
    /// None when the batch was interrupted before the end, or the end could not be measured.
    pub end: Option<Measurement>,
    /// Why the end has no measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_failed: Option<String>,
    /// How far the reference's median latency moved, as a share of the start (0.3 = 30%).
    pub change: Option<f64>,
    /// The largest change the batch accepts (`--max-speed-change`).
    pub max_change: f64,
    pub flagged: bool,
}

impl Calibration {
    /// The median is compared: it reflects the machine's speed, while the tail of a fast
    /// service moves with single scheduling hiccups.
    pub fn new(
        reference: &Path,
        start: Option<Measurement>,
        end: Result<Option<Measurement>, String>,
        max_change: f64,
    ) -> Calibration {
        let (end, end_failed) = match end {
            Ok(m) => (m, None),
            Err(why) => (None, Some(why)),
        };
        let change = match (&start, &end) {
            (Some(a), Some(b)) if a.p50_ms > 0.0 => Some((b.p50_ms / a.p50_ms - 1.0).abs()),
            _ => None,
        };
        Calibration {
            reference: reference.display().to_string(),
            flagged: change.is_some_and(|c| c > max_change),
            start,
            end,
            end_failed,
            change,
            max_change,
        }
    }

    /// The leaderboard's note when the batch is flagged.
    pub fn note(&self) -> Option<String> {
        if !self.flagged {
            return None;
        }
        let (a, b) = (self.start.as_ref()?, self.end.as_ref()?);
        Some(format!(
            "The machine's speed moved while this batch ran: the latency reference's median went \
             from {:.2} ms at the start to {:.2} ms at the end ({:.0}%, more than the {:.0}% \
             allowed). Latency grades of submissions graded early and late are not comparable; \
             grade the batch again on a quieter machine (--regrade).",
            a.p50_ms,
            b.p50_ms,
            self.change.unwrap_or(0.0) * 100.0,
            self.max_change * 100.0
        ))
    }

    pub fn write(&self, out_dir: &Path) -> Result<(), String> {
        let path = out_dir.join(FILE);
        let text = serde_json::to_vec_pretty(self).expect("a calibration serializes");
        crate::report::write_atomic(&path, &text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The calibration a batch's output folder holds, if any (for `merge`).
    pub fn read(dir: &Path) -> Result<Option<Calibration>, String> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{} is not a batch's calibration: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p50: f64) -> Option<Measurement> {
        Some(Measurement {
            run_id: "r".into(),
            p50_ms: p50,
            p99_ms: p50 * 4.0,
        })
    }

    #[test]
    fn a_speed_change_past_the_share_flags_the_batch() {
        let path = Path::new("ref");
        let steady = Calibration::new(path, m(2.0), Ok(m(2.2)), 0.25);
        assert!(!steady.flagged);
        assert!((steady.change.unwrap() - 0.1).abs() < 1e-9);
        assert!(steady.note().is_none());
        let moved = Calibration::new(path, m(2.0), Ok(m(1.4)), 0.25);
        assert!(moved.flagged, "faster counts as moved too");
        let note = moved.note().unwrap();
        assert!(note.contains("2.00 ms") && note.contains("1.40 ms") && note.contains("30%"));
        let unknown = Calibration::new(path, m(2.0), Err("interrupted".into()), 0.25);
        assert!(!unknown.flagged && unknown.change.is_none());
        assert_eq!(unknown.end_failed.as_deref(), Some("interrupted"));
    }

    #[test]
    fn it_reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Calibration::read(dir.path()).unwrap(), None);
        let c = Calibration::new(Path::new("ref"), m(2.0), Ok(m(3.0)), 0.25);
        c.write(dir.path()).unwrap();
        assert_eq!(Calibration::read(dir.path()).unwrap(), Some(c));
    }
}
