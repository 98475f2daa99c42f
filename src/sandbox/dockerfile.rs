//! Reads the submission's Dockerfile before anything is built, to refuse what the build sandbox
//! cannot stop by itself: a base image outside the grader's allowlist (the engine would try to
//! pull it, or use any image on the machine), `ADD <url>` (the classic builder's network-off
//! mode does not cover it), and `COPY --from=<image>` naming an image rather than a stage.

use std::collections::HashMap;

use crate::dockerfile::{expand, instructions};

/// A rule the Dockerfile breaks; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub line: usize,
    pub verdict: crate::verdict::Verdict,
    pub message: String,
}

/// `python:3.11` and `docker.io/library/python:3.11` are the same image; no tag means `latest`.
pub fn normalize_image(name: &str) -> String {
    let mut n = name.trim().to_string();
    for prefix in [
        "docker.io/library/",
        "docker.io/",
        "index.docker.io/library/",
        "index.docker.io/",
    ] {
        if let Some(rest) = n.strip_prefix(prefix) {
            n = rest.to_string();
            break;
        }
    }
    if let Some(rest) = n.strip_prefix("library/") {
        n = rest.to_string();
    }
    let last = n.rsplit('/').next().unwrap_or(&n);
    if !last.contains(':') && !n.contains('@') {
        n.push_str(":latest");
    }
    n
}

/// The images a Dockerfile builds FROM (stage references excluded), or every rule it breaks.
pub fn check(text: &str, allowed: &[String]) -> Result<Vec<String>, Vec<Violation>> {
    let allowed: Vec<String> = allowed.iter().map(|a| normalize_image(a)).collect();
    let mut violations = Vec::new();
    let mut bases = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut global_args: HashMap<String, String> = HashMap::new();
    let mut seen_from = false;
    let allowed_list = || allowed.join(", ");
    for ins in instructions(text) {
        match ins.keyword.as_str() {
            "ARG" if !seen_from => {
                for decl in ins.args.split_whitespace() {
                    if let Some((k, v)) = decl.split_once('=') {
                        global_args.insert(k.to_string(), v.trim_matches('"').to_string());
                    }
                }
            }
            "FROM" => {
                seen_from = true;
                let words: Vec<&str> = ins
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some(image) = words.first() else {
                    violations.push(Violation {
                        line: ins.line as usize,
                        verdict: crate::verdict::Verdict::DockerfileInvalid,
                        message: "FROM without an image".into(),
                    });
                    continue;
                };
                if words.len() >= 3 && words[1].eq_ignore_ascii_case("as") {
                    stages.push(words[2].to_ascii_lowercase());
                } else {
                    stages.push(String::new());
                }
                let Some(image) = expand(image, &global_args) else {
                    violations.push(Violation {
                        line: ins.line as usize,
                        verdict: crate::verdict::Verdict::BaseImageNotAllowed,
                        message: format!("FROM {image} uses a build argument without a default; name the base image directly (allowed: {})", allowed_list()),
                    });
                    continue;
                };
                let earlier_stage = stages[..stages.len() - 1]
                    .iter()
                    .any(|s| !s.is_empty() && s.eq_ignore_ascii_case(&image));
                if earlier_stage {
                    continue;
                }
                let norm = normalize_image(&image);
                if allowed.contains(&norm) {
                    bases.push(image.to_string());
                } else {
                    violations.push(Violation {
                        line: ins.line as usize,
                        verdict: crate::verdict::Verdict::BaseImageNotAllowed,
                        message: format!(
                            "base image {image} is not allowed; use one of: {}",
                            allowed_list()
                        ),
                    });
                }
            }
            "ADD" => {
                let url = ins
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .find(|w| is_remote(w));
                if let Some(url) = url {
                    violations.push(Violation {
                        line: ins.line as usize,
                        verdict: crate::verdict::Verdict::NetworkAccess,
                        message: format!("ADD {url} downloads at build time; builds have no network, put the file in the submission"),
                    });
                }
            }
            "COPY" => {
                let from = ins
                    .args
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("--from="));
                if let Some(from) = from {
                    let is_stage = from.parse::<usize>().is_ok()
                        || stages.iter().any(|s| s.eq_ignore_ascii_case(from));
                    if !is_stage && !allowed.contains(&normalize_image(from)) {
                        violations.push(Violation {
                            line: ins.line as usize,
                            verdict: crate::verdict::Verdict::BaseImageNotAllowed,
                            message: format!("COPY --from={from} names an image that is not allowed; use one of: {}", allowed_list()),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_from {
        violations.push(Violation {
            line: 1,
            verdict: crate::verdict::Verdict::DockerfileInvalid,
            message: "the Dockerfile has no FROM instruction".into(),
        });
    }
    if violations.is_empty() {
        Ok(bases)
    } else {
        Err(violations)
    }
}

fn is_remote(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://")
        || l.starts_with("https://")
        || l.starts_with("git@")
        || l.starts_with("ftp://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["proctor/python-ml:3.11".to_string()]
    }

    #[test]
    fn allowed_base_passes_and_is_reported() {
        let bases = check("FROM proctor/python-ml:3.11\nCOPY . /app\n", &allowed()).unwrap();
        assert_eq!(bases, ["proctor/python-ml:3.11"]);
    }

    #[test]
    fn other_base_is_refused_with_line() {
        let v = check("# comment\n\nFROM python:3.12\n", &allowed()).unwrap_err();
        assert_eq!(v[0].line, 3);
        assert_eq!(v[0].verdict.as_str(), "base_image_not_allowed");
        assert!(
            v[0].message.contains("python:3.12") && v[0].message.contains("proctor/python-ml:3.11")
        );
    }

    #[test]
    fn stages_may_build_from_each_other() {
        let df = "FROM proctor/python-ml:3.11 AS train\nRUN x\nFROM train\nCOPY --from=train /m /m\nCOPY --from=0 /a /a\n";
        assert!(check(df, &allowed()).is_ok());
    }

    #[test]
    fn copy_from_foreign_image_is_refused() {
        let v = check(
            "FROM proctor/python-ml:3.11\nCOPY --from=alpine:3 /bin/sh /sh\n",
            &allowed(),
        )
        .unwrap_err();
        assert_eq!(v[0].line, 2);
    }

    #[test]
    fn add_url_is_refused_even_across_continuations() {
        let v = check("FROM proctor/python-ml:3.11\nADD --chmod=644 \\\n  https://example.invalid/model.bin /m\n", &allowed()).unwrap_err();
        assert_eq!(v[0].verdict.as_str(), "network_access");
        assert_eq!(v[0].line, 2);
    }

    #[test]
    fn args_before_from_are_expanded_and_unknown_ones_refused() {
        assert!(check(
            "ARG BASE=proctor/python-ml:3.11\nFROM ${BASE}\n",
            &allowed()
        )
        .is_ok());
        let v = check("ARG BASE\nFROM $BASE\n", &allowed()).unwrap_err();
        assert!(v[0].message.contains("build argument"));
    }

    #[test]
    fn a_changed_escape_character_cannot_hide_a_second_from() {
        // With ` as the escape character, a trailing backslash continues nothing: the builder
        // starts a second stage FROM evil:1, and so must the check.
        let text = "# escape=`\nFROM proctor/python-ml:3.11\nRUN echo \\\nFROM evil:1\n";
        let err = check(text, &allowed()).unwrap_err();
        assert_eq!(err[0].line, 4, "{err:?}");
        assert!(err[0].message.contains("evil:1"), "{err:?}");
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_image("docker.io/library/python"), "python:latest");
        assert_eq!(
            normalize_image("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(normalize_image("a/b:1"), "a/b:1");
    }

    #[test]
    fn missing_from_is_invalid() {
        let v = check("RUN echo\n", &allowed()).unwrap_err();
        assert_eq!(v[0].verdict.as_str(), "dockerfile_invalid");
    }
}
