//! `{{ name }}` templates, as Spin writes them in component `variables` and
//! `allowed_outbound_hosts`, the variable-name rules and [`VariableError`].
//!
//! A leaf module (it imports nothing from the crate): both [`crate::manifest`] and
//! [`crate::variables`] use it, and `variables` imports `manifest`, so these could not live in
//! either without a cycle.

use std::fmt;

/// Everything that can go wrong resolving or reading a variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The name is not a valid variable name.
    #[error("invalid variable name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What rule it breaks.
        reason: String,
    },
    /// The name is valid but the component declares no such variable.
    #[error("variable {name:?} is not defined for this component")]
    Undefined {
        /// The name as given.
        name: String,
    },
    /// A `required = true` application variable has no value.
    #[error(
        "application variable `{name}` is required but has no value: set the environment \
         variable {env_var}"
    )]
    RequiredWithoutValue {
        /// The variable's name.
        name: String,
        /// The environment variable that would set it.
        env_var: String,
    },
    /// A template is malformed.
    #[error("invalid template {template:?}: {reason}")]
    InvalidTemplate {
        /// The template as written.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A template refers to a variable that the application does not declare.
    #[error("template {template:?} refers to `{name}`, which is not declared in [variables]")]
    UnknownVariable {
        /// The template as written.
        template: String,
        /// The undeclared name.
        name: String,
    },
}

/// Checks `name` against Spin's rule for variable keys (what a guest may pass to `get` and
/// what a template may refer to): lowercase ASCII letters, digits and underscores; starts with
/// a letter; ends with a letter or digit; no `__`.
pub fn check_variable_name(name: &str) -> Result<(), VariableError> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {bad:?}: variable names may contain only lowercase letters, \
             digits and underscores"
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase ASCII letter".into())
    } else if name.ends_with('_') {
        Some("must end with a lowercase ASCII letter or digit".into())
    } else if name.contains("__") {
        Some("must not contain consecutive underscores".into())
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(VariableError::InvalidName {
            name: name.to_string(),
            reason,
        }),
    }
}

/// Checks a name declared in the manifest (`[variables]` keys and component `variables` keys)
/// against Spin's manifest rule (`lower_snake_case`): the rules of [`check_variable_name`],
/// and every `_`-separated word starts with a letter (so `a_1` is refused).
pub fn check_declared_name(name: &str) -> Result<(), VariableError> {
    check_variable_name(name)?;
    if let Some(word) = name
        .split('_')
        .find(|word| !word.starts_with(|c: char| c.is_ascii_lowercase()))
    {
        return Err(VariableError::InvalidName {
            name: name.to_string(),
            reason: format!(
                "each `_`-separated word must start with a lowercase letter; got {word:?}"
            ),
        });
    }
    Ok(())
}

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Text copied as is.
    Literal(String),
    /// `{{ name }}`: the value of the application variable `name`.
    Variable(String),
}

/// A parsed template: literal text with embedded `{{ name }}` references to application
/// variables (whitespace inside the braces is ignored, as in Spin). There is no escape for
/// `{{`, as in Spin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`. Fails on an unclosed `{{` and on a reference that is not a valid
    /// variable name.
    pub fn parse(source: &str) -> Result<Template, VariableError> {
        let invalid = |reason: String| VariableError::InvalidTemplate {
            template: source.to_string(),
            reason,
        };
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let Some((expression, after_close)) = after_open.split_once("}}") else {
                    return Err(invalid("unmatched `{{`".into()));
                };
                let name = expression.trim();
                check_variable_name(name).map_err(|error| match error {
                    VariableError::InvalidName { reason, .. } => {
                        invalid(format!("`{{{{ {name} }}}}`: {reason}"))
                    }
                    other => other,
                })?;
                parts.push(Part::Variable(name.to_string()));
                rest = after_close;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names of the variables the template refers to, in order (repeats included).
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the template has no `{{ }}` references.
    pub fn is_literal(&self) -> bool {
        self.references().next().is_none()
    }

    /// Expands the template, looking each reference up with `lookup`. A reference that
    /// `lookup` does not know is [`VariableError::UnknownVariable`].
    pub fn expand<'v>(
        &self,
        lookup: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<String, VariableError> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => {
                    let value = lookup(name).ok_or_else(|| VariableError::UnknownVariable {
                        template: self.source.clone(),
                        name: name.clone(),
                    })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<&'static str> {
        match name {
            "host" => Some("redis.local"),
            "port" => Some("6379"),
            _ => None,
        }
    }

    #[test]
    fn expands_literals_and_references() {
        for (source, expected) in [
            ("", ""),
            ("plain", "plain"),
            ("{{ host }}", "redis.local"),
            ("{{host}}", "redis.local"),
            (
                "redis://{{ host }}:{{ port }}/0",
                "redis://redis.local:6379/0",
            ),
            ("{{ host }}{{ port }}", "redis.local6379"),
            ("a } b }} c", "a } b }} c"),
        ] {
            let template = Template::parse(source).unwrap();
            assert_eq!(template.expand(lookup).unwrap(), expected, "{source}");
        }
    }

    #[test]
    fn lists_references() {
        let template = Template::parse("{{ a }}-{{ b }}-{{ a }}").unwrap();
        assert_eq!(template.references().collect::<Vec<_>>(), ["a", "b", "a"]);
        assert!(!template.is_literal());
        assert!(Template::parse("x").unwrap().is_literal());
    }

    #[test]
    fn refuses_bad_templates() {
        let error = Template::parse("{{ host }} {{ port").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid template \"{{ host }} {{ port\": unmatched `{{`"
        );
        let error = Template::parse("{{ Host }}").unwrap_err();
        assert!(
            matches!(error, VariableError::InvalidTemplate { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("lowercase"), "{error}");
        Template::parse("{{ }}").unwrap_err();
    }

    #[test]
    fn unknown_reference_is_an_error() {
        let error = Template::parse("{{ nope }}")
            .unwrap()
            .expand(lookup)
            .unwrap_err();
        assert_eq!(
            error,
            VariableError::UnknownVariable {
                template: "{{ nope }}".into(),
                name: "nope".into()
            }
        );
    }
}
