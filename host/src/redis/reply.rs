//! Turning a Redis reply into the flat `list<redis-result>` that `execute` returns, and
//! measuring replies for the size cap.

use redis::Value;

use super::RedisValue;

/// Bytes a reply occupies once handed to the guest: payload bytes plus a fixed cost per
/// value, so a reply of a million empty strings is not free either.
pub(crate) fn reply_size(value: &Value) -> usize {
    const PER_VALUE: usize = 16;
    PER_VALUE
        + match value {
            Value::BulkString(b) => b.len(),
            Value::SimpleString(s) => s.len(),
            Value::VerbatimString { text, .. } => text.len(),
            Value::BigNumber(n) => n.len(),
            Value::Array(items) | Value::Set(items) => items.iter().map(reply_size).sum(),
            Value::Push { data, .. } => data.iter().map(reply_size).sum(),
            Value::Map(pairs) => pairs
                .iter()
                .map(|(k, v)| reply_size(k) + reply_size(v))
                .sum(),
            Value::Attribute { data, attributes } => {
                reply_size(data)
                    + attributes
                        .iter()
                        .map(|(k, v)| reply_size(k) + reply_size(v))
                        .sum::<usize>()
            }
            Value::ServerError(e) => e.details().map_or(0, str::len) + 16,
            // Nil, Int, Okay, Double, Boolean, and variants added by future redis-rs
            // versions: fixed size.
            _ => 0,
        }
}

/// Flattens a reply the way Spin's `execute` does: arrays (nested too) become consecutive
/// elements; `OK` is `status("OK")`; doubles and big numbers become their decimal text;
/// booleans 0/1. Unlike Spin, a RESP3 map is flattened to key, value, key, value... rather
/// than refused. An error nested in an array (e.g. from a script) fails the whole call.
pub(crate) fn flatten(value: Value) -> Result<Vec<RedisValue>, String> {
    fn push(out: &mut Vec<RedisValue>, value: Value) -> Result<(), String> {
        match value {
            Value::Nil => out.push(RedisValue::Nil),
            Value::Int(i) => out.push(RedisValue::Int64(i)),
            Value::BulkString(b) => out.push(RedisValue::Binary(b)),
            Value::SimpleString(s) => out.push(RedisValue::Status(s)),
            Value::Okay => out.push(RedisValue::Status("OK".into())),
            Value::Double(d) => out.push(RedisValue::Binary(d.to_string().into_bytes())),
            Value::Boolean(b) => out.push(RedisValue::Int64(i64::from(b))),
            Value::BigNumber(n) => out.push(RedisValue::Binary(n)),
            Value::VerbatimString { text, .. } => out.push(RedisValue::Binary(text.into_bytes())),
            Value::Array(items) | Value::Set(items) => {
                for item in items {
                    push(out, item)?;
                }
            }
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    push(out, k)?;
                    push(out, v)?;
                }
            }
            Value::Attribute { data, .. } => push(out, *data)?,
            Value::Push { .. } => return Err("pub/sub messages are not supported".into()),
            Value::ServerError(e) => {
                return Err(format!(
                    "{}{}",
                    e.code(),
                    e.details().map(|d| format!(": {d}")).unwrap_or_default()
                ));
            }
            other => return Err(format!("unsupported reply type: {other:?}")),
        }
        Ok(())
    }
    let mut out = Vec::new();
    push(&mut out, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_arrays() {
        let v = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::Array(vec![
                Value::Int(1),
                Value::Nil,
                Value::Array(vec![Value::Okay]),
            ]),
            Value::SimpleString("QUEUED".into()),
        ]);
        assert_eq!(
            flatten(v).unwrap(),
            vec![
                RedisValue::Binary(b"a".to_vec()),
                RedisValue::Int64(1),
                RedisValue::Nil,
                RedisValue::Status("OK".into()),
                RedisValue::Status("QUEUED".into()),
            ]
        );
        assert_eq!(flatten(Value::Nil).unwrap(), vec![RedisValue::Nil]);
        assert_eq!(
            flatten(Value::Double(1.5)).unwrap(),
            vec![RedisValue::Binary(b"1.5".to_vec())]
        );
        assert_eq!(
            flatten(Value::Map(vec![(Value::Int(1), Value::Boolean(true))])).unwrap(),
            vec![RedisValue::Int64(1), RedisValue::Int64(1)]
        );
    }

    #[test]
    fn measures_replies() {
        let small = reply_size(&Value::BulkString(vec![0; 10]));
        let big = reply_size(&Value::Array(vec![Value::BulkString(vec![0; 1000]); 3]));
        assert_eq!(small, 26);
        assert!(big > 3000);
    }
}
