//! frankly-client sends nothing by itself: no crate in its (normal)
//! dependency tree may be a networking crate. Read from `cargo metadata`, so
//! a dependency added anywhere below frankly-client fails this test.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Crates that open sockets, speak network protocols, or run the async
/// runtimes those are built on.
const NETWORKING: &[&str] = &[
    "tokio",
    "mio",
    "async-std",
    "smol",
    "async-net",
    "async-io",
    "socket2",
    "hyper",
    "hyper-util",
    "h2",
    "h3",
    "reqwest",
    "ureq",
    "curl",
    "curl-sys",
    "isahc",
    "surf",
    "attohttpc",
    "minreq",
    "axum",
    "actix-web",
    "warp",
    "tower",
    "tonic",
    "quinn",
    "tungstenite",
    "tokio-tungstenite",
    "libp2p",
    "trust-dns-resolver",
    "hickory-resolver",
    "rustls",
    "native-tls",
    "openssl",
    "openssl-sys",
    "webpki",
    "sqlx",
    "postgres",
    "mysql",
    "redis",
    "lettre",
];

/// The names of every package reachable from `root` through normal
/// (not dev, not build) dependencies in a `cargo metadata` document.
fn normal_dependency_closure(metadata: &Value, root: &str) -> BTreeSet<String> {
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &Value> =
        metadata["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let start = names.iter().find(|(_, n)| **n == root).map(|(id, _)| *id).unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    seen.iter().map(|id| names[id].to_owned()).collect()
}

fn networking_crates(closure: &BTreeSet<String>) -> Vec<String> {
    closure.iter().filter(|n| NETWORKING.contains(&n.as_str())).cloned().collect()
}

#[test]
fn no_networking_crate_is_below_frankly_client() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let closure = normal_dependency_closure(&metadata, "frankly-client");
    for ours in ["frankly-hash", "frankly-bank", "frankly-classify", "frankly-policy", "tract-onnx", "image"] {
        assert!(closure.contains(ours), "the walk must reach {ours}");
    }
    assert_eq!(networking_crates(&closure), Vec::<String>::new(), "networking crates under frankly-client");
}

#[test]
fn the_check_catches_a_networking_crate_deep_in_the_tree() {
    let metadata = serde_json::json!({
        "packages": [
            {"id": "a", "name": "frankly-client"}, {"id": "b", "name": "innocent"},
            {"id": "c", "name": "tokio"}, {"id": "d", "name": "reqwest"},
        ],
        "resolve": {"nodes": [
            {"id": "a", "deps": [{"pkg": "b", "dep_kinds": [{"kind": null}]}, {"pkg": "d", "dep_kinds": [{"kind": "dev"}]}]},
            {"id": "b", "deps": [{"pkg": "c", "dep_kinds": [{"kind": null}]}]},
            {"id": "c", "deps": []}, {"id": "d", "deps": []},
        ]},
    });
    let closure = normal_dependency_closure(&metadata, "frankly-client");
    assert_eq!(networking_crates(&closure), ["tokio"], "dev-dependencies do not ship, normal ones do");
}
