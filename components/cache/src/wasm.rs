//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the typed
//! `redwasm:cache/cache` export, both thin adapters over [`crate::http::handle`] and
//! [`crate::Cache`]. No logic lives here.

use std::cell::RefCell;

use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, variable};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::config::{CacheConfig, DEFAULT_REDIS_ADDRESS, VAR_REDIS_ADDRESS};
use crate::{Cache, CacheError, SystemClock};

thread_local! {
    /// The cache, built once per instance: its variables cannot change during an instance's
    /// life, and reading them is import calls on every request's hot path.
    static CACHE: RefCell<Option<Cache<SpinRedis, SystemClock>>> = const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads; fetching only these keeps the per-request
/// import calls (and copies) few.
const REQUEST_HEADERS: [&str; 3] = ["x-correlation-id", "content-type", "if-match"];

/// Runs `f` on this instance's cache.
fn with_cache<T>(f: impl FnOnce(&mut Cache<SpinRedis, SystemClock>) -> T) -> T {
    CACHE.with(|cell| {
        let mut cache = cell.borrow_mut();
        let cache = cache.get_or_insert_with(|| {
            let address =
                variable(VAR_REDIS_ADDRESS).unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
            Cache::new(
                SpinRedis::new(address),
                SystemClock,
                CacheConfig::from_lookup(variable),
            )
        });
        f(cache)
    })
}

/// The HTTP entry point: reads the request (only PUT and POST bodies, at most
/// [`crate::http::max_body_bytes`]) and answers through [`crate::http::handle`].
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let shape = RequestShape {
        headers: &REQUEST_HEADERS,
        body_methods: &["PUT", "POST"],
        max_body_bytes: with_cache(|cache| crate::http::max_body_bytes(cache.config())),
    };
    let response = match read_request(request, &shape) {
        Ok(request) => with_cache(|cache| crate::http::handle(cache, &request)),
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-cache");
}

// The same HTTP layer as `handle_http`, called by the redwasm host in one go
// (`redwasm:http/handler`): the host has read the whole body and passes only REQUEST_HEADERS.
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_cache(|cache| crate::http::handle(cache, request))
});

/// Bindings of the typed export (`wit/cache-0.2.0.wit`, the single file: `wit/deps` holds an async
/// package this world does not need).
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/cache-0.2.0.wit",
        world: "cache-component",
    });
}

use bindings::exports::redwasm::cache::cache as typed;

struct TypedCache;

impl typed::Guest for TypedCache {
    fn get(ns: String, key: String) -> Result<Option<typed::Entry>, typed::Error> {
        let entry = with_cache(|cache| cache.get(&ns, &key)).map_err(to_wit_error)?;
        Ok(entry.map(to_wit_entry))
    }

    fn get_uncounted(ns: String, key: String) -> Result<typed::Read, typed::Error> {
        let read = with_cache(|cache| cache.get_uncounted(&ns, &key)).map_err(to_wit_error)?;
        Ok(typed::Read {
            entry: read.entry.map(to_wit_entry),
            uncounted_hit: read.uncounted_hit,
        })
    }

    fn record_hits(ns: String, hits: u64) -> Result<(), typed::Error> {
        with_cache(|cache| cache.record_hits(&ns, hits)).map_err(to_wit_error)
    }

    fn get_with_lease(
        ns: String,
        key: String,
        wait_ms: u64,
    ) -> Result<typed::LookupResult, typed::Error> {
        let lookup = with_cache(|cache| cache.lookup(&ns, &key, wait_ms)).map_err(to_wit_error)?;
        Ok(match lookup {
            crate::Lookup::Hit(entry) => typed::LookupResult::Hit(to_wit_entry(entry)),
            crate::Lookup::Lease(token) => typed::LookupResult::Lease(token),
            crate::Lookup::Miss => typed::LookupResult::Miss,
        })
    }

    fn set(
        ns: String,
        key: String,
        value: Vec<u8>,
        options: typed::SetOptions,
    ) -> Result<(), typed::Error> {
        let options = crate::SetOptions {
            ttl_ms: options.ttl_ms,
            swr_ms: options.swr_ms,
            jitter_pct: options.jitter_pct,
            tags: options.tags,
            content_type: options.content_type,
            if_match: options.if_match,
        };
        with_cache(|cache| cache.set(&ns, &key, &value, &options)).map_err(to_wit_error)
    }

    fn delete(ns: String, key: String) -> Result<bool, typed::Error> {
        with_cache(|cache| cache.delete(&ns, &key)).map_err(to_wit_error)
    }

    fn invalidate_tags(ns: String, tags: Vec<String>) -> Result<u64, typed::Error> {
        with_cache(|cache| cache.invalidate_tags(&ns, &tags)).map_err(to_wit_error)
    }

    fn invalidate_all(ns: String) -> Result<u64, typed::Error> {
        with_cache(|cache| cache.invalidate_all(&ns)).map_err(to_wit_error)
    }

    fn stats(ns: String) -> Result<typed::CacheStats, typed::Error> {
        let stats = with_cache(|cache| cache.stats(&ns)).map_err(to_wit_error)?;
        Ok(typed::CacheStats {
            hits: stats.hits,
            misses: stats.misses,
            stale_hits: stats.stale_hits,
            keys: stats.keys,
        })
    }
}

fn to_wit_entry(entry: crate::Entry) -> typed::Entry {
    typed::Entry {
        value: entry.value,
        content_type: entry.content_type,
        age_ms: entry.age_ms,
        stale: entry.stale,
        revalidate_token: entry.revalidate_token,
    }
}

fn to_wit_error(error: CacheError) -> typed::Error {
    match error {
        CacheError::Invalid { field, detail } => {
            typed::Error::Invalid(format!("{field}: {detail}"))
        }
        CacheError::TooLarge(limit) => typed::Error::TooLarge(limit),
        CacheError::PreconditionFailed(detail) => typed::Error::PreconditionFailed(detail),
        CacheError::Unavailable(detail) => typed::Error::Unavailable(detail),
    }
}

bindings::export!(TypedCache with_types_in bindings);
