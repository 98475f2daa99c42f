//! The module map of docs/architecture.md, checked: every top-level module of `src/` sits on a
//! layer, and a module may only use modules on lower layers (so data flows one way and no two
//! modules import each other). bollard, the engine's API, is used only under `src/sandbox/`.
//! The check reads `crate::` paths in the source, comments left out; it runs in milliseconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. Keep in step with docs/architecture.md.
const LAYERS: &[&[&str]] = &[
    &["check", "verdict", "digest", "http", "exit", "dockerfile"],
    &[
        "score",
        "prerequisite",
        "expect",
        "data",
        "intake",
        "load",
        "review",
        "control",
    ],
    &["report", "probe"],
    &["events", "grader"],
    &["sandbox", "plan", "target", "progress", "kit"],
    &["phases", "gc"],
    &["pipeline"],
    &["doctor", "batch"],
    &["cli"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| {
            panic!("src/{module} is on no layer: add it to LAYERS and to docs/architecture.md")
        })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal is rare in this code base; a URL in a string would
            // only hide the rest of its own line.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// (module, file) for every file under src/, with the modules it uses through `crate::`.
fn uses() -> Vec<(String, PathBuf, Vec<String>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let mut used: Vec<String> = code
            .match_indices("crate::")
            .map(|(i, _)| {
                code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect::<String>()
            })
            .filter(|m| !m.is_empty() && *m != module)
            .collect();
        used.sort();
        used.dedup();
        out.push((module, f, used));
    }
    out
}

#[test]
fn modules_only_use_modules_below_them() {
    let mut wrong = BTreeMap::new();
    for (module, file, used) in uses() {
        let mine = layer_of(&module);
        for u in used {
            if layer_of(&u) >= mine {
                wrong
                    .entry(format!("{} uses crate::{u}", file.display()))
                    .or_insert(());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the module map (docs/architecture.md):\n{}",
        wrong.keys().cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn only_the_sandbox_speaks_to_the_engine() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let outside: Vec<_> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("sandbox")))
        .filter(|f| {
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            code.contains("bollard::") || code.contains("use bollard")
        })
        .collect();
    assert!(
        outside.is_empty(),
        "bollard used outside src/sandbox/: {outside:?}"
    );
}

#[test]
fn the_check_itself_catches_a_back_edge() {
    // The same reading as above, on a made-up file: a low module using a high one is caught.
    let code = code_of("use crate::pipeline::grade; // crate::cli in a comment is ignored\n");
    assert!(code.contains("crate::pipeline"));
    assert!(!code.contains("crate::cli"));
    assert!(layer_of("pipeline") >= layer_of("report"));
}
