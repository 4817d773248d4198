//! Builds every component under `components/` for `wasm32-wasip2`, so that `cargo build` and
//! `cargo test` produce the `.wasm` files the host serves (as wasmtime's test-programs do).
//!
//! The inner cargo uses its own target dir (`target/wasm`) so it never waits on the lock the
//! outer build holds; `spin.toml` points at the same files, so one build serves both hosts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace root");
    let target_dir = workspace.join("target").join("wasm");
    let out_dir = target_dir.join("wasm32-wasip2").join("release");
    println!(
        "cargo:rustc-env=REDWASM_COMPONENTS_DIR={}",
        out_dir.display()
    );
    println!("cargo:rerun-if-env-changed=REDWASM_SKIP_WASM_BUILD");
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());

    let packages = component_packages(&workspace.join("components"));
    for (dir, _) in &packages {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    if std::env::var_os("REDWASM_SKIP_WASM_BUILD").is_some() {
        println!("cargo:warning=REDWASM_SKIP_WASM_BUILD is set: components were not rebuilt");
        return;
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for (_, name) in &packages {
        cmd.args(["-p", name]);
    }
    // Small .wasm files compile faster at load time; debug info is no use in them here.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    // Flags meant for the host build (coverage, sanitizers, clippy's wrapper) must not leak
    // into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("run cargo to build the wasm components");
    if !status.success() {
        panic!(
            "building the components for wasm32-wasip2 failed (is the target installed? \
             `rustup target add wasm32-wasip2`)"
        );
    }
}

/// `(directory, package name)` of each crate under `components/`.
fn component_packages(components: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(components) else {
        return found;
    };
    for entry in entries.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let name = text
            .lines()
            .skip_while(|l| l.trim() != "[package]")
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix("name")
                    .and_then(|rest| rest.trim_start().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
            });
        if let Some(name) = name {
            found.push((entry.path(), name));
        }
    }
    found.sort();
    found
}
