//! The stored form of one cache entry: a single Redis string, so a fresh hit can be read
//! together with the namespace version by one plain `MGET`, without running a script.
//!
//! ```text
//! <version> <stored_ms> <fresh_until_ms> <stale_until_ms> <tag count>\n
//! <content type>\n
//! <tag>\n            (once per tag)
//! <body>             (the rest, any bytes)
//! ```
//!
//! The numbers are decimal. Content types and tags never contain a newline (validation
//! rejects control characters), so the header is unambiguous and the body needs no escaping.
//! The scripts read only the leading numbers (`set.lua` writes `<version> ` in front of
//! [`header_tail`]); `invalidate_tags.lua` also walks the tag lines.

/// The part of an entry's header after `<version> `, ending where the body starts.
pub fn header_tail(
    stored_ms: u64,
    fresh_until_ms: u64,
    stale_until_ms: u64,
    content_type: &str,
    tags: &[String],
) -> Vec<u8> {
    let mut out = format!(
        "{stored_ms} {fresh_until_ms} {stale_until_ms} {}\n{content_type}\n",
        tags.len()
    )
    .into_bytes();
    for tag in tags {
        out.extend_from_slice(tag.as_bytes());
        out.push(b'\n');
    }
    out
}

/// A decoded entry, borrowing from the stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The namespace version the entry was written under (decimal text).
    pub version: &'a [u8],
    /// When it was stored, by the writer's clock.
    pub stored_ms: u64,
    /// Fresh before this instant.
    pub fresh_until_ms: u64,
    /// Served stale (and revalidated) before this instant; a miss from then on.
    pub stale_until_ms: u64,
    /// The stored content type.
    pub content_type: &'a str,
    /// The entry's tags.
    pub tags: Vec<&'a str>,
    /// The stored value.
    pub body: &'a [u8],
}

impl<'a> Record<'a> {
    /// Decodes `bytes`; `None` for anything this module did not write.
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let (header, mut rest) = split_line(bytes)?;
        let mut fields = std::str::from_utf8(header).ok()?.split(' ');
        let version = fields.next()?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut number = || fields.next()?.parse::<u64>().ok();
        let stored_ms = number()?;
        let fresh_until_ms = number()?;
        let stale_until_ms = number()?;
        let tag_count = number()?;
        if fields.next().is_some() {
            return None;
        }
        let (content_type, after) = split_line(rest)?;
        rest = after;
        let content_type = std::str::from_utf8(content_type).ok()?;
        let mut tags = Vec::new();
        for _ in 0..tag_count {
            let (tag, after) = split_line(rest)?;
            tags.push(std::str::from_utf8(tag).ok()?);
            rest = after;
        }
        Some(Record {
            version: version.as_bytes(),
            stored_ms,
            fresh_until_ms,
            stale_until_ms,
            content_type,
            tags,
            body: rest,
        })
    }

    /// True when written under namespace version `current` (`None`: the version key does
    /// not exist yet, which reads as `0`).
    pub fn is_of_version(&self, current: Option<&[u8]>) -> bool {
        self.version == current.unwrap_or(b"0")
    }
}

/// `(line, rest)` split at the first `\n`.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: &str, tail: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = format!("{version} ").into_bytes();
        out.extend_from_slice(tail);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn round_trips_with_tags_and_a_body_full_of_newlines_and_spaces() {
        let tags = vec!["a b".to_string(), "ü".to_string()];
        let bytes = stored(
            "17",
            &header_tail(5, 10, 20, "text/plain; charset=utf-8", &tags),
            b"\n1 2 3 4\n\0",
        );
        let record = Record::decode(&bytes).expect("decodes");
        assert_eq!(
            record,
            Record {
                version: b"17",
                stored_ms: 5,
                fresh_until_ms: 10,
                stale_until_ms: 20,
                content_type: "text/plain; charset=utf-8",
                tags: vec!["a b", "ü"],
                body: b"\n1 2 3 4\n\0",
            }
        );
        assert!(record.is_of_version(Some(b"17")));
        assert!(!record.is_of_version(None));
    }

    #[test]
    fn version_zero_matches_a_missing_version_key_and_empty_bodies_survive() {
        let bytes = stored("0", &header_tail(1, 2, 3, "x/y", &[]), b"");
        let record = Record::decode(&bytes).expect("decodes");
        assert!(record.is_of_version(None));
        assert_eq!(record.body, b"");
    }

    #[test]
    fn foreign_or_truncated_bytes_are_rejected() {
        let good = stored("1", &header_tail(1, 2, 3, "x/y", &["t".into()]), b"body");
        for bad in [
            &b""[..],
            b"plain value",
            b"1 2 3 4\nx/y\n",
            b"1 2 3 4 5 6\nx/y\nbody",
            b"v 1 2 3 0\nx/y\nbody",
            b" 1 2 3 0\nx/y\nbody",
            b"1 2 3 4 2\nx/y\nonly-one-tag\n",
            &good[..good.len() - "t\nbody".len()],
        ] {
            assert_eq!(
                Record::decode(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(Record::decode(&good).is_some());
    }
}
