//! Large and binary files in the build context. A submission that ships a trained model, a data
//! dump or a virtualenv is worth a reviewer's look: it may hide how the model was made, bloat the
//! image, or carry code (a pickle runs code when it is loaded).
//!
//! A file is large when it has more bytes than the threshold (5 MiB by default). It is binary
//! when its extension is a known binary format (`BINARY_EXTENSIONS`), or else when its first
//! 8 KiB hold a NUL byte, the test `git` and `grep` use. Text formats that are often large
//! (`.csv`, `.json`) are only listed when they pass the threshold. Each list keeps the 100
//! largest files; the counts cover them all.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::files::Files;

/// The threshold `review` uses.
pub const DEFAULT_THRESHOLD_BYTES: u64 = 5 * 1024 * 1024;

/// Files listed at most per list.
const MAX_LISTED: usize = 100;

/// Extensions of binary formats: serialised models and arrays, columnar data, archives, compiled
/// code, databases, media.
pub const BINARY_EXTENSIONS: &[&str] = &[
    // Models, weights, arrays.
    "pkl",
    "pickle",
    "joblib",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "onnx",
    "h5",
    "hdf5",
    "keras",
    "pb",
    "tflite",
    "safetensors",
    "gguf",
    "npy",
    "npz",
    "mar",
    "cbm",
    "ubj",
    // Columnar and binary data.
    "parquet",
    "feather",
    "arrow",
    "orc",
    "avro",
    "db",
    "sqlite",
    "sqlite3",
    // Archives and packages.
    "zip",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "zst",
    "7z",
    "tar",
    "rar",
    "whl",
    "egg",
    "jar",
    // Compiled code.
    "so",
    "dylib",
    "dll",
    "exe",
    "o",
    "a",
    "pyc",
    "pyo",
    "pyd",
    "class",
    // Media and documents.
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "tif",
    "tiff",
    "ico",
    "webp",
    "pdf",
    "mp3",
    "mp4",
    "wav",
    "avi",
    "mov",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LargeFiles {
    pub threshold_bytes: u64,
    /// Files over the threshold, largest first.
    pub large: Vec<SizedFile>,
    pub large_count: u64,
    /// Binary files, largest first.
    pub binary: Vec<BinaryFile>,
    pub binary_count: u64,
    /// Bytes of all binary files.
    pub binary_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SizedFile {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BinaryFile {
    pub path: String,
    pub bytes: u64,
    pub reason: BinaryReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BinaryReason {
    /// A known binary format by its extension.
    Extension,
    /// A NUL byte in the first 8 KiB.
    NulByte,
}

pub fn analyse(files: &Files, threshold_bytes: u64) -> LargeFiles {
    let mut large = Vec::new();
    let mut binary = Vec::new();
    for f in &files.files {
        if f.size > threshold_bytes {
            large.push(SizedFile {
                path: f.path.clone(),
                bytes: f.size,
            });
        }
        let reason = if BINARY_EXTENSIONS.contains(&f.extension().as_str()) {
            Some(BinaryReason::Extension)
        } else if f.looks_binary() {
            Some(BinaryReason::NulByte)
        } else {
            None
        };
        if let Some(reason) = reason {
            binary.push(BinaryFile {
                path: f.path.clone(),
                bytes: f.size,
                reason,
            });
        }
    }
    large.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    binary.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    LargeFiles {
        threshold_bytes,
        large_count: large.len() as u64,
        binary_count: binary.len() as u64,
        binary_bytes: binary.iter().map(|b| b.bytes).sum(),
        large: large.into_iter().take(MAX_LISTED).collect(),
        binary: binary.into_iter().take(MAX_LISTED).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::{read_tar, test_support, Limits};
    use super::*;

    #[test]
    fn lists_large_and_binary_files_largest_first() {
        let big_csv = vec![b'1'; 3000];
        let tar = test_support::tar_of(&[
            ("app.py", b"print(1)\n"),
            ("model/model.pkl", b"\x80\x04small"),
            ("data/train.csv", &big_csv),
            ("weights.dat", b"abc\0def"),
            ("model/model.json", b"{\"w\": [1, 2]}"),
        ]);
        let files = read_tar(&tar, &Limits::default());
        let l = analyse(&files, 1000);
        assert_eq!(
            l.large,
            [SizedFile {
                path: "data/train.csv".into(),
                bytes: 3000
            }]
        );
        let bin: Vec<(&str, u64, BinaryReason)> = l
            .binary
            .iter()
            .map(|b| (b.path.as_str(), b.bytes, b.reason))
            .collect();
        assert_eq!(
            bin,
            [
                ("model/model.pkl", 7, BinaryReason::Extension),
                ("weights.dat", 7, BinaryReason::NulByte),
            ]
        );
        assert_eq!(l.binary_bytes, 14);
        assert_eq!((l.large_count, l.binary_count), (1, 2));
    }

    #[test]
    fn a_large_file_is_sized_from_its_header_not_read() {
        let big = vec![0u8; 64 * 1024];
        let tar = test_support::tar_of(&[("blob.onnx", &big)]);
        let limits = Limits {
            max_text_bytes: 1024,
            ..Limits::default()
        };
        let l = analyse(&read_tar(&tar, &limits), 10 * 1024);
        assert_eq!(l.large[0].bytes, 64 * 1024);
        assert_eq!(l.binary[0].reason, BinaryReason::Extension);
    }

    #[test]
    fn lists_are_bounded() {
        let names: Vec<String> = (0..MAX_LISTED + 3).map(|i| format!("m{i}.pt")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let l = analyse(
            &read_tar(&test_support::tar_of(&entries), &Limits::default()),
            DEFAULT_THRESHOLD_BYTES,
        );
        assert_eq!(l.binary.len(), MAX_LISTED);
        assert_eq!(l.binary_count, (MAX_LISTED + 3) as u64);
    }

    #[test]
    fn the_reference_ships_no_binary() {
        let files = read_tar(&test_support::reference_tar(), &Limits::default());
        let l = analyse(&files, DEFAULT_THRESHOLD_BYTES);
        assert!(l.large.is_empty() && l.binary.is_empty(), "{l:?}");
    }
}
