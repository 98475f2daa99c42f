//! Static code-review aids over the vetted build context: what a reviewer would look at first,
//! measured the same way for every submission. Pure functions over bytes in memory: nothing here
//! talks to Docker, runs a program or reads the filesystem, so the candidate's files are only
//! ever read as data.
//!
//! `review` takes the context's canonical tar and its Dockerfile (`intake::BuildContext`'s `tar`
//! and `dockerfile`) and returns plain data, serialisable into the report:
//!
//! - `files`: the tar read back into (path, bytes), bounded (`files::Limits`);
//! - `structure`: files, Python modules, lines of code per language, the largest Python
//!   function, the tests and the test-to-code ratio;
//! - `dockerfile`: six named practice rules, each pass, fail or not applicable;
//! - `readme`: is there a README, does it have run notes and design notes;
//! - `large_files`: files over a size threshold, binary files;
//! - `secrets`: secret-like strings, by kind, file and line, never the value.
//!
//! `lint` is apart: a Python linter runs elsewhere, in a container; `lint::LintSummary` parses
//! what it printed.
//!
//! The review sees what the builder sees: files that `.dockerignore` leaves out (often the
//! README, notebooks, data) are not in the context and so not reviewed.

pub mod dockerfile;
pub mod files;
pub mod large_files;
pub mod lint;
pub mod readme;
pub mod secrets;
pub mod structure;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use dockerfile::{ContextFacts, Finding, Rule, Status};
pub use files::Limits;
pub use large_files::{BinaryFile, BinaryReason, LargeFiles, SizedFile};
pub use lint::LintSummary;
pub use readme::{DesignTopic, Readme, RunSignal};
pub use secrets::{SecretFinding, SecretKind, SecretScan};
pub use structure::{FunctionSize, LanguageLines, Structure};

/// Everything the review found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Review {
    pub structure: Structure,
    /// One finding per `dockerfile::Rule`, in `Rule::ALL` order.
    pub dockerfile: Vec<Finding>,
    pub readme: Readme,
    pub large_files: LargeFiles,
    pub secrets: SecretScan,
    /// What the review could not look at: a damaged archive, files past the limits, a README
    /// that may have been left out by `.dockerignore`.
    pub notes: Vec<String>,
}

/// What `review_with` may be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub limits: Limits,
    /// Files larger than this are listed as large.
    pub large_file_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            large_file_bytes: large_files::DEFAULT_THRESHOLD_BYTES,
        }
    }
}

/// Reviews a build context: its canonical tar and its Dockerfile's text.
pub fn review(tar: &[u8], dockerfile: &str) -> Review {
    review_with(tar, dockerfile, &Options::default())
}

/// `review` with other limits and thresholds.
pub fn review_with(tar: &[u8], dockerfile: &str, options: &Options) -> Review {
    let files = files::read_tar(tar, &options.limits);
    let readme = readme::analyse(&files);
    let has_dockerignore = files.get(".dockerignore").is_some();
    let facts = ContextFacts {
        has_dockerignore,
        readme_documents_probe: readme.documents_probe,
    };
    let mut notes = Vec::new();
    if let Some(e) = &files.error {
        notes.push(format!("the archive could not be read to its end: {e}"));
    }
    if files.not_listed > 0 {
        notes.push(format!(
            "{} files past the first {} were counted, not reviewed",
            files.not_listed, options.limits.max_files
        ));
    }
    let unread = files.files.iter().filter(|f| !f.complete).count();
    if unread > 0 {
        notes.push(format!(
            "{unread} files larger than the text limit ({} bytes) or past the read budget were \
             sized, not read",
            options.limits.max_text_bytes
        ));
    }
    if readme.path.is_none() && has_dockerignore {
        notes.push(
            "no README in the build context; a README that .dockerignore excludes is not seen"
                .to_string(),
        );
    }
    Review {
        structure: structure::analyse(&files),
        dockerfile: dockerfile::findings(dockerfile, &facts),
        readme,
        large_files: large_files::analyse(&files, options.large_file_bytes),
        secrets: secrets::scan(&files),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::files::test_support::{reference_tar, tar_of};
    use super::*;

    fn status(r: &Review, rule: Rule) -> Status {
        r.dockerfile.iter().find(|f| f.rule == rule).unwrap().status
    }

    #[test]
    fn the_reference_submission() {
        let dockerfile = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/submissions/reference/Dockerfile"),
        )
        .unwrap();
        let r = review(&reference_tar(), &dockerfile);
        assert_eq!(status(&r, Rule::NonRootUser), Status::Pass);
        assert_eq!(status(&r, Rule::PinnedBase), Status::Pass);
        assert_eq!(status(&r, Rule::Dockerignore), Status::Pass);
        // It copies the context and trains; it installs nothing at build time.
        assert_eq!(
            status(&r, Rule::DependenciesBeforeCopy),
            Status::NotApplicable
        );
        assert_eq!(status(&r, Rule::NoSecretsInEnv), Status::Pass);
        assert!(r.secrets.findings.is_empty(), "{:?}", r.secrets);
        assert!(r.secrets.files_scanned >= 10);
        assert!(r.readme.run_notes);
        assert!(r.readme.design_notes);
        assert!(r.structure.python_modules >= 5);
        assert!(r.large_files.binary.is_empty());
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn a_bad_submission_fails_every_dockerfile_rule() {
        let dockerfile = "FROM python:latest\nCOPY . /app\nENV OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz123456\nRUN pip install -r /app/requirements.txt\nCMD python /app/serve.py\n";
        let tar = tar_of(&[
            ("Dockerfile", dockerfile.as_bytes()),
            ("serve.py", b"print('serving')\n"),
        ]);
        let r = review(&tar, dockerfile);
        for f in &r.dockerfile {
            assert_eq!(f.status, Status::Fail, "{f:?}");
        }
        assert_eq!(r.readme.path, None);
        assert!(!r.readme.run_notes);
    }

    #[test]
    fn no_secret_value_reaches_the_review() {
        let key = "sk-abcdefghijklmnopqrstuvwxyz123456";
        let pat = format!("ghp_{}", "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8");
        let dockerfile = format!("FROM python:3.11\nENV OPENAI_API_KEY={key}\n");
        let settings = format!("GITHUB = '{pat}'\nopenai_api_key = \"{key}\"\n");
        let tar = tar_of(&[
            ("Dockerfile", dockerfile.as_bytes()),
            ("settings.py", settings.as_bytes()),
        ]);
        let r = review(&tar, &dockerfile);
        assert_eq!(status(&r, Rule::NoSecretsInEnv), Status::Fail);
        // Both lines of settings.py (the Dockerfile's ENV is the Dockerfile rule's to report).
        assert_eq!(r.secrets.findings.len(), 2, "{:?}", r.secrets);
        let debug = format!("{r:?}");
        let json = serde_json::to_string(&r).unwrap();
        for v in [key, pat.as_str()] {
            assert!(!debug.contains(v) && !json.contains(v));
        }
    }

    #[test]
    fn a_missing_readme_is_noted_when_dockerignore_could_hide_it() {
        let tar = tar_of(&[
            ("Dockerfile", b"FROM x:1\n"),
            (".dockerignore", b"README.md\n"),
        ]);
        let r = review(&tar, "FROM x:1\n");
        assert!(
            r.notes.iter().any(|n| n.contains(".dockerignore")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn a_damaged_archive_gives_a_review_with_a_note() {
        let r = review(
            b"not a tar at all, but long enough to be read as a header?",
            "FROM x:1",
        );
        assert!(r.structure.files == 0);
        assert!(!r.notes.is_empty());
    }

    #[test]
    fn the_review_round_trips_through_json_and_has_a_schema() {
        let r = review(
            &reference_tar(),
            "FROM proctor/python-ml:3.11\nUSER 65534\n",
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: Review = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let schema = serde_json::to_value(schemars::schema_for!(Review)).unwrap();
        assert!(schema["properties"]["dockerfile"].is_object());
        assert!(json.contains("\"rule\":\"non_root_user\""));
    }
}
