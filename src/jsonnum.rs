//! f64 fields that survive JSON even when not finite (an overflowed model gives KL = inf):
//! finite values are plain numbers, the others the strings `inf`, `-inf`, `NaN`.
//!
//! Reading accepts what serde_json hands over with `arbitrary_precision` on (gguf-rs turns
//! it on): a number may arrive as a one-entry map holding its decimal text.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// Serializes one f64.
pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    match *x {
        v if v.is_finite() => s.serialize_f64(v),
        v if v.is_nan() => s.serialize_str("NaN"),
        v if v > 0.0 => s.serialize_str("inf"),
        _ => s.serialize_str("-inf"),
    }
}

/// Deserializes one f64.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(F64Visitor { words: true })
}

/// `words`: whether the strings `inf`, `-inf`, `NaN` stand for those values.
struct F64Visitor {
    words: bool,
}

impl<'de> Visitor<'de> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.words {
            true => f.write_str("a number or one of \"inf\", \"-inf\", \"NaN\""),
            false => f.write_str("a number"),
        }
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
        if !self.words {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        match v {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            other => other
                .parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<f64, A::Error> {
        let (_, text): (String, String) = map
            .next_entry()?
            .ok_or_else(|| de::Error::custom("empty number"))?;
        text.parse()
            .map_err(|_| de::Error::custom(format!("'{text}' is not a number")))
    }
}

/// Plain JSON numbers read to the exact f64 their text denotes (serde_json's own float
/// parser may land one ulp off; here the decimal text is parsed by Rust's correctly
/// rounded parser), so a value written and read back is the same bits. Strings are refused.
pub mod exact {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    struct Exact(#[serde(deserialize_with = "one")] f64);

    /// One number.
    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(super::F64Visitor { words: false })
    }

    /// An optional number (absent or `null`: `None`; use with `#[serde(default)]`).
    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Exact>::deserialize(d)?.map(|e| e.0))
    }

    /// An optional list of numbers.
    pub fn option_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
        Ok(Option::<Vec<Exact>>::deserialize(d)?.map(|v| v.into_iter().map(|e| e.0).collect()))
    }
}

/// The same for `Vec<(String, f64)>`.
pub mod pairs {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(serde::Serialize, Deserialize)]
    struct Pair(String, #[serde(with = "super")] f64);

    /// Serializes name/value pairs.
    pub fn serialize<S: Serializer>(v: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for (n, x) in v {
            seq.serialize_element(&Pair(n.clone(), *x))?;
        }
        seq.end()
    }

    /// Deserializes name/value pairs.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        Ok(Vec::<Pair>::deserialize(d)?
            .into_iter()
            .map(|Pair(n, x)| (n, x))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(with = "super")]
        x: f64,
        #[serde(with = "super::pairs")]
        v: Vec<(String, f64)>,
    }

    #[test]
    fn non_finite_values_round_trip() {
        for x in [0.5, 1e-300, f64::INFINITY, f64::NEG_INFINITY, 3.0] {
            let t = T {
                x,
                v: vec![("a".into(), x)],
            };
            let s = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<T>(&s).unwrap(), t, "{s}");
        }
        let nan: T = serde_json::from_str(r#"{"x":"NaN","v":[]}"#).unwrap();
        assert!(nan.x.is_nan());
        assert!(serde_json::from_str::<T>(r#"{"x":"many","v":[]}"#).is_err());
    }
}
