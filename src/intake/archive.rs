//! .tar and .tar.gz submissions, read as a stream: nothing is extracted.
//!
//! The tar crate resolves GNU long names and PAX headers itself; every check here runs on the
//! path it resolved, the one that would be written. Where readers disagree (a PAX path beside a
//! GNU long name, a key given twice, a PAX global header that renames entries, an extension
//! header in the pre-POSIX format the crate does not apply) the archive is rejected rather than
//! read one way. The archive must also end properly: a missing end-of-archive marker (a truncated
//! upload) and anything but zero padding after it (a second archive appended, garbage) are
//! rejected too.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use super::context::{BuildContext, SourceKind};
use super::error::{rejected, IntakeError};
use super::limits::{mib, Limits};
use super::names::{excluded, normalize, shown};
use super::tree::{Node, Tree};

/// Label of rejections that concern the archive as a whole.
const ARCHIVE: &str = "(archive)";
/// Zero padding accepted after the end-of-archive marker (tar pads to its record size, 10 KiB
/// by default; some writers use bigger records).
const MAX_PADDING: u64 = 1 << 20;
/// Largest PAX global header.
const MAX_GLOBAL_HEADER: u64 = 64 << 10;

/// Bytes of tar stream read at most: the files, plus per entry a header, a PAX or long-name
/// header for a long path, and padding, plus trailing padding.
fn stream_cap(l: &Limits) -> u64 {
    let per_entry = 4 * 512 + (l.max_path_bytes as u64).div_ceil(512) * 512;
    l.max_total_bytes
        .saturating_add(l.max_entries.saturating_mul(per_entry))
        .saturating_add(MAX_PADDING)
}

pub(super) fn read_file(
    path: &Path,
    meta: &fs::Metadata,
    limits: &Limits,
) -> Result<BuildContext, IntakeError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let io = |source| IntakeError::Io {
        path: path.to_owned(),
        source,
    };
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let file = fs::File::open(path).map_err(io)?;
        let compressed = meta.len().max(1);
        // The ratio bound stops bombs early, with a floor so that small, highly compressible
        // submissions still pass.
        let cap = stream_cap(limits).min(
            compressed
                .saturating_mul(limits.max_gzip_ratio)
                .max(16 << 20),
        );
        // Every gzip member is read, so that data hidden after the first one is seen.
        let reader = flate2::read::MultiGzDecoder::new(file);
        let rule = format!(
            "the archive decompresses to more than {} (a compression bomb, or over the size limit)",
            mib(cap)
        );
        from_stream(reader, cap, rule, limits, SourceKind::TarGz)
    } else if name.ends_with(".tar") {
        let file = fs::File::open(path).map_err(io)?;
        let cap = stream_cap(limits);
        let rule = format!("the archive is larger than {}", mib(cap));
        from_stream(io::BufReader::new(file), cap, rule, limits, SourceKind::Tar)
    } else {
        Err(IntakeError::Unsupported(path.to_owned()))
    }
}

/// Reads an uncompressed tar stream (tests build archives in memory).
#[cfg(test)]
pub(super) fn from_tar<R: Read>(
    reader: R,
    limits: &Limits,
    kind: SourceKind,
) -> Result<BuildContext, IntakeError> {
    let cap = stream_cap(limits);
    let rule = format!("the archive is larger than {}", mib(cap));
    from_stream(reader, cap, rule, limits, kind)
}

#[derive(Default)]
struct Flags {
    pos: Cell<u64>,
    eof: Cell<bool>,
    over: Cell<bool>,
}

/// Counts what comes out of the (decompressed) stream, fails once it passes the cap (instead of
/// a silent EOF, which would look like a truncated archive), and remembers whether the stream
/// ended, so that an archive without its end marker can be told from one with it.
struct Stream<R> {
    inner: R,
    cap: u64,
    flags: Rc<Flags>,
}

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.flags.over.get() {
            return Err(io::Error::other("over the size limit"));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.flags.eof.set(true);
            return Ok(0);
        }
        let pos = self.flags.pos.get() + n as u64;
        self.flags.pos.set(pos);
        if pos > self.cap {
            self.flags.over.set(true);
            return Err(io::Error::other("over the size limit"));
        }
        Ok(n)
    }
}

fn from_stream<R: Read>(
    reader: R,
    cap: u64,
    cap_rule: String,
    limits: &Limits,
    kind: SourceKind,
) -> Result<BuildContext, IntakeError> {
    let flags = Rc::new(Flags::default());
    let mut archive = tar::Archive::new(Stream {
        inner: reader,
        cap,
        flags: flags.clone(),
    });
    let mut tree = Tree::new(limits.clone());
    // The last entry read, to say where a damaged archive breaks.
    let mut last: Option<String> = None;
    let fail = |entry: Option<&str>, last: &Option<String>, e: io::Error| -> IntakeError {
        let at = |rule: String| match (entry, last) {
            (Some(entry), _) => rejected(entry, rule),
            (None, Some(last)) => rejected(ARCHIVE, format!("{rule} (after the entry {last})")),
            (None, None) => rejected(ARCHIVE, rule),
        };
        if flags.over.get() {
            at(cap_rule.clone())
        } else if flags.eof.get() {
            at(match entry {
                Some(_) => "the archive ends in the middle of this entry (truncated?)".into(),
                None => "the archive ends in the middle of an entry (truncated?)".into(),
            })
        } else {
            at(format!("cannot be read: {e} (a damaged archive?)"))
        }
    };
    {
        let entries = archive.entries().map_err(|e| fail(None, &last, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| fail(None, &last, e))?;
            let raw = entry.path_bytes().into_owned();
            let show = shown(&raw);
            use tar::EntryType as T;
            let kind = entry.header().entry_type();
            match kind {
                T::XGlobalHeader => {
                    check_global_header(&mut entry).map_err(|rule| rejected(ARCHIVE, rule))?;
                    continue;
                }
                // The crate applies these when they come in ustar or GNU format; one it hands
                // over was not applied, while other readers may apply it.
                T::XHeader | T::GNULongName | T::GNULongLink => return Err(rejected(
                    &show,
                    "an extension header in a pre-POSIX format, which readers apply differently",
                )),
                _ => {}
            }
            check_pax(&mut entry, &raw).map_err(|rule| rejected(&show, rule))?;
            let Some(path) = normalize(&raw).map_err(|rule| rejected(&show, rule))? else {
                continue; // "./" itself
            };
            if excluded(&path) {
                continue;
            }
            let node = match kind {
                T::Directory => Node::Dir,
                T::Regular | T::Continuous => {
                    // The size the crate reads: a PAX size overrides the header's.
                    let size = entry.size();
                    tree.check_size(&path, size)?;
                    let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
                    entry
                        .read_to_end(&mut data)
                        .map_err(|e| fail(Some(&path), &last, e))?;
                    if (data.len() as u64) < size {
                        return Err(rejected(
                            &path,
                            "the archive ends in the middle of this file (truncated?)",
                        ));
                    }
                    let executable = entry
                        .header()
                        .mode()
                        .map(|m| m & 0o111 != 0)
                        .unwrap_or(false);
                    Node::File { data, executable }
                }
                T::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| rejected(&path, "symlink without a target"))?
                        .into_owned();
                    let target = String::from_utf8(target)
                        .map_err(|_| rejected(&path, "symlink target is not valid UTF-8"))?;
                    Node::Symlink(target)
                }
                T::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| shown(&t))
                        .unwrap_or_default();
                    return Err(rejected(
                        &path,
                        format!("hard links are not allowed (this one links to {target})"),
                    ));
                }
                T::GNUSparse => {
                    return Err(rejected(&path, "GNU sparse files are not allowed"));
                }
                T::Char => return Err(rejected(&path, not_allowed("character devices"))),
                T::Block => return Err(rejected(&path, not_allowed("block devices"))),
                T::Fifo => return Err(rejected(&path, not_allowed("FIFOs"))),
                other => {
                    return Err(rejected(
                        &path,
                        not_allowed(&format!("entries of type {:?}", other.as_byte() as char)),
                    ))
                }
            };
            tree.insert(path.clone(), node)?;
            last = Some(path);
        }
    }

    // The crate stops at EOF or at a zero block; only the second is a proper end.
    let mut stream = archive.into_inner();
    if flags.eof.get() {
        return Err(rejected(
            ARCHIVE,
            if flags.pos.get() == 0 {
                "the archive is empty".to_string()
            } else {
                "the archive ends without its end-of-archive marker (truncated?)".to_string()
            },
        ));
    }
    let mut buf = [0u8; 8192];
    let mut padding = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(_) if flags.over.get() => return Err(rejected(ARCHIVE, cap_rule)),
            Err(e) => {
                return Err(rejected(
                    ARCHIVE,
                    format!("what follows the end-of-archive marker cannot be read: {e}"),
                ))
            }
        };
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(rejected(
                ARCHIVE,
                "data after the end-of-archive marker (a second archive appended, or garbage)",
            ));
        }
        padding += n as u64;
        if padding > MAX_PADDING {
            return Err(rejected(
                ARCHIVE,
                "more than 1 MiB of padding after the end-of-archive marker",
            ));
        }
    }
    tree.finish(kind, None, false)
}

fn not_allowed(what: &str) -> String {
    format!("{what} are not allowed (only regular files, directories and symlinks)")
}

/// The PAX records that apply to an entry: only ones every reader reads the same way.
fn check_pax<R: Read>(entry: &mut tar::Entry<'_, R>, path: &[u8]) -> Result<(), String> {
    let link = entry.link_name_bytes().map(|l| l.into_owned());
    let Some(records) = entry
        .pax_extensions()
        .map_err(|e| format!("has an unreadable PAX header: {e}"))?
    else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for record in records {
        let record = record.map_err(|e| format!("has a malformed PAX header: {e}"))?;
        let key = record.key_bytes();
        if key.starts_with(b"GNU.sparse.") {
            return Err("is a sparse file (PAX GNU.sparse records), which is not allowed".into());
        }
        if matches!(key, b"path" | b"linkpath" | b"size") && !seen.insert(key.to_vec()) {
            return Err(format!(
                "has a PAX header that sets {} twice, which readers resolve differently",
                String::from_utf8_lossy(key)
            ));
        }
        let differs = match key {
            b"path" => record.value_bytes() != path,
            b"linkpath" => Some(record.value_bytes()) != link.as_deref(),
            _ => false,
        };
        if differs {
            return Err(format!(
                "has both a GNU long name and a PAX {}, which readers resolve differently",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(())
}

/// A PAX global header may carry comments (git archive stores the commit there), times and
/// owners; one that renames or resizes the entries after it is read differently by different
/// tools (the tar crate ignores it).
fn check_global_header<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<(), String> {
    if entry.size() > MAX_GLOBAL_HEADER {
        return Err("a PAX global header is larger than 64 KiB".into());
    }
    let Some(records) = entry
        .pax_extensions()
        .map_err(|e| format!("a PAX global header cannot be read: {e}"))?
    else {
        return Ok(());
    };
    for record in records {
        let record = record.map_err(|e| format!("a PAX global header is malformed: {e}"))?;
        let key = record.key_bytes();
        if matches!(key, b"path" | b"linkpath" | b"size") || key.starts_with(b"GNU.sparse.") {
            return Err(format!(
                "a PAX global header sets {} for the entries after it, which readers apply differently",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::intake;
    use crate::intake::test_support::{list, read, rule, tar_with, DF};

    /// A PAX 'x' header carrying `records`, then an entry with `name` in its plain header.
    fn pax_entry(
        records: &[(&str, &[u8])],
        name: &str,
        kind: tar::EntryType,
        data: &[u8],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in records {
            let rec_len = |n: usize| format!("{n} {k}=").len() + v.len() + 1;
            let mut n = rec_len(0);
            while rec_len(n) != n {
                n = rec_len(n);
            }
            body.extend_from_slice(format!("{n} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_path("PaxHeaders/x").unwrap();
        h.set_size(body.len() as u64);
        h.set_cksum();
        b.append(&h, body.as_slice()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
        let mut out = b.into_inner().unwrap();
        // Drop the end marker: callers append more.
        out.truncate(out.len() - 1024);
        out
    }

    fn with_dockerfile(mut entries: Vec<u8>) -> Vec<u8> {
        let df = tar_with(&[DF]);
        let mut out = df[..df.len() - 1024].to_vec();
        out.append(&mut entries);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn pax_path_is_what_gets_checked() {
        // The plain header says "innocent"; the PAX path, which every reader applies, escapes.
        let bytes = with_dockerfile(pax_entry(
            &[("path", b"../../etc/cron.d/evil")],
            "innocent",
            tar::EntryType::Regular,
            b"x",
        ));
        assert_eq!(
            rule(read(bytes).unwrap_err()),
            ("../../etc/cron.d/evil".into(), "path contains '..'".into())
        );
        let bytes = with_dockerfile(pax_entry(
            &[("linkpath", b"/etc/shadow")],
            "l",
            tar::EntryType::Symlink,
            b"",
        ));
        let (entry, r) = rule(read(bytes).unwrap_err());
        assert_eq!(entry, "l");
        assert!(r.contains("absolute path (/etc/shadow)"), "{r}");
        // A benign PAX path is fine.
        let bytes = with_dockerfile(pax_entry(
            &[("path", "dir/ünïcode.py".as_bytes())],
            "x",
            tar::EntryType::Regular,
            b"x",
        ));
        let ctx = read(bytes).unwrap();
        assert!(list(&ctx.tar).contains(&"dir/ünïcode.py".to_string()));
    }

    #[test]
    fn ambiguous_pax_headers_are_rejected() {
        let bytes = with_dockerfile(pax_entry(
            &[("path", b"a"), ("path", b"b")],
            "x",
            tar::EntryType::Regular,
            b"x",
        ));
        let (_, r) = rule(read(bytes).unwrap_err());
        assert!(r.contains("sets path twice"), "{r}");
        let bytes = with_dockerfile(pax_entry(
            &[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")],
            "x",
            tar::EntryType::Regular,
            b"x",
        ));
        let (entry, r) = rule(read(bytes).unwrap_err());
        assert_eq!(entry, "x");
        assert!(r.contains("sparse"), "{r}");
    }

    #[test]
    fn gnu_sparse_entries_are_rejected() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_path("sparse.bin").unwrap();
        h.set_size(0);
        h.as_gnu_mut().unwrap().set_real_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let bytes = with_dockerfile({
            let mut v = b.into_inner().unwrap();
            v.truncate(v.len() - 1024);
            v
        });
        let (entry, r) = rule(read(bytes).unwrap_err());
        assert_eq!(entry, "sparse.bin");
        assert!(r.contains("sparse"), "{r}");
    }

    #[test]
    fn global_headers_may_comment_but_not_rename() {
        let global = |records: &[(&str, &[u8])]| {
            let mut v = pax_entry(records, "x", tar::EntryType::Regular, b"x");
            // Turn the 'x' header into a 'g' header and fix its checksum.
            let mut h = tar::Header::new_old();
            h.as_mut_bytes().copy_from_slice(&v[..512]);
            h.set_entry_type(tar::EntryType::XGlobalHeader);
            h.set_cksum();
            v[..512].copy_from_slice(h.as_bytes());
            v
        };
        // git archive writes the commit id as a comment.
        read(with_dockerfile(global(&[("comment", b"0123abcd")]))).unwrap();
        let (entry, r) = rule(read(with_dockerfile(global(&[("path", b"evil")]))).unwrap_err());
        assert_eq!(entry, "(archive)");
        assert!(r.contains("global header sets path"), "{r}");
    }

    #[test]
    fn truncation_and_trailing_garbage_are_rejected() {
        let good = tar_with(&[DF, ("app.py", tar::EntryType::Regular, &[b'x'; 2000], None)]);
        read(good.clone()).unwrap();
        // Cut in the middle of app.py's data.
        let (entry, r) = rule(read(good[..512 * 3].to_vec()).unwrap_err());
        assert_eq!(entry, "app.py");
        assert!(r.contains("truncated"), "{r}");
        // Cut in the middle of a header.
        let (entry, r) = rule(read(good[..512 * 2 + 100].to_vec()).unwrap_err());
        assert_eq!(entry, "(archive)");
        assert!(
            r.contains("truncated") && r.contains("after the entry Dockerfile"),
            "{r}"
        );
        // Cut right after the last entry: no end marker.
        let end = good.len() - 1024;
        let (entry, r) = rule(read(good[..end].to_vec()).unwrap_err());
        assert_eq!(entry, "(archive)");
        assert!(r.contains("end-of-archive marker"), "{r}");
        // Zero padding after the end is normal; anything else is not.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0u8; 9216]);
        read(padded).unwrap();
        let mut appended = good.clone();
        appended.extend_from_slice(&tar_with(&[("evil", tar::EntryType::Regular, b"x", None)]));
        let (entry, r) = rule(read(appended).unwrap_err());
        assert_eq!(entry, "(archive)");
        assert!(r.contains("after the end-of-archive marker"), "{r}");
        let (entry, r) = rule(read(Vec::new()).unwrap_err());
        assert_eq!(
            (entry.as_str(), r.as_str()),
            ("(archive)", "the archive is empty")
        );
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.tar.gz");
        let mut file = fs::File::create(&path).unwrap();
        for tar in [
            tar_with(&[DF]),
            tar_with(&[("hidden", tar::EntryType::Regular, b"x", None)]),
        ] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            file.write_all(&gz.finish().unwrap()).unwrap();
        }
        drop(file);
        let err = intake(&path, &Limits::default()).unwrap_err();
        assert!(
            err.to_string().contains("after the end-of-archive marker"),
            "{err}"
        );
        // Garbage after the gzip stream.
        let mut bytes = fs::read(&path).unwrap();
        let one = {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar_with(&[DF])).unwrap();
            gz.finish().unwrap()
        };
        bytes.clear();
        bytes.extend_from_slice(&one);
        bytes.extend_from_slice(b"trailing garbage");
        fs::write(&path, &bytes).unwrap();
        let err = intake(&path, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("end-of-archive marker"), "{err}");
    }

    #[test]
    fn gzip_bomb_is_stopped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.tar.gz");
        let big = vec![0u8; 64 << 20];
        let tar = tar_with(&[DF, ("zeros", tar::EntryType::Regular, &big, None)]);
        let mut gz = flate2::write::GzEncoder::new(
            fs::File::create(&path).unwrap(),
            flate2::Compression::best(),
        );
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap();
        let err = intake(&path, &Limits::default()).unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "zeros");
        assert!(r.contains("compression bomb"), "{r}");
    }
}
