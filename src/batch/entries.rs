//! What a batch grades: the entries of a directory of submissions (each subdirectory, `.tar`,
//! `.tar.gz` or `.tgz`), or of a CSV manifest (`id,source,ref`).

use std::path::{Path, PathBuf};

use crate::pipeline::Source;

/// One submission of a batch.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Names its report files: letters, digits, `.`, `_` and `-` only.
    pub id: String,
    pub source: Source,
}

/// The entries of `path`: a directory of submissions, or a CSV manifest. Errors say which
/// entry or line is wrong.
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let entries = if path.is_dir() {
        of_directory(path)?
    } else if path.is_file() {
        of_manifest(path)?
    } else {
        return Err(format!("{} does not exist", path.display()));
    };
    if entries.is_empty() {
        return Err(format!("{} holds no submission", path.display()));
    }
    let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "{}: two submissions have the id {:?} (ids name the report files)",
            path.display(),
            w[0]
        ));
    }
    Ok(entries)
}

/// Each subdirectory and archive of `dir`, by name; hidden entries and other files are left out.
fn of_directory(dir: &Path) -> Result<Vec<Entry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for item in read {
        let item = item.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = item.path();
        let stem = if path.is_dir() {
            Some(name.as_str())
        } else {
            [".tar.gz", ".tgz", ".tar"]
                .iter()
                .find_map(|ext| name.strip_suffix(ext))
        };
        if let Some(stem) = stem {
            out.push(Entry {
                id: id_of(stem),
                source: Source::Submission(path),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A manifest: a CSV file with a header naming `id` and `source`, and optionally `ref`. A
/// source is a git URL, or a path (relative to the manifest's folder) to a directory, an
/// archive or, with a ref, a local repository.
fn of_manifest(path: &Path) -> Result<Vec<Entry>, String> {
    let at = |line: u64, what: String| format!("{}:{line}: {what}", path.display());
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("cannot read the manifest {}: {e}", path.display()))?;
    let headers = reader.headers().map_err(|e| at(1, e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(id_col), Some(source_col)) = (column("id"), column("source")) else {
        return Err(at(
            1,
            format!("the header must name the columns id and source (and optionally ref), not {headers:?}"),
        ));
    };
    let ref_col = column("ref");
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            at(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("").to_string();
        let (id, source) = (field(id_col), field(source_col));
        if id.is_empty() || source.is_empty() {
            return Err(at(line, "id and source must not be empty".into()));
        }
        if id_of(&id) != id {
            return Err(at(
                line,
                format!("id {id:?} may hold only letters, digits, '.', '_' and '-'"),
            ));
        }
        let rev = ref_col.map(field).filter(|r| !r.is_empty());
        let source = if crate::intake::is_git_source(&source) {
            Source::Git { url: source, rev }
        } else {
            let p: PathBuf = base.join(&source);
            match rev {
                Some(rev) => Source::Git {
                    url: p.display().to_string(),
                    rev: Some(rev),
                },
                None => Source::Submission(p),
            }
        };
        out.push(Entry { id, source });
    }
    Ok(out)
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
fn id_of(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_gives_its_subdirectories_and_archives_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["bob", "alice", ".git"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        for f in ["carol.tar.gz", "dave.tgz", "erin.tar", "notes.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let ids: Vec<String> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["alice", "bob", "carol", "dave", "erin"]);
    }

    #[test]
    fn a_manifest_names_sources_relative_to_itself_and_its_errors_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("round.csv");
        std::fs::write(
            &m,
            "id,source,ref\nalice,subs/alice,\nbob, https://git.example.com/bob.git ,main\ncarol,repo,v1\n",
        )
        .unwrap();
        let e = read(&m).unwrap();
        assert!(
            matches!(&e[0].source, Source::Submission(p) if p == &dir.path().join("subs/alice"))
        );
        assert!(
            matches!(&e[1].source, Source::Git { url, rev: Some(r) } if url == "https://git.example.com/bob.git" && r == "main")
        );
        assert!(matches!(&e[2].source, Source::Git { rev: Some(r), .. } if r == "v1"));

        std::fs::write(&m, "id,source\nalice,a\nbad id,b\n").unwrap();
        let err = read(&m).unwrap_err();
        assert!(
            err.contains("round.csv:3:") && err.contains("bad id"),
            "{err}"
        );
        std::fs::write(&m, "name,path\nalice,a\n").unwrap();
        assert!(read(&m).unwrap_err().contains("round.csv:1:"));
        std::fs::write(&m, "id,source\nalice,a\nalice,b\n").unwrap();
        assert!(read(&m).unwrap_err().contains("two submissions"));
    }
}
