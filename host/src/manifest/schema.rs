//! The manifest exactly as written: serde types mirroring Spin's v2 schema, closed
//! (`deny_unknown_fields`) wherever Spin's is, so that a manifest Spin would refuse is refused
//! here too. Nothing here is validated beyond its shape; `super::validate` does the rest.
//!
//! Values with several accepted shapes (a route string or `{ private = true }`, a source path
//! or `{ url, digest }`) are read through `toml::Value` with `try_from`, so that a wrong shape
//! gets a message naming the accepted ones, at the right line, instead of serde's "did not
//! match any variant of untagged enum".

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Variable;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    /// Checked before this type is read (see `super::check_version`); kept so that the field
    /// is not "unknown".
    #[allow(dead_code)]
    pub spin_manifest_version: toml::Value,
    pub application: RawApplication,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    #[serde(rename = "trigger")]
    pub triggers: Option<RawTriggers>,
    #[serde(rename = "component", default)]
    pub components: BTreeMap<String, RawComponent>,
}

/// `[application]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApplication {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    /// Spin's compatibility targets (`targets = ["spin-up:3.3"]`): accepted, meaningless here.
    #[serde(default)]
    #[allow(dead_code)]
    pub targets: Vec<toml::Value>,
    /// `[application.trigger.<type>]`: application-wide trigger settings.
    #[serde(rename = "trigger", default)]
    pub trigger_settings: BTreeMap<String, toml::Table>,
    /// `[application.tool.<name>]`: Spin ignores these; `redwasm` is ours.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
}

/// `[[trigger.<type>]]`. The trigger types Spin and its plugins know are listed so that using
/// one gets "not supported" rather than "unknown field"; anything else is unknown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTriggers {
    #[serde(default)]
    pub http: Vec<RawHttpTrigger>,
    pub redis: Option<toml::Value>,
    pub cron: Option<toml::Value>,
    pub sqs: Option<toml::Value>,
    pub mqtt: Option<toml::Value>,
    pub command: Option<toml::Value>,
}

impl RawTriggers {
    /// The names of the trigger types present that neither host serves (`redis` is Spin's:
    /// the redwasm host ignores it, see [`super::Manifest::spin_only_triggers`]).
    pub(super) fn unsupported_types(&self) -> Vec<&'static str> {
        [
            ("cron", &self.cron),
            ("sqs", &self.sqs),
            ("mqtt", &self.mqtt),
            ("command", &self.command),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| name)
        .collect()
    }
}

/// One `[[trigger.http]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: RawRoute,
    pub component: Option<RawComponentRef>,
    pub executor: Option<toml::Table>,
    /// Spin's host-served static response: read so it can be refused by name.
    pub static_response: Option<toml::Value>,
}

/// `route = "/path"` or `route = { private = true }`.
#[derive(Debug)]
pub(super) enum RawRoute {
    Path(String),
    /// `{ private = <bool> }`; `false` is an error Spin reports too.
    Private(bool),
}

impl<'de> Deserialize<'de> for RawRoute {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(deserializer)?;
        match value {
            toml::Value::String(path) => Ok(RawRoute::Path(path)),
            toml::Value::Table(table) => {
                let mut entries = table.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((key, toml::Value::Boolean(private))), None) if key == "private" => {
                        Ok(RawRoute::Private(private))
                    }
                    _ => Err(D::Error::custom(
                        "a route table may only be `{ private = true }`",
                    )),
                }
            }
            other => Err(D::Error::custom(format!(
                "a route is a string like \"/path/...\" or `{{ private = true }}`, not {}",
                with_article(other.type_str())
            ))),
        }
    }
}

/// "a string", "an integer": TOML type names with their article, for messages.
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// `component = "id"` or an inline component table.
#[derive(Debug)]
pub(super) enum RawComponentRef {
    Id(String),
    /// Spin allows a component table inline in the trigger; redwasm does not.
    Inline,
}

impl<'de> Deserialize<'de> for RawComponentRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(id) => Ok(RawComponentRef::Id(id)),
            toml::Value::Table(_) => Ok(RawComponentRef::Inline),
            other => Err(D::Error::custom(format!(
                "`component` is a component id string, not {}",
                with_article(other.type_str())
            ))),
        }
    }
}

/// `[component.<id>]`: every field of Spin's schema, so that any Spin manifest reads; the
/// ones redwasm cannot honour are refused by name in validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub source: RawSource,
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<RawFilesMount>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Spin's SQLite and AI permissions: accepted, but redwasm provides neither API.
    #[serde(default)]
    #[allow(dead_code)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub ai_models: Vec<String>,
    #[allow(dead_code)]
    pub targets: Option<Vec<toml::Value>>,
    pub build: Option<RawBuild>,
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
    #[allow(dead_code)]
    pub dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub dependencies: toml::Table,
    /// Build/run profiles (`spin up --profile`): redwasm runs the default profile.
    #[serde(default)]
    #[allow(dead_code)]
    pub profile: toml::Table,
}

/// `source = "path.wasm"`, `{ url, digest }` or `{ registry, package, version }`.
#[derive(Debug)]
pub(super) enum RawSource {
    Local(String),
    Remote,
    Registry,
}

impl<'de> Deserialize<'de> for RawSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(path) => Ok(RawSource::Local(path)),
            toml::Value::Table(table) if table.contains_key("url") => Ok(RawSource::Remote),
            toml::Value::Table(table) if table.contains_key("package") => Ok(RawSource::Registry),
            other => Err(D::Error::custom(format!(
                "`source` is the path of a .wasm file (relative to the manifest), not {}",
                with_article(other.type_str())
            ))),
        }
    }
}

/// One `files` entry.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub(super) enum RawFilesMount {
    Pattern(String),
    Placement { source: String, destination: String },
}

/// `[component.<id>.build]`: used by `spin build`; kept for reference only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    pub command: RawCommands,
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// `command = "..."` or `command = ["...", "..."]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawCommands {
    Single(String),
    Multiple(Vec<String>),
}

/// `[application.trigger.http]`: Spin's deprecated `base`, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpSettings {
    pub base: Option<String>,
}
