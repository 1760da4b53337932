//! Statistics that may be infinite or undefined, in JSON (which has no such numbers): written as
//! the strings `"Infinity"`, `"-Infinity"` and `"NaN"`, read back from those strings, from numbers,
//! and from `null` (what files written before this representation hold), which reads as NaN.
//!
//! Use on an `f64` field with `#[serde(with = "crate::measure::json_float")]`. What each value
//! means where it occurs (a Welch t of ±Infinity: two sets without spread and different means) is
//! documented on the field.

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// Writes a finite value as a number, others as `"Infinity"`, `"-Infinity"` or `"NaN"`.
pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else if x.is_nan() {
        s.serialize_str("NaN")
    } else if *x > 0.0 {
        s.serialize_str("Infinity")
    } else {
        s.serialize_str("-Infinity")
    }
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, \"Infinity\", \"-Infinity\", \"NaN\" or null")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            "NaN" | "nan" => Ok(f64::NAN),
            other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }

    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
}

/// Reads what [`serialize`] writes, any number, and `null` (as NaN).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(FloatVisitor)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct T {
        #[serde(with = "super")]
        x: f64,
    }

    fn round(x: f64) -> (String, f64) {
        let text = serde_json::to_string(&T { x }).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        (text, back.x)
    }

    #[test]
    fn non_finite_values_round_trip_and_null_reads_as_nan() {
        assert_eq!(round(1.5), (r#"{"x":1.5}"#.into(), 1.5));
        assert_eq!(
            round(f64::INFINITY),
            (r#"{"x":"Infinity"}"#.into(), f64::INFINITY)
        );
        assert_eq!(round(f64::NEG_INFINITY).1, f64::NEG_INFINITY);
        assert!(round(f64::NAN).1.is_nan());
        let old: T = serde_json::from_str(r#"{"x":null}"#).unwrap();
        assert!(old.x.is_nan());
        let int: T = serde_json::from_str(r#"{"x":3}"#).unwrap();
        assert_eq!(int.x, 3.0);
        assert!(serde_json::from_str::<T>(r#"{"x":"many"}"#).is_err());
    }
}
