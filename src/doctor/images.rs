//! The base images the graders allow: which graders (the repository's and those given) allow
//! which image, whether each is in the engine, and the command that builds a missing one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Check;
use crate::grader;
use crate::sandbox::session::{own_images, OWN_IMAGES};
use crate::sandbox::{system, Engine};

/// Base images proctor knows how to build locally, and the script that builds each; proctor's
/// own images (`session::OWN_IMAGES`) have theirs too.
const RECIPES: &[(&str, &str)] = &[
    ("proctor/python-ml:3.11", "docker/base/build.sh"),
    ("proctor/busybox:test", "docker/testbase/build.sh"),
];

/// Base images the graders under `root/graders` allow, each with the graders that allow it,
/// and a warning per grader file that cannot be read.
pub(super) fn repo_grader_images(root: &Path) -> (BTreeMap<String, Vec<String>>, Vec<Check>) {
    let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let dir = root.join("graders");
    let mut files = Vec::new();
    collect_toml(&dir, &mut files, 0);
    files.sort();
    for file in files {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        match grader_images(&file) {
            Ok(imgs) => {
                for img in imgs {
                    images.entry(img).or_default().push(shown.clone());
                }
            }
            Err(e) => problems.push(Check::warn(
                format!("grader {shown}"),
                format!("cannot be read, so its base images were not checked: {e}"),
                format!("fix the file (`proctor validate {}`)", file.display()),
            )),
        }
    }
    (images, problems)
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth < 4 => collect_toml(&path, out, depth + 1),
            Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == "toml") => out.push(path),
            _ => {}
        }
    }
}

/// The images one grader file needs: the base images it allows, proctor's review image when it
/// lints (`[review.lint]`), and proctor's yardstick when it calibrates (`[cost] calibrate`).
pub fn grader_images(path: &Path) -> Result<Vec<String>, grader::GraderError> {
    let text = std::fs::read_to_string(path).map_err(|source| grader::GraderError::Read {
        path: path.to_owned(),
        source,
    })?;
    let g = grader::parse(&text, path)?;
    let own = own_images(&g);
    let mut images = g.submission.allowed_base_images;
    images.extend(own.into_iter().map(|o| o.image.to_string()));
    Ok(images)
}

/// Every base image a grader allows must be in the engine: no image is ever pulled (builds have
/// no network and there is no registry), so a missing one makes every grade with that grader
/// an infrastructure error (`base_image_missing`).
pub(super) async fn image_checks(
    engine: &Engine,
    root: &Path,
    images: &BTreeMap<String, Vec<String>>,
) -> Vec<Check> {
    if images.is_empty() {
        return vec![Check::warn(
            "base images",
            format!(
                "no grader files found under {} and none given, so no base image was checked",
                root.join("graders").display()
            ),
            "pass the grader you will use: `proctor doctor --grader FILE`",
        )];
    }
    let mut out = Vec::new();
    for (image, by) in images {
        let name = format!("base image {image}");
        let used = format!("allowed by {}", by.join(", "));
        out.push(match system::find_image(engine, image).await {
            Ok(Some(i)) => {
                let id = i.id.as_deref().unwrap_or("");
                let id = id.strip_prefix("sha256:").unwrap_or(id);
                let size = i
                    .size
                    .map(|s| format!(", {} MB", s / 1_000_000))
                    .unwrap_or_default();
                Check::ok(
                    name,
                    format!("present ({}{size}; {used})", &id[..id.len().min(12)]),
                )
            }
            Ok(None) => Check::fail(
                name,
                format!("missing ({used}): every grade with that grader would fail"),
                build_fix(root, image),
            ),
            Err(e) => Check::fail(
                name,
                format!("could not be inspected: {e}"),
                "run `docker image inspect` on it to see what the engine says",
            ),
        });
    }
    out
}

/// The script of this repository that builds `image`, when proctor knows one.
pub fn recipe(image: &str) -> Option<&'static str> {
    RECIPES
        .iter()
        .copied()
        .chain(OWN_IMAGES.iter().map(|o| (o.image, o.script)))
        .find(|(i, _)| *i == image)
        .map(|(_, s)| s)
}

/// The exact command that builds a missing base image.
fn build_fix(root: &Path, image: &str) -> String {
    match recipe(image) {
        Some(script) => {
            let path = root.join(script);
            if path.is_file() {
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                let time = if image.starts_with("proctor/python-ml") {
                    " (as root; two to three minutes, once)"
                } else {
                    ""
                };
                format!("build it: `bash {}`{time}", path.display())
            } else {
                format!(
                    "build it with {script} from proctor's repository (there is no copy at {})",
                    path.display()
                )
            }
        }
        None => format!(
            "build or import {image} into this engine under exactly that tag (`docker build -t {image} DIR`, or `docker load`/`docker import` from a file): proctor uses no registry and never pulls"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_images_name_the_command_that_builds_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let own = OWN_IMAGES.iter().map(|o| (o.image, o.script));
        for (image, script) in RECIPES.iter().copied().chain(own) {
            let fix = build_fix(root, image);
            assert!(fix.contains(script), "{fix}");
            // The recipe must still build that tag by default.
            let text = std::fs::read_to_string(root.join(script)).unwrap();
            assert!(text.contains(image), "{script} no longer builds {image}");
        }
        let other = build_fix(root, "acme/ml:1");
        assert!(other.contains("no registry"), "{other}");
    }

    #[test]
    fn a_grader_needs_the_own_images_of_what_it_declares() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("graders/churn");
        // The hidden grader lints and calibrates; the public one does neither.
        let hidden = grader_images(&root.join("hidden.toml")).unwrap();
        for own in OWN_IMAGES {
            assert!(hidden.iter().any(|i| i == own.image), "{hidden:?}");
        }
        let public = grader_images(&root.join("public.toml")).unwrap();
        assert_eq!(public, ["proctor/python-ml:3.11"]);
    }

    #[test]
    fn the_repository_graders_are_found() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (images, problems) = repo_grader_images(root);
        assert!(problems.is_empty(), "{problems:?}");
        let by = &images["proctor/python-ml:3.11"];
        assert!(by.iter().any(|g| g.ends_with("public.toml")), "{by:?}");
    }
}
