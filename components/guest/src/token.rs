//! Random tokens (leases, revalidation, correlation ids) and jitter.

/// 128 random bits as 32 lower-case hex digits. Falls back to a time-and-counter value only
/// if the platform has no randomness at all, which never happens on wasip2 or Linux.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..8].copy_from_slice(&(nanos as u64).to_le_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    let mut out = String::with_capacity(32);
    for byte in bytes {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// 128 bits from the platform's CSPRNG as 32 lower-case hex digits, for secrets (session
/// ids): unlike [`new_token`] there is no fallback, so no guessable id is ever issued.
pub fn secure_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A uniformly random number in `0..=max`.
pub fn random_up_to(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let value = u64::from_le_bytes(bytes);
    // The modulo bias is below 2^-40 for any TTL we accept; irrelevant for jitter.
    value % (max + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_digits_and_distinct() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn random_up_to_stays_in_bounds() {
        assert_eq!(random_up_to(0), 0);
        assert!((0..1000).all(|_| random_up_to(7) <= 7));
    }
}
