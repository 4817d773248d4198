//! The rate-limit embedding API against a real redis-server: the same component, in-process.

use std::collections::HashMap;
use std::sync::Arc;

use redwasm::embed::Redwasm;
use redwasm::embed::ratelimit::{Algorithm, FailMode, Policy, PolicyRef, RateLimitError};
use redwasm_testkit::RedisServer;

const T0_MS: u64 = 1_735_689_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_peek_reset_with_named_and_inline_policies() {
    let redis = RedisServer::start();
    let redwasm = Redwasm::connect(&redis.url()).await.unwrap();
    let variables = HashMap::from([
        (
            "ratelimit_policies".to_string(),
            r#"[{"name":"per-minute","limit":3,"window_ms":60000,"algorithm":"sliding-window"}]"#
                .to_string(),
        ),
        ("ratelimit_bypass_keys".to_string(), "admin".to_string()),
    ]);
    let limiter = redwasm
        .ratelimit_with("ratelimit", variables)
        .await
        .unwrap();

    let budget = Policy::new("tokens", 50_000, 86_400_000, Algorithm::FixedWindow);
    let policies: Vec<PolicyRef> = vec!["per-minute".into(), budget.clone().into()];
    // Cost 1000 is over the 3-unit log's capacity: say which policies count requests instead.
    match limiter.check("user:1", &policies, 1_000).await {
        Err(RateLimitError::Invalid(detail)) => assert!(detail.contains("cost"), "{detail}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let policies: Vec<PolicyRef> = vec![
        Policy::new("per-minute-req", 3, 60_000, Algorithm::SlidingWindow)
            .per_request()
            .into(),
        budget.into(),
    ];
    for i in 0..3u64 {
        let result = limiter.check("user:1", &policies, 1_000).await.unwrap();
        assert!(result.allowed && !result.bypassed && !result.degraded);
        assert_eq!(result.policies[0].remaining, 2 - i);
        assert_eq!(result.policies[1].remaining, 50_000 - 1_000 * (i + 1));
    }
    let denied = limiter.check("user:1", &policies, 1_000).await.unwrap();
    assert!(!denied.allowed);
    assert!(denied.retry_after_ms > 59_000 && denied.retry_after_ms <= 60_000);
    assert_eq!(denied.policies[1].remaining, 47_000, "nothing consumed");

    // Named policy: check, peek, reset.
    let named: Vec<PolicyRef> = vec!["per-minute".into()];
    assert!(limiter.check("user:2", &named, 2).await.unwrap().allowed);
    let state = limiter.peek("per-minute", "user:2").await.unwrap();
    assert_eq!(
        (state.name.as_str(), state.limit, state.remaining),
        ("per-minute", 3, 1)
    );
    limiter.reset("per-minute", "user:2").await.unwrap();
    assert_eq!(
        limiter
            .peek("per-minute", "user:2")
            .await
            .unwrap()
            .remaining,
        3
    );
    assert_eq!(
        limiter.peek("missing", "user:2").await.unwrap_err(),
        RateLimitError::UnknownPolicy("missing".into())
    );

    // Bypass.
    for _ in 0..5 {
        let result = limiter.check("admin", &named, 3).await.unwrap();
        assert!(result.allowed && result.bypassed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_at_uses_the_callers_clock_and_concurrent_checks_admit_exactly_the_limit() {
    let redis = RedisServer::start();
    let limiter = Arc::new(
        Redwasm::connect(&redis.url())
            .await
            .unwrap()
            .ratelimit()
            .await
            .unwrap(),
    );
    let gcra = Policy::new("gcra", 100, 60_000, Algorithm::TokenBucket);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let limiter = limiter.clone();
            let gcra = gcra.clone();
            tokio::spawn(async move {
                let mut allowed = 0u64;
                for _ in 0..10 {
                    let r = limiter
                        .check_at("k", &[gcra.clone().into()], 1, T0_MS)
                        .await
                        .unwrap();
                    allowed += u64::from(r.allowed);
                }
                allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    assert_eq!(allowed, 100, "320 checks at one instant, limit 100");
    // Refill by the caller's clock: one emission interval (600 ms) later, exactly one more.
    let refs: Vec<PolicyRef> = vec![gcra.into()];
    let at = |ms| limiter.check_at("k", &refs, 1, T0_MS + ms);
    assert!(!at(599).await.unwrap().allowed);
    assert!(at(600).await.unwrap().allowed);
    assert!(!at(600).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_are_typed_and_redis_outages_follow_the_fail_mode() {
    let mut redis = RedisServer::start();
    let limiter = Redwasm::connect(&redis.url())
        .await
        .unwrap()
        .ratelimit()
        .await
        .unwrap();
    let closed = Policy::new("closed", 5, 1_000, Algorithm::FixedWindow);
    let open = Policy::new("open", 5, 1_000, Algorithm::SlidingWindowCounter)
        .with_fail_mode(FailMode::Open);
    match limiter.check("", &[closed.clone().into()], 1).await {
        Err(RateLimitError::Invalid(detail)) => assert!(detail.contains("key"), "{detail}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    match limiter.check("k", &["nope".into()], 1).await {
        Err(RateLimitError::UnknownPolicy(name)) => assert_eq!(name, "nope"),
        other => panic!("expected UnknownPolicy, got {other:?}"),
    }
    assert!(
        limiter
            .check("k", &[closed.clone().into()], 1)
            .await
            .unwrap()
            .allowed
    );

    redis.stop();
    match limiter.check("k", &[closed.clone().into()], 1).await {
        Err(RateLimitError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let degraded = limiter.check("k", &[open.clone().into()], 1).await.unwrap();
    assert!(degraded.allowed && degraded.degraded);
    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if let Ok(result) = limiter.check("k", &[closed.clone().into()], 1).await {
            assert!(result.allowed && !result.degraded);
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "checks work again once Redis is back");
}
