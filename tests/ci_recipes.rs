//! The CI recipes of docs/ci.md and the scale recipes of docs/scale.md: each YAML block parses,
//! and every `proctor` command in them names a command and options that this proctor has (read
//! off its `--help`), so a recipe cannot drift from the command line unnoticed. No Docker
//! needed.

use std::collections::BTreeSet;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ci.md")).unwrap()
}

fn scale_doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scale.md")).unwrap()
}

/// Every proctor invocation of a YAML recipe, and how many YAML documents it holds, after
/// checking that it parses and that each invocation names options its command has.
fn checked_calls(i: usize, block: &str) -> (usize, Vec<(String, Vec<String>)>) {
    let docs = YamlLoader::load_from_str(block)
        .unwrap_or_else(|e| panic!("recipe {i} is not valid YAML: {e}\n{block}"));
    let mut all = Vec::new();
    for d in &docs {
        strings(d, &mut all);
    }
    let calls: Vec<_> = all.iter().flat_map(|s| invocations(s)).collect();
    for (cmd, options) in &calls {
        let known = options_of(cmd);
        for o in options {
            assert!(
                known.contains(o),
                "recipe {i}: `proctor {cmd}` has no option {o} (it has {known:?})"
            );
        }
    }
    (docs.len(), calls)
}

#[test]
fn every_scale_recipe_grades_a_shard_and_the_ci_ones_merge() {
    let blocks = yaml_blocks(&scale_doc());
    assert_eq!(
        blocks.len(),
        3,
        "GitHub Actions, GitLab CI and Kubernetes recipes"
    );
    for (i, block) in blocks.iter().enumerate() {
        let (_, calls) = checked_calls(i, block);
        let batches: Vec<_> = calls.iter().filter(|(c, _)| c == "batch").collect();
        assert_eq!(batches.len(), 1, "recipe {i}: {calls:?}");
        for o in ["--grader", "--shard", "--seed", "--out-dir"] {
            assert!(batches[0].1.iter().any(|x| x == o), "recipe {i} lacks {o}");
        }
        // The CI recipes merge in a last job; the Kubernetes one says how to.
        if i < 2 {
            assert!(
                calls.iter().any(|(c, _)| c == "merge"),
                "recipe {i}: {calls:?}"
            );
        }
    }
}

/// The fenced ```yaml blocks of a Markdown text.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Every string scalar in a YAML document, keys included.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

/// The proctor invocations in a shell snippet: (command, options), line continuations joined.
fn invocations(script: &str) -> Vec<(String, Vec<String>)> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            // `proctor`, or `"$(command -v proctor)"` as sudo needs it; not `--path proctor`.
            let previous = if i > 0 { words[i - 1] } else { "" };
            let bare = *w == "proctor" && previous != "--path";
            if !bare && !w.ends_with("proctor)\"") {
                continue;
            }
            let Some(cmd) = words.get(i + 1) else {
                continue;
            };
            let options = words[i + 2..]
                .iter()
                .filter(|a| a.starts_with("--"))
                .map(|a| a.split('=').next().unwrap().to_string())
                .collect();
            found.push((cmd.to_string(), options));
        }
    }
    found
}

/// The options `proctor CMD --help` lists.
fn options_of(cmd: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_proctor"))
        .args([cmd, "--help"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`proctor {cmd} --help` failed: is `{cmd}` a command? {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(',').to_string())
        .collect()
}

#[test]
fn every_recipe_parses_and_names_commands_and_options_that_exist() {
    let blocks = yaml_blocks(&doc());
    assert_eq!(blocks.len(), 2, "a GitHub Actions and a GitLab CI recipe");
    for (i, block) in blocks.iter().enumerate() {
        let (docs, calls) = checked_calls(i, block);
        assert_eq!(docs, 1);
        let grades: Vec<_> = calls.iter().filter(|(c, _)| c == "grade").collect();
        assert_eq!(grades.len(), 1, "recipe {i}: {calls:?}");
        // What the recipes promise: a minimum score, the views a CI page shows, and a
        // report kept also when the job fails.
        let (_, options) = grades[0];
        for o in ["--grader", "--min-score", "--html", "--junit", "--markdown"] {
            assert!(options.iter().any(|x| x == o), "recipe {i} lacks {o}");
        }
        assert!(
            block.contains("always"),
            "recipe {i} must keep its artifacts when the job fails"
        );
    }
}

#[test]
fn the_invocation_reader_sees_options_across_continued_lines() {
    let calls = invocations(
        "cargo install --locked --path proctor\n\
         sudo \"$(command -v proctor)\" grade submission \\\n  --grader g.toml --min-score=70\n",
    );
    assert_eq!(
        calls,
        vec![(
            "grade".to_string(),
            vec!["--grader".to_string(), "--min-score".to_string()]
        )]
    );
}
