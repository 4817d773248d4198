//! Builds every component under `components/` for `wasm32-wasip2`, so that `cargo build` and
//! `cargo test` produce the `.wasm` files the host serves; `spin.toml` points at the same
//! files (`target/wasm/wasm32-wasip2/release/`), so one build serves both hosts.

fn main() {
    let manifest_dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace root");
    redwasm_build_support::build_components(
        workspace,
        &workspace.join("components"),
        "REDWASM_COMPONENTS_DIR",
    );
}
