//! Every event's schema as its Rust type generates it, against the
//! committed one and against every version of it in git history: within a
//! major version only new optional fields (and documentation) may appear.
//! A breaking change fails with what to do instead; an additive one fails
//! until it is blessed, so that every contract change shows up in review.

use contracts::{EventDescriptor, EVENTS};
use serde_json::Value;

use crate::compat::{self, Report};
use crate::support::{
    announce, bless_once, blessing, committed_text, differences, generated_schemas, render,
    ENVELOPE,
};

#[test]
fn every_generated_schema_equals_the_committed_one_or_changes_it_only_additively() {
    let blessed = bless_once();
    if blessing() {
        announce(&format!(
            "BAZAAR_BLESS=1: wrote {:?}; refused (breaking) {:?}; review the diff and commit it",
            blessed.written, blessed.refused
        ));
    }
    let mut failures = Vec::new();
    for (stem, generated) in envelope_first() {
        let Some(text) = committed_text(&stem) else {
            failures.push(format!(
                "schemas/{stem}.json is missing. If {stem} is a new event version, run \
                 `BAZAAR_BLESS=1 cargo test -p contracts` to write it, and commit it."
            ));
            continue;
        };
        let Ok(committed) = serde_json::from_str::<Value>(&text) else {
            failures.push(format!(
                "schemas/{stem}.json is not JSON: it is generated, never edited; restore it \
                 with `git checkout -- contracts/schemas/{stem}.json`"
            ));
            continue;
        };
        if committed != generated && head_version(&stem).is_some_and(|head| head == generated) {
            failures.push(format!(
                "schemas/{stem}.json was edited by hand: it differs from the version in git HEAD, \
                 which its Rust type still generates. Schemas are generated, never edited: \
                 restore it with `git checkout -- contracts/schemas/{stem}.json`, and change the \
                 Rust type instead (additive changes only; see contracts/README.md)."
            ));
        } else if committed != generated {
            let report = compat::compare(&committed, &generated);
            failures.push(if report.breaking.is_empty() {
                additive(&stem, &committed, &generated, &report)
            } else {
                breaking(&stem, &report, "the committed schema")
            });
        } else if text != render(&generated) {
            failures.push(format!(
                "schemas/{stem}.json is not in canonical form (sorted keys, two-space indent, \
                 trailing newline): it was edited by hand. Run `BAZAAR_BLESS=1 cargo test -p \
                 contracts` to rewrite it."
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Catches what the test above cannot: a breaking change to the Rust type
/// committed together with a hand-edited schema that matches it. History
/// in git is what consumers were built against, whatever the file says now.
#[test]
fn every_generated_schema_is_compatible_with_each_committed_version_in_git_history() {
    if !history_available() {
        return;
    }
    let mut failures = Vec::new();
    for (stem, generated) in envelope_first() {
        let Some(versions) = git_history(&stem) else {
            announce("git or the repository's history is not available: history not checked");
            return;
        };
        for (commit, old) in versions {
            let report = compat::compare(&old, &generated);
            if !report.breaking.is_empty() {
                let against = format!("the schema committed in {commit}");
                failures.push(breaking(&stem, &report, &against));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// A schema that was ever committed names an event version that was
/// published, and whose history stays in the streams to be replayed: it is
/// never removed, and a subject is never renamed (a new subject is a new
/// major version beside the old one).
#[test]
fn every_schema_ever_committed_still_names_an_event_of_the_catalogue() {
    if !history_available() {
        return;
    }
    let Some(log) = git(&["log", "--format=%h", "--name-only", "--", "schemas/"]) else {
        announce("git or the repository's history is not available: history not checked");
        return;
    };
    let mut failures = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    let mut commit = "";
    for line in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(stem) = line
            .strip_prefix("contracts/schemas/")
            .and_then(|name| name.strip_suffix(".json"))
        else {
            commit = line;
            continue;
        };
        if stem == ENVELOPE || descriptor(stem).is_some() || !reported.insert(stem) {
            continue;
        }
        failures.push(format!(
            "schemas/{stem}.json was committed (last touched in {commit}), but no event of \
             `contracts::catalog::EVENTS` has that file stem any more. Its event version was \
             published: its history stays in the streams and is replayed, so it is never \
             removed, and its subject is never renamed. Put back its EVENTS entry, its schema, \
             its samples and their MANIFEST lines (`git log --oneline -- \
             contracts/schemas/{stem}.json` shows where they went); to change a subject or a \
             payload incompatibly, add a new major version beside it (contracts/README.md)."
        ));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Whether git history can be checked. Without it (no git, not a
/// repository, a shallow clone) the history tests are skipped, except in
/// CI (`CI=true`), where a skipped check would let a breaking change land.
fn history_available() -> bool {
    let shallow = git(&["rev-parse", "--is-shallow-repository"]).map(|s| s.trim().to_owned());
    let problem = match shallow.as_deref() {
        None => "git or the repository's history is not available",
        Some("true") => "this clone is shallow: its history is cut",
        Some(_) => return true,
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{problem}, so the contracts cannot be checked against what was published before. \
         CI must check them: clone with full history (no `--depth`; `git fetch --unshallow` \
         in a shallow one)."
    );
    announce(&format!("{problem}: history not checked"));
    false
}

/// The generated schemas, the envelope's first: every event travels in
/// it, so a change to it also fails every event, and its own message (what
/// to do about the envelope) must come before theirs.
fn envelope_first() -> Vec<(String, Value)> {
    let mut schemas: Vec<(String, Value)> = generated_schemas().into_iter().collect();
    schemas.sort_by_key(|(stem, _)| stem != ENVELOPE);
    schemas
}

/// `schemas/<stem>.json` as git HEAD has it, if git can tell.
fn head_version(stem: &str) -> Option<Value> {
    let text = git(&["show", &format!("HEAD:./schemas/{stem}.json")])?;
    serde_json::from_str(&text).ok()
}

/// Every committed version of `schemas/<stem>.json`, newest first; `None`
/// when git cannot tell (no git, not a repository).
fn git_history(stem: &str) -> Option<Vec<(String, Value)>> {
    let path = format!("schemas/{stem}.json");
    let log = git(&["log", "--format=%h", "--", &path])?;
    let mut versions = Vec::new();
    for commit in log.lines().filter(|l| !l.is_empty()) {
        let text = git(&["show", &format!("{commit}:./{path}")])?;
        // A version that is not JSON was never readable by anyone.
        if let Ok(schema) = serde_json::from_str(&text) {
            versions.push((commit.to_owned(), schema));
        }
    }
    Some(versions)
}

fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn descriptor(stem: &str) -> Option<&'static EventDescriptor> {
    EVENTS.iter().find(|d| d.file_stem() == stem)
}

/// The payload's Rust type, e.g. `OrderPlacedV1`.
fn type_name(d: &EventDescriptor) -> String {
    (d.schema)()
        .get("title")
        .and_then(Value::as_str)
        .map_or_else(|| d.file_stem(), str::to_owned)
}

/// `OrderPlacedV1` -> `OrderPlacedV2`; `evt.x.y.z.v1` -> `evt.x.y.z.v2`.
fn next_major(versioned: &str, marker: &str) -> String {
    match versioned.rsplit_once(marker) {
        Some((name, major)) => match major.parse::<u32>() {
            Ok(major) => format!("{name}{marker}{}", major + 1),
            Err(_) => format!("{versioned}{marker}2"),
        },
        None => format!("{versioned}{marker}2"),
    }
}

fn breaking(stem: &str, report: &Report, against: &str) -> String {
    let changes: Vec<String> = report.breaking.iter().map(|b| format!("  - {b}")).collect();
    let restore = format!(
        "  If you edited schemas/{stem}.json by hand: it is generated, never edited; restore it \
         with `git checkout -- contracts/schemas/{stem}.json`."
    );
    let Some(d) = descriptor(stem) else {
        return format!(
            "the CloudEvents envelope (schemas/{ENVELOPE}.json) changes incompatibly compared \
             with {against}, and every event travels in it:\n{}\n  How to proceed: revert the \
             change to `Envelope`; CloudEvents attributes are only ever added as optional \
             extensions. (Each event's failure that follows comes from this change too: a new \
             major version of an event does not mend an envelope.)\n{restore}",
            changes.join("\n")
        );
    };
    let (old, new) = (type_name(d), next_major(&type_name(d), "V"));
    format!(
        "{event} ({old}, schemas/{stem}.json) changes incompatibly within its major version, \
         compared with {against}:\n{changes}\n  \
         How to proceed: a published event version never changes incompatibly. Revert the \
         change to `{old}`. To make it, add a new major version instead: `{new}` with its own \
         subject `{subject}` (a constant in contracts/src/subjects.rs), its entry in \
         `catalog::EVENTS`, an upcaster `impl From<{old}> for {new}`, its schema \
         (`BAZAAR_BLESS=1 cargo test -p contracts`) and golden samples. Keep `{old}`, its \
         schema and its samples as they are, and make every consumer read both versions and \
         declare both in contracts/src/consumers.rs (contracts/README.md, \"Making a breaking \
         change\").\n{restore}",
        event = d.event_type(),
        changes = changes.join("\n"),
        subject = next_major(d.subject, ".v"),
    )
}

fn additive(stem: &str, committed: &Value, generated: &Value, report: &Report) -> String {
    let mut changes: Vec<String> = report.additive.iter().map(|a| format!("  - {a}")).collect();
    if changes.is_empty() {
        // Nothing a reader would notice (e.g. the order of `required`).
        changes = differences(committed, generated)
            .into_iter()
            .map(|d| format!("  - {d}"))
            .collect();
    }
    format!(
        "schemas/{stem}.json differs from the schema generated from its Rust type, by \
         additive changes only:\n{}\n  \
         run `BAZAAR_BLESS=1 cargo test -p contracts` to accept this additive change, review \
         the diff of schemas/{stem}.json and commit it, with a golden sample that shows a new \
         field if you added one (keep the old samples).\n  \
         If you did not change the Rust type, the file was edited by hand: schemas are \
         generated, never edited; restore it with `git checkout -- contracts/schemas/{stem}.json`.",
        changes.join("\n")
    )
}
