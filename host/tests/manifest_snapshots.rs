//! Snapshot tests of the manifest reader: every file under `tests/data/manifests/valid/` must
//! read, and its typed form is snapshotted; every file under `tests/data/manifests/invalid/`
//! must be refused, and its error message is snapshotted. Adding a file adds a snapshot:
//! accept new ones locally with `INSTA_UPDATE=always cargo test -p redwasm-host --test
//! manifest_snapshots` and review them under `tests/snapshots/` (CI refuses new snapshots).

use std::path::{Path, PathBuf};

use redwasm::manifest::{Manifest, ManifestError};
use redwasm::variables::{AppVariables, EnvironmentSource};

/// The manifests of one folder, as `(file stem, text)`, sorted by name.
fn manifests(folder: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/manifests")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            (stem, text)
        })
        .collect()
}

/// Reads `text` as if it were `/app/<name>.toml`, so that snapshots do not depend on where
/// the repository is checked out.
fn parse(name: &str, text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, &Path::new("/app").join(format!("{name}.toml")))
}

#[test]
fn valid_manifests() {
    for (name, text) in manifests("valid") {
        let manifest =
            parse(&name, &text).unwrap_or_else(|e| panic!("{name}.toml should be valid, but: {e}"));
        insta::assert_debug_snapshot!(format!("valid__{name}"), manifest);
    }
}

#[test]
fn invalid_manifests() {
    for (name, text) in manifests("invalid") {
        let error = match parse(&name, &text) {
            Ok(manifest) => panic!("{name}.toml should be refused, but read as {manifest:#?}"),
            Err(error) => error,
        };
        insta::assert_snapshot!(format!("invalid__{name}"), error.to_string());
    }
}

/// The repository's `workers.toml` (the queue-poll trigger's manifest) stays valid and
/// feeds queue `work` to the example worker.
#[test]
fn repository_workers_manifest() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workers.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest = Manifest::parse(&text, Path::new("/repo/workers.toml")).unwrap();
    let trigger = &manifest.host.queue_trigger[0];
    assert_eq!(
        (trigger.queue.as_str(), trigger.component.as_str()),
        ("work", "example-worker")
    );
    assert!(manifest.component(&trigger.queue_component).is_some());
}

/// The repository's own `spin.toml` (what `redwasm serve` reads by default) stays valid.
#[test]
fn repository_manifest() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spin.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest = Manifest::parse(&text, Path::new("/repo/spin.toml")).unwrap();
    insta::assert_debug_snapshot!("repository_spin_toml", manifest);

    // And its variables resolve without any environment, as `redwasm serve` relies on.
    let app = AppVariables::resolve(
        &manifest.variables,
        &EnvironmentSource::from_map::<String, String>([]),
        &Default::default(),
    )
    .unwrap();
    for component in manifest.components.values() {
        app.component_ctx(component).unwrap();
        for host in &component.allowed_outbound_hosts {
            app.expand(host).unwrap();
        }
    }
}

#[test]
fn load_resolves_sources_against_the_manifest_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(
        &path,
        "spin_manifest_version = 2\n[application]\nname = \"a\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
         [component.web]\nsource = \"out/web.wasm\"\n",
    )
    .unwrap();
    let manifest = Manifest::load(&path).unwrap();
    assert_eq!(manifest.base_dir, dir.path());
    assert_eq!(
        manifest.components["web"].source,
        dir.path().join("out/web.wasm")
    );

    let missing = dir.path().join("absent.toml");
    let error = Manifest::load(&missing).unwrap_err();
    assert!(matches!(error, ManifestError::Read { .. }), "{error}");
    assert!(error.to_string().contains("absent.toml"), "{error}");
}

/// Variables of the maximal manifest resolve from an injected environment, and a required
/// variable left unset is an error at load time.
#[test]
fn maximal_manifest_variables() {
    let (_, text) = manifests("valid")
        .into_iter()
        .find(|(name, _)| name == "maximal")
        .unwrap();
    let manifest = parse("maximal", &text).unwrap();

    let error = AppVariables::resolve(
        &manifest.variables,
        &EnvironmentSource::from_map::<String, String>([]),
        &Default::default(),
    )
    .unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"application variable `api_token` is required but has no value: set the environment variable SPIN_VARIABLE_API_TOKEN");

    let env = EnvironmentSource::from_map([
        ("SPIN_VARIABLE_API_TOKEN", "t0k3n"),
        ("SPIN_VARIABLE_REGION", "us"),
    ]);
    let overrides = [(
        "redis_address".to_string(),
        "redis://override:6379".to_string(),
    )]
    .into();
    let app = AppVariables::resolve(&manifest.variables, &env, &overrides).unwrap();
    let cache = app.component_ctx(&manifest.components["cache"]).unwrap();
    assert_eq!(cache.resolve("token").unwrap(), "Bearer t0k3n");
    assert_eq!(
        cache.resolve("redis_address").unwrap(),
        "redis://override:6379"
    );
    assert_eq!(cache.resolve("literal").unwrap(), "no templates here");
    let hosts: Vec<String> = manifest.components["cache"]
        .allowed_outbound_hosts
        .iter()
        .map(|h| app.expand(h).unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["redis://override:6379", "https://us.example.com:443"]
    );
}
