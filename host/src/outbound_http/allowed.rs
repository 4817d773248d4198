//! `allowed_outbound_hosts` for HTTP, with Spin's rules:
//! - `http://host[:port]`, `https://host[:port]`; an omitted port is the scheme's default
//!   (80, 443); `*://host:port` needs its port;
//! - `*` as the scheme, host or port; `*.example.com` for any subdomain (not the domain
//!   itself); a port range `8000..8010` (end excluded, as in Spin) or a single port;
//! - no path (a bare trailing `/` is allowed); `{{ var }}` templates are resolved before
//!   entries get here, and an entry that resolved to nothing (`""`, `http://`) is skipped;
//! - entries of other schemes (`redis://...`) concern other capabilities and are skipped.
//!
//! `self` (the app's own routes) is parsed and reported by [`AllowedHttp::allows_self`];
//! such requests are refused for now (see the module docs of `outbound_http`).

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `None` for `*`.
    scheme: Option<String>,
    host: Host,
    /// Inclusive range.
    ports: Option<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Suffix(String),
    /// `self` / `self.alt`.
    SelfApp,
}

/// The HTTP part of a component's `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHttp {
    rules: Vec<Rule>,
}

impl AllowedHttp {
    /// Parses the entries (templates already resolved); an HTTP entry that breaks Spin's rules
    /// is an error naming it.
    pub fn parse(entries: &[String]) -> Result<AllowedHttp, String> {
        let mut rules = Vec::new();
        for entry in entries {
            if let Some(rule) = parse_rule(entry.trim())? {
                rules.push(rule);
            }
        }
        Ok(AllowedHttp { rules })
    }

    /// Whether a request to `scheme://host:port` may go out. `host` is lower-case, IPv6
    /// without brackets.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.rules.iter().any(|rule| {
            rule.scheme.as_deref().is_none_or(|s| s == scheme)
                && match &rule.host {
                    Host::Any => true,
                    Host::Exact(h) => h == host,
                    Host::Suffix(suffix) => host.ends_with(suffix.as_str()),
                    Host::SelfApp => false,
                }
                && rule.ports.is_none_or(|(lo, hi)| (lo..=hi).contains(&port))
        })
    }

    /// Whether the component may call the app's own routes (`self`).
    pub fn allows_self(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.host, Host::SelfApp | Host::Any))
    }

    /// True when no HTTP entry was given.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_rule(entry: &str) -> Result<Option<Rule>, String> {
    let Some((scheme, rest)) = entry.split_once("://") else {
        return match entry {
            "" => Ok(None),
            _ => Err(format!(
                "allowed_outbound_hosts entry `{entry}` has no scheme (e.g. https://example.com)"
            )),
        };
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "*") {
        return Ok(None);
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        // A template that resolved to nothing.
        return Ok(None);
    }
    if rest.contains(['/', '?', '#']) {
        return Err(format!(
            "allowed_outbound_hosts entry `{entry}` has a path; only scheme, host and port are allowed"
        ));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{entry}`: unterminated IPv6 address"))?;
            (
                host.to_string(),
                after.strip_prefix(':').map(str::to_string),
            )
        }
        None => match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        },
    };
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "*" => Host::Any,
        "self" | "self.alt" => Host::SelfApp,
        h if h.starts_with("*.") => Host::Suffix(h[1..].to_string()),
        h if h.contains('*') => {
            return Err(format!(
                "`{entry}`: `*` may only be the whole host or its first label (*.example.com)"
            ));
        }
        h if h.contains('/') => {
            return Err(format!("`{entry}`: CIDR hosts are not supported"));
        }
        h => Host::Exact(h.to_string()),
    };
    let ports = match port.as_deref() {
        Some("*") => None,
        Some(p) => Some(parse_ports(p).ok_or_else(|| format!("`{entry}`: invalid port `{p}`"))?),
        None if host == Host::SelfApp => None,
        None => match default_port(&scheme) {
            Some(p) => Some((p, p)),
            None => {
                return Err(format!(
                    "`{entry}`: a `*` scheme needs a port (e.g. *://example.com:8080)"
                ));
            }
        },
    };
    Ok(Some(Rule {
        scheme: (scheme != "*").then_some(scheme),
        host,
        ports,
    }))
}

/// `8080`, or `8000..8010` (end excluded, as in Spin).
fn parse_ports(text: &str) -> Option<(u16, u16)> {
    match text.split_once("..") {
        Some((lo, hi)) => {
            let lo: u16 = lo.parse().ok()?;
            let hi: u16 = hi.parse().ok()?;
            (lo < hi).then(|| (lo, hi - 1))
        }
        None => text.parse().ok().map(|p| (p, p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHttp {
        AllowedHttp::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        let a = allowed(&["https://api.example.com", "http://example.org/"]);
        assert!(a.allows("https", "api.example.com", 443));
        assert!(!a.allows("https", "api.example.com", 8443));
        assert!(!a.allows("http", "api.example.com", 443));
        assert!(a.allows("http", "example.org", 80));
        assert!(!a.allows("http", "example.org", 443));
    }

    #[test]
    fn wildcards_and_ranges() {
        let a = allowed(&["*://*.example.com:8000..8002", "http://localhost:*"]);
        assert!(a.allows("https", "a.example.com", 8001));
        assert!(
            !a.allows("https", "a.example.com", 8002),
            "the end is excluded"
        );
        assert!(
            !a.allows("https", "example.com", 8000),
            "a subdomain rule is not the domain"
        );
        assert!(a.allows("http", "localhost", 1234));
        assert!(!a.allows("https", "localhost", 1234));
        let any = allowed(&["*://*:*"]);
        assert!(any.allows("https", "anything", 1) && any.allows_self());
    }

    #[test]
    fn other_schemes_and_empty_templates_are_skipped() {
        let a = allowed(&["redis://localhost:6379", "", "http://", "https://"]);
        assert!(a.is_empty());
        assert!(!a.allows("http", "localhost", 6379));
    }

    #[test]
    fn self_is_not_a_host_name() {
        let a = allowed(&["http://self"]);
        assert!(a.allows_self());
        assert!(!a.allows("http", "self", 80));
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            "*://example.com",
            "https://example.com/path",
            "https://ex*ample.com",
            "https://example.com:http",
            "https://example.com:9..9",
            "example.com",
        ] {
            assert!(
                AllowedHttp::parse(&[bad.to_string()]).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
