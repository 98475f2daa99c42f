//! Entry names: which paths a submission may hold, how they are normalized, and how a name
//! is shown in a message.

/// Longest name of one path component: Linux's NAME_MAX (the builder could not create it).
pub const MAX_NAME_BYTES: usize = 255;

/// Control characters and the bidirectional-text controls that make a name display as
/// something else ("Trojan Source").
pub(super) fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name as it may appear in a message: not UTF-8 replaced, unsafe characters escaped, and
/// cut short.
pub(crate) fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= 300 {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// One component of a path.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "a name in the path is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if let Some(c) = name.chars().find(|&c| is_unsafe_char(c)) {
        return Err(format!(
            "name contains the control character {} (names must be printable)",
            c.escape_unicode()
        ));
    }
    Ok(())
}

/// Normalizes a path as an archive spells it: relative, no `..`, UTF-8, printable names.
/// `./a/b/` becomes `a/b`; `./` itself gives `None`.
pub(super) fn normalize(raw: &[u8]) -> Result<Option<String>, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "name is not valid UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err("absolute path (entries must be relative to the submission's root)".into());
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path contains '..'".into()),
            p => {
                check_name(p)?;
                parts.push(p);
            }
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

/// The candidate's git metadata is never part of the build (and may hold hooks or config).
pub(super) fn excluded(path: &str) -> bool {
    path.split('/').any(|p| p == ".git")
}

#[cfg(test)]
mod tests {
    use crate::intake::test_support::{read, rule, tar_with, DF};

    #[test]
    fn rejects_parent_and_absolute_paths_naming_the_entry() {
        let err = read(tar_with(&[
            DF,
            ("../evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert_eq!(rule(err), ("../evil".into(), "path contains '..'".into()));
        let err = read(tar_with(&[
            DF,
            ("/etc/evil", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "/etc/evil");
        assert!(r.contains("absolute"), "{r}");
    }

    #[test]
    fn rejects_unprintable_and_non_utf8_names() {
        let err = read(tar_with(&[
            DF,
            ("a\x1b[2Jb", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "a\\u{1b}[2Jb", "the message carries no raw escape");
        assert!(r.contains("control character"), "{r}");
        let err = read(tar_with(&[
            DF,
            ("evil\u{202e}txt.py", tar::EntryType::Regular, b"x", None),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("\\u{202e}"), "{err}");
        let mut bytes = tar_with(&[DF, ("bad-X", tar::EntryType::Regular, b"x", None)]);
        // Patch the name's last byte to 0xFF and fix the header checksum.
        let off = 1024;
        assert_eq!(&bytes[off..off + 5], b"bad-X");
        bytes[off + 4] = 0xFF;
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&bytes[off..off + 512]);
        h.set_cksum();
        bytes[off..off + 512].copy_from_slice(h.as_bytes());
        let err = read(bytes).unwrap_err();
        let (entry, r) = rule(err);
        assert_eq!(entry, "bad-\u{FFFD}");
        assert_eq!(r, "name is not valid UTF-8");
    }
}
