//! Keeps the candidate's container away from the host's own ports. A Docker "internal" network
//! has no route out, but the host answers on its bridge address (and, through it, on every
//! address it has): a service could reach the Docker API over TCP, a database or an admin
//! panel listening on the host. The engine only filters forwarded traffic, so proctor adds one
//! rule per run to the host's INPUT chain: new connections arriving from the run's bridge are
//! dropped, while the answers to proctor's own requests (established connections) still pass.
//!
//! Needs iptables and root on the machine that runs the engine. Each rule carries the comment
//! `proctor:<run id>`, is removed with the run, and rules of runs whose owner is gone are swept
//! like their containers.

use std::time::Duration;

use tokio::process::Command;

const CHAIN: &str = "INPUT";
const TAG: &str = "proctor:";

/// The rule's arguments after `-I`/`-D` and the chain.
fn rule(bridge: &str, run_id: &str) -> Vec<String> {
    [
        "-i",
        bridge,
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-m",
        "comment",
        "--comment",
        &format!("{TAG}{run_id}"),
        "-j",
        "DROP",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The bridge interface Docker creates for a network: `br-` and the id's first 12 characters.
pub fn bridge_of(network_id: &str) -> String {
    format!("br-{}", &network_id[..network_id.len().min(12)])
}

async fn iptables(args: &[String]) -> Result<String, String> {
    let run = Command::new("iptables")
        .args(["-w", "5"])
        .args(args)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Err(_) => Err("iptables did not answer within 10s".into()),
        Ok(Err(e)) => Err(format!("cannot run iptables: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(format!(
            "iptables failed: {}",
            crate::http::sanitize(String::from_utf8_lossy(&out.stderr).trim(), 300)
        )),
    }
}

/// Whether rules like a run's can be added and removed here (iptables, root, the conntrack
/// and comment matches): adds one for an interface that does not exist, then removes it.
pub async fn probe() -> Result<(), String> {
    let run_id = format!("doctor-{}-probe", std::process::id());
    let mut args = vec!["-I".to_string(), CHAIN.to_string()];
    args.extend(rule("br-proctorprobe", &run_id));
    iptables(&args).await?;
    match remove_where(|r| r == run_id).await {
        (1, _) => Ok(()),
        (_, errors) => Err(format!(
            "the probe rule could not be removed again: {}",
            errors.join("; ")
        )),
    }
}

/// Drops new connections from the run's network to the host. Errors say why the host's ports
/// stay reachable.
pub async fn isolate(network_id: &str, run_id: &str) -> Result<(), String> {
    let bridge = bridge_of(network_id);
    // A rule for a bridge this process cannot see would land in another network namespace
    // (proctor in a container, the engine's socket mounted in) and protect nothing.
    if !std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists()
    {
        return Err(format!(
            "the run's bridge {bridge} is not visible here: proctor runs in another network \
             namespace than the engine"
        ));
    }
    let mut args = vec!["-I".to_string(), CHAIN.to_string()];
    args.extend(rule(&bridge, run_id));
    iptables(&args).await.map(|_| ())
}

/// Removes the rules of the runs for which `remove(run_id)` is true. Returns how many went,
/// and what failed.
pub async fn remove_where(remove: impl Fn(&str) -> bool) -> (usize, Vec<String>) {
    // Where the chain cannot be listed (no iptables, not root), no rule could be added either.
    let Ok(listing) = iptables(&["-S".to_string(), CHAIN.to_string()]).await else {
        return (0, Vec::new());
    };
    let mut removed = 0;
    let mut errors = Vec::new();
    // Only rules shaped exactly like the ones `isolate` adds, whatever their comment says.
    let ours = |l: &&str| l.starts_with("-A INPUT -i br-") && l.ends_with(" -j DROP");
    for line in listing.lines().filter(ours) {
        let Some(run) = run_of(line).filter(|r| crate::sandbox::labels::pid_of_run(r).is_some())
        else {
            continue;
        };
        if !remove(run) {
            continue;
        }
        // `-S` prints each rule as the arguments that add it; `-D` with the same ones deletes it.
        let Some(args) = shell_words(&line.replacen("-A ", "-D ", 1)) else {
            continue;
        };
        match iptables(&args).await {
            Ok(_) => removed += 1,
            Err(e) => errors.push(format!("firewall rule of run {run}: {e}")),
        }
    }
    (removed, errors)
}

/// The run id in a rule's comment, if it is one of proctor's (`-S` may quote the comment).
fn run_of(line: &str) -> Option<&str> {
    let rest = &line[line.find("--comment ")? + "--comment ".len()..];
    let comment = rest.split_whitespace().next()?.trim_matches('"');
    comment.strip_prefix(TAG)
}

/// Splits `iptables -S` output into arguments, unquoting quoted words without spaces. A rule
/// with a quoted phrase (someone else's) is left alone.
fn shell_words(line: &str) -> Option<Vec<String>> {
    line.split_whitespace()
        .map(|w| {
            let inner = w
                .strip_prefix('"')
                .and_then(|w| w.strip_suffix('"'))
                .unwrap_or(w);
            (!inner.contains('"') && !inner.contains('\'')).then(|| inner.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_found_by_their_comment() {
        let ours = "-A INPUT -i br-0123456789ab -m conntrack ! --ctstate RELATED,ESTABLISHED \
                    -m comment --comment \"proctor:6b07-123-abc\" -j DROP";
        assert_eq!(run_of(ours), Some("6b07-123-abc"));
        assert_eq!(run_of(&ours.replace('"', "")), Some("6b07-123-abc"));
        assert_eq!(run_of("-A INPUT -i eth0 -j ACCEPT"), None);
        let words = shell_words(&ours.replacen("-A ", "-D ", 1)).unwrap();
        assert_eq!(words[0], "-D");
        assert_eq!(words.last().map(String::as_str), Some("DROP"));
        assert!(words.contains(&"proctor:6b07-123-abc".to_string()));
        assert!(shell_words("-A INPUT -m comment --comment \"x y\" -j ACCEPT").is_none());
        assert_eq!(bridge_of("0123456789abcdef"), "br-0123456789ab");
    }
}
