//! Percent-decoding of path segments and query strings.

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, for queries). Fails on a
/// malformed escape or on bytes that are not UTF-8.
pub fn decode_component(raw: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
                let low = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
                match (high, low) {
                    (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
                    _ => return Err(format!("malformed percent-escape at byte {i}")),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "not valid UTF-8 after percent-decoding".to_string())
}

/// A parsed query: `(decoded name, raw value)` pairs in order. Values stay raw so a caller can
/// split them (e.g. `tags=a,b`) before decoding; use [`decode_component`] on them.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((decode_component(name, true)?, value.to_string()));
    }
    Ok(pairs)
}

/// The raw value of the last parameter named `name`.
pub fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_rejects_malformed_ones() {
        assert_eq!(decode_component("a%2Fb%7Bc%7D", false).unwrap(), "a/b{c}");
        assert_eq!(decode_component("a+b", false).unwrap(), "a+b");
        assert_eq!(decode_component("a+b", true).unwrap(), "a b");
        assert!(decode_component("%zz", false).is_err());
        assert!(decode_component("%4", false).is_err());
        assert!(decode_component("%ff", false).is_err());
        assert_eq!(decode_component("%C3%A9", false).unwrap(), "é");
    }

    #[test]
    fn query_keeps_raw_values_and_last_wins() {
        let query = parse_query("ttl_s=1&tags=a%2Cb,c&ttl_s=2&flag").unwrap();
        assert_eq!(query_value(&query, "ttl_s"), Some("2"));
        assert_eq!(query_value(&query, "tags"), Some("a%2Cb,c"));
        assert_eq!(query_value(&query, "flag"), Some(""));
        assert_eq!(query_value(&query, "nope"), None);
    }
}
