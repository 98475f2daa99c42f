//! `proctor init`: a candidate's starter kit, written from an assignment folder.
//!
//! What a candidate receives is, by the layout's convention, everything under
//! `assignments/<name>/` (brief, contract, schema, public data) and the public grader
//! `graders/<name>/public.toml` with the files it sends or reads (request bodies, public
//! datasets). Nothing else of `graders/` is copied: the hidden grader, its data and generator
//! stay behind. The kit keeps the repository's layout, so the public grader's relative paths
//! hold as they are, and adds a skeleton submission (a Dockerfile on the allowed base image and
//! a service that only answers the readiness probe) and a README that says how to self-test.
//!
//! Every file copied is listed with its source, so a test can prove that no hidden file is in
//! a kit.

use std::path::{Path, PathBuf};

use crate::grader::Grader;

/// What `init` wrote.
#[derive(Debug)]
pub struct Kit {
    pub dir: PathBuf,
    /// (source, path in the kit) of every file copied.
    pub copied: Vec<(PathBuf, PathBuf)>,
    /// Files written from nothing (the skeleton, the README).
    pub written: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KitError + 'a {
    move |source| KitError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the kit of assignment `name` (found under `root`) into `dir`, which must not exist or
/// be empty.
pub fn init(root: &Path, name: &str, dir: &Path) -> Result<Kit, KitError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(KitError::Usage(format!(
            "{name:?} is not an assignment name (letters, digits, - and _)"
        )));
    }
    let assignment = root.join("assignments").join(name);
    let public = root.join("graders").join(name).join("public.toml");
    if !assignment.is_dir() {
        let known: Vec<String> = std::fs::read_dir(root.join("assignments"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(KitError::Usage(format!(
            "no assignment {name:?} under {} (known: {}); give the folder that holds \
             assignments/ and graders/ with --root",
            root.join("assignments").display(),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        )));
    }
    if !public.is_file() {
        return Err(KitError::Usage(format!(
            "assignment {name:?} has no public grader at {}",
            public.display()
        )));
    }
    let grader = crate::grader::load(&public).map_err(|e| KitError::Usage(e.to_string()))?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io("read", dir))?
            .next()
            .is_some()
    {
        return Err(KitError::Usage(format!(
            "{} exists and is not empty: give a new folder",
            dir.display()
        )));
    }

    // What the kit holds: the assignment folder, the public grader and what it references.
    let mut sources: Vec<PathBuf> = Vec::new();
    walk(&assignment, &mut sources).map_err(io("read", &assignment))?;
    sources.push(public.clone());
    let hidden_data = root.join("graders").join(name).join("data");
    for file in referenced(&grader.grader, public.parent().unwrap_or(Path::new("."))) {
        let file = normalize(&file);
        if file.starts_with(normalize(&hidden_data)) {
            return Err(KitError::Usage(format!(
                "the public grader reads {}, under the hidden data folder {}: move the public \
                 data under assignments/{name}/",
                file.display(),
                hidden_data.display()
            )));
        }
        if !file.starts_with(normalize(root)) {
            return Err(KitError::Usage(format!(
                "the public grader reads {}, outside {}",
                file.display(),
                root.display()
            )));
        }
        if !sources.contains(&file) {
            sources.push(file);
        }
    }
    let mut kit = Kit {
        dir: dir.to_path_buf(),
        copied: Vec::new(),
        written: Vec::new(),
    };
    let root = normalize(root);
    for src in sources {
        let src = normalize(&src);
        let rel = src.strip_prefix(&root).unwrap_or(&src).to_path_buf();
        let dest = dir.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::copy(&src, &dest).map_err(io("copy", &src))?;
        kit.copied.push((src, dest));
    }
    let sub = dir.join("submission");
    std::fs::create_dir_all(&sub).map_err(io("create", &sub))?;
    let g = &grader.grader;
    let base = g
        .submission
        .allowed_base_images
        .first()
        .cloned()
        .unwrap_or_default();
    for (file, text) in [
        ("Dockerfile", dockerfile(&base, g.submission.port)),
        ("app.py", skeleton(g)),
        (".dockerignore", "*.pyc\n__pycache__/\n".to_string()),
    ] {
        let path = sub.join(file);
        std::fs::write(&path, text).map_err(io("write", &path))?;
        kit.written.push(path);
    }
    let readme = dir.join("README.md");
    std::fs::write(&readme, readme_of(name, g)).map_err(io("write", &readme))?;
    kit.written.push(readme);
    Ok(kit)
}

/// Every regular file under `dir`, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// `a/b/../c` as `a/c`, without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The files a grader reads besides itself: its datasets and schemas, and the bodies of its
/// checks, relative to its folder.
fn referenced(g: &Grader, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = g
        .dataset
        .iter()
        .flat_map(|d| [dir.join(&d.csv), dir.join(&d.schema)])
        .collect();
    for (_, checks) in g.check_lists() {
        out.extend(
            checks
                .iter()
                .filter_map(|c| c.body_file.as_ref().map(|f| dir.join(f))),
        );
    }
    out
}

fn dockerfile(base: &str, port: u16) -> String {
    format!(
        "# A skeleton: replace app.py with your service. Builds have no network, so everything\n\
         # the service needs must come from the base image or from this folder.\n\
         FROM {base}\n\
         WORKDIR /app\n\
         COPY . .\n\
         # The grader runs the service as an unprivileged user with a read-only root and a\n\
         # writable /tmp.\n\
         USER 65534:65534\n\
         EXPOSE {port}\n\
         CMD [\"python3\", \"app.py\"]\n"
    )
}

/// A service that answers the readiness probe as the public grader expects it, and 501 to
/// everything else: it builds and runs, and grades low.
fn skeleton(g: &Grader) -> String {
    let r = &g.readiness;
    let status = if r.status.accepts(200) {
        200
    } else {
        r.status.0[0]
    };
    // The readiness answer: every `equals` of the probe's JSON assertions at its pointer.
    let mut body = serde_json::Value::Object(Default::default());
    for a in &r.json {
        if let Some(v) = a.equals.as_ref().and_then(|v| serde_json::to_value(v).ok()) {
            set_pointer(&mut body, &a.pointer, v);
        }
    }
    format!(
        r#""""A skeleton of the service: it answers the readiness probe and nothing else.

Replace it with your service; the assignment's contract (../assignments/) says what every route
must do. Self-test with the public grader, as the kit's README says.
"""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = {port}
READY_PATH = {path}
READY_STATUS = {status}
READY_BODY = {body}


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == READY_PATH:
            self._answer(READY_STATUS, READY_BODY)
        else:
            self._answer(501, {{"error": "not implemented yet"}})

    def do_POST(self):
        self._answer(501, {{"error": "not implemented yet"}})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
"#,
        port = g.submission.port,
        path = serde_json::to_string(&r.path.0).expect("a string"),
        body = python_literal(&body),
    )
}

/// A JSON value as a Python literal (`true` → `True`, `null` → `None`).
fn python_literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::Array(xs) => {
            format!(
                "[{}]",
                xs.iter().map(python_literal).collect::<Vec<_>>().join(", ")
            )
        }
        serde_json::Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    serde_json::to_string(k).expect("a string"),
                    python_literal(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Sets `v` at a plain JSON Pointer (object keys only), creating objects on the way.
fn set_pointer(root: &mut serde_json::Value, pointer: &str, v: serde_json::Value) {
    let keys: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, path)) = keys.split_last() else {
        *root = v;
        return;
    };
    let mut at = root;
    for k in path {
        if !at.is_object() {
            *at = serde_json::Value::Object(Default::default());
        }
        at = at
            .as_object_mut()
            .expect("an object")
            .entry(k.clone())
            .or_insert(serde_json::Value::Object(Default::default()));
    }
    if let Some(m) = at.as_object_mut() {
        m.insert(last.clone(), v);
    }
}

fn readme_of(name: &str, g: &Grader) -> String {
    let bases = g.submission.allowed_base_images.join(", ");
    format!(
        "# Starter kit: the {name} assignment\n\n\
         - `assignments/{name}/`: the brief (README.md), the API contract (contract.md), the \
         feature schema and the public data.\n\
         - `graders/{name}/public.toml`: the public grader, with what it sends. The final grade \
         also holds checks you do not have.\n\
         - `submission/`: a skeleton that builds and answers the readiness probe only. Replace \
         it with your service.\n\n\
         ## Rules of the sandbox\n\n\
         - The image must be built `FROM` one of: {bases}. Nothing can be pulled, and the build \
         has no network: everything the service needs comes from the base image or your folder.\n\
         - The service listens on port {port}, runs as an unprivileged user with a read-only root \
         file system and a small writable `/tmp`, without network access.\n\n\
         ## Self-test\n\n\
         With proctor and a Docker engine (see proctor's README for the base image):\n\n\
         ```sh\n\
         proctor grade submission --grader graders/{name}/public.toml --html report.html\n\
         ```\n\n\
         Or, against a service you run yourself on port {port}:\n\n\
         ```sh\n\
         proctor grade --url http://127.0.0.1:{port} --grader graders/{name}/public.toml\n\
         ```\n\n\
         `proctor grade --help` lists the options. The report says which checks passed, which \
         lost points and why; the skeleton scores low, as it should.\n",
        port = g.submission.port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn a_kit_copies_what_a_candidate_may_have_and_nothing_hidden() {
        let tmp = tempfile::tempdir().unwrap();
        let kit = init(&repo(), "churn", &tmp.path().join("kit")).unwrap();
        let graders = repo().join("graders/churn");
        for (src, _) in &kit.copied {
            let public = src.starts_with(repo().join("assignments/churn"))
                || src == &graders.join("public.toml")
                || src.starts_with(graders.join("bodies"));
            assert!(public, "{} is not the candidate's", src.display());
            assert!(!src.starts_with(graders.join("data")), "{}", src.display());
        }
        assert!(kit.dir.join("graders/churn/public.toml").is_file());
        assert!(!kit.dir.join("graders/churn/hidden.toml").exists());
        assert!(kit
            .dir
            .join("assignments/churn/data/validation.csv")
            .is_file());
        // The kit's public grader loads where it lies: its relative paths hold.
        crate::grader::load(&kit.dir.join("graders/churn/public.toml")).unwrap();
        let app = std::fs::read_to_string(kit.dir.join("submission/app.py")).unwrap();
        assert!(app.contains(r#"READY_PATH = "/v1/models/churn""#), "{app}");
        assert!(app.contains(r#"READY_BODY = {"ready": True}"#), "{app}");
        let docker = std::fs::read_to_string(kit.dir.join("submission/Dockerfile")).unwrap();
        assert!(
            docker.starts_with("# A skeleton") && docker.contains("FROM proctor/python-ml:3.11")
        );
    }

    #[test]
    fn a_bad_name_or_a_used_folder_is_refused_and_nothing_written() {
        let tmp = tempfile::tempdir().unwrap();
        let err = init(&repo(), "nope", &tmp.path().join("k")).unwrap_err();
        assert!(err.to_string().contains("no assignment \"nope\""), "{err}");
        assert!(err.to_string().contains("churn"), "{err}");
        assert!(!tmp.path().join("k").exists());
        assert!(init(&repo(), "../graders", &tmp.path().join("k")).is_err());
        std::fs::write(tmp.path().join("x"), "").unwrap();
        let err = init(&repo(), "churn", tmp.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}
