//! The rate-limit logic against a real redis-server, with a manual clock for every window
//! rollover and refill (no sleeping), plus concurrency, atomicity and Redis outages.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use common::{Fixture, T0_MS};
use redwasm_ratelimit::{Algorithm, FailMode, Policy, PolicyRef, RateLimitConfig, RateLimitError};

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::SlidingWindow,
    Algorithm::SlidingWindowCounter,
    Algorithm::TokenBucket,
    Algorithm::FixedWindow,
];

fn inline(policy: &Policy) -> Vec<PolicyRef> {
    vec![PolicyRef::Inline(policy.clone())]
}

/// `threads` clients share `requests` checks of `policies` on `key`; returns how many passed.
fn hammer(fx: &Fixture, key: &str, policies: &[Policy], threads: usize, requests: u64) -> u64 {
    let left = Arc::new(AtomicU64::new(requests));
    let allowed = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut limiter = fx.limiter();
            let refs: Vec<PolicyRef> = policies.iter().cloned().map(PolicyRef::Inline).collect();
            let (left, allowed, barrier, key) = (
                left.clone(),
                allowed.clone(),
                barrier.clone(),
                key.to_string(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    if limiter.check(&key, &refs, 1).expect("check").allowed {
                        allowed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("client thread");
    }
    assert_eq!(left.load(Ordering::SeqCst), 0);
    allowed.load(Ordering::SeqCst)
}

#[test]
fn every_algorithm_admits_exactly_the_limit_under_64_concurrent_clients() {
    let fx = Fixture::new();
    for algorithm in ALGORITHMS {
        // The clock does not move: the counter variant has no previous window, so it is exact
        // here too (its error only comes from weighting the previous window).
        let policy = Policy::new("hundred", 100, 60_000, algorithm);
        let key = format!("user:{}", algorithm.as_str());
        let allowed = hammer(&fx, &key, std::slice::from_ref(&policy), 64, 1000);
        assert_eq!(allowed, 100, "{}", algorithm.as_str());
        let state = fx.limiter().peek_policy(&policy, &key).unwrap();
        assert_eq!(state.remaining, 0, "{}", algorithm.as_str());
        assert!(state.reset_ms > 0 && state.reset_ms <= 120_000, "{state:?}");
    }
}

#[test]
fn sliding_window_counter_stays_within_its_documented_error_bound() {
    // Previous window full, 25% into the current one: the previous window weighs 75%, so
    // exactly 25 more are admitted although the exact log would admit 0 — the over-admission
    // that the README bounds (< 2 × limit in any window-long interval).
    let fx = Fixture::new();
    let policy = Policy::new("c", 100, 1_000, Algorithm::SlidingWindowCounter);
    fx.clock.set_ms(T0_MS + 999);
    assert_eq!(
        hammer(&fx, "k", std::slice::from_ref(&policy), 64, 300),
        100
    );
    fx.clock.set_ms(T0_MS + 1_250);
    assert_eq!(hammer(&fx, "k", std::slice::from_ref(&policy), 64, 300), 25);

    // Steady saturating traffic over many windows: every window-long interval admits at most
    // 2 × limit, and the long-run rate is the limit.
    let fx = Fixture::new();
    let policy = Policy::new("c", 50, 1_000, Algorithm::SlidingWindowCounter);
    let mut limiter = fx.limiter();
    let mut admitted = Vec::new();
    for step in 0..1_000u64 {
        fx.clock.set_ms(T0_MS + step * 10);
        for _ in 0..2 {
            if limiter
                .check("steady", &inline(&policy), 1)
                .unwrap()
                .allowed
            {
                admitted.push(step * 10);
            }
        }
    }
    for start in (0..10_000u64).step_by(10) {
        let in_window = admitted
            .iter()
            .filter(|t| **t >= start && **t < start + 1_000)
            .count();
        assert!(
            in_window < 100,
            "{in_window} admitted in [{start}, {start}+1000)"
        );
    }
    let total = admitted.len() as i64;
    assert!(
        (total - 500).abs() <= 50,
        "admitted {total} over 10 windows of 50"
    );
}

#[test]
fn sliding_window_is_exact_across_rollover_and_handles_limit_one() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    let three = Policy::new("three", 3, 1_000, Algorithm::SlidingWindow);
    for i in 0..3 {
        fx.clock.set_ms(T0_MS + i * 100);
        let d = limiter.check("k", &inline(&three), 1).unwrap();
        assert!(d.allowed);
        assert_eq!(d.policies[0].remaining, 2 - i);
        assert_eq!(d.policies[0].reset_ms, 1_000);
    }
    fx.clock.set_ms(T0_MS + 500);
    let denied = limiter.check("k", &inline(&three), 1).unwrap();
    assert!(!denied.allowed);
    assert_eq!(
        denied.retry_after_ms, 500,
        "the entry at T0 leaves at T0+1000"
    );
    assert_eq!(denied.policies[0].remaining, 0);
    assert_eq!(
        denied.policies[0].reset_ms, 700,
        "the newest entry (T0+200) leaves at +1200"
    );
    let two_units = limiter.check("k", &inline(&three), 2).unwrap();
    assert_eq!(
        two_units.retry_after_ms, 600,
        "two entries must leave (T0, T0+100)"
    );
    fx.clock.set_ms(T0_MS + 999);
    assert!(!limiter.check("k", &inline(&three), 1).unwrap().allowed);
    fx.clock.set_ms(T0_MS + 1_000);
    let d = limiter.check("k", &inline(&three), 1).unwrap();
    assert!(d.allowed, "exactly one window after the first request");
    assert_eq!(d.policies[0].remaining, 0);

    // Limit 1 (a known bug elsewhere: always denied).
    let one = Policy::new("one", 1, 1_000, Algorithm::SlidingWindow);
    fx.clock.set_ms(T0_MS);
    assert!(limiter.check("solo", &inline(&one), 1).unwrap().allowed);
    assert!(!limiter.check("solo", &inline(&one), 1).unwrap().allowed);
    fx.clock.set_ms(T0_MS + 1_000);
    assert!(limiter.check("solo", &inline(&one), 1).unwrap().allowed);
}

#[test]
fn fixed_windows_roll_over_at_epoch_aligned_boundaries() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    let policy = Policy::new("fw", 2, 1_000, Algorithm::FixedWindow);
    fx.clock.set_ms(T0_MS + 600);
    assert!(limiter.check("k", &inline(&policy), 1).unwrap().allowed);
    let d = limiter.check("k", &inline(&policy), 1).unwrap();
    assert!(d.allowed);
    assert_eq!((d.policies[0].remaining, d.policies[0].reset_ms), (0, 400));
    let denied = limiter.check("k", &inline(&policy), 1).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after_ms, 400);
    fx.clock.set_ms(T0_MS + 1_000);
    let d = limiter.check("k", &inline(&policy), 1).unwrap();
    assert!(d.allowed, "a new window");
    assert_eq!(
        (d.policies[0].remaining, d.policies[0].reset_ms),
        (1, 1_000)
    );
}

#[test]
fn token_bucket_is_gcra_with_burst_and_refills_by_the_clock() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    // 10 per second sustained (one every 100 ms), at most 5 at once.
    let policy = Policy::new("tb", 10, 1_000, Algorithm::TokenBucket).with_burst(5);
    for i in 0..5 {
        let d = limiter.check("k", &inline(&policy), 1).unwrap();
        assert!(d.allowed);
        assert_eq!(d.policies[0].remaining, 4 - i);
    }
    let denied = limiter.check("k", &inline(&policy), 1).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after_ms, 100);
    assert_eq!(
        denied.policies[0].reset_ms, 500,
        "five emission intervals to full"
    );
    fx.clock.advance_ms(99);
    assert!(!limiter.check("k", &inline(&policy), 1).unwrap().allowed);
    fx.clock.advance_ms(1);
    assert!(limiter.check("k", &inline(&policy), 1).unwrap().allowed);
    assert!(!limiter.check("k", &inline(&policy), 1).unwrap().allowed);
    // A long pause refills up to the burst, not beyond.
    fx.clock.advance_ms(60_000);
    let admitted = (0..20)
        .filter(|_| limiter.check("k", &inline(&policy), 1).unwrap().allowed)
        .count();
    assert_eq!(admitted, 5);
    // Cost 3 waits for three emission intervals.
    fx.clock.advance_ms(1_000);
    limiter.check("k", &inline(&policy), 5).unwrap();
    let d = limiter.check("k", &inline(&policy), 3).unwrap();
    assert_eq!((d.allowed, d.retry_after_ms), (false, 300));
    // Non-integral emission interval (7 per second): exactly 7 at once, then one per 1000/7 ms.
    let odd = Policy::new("odd", 7, 1_000, Algorithm::TokenBucket);
    let admitted = (0..20)
        .filter(|_| limiter.check("o", &inline(&odd), 1).unwrap().allowed)
        .count();
    assert_eq!(admitted, 7);
    let d = limiter.check("o", &inline(&odd), 1).unwrap();
    assert_eq!(d.retry_after_ms, 143, "ceil(1000/7)");
    fx.clock.advance_ms(143);
    assert!(limiter.check("o", &inline(&odd), 1).unwrap().allowed);
}

#[test]
fn a_denied_multi_policy_check_consumes_from_none_of_them() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    // The seed's shape: 10/s + 1000/day counted per request, a 50k-token daily budget
    // counted by cost (= tokens), in one atomic check.
    let per_second = Policy::new("per-second", 10, 1_000, Algorithm::TokenBucket).per_request();
    let per_day = Policy::new(
        "per-day",
        1_000,
        86_400_000,
        Algorithm::SlidingWindowCounter,
    )
    .per_request();
    let small = Policy::new("small", 2, 60_000, Algorithm::SlidingWindow).per_request();
    let budget = Policy::new("daily-tokens", 50_000, 86_400_000, Algorithm::FixedWindow);
    let all = [
        per_second.clone(),
        per_day.clone(),
        small.clone(),
        budget.clone(),
    ];
    let first = limiter.check_policies("u", &all, 1_000).unwrap();
    assert!(first.allowed);
    let remaining: Vec<u64> = first.policies.iter().map(|p| p.remaining).collect();
    assert_eq!(
        remaining,
        vec![9, 999, 1, 49_000],
        "requests count 1, the budget 1000"
    );
    assert!(limiter.check_policies("u", &all, 1_000).unwrap().allowed);
    let denied = limiter.check_policies("u", &all, 1_000).unwrap();
    assert!(!denied.allowed, "`small` is exhausted");
    let remaining: Vec<u64> = denied.policies.iter().map(|p| p.remaining).collect();
    assert_eq!(
        remaining,
        vec![8, 998, 0, 48_000],
        "states before, nothing consumed"
    );
    for (policy, expected) in [
        (&per_second, 8),
        (&per_day, 998),
        (&small, 0),
        (&budget, 48_000),
    ] {
        assert_eq!(
            limiter.peek_policy(policy, "u").unwrap().remaining,
            expected
        );
    }
    // A big token cost denied by the budget leaves the request counters untouched.
    let llm = [per_second.clone(), per_day.clone(), budget.clone()];
    assert!(limiter.check_policies("u", &llm, 45_000).unwrap().allowed);
    let denied = limiter.check_policies("u", &llm, 5_000).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.policies[2].remaining, 3_000);
    assert!(denied.retry_after_ms > 0);
    assert_eq!(limiter.peek_policy(&per_second, "u").unwrap().remaining, 7);
    assert_eq!(limiter.peek_policy(&per_day, "u").unwrap().remaining, 997);
    assert!(limiter.check_policies("u", &llm, 3_000).unwrap().allowed);
    assert_eq!(limiter.peek_policy(&budget, "u").unwrap().remaining, 0);
}

#[test]
fn multi_policy_atomicity_holds_under_concurrency() {
    let fx = Fixture::new();
    let wide = Policy::new("wide", 100, 60_000, Algorithm::FixedWindow);
    let narrow = Policy::new("narrow", 50, 60_000, Algorithm::SlidingWindow);
    let allowed = hammer(&fx, "k", &[wide.clone(), narrow.clone()], 64, 500);
    assert_eq!(allowed, 50);
    assert_eq!(fx.limiter().peek_policy(&wide, "k").unwrap().remaining, 50);
}

#[test]
fn large_costs_and_costs_beyond_capacity() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    let budget = Policy::new(
        "tokens",
        1_000_000_000_000,
        86_400_000,
        Algorithm::FixedWindow,
    );
    let d = limiter
        .check("team", &inline(&budget), 999_999_999_999)
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.policies[0].remaining, 1);
    assert!(!limiter.check("team", &inline(&budget), 2).unwrap().allowed);
    assert!(limiter.check("team", &inline(&budget), 1).unwrap().allowed);
    let log = Policy::new("log", 50_000, 86_400_000, Algorithm::SlidingWindow);
    assert!(
        limiter
            .check("team", &inline(&log), 49_000)
            .unwrap()
            .allowed
    );
    assert_eq!(
        limiter
            .check("team", &inline(&log), 1_000)
            .unwrap()
            .policies[0]
            .remaining,
        0
    );
    match limiter.check("team", &inline(&log), 50_001) {
        Err(RateLimitError::Invalid { field, .. }) => assert_eq!(field, "cost"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_key_written_has_a_ttl() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    for algorithm in ALGORITHMS {
        let policy = Policy::new("p", 5, 10_000, algorithm);
        for _ in 0..7 {
            limiter.check("k{x}", &inline(&policy), 1).unwrap();
        }
    }
    let mut redis = fx.inspect();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
    assert_eq!(
        keys.len(),
        5,
        "{keys:?}: one key per algorithm, two for the log"
    );
    for key in keys {
        assert!(key.starts_with("rl{k%7Bx%7D}:p:"), "{key}");
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut redis).unwrap();
        assert!(ttl > 0 && ttl <= 20_000, "{key}: {ttl}");
    }
}

#[test]
fn bypassed_keys_are_allowed_and_not_counted() {
    let fx = Fixture::with_config(RateLimitConfig::new(Vec::new(), ["admin:1"]));
    let mut limiter = fx.limiter();
    let policy = Policy::new("p", 1, 60_000, Algorithm::FixedWindow);
    for _ in 0..5 {
        let d = limiter.check("admin:1", &inline(&policy), 1).unwrap();
        assert!(d.allowed && d.bypassed);
        assert_eq!(d.policies[0].remaining, 1);
    }
    let mut redis = fx.inspect();
    let size: i64 = redis::cmd("DBSIZE").query(&mut redis).unwrap();
    assert_eq!(size, 0, "nothing written for a bypassed key");
    assert!(
        limiter
            .check("user:1", &inline(&policy), 1)
            .unwrap()
            .allowed
    );
    assert!(
        !limiter
            .check("user:1", &inline(&policy), 1)
            .unwrap()
            .allowed
    );
}

#[test]
fn named_and_inline_policies_share_state_by_definition() {
    let named = Policy::new("per-minute", 2, 60_000, Algorithm::SlidingWindow);
    let fx = Fixture::with_config(RateLimitConfig::new(
        vec![named.clone()],
        Vec::<String>::new(),
    ));
    let mut limiter = fx.limiter();
    assert!(
        limiter
            .check("u", &["per-minute".into()], 1)
            .unwrap()
            .allowed
    );
    // The same definition inline is the same counter.
    assert!(limiter.check("u", &inline(&named), 1).unwrap().allowed);
    assert!(
        !limiter
            .check("u", &["per-minute".into()], 1)
            .unwrap()
            .allowed
    );
    assert_eq!(limiter.peek("per-minute", "u").unwrap().remaining, 0);
    limiter.reset("per-minute", "u").unwrap();
    assert_eq!(limiter.peek("per-minute", "u").unwrap().remaining, 2);
    assert!(
        limiter
            .check("u", &["per-minute".into()], 1)
            .unwrap()
            .allowed
    );
    assert_eq!(
        limiter.check("u", &["nope".into()], 1),
        Err(RateLimitError::UnknownPolicy("nope".into()))
    );
    assert_eq!(
        limiter.peek("nope", "u"),
        Err(RateLimitError::UnknownPolicy("nope".into()))
    );
}

#[test]
fn peek_does_not_consume() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    for algorithm in ALGORITHMS {
        let policy = Policy::new("p", 3, 1_000, algorithm);
        limiter.check("k", &inline(&policy), 1).unwrap();
        for _ in 0..5 {
            let state = limiter.peek_policy(&policy, "k").unwrap();
            assert_eq!(state.remaining, 2, "{}", algorithm.as_str());
        }
        let fresh = limiter.peek_policy(&policy, "other").unwrap();
        assert_eq!((fresh.remaining, fresh.reset_ms), (3, 0));
    }
    let mut redis = fx.inspect();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*other*").query(&mut redis).unwrap();
    assert!(keys.is_empty(), "peek writes nothing: {keys:?}");
}

#[test]
fn redis_server_time_is_used_when_the_caller_passes_none() {
    let fx = Fixture::new();
    let mut limiter = fx.redis_time_limiter();
    let policy = Policy::new("p", 3, 3_600_000, Algorithm::SlidingWindow);
    for _ in 0..3 {
        assert!(limiter.check("k", &inline(&policy), 1).unwrap().allowed);
    }
    let denied = limiter.check("k", &inline(&policy), 1).unwrap();
    assert!(!denied.allowed);
    assert!(denied.retry_after_ms > 3_500_000 && denied.retry_after_ms <= 3_600_000);
    // The log's scores are Redis time, not the manual clock's 2025-01-01.
    let mut redis = fx.inspect();
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg("rl{k}:p:sw:3600000:a")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut redis)
        .unwrap();
    let (secs, _): (u64, u64) = redis::cmd("TIME").query(&mut redis).unwrap();
    assert_eq!(scores.len(), 3);
    assert!(
        scores
            .iter()
            .all(|(_, s)| (*s as u64).abs_diff(secs * 1000) < 60_000)
    );
}

#[test]
fn redis_down_fails_closed_by_default_and_open_when_every_policy_says_so() {
    let mut fx = Fixture::new();
    let closed = Policy::new("closed", 5, 1_000, Algorithm::FixedWindow);
    let open = Policy::new("open", 5, 1_000, Algorithm::TokenBucket).with_fail_mode(FailMode::Open);
    let mut limiter = fx.limiter();
    assert!(limiter.check("k", &inline(&open), 1).unwrap().allowed);
    fx.server.stop();
    for _ in 0..20 {
        let started = Instant::now();
        match limiter.check("k", &inline(&closed), 1) {
            Err(RateLimitError::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let d = limiter.check("k", &inline(&open), 1).unwrap();
        assert!(d.allowed && d.degraded && !d.bypassed);
        assert_eq!(d.policies[0].remaining, 5);
        assert!(
            matches!(
                limiter.check_policies("k", &[open.clone(), closed.clone()], 1),
                Err(RateLimitError::Unavailable(_))
            ),
            "closed wins when policies disagree"
        );
        assert!(
            started.elapsed().as_millis() < 1_000,
            "decided without waiting"
        );
    }
    fx.server.restart();
    let d = limiter.check("k", &inline(&closed), 1).unwrap();
    assert!(d.allowed && !d.degraded);
}

#[test]
fn bad_inputs_are_invalid_errors_naming_the_field() {
    let fx = Fixture::new();
    let mut limiter = fx.limiter();
    let ok = Policy::new("p", 5, 1_000, Algorithm::FixedWindow);
    let field_of = |result: Result<_, RateLimitError>| match result {
        Err(RateLimitError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(field_of(limiter.check("", &inline(&ok), 1)), "key");
    assert_eq!(field_of(limiter.check("a\nb", &inline(&ok), 1)), "key");
    assert_eq!(field_of(limiter.check("k", &inline(&ok), 0)), "cost");
    assert_eq!(field_of(limiter.check("k", &[], 1)), "policies");
    let many: Vec<PolicyRef> = (0..17)
        .map(|i| {
            PolicyRef::Inline(Policy::new(
                &format!("p{i}"),
                5,
                1_000,
                Algorithm::FixedWindow,
            ))
        })
        .collect();
    assert_eq!(field_of(limiter.check("k", &many, 1)), "policies");
    assert_eq!(
        field_of(limiter.check("k", &[ok.clone().into(), ok.clone().into()], 1)),
        "policies[1]"
    );
    let bad_burst = ok.clone().with_burst(3);
    assert_eq!(
        field_of(limiter.check("k", &inline(&bad_burst), 1)),
        "policies[0].burst"
    );
    let zero = Policy::new("z", 0, 1_000, Algorithm::TokenBucket);
    assert_eq!(
        field_of(limiter.check("k", &inline(&zero), 1)),
        "policies[0].limit"
    );
    assert_eq!(
        field_of(limiter.check("k", &["bad name".into()], 1)),
        "policies[0]"
    );
    let mut redis = fx.inspect();
    let size: i64 = redis::cmd("DBSIZE").query(&mut redis).unwrap();
    assert_eq!(size, 0, "bad input never reaches Redis");
}
