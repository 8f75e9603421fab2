//! JSON read the way Go's `encoding/json` reads it, for documents Go tools write (image configs,
//! manifests, indexes, `docker save` archives, registry and credential files): unknown fields are
//! ignored, a duplicated key takes its last value, struct field names match case-insensitively
//! (an exact match first), `null` leaves a field at its zero value, and invalid UTF-8 in strings
//! becomes U+FFFD. serde_json alone refuses duplicate fields, which every Go engine accepts.
//!
//! The document is parsed once into a `GoValue` that keeps every key in order, then handed to the
//! target type through a deserializer that knows each struct's field names.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{Deserializer, Visitor};
use serde::forward_to_deserialize_any;
use std::fmt;

type Error = serde_json::Error;

/// Parses `bytes` into `T` with Go's rules.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: GoValue = match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::from_str(s)?,
        Err(_) => serde_json::from_str(&String::from_utf8_lossy(bytes))?,
    };
    T::deserialize(value)
}

/// A JSON value whose objects keep every key, duplicates included, in document order.
#[derive(Debug, Clone, PartialEq)]
enum GoValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<GoValue>),
    Object(Vec<(String, GoValue)>),
}

impl<'de> de::Deserialize<'de> for GoValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoValue, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_none<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<GoValue, E> {
                Ok(GoValue::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<GoValue, E> {
                Ok(GoValue::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<GoValue, E> {
                Ok(GoValue::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<GoValue, E> {
                serde_json::Number::from_f64(n)
                    .map(GoValue::Number)
                    .ok_or_else(|| E::custom("a number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<GoValue, E> {
                Ok(GoValue::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<GoValue, E> {
                Ok(GoValue::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<GoValue, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(GoValue::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<GoValue, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, GoValue>()? {
                    v.push((k, x));
                }
                Ok(GoValue::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Go's case folding for field names: `foldName(a) == foldName(b)` as `bytes.EqualFold`.
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Keeps the last value of every key (first-seen order), as a Go map or struct ends up.
fn last_wins(entries: Vec<(String, GoValue)>) -> Vec<(String, GoValue)> {
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    let mut out: Vec<(String, GoValue)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        match index.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// An object's entries renamed to the struct's own field names (exact match, else the first
/// case-insensitive one), `null` values dropped, duplicates resolved to the last.
fn struct_entries(
    entries: Vec<(String, GoValue)>,
    fields: &'static [&'static str],
) -> Vec<(String, GoValue)> {
    let folded: Vec<String> = fields.iter().map(|f| fold(f)).collect();
    let renamed = entries
        .into_iter()
        .filter(|(_, v)| *v != GoValue::Null)
        .map(|(k, v)| {
            if fields.contains(&k.as_str()) {
                return (k, v);
            }
            let f = fold(&k);
            match folded.iter().position(|x| *x == f) {
                Some(i) => (fields[i].to_string(), v),
                None => (k, v),
            }
        })
        .collect();
    last_wins(renamed)
}

struct Entries {
    iter: std::vec::IntoIter<(String, GoValue)>,
    value: Option<GoValue>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.value.take().unwrap_or(GoValue::Null))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Elements(std::vec::IntoIter<GoValue>);

impl<'de> SeqAccess<'de> for Elements {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

fn entries(v: Vec<(String, GoValue)>) -> Entries {
    Entries {
        iter: v.into_iter(),
        value: None,
    }
}

impl<'de> Deserializer<'de> for GoValue {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            GoValue::Null => v.visit_unit(),
            GoValue::Bool(b) => v.visit_bool(b),
            GoValue::Number(n) => {
                if let Some(u) = n.as_u64() {
                    v.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    v.visit_i64(i)
                } else {
                    v.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            GoValue::String(s) => v.visit_string(s),
            GoValue::Array(a) => v.visit_seq(Elements(a.into_iter())),
            GoValue::Object(o) => v.visit_map(entries(last_wins(o))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            GoValue::Null => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            GoValue::Object(o) => v.visit_map(entries(struct_entries(o, fields))),
            GoValue::Null => v.visit_map(entries(Vec::new())),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            GoValue::Null => v.visit_str(""),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_string(v)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            GoValue::Null => v.visit_bool(false),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            GoValue::Null => v.visit_seq(Elements(Vec::new().into_iter())),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            GoValue::Null => v.visit_map(entries(Vec::new())),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            GoValue::String(s) => v.visit_enum(s.into_deserializer()),
            _ => Err(de::Error::custom("an enum must be a string")),
        }
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        tuple tuple_struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for GoValue {
    type Deserializer = GoValue;
    fn into_deserializer(self) -> GoValue {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "PascalCase")]
    struct Cfg {
        #[serde(default)]
        user: Option<String>,
        #[serde(default)]
        env: Option<Vec<String>>,
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
        #[serde(default)]
        working_dir: String,
        #[serde(default)]
        tty: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        schema_version: u32,
        #[serde(default)]
        config: Option<Cfg>,
    }

    #[test]
    fn a_duplicated_key_takes_its_last_value() {
        let d: Doc = from_slice(
            br#"{"schemaVersion":1,"schemaVersion":2,"config":{"User":"a","User":"b"}}"#,
        )
        .unwrap();
        assert_eq!(d.schema_version, 2);
        assert_eq!(d.config.unwrap().user.as_deref(), Some("b"));
        // Plain serde_json refuses the same document.
        assert!(
            serde_json::from_slice::<Doc>(br#"{"schemaVersion":1,"schemaVersion":2}"#).is_err()
        );
    }

    #[test]
    fn field_names_match_case_insensitively_exact_first() {
        let c: Cfg = from_slice(br#"{"user":"lower","ENV":["A=1"],"workingdir":"/w"}"#).unwrap();
        assert_eq!(c.user.as_deref(), Some("lower"));
        assert_eq!(c.env, Some(vec!["A=1".to_string()]));
        assert_eq!(c.working_dir, "/w");
        // The later of two spellings wins, as Go assigns in document order.
        let c: Cfg = from_slice(br#"{"User":"exact","user":"folded"}"#).unwrap();
        assert_eq!(c.user.as_deref(), Some("folded"));
        // Go's folding: the Kelvin sign matches K.
        #[derive(Deserialize)]
        struct K {
            #[serde(rename = "Kind")]
            kind: String,
        }
        let k: K = from_slice("{\"\u{212a}ind\":\"x\"}".as_bytes()).unwrap();
        assert_eq!(k.kind, "x");
    }

    #[test]
    fn map_keys_stay_case_sensitive_with_the_last_duplicate() {
        let c: Cfg = from_slice(br#"{"Labels":{"a":"1","A":"2","a":"3"}}"#).unwrap();
        let labels = c.labels.unwrap();
        assert_eq!(labels.get("a").map(String::as_str), Some("3"));
        assert_eq!(labels.get("A").map(String::as_str), Some("2"));
    }

    #[test]
    fn unknown_fields_are_ignored_and_null_is_the_zero_value() {
        let c: Cfg = from_slice(
            br#"{"Whatever":{"deep":[1,2]},"User":null,"Env":null,"Tty":null,"WorkingDir":null}"#,
        )
        .unwrap();
        assert_eq!(c, Cfg::default());
        let c: Cfg = from_slice(br#"{"Env":["A=1",null]}"#).unwrap();
        assert_eq!(c.env, Some(vec!["A=1".to_string(), String::new()]));
    }

    #[test]
    fn invalid_utf8_in_strings_becomes_the_replacement_character() {
        let c: Cfg = from_slice(b"{\"User\":\"a\xffb\"}").unwrap();
        assert_eq!(c.user.as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn type_mismatches_and_syntax_errors_are_still_errors() {
        assert!(from_slice::<Doc>(br#"{"schemaVersion":"2"}"#).is_err());
        assert!(from_slice::<Doc>(br#"{"schemaVersion":2.5}"#).is_err());
        assert!(from_slice::<Doc>(br#"{"schemaVersion":2"#).is_err());
        assert!(from_slice::<Doc>(br#"{"schemaVersion":2} x"#).is_err());
    }

    #[test]
    fn values_of_any_type_pass_through() {
        let v: serde_json::Value = from_slice(br#"{"a":1,"a":[true,null,"x",-2,1.5]}"#).unwrap();
        assert_eq!(v, serde_json::json!({"a": [true, null, "x", -2, 1.5]}));
    }
}
