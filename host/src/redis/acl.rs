//! One Redis ACL user per sandboxed component: what confines a component's Lua scripts.
//!
//! The host rewrites the keys of every command a guest sends, but a script run by `EVAL`,
//! `EVALSHA` or `FCALL` builds key names inside Redis, where the host cannot see them. A
//! list of "allowed script hashes" declared by the component itself would stop nothing (a
//! hostile component lists its hostile script). Redis's own ACLs hold for any script text:
//! a user with `~<prefix>* &<prefix>*` cannot touch another key or publish to another
//! channel, from a script or not, and without `@dangerous`/`@admin` it cannot `FLUSHALL`,
//! `KEYS`, `MIGRATE`, `RESTORE`, `CONFIG`, `INFO`, ... So the host gives each sandboxed
//! component its own user and its own multiplexed connection, authenticated as that user.
//!
//! What ACLs do not cover, and the host does itself: `SCAN`, `RANDOMKEY`, `DBSIZE` and
//! `PUBSUB` list other components' names (denied here, so a script cannot run them; the
//! host runs a guest's `SCAN` on its own connection after forcing `MATCH <prefix>*`), memory
//! (write caps in the host, `proto-max-bulk-len` on the server), CPU (the script watchdog).
//!
//! Passwords are derived, not random: `sha256("redwasm-acl-v1" | host password | user)`.
//! Every host that shares a Redis (with the same credentials) derives the same password, so
//! they can all (re)create the users without locking each other out, and a restart does not
//! pile up passwords on the server. Knowing the scheme gains nothing without the host's own
//! password, which already grants more than any component user.

use sha2::{Digest, Sha256};

/// Whether the host confines components with Redis ACL users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclMode {
    /// Create the users when the host's Redis connection may (always on a Redis the host
    /// owns); otherwise run with keys-only confinement and say so at start-up and in
    /// `/health`.
    #[default]
    Auto,
    /// Refuse to start unless every sandboxed component gets its user.
    Required,
    /// Never create users (keys-only confinement, scripts unconfined).
    Off,
}

impl std::str::FromStr for AclMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AclMode::Auto),
            "required" => Ok(AclMode::Required),
            "off" => Ok(AclMode::Off),
            other => Err(format!(
                "`{other}` is not an ACL mode (expected auto, required or off)"
            )),
        }
    }
}

/// A component's Redis user.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AclUser {
    /// `redwasm.<prefix without its trailing colon>`.
    pub(crate) name: String,
    pub(crate) password: String,
    /// The `ACL SETUSER` arguments after the name.
    pub(crate) rules: Vec<String>,
}

impl std::fmt::Debug for AclUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Commands the component user may not run beyond `-@dangerous -@admin`: those that list or
/// reach other namespaces or databases, and script/function management.
const DENIED: &[&str] = &[
    "-select",
    "-move",
    "-swapdb",
    "-scan",
    "-randomkey",
    "-dbsize",
    "-keys",
    "-pubsub",
    "-function",
    "-script|flush",
    "-script|kill",
    "-script|debug",
    "-restore",
    "-restore-asking",
    "-migrate",
    "-reset",
    "-memory",
    "+memory|usage",
    "-client",
    // redis-rs names the library on connect (errors there are ignored, but keep it clean).
    "+client|setinfo",
    "+client|id",
    "+client|getname",
    "+client|setname",
    "-lolwut",
];

impl AclUser {
    /// The user for key prefix `prefix` (already validated: no glob characters, no spaces),
    /// with its password derived from the host's own password.
    pub(crate) fn for_prefix(prefix: &str, host_password: Option<&str>) -> AclUser {
        let name = format!("redwasm.{}", prefix.trim_end_matches(':'));
        let password = derive_password(host_password.unwrap_or(""), &name);
        let mut rules = vec![
            "reset".to_string(),
            "on".to_string(),
            format!(">{password}"),
            format!("~{prefix}*"),
            format!("&{prefix}*"),
            "+@all".to_string(),
            "-@dangerous".to_string(),
            "-@admin".to_string(),
            // SORT is "dangerous" for its CPU only; Redis still checks its keys (BY/GET
            // patterns need access to every key, so they are refused).
            "+sort".to_string(),
            "+sort_ro".to_string(),
        ];
        rules.extend(DENIED.iter().map(|r| r.to_string()));
        AclUser {
            name,
            password,
            rules,
        }
    }

    /// The same user, also allowed to read (never write) keys matching `patterns` (full key
    /// patterns: another component's prefix and a glob). Redis checks them for every command
    /// and script (`%R~`, Redis 7).
    pub(crate) fn with_reads(mut self, patterns: &[String]) -> AclUser {
        self.rules
            .extend(patterns.iter().map(|pattern| format!("%R~{pattern}")));
        self
    }

    /// The full `ACL SETUSER` command.
    pub(crate) fn setuser(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(&self.name);
        for rule in &self.rules {
            cmd.arg(rule);
        }
        cmd
    }

    /// The command as an operator would type it in `redis-cli` (for the README and logs);
    /// the password is shown as `<password>`.
    pub(crate) fn display(&self) -> String {
        let rules: Vec<&str> = self
            .rules
            .iter()
            .map(|r| {
                if r.starts_with('>') {
                    "><password>"
                } else {
                    r.as_str()
                }
            })
            .collect();
        format!("ACL SETUSER {} {}", self.name, rules.join(" "))
    }
}

fn derive_password(host_password: &str, user: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"redwasm-acl-v1\0");
    hasher.update(host_password.as_bytes());
    hasher.update(b"\0");
    hasher.update(user.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short, non-reversible tag of a password, for endpoint keys (never logged raw).
pub(crate) fn password_tag(password: &str) -> String {
    if password.is_empty() {
        return String::new();
    }
    derive_password(password, "tag")[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_confined_to_their_prefix() {
        let user = AclUser::for_prefix("cache:", Some("s3cret"));
        assert_eq!(user.name, "redwasm.cache");
        assert!(user.rules.contains(&"~cache:*".to_string()));
        assert!(user.rules.contains(&"&cache:*".to_string()));
        assert!(user.rules.contains(&"-@dangerous".to_string()));
        assert!(user.rules.contains(&"-scan".to_string()));
        assert_eq!(
            user.rules[0], "reset",
            "no rule of an older version survives"
        );
        assert!(!user.display().contains(&user.password));
    }

    #[test]
    fn passwords_are_derived_and_depend_on_the_host_password() {
        let a = AclUser::for_prefix("cache:", Some("one"));
        let b = AclUser::for_prefix("cache:", Some("one"));
        let c = AclUser::for_prefix("cache:", Some("two"));
        let d = AclUser::for_prefix("other:", Some("one"));
        assert_eq!(a.password, b.password);
        assert_ne!(a.password, c.password);
        assert_ne!(a.password, d.password);
        assert_eq!(a.password.len(), 64);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("auto".parse::<AclMode>(), Ok(AclMode::Auto));
        assert_eq!("off".parse::<AclMode>(), Ok(AclMode::Off));
        assert!("yes".parse::<AclMode>().is_err());
    }
}
