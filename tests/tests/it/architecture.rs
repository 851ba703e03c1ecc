//! The dependency arrows between the workspace's crates, read from `cargo metadata` (offline,
//! no dependencies resolved): the core knows no other crate and no async runtime, the
//! backends and the server build on the core only, the `moodb` binary on those three, and the
//! test and automation crates are depended on by nothing (but xtask → moodb-tests). fuzz/ is
//! outside the workspace and is read with its own manifest; it must not need the server.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

/// The async runtimes moodb-core must not depend on (normal dependencies).
const RUNTIMES: &[&str] = &["actix", "actix-rt", "tokio", "tokio-util"];

/// Which workspace crates each workspace crate may depend on (`None`: any of them).
const ALLOWED: &[(&str, Option<&[&str]>)] = &[
    ("moodb-core", Some(&[])),
    ("moodb-backends", Some(&["moodb-core"])),
    ("moodb-server", Some(&["moodb-core"])),
    (
        "moodb",
        Some(&["moodb-core", "moodb-server", "moodb-backends"]),
    ),
    ("moodb-tests", None),
    ("xtask", None),
];

/// The crates nothing may depend on, but for the arrows listed here.
const LEAVES: &[(&str, &[&str])] = &[("moodb-tests", &["xtask"]), ("xtask", &[])];

/// One dependency of a package: its name and kind (`normal`, `dev` or `build`).
#[derive(Debug, Clone)]
struct Dep {
    name: String,
    kind: String,
}

/// A package and its declared dependencies.
#[derive(Debug, Clone)]
struct Package {
    name: String,
    deps: Vec<Dep>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo metadata --no-deps --offline` of `manifest`: the packages it names.
fn metadata(manifest: &Path) -> Vec<Package> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata --manifest-path {}: {}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().unwrap().to_string(),
            deps: p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| Dep {
                    name: d["name"].as_str().unwrap().to_string(),
                    kind: d["kind"].as_str().unwrap_or("normal").to_string(),
                })
                .collect(),
        })
        .collect()
}

/// Every arrow of `packages` (the workspace's members) that breaks the rules, one line each.
fn wrong_arrows(packages: &[Package]) -> Vec<String> {
    let members: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut wrong = Vec::new();
    for p in packages {
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == p.name) else {
            wrong.push(format!(
                "{}: a workspace crate with no entry in ALLOWED (tests/tests/it/architecture.rs); say what it may depend on",
                p.name
            ));
            continue;
        };
        for d in &p.deps {
            if p.name == "moodb-core" && d.kind == "normal" && RUNTIMES.contains(&d.name.as_str()) {
                wrong.push(format!(
                    "moodb-core → {} ({}): the core has no async runtime; that belongs in moodb-server",
                    d.name, d.kind
                ));
            }
            if !members.contains(&d.name.as_str()) {
                continue;
            }
            if let Some(allowed) = allowed {
                if !allowed.contains(&d.name.as_str()) {
                    wrong.push(format!(
                        "{} → {} ({}): {} may depend only on [{}] of the workspace",
                        p.name,
                        d.name,
                        d.kind,
                        p.name,
                        allowed.join(", ")
                    ));
                    continue;
                }
            }
            if let Some((_, users)) = LEAVES.iter().find(|(leaf, _)| *leaf == d.name) {
                if !users.contains(&p.name.as_str()) {
                    wrong.push(format!(
                        "{} → {} ({}): nothing depends on {} but [{}]",
                        p.name,
                        d.name,
                        d.kind,
                        d.name,
                        users.join(", ")
                    ));
                }
            }
        }
    }
    wrong
}

#[test]
fn workspace_crates_depend_only_along_the_allowed_arrows() {
    let packages = metadata(&root().join("Cargo.toml"));
    for (name, _) in ALLOWED {
        assert!(
            packages.iter().any(|p| p.name == *name),
            "{name} is in ALLOWED but not in the workspace"
        );
    }
    let wrong = wrong_arrows(&packages);
    assert!(
        wrong.is_empty(),
        "wrong dependency arrows:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn fuzz_does_not_depend_on_the_server() {
    let packages = metadata(&root().join("fuzz").join("Cargo.toml"));
    let fuzz = packages.iter().find(|p| p.name == "moodb-fuzz").unwrap();
    let wrong: Vec<String> = fuzz
        .deps
        .iter()
        .filter(|d| d.name == "moodb-server")
        .map(|d| {
            format!(
                "moodb-fuzz → moodb-server ({}): fuzz the core and the backends, not the server",
                d.kind
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong dependency arrows:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_wrong_arrow_is_named() {
    let package = |name: &str, deps: &[(&str, &str)]| Package {
        name: name.to_string(),
        deps: deps
            .iter()
            .map(|(n, k)| Dep {
                name: n.to_string(),
                kind: k.to_string(),
            })
            .collect(),
    };
    let good = vec![
        package("moodb-core", &[("bytes", "normal"), ("tokio", "dev")]),
        package("moodb-backends", &[("moodb-core", "normal")]),
        package(
            "moodb-server",
            &[("moodb-core", "normal"), ("tokio", "normal")],
        ),
        package(
            "moodb",
            &[("moodb-server", "normal"), ("moodb-backends", "normal")],
        ),
        package("moodb-tests", &[("moodb-core", "normal")]),
        package("xtask", &[("moodb-tests", "normal")]),
    ];
    assert_eq!(wrong_arrows(&good), Vec::<String>::new());

    let mut bad = good.clone();
    bad[0].deps.push(Dep {
        name: "actix".into(),
        kind: "normal".into(),
    });
    bad[1].deps.push(Dep {
        name: "moodb-server".into(),
        kind: "normal".into(),
    });
    bad[3].deps.push(Dep {
        name: "moodb-tests".into(),
        kind: "dev".into(),
    });
    bad[4].deps.push(Dep {
        name: "xtask".into(),
        kind: "normal".into(),
    });
    bad.push(package("newcomer", &[]));
    let wrong = wrong_arrows(&bad);
    let named = |arrow: &str| wrong.iter().any(|w| w.starts_with(arrow));
    assert!(named("moodb-core → actix (normal)"), "{wrong:?}");
    assert!(named("moodb-backends → moodb-server (normal)"), "{wrong:?}");
    assert!(named("moodb → moodb-tests (dev)"), "{wrong:?}");
    assert!(named("moodb-tests → xtask (normal)"), "{wrong:?}");
    assert!(named("newcomer: "), "{wrong:?}");
    assert_eq!(wrong.len(), 5, "{wrong:?}");
}
