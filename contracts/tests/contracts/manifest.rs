//! Golden samples are never deleted: `samples/MANIFEST` records every one
//! ever committed, and a sample missing from disk fails the build. Blessing
//! adds new samples to the manifest; nothing ever removes a line.

use std::collections::BTreeSet;

use crate::support::{bless_once, contracts_dir, entries, json_files, read, samples_dir};

/// The manifest, relative to `contracts/`.
pub const FILE: &str = "samples/MANIFEST";

const HEADER: &str = "\
# Every golden sample ever committed, one `<event file stem>/<name>.json` a line.
# Samples are never deleted: the contract tests fail when a listed file is
# missing. `BAZAAR_BLESS=1 cargo test -p contracts` adds new samples here;
# nothing removes a line.
";

/// The samples the manifest lists.
fn listed() -> BTreeSet<String> {
    read(FILE)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Every `<dir>/<file>.json` under `samples/`.
fn on_disk() -> BTreeSet<String> {
    entries(&samples_dir())
        .into_iter()
        .filter(|(_, is_dir)| *is_dir)
        .flat_map(|(dir, _)| {
            json_files(&samples_dir().join(&dir))
                .into_iter()
                .map(move |file| format!("{dir}/{file}"))
        })
        .collect()
}

/// Adds the samples on disk to the manifest; true if it changed.
pub fn bless() -> bool {
    let all: BTreeSet<String> = listed().union(&on_disk()).cloned().collect();
    let mut text = HEADER.to_owned();
    for line in &all {
        text.push_str(line);
        text.push('\n');
    }
    if read(FILE).as_deref() == Some(text.as_str()) {
        return false;
    }
    std::fs::write(contracts_dir().join(FILE), text).expect("write samples/MANIFEST");
    true
}

#[test]
fn every_sample_recorded_in_the_manifest_still_exists() {
    bless_once();
    let listed = listed();
    assert!(!listed.is_empty(), "contracts/{FILE} lists no sample");
    let on_disk = on_disk();
    let missing: Vec<&String> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "\ngolden samples were deleted: {missing:?}\n  \
         Samples are never deleted: they are the record of what was once published and how \
         these tests prove that it still decodes (for an old major version, through its \
         upcaster). Restore them with `git checkout HEAD -- {}` (or from the commit before \
         the one that deleted them).\n  \
         If a sample no longer decodes after your change, the change is breaking: revert it \
         and add a new major version instead (contracts/README.md).",
        missing
            .iter()
            .map(|m| format!("contracts/samples/{m}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

#[test]
fn every_sample_on_disk_is_recorded_in_the_manifest() {
    bless_once();
    let unrecorded: Vec<String> = on_disk().difference(&listed()).cloned().collect();
    assert!(
        unrecorded.is_empty(),
        "\nsamples not recorded in contracts/{FILE}: {unrecorded:?}\n  \
         Run `BAZAAR_BLESS=1 cargo test -p contracts` to record them, and commit the manifest \
         with the samples."
    );
}
