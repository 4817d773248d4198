//! The shipped components run unchanged under Spin: every import is something Spin 4.0.x's
//! `platform` world provides (its `wit/world.wit`: `wasi:cli/imports@0.2.x` — cli, io,
//! clocks, random, filesystem, sockets —, `wasi:http` 0.2.x, `fermyon:spin/*@2.0.0`,
//! `spin:*@3.0.0`), and the HTTP entry point is `wasi:http/incoming-handler@0.2.x`. A
//! host-only import (say, a `redwasm:` interface) would make `spin up` refuse the component.

use std::path::PathBuf;

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// The components `redwasm serve` and `spin.toml` ship.
const SHIPPED: [&str; 3] = [
    "redwasm_cache.wasm",
    "redwasm_ratelimit.wasm",
    "redwasm_queue.wasm",
];

/// WASI 0.2 packages included by Spin's `platform` world (any 0.2.x: wasmtime's linker, and so
/// Spin's, matches semver-compatible versions).
const WASI_02_PACKAGES: [&str; 7] = [
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
    "wasi:http",
];

/// Spin's own interfaces, by exact name.
const SPIN_INTERFACES: [&str; 10] = [
    "fermyon:spin/redis@2.0.0",
    "fermyon:spin/variables@2.0.0",
    "fermyon:spin/key-value@2.0.0",
    "fermyon:spin/sqlite@2.0.0",
    "fermyon:spin/mqtt@2.0.0",
    "fermyon:spin/postgres@2.0.0",
    "fermyon:spin/mysql@2.0.0",
    "fermyon:spin/llm@2.0.0",
    "spin:redis/redis@3.0.0",
    "spin:variables/variables@3.0.0",
];

fn spin_provides(import: &str) -> bool {
    if SPIN_INTERFACES.contains(&import) {
        return true;
    }
    let Some((path, version)) = import.split_once('@') else {
        return false;
    };
    let Some((package, _interface)) = path.split_once('/') else {
        return false;
    };
    WASI_02_PACKAGES.contains(&package) && version.starts_with("0.2.")
}

#[test]
fn allowlist_accepts_spin_interfaces_and_rejects_others() {
    assert!(spin_provides("wasi:io/streams@0.2.0"));
    assert!(spin_provides("wasi:http/types@0.2.6"));
    assert!(spin_provides("fermyon:spin/redis@2.0.0"));
    assert!(!spin_provides("redwasm:cache/cache@0.2.0"));
    assert!(!spin_provides("wasi:http/types@0.3.0-rc-2026-03-15"));
    assert!(!spin_provides("fermyon:spin/redis@9.0.0"));
    assert!(!spin_provides("wasi:keyvalue/store@0.2.0-draft"));
}

#[test]
fn shipped_components_import_only_what_spin_provides() {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).unwrap();
    let dir = PathBuf::from(env!("REDWASM_COMPONENTS_DIR"));
    for file in SHIPPED {
        let path = dir.join(file);
        let component = Component::from_file(&engine, &path)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let ty = component.component_type();
        let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
        assert!(!imports.is_empty(), "{file} imports nothing?");
        assert!(
            imports.contains(&"fermyon:spin/redis@2.0.0"),
            "{file} should reach Redis through Spin's interface: {imports:?}"
        );
        let foreign: Vec<&&str> = imports.iter().filter(|i| !spin_provides(i)).collect();
        assert!(
            foreign.is_empty(),
            "{file} imports what Spin does not provide: {foreign:?}"
        );
        let exports: Vec<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
        assert!(
            exports
                .iter()
                .any(|e| e.starts_with("wasi:http/incoming-handler@0.2.")),
            "{file} has no Spin HTTP entry point: {exports:?}"
        );
        // The one-call entry point the redwasm host prefers; an extra export that Spin
        // ignores (it adds no import, as checked above).
        assert!(
            exports.contains(&"redwasm:http/handler@0.1.0"),
            "{file} has no redwasm:http/handler export: {exports:?}"
        );
    }
}
