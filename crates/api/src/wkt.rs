//! Well-known types: `google.protobuf.Timestamp`, `Duration` and `Any`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::execution::Execution;
use crate::job::Job;
use crate::revision::Revision;
use crate::service::Service;
use crate::status::{BadRequest, ErrorInfo};
use crate::task::Task;

/// The largest `Duration`, in seconds (10 000 years), as the proto defines it.
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the `Timestamp` range.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A point in time, `google.protobuf.Timestamp`: RFC 3339 in JSON
/// (`"2024-05-01T12:00:00.5Z"`; any offset on input, always `Z` on output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// 0 to 999 999 999.
    pub nanos: i32,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from(std::time::SystemTime::now())
    }

    /// A timestamp at whole seconds since the epoch.
    pub fn from_unix(seconds: i64) -> Self {
        Timestamp { seconds, nanos: 0 }
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos() as i32,
            },
            Err(e) => {
                let d = e.duration();
                let mut seconds = -(d.as_secs() as i64);
                let mut nanos = d.subsec_nanos() as i32;
                if nanos > 0 {
                    seconds -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Timestamp { seconds, nanos }
            }
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Nanoseconds as proto3 JSON writes them: no digits, or 3, 6 or 9.
fn write_fraction(f: &mut fmt::Formatter<'_>, nanos: i32) -> fmt::Result {
    if nanos == 0 {
        Ok(())
    } else if nanos % 1_000_000 == 0 {
        write!(f, ".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        write!(f, ".{:06}", nanos / 1_000)
    } else {
        write!(f, ".{nanos:09}")
    }
}

/// `"5"` → 500 000 000 nanoseconds; 1 to 9 digits.
fn parse_fraction(digits: &str) -> Option<i32> {
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = digits.parse().ok()?;
    Some(n * 10_i32.pow(9 - digits.len() as u32))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds.div_euclid(86_400);
        let secs = self.seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        write_fraction(f, self.nanos)?;
        f.write_str("Z")
    }
}

/// A string that is not what a field's type needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl FromStr for Timestamp {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = || ParseError(format!("\"{s}\" is not an RFC 3339 timestamp"));
        let b = s.as_bytes();
        if b.len() < 20 || !s.is_ascii() {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, ParseError> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        if b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(err());
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut rest = &s[19..];
        let mut nanos = 0;
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            nanos = parse_fraction(&r[..end]).ok_or_else(err)?;
            rest = &r[end..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(err()),
                };
                let hh = &rest[1..3];
                let mm = &rest[4..6];
                if !hh.bytes().chain(mm.bytes()).all(|c| c.is_ascii_digit()) {
                    return Err(err());
                }
                let (hh, mm): (i64, i64) = (
                    hh.parse().map_err(|_| err())?,
                    mm.parse().map_err(|_| err())?,
                );
                if hh > 23 || mm > 59 {
                    return Err(err());
                }
                sign * (hh * 3600 + mm * 60)
            }
            _ => return Err(err()),
        };
        let month_days = [
            31,
            if is_leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if year < 1
            || !(1..=12).contains(&month)
            || day < 1
            || day > month_days[(month - 1) as usize]
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(err());
        }
        let seconds =
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
                - offset;
        if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) {
            return Err(err());
        }
        Ok(Timestamp { seconds, nanos })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A span of time, `google.protobuf.Duration`: `"300s"`, `"1.5s"` in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    /// Whole seconds, -315 576 000 000 to 315 576 000 000.
    pub seconds: i64,
    /// -999 999 999 to 999 999 999, of the same sign as `seconds`.
    pub nanos: i32,
}

impl Duration {
    /// A duration of whole seconds.
    pub const fn from_secs(seconds: i64) -> Self {
        Duration { seconds, nanos: 0 }
    }

    /// The duration as a `std::time::Duration`, `None` if negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        if self.seconds < 0 || self.nanos < 0 {
            None
        } else {
            Some(std::time::Duration::new(
                self.seconds as u64,
                self.nanos as u32,
            ))
        }
    }

    /// Total nanoseconds (for comparisons).
    pub fn as_nanos(self) -> i128 {
        self.seconds as i128 * 1_000_000_000 + self.nanos as i128
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration {
            seconds: d.as_secs().min(MAX_DURATION_SECONDS as u64) as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds < 0 || self.nanos < 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", self.seconds.unsigned_abs())?;
        write_fraction(f, self.nanos.abs())?;
        f.write_str("s")
    }
}

impl FromStr for Duration {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = || {
            ParseError(format!(
                "\"{s}\" is not a duration (like \"300s\" or \"1.5s\")"
            ))
        };
        let body = s.strip_suffix('s').ok_or_else(err)?;
        let (negative, body) = match body.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, body),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (body, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let seconds: i64 = whole.parse().map_err(|_| err())?;
        let nanos = match frac {
            Some(f) => parse_fraction(f).ok_or_else(err)?,
            None => 0,
        };
        if seconds > MAX_DURATION_SECONDS {
            return Err(err());
        }
        Ok(if negative {
            Duration {
                seconds: -seconds,
                nanos: -nanos,
            }
        } else {
            Duration { seconds, nanos }
        })
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// The `@type` of a message packed in an [`Any`].
pub trait TypeUrl {
    /// `type.googleapis.com/google.cloud.run.v2.Service` and the like.
    const TYPE_URL: &'static str;
}

impl TypeUrl for Service {
    const TYPE_URL: &'static str = "type.googleapis.com/google.cloud.run.v2.Service";
}

impl TypeUrl for Revision {
    const TYPE_URL: &'static str = "type.googleapis.com/google.cloud.run.v2.Revision";
}

impl TypeUrl for Job {
    const TYPE_URL: &'static str = "type.googleapis.com/google.cloud.run.v2.Job";
}

impl TypeUrl for Execution {
    const TYPE_URL: &'static str = "type.googleapis.com/google.cloud.run.v2.Execution";
}

impl TypeUrl for Task {
    const TYPE_URL: &'static str = "type.googleapis.com/google.cloud.run.v2.Task";
}

impl TypeUrl for BadRequest {
    const TYPE_URL: &'static str = "type.googleapis.com/google.rpc.BadRequest";
}

impl TypeUrl for ErrorInfo {
    const TYPE_URL: &'static str = "type.googleapis.com/google.rpc.ErrorInfo";
}

/// `google.protobuf.Any`: a message with its type, in JSON the message's own fields
/// beside `"@type"`. The messages this API packs are typed; anything else is kept as
/// it came.
#[derive(Clone, Debug, PartialEq)]
pub enum Any {
    /// `google.cloud.run.v2.Service` (an operation's response and metadata).
    Service(Box<Service>),
    /// `google.cloud.run.v2.Revision`.
    Revision(Box<Revision>),
    /// `google.cloud.run.v2.Job` (job mutations' response and metadata).
    Job(Box<Job>),
    /// `google.cloud.run.v2.Execution` (`:run`, `:cancel` and execution deletions).
    Execution(Box<Execution>),
    /// `google.cloud.run.v2.Task`.
    Task(Box<Task>),
    /// `google.rpc.BadRequest` (an error's details).
    BadRequest(BadRequest),
    /// `google.rpc.ErrorInfo` (an error's details).
    ErrorInfo(ErrorInfo),
    /// Any other type, its JSON fields as received.
    Other {
        /// The `@type`.
        type_url: String,
        /// The other members.
        fields: Map<String, Value>,
    },
}

impl Any {
    /// The `@type`.
    pub fn type_url(&self) -> &str {
        match self {
            Any::Service(_) => Service::TYPE_URL,
            Any::Revision(_) => Revision::TYPE_URL,
            Any::Job(_) => Job::TYPE_URL,
            Any::Execution(_) => Execution::TYPE_URL,
            Any::Task(_) => Task::TYPE_URL,
            Any::BadRequest(_) => BadRequest::TYPE_URL,
            Any::ErrorInfo(_) => ErrorInfo::TYPE_URL,
            Any::Other { type_url, .. } => type_url,
        }
    }

    /// The packed service, if that is what this is.
    pub fn as_service(&self) -> Option<&Service> {
        match self {
            Any::Service(s) => Some(s),
            _ => None,
        }
    }

    /// The packed revision, if that is what this is.
    pub fn as_revision(&self) -> Option<&Revision> {
        match self {
            Any::Revision(r) => Some(r),
            _ => None,
        }
    }

    /// The packed job, if that is what this is.
    pub fn as_job(&self) -> Option<&Job> {
        match self {
            Any::Job(j) => Some(j),
            _ => None,
        }
    }

    /// The packed execution, if that is what this is.
    pub fn as_execution(&self) -> Option<&Execution> {
        match self {
            Any::Execution(e) => Some(e),
            _ => None,
        }
    }

    /// The packed task, if that is what this is.
    pub fn as_task(&self) -> Option<&Task> {
        match self {
            Any::Task(t) => Some(t),
            _ => None,
        }
    }
}

impl From<Service> for Any {
    fn from(s: Service) -> Self {
        Any::Service(Box::new(s))
    }
}

impl From<Revision> for Any {
    fn from(r: Revision) -> Self {
        Any::Revision(Box::new(r))
    }
}

impl From<Job> for Any {
    fn from(j: Job) -> Self {
        Any::Job(Box::new(j))
    }
}

impl From<Execution> for Any {
    fn from(e: Execution) -> Self {
        Any::Execution(Box::new(e))
    }
}

impl From<Task> for Any {
    fn from(t: Task) -> Self {
        Any::Task(Box::new(t))
    }
}

impl From<BadRequest> for Any {
    fn from(b: BadRequest) -> Self {
        Any::BadRequest(b)
    }
}

impl From<ErrorInfo> for Any {
    fn from(e: ErrorInfo) -> Self {
        Any::ErrorInfo(e)
    }
}

impl Serialize for Any {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // serde_json::to_value runs on this thread, so it sees the same enum encoding.
        let fields = match self {
            Any::Service(m) => serde_json::to_value(m),
            Any::Revision(m) => serde_json::to_value(m),
            Any::Job(m) => serde_json::to_value(m),
            Any::Execution(m) => serde_json::to_value(m),
            Any::Task(m) => serde_json::to_value(m),
            Any::BadRequest(m) => serde_json::to_value(m),
            Any::ErrorInfo(m) => serde_json::to_value(m),
            Any::Other { fields, .. } => Ok(Value::Object(fields.clone())),
        }
        .map_err(serde::ser::Error::custom)?;
        let Value::Object(fields) = fields else {
            return Err(serde::ser::Error::custom(
                "a message serializes to an object",
            ));
        };
        let mut map = s.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("@type", self.type_url())?;
        for (k, v) in &fields {
            if k != "@type" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut fields = Map::<String, Value>::deserialize(d)?;
        let type_url = match fields.remove("@type") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(de::Error::custom("\"@type\" must be a string")),
            None => return Err(de::Error::custom("an Any needs an \"@type\"")),
        };
        let value = Value::Object(fields);
        let parsed = match type_url.as_str() {
            Service::TYPE_URL => serde_json::from_value(value).map(|m| Any::Service(Box::new(m))),
            Revision::TYPE_URL => serde_json::from_value(value).map(|m| Any::Revision(Box::new(m))),
            Job::TYPE_URL => serde_json::from_value(value).map(|m| Any::Job(Box::new(m))),
            Execution::TYPE_URL => {
                serde_json::from_value(value).map(|m| Any::Execution(Box::new(m)))
            }
            Task::TYPE_URL => serde_json::from_value(value).map(|m| Any::Task(Box::new(m))),
            BadRequest::TYPE_URL => serde_json::from_value(value).map(Any::BadRequest),
            ErrorInfo::TYPE_URL => serde_json::from_value(value).map(Any::ErrorInfo),
            _ => {
                let Value::Object(fields) = value else {
                    unreachable!()
                };
                return Ok(Any::Other { type_url, fields });
            }
        };
        parsed.map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t: Timestamp = "1970-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(t, Timestamp::default());
        let t: Timestamp = "2024-02-29T12:34:56.5Z".parse().unwrap();
        assert_eq!(t.to_string(), "2024-02-29T12:34:56.500Z");
        assert_eq!(t.seconds, 1_709_210_096);
        let t: Timestamp = "2024-02-29T14:34:56.000001+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2024-02-29T12:34:56.000001Z");
        let t: Timestamp = "1969-12-31T23:59:59.123456789Z".parse().unwrap();
        assert_eq!((t.seconds, t.nanos), (-1, 123_456_789));
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.123456789Z");
        assert_eq!(
            "0001-01-01T00:00:00Z".parse::<Timestamp>().unwrap().seconds,
            MIN_TIMESTAMP_SECONDS
        );
        assert_eq!(
            "9999-12-31T23:59:59Z".parse::<Timestamp>().unwrap().seconds,
            MAX_TIMESTAMP_SECONDS
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567891Z",
            "2024-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            "300s".parse::<Duration>().unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!("1.5s".parse::<Duration>().unwrap().to_string(), "1.500s");
        assert_eq!("0.000000001s".parse::<Duration>().unwrap().nanos, 1);
        assert_eq!("-1.25s".parse::<Duration>().unwrap().to_string(), "-1.250s");
        assert_eq!(Duration::from_secs(0).to_string(), "0s");
        for bad in [
            "300",
            "s",
            "1.s",
            "1.0000000001s",
            "+1s",
            " 1s",
            "315576000001s",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }
}
