//! Architecture fitness tests: the rules of DESIGN §1 and §3 that the
//! compiler cannot see, checked on the source files of the workspace.
//!
//! - No service crate depends on another service crate.
//! - Subject names are spelled only in `contracts/src`; everyone else uses
//!   its constants (a few patterns that are not subjects are listed, with
//!   the reason, in [`LITERAL_EXCEPTIONS`]).
//! - A service builds (and so publishes) only its own team's events, and
//!   the edge none.
//! - The broker's users (`nats/users.conf`) match the ownership table.
//!
//! `BAZAAR_ARCHITECTURE_ROOT` points the tests at another copy of the
//! workspace (to try what a change would do to these rules in a scratch copy).

use std::path::{Path, PathBuf};

use contracts::subjects::{Team, EDGE_API, SERVICES};

fn root() -> PathBuf {
    std::env::var_os("BAZAAR_ARCHITECTURE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

// ---- crate dependencies ------------------------------------------------------

/// Test-only dependencies between service crates, and why each is harmless.
const DEV_DEPENDENCY_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "product-svc",
    "edge-api",
    "the search tests gather the shards' answers with the edge's own gatherer, in-process; \
     no production code of product-svc links the edge",
)];

/// `(section, dependency)` of every dependency a Cargo.toml declares.
fn dependencies(manifest: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
        } else if section.ends_with("dependencies") && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim().trim_end_matches(".workspace").trim_matches('"');
                found.push((section.clone(), name.to_owned()));
            }
        }
    }
    found
}

#[test]
fn no_service_crate_depends_on_another_service_crate() {
    let mut failures = Vec::new();
    for service in SERVICES {
        let manifest = read(&format!("{service}/Cargo.toml"));
        let deps = dependencies(&manifest);
        assert!(
            deps.iter().any(|(_, d)| d == "contracts"),
            "{service}/Cargo.toml: no dependency on contracts; is the parser out of date?"
        );
        for (section, dep) in deps {
            let excepted = section == "dev-dependencies"
                && DEV_DEPENDENCY_EXCEPTIONS
                    .iter()
                    .any(|(s, d, _)| *s == service && *d == dep);
            if dep != service && SERVICES.contains(&dep.as_str()) && !excepted {
                failures.push(format!(
                    "{service}/Cargo.toml: [{section}] depends on {dep}, another service crate. \
                     Teams share only `contracts` (and the runtime in `platform`): take the data \
                     you need from {dep}'s events into your own replica, and put shared code in \
                     `platform` or `contracts` (DESIGN §1)."
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---- subject literals ----------------------------------------------------------

/// String literals that look like subjects outside `contracts/src`, each
/// allowed in one file for the reason given: none names a contract subject
/// that a constant could name instead.
const LITERAL_EXCEPTIONS: &[(&str, &[&str], &str)] = &[
    (
        "ops-cli/src/tail.rs",
        &[
            "\"evt.>\"",
            "\"evt.*.order.placed.v1\"",
            "\"dlq.>\"",
            "\"cmd.>\"",
        ],
        "`bazaar tail` takes subject patterns from the operator; its default and its tests \
         are patterns, not subjects",
    ),
    (
        "ops-cli/src/tail/subjects.rs",
        &[
            "\"evt.>\"",
            "\"evt.*.order.placed.v1\"",
            "\"evt.checkout.order.placed.v1\"",
            "\"evt.checkout.>\"",
            "\"evt.product.>\"",
            "\"dlq.>\"",
            "\"evt.*.order.*.v1\"",
            "\"evt..x\"",
            "\"evt.>.x\"",
            "\"evt.ch*\"",
        ],
        "unit tests of the subject-pattern matcher: the strings are its inputs",
    ),
    (
        "ops-cli/tests/ops/inspect.rs",
        &["\"evt.checkout.>\"", "\"evt.warehouse.>\""],
        "the command line exactly as an operator types it",
    ),
    (
        "tests/tests/system/permissions.rs",
        &[
            "\"evt.{}.order.placed.v1\"",
            "\"evt.{}.anything.happened.v1\"",
            "\"evt.finance.permission.probe.v1\"",
        ],
        "probes the broker's permissions with subjects made up for the purpose, of every team",
    ),
    (
        "tests/tests/system/least_privilege.rs",
        &["\"cmd.>\"", "\"qry.>\"", "\"cmd.{}.>\"", "\"qry.{}.>\""],
        "the permission patterns `nats/users.conf` grants (whole subject spaces, not subjects)",
    ),
    (
        "tests/tests/system/least_privilege/refusals.rs",
        &["\"evt.{}.anything.happened.v1\""],
        "made-up probes of every team",
    ),
    (
        "tests/tests/system/hostile.rs",
        &["\"evt.checkout.order.placed.v9\""],
        "a version nobody declares, made up to show that the stream stores it and no consumer \
         receives it",
    ),
];

/// This file, relative to the workspace root.
const THIS_FILE: &str = "tests/tests/architecture.rs";

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The workspace members, from the root Cargo.toml.
fn members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let list = manifest
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list.to_owned())
        .unwrap_or_default();
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The string literals starting like a subject on the code (not comment)
/// lines of a file, with their line numbers.
fn subject_literals(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for prefix in ["\"evt.", "\"cmd.", "\"qry.", "\"dlq."] {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                let literal = &rest[at..];
                let end = literal[1..].find('"').map_or(literal.len(), |e| e + 2);
                found.push((n + 1, literal[..end].to_owned()));
                rest = &literal[end.min(literal.len())..];
            }
        }
    }
    found
}

#[test]
fn subject_names_are_spelled_only_in_contracts() {
    let mut files = Vec::new();
    for member in members().iter().filter(|m| *m != "contracts") {
        for dir in ["src", "tests", "benches", "examples"] {
            rust_files(&root().join(member).join(dir), &mut files);
        }
    }
    assert!(
        !files.is_empty(),
        "no source files found under {}",
        root().display()
    );
    let mut failures = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        if relative == THIS_FILE {
            // The checker spells the prefixes it looks for, and the exceptions.
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (line, literal) in subject_literals(&text) {
            let allowed = LITERAL_EXCEPTIONS.iter().any(|(path, literals, _)| {
                *path == relative && literals.contains(&literal.as_str())
            });
            if !allowed {
                failures.push(format!("{relative}:{line}: {literal}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "\nsubject names spelled outside contracts/src:\n  {}\n  \
         Subjects are part of the contract and are spelled only in `contracts::subjects` (and \
         `contracts::consumers` for what a service reads): use the constants there \
         (`evt::ORDER_PLACED_V2`, `cmd::CHECKOUT_PLACE_ORDER`, `Team::Checkout.event_prefix()`, \
         `dlq_subject(..)`), in tests too. A string that only looks like a subject (an operator's \
         pattern, a made-up probe) goes into LITERAL_EXCEPTIONS in tests/tests/architecture.rs, \
         with the reason.",
        failures.join("\n  ")
    );
}

// ---- who builds which events ---------------------------------------------------

/// The payload types each team declares with `event!(Type, …)`.
fn event_types(team: Team) -> Vec<String> {
    event_declarations(team)
        .into_iter()
        .map(|(ty, _)| ty)
        .collect()
}

/// Each `event!(Type, evt::CONST, …)` of a team: (`Type`, `CONST`).
fn event_declarations(team: Team) -> Vec<(String, String)> {
    let source = read(&format!("contracts/src/{}.rs", team.name()));
    source
        .split("event!(")
        .skip(1)
        .filter_map(|rest| {
            let mut args = rest.split(',').map(str::trim);
            let ty = args.next()?;
            let subject = args.next()?.trim_start_matches("evt::");
            let word =
                |t: &str| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_');
            (word(ty) && word(subject)).then(|| (ty.to_owned(), subject.to_owned()))
        })
        .collect()
}

/// The constants of `contracts::subjects::evt`: (`CONST`, subject).
fn evt_constants() -> Vec<(String, String)> {
    let source = read("contracts/src/subjects.rs");
    let block = source
        .split("pub mod evt {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .unwrap_or_default();
    // A declaration may span lines: `pub const NAME: &str =\n "…";`.
    block
        .split("pub const ")
        .skip(1)
        .filter_map(|decl| {
            let (name, value) = decl.split(';').next()?.split_once(':')?;
            Some((name.trim().to_owned(), value.split('"').nth(1)?.to_owned()))
        })
        .collect()
}

#[test]
fn every_event_a_team_declares_is_in_the_catalogue() {
    let constants = evt_constants();
    let mut declared = 0;
    let mut failures = Vec::new();
    for team in Team::ALL {
        for (ty, constant) in event_declarations(team) {
            declared += 1;
            let subject = constants
                .iter()
                .find(|(name, _)| *name == constant)
                .map(|(_, subject)| subject.as_str());
            if subject.is_none_or(|s| contracts::catalog::by_subject(s).is_none()) {
                failures.push(format!(
                    "contracts/src/{}.rs: `{ty}` ({constant})",
                    team.name()
                ));
            }
        }
    }
    assert!(
        declared >= contracts::catalog::EVENTS.len(),
        "found {declared} `event!` declarations for {} catalogued events: the scan is broken",
        contracts::catalog::EVENTS.len()
    );
    assert!(
        failures.is_empty(),
        "\nevents declared with `event!` but missing from `contracts::catalog::EVENTS`:\n  {}\n  \
         An event outside the catalogue has no schema, no golden samples, no AsyncAPI channel \
         and no contract test, yet a service could publish it. Add `describe::<Type>()` to \
         EVENTS in contracts/src/catalog.rs, then run `BAZAAR_BLESS=1 cargo test -p contracts` \
         to write its schema, and add a sample (contracts/README.md).",
        failures.join("\n  ")
    );
}

/// Where `text` builds a value of `ty` with a struct literal (`Ty {`).
fn constructions(text: &str, ty: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| {
            line.match_indices(ty).any(|(at, _)| {
                let before = line[..at].chars().last();
                let after = line[at + ty.len()..].trim_start();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('{')
            })
        })
        .map(|(n, _)| n + 1)
        .collect()
}

#[test]
fn a_service_builds_only_its_own_teams_events_and_the_edge_none() {
    let mut failures = Vec::new();
    for service in SERVICES {
        let own = Team::ALL.into_iter().find(|t| t.service() == service);
        let mut files = Vec::new();
        rust_files(&root().join(service).join("src"), &mut files);
        for team in Team::ALL.into_iter().filter(|t| Some(*t) != own) {
            for ty in event_types(team) {
                for file in &files {
                    let text = std::fs::read_to_string(file).unwrap_or_default();
                    for line in constructions(&text, &ty) {
                        let at = file
                            .strip_prefix(root())
                            .unwrap_or(file)
                            .display()
                            .to_string();
                        failures.push(format!(
                            "{at}:{line}: {service} builds `{ty}`, an event the {} team owns \
                             ({}). Only the owning team publishes its events (DESIGN §1); the \
                             broker refuses {service}'s publish at run time. Publish an event of \
                             your own team and let {} react to it, or ask the {} team for the \
                             event you need.",
                            team.name(),
                            team.event_prefix(),
                            team.service(),
                            team.name()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---- broker permissions ----------------------------------------------------------

/// `user -> its publish allow list`, from `nats/users.conf`.
fn publish_allows() -> Vec<(String, Vec<String>)> {
    let conf: String = read("nats/users.conf")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    conf.split("user:")
        .skip(1)
        .filter_map(|block| {
            let name = block.split('"').nth(1)?.to_owned();
            let publish = block.split_once("publish:")?.1;
            let allow = publish.split_once('[')?.1.split_once(']')?.0;
            let subjects = allow
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            Some((name, subjects))
        })
        .collect()
}

#[test]
fn the_brokers_users_publish_only_their_own_teams_events() {
    let users = publish_allows();
    let mut failures = Vec::new();
    let events = |allow: &[String]| -> Vec<String> {
        allow
            .iter()
            .filter(|s| s.starts_with("evt.") || *s == ">" || s.starts_with('*'))
            .cloned()
            .collect()
    };
    for team in Team::ALL {
        let service = team.service();
        let Some((_, allow)) = users.iter().find(|(u, _)| u == service) else {
            failures.push(format!(
                "nats/users.conf has no user {service}: every team's service connects as its own \
                 user, limited to its own prefix"
            ));
            continue;
        };
        if events(allow) != [team.event_prefix()] {
            failures.push(format!(
                "nats/users.conf: {service} may publish {:?}, but the ownership table gives the \
                 {} team exactly [\"{}\"]: a service publishes its own team's events and no \
                 other's. Fix its `publish: {{ allow: [...] }}`.",
                events(allow),
                team.name(),
                team.event_prefix()
            ));
        }
        let dlq: Vec<&String> = allow.iter().filter(|s| s.starts_with("dlq.")).collect();
        if dlq != [&format!("dlq.{service}.>")] {
            failures.push(format!(
                "nats/users.conf: {service} may publish dead letters on {dlq:?}; it files only \
                 its own, on [\"dlq.{service}.>\"]"
            ));
        }
    }
    for (user, allow) in &users {
        let is_team = Team::ALL.iter().any(|t| t.service() == user);
        if !is_team && user != "ops" && !events(allow).is_empty() {
            failures.push(format!(
                "nats/users.conf: {user} may publish {:?}; only a team's own service publishes \
                 events{}",
                events(allow),
                if user == EDGE_API {
                    " (the edge sends commands and reads views; it never publishes events)"
                } else {
                    ""
                }
            ));
        }
    }
    assert!(
        users.iter().any(|(u, _)| u == EDGE_API),
        "nats/users.conf has no user {EDGE_API}"
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---- the parsers above, on made-up input ------------------------------------------

#[test]
fn subject_literals_skip_comments_and_find_each_literal() {
    let text = "// \"evt.x.y.v1\" in a comment\nlet a = (\"evt.a.b.v1\", \"cmd.c.d\");\n";
    assert_eq!(
        subject_literals(text),
        [
            (2, "\"evt.a.b.v1\"".to_owned()),
            (2, "\"cmd.c.d\"".to_owned())
        ]
    );
}

#[test]
fn constructions_find_struct_literals_but_not_types_or_longer_names() {
    let text = "let e: OrderPlacedV1 = x;\nlet e = OrderPlacedV1 {\nlet f = MyOrderPlacedV1 {\n";
    assert_eq!(constructions(text, "OrderPlacedV1"), [2]);
}
