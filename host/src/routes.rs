//! Spin's HTTP route syntax and the router built from a manifest's `[[trigger.http]]` routes.
//!
//! # Layout
//! - [`Router`]: built once from `(route, component id)` pairs by [`Router::build`]; answers
//!   [`Router::route`] with a [`RouteMatch`].
//! - [`RouteMatch`]: which component serves a path, what the route captured, and the Spin
//!   request headers for it ([`RouteMatch::spin_headers`]).
//! - [`RouteError`]: why a route string, or a set of routes, was refused.
//! - [`HOST_ROUTES`] / [`is_host_route`]: the paths the host answers itself.
//!
//! # Route syntax (as Spin reads it)
//! - Exact: `/v1/health` matches that path only (a trailing `/` on the request is ignored, and
//!   so are repeated slashes, as in Spin).
//! - Parameter: `/users/:id` matches `/users/42` and captures `id = "42"`. A parameter spans
//!   one whole segment.
//! - Trailing wildcard: `/v1/cache/...` (or Spin's older spelling `/v1/cache/*`) matches
//!   `/v1/cache` itself and everything below it; what follows the prefix is the *path info*.
//!   The wildcard may only be the last segment.
//! - A route without a leading `/` gets one, and one trailing `/` is dropped, as Spin does.
//! - `{ private = true }` routes are not routable: the manifest module leaves them out before
//!   building the router.
//!
//! # Precedence (Spin's, which comes from the `routefinder` crate it uses)
//! When several routes match, the segments of the candidates are compared left to right and the
//! first difference decides: a literal segment beats a parameter, which beats the wildcard; a
//! route that ends exactly where the path ends beats a wildcard that matches nothing. So an
//! exact route beats a wildcard, and a longer wildcard prefix beats a shorter one, whatever the
//! order of the manifest.
//!
//! # Differences from Spin, on purpose
//! - Two routes that are the same pattern (`/a` and `/a/`, `/u/:id` and `/u/:name`, `/x/...`
//!   and `/x/*`) are an error here; Spin logs them and lets the last one win, which hides
//!   a mistake.
//! - Parameter names are limited to ASCII letters, digits, `_` and `-` so that every
//!   `spin-path-match-<name>` header is a valid header name; `:name.json`-style parameters
//!   inside a segment are refused rather than half-supported.
//! - `spin-matched-route` for the root route is `/` (Spin sends an empty string).
//!
//! # Host routes
//! The host itself answers `/health` and `/metrics` ([`HOST_ROUTES`]). They win over any
//! manifest route: the trigger checks [`is_host_route`] before asking the router. A manifest
//! route that they shadow is not an error, because a catch-all `/...` (common in Spin apps)
//! always covers them; [`Router::shadowed_host_routes`] lists such routes so the caller can
//! warn once at start-up.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use http::{HeaderName, HeaderValue};

/// Paths the host answers itself; they take precedence over every manifest route.
pub const HOST_ROUTES: [&str; 2] = ["/health", "/metrics"];

/// Whether `path` (without its query) is one the host answers itself (see [`HOST_ROUTES`]).
pub fn is_host_route(path: &str) -> bool {
    HOST_ROUTES.contains(&path)
}

/// Why a route string, or a set of routes, was refused by [`Router::build`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The route contains a character that cannot appear in a route.
    #[error("route `{route}` contains {character:?}, which is not allowed in a route")]
    InvalidCharacter {
        /// The route as written.
        route: String,
        /// The offending character.
        character: char,
    },
    /// A `:` segment has no name.
    #[error("route `{route}` has a parameter without a name (`:` must be followed by a name)")]
    UnnamedParameter {
        /// The route as written.
        route: String,
    },
    /// A parameter name uses characters outside `[A-Za-z0-9_-]`.
    #[error(
        "route `{route}` has parameter `:{name}`: a parameter spans a whole segment and its \
         name may only contain ASCII letters, digits, `_` and `-`"
    )]
    InvalidParameterName {
        /// The route as written.
        route: String,
        /// The parameter name (without the `:`).
        name: String,
    },
    /// The same parameter name appears twice in one route.
    #[error("route `{route}` uses the parameter name `:{name}` twice")]
    DuplicateParameter {
        /// The route as written.
        route: String,
        /// The repeated name.
        name: String,
    },
    /// A wildcard (`...` or `*`) is followed by more segments.
    #[error(
        "route `{route}` has a wildcard that is not the last segment (only a trailing `/...` is allowed)"
    )]
    WildcardNotLast {
        /// The route as written.
        route: String,
    },
    /// A segment like `*rest`: Spin's wildcard takes no name.
    #[error("route `{route}` has the segment `{segment}`: a wildcard takes no name, write `/...`")]
    NamedWildcard {
        /// The route as written.
        route: String,
        /// The offending segment.
        segment: String,
    },
    /// Two routes are the same pattern, so one of them could never be reached.
    #[error(
        "route `{route}` of component `{component}` duplicates route `{existing_route}` of \
         component `{existing_component}`"
    )]
    Duplicate {
        /// The later route as written.
        route: String,
        /// The component of the later route.
        component: String,
        /// The earlier, equivalent route as written.
        existing_route: String,
        /// The component of the earlier route.
        existing_component: String,
    },
}

/// One segment of a parsed route.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// Matches any one non-empty segment and captures it under this name.
    Parameter(String),
    /// Matches whatever is left, including nothing. Always the last segment.
    Wildcard,
}

impl Segment {
    /// Precedence rank of the segment when two matching routes differ at this position;
    /// higher wins. [`END_RANK`] is used for "the route ends here".
    fn rank(&self) -> u8 {
        match self {
            Segment::Wildcard => 0,
            Segment::Parameter(_) => 1,
            Segment::Literal(_) => 2,
        }
    }
}

/// Rank of "the route ends exactly where the path ends": beats a wildcard matching nothing.
/// (A literal or parameter can never match at a position where the path has ended, so only
/// the comparison with the wildcard matters.)
const END_RANK: u8 = 3;

/// A route string parsed into segments.
#[derive(Clone, Debug)]
struct ParsedRoute {
    segments: Vec<Segment>,
}

impl ParsedRoute {
    fn parse(raw: &str) -> Result<Self, RouteError> {
        if let Some(character) = raw
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
        {
            return Err(RouteError::InvalidCharacter {
                route: raw.to_string(),
                character,
            });
        }
        let pieces: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(pieces.len());
        let mut parameter_names: Vec<&str> = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            let segment = if *piece == "..." || *piece == "*" {
                if index + 1 != pieces.len() {
                    return Err(RouteError::WildcardNotLast {
                        route: raw.to_string(),
                    });
                }
                Segment::Wildcard
            } else if piece.starts_with('*') {
                return Err(RouteError::NamedWildcard {
                    route: raw.to_string(),
                    segment: piece.to_string(),
                });
            } else if let Some(name) = piece.strip_prefix(':') {
                if name.is_empty() {
                    return Err(RouteError::UnnamedParameter {
                        route: raw.to_string(),
                    });
                }
                if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(RouteError::InvalidParameterName {
                        route: raw.to_string(),
                        name: name.to_string(),
                    });
                }
                if parameter_names.contains(&name) {
                    return Err(RouteError::DuplicateParameter {
                        route: raw.to_string(),
                        name: name.to_string(),
                    });
                }
                parameter_names.push(name);
                Segment::Parameter(name.to_string())
            } else {
                Segment::Literal(piece.to_string())
            };
            segments.push(segment);
        }
        Ok(ParsedRoute { segments })
    }

    /// A key equal for two routes exactly when they match the same paths the same way
    /// (parameter names and the wildcard's spelling don't matter).
    fn shape_key(&self) -> String {
        let mut key = String::new();
        for segment in &self.segments {
            key.push('/');
            match segment {
                Segment::Literal(text) => key.push_str(text),
                Segment::Parameter(_) => key.push(':'),
                Segment::Wildcard => key.push_str("..."),
            }
        }
        if key.is_empty() {
            key.push('/');
        }
        key
    }
}

/// The route Spin reports as matched: leading `/` added, one trailing `/` dropped.
fn sanitize(raw: &str) -> String {
    let absolute = if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("/{raw}")
    };
    match absolute.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => absolute,
    }
}

/// One routable entry of the router.
#[derive(Clone, Debug)]
struct RouteEntry {
    component_id: String,
    raw_route: String,
    matched_route: String,
    parsed: ParsedRoute,
}

/// A path split into its non-empty segments, remembering where each starts so that the
/// wildcard's remainder can be taken verbatim (Spin keeps inner `//` in the path info).
struct PathSegments<'p> {
    trimmed: &'p str,
    segments: Vec<(usize, &'p str)>,
}

impl<'p> PathSegments<'p> {
    fn new(path: &'p str) -> Self {
        let trimmed = path.trim_matches('/');
        let mut segments = Vec::new();
        let mut offset = 0;
        for piece in trimmed.split('/') {
            if !piece.is_empty() {
                segments.push((offset, piece));
            }
            offset += piece.len() + 1;
        }
        PathSegments { trimmed, segments }
    }

    /// Everything from segment `index` on, or `""` when the path has no such segment.
    fn rest_from(&self, index: usize) -> &'p str {
        match self.segments.get(index) {
            Some((start, _)) => &self.trimmed[*start..],
            None => "",
        }
    }
}

/// What a route captured from one path, with the precedence key used to pick the best route.
struct Candidate<'r, 'p> {
    entry: &'r RouteEntry,
    rank: Vec<u8>,
    params: Vec<(&'r str, &'p str)>,
    wildcard_rest: Option<&'p str>,
}

impl RouteEntry {
    fn try_match<'r, 'p>(&'r self, path: &PathSegments<'p>) -> Option<Candidate<'r, 'p>> {
        let mut rank = Vec::with_capacity(self.parsed.segments.len() + 1);
        let mut params = Vec::new();
        for (index, segment) in self.parsed.segments.iter().enumerate() {
            rank.push(segment.rank());
            match segment {
                Segment::Wildcard => {
                    return Some(Candidate {
                        entry: self,
                        rank,
                        params,
                        wildcard_rest: Some(path.rest_from(index)),
                    });
                }
                Segment::Literal(text) => {
                    let (_, piece) = path.segments.get(index)?;
                    if piece != text {
                        return None;
                    }
                }
                Segment::Parameter(name) => {
                    let (_, piece) = path.segments.get(index)?;
                    params.push((name.as_str(), *piece));
                }
            }
        }
        if path.segments.len() != self.parsed.segments.len() {
            return None;
        }
        rank.push(END_RANK);
        Some(Candidate {
            entry: self,
            rank,
            params,
            wildcard_rest: None,
        })
    }
}

/// Routes request paths to components by Spin's route syntax and precedence.
///
/// Matching scans every route (manifests have a handful), so a lookup costs a few
/// microseconds at most and needs no index to keep consistent.
#[derive(Clone, Debug, Default)]
pub struct Router {
    entries: Vec<RouteEntry>,
}

impl Router {
    /// Builds a router from `(route, component id)` pairs, in manifest order.
    ///
    /// Fails on the first route with invalid syntax and on two routes with the same pattern
    /// ([`RouteError::Duplicate`]). Private (`{ private = true }`) routes must be left out by
    /// the caller: they are not routable.
    pub fn build<R, C>(routes: &[(R, C)]) -> Result<Router, RouteError>
    where
        R: AsRef<str>,
        C: AsRef<str>,
    {
        let mut entries: Vec<RouteEntry> = Vec::with_capacity(routes.len());
        let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
        for (route, component_id) in routes {
            let (raw_route, component_id) = (route.as_ref(), component_id.as_ref());
            let parsed = ParsedRoute::parse(raw_route)?;
            let shape = parsed.shape_key();
            if let Some(&existing) = shapes.get(&shape) {
                let existing: &RouteEntry = &entries[existing];
                return Err(RouteError::Duplicate {
                    route: raw_route.to_string(),
                    component: component_id.to_string(),
                    existing_route: existing.raw_route.clone(),
                    existing_component: existing.component_id.clone(),
                });
            }
            shapes.insert(shape, entries.len());
            entries.push(RouteEntry {
                component_id: component_id.to_string(),
                raw_route: raw_route.to_string(),
                matched_route: sanitize(raw_route),
                parsed,
            });
        }
        Ok(Router { entries })
    }

    /// Checks one route's syntax without building a router.
    pub fn check_route(route: &str) -> Result<(), RouteError> {
        ParsedRoute::parse(route).map(|_| ())
    }

    /// The component that serves `path`, or `None` when no route matches.
    ///
    /// `path` is the request's path; anything from a `?` on is ignored. The host's own
    /// [`HOST_ROUTES`] are not consulted here: the caller answers those first.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let path = path.split_once('?').map_or(path, |(before, _)| before);
        let segments = PathSegments::new(path);
        let best = self
            .entries
            .iter()
            .filter_map(|entry| entry.try_match(&segments))
            .max_by(|a, b| a.rank.cmp(&b.rank))?;
        let path_info = match best.wildcard_rest {
            None => String::new(),
            // Spin's path info keeps the request's trailing slash and always starts with `/`
            // when non-empty.
            Some(rest) => match (rest.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{rest}"),
                (false, true) => format!("/{rest}/"),
            },
        };
        Some(RouteMatch {
            component_id: best.entry.component_id.clone(),
            matched_route: best.entry.matched_route.clone(),
            raw_route: best.entry.raw_route.clone(),
            path_info,
            params: best
                .params
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        })
    }

    /// The routes, as `(route as written, component id)`, in manifest order.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.raw_route.as_str(), e.component_id.as_str()))
    }

    /// The host routes ([`HOST_ROUTES`]) that a manifest route would otherwise serve, with the
    /// route that loses to the host: worth a warning at start-up.
    pub fn shadowed_host_routes(&self) -> Vec<(&'static str, RouteMatch)> {
        HOST_ROUTES
            .iter()
            .filter_map(|host_route| self.route(host_route).map(|m| (*host_route, m)))
            .collect()
    }
}

/// The result of routing one path: the component to run and what Spin tells it about the match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The id of the component that serves the request.
    pub component_id: String,
    /// The matched route as Spin reports it (`spin-matched-route`): leading `/`, no trailing `/`.
    pub matched_route: String,
    /// The matched route exactly as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// For a wildcard route, the part of the path below the prefix (`spin-path-info`), e.g.
    /// `/a/b` for `/v1/cache/a/b` against `/v1/cache/...`; empty for other routes.
    pub path_info: String,
    /// The `:name` parameters and the path segments they captured, by name.
    pub params: BTreeMap<String, String>,
}

impl RouteMatch {
    /// The route without its trailing wildcard, as written (`spin-component-route`): `/v1/cache`
    /// for `/v1/cache/...`.
    pub fn component_route(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }

    /// The headers Spin adds to a request it routes, for this match: `spin-full-url`,
    /// `spin-path-info`, `spin-matched-route`, `spin-base-path` (always `/`),
    /// `spin-raw-component-route`, `spin-component-route`, `spin-client-addr`, and one
    /// `spin-path-match-<name>` per parameter (`_` in the name becomes `-`).
    ///
    /// `full_url` is the absolute request URL (`http://host/path?query`) and `client_addr`
    /// the peer's address. Insert them with `HeaderMap::insert` so that a client cannot
    /// forge them. A value that is not a valid header value (impossible for values that came
    /// from a parsed request) is left out.
    pub fn spin_headers(
        &self,
        full_url: &str,
        client_addr: SocketAddr,
    ) -> Vec<(HeaderName, HeaderValue)> {
        // Static names and no intermediate `String`s: this runs on every request.
        let fixed: [(&'static str, std::borrow::Cow<'_, str>); 7] = [
            ("spin-full-url", full_url.into()),
            ("spin-path-info", self.path_info.as_str().into()),
            ("spin-matched-route", self.matched_route.as_str().into()),
            ("spin-base-path", "/".into()),
            ("spin-raw-component-route", self.raw_route.as_str().into()),
            ("spin-component-route", self.component_route().into()),
            ("spin-client-addr", client_addr.to_string().into()),
        ];
        let mut headers = Vec::with_capacity(fixed.len() + self.params.len());
        for (name, value) in fixed {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.push((HeaderName::from_static(name), value));
            }
        }
        for (name, value) in &self.params {
            let header = format!(
                "spin-path-match-{}",
                name.to_ascii_lowercase().replace('_', "-")
            );
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(header.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.push((name, value));
            }
        }
        headers
    }
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via `{}`", self.component_id, self.raw_route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(routes).expect("routes should be valid")
    }

    fn component_for(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| m.component_id)
    }

    #[test]
    fn exact_routes_match_only_their_path() {
        let r = router(&[("/foo", "foo"), ("/foo/bar", "foobar")]);
        assert_eq!(component_for(&r, "/foo").as_deref(), Some("foo"));
        assert_eq!(component_for(&r, "/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(
            component_for(&r, "/foo/").as_deref(),
            Some("foo"),
            "trailing slash is ignored"
        );
        assert_eq!(
            component_for(&r, "//foo//bar").as_deref(),
            Some("foobar"),
            "repeated slashes collapse"
        );
        assert_eq!(component_for(&r, "/foobar"), None);
        assert_eq!(component_for(&r, "/foo/bar/baz"), None);
        assert_eq!(component_for(&r, "/"), None);
    }

    #[test]
    fn wildcard_matches_its_prefix_and_everything_below() {
        let r = router(&[("/v1/cache/...", "cache")]);
        for path in ["/v1/cache", "/v1/cache/", "/v1/cache/a", "/v1/cache/a/b/c"] {
            assert_eq!(component_for(&r, path).as_deref(), Some("cache"), "{path}");
        }
        assert_eq!(
            component_for(&r, "/v1/cachex"),
            None,
            "a prefix is whole segments"
        );
        assert_eq!(component_for(&r, "/v1"), None);
    }

    #[test]
    fn root_wildcard_matches_everything() {
        let r = router(&[("/...", "all")]);
        for path in [
            "/",
            "",
            "/foo/bar",
            "/abc/",
            "/this/should/be/captured?abc=def",
        ] {
            assert_eq!(component_for(&r, path).as_deref(), Some("all"), "{path}");
        }
    }

    #[test]
    fn star_is_an_alias_for_the_trailing_wildcard() {
        let r = router(&[("/files/*", "files")]);
        let m = r.route("/files/a/b").unwrap();
        assert_eq!(m.path_info, "/a/b");
        assert_eq!(m.component_route(), "/files/*", "Spin only strips `/...`");
    }

    #[test]
    fn exact_beats_wildcard_regardless_of_order() {
        for routes in [
            [("/one", "exact"), ("/...", "wildcard")],
            [("/...", "wildcard"), ("/one", "exact")],
        ] {
            let r = router(&routes);
            assert_eq!(component_for(&r, "/one").as_deref(), Some("exact"));
            assert_eq!(component_for(&r, "/two").as_deref(), Some("wildcard"));
        }
        let r = router(&[("/foo/...", "wildcard"), ("/foo", "exact")]);
        assert_eq!(component_for(&r, "/foo").as_deref(), Some("exact"));
        assert_eq!(component_for(&r, "/foo/x").as_deref(), Some("wildcard"));
    }

    #[test]
    fn longest_wildcard_prefix_wins_regardless_of_order() {
        let forward = [
            ("/one/...", "one"),
            ("/one/two/...", "onetwo"),
            ("/one/two/three/...", "onetwothree"),
        ];
        let mut backward = forward;
        backward.reverse();
        for routes in [forward, backward] {
            let r = router(&routes);
            assert_eq!(
                component_for(&r, "/one/two/three/four").as_deref(),
                Some("onetwothree")
            );
            assert_eq!(component_for(&r, "/one/two/x").as_deref(), Some("onetwo"));
            assert_eq!(component_for(&r, "/one/x").as_deref(), Some("one"));
            assert_eq!(component_for(&r, "/one").as_deref(), Some("one"));
        }
    }

    #[test]
    fn literal_beats_parameter_beats_wildcard() {
        let r = router(&[
            ("/users/...", "wild"),
            ("/users/:id", "param"),
            ("/users/me", "literal"),
        ]);
        assert_eq!(component_for(&r, "/users/me").as_deref(), Some("literal"));
        assert_eq!(component_for(&r, "/users/42").as_deref(), Some("param"));
        assert_eq!(
            component_for(&r, "/users/42/posts").as_deref(),
            Some("wild")
        );
        assert_eq!(component_for(&r, "/users").as_deref(), Some("wild"));

        // The first differing segment decides: a literal there beats a parameter even when the
        // parameter route is exact and the literal one a wildcard.
        let r = router(&[("/a/:x", "param"), ("/a/b/...", "literal-wild")]);
        assert_eq!(component_for(&r, "/a/b").as_deref(), Some("literal-wild"));
        assert_eq!(component_for(&r, "/a/c").as_deref(), Some("param"));
    }

    #[test]
    fn parameters_are_captured() {
        let r = router(&[("/1/:two/3", "a"), ("/x/:user_id/...", "b")]);
        let m = r.route("/1/2/3").unwrap();
        assert_eq!(m.params["two"], "2");
        assert_eq!(m.path_info, "");

        let m = r.route("/x/42/y/z").unwrap();
        assert_eq!(m.params["user_id"], "42");
        assert_eq!(m.path_info, "/y/z");
        assert_eq!(
            r.route("/1//3"),
            None,
            "a parameter needs a non-empty segment"
        );
    }

    #[test]
    fn path_info_follows_spin_trailing_slash_rules() {
        let r = router(&[("/test/...", "t")]);
        let info = |p: &str| r.route(p).unwrap().path_info;
        assert_eq!(info("/test"), "");
        assert_eq!(info("/test/"), "/");
        assert_eq!(info("/test/hello"), "/hello");
        assert_eq!(info("/test/hello/"), "/hello/");
        assert_eq!(
            info("/test/a//b?q=1"),
            "/a//b",
            "inner slashes kept, query dropped"
        );

        let r = router(&[("/...", "all")]);
        assert_eq!(r.route("/1/2/3").unwrap().path_info, "/1/2/3");
        assert_eq!(r.route("/").unwrap().path_info, "/");
    }

    #[test]
    fn routes_are_sanitized_like_spin() {
        let r = router(&[("foo/", "foo"), ("/", "root")]);
        let m = r.route("/foo").unwrap();
        assert_eq!(m.matched_route, "/foo");
        assert_eq!(m.raw_route, "foo/");
        assert_eq!(r.route("/").unwrap().matched_route, "/");
    }

    #[test]
    fn invalid_routes_are_refused() {
        type IsExpected = fn(&RouteError) -> bool;
        let cases: &[(&str, IsExpected)] = &[
            ("/a/.../b", |e| {
                matches!(e, RouteError::WildcardNotLast { .. })
            }),
            ("/a/*/b", |e| {
                matches!(e, RouteError::WildcardNotLast { .. })
            }),
            ("/a/*rest", |e| {
                matches!(e, RouteError::NamedWildcard { .. })
            }),
            ("/a/:", |e| matches!(e, RouteError::UnnamedParameter { .. })),
            ("/a/:name.json", |e| {
                matches!(e, RouteError::InvalidParameterName { .. })
            }),
            ("/a/:id/b/:id", |e| {
                matches!(e, RouteError::DuplicateParameter { .. })
            }),
            ("/a b", |e| {
                matches!(e, RouteError::InvalidCharacter { character: ' ', .. })
            }),
            ("/a?b", |e| {
                matches!(e, RouteError::InvalidCharacter { character: '?', .. })
            }),
        ];
        for (route, is_expected) in cases {
            let error = Router::check_route(route).expect_err(route);
            assert!(is_expected(&error), "{route}: {error}");
            assert!(
                error.to_string().contains(route),
                "message names the route: {error}"
            );
        }
    }

    #[test]
    fn equivalent_routes_are_duplicates() {
        for (first, second) in [
            ("/foo", "/foo"),
            ("/foo", "/foo/"),
            ("/u/:id", "/u/:name"),
            ("/x/...", "/x/*"),
            ("/", ""),
        ] {
            let error = Router::build(&[(first, "a"), (second, "b")]).expect_err(second);
            assert_eq!(
                error,
                RouteError::Duplicate {
                    route: second.into(),
                    component: "b".into(),
                    existing_route: first.into(),
                    existing_component: "a".into(),
                }
            );
        }
        // Same prefix, different kinds: not duplicates.
        router(&[("/foo", "a"), ("/foo/...", "b"), ("/foo/:x", "c")]);
    }

    #[test]
    fn spin_headers_match_spins() {
        let r = router(&[("/foo/:userid/...", "c")]);
        let m = r.route("/foo/42/bar").unwrap();
        let headers = m.spin_headers(
            "https://fermyon.dev/foo/42/bar?key1=value1",
            "127.0.0.1:8777".parse().unwrap(),
        );
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            get("spin-full-url").unwrap(),
            "https://fermyon.dev/foo/42/bar?key1=value1"
        );
        assert_eq!(get("spin-path-info").unwrap(), "/bar");
        assert_eq!(get("spin-matched-route").unwrap(), "/foo/:userid/...");
        assert_eq!(get("spin-base-path").unwrap(), "/");
        assert_eq!(get("spin-raw-component-route").unwrap(), "/foo/:userid/...");
        assert_eq!(get("spin-component-route").unwrap(), "/foo/:userid");
        assert_eq!(get("spin-client-addr").unwrap(), "127.0.0.1:8777");
        assert_eq!(get("spin-path-match-userid").unwrap(), "42");
        assert_eq!(headers.len(), 8);

        let r = router(&[("/u/:user_id", "c")]);
        let m = r.route("/u/7").unwrap();
        let headers = m.spin_headers("http://h/u/7", "[::1]:1".parse().unwrap());
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "spin-path-match-user-id" && v == "7")
        );
    }

    #[test]
    fn host_routes_are_reported_when_shadowed() {
        assert!(is_host_route("/health") && is_host_route("/metrics"));
        assert!(!is_host_route("/healthz"));

        let r = router(&[("/v1/cache/...", "cache")]);
        assert!(r.shadowed_host_routes().is_empty());

        let r = router(&[("/...", "all"), ("/metrics", "m")]);
        let shadowed: Vec<_> = r
            .shadowed_host_routes()
            .into_iter()
            .map(|(host, m)| (host, m.component_id))
            .collect();
        assert_eq!(
            shadowed,
            [
                ("/health", "all".to_string()),
                ("/metrics", "m".to_string())
            ]
        );
    }

    #[test]
    fn routes_lists_in_manifest_order() {
        let r = router(&[("/b", "b"), ("/a", "a")]);
        assert_eq!(r.routes().collect::<Vec<_>>(), [("/b", "b"), ("/a", "a")]);
    }
}
