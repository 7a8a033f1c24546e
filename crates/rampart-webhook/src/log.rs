//! Logs: JSON lines on stderr, written by a background thread so a slow
//! stderr never stalls a request.
//!
//! Two kinds of lines share the writer: `tracing` events (startup, reloads,
//! errors) and one decision line per admission request (target
//! `rampart::decision`). Decision lines carry who asked for what and what was
//! decided, never the object: no Secret data, no tokens, no field values.
//! When the writer falls behind by more than 64k lines, lines are dropped
//! rather than blocking admission (counted in `rampart_log_lines_dropped`).

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use rampart_admission::decision::Hit;

/// Keeps the log writer alive; flush happens when it drops.
pub struct LogGuard {
    _guard: WorkerGuard,
}

/// Writer of decision lines. Cloning is cheap.
#[derive(Clone)]
pub struct DecisionLog {
    writer: Option<NonBlocking>,
}

impl DecisionLog {
    /// A log that writes nothing.
    pub fn disabled() -> Self {
        Self { writer: None }
    }

    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, |w| w.error_counter().dropped_lines())
    }

    pub fn write(&self, record: &DecisionRecord<'_>) {
        let Some(writer) = &self.writer else { return };
        let mut line = Vec::with_capacity(512);
        if serde_json::to_writer(&mut line, record).is_ok() {
            line.push(b'\n');
            // One write per line: the background thread never splits it.
            let _ = writer.clone().write_all(&line);
        }
    }
}

/// Sets up `tracing` (JSON, filtered by `filter`, e.g. `info` or
/// `rampart_admission=debug`) and the decision log on stderr.
pub fn init(filter: &str, decisions: bool) -> Result<(LogGuard, DecisionLog)> {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .thread_name("rampart-log")
        .finish(std::io::stderr());
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {filter:?}: {e}"))?;
    // A second init in one process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .try_init();
    let log = DecisionLog {
        writer: decisions.then_some(writer),
    };
    Ok((LogGuard { _guard: guard }, log))
}

/// One admission decision.
#[derive(Serialize)]
pub struct DecisionRecord<'a> {
    pub timestamp: Timestamp,
    pub level: &'static str,
    pub target: &'static str,
    pub message: &'static str,
    pub endpoint: &'static str,
    pub uid: &'a str,
    pub user: &'a str,
    pub groups: &'a [Cow<'a, str>],
    pub operation: &'static str,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub subresource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub name: &'a str,
    pub dry_run: bool,
    /// allowed, denied, patched, excluded, unmatched, timeout.
    pub result: &'static str,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Rules that reported something, with their mode.
    pub rules: &'a [Hit],
    #[serde(skip_serializing_if = "<[Arc<str>]>::is_empty")]
    pub mutated_by: &'a [Arc<str>],
    pub patch_ops: usize,
    pub warnings: usize,
    /// The denial message (rule findings; never object data beyond names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub latency_us: u64,
}

/// Wall-clock time rendered as RFC 3339 UTC with microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    pub fn now() -> Self {
        Self(SystemTime::now())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}", Rfc3339(self.0)))
    }
}

struct Rfc3339(SystemTime);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, day) = civil_from_days(days as i64);
        write!(
            f,
            "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            d.subsec_micros()
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(Rfc3339(t).to_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            Rfc3339(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Rfc3339(leap).to_string(), "2000-02-29T00:00:00.000000Z");
    }
}
