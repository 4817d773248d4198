//! Used by `host/build.rs` and `tests/build.rs`: builds every crate under a directory for
//! `wasm32-wasip2`, so `cargo build` / `cargo test` alone produce the `.wasm` files (as
//! wasmtime's test-programs do).
//!
//! The inner cargo uses its own target dir (`<workspace>/target/wasm`) so it never waits on
//! the lock the outer build holds. Crates that are members of the main workspace are built
//! together (`-p` each). A crate whose `Cargo.toml` has its own `[workspace]` table (e.g. a
//! component that needs a newer SDK than the workspace's lockfile) is built on its own with
//! `--manifest-path`, with its own `Cargo.lock`, into the same target dir.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds every crate under `components` (a directory of crates) in `workspace` for
/// `wasm32-wasip2`, tells cargo when to rerun, and exports the output directory to the
/// crate being built as the compile-time environment variable `env_name`.
/// `REDWASM_SKIP_WASM_BUILD` skips the build (the variable is still exported).
pub fn build_components(workspace: &Path, components: &Path, env_name: &str) {
    let target_dir = workspace.join("target").join("wasm");
    let out_dir = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env={env_name}={}", out_dir.display());
    println!("cargo:rerun-if-env-changed=REDWASM_SKIP_WASM_BUILD");
    println!("cargo:rerun-if-changed={}", components.display());
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());

    let packages = component_packages(components);
    for package in &packages {
        println!("cargo:rerun-if-changed={}", package.dir.display());
    }
    if packages.is_empty() {
        return;
    }
    if std::env::var_os("REDWASM_SKIP_WASM_BUILD").is_some() {
        println!(
            "cargo:warning=REDWASM_SKIP_WASM_BUILD is set: components in {} were not rebuilt",
            components.display()
        );
        return;
    }

    let (standalone, members): (Vec<_>, Vec<_>) =
        packages.iter().partition(|package| package.standalone);
    if !members.is_empty() {
        let mut cmd = wasm_cargo(&target_dir);
        cmd.current_dir(workspace);
        for package in &members {
            cmd.args(["-p", &package.name]);
        }
        run(cmd, &format!("the components in {}", components.display()));
    }
    for package in standalone {
        let mut cmd = wasm_cargo(&target_dir);
        cmd.current_dir(&package.dir)
            .arg("--manifest-path")
            .arg(package.dir.join("Cargo.toml"));
        run(cmd, &format!("the component `{}`", package.name));
    }
}

/// `cargo build --release --target wasm32-wasip2 --target-dir <target_dir>`, with the outer
/// build's flags removed.
fn wasm_cargo(target_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--target-dir",
    ])
    .arg(target_dir);
    // Flags meant for the host build (coverage, sanitizers, clippy's wrapper, profile
    // overrides) must not leak into the wasm build: it is the same build `spin build` runs, so
    // that neither rebuilds over the other (the components' profile is in Cargo.toml).
    for var in [
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_PROFILE_RELEASE_STRIP",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo to build {what} for wasm32-wasip2: {e}"));
    if !status.success() {
        panic!(
            "building {what} for wasm32-wasip2 failed (is the target installed? \
             `rustup target add wasm32-wasip2`)"
        );
    }
}

/// A crate under `tests/components/`.
struct Package {
    dir: PathBuf,
    name: String,
    /// Its `Cargo.toml` has its own `[workspace]`: built with `--manifest-path`.
    standalone: bool,
}

/// Each crate under `tests/components/`, sorted by directory.
fn component_packages(components: &Path) -> Vec<Package> {
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
        let standalone = text.lines().any(|l| l.trim() == "[workspace]");
        if let Some(name) = name {
            found.push(Package {
                dir: entry.path(),
                name,
                standalone,
            });
        }
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    found
}
