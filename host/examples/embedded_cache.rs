//! Use the redwasm cache from your own Rust service, in-process, with no HTTP hop.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p redwasm-host --example embedded_cache
//! ```

use std::time::Duration;

use redwasm::embed::{Redwasm, SetOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redwasm = Redwasm::connect(&url).await?;
    let cache = redwasm.cache().await?;

    let options = SetOptions {
        ttl: Some(Duration::from_secs(60)),
        tags: vec!["users".into()],
        content_type: Some("application/json".into()),
        ..SetOptions::default()
    };
    cache
        .set("example", "user:1", br#"{"name":"Ada"}"#, &options)
        .await?;
    if let Some(entry) = cache.get("example", "user:1").await? {
        println!(
            "hit: {} ({}, age {} ms)",
            String::from_utf8_lossy(&entry.value),
            entry.content_type,
            entry.age_ms
        );
    }

    // Computed once, however many callers ask at the same time (here or in other processes).
    let report = cache
        .get_or_compute("example", "report:today", &options, || async {
            tokio::time::sleep(Duration::from_millis(50)).await; // the expensive part
            Ok::<_, std::convert::Infallible>(b"42 sales".to_vec())
        })
        .await?;
    println!("report: {}", String::from_utf8_lossy(&report));

    let removed = cache
        .invalidate_tags("example", &["users".to_string()])
        .await?;
    println!("invalidated {removed} entries tagged `users`");
    let stats = cache.stats("example").await?;
    println!(
        "stats: {} hits, {} misses, {} live keys",
        stats.hits, stats.misses, stats.keys
    );
    Ok(())
}
