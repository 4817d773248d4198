//! Application and component variables, and the `fermyon:spin/variables@2.0.0` host interface.
//!
//! # Layout
//! - [`AppVariables`]: the values of the manifest's `[variables]`, resolved once at load from,
//!   in order: explicit overrides (e.g. the host's `REDIS_URL`), the environment
//!   (`SPIN_VARIABLE_<UPPERCASE_NAME>`, read through an [`EnvironmentSource`]), the
//!   declared `default`. A `required` variable with none of these is an error at load time.
//! - [`VariablesCtx`]: one component's variables (its `[component.<id>.variables]` templates
//!   expanded against [`AppVariables`]), computed once and shared by every instance; what a
//!   guest reads with `get`, and what the host reads with [`VariablesCtx::resolve`].
//! - [`add_to_linker`]: links `fermyon:spin/variables@2.0.0#get` to a store's [`VariablesCtx`].
//! - [`Template`], [`VariableError`] and the name checks live in the leaf module
//!   [`crate::template`] (re-exported here), so the manifest can use them without importing
//!   this module, which imports the manifest.
//!
//! # Why resolve once
//! Spin asks its providers on every `get`; redwasm's only providers are the environment and
//! the manifest, which do not change while the host runs, so resolving at load turns a
//! missing required variable into a start-up error instead of a failed request, and makes
//! `get` a map lookup.
//!
//! # Names
//! A name a guest asks for must be a valid Spin variable key (lowercase ASCII letters, digits
//! and single underscores, starting with a letter and not ending with `_`), else the guest
//! gets `invalid-name`; a valid name the component does not declare gets `undefined`.
//! Declared names ([`check_declared_name`]) follow Spin's manifest rule, which is stricter:
//! every `_`-separated word starts with a letter.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

pub use crate::template::{Template, VariableError, check_declared_name, check_variable_name};

use crate::manifest;

/// The prefix of the environment variables that set application variables, as in Spin.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// The environment variable that sets application variable `name`: `SPIN_VARIABLE_` followed
/// by the name in upper case.
pub fn env_var_name(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

/// Looks an environment variable up by name.
type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where environment values for application variables come from. The process environment in
/// production; a fixed map in tests, so tests never touch the real environment.
pub struct EnvironmentSource {
    lookup: EnvLookup,
}

impl EnvironmentSource {
    /// Reads the process environment.
    pub fn process() -> Self {
        EnvironmentSource::from_fn(|key| std::env::var(key).ok())
    }

    /// Reads `key → value` from a map, keyed by environment variable name
    /// (`SPIN_VARIABLE_...`).
    pub fn from_map<K: Into<String>, V: Into<String>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = entries
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        EnvironmentSource::from_fn(move |key| map.get(key).cloned())
    }

    /// Reads through `lookup`, called with environment variable names.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        EnvironmentSource {
            lookup: Box::new(lookup),
        }
    }

    /// The value of environment variable `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
    }
}

impl fmt::Debug for EnvironmentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvironmentSource")
    }
}

/// The resolved values of the manifest's `[variables]`. `Debug` shows names, never values
/// (some are secrets).
#[derive(Clone, Default)]
pub struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Resolves every declared variable: `overrides` first (entries for undeclared names are
    /// ignored, so a host-wide setting can be offered to any manifest), then
    /// `SPIN_VARIABLE_<NAME>` from `env`, then the declared default. Fails on the first
    /// `required` variable left without a value (in name order).
    pub fn resolve(
        declared: &BTreeMap<String, manifest::Variable>,
        env: &EnvironmentSource,
        overrides: &BTreeMap<String, String>,
    ) -> Result<AppVariables, VariableError> {
        let mut values = BTreeMap::new();
        for (name, declaration) in declared {
            let env_var = env_var_name(name);
            let value = overrides
                .get(name)
                .cloned()
                .or_else(|| env.get(&env_var))
                .or_else(|| declaration.default.clone());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => {
                    return Err(VariableError::RequiredWithoutValue {
                        name: name.clone(),
                        env_var,
                    });
                }
            }
        }
        Ok(AppVariables { values })
    }

    /// The value of application variable `name`, if declared.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Expands a `{{ name }}` template (e.g. an `allowed_outbound_hosts` entry) against the
    /// application variables.
    pub fn expand(&self, template: &str) -> Result<String, VariableError> {
        Template::parse(template)?.expand(|name| self.get(name))
    }

    /// The variables of one component: each of its `variables` templates expanded.
    pub fn component_ctx(
        &self,
        component: &manifest::Component,
    ) -> Result<VariablesCtx, VariableError> {
        let values = component
            .variables
            .iter()
            .map(|(name, template)| Ok((name.clone(), self.expand(template)?)))
            .collect::<Result<HashMap<_, _>, VariableError>>()?;
        Ok(VariablesCtx::from_values(values))
    }
}

impl fmt::Debug for AppVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppVariables")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One component's resolved variables: the state behind `fermyon:spin/variables@2.0.0`.
///
/// Cheap to clone (the values are shared), so each store gets its own copy. `Debug` shows
/// names, never values.
#[derive(Clone, Default)]
pub struct VariablesCtx {
    values: Arc<HashMap<String, String>>,
}

impl VariablesCtx {
    /// A context holding exactly `values` (already resolved), e.g. for the embedding API.
    pub fn from_values(values: HashMap<String, String>) -> Self {
        VariablesCtx {
            values: Arc::new(values),
        }
    }

    /// The value of variable `name`, as the guest's `get` sees it: an invalid name is
    /// [`VariableError::InvalidName`], an undeclared one [`VariableError::Undefined`].
    pub fn resolve(&self, name: &str) -> Result<String, VariableError> {
        check_variable_name(name)?;
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| VariableError::Undefined {
                name: name.to_string(),
            })
    }

    /// The names of the component's variables, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl fmt::Debug for VariablesCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VariablesCtx")
            .field("names", &self.names())
            .finish()
    }
}

/// The generated bindings, private: the rest of the host speaks [`VariablesCtx`].
mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package redwasm:variables-host;
            world variables-host {
                import fermyon:spin/variables@2.0.0;
            }
        ",
        path: "../wit/deps/fermyon-spin@2.0.0",
        imports: { default: async },
    });
}

use bindings::fermyon::spin::variables as wit;

impl From<VariableError> for wit::Error {
    fn from(error: VariableError) -> Self {
        let message = error.to_string();
        match error {
            VariableError::InvalidName { .. } => wit::Error::InvalidName(message),
            VariableError::Undefined { .. } => wit::Error::Undefined(message),
            _ => wit::Error::Other(message),
        }
    }
}

impl wit::Host for VariablesCtx {
    async fn get(&mut self, name: String) -> Result<String, wit::Error> {
        self.resolve(&name).map_err(wit::Error::from)
    }
}

/// `spin:variables/variables@3.0.0` (async in WIT, used by WASIp3 components built with
/// spin-sdk 7): the same values through the same [`VariablesCtx`].
mod v3 {
    use wasmtime::component::{Accessor, HasSelf};

    use super::{VariableError, VariablesCtx};

    mod bindings {
        wasmtime::component::bindgen!({
            inline: "
                package redwasm:variables-v3;
                world variables-v3 {
                    import spin:variables/variables@3.0.0;
                }
            ",
            path: "../wit/deps/spin-variables@3.0.0",
            world: "redwasm:variables-v3/variables-v3",
        });
    }

    pub(super) use bindings::spin::variables::variables as wit;

    impl From<VariableError> for wit::Error {
        fn from(error: VariableError) -> Self {
            let message = error.to_string();
            match error {
                VariableError::InvalidName { .. } => wit::Error::InvalidName(message),
                VariableError::Undefined { .. } => wit::Error::Undefined(message),
                _ => wit::Error::Other(message),
            }
        }
    }

    impl wit::Host for VariablesCtx {}

    impl<T: Send> wit::HostWithStore<T> for HasSelf<VariablesCtx> {
        async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, wit::Error> {
            // The values are resolved at load time: no await is needed, so the store borrow
            // never spans one.
            accessor.with(|mut access| access.get().resolve(&name).map_err(wit::Error::from))
        }
    }
}

/// Adds `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0` to `linker`;
/// `get_ctx` finds a store's [`VariablesCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get_ctx: fn(&mut T) -> &mut VariablesCtx,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<VariablesCtx>>(linker, get_ctx)?;
    v3::wit::add_to_linker::<T, HasSelf<VariablesCtx>>(linker, get_ctx)
}

/// Adds only `fermyon:spin/variables@2.0.0`: for an engine without component-model-async.
pub fn add_v2_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get_ctx: fn(&mut T) -> &mut VariablesCtx,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<VariablesCtx>>(linker, get_ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(entries: &[(&str, Option<&str>, bool)]) -> BTreeMap<String, manifest::Variable> {
        entries
            .iter()
            .map(|(name, default, required)| {
                (
                    name.to_string(),
                    manifest::Variable {
                        default: default.map(str::to_string),
                        required: *required,
                        secret: false,
                        description: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn names_follow_spin_rules() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "redis_address"] {
            check_variable_name(good).expect(good);
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            check_variable_name(bad).expect_err(bad);
        }
        check_declared_name("redis_address").unwrap();
        let error = check_declared_name("a_1").unwrap_err();
        assert!(error.to_string().contains("\"1\""), "{error}");
    }

    #[test]
    fn override_beats_environment_beats_default() {
        let declared = declared(&[
            ("from_default", Some("d"), false),
            ("from_env", Some("d"), false),
            ("from_override", Some("d"), false),
        ]);
        let env = EnvironmentSource::from_map([
            ("SPIN_VARIABLE_FROM_ENV", "e"),
            ("SPIN_VARIABLE_FROM_OVERRIDE", "e"),
        ]);
        let overrides = BTreeMap::from([
            ("from_override".to_string(), "o".to_string()),
            ("undeclared".to_string(), "ignored".to_string()),
        ]);
        let vars = AppVariables::resolve(&declared, &env, &overrides).unwrap();
        assert_eq!(vars.get("from_default"), Some("d"));
        assert_eq!(vars.get("from_env"), Some("e"));
        assert_eq!(vars.get("from_override"), Some("o"));
        assert_eq!(vars.get("undeclared"), None);
        assert!(!format!("{vars:?}").contains("\"e\""), "Debug hides values");
    }

    #[test]
    fn required_without_value_fails_at_load() {
        let declared = declared(&[("api_key", None, true)]);
        let error = AppVariables::resolve(
            &declared,
            &EnvironmentSource::from_map::<String, String>([]),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "application variable `api_key` is required but has no value: set the environment \
             variable SPIN_VARIABLE_API_KEY"
        );
        let env = EnvironmentSource::from_map([("SPIN_VARIABLE_API_KEY", "k")]);
        let vars = AppVariables::resolve(&declared, &env, &BTreeMap::new()).unwrap();
        assert_eq!(vars.get("api_key"), Some("k"));
    }

    #[test]
    fn component_templates_expand_against_app_variables() {
        let declared = declared(&[
            ("host", Some("redis.local"), false),
            ("port", Some("6379"), false),
        ]);
        let vars = AppVariables::resolve(
            &declared,
            &EnvironmentSource::from_map::<String, String>([]),
            &BTreeMap::new(),
        )
        .unwrap();
        let component = manifest::Component {
            variables: BTreeMap::from([
                (
                    "redis_address".to_string(),
                    "redis://{{ host }}:{{port}}".to_string(),
                ),
                ("greeting".to_string(), "hello".to_string()),
            ]),
            ..manifest::Component::for_tests("c")
        };
        let ctx = vars.component_ctx(&component).unwrap();
        assert_eq!(
            ctx.resolve("redis_address").unwrap(),
            "redis://redis.local:6379"
        );
        assert_eq!(ctx.resolve("greeting").unwrap(), "hello");
        assert_eq!(ctx.names(), ["greeting", "redis_address"]);
        assert_eq!(vars.expand("{{ host }}:1").unwrap(), "redis.local:1");
    }

    #[test]
    fn get_distinguishes_invalid_and_undefined() {
        let ctx =
            VariablesCtx::from_values(HashMap::from([("known".to_string(), "v".to_string())]));
        assert_eq!(ctx.resolve("known").unwrap(), "v");
        assert!(matches!(
            ctx.resolve("Known"),
            Err(VariableError::InvalidName { .. })
        ));
        assert!(matches!(
            ctx.resolve("unknown"),
            Err(VariableError::Undefined { .. })
        ));

        assert!(matches!(
            wit::Error::from(ctx.resolve("Known").unwrap_err()),
            wit::Error::InvalidName(_)
        ));
        assert!(matches!(
            wit::Error::from(ctx.resolve("unknown").unwrap_err()),
            wit::Error::Undefined(_)
        ));
        assert!(!format!("{ctx:?}").contains("\"v\""), "Debug hides values");
    }

    #[test]
    fn links_into_a_component_linker() {
        struct State {
            variables: VariablesCtx,
        }
        let engine = wasmtime::Engine::default();
        let mut linker: Linker<State> = Linker::new(&engine);
        add_to_linker(&mut linker, |s: &mut State| &mut s.variables).unwrap();
    }
}
