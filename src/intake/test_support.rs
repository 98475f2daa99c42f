//! Helpers for the unit tests of intake: hand-built tars (hostile names included) read as
//! an archive.

use super::{archive, BuildContext, IntakeError, Limits, SourceKind};

pub(super) fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Write the raw name so that hostile paths ('..', '/') survive the builder's checks.
        let name = h.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(super) fn read(bytes: Vec<u8>) -> Result<BuildContext, IntakeError> {
    read_with(bytes, &Limits::default())
}

pub(super) fn read_with(bytes: Vec<u8>, limits: &Limits) -> Result<BuildContext, IntakeError> {
    archive::from_tar(std::io::Cursor::new(bytes), limits, SourceKind::Tar)
}

pub(super) const DF: (&str, tar::EntryType, &[u8], Option<&str>) =
    ("Dockerfile", tar::EntryType::Regular, b"FROM x\n", None);

pub(super) fn rule(err: IntakeError) -> (String, String) {
    match err {
        IntakeError::Rejected { entry, rule } => (entry, rule),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub(super) fn list(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8(e.path_bytes().into_owned()).unwrap()
        })
        .collect()
}
