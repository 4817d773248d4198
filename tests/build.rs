//! Builds every test-only component under `tests/components/` for `wasm32-wasip2`, so that
//! `cargo test -p redwasm-tests` alone produces the `.wasm` files the end-to-end tests serve.

fn main() {
    let manifest_dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("tests/ sits in the workspace root");
    redwasm_build_support::build_components(
        workspace,
        &manifest_dir.join("components"),
        "REDWASM_TEST_COMPONENTS_DIR",
    );
}
