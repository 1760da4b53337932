//! Flag values: comma lists with llama-bench style ranges (`0-30+10`), repeats refused, and
//! timeouts in seconds.

use std::str::FromStr;

use super::{flag_err, PlanError};
use crate::engine::llamacpp::FlashAttn;

/// Parses a comma list of values; integer items may be ranges `first-last` or `first-last+step`
/// (as llama-bench), e.g. `0-30+10` is 0,10,20,30.
pub fn parse_list<T>(flag: &'static str, s: &str) -> Result<Vec<T>, PlanError>
where
    T: FromStr + TryFrom<i64>,
    T::Err: std::fmt::Display,
{
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(flag_err(flag, format!("empty item in list '{s}'")));
        }
        match item.parse::<T>() {
            Ok(v) => out.push(v),
            Err(e) => match parse_range(item) {
                Some(Err(too_many)) => return Err(flag_err(flag, too_many)),
                Some(Ok(range)) => {
                    for v in range {
                        out.push(T::try_from(v).map_err(|_| {
                            flag_err(flag, format!("{v} is out of range in '{item}'"))
                        })?);
                    }
                }
                None => return Err(flag_err(flag, format!("invalid value '{item}': {e}"))),
            },
        }
    }
    Ok(out)
}

/// The most values one range may expand to: a sweep larger than this is a typo, not a plan.
pub const MAX_RANGE_ITEMS: i64 = 4096;

/// `first-last[+step]` expanded, `None` when `item` is not a range, an error when it is too long.
fn parse_range(item: &str) -> Option<Result<Vec<i64>, String>> {
    let (range, step) = match item.split_once('+') {
        Some((r, s)) => (r, s.parse::<i64>().ok()?),
        None => (item, 1),
    };
    // The first number may be negative: split at a '-' that is not the first character.
    let cut = range.get(1..)?.find('-')? + 1;
    let first: i64 = range[..cut].parse().ok()?;
    let last: i64 = range[cut + 1..].parse().ok()?;
    if step <= 0 || last < first {
        return None;
    }
    let count = (last.checked_sub(first)? / step).checked_add(1)?;
    if count > MAX_RANGE_ITEMS {
        return Some(Err(format!(
            "'{item}' expands to {count} values, more than {MAX_RANGE_ITEMS}: give a larger step"
        )));
    }
    Some(Ok((first..=last)
        .step_by(usize::try_from(step).ok()?)
        .collect()))
}

/// Refuses a list that names a value twice: both combinations would get the same results key.
pub(super) fn no_duplicates<T: PartialEq + std::fmt::Display>(
    flag: &'static str,
    items: &[T],
) -> Result<(), PlanError> {
    for (i, v) in items.iter().enumerate() {
        if items[..i].contains(v) {
            return Err(flag_err(flag, format!("{v} is listed twice")));
        }
    }
    Ok(())
}

/// A flash-attention list: on/off/auto or 1/0 items.
pub(super) fn parse_fa_list(s: &str) -> Result<Vec<FlashAttn>, PlanError> {
    s.split(',')
        .map(|i| {
            i.trim()
                .parse::<FlashAttn>()
                .map_err(|e| flag_err(crate::settings::llamacpp::FLASH_ATTN.flag, e))
        })
        .collect()
}

/// A timeout flag in seconds: positive and finite.
pub(super) fn seconds(flag: &'static str, secs: f64) -> Result<std::time::Duration, PlanError> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| flag_err(flag, format!("{secs} is not a number of seconds above 0")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse_list::<i32>("f", "0,10,-1").unwrap(), vec![0, 10, -1]);
        assert_eq!(
            parse_list::<i32>("f", "0-30+10").unwrap(),
            vec![0, 10, 20, 30]
        );
        assert_eq!(parse_list::<u32>("f", "1-3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_list::<i32>("f", "-1").unwrap(), vec![-1]);
        let e = parse_list::<u32>("--threads", "1,,2")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--threads: empty item"));
        let e = parse_list::<u32>("--threads", "two")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid value 'two'"));
        assert!(parse_list::<u32>("f", "5-1").is_err());
        assert!(parse_list::<u32>("f", "-1").is_err());
    }
}
