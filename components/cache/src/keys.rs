//! Every Redis key the cache uses is built here, and nowhere else.
//!
//! Layout (before the host's per-component sandbox prefix, e.g. `cache:`, is prepended):
//!
//! | key                 | type   | TTL                           | purpose                              |
//! |---------------------|--------|-------------------------------|--------------------------------------|
//! | `c{<ns>}:v`         | string | none                          | namespace version (INCR = drop all)  |
//! | `c{<ns>}:s`         | hash   | none                          | stats: hits, misses, stale_hits      |
//! | `c{<ns>}:i`         | zset   | longest member                | live index: key → stale_until_ms     |
//! | `c{<ns>}:d:<key>`   | string | until the grace period ends   | entry (see [`crate::record`])        |
//! | `c{<ns>}:l:<key>`   | string | lease_ms                      | single-flight lease (token)          |
//! | `c{<ns>}:r:<key>`   | string | until the grace period ends   | revalidate claim (token)             |
//! | `c{<ns>}:t:<tag>`   | set    | longest member                | keys written with the tag            |
//! | `c{<ns>}:ev`        | stream | 7 days after the last event   | deletes, invalidations (`cache.<ns>`)|
//!
//! `{<ns>}` is a Redis Cluster hash tag, so every key of a namespace lives in one slot and
//! multi-key scripts work on a cluster. The namespace is escaped so it can never end the tag
//! early or open another one: `%` → `%25`, `{` → `%7B`, `}` → `%7D`. Keys and tags need no
//! escaping: they come after the (first, well-formed) hash tag and are the last component.
//! `invalidate_tags.lua` relies on the version key ending in `v` and entry and claim keys
//! being `<base>d:<key>` and `<base>r:<key>`, where `<base>` is the version key without
//! that `v`.
//!
//! Entries were hashes under `c{<ns>}:e:<key>` before the string form; such leftovers are
//! never read (a cache, so they read as misses) and expire by their own TTL.

/// Escapes a namespace for use inside the `{...}` hash tag.
pub fn escape_namespace(ns: &str) -> String {
    redwasm_guest::channels::escape_tag(ns)
}

/// The key builder of one namespace: holds the escaped `c{<ns>}:` base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceKeys {
    base: String,
}

impl NamespaceKeys {
    /// Keys of namespace `ns` (unvalidated here; validation happens at the API boundary).
    pub fn new(ns: &str) -> Self {
        Self {
            base: format!("c{{{}}}:", escape_namespace(ns)),
        }
    }

    /// `c{<ns>}:` — the prefix shared by every key of the namespace.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Namespace version counter.
    pub fn version(&self) -> String {
        format!("{}v", self.base)
    }

    /// Stats hash.
    pub fn stats(&self) -> String {
        format!("{}s", self.base)
    }

    /// Live-entry index (sorted set scored by stale-until).
    pub fn index(&self) -> String {
        format!("{}i", self.base)
    }

    /// Entry of `key` (a string, see [`crate::record`]).
    pub fn entry(&self, key: &str) -> String {
        format!("{}d:{key}", self.base)
    }

    /// Revalidate claim of `key`'s current entry.
    pub fn claim(&self, key: &str) -> String {
        format!("{}r:{key}", self.base)
    }

    /// Single-flight lease of `key`.
    pub fn lease(&self, key: &str) -> String {
        format!("{}l:{key}", self.base)
    }

    /// Events stream (deletes and invalidations): the channel `cache.<ns>`.
    pub fn events(&self) -> String {
        format!("{}ev", self.base)
    }

    /// Set of keys written with `tag`.
    pub fn tag(&self, tag: &str) -> String {
        format!("{}t:{tag}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster would use for `key` (the first `{...}` with content).
    fn cluster_hash_tag(key: &str) -> Option<&str> {
        let open = key.find('{')?;
        let close = key[open + 1..].find('}')? + open + 1;
        (close > open + 1).then(|| &key[open + 1..close])
    }

    #[test]
    fn every_key_of_a_namespace_shares_one_hash_tag_even_with_braces() {
        for ns in ["plain", "a{b}c", "}{", "{x", "%7B", "with:colon"] {
            let keys = NamespaceKeys::new(ns);
            let expected = escape_namespace(ns);
            for key in [
                keys.version(),
                keys.stats(),
                keys.index(),
                keys.entry("k{1}"),
                keys.lease("}"),
                keys.claim("k}"),
                keys.tag("{t}"),
                keys.events(),
            ] {
                assert_eq!(cluster_hash_tag(&key), Some(expected.as_str()), "{key}");
            }
        }
    }

    #[test]
    fn escaping_is_injective_for_tricky_namespaces() {
        assert_ne!(escape_namespace("{"), escape_namespace("%7B"));
        assert_eq!(escape_namespace("a{b}%"), "a%7Bb%7D%25");
    }

    #[test]
    fn entry_keys_derive_from_the_version_key_as_the_tag_script_expects() {
        let keys = NamespaceKeys::new("ns");
        let version = keys.version();
        let base = &version[..version.len() - 1];
        assert_eq!(format!("{base}d:k"), keys.entry("k"));
        assert_eq!(format!("{base}r:k"), keys.claim("k"));
    }
}
