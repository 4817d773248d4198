//! The Spin manifest (`spin.toml`, `spin_manifest_version = 2`), read, validated and typed.
//!
//! # Layout
//! - [`Manifest`]: the validated application: [`Application`], `[variables]`
//!   ([`Variable`]), `[[trigger.http]]` ([`HttpTrigger`]), `[component.<id>]` ([`Component`])
//!   and redwasm's own settings ([`HostSettings`], [`ComponentHostSettings`]).
//!   [`Manifest::load`] reads a file; [`Manifest::parse`] reads text.
//! - [`ManifestError`] / [`ValidationError`]: why a manifest was refused. Validation reports
//!   every problem it finds, not just the first.
//! - `schema.rs`: the file as written, mirroring Spin's schema; `host_settings.rs`: the
//!   redwasm tool tables.
//!
//! # What is read
//! Spin's v2 schema, closed (unknown keys refused) where Spin's is. Accepted and used:
//! `[application]` (`name`, `version`, `description`, `authors`), `[variables]`,
//! `[[trigger.http]]` (`route`, `component`, `executor = { type = "http" }`),
//! `[component.<id>]` `source`, `description`, `variables`, `allowed_outbound_hosts`,
//! `environment`, `files`, `exclude_files`, `key_value_stores`. Accepted and ignored: `build`,
//! `targets`, `profile`, `sqlite_databases`, `ai_models` (redwasm provides neither API:
//! a component importing one fails to link, with the engine's message). Refused with a
//! message naming the feature: other trigger types, inline components, `static_response`,
//! the Wagi executor, remote and registry sources, component `dependencies`, the deprecated
//! `allowed_http_hosts` and `[application.trigger.http] base` other than `/` (as Spin does).
//! `source` and `files` paths are relative to the manifest's directory; `source` is
//! resolved to a path here.
//!
//! # Host-only settings: the `tool` tables
//! Spin's v2 schema is closed at the top level and inside `[component.<id>]` (so an extra
//! `[redwasm]` table would make `spin up` refuse the file), but it reserves
//! `[application.tool.<name>]` and `[component.<id>.tool.<name>]` for other tools and ignores
//! them (since Spin 2.1). redwasm's settings live there, under the name `redwasm`:
//!
//! ```toml
//! [application.tool.redwasm]
//! listen = "0.0.0.0:3000"          # default: the command line's
//! redis_url = "redis://redis:6379" # default: REDIS_URL, else an owned redis-server
//!
//! [component.cache.tool.redwasm]
//! reuse = 128                      # requests per instance; 1 = a fresh instance each time
//! max_concurrent_per_instance = 16
//! sandbox = true                   # confine Redis keys to the component's prefix
//! request_timeout_ms = 30000
//! max_request_body_bytes = 2097152
//! ```
//!
//! One file therefore serves `spin up` and `redwasm serve`, with the settings next to the
//! component they tune, and no second file can drift from the manifest. They are closed
//! (unknown keys refused) and checked ([`ComponentHostSettings`] lists the defaults). The
//! command line and environment override `[application.tool.redwasm]`.
//!
//! # Validation
//! On top of the schema: the version; component ids (Spin's kebab-case rule); variable names
//! (Spin's `lower_snake_case`); each variable has exactly one of `default` and
//! `required = true`; every template (`variables` values, `allowed_outbound_hosts`) parses and
//! refers only to declared application variables; every trigger names a declared component;
//! routes parse and no two are the same pattern (see [`crate::routes`]); at least one HTTP
//! trigger. Variable *values* (and so a required variable left unset) are checked when they
//! are resolved, by [`crate::variables::AppVariables::resolve`].

mod host_settings;
mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use host_settings::{
    ComponentHostSettings, HostSettings, QueueTriggerSettings, ReadGrantSettings, TOOL_NAME,
};

use crate::routes::{RouteError, Router};
use crate::template::{Template, VariableError, check_declared_name};
use schema::{RawComponent, RawComponentRef, RawManifest, RawRoute, RawSource};

/// The only manifest version redwasm reads.
pub const SUPPORTED_VERSION: i64 = 2;

/// A validated Spin manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The directory that relative paths in the manifest are relative to.
    pub base_dir: PathBuf,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`, by name.
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.http]]`, in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[component.<id>]`, by id.
    pub components: BTreeMap<String, Component>,
    /// `[application.tool.redwasm]`.
    pub host: HostSettings,
    /// Triggers only Spin runs (`[[trigger.redis]]`), described for the host's start-up log:
    /// the redwasm host runs queue workers with its own queue-poll trigger instead.
    pub spin_only_triggers: Vec<String>,
}

/// `[application]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// `name`.
    pub name: String,
    /// `version`, if given.
    pub version: Option<String>,
    /// `description`, if given.
    pub description: Option<String>,
    /// `authors`.
    pub authors: Vec<String>,
}

/// One `[variables]` entry: `{ default = "..." }` or `{ required = true }`, optionally
/// `secret = true` and a `description`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The value used when nothing else sets one.
    pub default: Option<String>,
    /// Whether a value must come from elsewhere (the environment).
    #[serde(default)]
    pub required: bool,
    /// Whether the value is sensitive (never logged).
    #[serde(default)]
    pub secret: bool,
    /// Free text.
    pub description: Option<String>,
}

/// One `[[trigger.http]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTrigger {
    /// The trigger's optional `id`.
    pub id: Option<String>,
    /// Where it is served.
    pub route: TriggerRoute,
    /// The id of the component that serves it (declared in `[component.<id>]`).
    pub component: String,
}

/// A trigger's `route`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerRoute {
    /// A routable path pattern, as written (see [`crate::routes`]).
    Path(String),
    /// `{ private = true }`: not reachable over HTTP.
    Private,
}

/// One `[component.<id>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// The component's id.
    pub id: String,
    /// The `.wasm` file: `source` joined to the manifest's directory.
    pub source: PathBuf,
    /// `description`, if given.
    pub description: Option<String>,
    /// `variables`: name → template (e.g. `"{{ redis_address }}"`), validated but unexpanded.
    pub variables: BTreeMap<String, String>,
    /// `allowed_outbound_hosts`, as written (entries may be templates).
    pub allowed_outbound_hosts: Vec<String>,
    /// `environment`: environment variables for the guest.
    pub environment: BTreeMap<String, String>,
    /// `files`, as written (relative to the manifest's directory).
    pub files: Vec<FilesMount>,
    /// `exclude_files`: globs of files to hide even though `files` matches them.
    pub exclude_files: Vec<String>,
    /// `key_value_stores`.
    pub key_value_stores: Vec<String>,
    /// `[component.<id>.build]`, for reference (redwasm does not build).
    pub build: Option<BuildConfig>,
    /// `[component.<id>.tool.redwasm]`, defaults filled in.
    pub host: ComponentHostSettings,
}

/// One `files` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilesMount {
    /// A glob of files to make available at the same relative path.
    Pattern(String),
    /// A host directory (`source`) mounted at a guest path (`destination`).
    Placement {
        /// Directory on the host, relative to the manifest.
        source: String,
        /// Absolute path in the guest.
        destination: String,
    },
}

/// `[component.<id>.build]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildConfig {
    /// `command`, as a list.
    pub commands: Vec<String>,
    /// `workdir`, if given.
    pub workdir: Option<String>,
    /// `watch` globs.
    pub watch: Vec<String>,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {}: {source}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML, or does not have the shape of a Spin v2 manifest.
    #[error("manifest {} is not a valid Spin manifest: {source}", path.display())]
    Syntax {
        /// The manifest's path.
        path: PathBuf,
        /// The parser's error, with line and column.
        source: toml::de::Error,
    },
    /// The manifest has the right shape but breaks the rules listed on
    /// [`ValidationError`].
    #[error("manifest {} is invalid:{}", path.display(), BulletList(errors))]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// Every problem found, in manifest order.
        errors: Vec<ValidationError>,
    },
}

/// Formats errors one per line, each preceded by `\n  - `.
struct BulletList<'a>(&'a [ValidationError]);

impl fmt::Display for BulletList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

/// One rule a manifest breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// `spin_manifest_version` is missing or not 2.
    #[error(
        "spin_manifest_version is {found}; redwasm reads version 2 manifests \
         (`spin_manifest_version = 2`; `spin doctor` can upgrade a version 1 manifest)"
    )]
    UnsupportedVersion {
        /// What the manifest has, e.g. `missing` or `"1"`.
        found: String,
    },
    /// `[application.trigger.http] base` other than `/`.
    #[error(
        "[application.trigger.http] base = {base:?}: the `base` field is deprecated and \
         only \"/\" is accepted; prepend the base to each [[trigger.http]] route instead"
    )]
    UnsupportedBase {
        /// The base as written.
        base: String,
    },
    /// `[application.trigger.http]` has a key other than `base`.
    #[error("[application.trigger.http]: {message}")]
    InvalidHttpSettings {
        /// The parser's message.
        message: String,
    },
    /// `[application.tool.redwasm]` or `[component.<id>.tool.redwasm]` is malformed.
    #[error("{table}: {message}")]
    InvalidHostSettings {
        /// The table, e.g. `[component.cache.tool.redwasm]`.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// A `[variables]` or component `variables` name breaks Spin's rule.
    #[error("{table}: {error}")]
    InvalidVariableName {
        /// The table, e.g. `[variables]`.
        table: String,
        /// The name error.
        error: VariableError,
    },
    /// A variable has neither `default` nor `required = true`.
    #[error("[variables] {name}: give it a `default` or mark it `required = true`")]
    VariableWithoutDefaultOrRequired {
        /// The variable's name.
        name: String,
    },
    /// A variable has both `default` and `required = true`.
    #[error("[variables] {name}: a `required` variable cannot have a `default`")]
    RequiredVariableWithDefault {
        /// The variable's name.
        name: String,
    },
    /// The manifest has no `[[trigger.http]]`.
    #[error("the manifest has no [[trigger.http]]: redwasm serves HTTP triggers only")]
    NoHttpTriggers,
    /// A `[[trigger.<type>]]` other than `http`.
    #[error("[[trigger.{kind}]] is not supported: redwasm serves HTTP triggers only")]
    UnsupportedTriggerType {
        /// The trigger type, e.g. `redis`.
        kind: String,
    },
    /// A trigger has no `component`.
    #[error("[[trigger.http]] #{index} (route {route}) has no `component`")]
    TriggerWithoutComponent {
        /// 1-based position among the HTTP triggers.
        index: usize,
        /// The route, for finding it.
        route: String,
    },
    /// A trigger's component is an inline table.
    #[error(
        "[[trigger.http]] #{index} (route {route}) defines its component inline, which redwasm \
         does not support: declare it as [component.<id>] and write `component = \"<id>\"`"
    )]
    InlineComponent {
        /// 1-based position among the HTTP triggers.
        index: usize,
        /// The route, for finding it.
        route: String,
    },
    /// A queue trigger names a component that is not declared.
    #[error(
        "[[application.tool.redwasm.queue_trigger]] #{index} (queue `{queue}`) refers to \
         component `{component}`, which is not declared (declared: {declared})"
    )]
    UnknownQueueTriggerComponent {
        /// 1-based position among the queue triggers.
        index: usize,
        /// The queue, for finding it.
        queue: String,
        /// The id as written.
        component: String,
        /// The declared ids, comma-separated, or `none`.
        declared: String,
    },
    /// A read grant names a component that is not declared.
    #[error(
        "[[component.{reader}.tool.redwasm.read_grants]] #{index} refers to component \
         `{component}`, which is not declared (declared: {declared})"
    )]
    UnknownReadGrantComponent {
        /// The component holding the grant.
        reader: String,
        /// 1-based position among its grants.
        index: usize,
        /// The id as written.
        component: String,
        /// The declared ids, comma-separated.
        declared: String,
    },
    /// A trigger names a component that is not declared.
    #[error(
        "[[trigger.http]] #{index} (route {route}) refers to component `{component}`, which is \
         not declared (declared: {declared})"
    )]
    UnknownComponent {
        /// 1-based position among the HTTP triggers.
        index: usize,
        /// The route, for finding it.
        route: String,
        /// The id as written.
        component: String,
        /// The declared ids, comma-separated, or `none`.
        declared: String,
    },
    /// `route = { private = false }`.
    #[error(
        "[[trigger.http]] #{index}: a route must be a string pattern or `{{ private = true }}`, \
         not `{{ private = false }}`"
    )]
    PrivateFalse {
        /// 1-based position among the HTTP triggers.
        index: usize,
    },
    /// A route is invalid, or two routes are the same pattern.
    #[error("[[trigger.http]] #{index}: {error}")]
    InvalidRoute {
        /// 1-based position among the HTTP triggers.
        index: usize,
        /// The route error.
        error: RouteError,
    },
    /// A trigger uses a feature redwasm does not support (executor, static response).
    #[error("[[trigger.http]] #{index} (route {route}): {message}")]
    UnsupportedTriggerFeature {
        /// 1-based position among the HTTP triggers.
        index: usize,
        /// The route, for finding it.
        route: String,
        /// What is unsupported.
        message: String,
    },
    /// A component id breaks Spin's kebab-case rule.
    #[error("[component.{id}]: invalid component id: {reason}")]
    InvalidComponentId {
        /// The id as written.
        id: String,
        /// What rule it breaks.
        reason: String,
    },
    /// A component's `source` is unusable.
    #[error("[component.{component}] source: {message}")]
    InvalidSource {
        /// The component id.
        component: String,
        /// What is wrong.
        message: String,
    },
    /// A template in a component is malformed or refers to an undeclared variable.
    #[error("[component.{component}] {field}: {error}")]
    InvalidTemplate {
        /// The component id.
        component: String,
        /// Where the template is, e.g. `variables.redis_address`.
        field: String,
        /// The template error.
        error: VariableError,
    },
    /// A component uses a feature redwasm does not support.
    #[error("[component.{component}] {message}")]
    UnsupportedComponentFeature {
        /// The component id.
        component: String,
        /// What is unsupported.
        message: String,
    },
}

impl Manifest {
    /// Reads and validates the manifest at `path`; relative paths in it resolve against its
    /// directory (made absolute, so the result does not depend on a later change of the
    /// working directory).
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Messages name the path as given; relative paths resolve against the absolute one.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        parse_with_base(&text, path, base_dir_of(&absolute))
    }

    /// Validates manifest `text` as if read from `path` (used in messages, and its directory
    /// is the base of relative paths; nothing is read from disk).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        parse_with_base(text, path, base_dir_of(path))
    }

    /// The routable HTTP routes as `(route, component id)`, in manifest order, ready for
    /// [`Router::build`] (private routes left out).
    pub fn http_routes(&self) -> Vec<(String, String)> {
        self.http_triggers
            .iter()
            .filter_map(|trigger| match &trigger.route {
                TriggerRoute::Path(route) => Some((route.clone(), trigger.component.clone())),
                TriggerRoute::Private => None,
            })
            .collect()
    }

    /// The router for [`Manifest::http_routes`] (cannot fail: validation built it once).
    pub fn router(&self) -> Router {
        Router::build(&self.http_routes()).unwrap_or_default()
    }

    /// The component with id `id`.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}

/// The directory of `manifest_path` (empty for a bare file name: the working directory).
fn base_dir_of(manifest_path: &Path) -> PathBuf {
    manifest_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// [`Manifest::parse`] with relative paths resolved against `base_dir`.
fn parse_with_base(text: &str, path: &Path, base_dir: PathBuf) -> Result<Manifest, ManifestError> {
    let syntax = |source| ManifestError::Syntax {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |errors| ManifestError::Invalid {
        path: path.to_path_buf(),
        errors,
    };
    // The version decides which schema applies, so check it before reading the rest: a
    // version 1 manifest would otherwise get a confusing "unknown field".
    let table: toml::Table = toml::from_str(text).map_err(syntax)?;
    if let Err(error) = check_version(&table) {
        return Err(invalid(vec![error]));
    }
    let raw: RawManifest = toml::from_str(text).map_err(syntax)?;
    let mut errors = Vec::new();
    let manifest = build(raw, base_dir, &mut errors);
    if errors.is_empty() {
        Ok(manifest)
    } else {
        Err(invalid(errors))
    }
}

/// Checks `spin_manifest_version = 2`.
fn check_version(table: &toml::Table) -> Result<(), ValidationError> {
    match table.get("spin_manifest_version") {
        Some(toml::Value::Integer(SUPPORTED_VERSION)) => Ok(()),
        Some(other) => Err(ValidationError::UnsupportedVersion {
            found: other.to_string(),
        }),
        None => Err(ValidationError::UnsupportedVersion {
            found: match table.get("spin_version") {
                Some(v1) => {
                    format!("missing (this looks like a version 1 manifest: spin_version = {v1})")
                }
                None => "missing".into(),
            },
        }),
    }
}

/// Checks Spin's rule for component ids: `-`-separated words of ASCII letters and digits,
/// each starting with a letter and all lowercase or all uppercase.
fn check_component_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.contains('_') {
        return Err("words must be separated with '-', not '_'".into());
    }
    for word in id.split('-') {
        let Some(first) = word.chars().next() else {
            return Err("'-'-separated words must not be empty".into());
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "'-'-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        if let Some(bad) = word.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(format!(
                "'-'-separated words may only contain alphanumeric ASCII; got {bad:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        if word
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c.is_ascii_uppercase() != upper)
        {
            return Err(format!(
                "'-'-separated words must be all lowercase or all UPPERCASE; got {word:?}"
            ));
        }
    }
    Ok(())
}

/// Turns the raw manifest into the typed one, pushing every rule it breaks onto `errors`.
/// The result is only meaningful when `errors` stays empty.
fn build(raw: RawManifest, base_dir: PathBuf, errors: &mut Vec<ValidationError>) -> Manifest {
    let RawManifest {
        spin_manifest_version: _,
        application,
        variables,
        triggers,
        components,
    } = raw;

    if let Some(http) = application.trigger_settings.get("http") {
        match toml::Value::Table(http.clone()).try_into::<schema::RawHttpSettings>() {
            Ok(settings) => {
                if let Some(base) = settings.base.filter(|base| base != "/") {
                    errors.push(ValidationError::UnsupportedBase { base });
                }
            }
            Err(e) => errors.push(ValidationError::InvalidHttpSettings {
                message: e.message().to_string(),
            }),
        }
    }
    let host = match application.tool.get(TOOL_NAME) {
        None => HostSettings::default(),
        Some(table) => HostSettings::from_table(table).unwrap_or_else(|message| {
            errors.push(ValidationError::InvalidHostSettings {
                table: format!("[application.tool.{TOOL_NAME}]"),
                message,
            });
            HostSettings::default()
        }),
    };

    for (name, variable) in &variables {
        if let Err(error) = check_declared_name(name) {
            errors.push(ValidationError::InvalidVariableName {
                table: "[variables]".into(),
                error,
            });
        }
        match (&variable.default, variable.required) {
            (None, false) => errors
                .push(ValidationError::VariableWithoutDefaultOrRequired { name: name.clone() }),
            (Some(_), true) => {
                errors.push(ValidationError::RequiredVariableWithDefault { name: name.clone() })
            }
            _ => {}
        }
    }

    let components: BTreeMap<String, Component> = components
        .into_iter()
        .map(|(id, raw)| {
            let component = build_component(&id, raw, &base_dir, &variables, errors);
            (id, component)
        })
        .collect();

    let spin_only_triggers = spin_only_triggers(triggers.as_ref());
    let http_triggers = build_triggers(triggers, &components, errors);
    for (position, trigger) in host.queue_trigger.iter().enumerate() {
        for component in [&trigger.component, &trigger.queue_component] {
            if !components.contains_key(component) {
                errors.push(ValidationError::UnknownQueueTriggerComponent {
                    index: position + 1,
                    queue: trigger.queue.clone(),
                    component: component.clone(),
                    declared: if components.is_empty() {
                        "none".to_string()
                    } else {
                        components.keys().cloned().collect::<Vec<_>>().join(", ")
                    },
                });
            }
        }
    }

    for (reader, component) in &components {
        for (position, grant) in component.host.read_grants.iter().enumerate() {
            if !components.contains_key(&grant.component) {
                errors.push(ValidationError::UnknownReadGrantComponent {
                    reader: reader.clone(),
                    index: position + 1,
                    component: grant.component.clone(),
                    declared: components.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }

    Manifest {
        base_dir,
        application: Application {
            name: application.name,
            version: application.version,
            description: application.description,
            authors: application.authors,
        },
        variables,
        http_triggers,
        spin_only_triggers,
        components,
        host,
    }
}

/// `[[trigger.redis]]` entries, as `channel → component` lines.
fn spin_only_triggers(triggers: Option<&schema::RawTriggers>) -> Vec<String> {
    let Some(toml::Value::Array(redis)) = triggers.and_then(|t| t.redis.as_ref()) else {
        return Vec::new();
    };
    redis
        .iter()
        .map(|trigger| {
            let field = |k: &str| trigger.get(k).and_then(toml::Value::as_str).unwrap_or("?");
            format!(
                "[[trigger.redis]] channel {:?} -> component `{}`",
                field("channel"),
                field("component")
            )
        })
        .collect()
}

fn build_triggers(
    triggers: Option<schema::RawTriggers>,
    components: &BTreeMap<String, Component>,
    errors: &mut Vec<ValidationError>,
) -> Vec<HttpTrigger> {
    let Some(triggers) = triggers else {
        errors.push(ValidationError::NoHttpTriggers);
        return Vec::new();
    };
    for kind in triggers.unsupported_types() {
        errors.push(ValidationError::UnsupportedTriggerType { kind: kind.into() });
    }
    if triggers.http.is_empty() {
        errors.push(ValidationError::NoHttpTriggers);
    }

    let declared = if components.is_empty() {
        "none".to_string()
    } else {
        components.keys().cloned().collect::<Vec<_>>().join(", ")
    };
    let mut http_triggers = Vec::new();
    let mut routes_are_valid = true;
    for (position, raw) in triggers.http.into_iter().enumerate() {
        let index = position + 1;
        let route = match raw.route {
            RawRoute::Path(path) => {
                if let Err(error) = Router::check_route(&path) {
                    routes_are_valid = false;
                    errors.push(ValidationError::InvalidRoute { index, error });
                }
                TriggerRoute::Path(path)
            }
            RawRoute::Private(true) => TriggerRoute::Private,
            RawRoute::Private(false) => {
                errors.push(ValidationError::PrivateFalse { index });
                TriggerRoute::Private
            }
        };
        let route_text = match &route {
            TriggerRoute::Path(path) => format!("`{path}`"),
            TriggerRoute::Private => "private".to_string(),
        };
        let unsupported = |message: String| ValidationError::UnsupportedTriggerFeature {
            index,
            route: route_text.clone(),
            message,
        };
        if raw.static_response.is_some() {
            errors.push(unsupported(
                "`static_response` is not supported: serve the response from a component".into(),
            ));
        }
        if let Some(executor) = &raw.executor
            && let Err(message) = check_executor(executor)
        {
            errors.push(unsupported(message));
        }
        let component = match raw.component {
            Some(RawComponentRef::Id(id)) => {
                if !components.contains_key(&id) {
                    errors.push(ValidationError::UnknownComponent {
                        index,
                        route: route_text.clone(),
                        component: id.clone(),
                        declared: declared.clone(),
                    });
                }
                id
            }
            Some(RawComponentRef::Inline) => {
                errors.push(ValidationError::InlineComponent {
                    index,
                    route: route_text.clone(),
                });
                String::new()
            }
            // A static response has no component; it was reported above.
            None if raw.static_response.is_some() => String::new(),
            None => {
                errors.push(ValidationError::TriggerWithoutComponent {
                    index,
                    route: route_text.clone(),
                });
                String::new()
            }
        };
        http_triggers.push(HttpTrigger {
            id: raw.id,
            route,
            component,
        });
    }

    // Duplicates only make sense to look for once every route parses.
    if routes_are_valid {
        let routes: Vec<(usize, &str, &str)> = http_triggers
            .iter()
            .enumerate()
            .filter_map(|(position, trigger)| match &trigger.route {
                TriggerRoute::Path(route) => {
                    Some((position + 1, route.as_str(), trigger.component.as_str()))
                }
                TriggerRoute::Private => None,
            })
            .collect();
        let pairs: Vec<(&str, &str)> = routes.iter().map(|(_, r, c)| (*r, *c)).collect();
        if let Err(error) = Router::build(&pairs) {
            // The router names both routes; the index points at the later one.
            let index = match &error {
                RouteError::Duplicate {
                    route, component, ..
                } => routes
                    .iter()
                    .rev()
                    .find(|(_, r, c)| r == route && c == component)
                    .map_or(0, |(index, _, _)| *index),
                _ => 0,
            };
            errors.push(ValidationError::InvalidRoute { index, error });
        }
    }
    http_triggers
}

/// Accepts Spin's default executor (`{ type = "http" }`, alias `"spin"`) only.
fn check_executor(executor: &toml::Table) -> Result<(), String> {
    match executor.get("type").and_then(toml::Value::as_str) {
        Some("http" | "spin") if executor.len() == 1 => Ok(()),
        Some("http" | "spin") => Err("the `http` executor takes no settings besides `type`".into()),
        Some("wagi") => Err(
            "the Wagi executor is not supported: build the component for \
                             wasi:http (Spin's default executor)"
                .into(),
        ),
        Some(other) => Err(format!(
            "unknown executor type {other:?} (Spin knows \"http\" and \"wagi\")"
        )),
        None => Err("`executor` needs a `type`, e.g. `executor = { type = \"http\" }`".into()),
    }
}

fn build_component(
    id: &str,
    raw: RawComponent,
    base_dir: &Path,
    app_variables: &BTreeMap<String, Variable>,
    errors: &mut Vec<ValidationError>,
) -> Component {
    if let Err(reason) = check_component_id(id) {
        errors.push(ValidationError::InvalidComponentId {
            id: id.to_string(),
            reason,
        });
    }
    let invalid_source = |message: &str| ValidationError::InvalidSource {
        component: id.to_string(),
        message: message.to_string(),
    };
    let source = match raw.source {
        RawSource::Local(path) if path.trim().is_empty() => {
            errors.push(invalid_source("must not be empty"));
            PathBuf::new()
        }
        RawSource::Local(path) => base_dir.join(path),
        RawSource::Remote => {
            errors.push(invalid_source(
                "remote sources are not supported: download the .wasm file and give its path",
            ));
            PathBuf::new()
        }
        RawSource::Registry => {
            errors.push(invalid_source(
                "registry sources are not supported: fetch the .wasm file and give its path",
            ));
            PathBuf::new()
        }
    };

    let check_template = |field: String, template: &str, errors: &mut Vec<ValidationError>| {
        let result = Template::parse(template).and_then(|parsed| {
            match parsed
                .references()
                .find(|name| !app_variables.contains_key(*name))
            {
                Some(name) => Err(VariableError::UnknownVariable {
                    template: template.to_string(),
                    name: name.to_string(),
                }),
                None => Ok(()),
            }
        });
        if let Err(error) = result {
            errors.push(ValidationError::InvalidTemplate {
                component: id.to_string(),
                field,
                error,
            });
        }
    };
    for (name, template) in &raw.variables {
        if let Err(error) = check_declared_name(name) {
            errors.push(ValidationError::InvalidVariableName {
                table: format!("[component.{id}.variables]"),
                error,
            });
        }
        check_template(format!("variables.{name}"), template, errors);
    }
    for (position, host) in raw.allowed_outbound_hosts.iter().enumerate() {
        check_template(format!("allowed_outbound_hosts[{position}]"), host, errors);
    }

    let unsupported = |message: &str| ValidationError::UnsupportedComponentFeature {
        component: id.to_string(),
        message: message.to_string(),
    };
    if !raw.dependencies.is_empty() {
        errors.push(unsupported(
            "dependencies: component composition is not supported; compose the component \
             before running it (e.g. with `wac`)",
        ));
    }
    if !raw.allowed_http_hosts.is_empty() {
        errors.push(unsupported(
            "allowed_http_hosts is deprecated and not supported: use allowed_outbound_hosts \
             (e.g. \"https://example.com\")",
        ));
    }

    let host = match raw.tool.get(TOOL_NAME) {
        None => ComponentHostSettings::default(),
        Some(table) => ComponentHostSettings::from_table(table).unwrap_or_else(|message| {
            errors.push(ValidationError::InvalidHostSettings {
                table: format!("[component.{id}.tool.{TOOL_NAME}]"),
                message,
            });
            ComponentHostSettings::default()
        }),
    };

    Component {
        id: id.to_string(),
        source,
        description: raw.description,
        variables: raw.variables,
        allowed_outbound_hosts: raw.allowed_outbound_hosts,
        environment: raw.environment,
        files: raw
            .files
            .into_iter()
            .map(|mount| match mount {
                schema::RawFilesMount::Pattern(pattern) => FilesMount::Pattern(pattern),
                schema::RawFilesMount::Placement {
                    source,
                    destination,
                } => FilesMount::Placement {
                    source,
                    destination,
                },
            })
            .collect(),
        exclude_files: raw.exclude_files,
        key_value_stores: raw.key_value_stores,
        build: raw.build.map(|build| BuildConfig {
            commands: match build.command {
                schema::RawCommands::Single(command) => vec![command],
                schema::RawCommands::Multiple(commands) => commands,
            },
            workdir: build.workdir,
            watch: build.watch,
        }),
        host,
    }
}

#[cfg(test)]
impl Component {
    /// A component with id `id`, source `id.wasm` and nothing else, for unit tests.
    pub(crate) fn for_tests(id: &str) -> Component {
        Component {
            id: id.to_string(),
            source: PathBuf::from(format!("{id}.wasm")),
            description: None,
            variables: BTreeMap::new(),
            allowed_outbound_hosts: Vec::new(),
            environment: BTreeMap::new(),
            files: Vec::new(),
            exclude_files: Vec::new(),
            key_value_stores: Vec::new(),
            build: None,
            host: ComponentHostSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "web.wasm"
"#;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("/app/spin.toml"))
    }

    fn errors(text: &str) -> Vec<ValidationError> {
        match parse(text) {
            Err(ManifestError::Invalid { errors, .. }) => errors,
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn minimal_manifest_reads() {
        let manifest = parse(MINIMAL).unwrap();
        assert_eq!(manifest.application.name, "app");
        assert_eq!(manifest.base_dir, Path::new("/app"));
        assert_eq!(
            manifest.components["web"].source,
            Path::new("/app/web.wasm")
        );
        assert_eq!(
            manifest.http_routes(),
            [("/...".to_string(), "web".to_string())]
        );
        assert_eq!(manifest.router().route("/x").unwrap().component_id, "web");
        assert_eq!(
            manifest.components["web"].host,
            ComponentHostSettings::default()
        );
    }

    #[test]
    fn version_is_checked_first() {
        let text = MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 3");
        assert_eq!(
            errors(&text),
            [ValidationError::UnsupportedVersion { found: "3".into() }]
        );
        let v1 = "spin_version = \"1\"\nname = \"x\"\ntrigger = { type = \"http\" }\n";
        assert!(
            matches!(&errors(v1)[..], [ValidationError::UnsupportedVersion { found }] if found.contains("version 1"))
        );
    }

    #[test]
    fn component_ids_follow_spin_rules() {
        for good in ["web", "my-component", "a1-b2", "API-v2"] {
            check_component_id(good).expect(good);
        }
        for bad in ["", "my_component", "1web", "a--b", "-a", "a.b", "aBc"] {
            check_component_id(bad).expect_err(bad);
        }
    }

    #[test]
    fn private_routes_are_not_routable() {
        let text = format!(
            "{MINIMAL}\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"web\"\n"
        );
        let manifest = parse(&text).unwrap();
        assert_eq!(manifest.http_triggers[1].route, TriggerRoute::Private);
        assert_eq!(manifest.http_routes().len(), 1);
    }

    #[test]
    fn every_problem_is_reported() {
        let text = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
BadName = { default = "x" }
neither = {}
[[trigger.http]]
route = "/a/.../b"
component = "missing"
[component.web]
source = { url = "https://example.com/web.wasm", digest = "sha256:00" }
variables = { x = "{{ undeclared }}" }
"#;
        let found = errors(text);
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn host_settings_are_read_from_tool_tables() {
        let text = format!(
            "{MINIMAL}\n[component.web.tool.redwasm]\nreuse = 1\nsandbox = false\n\
             [application.tool.redwasm]\nlisten = \"0.0.0.0:8080\"\n"
        );
        let manifest = parse(&text).unwrap();
        let web = &manifest.components["web"].host;
        assert_eq!((web.reuse, web.sandbox), (1, false));
        assert_eq!(web.request_timeout_ms, 30_000);
        assert_eq!(manifest.host.listen, Some("0.0.0.0:8080".parse().unwrap()));

        let text = format!("{MINIMAL}\n[component.web.tool.redwasm]\nreuse = 0\n");
        assert_eq!(
            errors(&text),
            [ValidationError::InvalidHostSettings {
                table: "[component.web.tool.redwasm]".into(),
                message: "`reuse` must be at least 1".into()
            }]
        );
        // Other tools' tables are Spin's business, not ours.
        let text = format!("{MINIMAL}\n[component.web.tool.other]\nanything = 1\n");
        parse(&text).unwrap();
    }
}
