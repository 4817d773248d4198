//! Reading a component's numeric Spin variables with a fallback: a value that does not parse
//! or is out of range is reported on stderr and replaced by the default, so a typo in the
//! manifest degrades to sane limits instead of failing every request.

/// The variable `name` through `lookup` as a `u64` accepted by `valid`, else `default` (with a
/// warning naming `component`). Unset → `default`, silently.
pub fn u64_or_default(
    lookup: &dyn Fn(&str) -> Option<String>,
    component: &str,
    name: &str,
    default: u64,
    valid: &dyn Fn(u64) -> bool,
) -> u64 {
    let Some(text) = lookup(name) else {
        return default;
    };
    match text.trim().parse::<u64>() {
        Ok(value) if valid(value) => value,
        _ => {
            eprintln!("{component}: ignoring invalid variable {name}={text:?}; using {default}");
            default
        }
    }
}

/// [`u64_or_default`] accepting any value above zero.
pub fn positive_u64_or_default(
    lookup: &dyn Fn(&str) -> Option<String>,
    component: &str,
    name: &str,
    default: u64,
) -> u64 {
    u64_or_default(lookup, component, name, default, &|v| v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_invalid_and_out_of_range_values_fall_back() {
        let lookup = |name: &str| match name {
            "good" => Some(" 42 ".to_string()),
            "zero" => Some("0".to_string()),
            "junk" => Some("lots".to_string()),
            _ => None,
        };
        assert_eq!(positive_u64_or_default(&lookup, "t", "good", 7), 42);
        assert_eq!(positive_u64_or_default(&lookup, "t", "zero", 7), 7);
        assert_eq!(positive_u64_or_default(&lookup, "t", "junk", 7), 7);
        assert_eq!(positive_u64_or_default(&lookup, "t", "unset", 7), 7);
        assert_eq!(u64_or_default(&lookup, "t", "good", 7, &|v| v < 10), 7);
    }
}
