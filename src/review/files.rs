//! The build context's files, read back from its canonical tar into memory for the other review
//! aids. Only regular files are kept: directories add nothing to read, and a symlink is never
//! followed (intake has already checked that it stays inside the tree). Everything is bounded,
//! because the context is the candidate's: a file past `Limits::max_text_bytes` keeps only its
//! first bytes (enough to tell a binary from text) and is counted, not analysed as text; past
//! `Limits::max_files` or `Limits::max_read_bytes` the rest is only counted.

use std::io::Read;

/// How much of the context the review reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this are not read for text analysis (structure, secrets, README), only
    /// counted and sized.
    pub max_text_bytes: u64,
    /// Bytes read into memory over all files together; the files after that keep only their head.
    pub max_read_bytes: u64,
    /// Regular files listed; the rest of the archive is counted as `Files::not_listed`.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_bytes: 2 * 1024 * 1024,
            max_read_bytes: 128 * 1024 * 1024,
            max_files: 50_000,
        }
    }
}

/// Bytes kept of a file that is not read whole: what binary sniffing looks at (as `git` and
/// `file` do, a NUL byte in the first 8 KiB marks a binary).
pub const HEAD_BYTES: usize = 8 * 1024;

/// One regular file of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the context root, `/`-separated, without a leading `./`.
    pub path: String,
    /// Size recorded in the archive.
    pub size: u64,
    /// The whole content when `complete`, otherwise at most the first `HEAD_BYTES`.
    pub data: Vec<u8>,
    pub complete: bool,
}

impl File {
    /// The content as text, when the file was read whole, holds no NUL byte in its head and is
    /// valid UTF-8. Everything that analyses text goes through here, so a binary or an oversized
    /// file is never scanned line by line.
    pub fn text(&self) -> Option<&str> {
        if !self.complete || self.looks_binary() {
            return None;
        }
        std::str::from_utf8(&self.data).ok()
    }

    /// A NUL byte in the first `HEAD_BYTES`.
    pub fn looks_binary(&self) -> bool {
        let head = &self.data[..self.data.len().min(HEAD_BYTES)];
        head.contains(&0)
    }

    /// The last path component.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The lower-cased extension of the file name, without the dot (`""` when there is none;
    /// a leading dot, as in `.dockerignore`, is part of the name, not an extension).
    pub fn extension(&self) -> String {
        extension_of(self.name())
    }
}

pub(super) fn extension_of(name: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => name[i + 1..].to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The files of a context, in archive order (the canonical tar is sorted by path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    pub files: Vec<File>,
    /// Regular files past `Limits::max_files`: counted, not listed.
    pub not_listed: u64,
    /// Why reading stopped early, when it did (a damaged archive).
    pub error: Option<String>,
}

impl Files {
    /// The file at this exact path.
    pub fn get(&self, path: &str) -> Option<&File> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Reads the regular files of a tar held in memory.
pub fn read_tar(tar: &[u8], limits: &Limits) -> Files {
    let mut out = Files::default();
    let mut archive = tar::Archive::new(tar);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            out.error = Some(format!("unreadable archive: {e}"));
            return out;
        }
    };
    let mut read_so_far: u64 = 0;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.error = Some(format!("unreadable archive entry: {e}"));
                break;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if out.files.len() >= limits.max_files {
            out.not_listed += 1;
            continue;
        }
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        if path.is_empty() {
            continue;
        }
        let size = entry.size();
        let complete = size <= limits.max_text_bytes
            && read_so_far.saturating_add(size) <= limits.max_read_bytes;
        let want = if complete { size } else { HEAD_BYTES as u64 };
        let mut data = Vec::with_capacity(want.min(size) as usize);
        if let Err(e) = (&mut entry).take(want).read_to_end(&mut data) {
            out.error = Some(format!("unreadable archive entry {path}: {e}"));
            break;
        }
        read_so_far += data.len() as u64;
        out.files.push(File {
            path,
            size,
            data,
            complete,
        });
    }
    out
}

/// `./a/b` and `a/b` name the same file; the canonical tar writes the second form.
fn normalize(path: &str) -> String {
    let mut p = path;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p.trim_start_matches('/').to_string()
}

/// Tars built in memory for the unit tests of the review.
#[cfg(test)]
pub(super) mod test_support {
    /// A tar of regular files, with a directory entry for each parent (as the canonical tar has).
    pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut dirs = std::collections::BTreeSet::new();
        for (path, _) in files {
            let mut acc = String::new();
            for part in path
                .split('/')
                .collect::<Vec<_>>()
                .iter()
                .rev()
                .skip(1)
                .rev()
            {
                acc.push_str(part);
                acc.push('/');
                dirs.insert(acc.clone());
            }
        }
        for d in dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, d, std::io::empty()).unwrap();
        }
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// The reference submission of the fixtures, as a tar of all its files.
    pub fn reference_tar() -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/submissions/reference");
        let mut paths = Vec::new();
        walk(&root, &root, &mut paths);
        paths.sort();
        let contents: Vec<(String, Vec<u8>)> = paths
            .into_iter()
            .map(|rel| {
                let data = std::fs::read(root.join(&rel)).unwrap();
                (rel, data)
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = contents
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_slice()))
            .collect();
        tar_of(&refs)
    }

    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.is_file() {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push(rel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::tar_of;
    use super::*;

    #[test]
    fn reads_regular_files_and_skips_directories_and_symlinks() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "link", "app/main.py").unwrap();
        let mut bytes = b.into_inner().unwrap();
        // Append the regular files after the link (drop the first archive's end blocks).
        let files = tar_of(&[("app/main.py", b"print(1)\n"), ("./README.md", b"# hi\n")]);
        bytes.truncate(bytes.len() - 1024);
        bytes.extend_from_slice(&files);
        let read = read_tar(&bytes, &Limits::default());
        let paths: Vec<_> = read.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["app/main.py", "README.md"]);
        assert_eq!(read.get("app/main.py").unwrap().text(), Some("print(1)\n"));
        assert!(read.error.is_none());
    }

    #[test]
    fn a_file_past_the_text_limit_keeps_only_its_head() {
        let big = vec![b'a'; HEAD_BYTES * 3];
        let tar = tar_of(&[("big.txt", &big), ("small.txt", b"ok")]);
        let limits = Limits {
            max_text_bytes: HEAD_BYTES as u64,
            ..Limits::default()
        };
        let read = read_tar(&tar, &limits);
        let f = read.get("big.txt").unwrap();
        assert_eq!(f.size, (HEAD_BYTES * 3) as u64);
        assert_eq!(f.data.len(), HEAD_BYTES);
        assert!(!f.complete);
        assert_eq!(f.text(), None, "an incomplete file is not text to analyse");
        assert_eq!(read.get("small.txt").unwrap().text(), Some("ok"));
    }

    #[test]
    fn the_total_read_and_the_file_count_are_bounded() {
        let tar = tar_of(&[("a", b"12345"), ("b", b"12345"), ("c", b"1")]);
        let limits = Limits {
            max_read_bytes: 7,
            max_files: 2,
            ..Limits::default()
        };
        let read = read_tar(&tar, &limits);
        assert_eq!(read.files.len(), 2);
        assert_eq!(read.not_listed, 1);
        assert!(read.files[0].complete);
        assert!(
            !read.files[1].complete,
            "past the total, only the head is kept"
        );
    }

    #[test]
    fn binary_files_are_not_text() {
        let tar = tar_of(&[("m.pkl", b"\x80\x04\x00abc"), ("u.txt", b"\xff\xfe")]);
        let read = read_tar(&tar, &Limits::default());
        assert!(read.get("m.pkl").unwrap().looks_binary());
        assert_eq!(read.get("m.pkl").unwrap().text(), None);
        assert_eq!(read.get("u.txt").unwrap().text(), None, "not UTF-8");
    }

    #[test]
    fn a_damaged_archive_is_reported_not_panicked_on() {
        let mut tar = tar_of(&[("a.py", b"x = 1\n")]);
        tar[0..4].copy_from_slice(b"\0\0\0\0");
        tar[148..156].copy_from_slice(b"garbage!");
        let read = read_tar(&tar, &Limits::default());
        assert!(read.files.is_empty());
        assert!(read.error.is_some());
    }

    #[test]
    fn extensions() {
        assert_eq!(extension_of("model.PKL"), "pkl");
        assert_eq!(extension_of(".dockerignore"), "");
        assert_eq!(extension_of("Dockerfile"), "");
        assert_eq!(extension_of("a.tar.gz"), "gz");
    }
}
