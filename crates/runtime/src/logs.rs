//! Captured container output: each line of a container's stdout and stderr becomes a
//! [`LogEntry`] in a bounded, thread-safe [`LogBuffer`] that followers read by sequence number.
//! Lines that are JSON objects with `severity` or `message` are structured entries, as in
//! Cloud Logging.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// Lines longer than this are split, so one runaway line cannot take unbounded memory.
pub const MAX_LINE: usize = 64 * 1024;

/// What each line costs in the buffer beyond its bytes: the newline it came with, so that even
/// empty lines count toward the bound.
const LINE_OVERHEAD: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    pub stream: Stream,
    pub container: String,
    /// The line, or a structured entry's `message`.
    pub text: String,
    /// A structured entry's `severity`, uppercased.
    pub severity: Option<String>,
    /// The whole JSON object of a structured entry.
    pub structured: Option<Value>,
}

impl LogEntry {
    /// Reads `line` by Cloud Logging's convention: a JSON object with a `severity` and/or
    /// `message` field is a structured entry; anything else is plain text.
    pub fn parse(time: SystemTime, container: &str, stream: Stream, line: &str) -> LogEntry {
        let mut entry = LogEntry {
            time,
            stream,
            container: container.to_owned(),
            text: String::new(),
            severity: None,
            structured: None,
        };
        match structured_object(line) {
            Some(object) => {
                entry.severity = object.get("severity").and_then(severity_text);
                entry.text = match object.get("message") {
                    Some(Value::String(message)) => message.clone(),
                    Some(other) => other.to_string(),
                    None => line.to_owned(),
                };
                entry.structured = Some(Value::Object(object));
            }
            None => entry.text = line.to_owned(),
        }
        entry
    }
}

/// The line's JSON object, if it is one with a `severity` or `message` field.
fn structured_object(line: &str) -> Option<serde_json::Map<String, Value>> {
    // Most lines are plain text: skip the parser for anything that cannot be an object.
    if !line.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str(line) {
        Ok(Value::Object(object))
            if object.contains_key("severity") || object.contains_key("message") =>
        {
            Some(object)
        }
        _ => None,
    }
}

fn severity_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.to_uppercase()),
        // Cloud Logging also accepts its numeric severities (e.g. 500 for ERROR).
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn serialize_time<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*time))
}

/// Formats `time` as RFC 3339 in UTC with nanoseconds, e.g. `2023-11-14T22:13:20.123456789Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let (seconds, nanos) = unix_time(time);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    )
}

/// Whole seconds since the epoch (negative before it) and the nanoseconds past them.
fn unix_time(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (saturating_secs(after), after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let seconds = -saturating_secs(before);
            match before.subsec_nanos() {
                0 => (seconds, 0),
                nanos => (seconds - 1, 1_000_000_000 - nanos),
            }
        }
    }
}

fn saturating_secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction: day 1..=31, month 1..=12.
    (year, month as u32, day as u32)
}

/// A container's recent output, bounded in bytes: past the bound the oldest lines go (and are
/// counted). Every entry gets a sequence number, so followers can ask for what came after the
/// last one they saw.
pub struct LogBuffer {
    max_bytes: usize,
    ring: Mutex<Ring>,
    /// The next sequence number, published so async followers can wait for new lines.
    next_seq: watch::Sender<u64>,
}

#[derive(Default)]
struct Ring {
    /// `(sequence number, cost, entry)`, oldest first; sequence numbers are consecutive.
    entries: VecDeque<(u64, usize, LogEntry)>,
    bytes: usize,
    next_seq: u64,
    dropped: u64,
}

impl LogBuffer {
    /// A buffer holding up to `max_bytes` of output (each line's bytes plus its newline). The
    /// newest line is always kept, even when it alone is larger.
    pub fn new(max_bytes: usize) -> LogBuffer {
        LogBuffer {
            max_bytes,
            ring: Mutex::new(Ring::default()),
            next_seq: watch::Sender::new(0),
        }
    }

    /// Records one line (without its newline), now.
    pub fn push(&self, container: &str, stream: Stream, line: &str) {
        let entry = LogEntry::parse(SystemTime::now(), container, stream, line);
        let cost = line.len() + LINE_OVERHEAD;
        let next_seq = {
            let mut ring = self.ring();
            let seq = ring.next_seq;
            ring.next_seq += 1;
            ring.bytes += cost;
            ring.entries.push_back((seq, cost, entry));
            while ring.bytes > self.max_bytes && ring.entries.len() > 1 {
                if let Some((_, cost, _)) = ring.entries.pop_front() {
                    ring.bytes -= cost;
                    ring.dropped += 1;
                }
            }
            ring.next_seq
        };
        self.next_seq.send_replace(next_seq);
    }

    /// How many entries were dropped to stay within the bound.
    pub fn dropped(&self) -> u64 {
        self.ring().dropped
    }

    /// Every entry held, oldest first.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.ring()
            .entries
            .iter()
            .map(|(_, _, entry)| entry.clone())
            .collect()
    }

    /// The entries numbered `seq` and later still held, and the number to ask for next time.
    /// Start at 0. Entries dropped before a follower got to them are skipped.
    pub fn since(&self, seq: u64) -> (Vec<LogEntry>, u64) {
        let ring = self.ring();
        let start = ring
            .entries
            .partition_point(|(entry_seq, _, _)| *entry_seq < seq);
        let entries = ring
            .entries
            .range(start..)
            .map(|(_, _, entry)| entry.clone())
            .collect();
        (entries, ring.next_seq)
    }

    /// The last `n` entries, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogEntry> {
        let ring = self.ring();
        let start = ring.entries.len().saturating_sub(n);
        ring.entries
            .range(start..)
            .map(|(_, _, entry)| entry.clone())
            .collect()
    }

    /// Waits until an entry numbered `seq` or later has been pushed (at once if one has), for
    /// followers: `since(next)`, then `wait_for(next)`, and again.
    pub async fn wait_for(&self, seq: u64) {
        let mut next_seq = self.next_seq.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we borrow it.
        let _ = next_seq.wait_for(|&next| next > seq).await;
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring unusable, only a count off.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads `reader` on a thread until end of file (or a read error, which is logged), pushing
/// each line to `buffer`. Bytes that are not UTF-8 become U+FFFD; a last line without a
/// newline still counts; lines longer than [`MAX_LINE`] are split.
pub fn capture<R: Read + Send + 'static>(
    mut reader: R,
    buffer: Arc<LogBuffer>,
    container: String,
    stream: Stream,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut splitter = LineSplitter::default();
        let mut emit =
            |line: &[u8]| buffer.push(&container, stream, &String::from_utf8_lossy(line));
        let mut chunk = vec![0; MAX_LINE];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => splitter.feed(&chunk[..n], &mut emit),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let stream = stream.as_str();
                    tracing::warn!(%container, stream, %error, "reading container output");
                    break;
                }
            }
        }
        splitter.finish(&mut emit);
    })
}

/// [`capture`] for an async reader (such as a `tokio::process` pipe), as a tokio task.
pub fn capture_async<R: AsyncRead + Unpin + Send + 'static>(
    mut reader: R,
    buffer: Arc<LogBuffer>,
    container: String,
    stream: Stream,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut splitter = LineSplitter::default();
        let mut emit =
            |line: &[u8]| buffer.push(&container, stream, &String::from_utf8_lossy(line));
        let mut chunk = vec![0; MAX_LINE];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => splitter.feed(&chunk[..n], &mut emit),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let stream = stream.as_str();
                    tracing::warn!(%container, stream, %error, "reading container output");
                    break;
                }
            }
        }
        splitter.finish(&mut emit);
    })
}

/// Cuts a byte stream into lines of at most [`MAX_LINE`] bytes, without their `\n` (or
/// `\r\n`).
#[derive(Default)]
struct LineSplitter {
    line: Vec<u8>,
}

impl LineSplitter {
    fn feed(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(&[u8])) {
        while let Some(&first) = chunk.first() {
            if self.line.len() >= MAX_LINE {
                // A full line is only split if more of it follows: a newline right after it
                // ends it instead, rather than leaving an empty line behind.
                if first == b'\n' {
                    chunk = &chunk[1..];
                    self.complete(emit);
                } else {
                    self.split(emit);
                }
                continue;
            }
            let room = MAX_LINE - self.line.len();
            let window = &chunk[..chunk.len().min(room)];
            match window.iter().position(|&byte| byte == b'\n') {
                Some(newline) => {
                    self.line.extend_from_slice(&window[..newline]);
                    chunk = &chunk[newline + 1..];
                    self.complete(emit);
                }
                None => {
                    self.line.extend_from_slice(window);
                    chunk = &chunk[window.len()..];
                }
            }
        }
    }

    /// Emits what is left at end of file: a last line without a newline.
    fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.line.is_empty() {
            emit(&self.line);
            self.line.clear();
        }
    }

    fn complete(&mut self, emit: &mut impl FnMut(&[u8])) {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        emit(&self.line);
        self.line.clear();
    }

    /// Emits a full line, keeping back a UTF-8 character cut at its end for the next piece
    /// so it is not mangled into two replacement characters.
    fn split(&mut self, emit: &mut impl FnMut(&[u8])) {
        let cut = utf8_boundary(&self.line);
        emit(&self.line[..cut]);
        self.line.drain(..cut);
    }
}

/// The length of `bytes` without an incomplete UTF-8 character at its end.
fn utf8_boundary(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(4) {
        let at = bytes.len() - back;
        let byte = bytes[at];
        let is_continuation = byte & 0xC0 == 0x80;
        if !is_continuation {
            let needed = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if back < needed { at } else { bytes.len() };
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.text.as_str()).collect()
    }

    fn parse(line: &str) -> LogEntry {
        LogEntry::parse(UNIX_EPOCH, "app", Stream::Stdout, line)
    }

    #[test]
    fn rfc3339_known_times() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339(time), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        // A leap day, and the last nanosecond of a century year that is not a leap year.
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 5);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000005Z");
        let end = UNIX_EPOCH + Duration::new(4_107_542_399, 999_999_999);
        assert_eq!(rfc3339(end), "2100-02-28T23:59:59.999999999Z");
        let before = UNIX_EPOCH - Duration::new(1, 500_000_000);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:58.500000000Z");
    }

    #[test]
    fn entry_serializes() {
        let mut entry = parse(r#"{"severity":"warning","message":"hi"}"#);
        entry.time = UNIX_EPOCH + Duration::new(1_700_000_000, 1);
        let value = serde_json::to_value(&entry).expect("serializes");
        assert_eq!(
            value,
            json!({
                "time": "2023-11-14T22:13:20.000000001Z",
                "stream": "stdout",
                "container": "app",
                "text": "hi",
                "severity": "WARNING",
                "structured": {"severity": "warning", "message": "hi"},
            })
        );
        assert_eq!(
            serde_json::to_string(&Stream::Stderr).expect("serializes"),
            "\"stderr\""
        );
    }

    #[test]
    fn structured_with_severity_and_message() {
        let entry = parse(r#"{"severity":"error","message":"boom","code":7}"#);
        assert_eq!(entry.severity.as_deref(), Some("ERROR"));
        assert_eq!(entry.text, "boom");
        assert_eq!(
            entry.structured,
            Some(json!({"severity": "error", "message": "boom", "code": 7}))
        );
    }

    #[test]
    fn structured_with_severity_only() {
        let line = r#"{"severity":"Info","user":"ann"}"#;
        let entry = parse(line);
        assert_eq!(entry.severity.as_deref(), Some("INFO"));
        assert_eq!(entry.text, line);
        assert!(entry.structured.is_some());
    }

    #[test]
    fn structured_with_message_only() {
        let entry = parse(r#"  {"message":"hello","n":1}  "#);
        assert_eq!(entry.severity, None);
        assert_eq!(entry.text, "hello");
        assert_eq!(entry.structured, Some(json!({"message": "hello", "n": 1})));
    }

    #[test]
    fn plain_text_lines() {
        for line in [
            "hello world",
            "",
            r#"{"other":"field"}"#,
            r#"["severity","message"]"#,
            r#""message""#,
            "42",
            r#"{"severity":"ERROR","message":"cut"#,
            "{not json}",
        ] {
            let entry = parse(line);
            assert_eq!(entry.text, line);
            assert_eq!(entry.severity, None, "{line}");
            assert_eq!(entry.structured, None, "{line}");
        }
    }

    #[test]
    fn buffer_keeps_arrival_order() {
        let buffer = LogBuffer::new(1024);
        buffer.push("app", Stream::Stdout, "one");
        buffer.push("app", Stream::Stderr, "two");
        let entries = buffer.entries();
        assert_eq!(texts(&entries), ["one", "two"]);
        assert_eq!(entries[1].stream, Stream::Stderr);
        assert_eq!(entries[1].container, "app");
        assert_eq!(buffer.dropped(), 0);
    }

    #[test]
    fn buffer_drops_oldest_past_bound() {
        // Each 4-byte line costs 5 with its newline: three fit in 15 bytes.
        let buffer = LogBuffer::new(15);
        for line in ["aaaa", "bbbb", "cccc"] {
            buffer.push("app", Stream::Stdout, line);
        }
        assert_eq!(buffer.dropped(), 0);
        buffer.push("app", Stream::Stdout, "dddd");
        assert_eq!(texts(&buffer.entries()), ["bbbb", "cccc", "dddd"]);
        assert_eq!(buffer.dropped(), 1);
        // A line larger than the bound drops everything else but is kept itself.
        buffer.push("app", Stream::Stdout, &"x".repeat(40));
        assert_eq!(buffer.entries().len(), 1);
        assert_eq!(buffer.dropped(), 4);
        buffer.push("app", Stream::Stdout, "e");
        assert_eq!(texts(&buffer.entries()), ["e"]);
        assert_eq!(buffer.dropped(), 5);
    }

    #[test]
    fn empty_lines_count_toward_the_bound() {
        let buffer = LogBuffer::new(10);
        for _ in 0..100 {
            buffer.push("app", Stream::Stdout, "");
        }
        assert_eq!(buffer.entries().len(), 10);
        assert_eq!(buffer.dropped(), 90);
    }

    #[test]
    fn since_follows_and_skips_dropped() {
        let buffer = LogBuffer::new(10);
        let (entries, next) = buffer.since(0);
        assert!(entries.is_empty());
        assert_eq!(next, 0);

        buffer.push("app", Stream::Stdout, "a");
        buffer.push("app", Stream::Stdout, "b");
        let (entries, next) = buffer.since(next);
        assert_eq!(texts(&entries), ["a", "b"]);
        assert_eq!(next, 2);
        let (entries, same) = buffer.since(next);
        assert!(entries.is_empty());
        assert_eq!(same, 2);

        // Lines of 3 bytes cost 4: only two fit, so "c" is gone before it is read.
        for line in ["ccc", "ddd", "eee"] {
            buffer.push("app", Stream::Stdout, line);
        }
        let (entries, next) = buffer.since(next);
        assert_eq!(texts(&entries), ["ddd", "eee"]);
        assert_eq!(next, 5);
        let (entries, _) = buffer.since(3);
        assert_eq!(texts(&entries), ["ddd", "eee"]);
        let (entries, _) = buffer.since(4);
        assert_eq!(texts(&entries), ["eee"]);
        let (entries, next) = buffer.since(99);
        assert!(entries.is_empty());
        assert_eq!(next, 5);
    }

    #[test]
    fn tail_returns_last_lines() {
        let buffer = LogBuffer::new(1024);
        assert!(buffer.tail(3).is_empty());
        for line in ["1", "2", "3", "4", "5"] {
            buffer.push("app", Stream::Stdout, line);
        }
        assert_eq!(texts(&buffer.tail(2)), ["4", "5"]);
        assert_eq!(texts(&buffer.tail(10)), ["1", "2", "3", "4", "5"]);
        assert!(buffer.tail(0).is_empty());
    }

    #[test]
    fn buffer_is_shared_across_threads() {
        let buffer = Arc::new(LogBuffer::new(1 << 20));
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let buffer = Arc::clone(&buffer);
                std::thread::spawn(move || {
                    for line in 0..100 {
                        buffer.push("app", Stream::Stdout, &format!("{writer}:{line}"));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        assert_eq!(buffer.entries().len(), 400);
        assert_eq!(buffer.since(0).1, 400);
    }

    /// A reader handing out its data in small, uneven reads, as a pipe does.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            self.step = self.step % 7 + 1;
            Ok(n)
        }
    }

    fn captured(data: Vec<u8>) -> Vec<LogEntry> {
        let buffer = Arc::new(LogBuffer::new(1 << 24));
        let reader = Trickle {
            data,
            at: 0,
            step: 3,
        };
        capture(reader, Arc::clone(&buffer), "app".into(), Stream::Stderr)
            .join()
            .expect("capture thread");
        buffer.entries()
    }

    #[test]
    fn capture_lines_and_partial_last_line() {
        let entries =
            captured(b"first\r\nsecond\n\n{\"message\":\"m\"}\nlast, no newline".to_vec());
        assert_eq!(
            texts(&entries),
            ["first", "second", "", "m", "last, no newline"]
        );
        assert!(entries.iter().all(|entry| entry.stream == Stream::Stderr));
        assert!(entries.iter().all(|entry| entry.container == "app"));
    }

    #[test]
    fn capture_replaces_invalid_utf8() {
        let entries = captured(b"ok \xff\xfe end\n".to_vec());
        assert_eq!(texts(&entries), ["ok \u{FFFD}\u{FFFD} end"]);
    }

    #[test]
    fn capture_splits_long_lines() {
        let mut data = vec![b'a'; 150_000];
        data.extend_from_slice(b"\nshort\n");
        data.resize(data.len() + MAX_LINE, b'b');
        data.extend_from_slice(b"\nafter");
        let entries = captured(data);
        let lengths: Vec<usize> = entries.iter().map(|entry| entry.text.len()).collect();
        assert_eq!(
            lengths,
            [MAX_LINE, MAX_LINE, 150_000 - 2 * MAX_LINE, 5, MAX_LINE, 5]
        );
        assert_eq!(entries[3].text, "short");
        assert_eq!(entries[5].text, "after");
    }

    #[test]
    fn capture_split_keeps_utf8_characters_whole() {
        // "é" is two bytes; put one across the 64 KiB mark.
        let mut data = vec![b'a'; MAX_LINE - 1];
        data.extend_from_slice("étoile".as_bytes());
        let entries = captured(data);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].text.len(), MAX_LINE - 1);
        assert_eq!(entries[1].text, "étoile");
    }

    #[test]
    fn utf8_boundary_cases() {
        assert_eq!(utf8_boundary(b""), 0);
        assert_eq!(utf8_boundary(b"abc"), 3);
        assert_eq!(utf8_boundary("é".as_bytes()), 2);
        assert_eq!(utf8_boundary(&"é".as_bytes()[..1]), 0);
        assert_eq!(utf8_boundary(&"a€".as_bytes()[..3]), 1);
        assert_eq!(utf8_boundary(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(utf8_boundary("a😀".as_bytes()), 5);
        assert_eq!(utf8_boundary(b"a\x80\x80\x80\x80"), 5);
    }

    #[tokio::test]
    async fn capture_async_and_wait_for() {
        let buffer = Arc::new(LogBuffer::new(1024));
        let (mut writer, reader) = tokio::io::duplex(16);
        let task = capture_async(reader, Arc::clone(&buffer), "app".into(), Stream::Stdout);

        let follower = {
            let buffer = Arc::clone(&buffer);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut next = 0;
                while seen.len() < 3 {
                    buffer.wait_for(next).await;
                    let (entries, after) = buffer.since(next);
                    seen.extend(entries.into_iter().map(|entry| entry.text));
                    next = after;
                }
                seen
            })
        };
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"one\ntwo\nthree").await.expect("write");
        drop(writer);
        task.await.expect("capture task");
        let seen = follower.await.expect("follower");
        assert_eq!(seen, ["one", "two", "three"]);
    }
}
