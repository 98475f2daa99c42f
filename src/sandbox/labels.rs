//! Labels that mark every container, network and image proctor creates, so that cleanup, the
//! startup sweep and `proctor gc` find exactly proctor's resources and never touch others.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub const MANAGED: &str = "io.proctor.managed";
pub const RUN: &str = "io.proctor.run";
pub const PID: &str = "io.proctor.pid";
pub const CREATED: &str = "io.proctor.created";

/// A run's identity: lowercase letters, digits and dashes, so it is valid in image tags and
/// resource names. Unique per process and time.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let salt: u32 = rand::random();
    format!(
        "{:x}-{}-{:06x}",
        now.as_secs(),
        std::process::id(),
        salt & 0xff_ffff
    )
}

/// The labels of every resource of a run.
pub fn for_run(run_id: &str) -> HashMap<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    HashMap::from([
        (MANAGED.to_string(), "1".to_string()),
        (RUN.to_string(), run_id.to_string()),
        (PID.to_string(), std::process::id().to_string()),
        (CREATED.to_string(), now.as_secs().to_string()),
    ])
}

/// The labels of a run's image. Only the run label: the classic builder commits one layer per
/// build label (seconds each), and the pid and time can be recovered from the run id and the
/// image's creation time.
pub fn for_build(run_id: &str) -> HashMap<String, String> {
    HashMap::from([(RUN.to_string(), run_id.to_string())])
}

/// The pid that created a run, from the run id (`<time>-<pid>-<salt>`).
pub fn pid_of_run(run_id: &str) -> Option<u32> {
    run_id.split('-').nth(1)?.parse().ok()
}

/// Engine filter selecting one run's resources.
pub fn run_filter(run_id: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{RUN}={run_id}")])])
}

/// Engine filter selecting every proctor container and network.
pub fn managed_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{MANAGED}=1")])])
}

/// Engine filter selecting every proctor image (images carry only the run label).
pub fn image_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![RUN.to_string()])])
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_are_tag_safe_and_distinct() {
        let a = super::new_run_id();
        let b = super::new_run_id();
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
    }
}
