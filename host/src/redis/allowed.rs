//! `allowed_outbound_hosts` for Redis: which addresses a component may open.
//!
//! Spin's syntax, restricted to what makes sense for Redis:
//! - `redis://host:port`, `rediss://host:port`; the port defaults to 6379 when omitted;
//! - `*` as the scheme, host or port (`redis://*:*`, `redis://127.0.0.1:*`, `*://*:*`);
//! - `*.example.com` for any subdomain, and port ranges `6379-6380`;
//! - `redis+unix:///path/to/socket` (or `unix://`) for a unix socket, matched by exact path
//!   (or `redis+unix://*`).
//!
//! User info (passwords), the database path and query strings are ignored on both sides:
//! the rule is about where the connection goes, not how it authenticates. `{{ var }}`
//! templates are resolved by the manifest code before entries get here. Entries with other
//! schemes (`https://...`) concern other capabilities and are skipped.

const DEFAULT_PORT: u16 = 6379;

/// Where an address points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `redis://` or `rediss://` to a host and port.
    Tcp {
        /// `redis` or `rediss`.
        scheme: String,
        /// Lower-cased host name or IP literal (IPv6 without brackets).
        host: String,
        /// The port (6379 when omitted).
        port: u16,
    },
    /// A unix socket path.
    Unix {
        /// The socket path.
        path: String,
    },
}

/// Parses a Redis address (`redis://[user[:pass]@]host[:port][/db][?query]`, `rediss://...`,
/// `redis+unix:///path[?query]`, `unix:///path`).
pub(crate) fn parse_address(address: &str) -> Result<Target, String> {
    let (scheme, rest) = address
        .split_once("://")
        .ok_or_else(|| format!("`{address}` has no scheme (expected redis://...)"))?;
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "redis" | "rediss" => {
            let (host, port) = split_authority(rest, address)?;
            let port = match port {
                None => DEFAULT_PORT,
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| format!("`{address}` has an invalid port"))?,
            };
            Ok(Target::Tcp { scheme, host, port })
        }
        "redis+unix" | "unix" => {
            let path = rest.split(['?', '#']).next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!("`{address}` has no socket path"));
            }
            Ok(Target::Unix {
                path: path.to_string(),
            })
        }
        other => Err(format!("unsupported scheme `{other}` in `{address}`")),
    }
}

/// Splits `[userinfo@]host[:port][/...]` into the lower-cased host and the raw port text.
fn split_authority(rest: &str, address: &str) -> Result<(String, Option<String>), String> {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // The password may contain `@`; the host follows the last one.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        let (host, after) = stripped
            .split_once(']')
            .ok_or_else(|| format!("`{address}` has an unterminated IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.to_string()),
            None if after.is_empty() => None,
            None => return Err(format!("`{address}` has junk after the IPv6 address")),
        };
        (host.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{address}` has no host"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[derive(Debug, Clone)]
enum HostRule {
    Any,
    Exact(String),
    /// `*.example.com`: stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone)]
enum PortRule {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone)]
enum Rule {
    Tcp {
        /// `None` for `*`.
        scheme: Option<String>,
        host: HostRule,
        port: PortRule,
    },
    Unix {
        /// `None` for `*`.
        path: Option<String>,
    },
}

/// A component's parsed allow-list for Redis.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedHosts {
    rules: Vec<Rule>,
}

impl AllowedHosts {
    /// Parses the manifest's `allowed_outbound_hosts`. Non-Redis entries are skipped;
    /// malformed Redis entries are an error.
    pub(crate) fn parse(entries: &[String]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            let Some((scheme, rest)) = entry.split_once("://") else {
                return Err(format!(
                    "allowed_outbound_hosts entry `{entry}` has no scheme (e.g. redis://host:6379)"
                ));
            };
            let scheme = scheme.to_ascii_lowercase();
            match scheme.as_str() {
                "redis+unix" | "unix" => {
                    let path = rest.split(['?', '#']).next().unwrap_or_default();
                    rules.push(Rule::Unix {
                        path: (path != "*").then(|| path.to_string()),
                    });
                }
                "redis" | "rediss" | "*" => {
                    let (host, port) = split_authority(rest, entry)?;
                    let host = if host == "*" {
                        HostRule::Any
                    } else if let Some(suffix) = host.strip_prefix("*.") {
                        HostRule::Suffix(format!(".{suffix}"))
                    } else {
                        HostRule::Exact(host)
                    };
                    let port = match port.as_deref() {
                        None => PortRule::Range(DEFAULT_PORT, DEFAULT_PORT),
                        Some("*") => PortRule::Any,
                        Some(p) => {
                            let bad = || {
                                format!(
                                    "allowed_outbound_hosts entry `{entry}` has an invalid port"
                                )
                            };
                            match p.split_once('-') {
                                Some((lo, hi)) => PortRule::Range(
                                    lo.parse().map_err(|_| bad())?,
                                    hi.parse().map_err(|_| bad())?,
                                ),
                                None => {
                                    let p = p.parse().map_err(|_| bad())?;
                                    PortRule::Range(p, p)
                                }
                            }
                        }
                    };
                    // `*://*:*` also opens unix sockets, as "everything" should.
                    let everything =
                        scheme == "*" && matches!((&host, &port), (HostRule::Any, PortRule::Any));
                    rules.push(Rule::Tcp {
                        scheme: (scheme != "*").then_some(scheme),
                        host,
                        port,
                    });
                    if everything {
                        rules.push(Rule::Unix { path: None });
                    }
                }
                // http(s), mqtt, postgres...: other capabilities' business.
                _ => {}
            }
        }
        Ok(AllowedHosts { rules })
    }

    /// Whether `target` matches any rule.
    pub(crate) fn allows(&self, target: &Target) -> bool {
        self.rules.iter().any(|rule| match (rule, target) {
            (
                Rule::Tcp { scheme, host, port },
                Target::Tcp {
                    scheme: t_scheme,
                    host: t_host,
                    port: t_port,
                },
            ) => {
                scheme.as_ref().is_none_or(|s| s == t_scheme)
                    && match host {
                        HostRule::Any => true,
                        HostRule::Exact(h) => h == t_host,
                        HostRule::Suffix(s) => t_host.ends_with(s.as_str()),
                    }
                    && match port {
                        PortRule::Any => true,
                        PortRule::Range(lo, hi) => (*lo..=*hi).contains(t_port),
                    }
            }
            (Rule::Unix { path }, Target::Unix { path: t_path }) => {
                path.as_ref().is_none_or(|p| p == t_path)
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str], address: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let hosts = AllowedHosts::parse(&entries).unwrap();
        hosts.allows(&parse_address(address).unwrap())
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(
            parse_address("redis://:s3cret@LocalHost:6380/2?protocol=resp3").unwrap(),
            Target::Tcp {
                scheme: "redis".into(),
                host: "localhost".into(),
                port: 6380
            }
        );
        assert_eq!(
            parse_address("rediss://user:p@ss@h").unwrap(),
            Target::Tcp {
                scheme: "rediss".into(),
                host: "h".into(),
                port: 6379
            }
        );
        assert_eq!(
            parse_address("redis://[::1]:7000").unwrap(),
            Target::Tcp {
                scheme: "redis".into(),
                host: "::1".into(),
                port: 7000
            }
        );
        assert_eq!(
            parse_address("redis+unix:///tmp/r.sock?db=1").unwrap(),
            Target::Unix {
                path: "/tmp/r.sock".into()
            }
        );
        assert!(parse_address("127.0.0.1:6379").is_err());
        assert!(parse_address("redis://h:port").is_err());
        assert!(parse_address("http://h").is_err());
        assert!(parse_address("redis://").is_err());
    }

    #[test]
    fn exact_host_and_port() {
        let rule = ["redis://127.0.0.1:6379"];
        assert!(allowed(&rule, "redis://127.0.0.1:6379"));
        assert!(allowed(&rule, "redis://127.0.0.1"));
        assert!(allowed(&rule, "redis://:pw@127.0.0.1:6379/3"));
        assert!(!allowed(&rule, "redis://127.0.0.1:6380"));
        assert!(!allowed(&rule, "redis://10.0.0.1:6379"));
        assert!(!allowed(&rule, "rediss://127.0.0.1:6379"));
    }

    #[test]
    fn a_rule_that_is_a_full_url_with_user_info() {
        // `allowed_outbound_hosts = ["{{ redis_address }}"]` expands to the whole URL,
        // password and database included; only scheme, host and port count.
        let rule = ["rediss://user:p%40ss@Redis.Example.com:6380/2?protocol=resp3"];
        assert!(allowed(
            &rule,
            "rediss://user:p%40ss@redis.example.com:6380/2"
        ));
        assert!(allowed(&rule, "rediss://redis.example.com:6380"));
        assert!(!allowed(&rule, "redis://redis.example.com:6380"));
        assert!(!allowed(&rule, "rediss://redis.example.com:6379"));
        let rule = ["redis://:s3cret@127.0.0.1:7000"];
        assert!(allowed(&rule, "redis://:s3cret@127.0.0.1:7000"));
        assert!(allowed(&rule, "redis://:other@127.0.0.1:7000"));
        assert!(!allowed(&rule, "rediss://:s3cret@127.0.0.1:7000"));
    }

    #[test]
    fn default_port_in_rule() {
        assert!(allowed(
            &["redis://cache.internal"],
            "redis://cache.internal:6379"
        ));
        assert!(!allowed(
            &["redis://cache.internal"],
            "redis://cache.internal:1"
        ));
    }

    #[test]
    fn wildcards() {
        assert!(allowed(&["redis://127.0.0.1:*"], "redis://127.0.0.1:1234"));
        assert!(!allowed(&["redis://127.0.0.1:*"], "redis://127.0.0.2:1234"));
        assert!(allowed(&["redis://*:6379"], "redis://anything:6379"));
        assert!(!allowed(&["redis://*:6379"], "redis://anything:6380"));
        assert!(allowed(&["redis://*:*"], "redis://x:1"));
        assert!(!allowed(&["redis://*:*"], "rediss://x:1"));
        assert!(allowed(&["*://*:*"], "rediss://x:1"));
        assert!(allowed(&["*://*:*"], "redis+unix:///s"));
        assert!(allowed(
            &["redis://*.example.com:*"],
            "redis://a.b.example.com:1"
        ));
        assert!(!allowed(
            &["redis://*.example.com:*"],
            "redis://example.com:1"
        ));
        assert!(allowed(&["redis://h:7000-7005"], "redis://h:7003"));
        assert!(!allowed(&["redis://h:7000-7005"], "redis://h:7006"));
    }

    #[test]
    fn unix_sockets() {
        assert!(allowed(&["redis+unix:///tmp/r.sock"], "unix:///tmp/r.sock"));
        assert!(!allowed(
            &["redis+unix:///tmp/r.sock"],
            "unix:///tmp/other.sock"
        ));
        assert!(allowed(&["redis+unix://*"], "redis+unix:///x"));
        assert!(!allowed(&["redis://*:*"], "redis+unix:///x"));
    }

    #[test]
    fn other_schemes_are_skipped_and_nothing_is_allowed_by_default() {
        assert!(!allowed(&["https://example.com"], "redis://example.com"));
        assert!(!allowed(&[], "redis://127.0.0.1:6379"));
        assert!(AllowedHosts::parse(&["no-scheme".to_string()]).is_err());
        assert!(AllowedHosts::parse(&["redis://h:notaport".to_string()]).is_err());
    }
}
