//! The proto3 JSON mapping, as far as these resources need it.
//!
//! What the derives alone do not give:
//!
//! - `int64` fields are written as strings and read from strings or numbers;
//!   `int32` fields are written as numbers and read from numbers or strings;
//! - enums are written as their names (or, on request, as integers: the
//!   `$alt=json;enum-encoding=int` of Google's REST clients) and read from either;
//! - `null` stands for "the default value" anywhere in a message ([`from_slice`] and
//!   [`from_value`] drop it before the derives see it);
//! - a parse error names the field it failed on, as a `google.rpc.BadRequest` field
//!   violation.
//!
//! Unknown fields are ignored (serde's default). Default values are omitted on output
//! by `skip_serializing_if` on every field.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::status::{FieldViolation, Status};

/// How enums are written on output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnumEncoding {
    /// `"INGRESS_TRAFFIC_ALL"`: the proto3 JSON default.
    #[default]
    Name,
    /// `1`: what a client asks for with `$alt=json;enum-encoding=int`.
    Int,
}

impl EnumEncoding {
    /// The encoding a request's `$alt` query parameter asks for: `json;enum-encoding=int`
    /// gives [`EnumEncoding::Int`], anything else (or nothing) [`EnumEncoding::Name`].
    pub fn from_alt(alt: Option<&str>) -> Self {
        let Some(alt) = alt else {
            return Self::Name;
        };
        let int = alt.split(';').skip(1).any(|param| {
            let mut kv = param.splitn(2, '=');
            let key = kv.next().unwrap_or("").trim();
            let value = kv.next().unwrap_or("").trim();
            key.eq_ignore_ascii_case("enum-encoding") && value.eq_ignore_ascii_case("int")
        });
        if int {
            Self::Int
        } else {
            Self::Name
        }
    }
}

thread_local! {
    static ENUMS_AS_INT: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn enums_as_int() -> bool {
    ENUMS_AS_INT.with(|c| c.get())
}

struct EncodingGuard(bool);

impl EncodingGuard {
    fn set(encoding: EnumEncoding) -> Self {
        let previous = ENUMS_AS_INT.with(|c| c.replace(encoding == EnumEncoding::Int));
        EncodingGuard(previous)
    }
}

impl Drop for EncodingGuard {
    fn drop(&mut self) {
        ENUMS_AS_INT.with(|c| c.set(self.0));
    }
}

/// A message as a JSON value, enums written as `encoding` says.
pub fn to_value<T: Serialize + ?Sized>(message: &T, encoding: EnumEncoding) -> Value {
    let _guard = EncodingGuard::set(encoding);
    // Every type in this crate serializes infallibly (string map keys, no non-finite floats).
    serde_json::to_value(message).expect("proto message serializes to JSON")
}

/// A message as JSON text, enums written as `encoding` says.
pub fn to_string<T: Serialize + ?Sized>(message: &T, encoding: EnumEncoding) -> String {
    let _guard = EncodingGuard::set(encoding);
    serde_json::to_string(message).expect("proto message serializes to JSON")
}

/// A message as indented JSON text (for people), enums written as names.
pub fn to_string_pretty<T: Serialize + ?Sized>(message: &T) -> String {
    let _guard = EncodingGuard::set(EnumEncoding::Name);
    serde_json::to_string_pretty(message).expect("proto message serializes to JSON")
}

/// Parses a message from JSON text with the proto3 JSON mapping. A syntax error or a
/// value of the wrong type is an `INVALID_ARGUMENT` [`Status`] whose `BadRequest`
/// names the offending field (`template.containers[0].ports[0].containerPort`).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    from_value(value)
}

/// [`from_slice`] for a value already parsed.
pub fn from_value<T: DeserializeOwned>(mut value: Value) -> Result<T, Status> {
    strip_nulls(&mut value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." { String::new() } else { path };
        let description = format!("Invalid value: {inner}");
        let message = if field.is_empty() {
            format!("Invalid JSON payload received. {inner}")
        } else {
            format!("Invalid JSON payload received. Invalid value at '{field}': {inner}")
        };
        Status::invalid_argument(message)
            .with_bad_request(vec![FieldViolation::new(field, description)])
    })
}

/// In proto3 JSON `null` means "the field's default": dropping such members lets the
/// derives fill in their defaults.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Integers as proto3 JSON reads them: a number (an integral float too) or a string.
struct IntVisitor {
    min: i128,
    max: i128,
    what: &'static str,
}

impl IntVisitor {
    fn check<E: de::Error>(&self, v: i128) -> Result<i128, E> {
        if v < self.min || v > self.max {
            Err(E::custom(format!("{v} is out of range for {}", self.what)))
        } else {
            Ok(v)
        }
    }
}

impl<'de> Visitor<'de> for IntVisitor {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an {} as a number or a string", self.what)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        self.check(v as i128)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        self.check(v as i128)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        if v.fract() != 0.0 || !v.is_finite() || v.abs() > 9.007_199_254_740_992e15 {
            return Err(E::custom(format!("{v} is not an exact {}", self.what)));
        }
        self.check(v as i128)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        let t = v.trim();
        if t != v || t.is_empty() {
            return Err(E::custom(format!("\"{v}\" is not an {}", self.what)));
        }
        match t.parse::<i128>() {
            Ok(n) => self.check(n),
            Err(_) => match t.parse::<f64>() {
                Ok(f) if t.contains(['.', 'e', 'E']) => self.visit_f64(f),
                _ => Err(E::custom(format!("\"{v}\" is not an {}", self.what))),
            },
        }
    }
}

/// `int64`: a string on output, a string or a number on input.
pub(crate) mod int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = d.deserialize_any(IntVisitor {
            min: i64::MIN as i128,
            max: i64::MAX as i128,
            what: "int64",
        })?;
        Ok(v as i64)
    }
}

/// `int32`: a number on output, a number or a string on input.
pub(crate) mod int32 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        let v = d.deserialize_any(IntVisitor {
            min: i32::MIN as i128,
            max: i32::MAX as i128,
            what: "int32",
        })?;
        Ok(v as i32)
    }
}

/// `optional int32` (explicit presence): as `int32`, `None` when absent.
pub(crate) mod opt_int32 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<i32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_i32(*v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
        super::int32::deserialize(d).map(Some)
    }
}

/// `optional int64` (explicit presence): as `int64`, `None` when absent.
pub(crate) mod opt_int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        super::int64::deserialize(d).map(Some)
    }
}

/// Enum reading shared by every [`proto_enum!`]: a name, or a number.
pub(crate) struct EnumVisitor<T: 'static> {
    pub full_name: &'static str,
    pub from_name: fn(&str) -> Option<T>,
    pub from_i32: fn(i32) -> Option<T>,
}

impl<'de, T> Visitor<'de> for EnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} name or number", self.full_name)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        if let Some(e) = (self.from_name)(v) {
            return Ok(e);
        }
        if let Ok(n) = v.parse::<i32>() {
            if let Some(e) = (self.from_i32)(n) {
                return Ok(e);
            }
        }
        Err(E::custom(format!(
            "invalid value \"{v}\" for enum {}",
            self.full_name
        )))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        i32::try_from(v)
            .ok()
            .and_then(self.from_i32)
            .ok_or_else(|| E::custom(format!("invalid value {v} for enum {}", self.full_name)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        i32::try_from(v)
            .ok()
            .and_then(self.from_i32)
            .ok_or_else(|| E::custom(format!("invalid value {v} for enum {}", self.full_name)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() == 0.0 && v.abs() <= i32::MAX as f64 {
            self.visit_i64(v as i64)
        } else {
            Err(E::custom(format!(
                "invalid value {v} for enum {}",
                self.full_name
            )))
        }
    }
}

/// A proto enum: its variants with their numbers and proto names, `Default` as the
/// zero value, serialized as the name (or the number, see [`EnumEncoding`]) and read
/// from either.
macro_rules! proto_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident = $full:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $num:literal => $proto:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        $vis enum $name {
            #[default]
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The proto name (`"INGRESS_TRAFFIC_ALL"`).
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $proto, )+ }
            }

            /// The proto number.
            pub fn as_i32(self) -> i32 {
                match self { $( $name::$variant => $num, )+ }
            }

            /// The value of a proto name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $proto => Some($name::$variant), )+ _ => None }
            }

            /// The value of a proto number.
            pub fn from_i32(n: i32) -> Option<Self> {
                match n { $( $num => Some($name::$variant), )+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if $crate::json::enums_as_int() {
                    s.serialize_i32(self.as_i32())
                } else {
                    s.serialize_str(self.as_str())
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($crate::json::EnumVisitor {
                    full_name: $full,
                    from_name: $name::from_name,
                    from_i32: $name::from_i32,
                })
            }
        }
    };
}

pub(crate) use proto_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_parameter() {
        assert_eq!(EnumEncoding::from_alt(None), EnumEncoding::Name);
        assert_eq!(EnumEncoding::from_alt(Some("json")), EnumEncoding::Name);
        assert_eq!(
            EnumEncoding::from_alt(Some("json;enum-encoding=int")),
            EnumEncoding::Int
        );
        assert_eq!(
            EnumEncoding::from_alt(Some("json; enum-encoding=INT")),
            EnumEncoding::Int
        );
    }

    #[test]
    fn nulls_are_defaults() {
        let mut v = serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": {"d": 1}, "e": [{}]}));
    }
}
