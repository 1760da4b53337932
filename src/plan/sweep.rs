//! Sweep expansion: one cartesian product over every setting's listed values, in the order the
//! settings are given (the last varies fastest, as llama-bench's nested loops), with the `sweep`
//! map of the settings that vary.

use serde_json::{Map, Value};

/// One setting's listed values: its results key and each value as the sweep map records it.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The results key (from the engine's settings table).
    pub key: &'static str,
    /// The values, as recorded in the `sweep` map.
    pub values: Vec<Value>,
}

impl Axis {
    /// An axis of `key` over `values`, each recorded as `label` makes it.
    pub fn new<T>(key: &'static str, values: &[T], label: impl Fn(&T) -> Value) -> Self {
        Self {
            key,
            values: values.iter().map(label).collect(),
        }
    }
}

/// Every combination of one value per axis, as indices into the axes' values, with the `sweep`
/// map of the axes that have more than one value. The first axis varies slowest.
pub fn expand<const N: usize>(axes: &[Axis; N]) -> Vec<([usize; N], Map<String, Value>)> {
    let total: usize = axes.iter().map(|a| a.values.len()).product();
    (0..total)
        .map(|mut n| {
            let mut pick = [0; N];
            for (i, a) in axes.iter().enumerate().rev() {
                pick[i] = n % a.values.len();
                n /= a.values.len();
            }
            let sweep = axes
                .iter()
                .zip(pick)
                .filter(|(a, _)| a.values.len() > 1)
                .map(|(a, i)| (a.key.to_string(), a.values[i].clone()))
                .collect();
            (pick, sweep)
        })
        .collect()
}

pub use crate::settings::sweep_label;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_product_varies_the_last_axis_fastest_and_records_what_varies() {
        let axes = [
            Axis::new("a", &[1, 2], |v| json!(v)),
            Axis::new("b", &["x"], |v| json!(v)),
            Axis::new("c", &[10, 20, 30], |v| json!(v)),
        ];
        let combos = expand(&axes);
        assert_eq!(combos.len(), 6);
        assert_eq!(combos[0].0, [0, 0, 0]);
        assert_eq!(combos[1].0, [0, 0, 1]);
        assert_eq!(combos[5].0, [1, 0, 2]);
        assert_eq!(sweep_label(&combos[4].1), "a=2,c=20");
        let single = expand(&[Axis::new("a", &[1], |v| json!(v))]);
        assert_eq!(single.len(), 1);
        assert!(single[0].1.is_empty());
        assert!(expand(&[Axis::new("a", &[0u8; 0], |v| json!(v))]).is_empty());
    }
}
