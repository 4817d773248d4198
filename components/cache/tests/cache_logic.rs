//! The cache logic against a real redis-server, with a manual clock for every expiry rule.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use common::{Fixture, RedisRs};
use redwasm_cache::record::Record;
use redwasm_cache::{
    Cache, CacheConfig, CacheError, Clock, Lookup, Read, SetOptions, Stats, SystemClock,
};

fn opts(ttl_ms: u64, swr_ms: u64) -> SetOptions {
    SetOptions {
        ttl_ms: Some(ttl_ms),
        swr_ms: Some(swr_ms),
        jitter_pct: Some(0),
        ..SetOptions::default()
    }
}

fn tagged(ttl_ms: u64, tags: &[&str]) -> SetOptions {
    SetOptions {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..opts(ttl_ms, 0)
    }
}

/// `(stored_ms, fresh_until_ms)` of `key`'s entry in namespace `ns`, read from Redis.
fn stored_and_fresh_until(redis: &mut redis::Connection, key: &str) -> (u64, u64) {
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(format!("c{{ns}}:d:{key}"))
        .query(redis)
        .unwrap();
    let record = Record::decode(&stored).expect("a decodable entry");
    (record.stored_ms, record.fresh_until_ms)
}

/// How many times Redis ran `command` (lower case) since start.
fn calls_of(redis: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(redis).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// The revalidate token a read of `key` (in namespace `ns`) hands out; panics without one.
fn claim_of<C: Clock>(cache: &mut Cache<RedisRs, C>, key: &str) -> String {
    let entry = cache.get("ns", key).unwrap().expect("a stale hit");
    entry.revalidate_token.expect("the revalidate claim")
}

fn counters(stats: Stats) -> (u64, u64, u64) {
    (stats.hits, stats.misses, stats.stale_hits)
}

#[test]
fn set_then_get_is_a_hit_with_age_and_content_type_and_absent_key_is_a_miss() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    assert_eq!(cache.get("ns", "nope").unwrap(), None);

    let options = SetOptions {
        content_type: Some("text/plain; charset=utf-8".into()),
        ..opts(60_000, 0)
    };
    cache.set("ns", "k", b"hello \x00 bytes", &options).unwrap();
    fx.clock.advance_ms(2_500);
    let entry = cache.get("ns", "k").unwrap().expect("hit");
    assert_eq!(entry.value, b"hello \x00 bytes");
    assert_eq!(entry.content_type, "text/plain; charset=utf-8");
    assert_eq!(entry.age_ms, 2_500);
    assert!(!entry.stale);
    assert_eq!(entry.revalidate_token, None);
}

#[test]
fn default_content_type_and_default_ttl_come_from_the_configuration() {
    let fx = Fixture::with_config(CacheConfig {
        default_ttl_s: 10,
        ..CacheConfig::default()
    });
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &SetOptions::default()).unwrap();
    let entry = cache.get("ns", "k").unwrap().unwrap();
    assert_eq!(entry.content_type, "application/octet-stream");
    fx.clock.advance_ms(9_999);
    assert!(cache.get("ns", "k").unwrap().is_some());
    fx.clock.advance_ms(1);
    assert_eq!(
        cache.get("ns", "k").unwrap(),
        None,
        "expired at exactly ttl"
    );
}

#[test]
fn entries_expire_at_their_ttl_by_the_callers_clock() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &opts(1_000, 0)).unwrap();
    fx.clock.advance_ms(999);
    assert!(cache.get("ns", "k").unwrap().is_some());
    fx.clock.advance_ms(1);
    assert_eq!(cache.get("ns", "k").unwrap(), None);
    // Redis still has the key (its PEXPIRE is real time): expiry is decided by the caller.
    let mut redis = fx.inspect();
    let exists: bool = redis::cmd("EXISTS")
        .arg("c{ns}:d:k")
        .query(&mut redis)
        .unwrap();
    assert!(exists);
}

#[test]
fn entries_get_a_redis_expiry_at_the_end_of_their_grace_period() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &opts(10_000, 5_000)).unwrap();
    let mut redis = fx.inspect();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("c{ns}:d:k")
        .query(&mut redis)
        .unwrap();
    assert!((14_000..=15_000).contains(&pttl), "pttl {pttl}");
}

#[test]
fn stale_within_grace_gives_exactly_one_revalidate_token_among_concurrent_readers() {
    let fx = Fixture::new();
    fx.cache()
        .set("ns", "k", b"old", &opts(1_000, 60_000))
        .unwrap();
    fx.clock.advance_ms(1_500);

    let readers = 32;
    let barrier = Arc::new(Barrier::new(readers));
    let handles: Vec<_> = (0..readers)
        .map(|_| {
            let mut cache = fx.cache();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                cache.get("ns", "k").unwrap().expect("stale hit")
            })
        })
        .collect();
    let entries: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(entries.iter().all(|e| e.stale && e.value == b"old"));
    let tokens: Vec<_> = entries
        .iter()
        .filter_map(|e| e.revalidate_token.clone())
        .collect();
    assert_eq!(tokens.len(), 1, "exactly one revalidator");

    // The revalidator refreshes with its token; the entry is fresh again and a new expiry
    // gives a new claim.
    let mut cache = fx.cache();
    let refresh = SetOptions {
        if_match: Some(tokens[0].clone()),
        ..opts(1_000, 60_000)
    };
    cache.set("ns", "k", b"new", &refresh).unwrap();
    let fresh = cache.get("ns", "k").unwrap().unwrap();
    assert!(!fresh.stale);
    assert_eq!(fresh.value, b"new");
    fx.clock.advance_ms(1_001);
    let stale_again = cache.get("ns", "k").unwrap().unwrap();
    assert!(stale_again.stale);
    assert!(stale_again.revalidate_token.is_some());
    assert_ne!(stale_again.revalidate_token, Some(tokens[0].clone()));
}

#[test]
fn after_the_grace_period_the_entry_is_a_miss() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &opts(1_000, 2_000)).unwrap();
    fx.clock.advance_ms(2_999);
    assert!(cache.get("ns", "k").unwrap().unwrap().stale);
    fx.clock.advance_ms(1);
    assert_eq!(cache.get("ns", "k").unwrap(), None);
}

#[test]
fn lease_is_single_flight_across_64_concurrent_callers_and_waiters_get_the_fill() {
    let fx = Fixture::new();
    let callers = 64;
    let barrier = Arc::new(Barrier::new(callers));
    let url = fx.server.url();
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let barrier = barrier.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                // Real clock: waiters really poll while the leaseholder computes.
                let mut cache = Cache::new(RedisRs::new(&url), SystemClock, CacheConfig::default());
                barrier.wait();
                match cache.lookup("ns", "cold", 10_000).unwrap() {
                    Lookup::Lease(token) => {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        let fill = SetOptions {
                            if_match: Some(token.clone()),
                            ..opts(60_000, 0)
                        };
                        cache.set("ns", "cold", b"computed", &fill).unwrap();
                        Some(token)
                    }
                    Lookup::Hit(entry) => {
                        assert_eq!(entry.value, b"computed");
                        None
                    }
                    Lookup::Miss => panic!("a waiter timed out although the fill came in 100 ms"),
                }
            })
        })
        .collect();
    let leases: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(leases.len(), 1, "exactly one caller computes");
    let stats = fx.cache().stats("ns").unwrap();
    assert_eq!(
        stats.misses, callers as u64,
        "each lookup counted once, as a miss"
    );
}

#[test]
fn lease_waiters_give_up_after_wait_ms_and_the_lease_expires() {
    let fx = Fixture::new();
    let mut holder = fx.cache();
    let mut waiter = fx.cache();
    let Lookup::Lease(token) = holder.lookup("ns", "k", 200).unwrap() else {
        panic!("first caller gets the lease");
    };
    let before = fx.clock.now_ms();
    assert_eq!(waiter.lookup("ns", "k", 200).unwrap(), Lookup::Miss);
    assert!(fx.clock.now_ms() - before >= 200, "waited the full wait_ms");

    // The lease lives lease_ms in Redis (real time): after it, a new caller gets a new lease.
    std::thread::sleep(std::time::Duration::from_millis(250));
    match waiter.lookup("ns", "k", 200).unwrap() {
        Lookup::Lease(second) => assert_ne!(second, token),
        other => panic!("expected a new lease after expiry, got {other:?}"),
    }
}

#[test]
fn if_match_accepts_the_current_lease_and_rejects_stale_or_unknown_tokens() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    let Lookup::Lease(token) = cache.lookup("ns", "k", 5_000).unwrap() else {
        panic!("lease expected");
    };
    let bogus = SetOptions {
        if_match: Some("not-a-token".into()),
        ..opts(60_000, 0)
    };
    assert!(matches!(
        cache.set("ns", "k", b"x", &bogus),
        Err(CacheError::PreconditionFailed(_))
    ));
    assert_eq!(
        cache.get("ns", "k").unwrap(),
        None,
        "a rejected write stores nothing"
    );

    let good = SetOptions {
        if_match: Some(token.clone()),
        ..opts(60_000, 0)
    };
    cache.set("ns", "k", b"filled", &good).unwrap();
    assert_eq!(cache.get("ns", "k").unwrap().unwrap().value, b"filled");
    // The fill released the lease: the same token is no longer current.
    assert!(matches!(
        cache.set("ns", "k", b"again", &good),
        Err(CacheError::PreconditionFailed(_))
    ));
    assert_eq!(cache.get("ns", "k").unwrap().unwrap().value, b"filled");
}

#[test]
fn a_revalidate_token_is_void_once_someone_else_rewrote_the_entry() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v1", &opts(1_000, 10_000)).unwrap();
    fx.clock.advance_ms(1_000);
    let token = claim_of(&mut cache, "k");
    cache.set("ns", "k", b"v2", &opts(1_000, 10_000)).unwrap();
    let late = SetOptions {
        if_match: Some(token),
        ..opts(1_000, 10_000)
    };
    assert!(matches!(
        cache.set("ns", "k", b"v3", &late),
        Err(CacheError::PreconditionFailed(_))
    ));
    assert_eq!(cache.get("ns", "k").unwrap().unwrap().value, b"v2");
}

#[test]
fn tag_invalidation_removes_tagged_entries_but_not_ones_reset_without_the_tag() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache
        .set("ns", "a", b"1", &tagged(60_000, &["user:1", "list"]))
        .unwrap();
    cache
        .set("ns", "b", b"2", &tagged(60_000, &["user:1"]))
        .unwrap();
    cache
        .set("ns", "c", b"3", &tagged(60_000, &["user:2"]))
        .unwrap();
    cache
        .set("ns", "d", b"4", &tagged(60_000, &["user:1"]))
        .unwrap();
    // d is re-set without the tag: it must survive invalidation of user:1.
    cache
        .set("ns", "d", b"4b", &tagged(60_000, &["other"]))
        .unwrap();

    let removed = cache
        .invalidate_tags("ns", &["user:1".into(), "list".into()])
        .unwrap();
    assert_eq!(removed, 2, "a (counted once despite two tags) and b");
    assert_eq!(cache.get("ns", "a").unwrap(), None);
    assert_eq!(cache.get("ns", "b").unwrap(), None);
    assert_eq!(cache.get("ns", "c").unwrap().unwrap().value, b"3");
    assert_eq!(cache.get("ns", "d").unwrap().unwrap().value, b"4b");
    assert_eq!(cache.stats("ns").unwrap().keys, 2);
    // Invalidating again finds nothing.
    assert_eq!(cache.invalidate_tags("ns", &["user:1".into()]).unwrap(), 0);
}

#[test]
fn tag_invalidation_does_not_count_entries_of_an_older_namespace_version() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache
        .set("ns", "old", b"1", &tagged(60_000, &["t"]))
        .unwrap();
    assert_eq!(cache.invalidate_all("ns").unwrap(), 1);
    cache
        .set("ns", "new", b"2", &tagged(60_000, &["t"]))
        .unwrap();
    assert_eq!(cache.invalidate_tags("ns", &["t".into()]).unwrap(), 1);
    assert_eq!(cache.get("ns", "new").unwrap(), None);
}

#[test]
fn invalidate_all_drops_the_namespace_reports_live_count_and_leaves_others_alone() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    for i in 0..50 {
        cache
            .set("ns", &format!("k{i}"), b"v", &opts(60_000, 0))
            .unwrap();
    }
    cache.set("ns", "short", b"v", &opts(1_000, 0)).unwrap();
    cache.set("other", "k", b"v", &opts(60_000, 0)).unwrap();
    fx.clock.advance_ms(1_000); // "short" is no longer live

    assert_eq!(cache.invalidate_all("ns").unwrap(), 50);
    assert!((0..50).all(|i| cache.get("ns", &format!("k{i}")).unwrap().is_none()));
    assert_eq!(cache.stats("ns").unwrap().keys, 0);
    assert!(cache.get("other", "k").unwrap().is_some());

    // The namespace is immediately usable again under the new version.
    cache.set("ns", "k0", b"again", &opts(60_000, 0)).unwrap();
    assert_eq!(cache.get("ns", "k0").unwrap().unwrap().value, b"again");
    assert_eq!(cache.stats("ns").unwrap().keys, 1);
}

#[test]
fn invalidate_all_is_constant_work_in_redis() {
    // O(1): the script touches two keys whatever the namespace size; measured by the number
    // of commands Redis executed for it.
    let fx = Fixture::new();
    let mut cache = fx.cache();
    for i in 0..200 {
        cache
            .set("big", &format!("k{i}"), b"v", &opts(60_000, 0))
            .unwrap();
    }
    let mut redis = fx.inspect();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut redis)
        .unwrap();
    assert_eq!(cache.invalidate_all("big").unwrap(), 200);
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis)
        .unwrap();
    for command in ["scan", "keys", "del", "zrange", "smembers"] {
        assert!(
            !info.contains(&format!("cmdstat_{command}:")),
            "invalidate_all ran {command}: {info}"
        );
    }
}

#[test]
fn delete_reports_existence_and_stats_count_hits_misses_stale_hits_and_keys() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "a", b"1", &opts(1_000, 10_000)).unwrap();
    cache.set("ns", "b", b"2", &opts(60_000, 0)).unwrap();
    assert!(cache.get("ns", "a").unwrap().is_some()); // hit
    assert!(cache.get("ns", "zz").unwrap().is_none()); // miss
    fx.clock.advance_ms(1_000);
    assert!(cache.get("ns", "a").unwrap().unwrap().stale); // stale hit

    let stats = cache.stats("ns").unwrap();
    assert_eq!(
        (stats.hits, stats.misses, stats.stale_hits, stats.keys),
        (2, 1, 1, 2)
    );
    assert!((stats.hit_ratio() - 2.0 / 3.0).abs() < 1e-9);

    assert!(cache.delete("ns", "b").unwrap());
    assert!(!cache.delete("ns", "b").unwrap());
    assert!(!cache.delete("ns", "never").unwrap());
    assert_eq!(cache.get("ns", "b").unwrap(), None);
    assert_eq!(cache.stats("ns").unwrap().keys, 1);
}

#[test]
fn jitter_only_lengthens_the_ttl_within_the_requested_percentage() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    let ttl_ms = 100_000;
    let mut redis = fx.inspect();
    let mut lifetimes = HashSet::new();
    for i in 0..40 {
        let key = format!("k{i}");
        let options = SetOptions {
            jitter_pct: Some(20),
            ..opts(ttl_ms, 0)
        };
        cache.set("ns", &key, b"v", &options).unwrap();
        let (stored, fresh_until) = stored_and_fresh_until(&mut redis, &key);
        let lifetime = fresh_until - stored;
        assert!(
            (ttl_ms..=ttl_ms * 120 / 100).contains(&lifetime),
            "lifetime {lifetime}"
        );
        lifetimes.insert(lifetime);
    }
    assert!(lifetimes.len() > 1, "jitter actually varies the TTL");
    // Observable through reads too: everything is fresh before ttl, gone after ttl + 20 %.
    fx.clock.advance_ms(ttl_ms - 1);
    assert!((0..40).all(|i| cache.get("ns", &format!("k{i}")).unwrap().is_some()));
    fx.clock.advance_ms(ttl_ms / 5 + 1);
    assert!((0..40).all(|i| cache.get("ns", &format!("k{i}")).unwrap().is_none()));
}

#[test]
fn default_jitter_comes_from_the_configuration_and_is_validated() {
    let fx = Fixture::with_config(CacheConfig {
        ttl_jitter_pct: 50,
        ..CacheConfig::default()
    });
    let mut cache = fx.cache();
    let mut redis = fx.inspect();
    let mut lifetimes = HashSet::new();
    for i in 0..20 {
        let key = format!("k{i}");
        cache
            .set(
                "ns",
                &key,
                b"v",
                &SetOptions {
                    ttl_ms: Some(10_000),
                    ..SetOptions::default()
                },
            )
            .unwrap();
        let (stored, fresh_until) = stored_and_fresh_until(&mut redis, &key);
        assert!((10_000..=15_000).contains(&(fresh_until - stored)));
        lifetimes.insert(fresh_until - stored);
    }
    assert!(lifetimes.len() > 1);
    let too_much = SetOptions {
        jitter_pct: Some(51),
        ..opts(1_000, 0)
    };
    assert!(
        matches!(cache.set("ns", "x", b"v", &too_much), Err(CacheError::Invalid { field, .. }) if field == "jitter-pct")
    );
}

#[test]
fn namespaces_with_braces_stay_isolated_and_in_one_cluster_slot() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    let tricky = ["a{b}", "a%7Bb%7D", "}{", "{", "a"];
    for (i, ns) in tricky.iter().enumerate() {
        cache
            .set(
                ns,
                "k{x}",
                format!("{i}").as_bytes(),
                &tagged(60_000, &["t{1}"]),
            )
            .unwrap();
    }
    for (i, ns) in tricky.iter().enumerate() {
        assert_eq!(
            cache.get(ns, "k{x}").unwrap().unwrap().value,
            format!("{i}").as_bytes()
        );
    }
    assert_eq!(cache.invalidate_tags("a{b}", &["t{1}".into()]).unwrap(), 1);
    assert_eq!(cache.get("a{b}", "k{x}").unwrap(), None);
    assert!(cache.get("a%7Bb%7D", "k{x}").unwrap().is_some());

    // Every key of namespace "}{" hashes to the same slot.
    let mut redis = fx.inspect();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("c{%7D%7B}:*")
        .query(&mut redis)
        .unwrap();
    assert!(keys.len() >= 3, "{keys:?}");
    let slots: HashSet<i64> = keys
        .iter()
        .map(|k| {
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(k)
                .query(&mut redis)
                .unwrap_or(-1)
        })
        .collect();
    // CLUSTER KEYSLOT works on a non-cluster server too.
    assert_eq!(slots.len(), 1, "{keys:?} -> {slots:?}");
}

#[test]
fn only_the_version_and_stats_keys_live_without_a_ttl() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &tagged(60_000, &["t"])).unwrap();
    let _ = cache.lookup("ns", "other", 5_000).unwrap();
    let _ = cache.get("ns", "k").unwrap();
    // A stale read takes the revalidate claim, a key of its own.
    cache.set("ns", "s", b"v", &opts(1_000, 60_000)).unwrap();
    fx.clock.advance_ms(1_000);
    assert!(
        cache
            .get("ns", "s")
            .unwrap()
            .unwrap()
            .revalidate_token
            .is_some()
    );
    cache.invalidate_all("ns").unwrap();
    cache.set("ns", "k", b"v", &tagged(60_000, &["t"])).unwrap();
    let mut redis = fx.inspect();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut redis).unwrap();
        if key == "c{ns}:v" || key == "c{ns}:s" {
            assert_eq!(ttl, -1, "{key}");
        } else {
            assert!(ttl > 0, "{key} has no TTL");
        }
    }
    assert!(keys.len() >= 7, "{keys:?}");
    assert!(keys.iter().any(|k| k == "c{ns}:r:s"), "{keys:?}");
}

#[test]
fn scripts_are_reloaded_after_script_flush() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &opts(60_000, 0)).unwrap();
    let mut redis = fx.inspect();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut redis).unwrap();
    assert_eq!(cache.get("ns", "k").unwrap().unwrap().value, b"v");
    let sha = redwasm_cache::scripts::GET.sha1_hex().to_string();
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query(&mut redis)
        .unwrap();
    assert_eq!(
        exists,
        vec![1],
        "EVAL fallback cached the script for the next EVALSHA"
    );
}

#[test]
fn invalid_arguments_are_errors_naming_the_field() {
    let fx = Fixture::with_config(CacheConfig {
        max_value_bytes: 10,
        ..CacheConfig::default()
    });
    let mut cache = fx.cache();
    let field = |r: Result<(), CacheError>| match r {
        Err(CacheError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(field(cache.set("", "k", b"v", &opts(1, 0))), "ns");
    assert_eq!(
        field(cache.set("ns", &"k".repeat(257), b"v", &opts(1, 0))),
        "key"
    );
    assert_eq!(field(cache.set("ns", "k\n", b"v", &opts(1, 0))), "key");
    assert_eq!(field(cache.set("ns", "k", b"v", &opts(0, 0))), "ttl-ms");
    assert_eq!(
        field(cache.set("ns", "k", b"v", &tagged(1_000, &[""]))),
        "tags"
    );
    let bad_ct = SetOptions {
        content_type: Some("text/\u{1}".into()),
        ..opts(1_000, 0)
    };
    assert_eq!(field(cache.set("ns", "k", b"v", &bad_ct)), "content-type");
    assert_eq!(
        cache.set("ns", "k", &[0u8; 11], &opts(1_000, 0)),
        Err(CacheError::TooLarge(10))
    );
    assert!(matches!(
        cache.lookup("ns", "k", 0),
        Err(CacheError::Invalid { .. })
    ));
    assert!(matches!(
        cache.lookup("ns", "k", 30_001),
        Err(CacheError::Invalid { .. })
    ));
    assert!(matches!(
        cache.get("ns", ""),
        Err(CacheError::Invalid { .. })
    ));
}

#[test]
fn redis_down_is_unavailable_and_recovers_after_restart() {
    let mut fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"v", &opts(60_000, 0)).unwrap();
    fx.server.stop();
    assert!(matches!(
        cache.get("ns", "k"),
        Err(CacheError::Unavailable(_))
    ));
    assert!(matches!(
        cache.set("ns", "k", b"v", &opts(1_000, 0)),
        Err(CacheError::Unavailable(_))
    ));
    fx.server.restart();
    // The restarted server is empty (no persistence) and has no scripts cached.
    assert_eq!(cache.get("ns", "k").unwrap(), None);
    cache.set("ns", "k", b"back", &opts(60_000, 0)).unwrap();
    assert_eq!(cache.get("ns", "k").unwrap().unwrap().value, b"back");
}

#[test]
fn uncounted_reads_serve_fresh_hits_without_a_script_and_count_once_reported() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    let mut redis = fx.inspect();
    cache
        .set(
            "ns",
            "k",
            b"v",
            &SetOptions {
                content_type: Some("text/plain".into()),
                ..opts(10_000, 0)
            },
        )
        .unwrap();
    fx.clock.advance_ms(250);
    let scripts_before = calls_of(&mut redis, "evalsha") + calls_of(&mut redis, "eval");
    let read = cache.get_uncounted("ns", "k").unwrap();
    assert_eq!(
        read,
        Read {
            entry: Some(redwasm_cache::Entry {
                value: b"v".to_vec(),
                content_type: "text/plain".into(),
                age_ms: 250,
                stale: false,
                revalidate_token: None,
            }),
            uncounted_hit: true,
        }
    );
    assert_eq!(
        calls_of(&mut redis, "evalsha") + calls_of(&mut redis, "eval"),
        scripts_before,
        "a fresh hit runs no script"
    );
    assert_eq!(counters(cache.stats("ns").unwrap()), (0, 0, 0));
    cache.record_hits("ns", 3).unwrap();
    cache.record_hits("ns", 0).unwrap();
    assert_eq!(counters(cache.stats("ns").unwrap()), (3, 0, 0));
}

#[test]
fn uncounted_reads_fall_back_to_the_counted_script_for_misses_stale_and_old_versions() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    // Miss: counted by the script.
    let miss = cache.get_uncounted("ns", "absent").unwrap();
    assert_eq!((miss.entry, miss.uncounted_hit), (None, false));
    assert_eq!(counters(cache.stats("ns").unwrap()), (0, 1, 0));

    // Stale: the script hands out exactly one revalidate token and counts the stale hit.
    cache.set("ns", "s", b"old", &opts(1_000, 5_000)).unwrap();
    fx.clock.advance_ms(1_000);
    let first = cache.get_uncounted("ns", "s").unwrap();
    let second = cache.get_uncounted("ns", "s").unwrap();
    assert!(!first.uncounted_hit && !second.uncounted_hit);
    let (first, second) = (first.entry.unwrap(), second.entry.unwrap());
    assert!(first.stale && second.stale);
    assert!(first.revalidate_token.is_some());
    assert_eq!(second.revalidate_token, None);
    assert_eq!(counters(cache.stats("ns").unwrap()), (2, 1, 2));

    // A namespace invalidation hides fresh entries from the script-free path too.
    cache.set("ns", "f", b"v", &opts(60_000, 0)).unwrap();
    assert!(cache.get_uncounted("ns", "f").unwrap().uncounted_hit);
    cache.invalidate_all("ns").unwrap();
    let after = cache.get_uncounted("ns", "f").unwrap();
    assert_eq!((after.entry, after.uncounted_hit), (None, false));
    cache.set("ns", "f", b"new", &opts(60_000, 0)).unwrap();
    let read = cache.get_uncounted("ns", "f").unwrap();
    assert!(read.uncounted_hit);
    assert_eq!(read.entry.unwrap().value, b"new");
}

#[test]
fn a_revalidate_token_is_accepted_once_and_void_after_a_delete() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    cache.set("ns", "k", b"old", &opts(1_000, 5_000)).unwrap();
    fx.clock.advance_ms(1_500);
    let token = claim_of(&mut cache, "k");
    let with_token = SetOptions {
        if_match: Some(token.clone()),
        ..opts(1_000, 5_000)
    };
    cache.set("ns", "k", b"new", &with_token).unwrap();
    assert!(
        matches!(
            cache.set("ns", "k", b"again", &with_token),
            Err(CacheError::PreconditionFailed(_))
        ),
        "the write reset the claim"
    );
    // The next expiry hands out a new token; deleting the entry voids it.
    fx.clock.advance_ms(1_000);
    let token = claim_of(&mut cache, "k");
    assert!(cache.delete("ns", "k").unwrap());
    let with_token = SetOptions {
        if_match: Some(token),
        ..opts(1_000, 0)
    };
    assert!(matches!(
        cache.set("ns", "k", b"late", &with_token),
        Err(CacheError::PreconditionFailed(_))
    ));
}

#[test]
fn entries_of_the_older_hash_layout_read_as_misses_and_are_replaced() {
    let fx = Fixture::new();
    let mut cache = fx.cache();
    let mut redis = fx.inspect();
    // What a cache written before the string layout left behind.
    let _: () = redis::cmd("HSET")
        .arg("c{ns}:e:k")
        .arg(&[
            "b",
            "old",
            "ct",
            "x/y",
            "st",
            "1",
            "fu",
            "9999999999999",
            "su",
            "9999999999999",
            "v",
            "0",
        ])
        .query(&mut redis)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("c{ns}:t:t")
        .arg("k")
        .query(&mut redis)
        .unwrap();
    assert_eq!(cache.get("ns", "k").unwrap(), None);
    assert!(!cache.get_uncounted("ns", "k").unwrap().uncounted_hit);
    assert_eq!(cache.invalidate_tags("ns", &["t".to_string()]).unwrap(), 0);
    cache
        .set("ns", "k", b"new", &tagged(60_000, &["t"]))
        .unwrap();
    assert_eq!(cache.get("ns", "k").unwrap().unwrap().value, b"new");
    assert_eq!(cache.invalidate_tags("ns", &["t".to_string()]).unwrap(), 1);
}
