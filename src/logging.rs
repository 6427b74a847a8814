//! The log lines on stderr, as Prometheus exporters print them: `--log.level` (debug, info,
//! warn, error; `RUST_LOG`, when set, wins) and `--log.format` logfmt (the default) or json, on
//! every subcommand.
//!
//! Both formats carry the same keys in the same order: `ts` (UTC, milliseconds), `level`, `msg`,
//! then the event's own fields (`target`, `month`, `request_id`, …) at top level:
//!
//! ```text
//! ts=2026-11-26T09:00:00.123Z level=info msg="result applied" target=eu month=2026-11 request_id=f3a1 days=26
//! {"ts":"2026-11-26T09:00:00.123Z","level":"info","msg":"result applied","target":"eu","month":"2026-11","request_id":"f3a1","days":26}
//! ```
//!
//! A small formatter of our own rather than tracing-logfmt: that crate writes `message=` after
//! the fields and cannot rename it, and the JSON lines must have the very same layout. Errors
//! recorded as fields are printed with [`crate::errors::chain`].

use std::fmt;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// How much is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// The logging flags, global: they go before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log lines at this level and above. RUST_LOG, when set, wins (e.g. RUST_LOG=debug for the
    /// libraries' debug lines too).
    #[arg(id = "log.level", long = "log.level", value_enum, default_value_t = LogLevel::Info, global = true, value_name = "LEVEL")]
    pub level: LogLevel,
    /// Log lines as logfmt or as one JSON object per line.
    #[arg(id = "log.format", long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true, value_name = "FORMAT")]
    pub format: LogFormat,
}

/// Installs the process-wide subscriber writing to stderr.
pub fn init(args: &LogArgs) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, rejected) = filter(args.level, rust_log.as_deref());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(Lines(args.format))
        .with_writer(std::io::stderr)
        .init();
    if let Some(spec) = rejected {
        tracing::warn!(
            rust_log = spec,
            "RUST_LOG is not a valid filter; --log.level applies"
        );
    }
}

/// A subscriber writing to `writer`, for tests of the line format.
pub fn subscriber<W>(args: &LogArgs, writer: W) -> impl Subscriber + Send + Sync + use<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter(args.level, None).0)
        .event_format(Lines(args.format))
        .with_writer(writer)
        .finish()
}

/// `RUST_LOG` when set and valid, else `level`: the exporter's own modules at `level`, and at
/// debug the libraries stay at info (their debug lines are many and rarely what is wanted).
/// Also returns a `RUST_LOG` that was rejected.
fn filter(level: LogLevel, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let mut rejected = None;
    if let Some(spec) = rust_log.filter(|s| !s.trim().is_empty()) {
        match EnvFilter::try_new(spec) {
            Ok(filter) => return (filter, None),
            Err(_) => rejected = Some(spec.to_owned()),
        }
    }
    let directives = match level {
        LogLevel::Debug => "info,infobip_billing_exporter=debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    (EnvFilter::new(directives), rejected)
}

/// The end of a failed command: `error: …` for people with logfmt, a JSON line with json. It is
/// written directly, so no filter can hide it.
pub fn report_failure(format: LogFormat, err: &anyhow::Error) {
    let message = format!("{err:#}");
    let text = match format {
        LogFormat::Logfmt => format!("error: {message}\n"),
        LogFormat::Json => {
            let mut line = String::new();
            let record = Record {
                level: Level::ERROR,
                msg: message,
                fields: Vec::new(),
            };
            // Writing to a String cannot fail.
            let _ = record.json(&mut line);
            line
        }
    };
    let _ = std::io::stderr().write_all(text.as_bytes());
}

struct Lines(LogFormat);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut visitor = Collect::default();
        event.record(&mut visitor);
        let msg = match visitor.message {
            Some(msg) if !msg.is_empty() => msg,
            // The OpenTelemetry SDK's own events name themselves and leave the message empty.
            _ => event.metadata().name().to_owned(),
        };
        let record = Record {
            level: *event.metadata().level(),
            msg,
            fields: visitor.fields,
        };
        match self.0 {
            LogFormat::Logfmt => record.logfmt(&mut writer),
            LogFormat::Json => record.json(&mut writer),
        }
    }
}

enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Default)]
struct Collect {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl Collect {
    fn push(&mut self, field: &Field, value: Value) {
        let name = field.name();
        // tracing-log's copies of a `log` record's metadata.
        if name.starts_with("log.") {
            return;
        }
        if name == "message" {
            self.message = Some(match value {
                Value::Str(s) => s,
                _ => String::new(),
            });
            return;
        }
        // The line's own keys come first; a field of the same name is kept, renamed.
        let key = match name {
            "ts" | "level" | "msg" => format!("field_{name}"),
            _ => name.to_owned(),
        };
        self.fields.push((key, value));
    }
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Str(crate::errors::chain(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
}

struct Record {
    level: Level,
    msg: String,
    fields: Vec<(String, Value)>,
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn now() -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_default()
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl Record {
    fn logfmt(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write!(
            out,
            "ts={} level={} msg={}",
            now(),
            level_name(self.level),
            logfmt_value(&self.msg)
        )?;
        for (key, value) in &self.fields {
            let key: String = key
                .chars()
                .map(|c| {
                    if c <= ' ' || c == '=' || c == '"' {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            match value {
                Value::Str(s) => write!(out, " {key}={}", logfmt_value(s))?,
                Value::I64(n) => write!(out, " {key}={n}")?,
                Value::U64(n) => write!(out, " {key}={n}")?,
                Value::F64(n) => write!(out, " {key}={n}")?,
                Value::Bool(b) => write!(out, " {key}={b}")?,
            }
        }
        out.write_char('\n')
    }

    fn json(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write!(
            out,
            "{{\"ts\":\"{}\",\"level\":\"{}\",\"msg\":{}",
            now(),
            level_name(self.level),
            json_string(&self.msg)
        )?;
        for (key, value) in &self.fields {
            let value = match value {
                Value::Str(s) => json_string(s),
                Value::I64(n) => n.to_string(),
                Value::U64(n) => n.to_string(),
                Value::F64(n) => serde_json::Number::from_f64(*n)
                    .map_or_else(|| json_string(&n.to_string()), |n| n.to_string()),
                Value::Bool(b) => b.to_string(),
            };
            write!(out, ",{}:{value}", json_string(key))?;
        }
        out.write_str("}\n")
    }
}

/// A logfmt value: bare when it can be, else quoted with JSON's escapes (as go-logfmt does).
fn logfmt_value(s: &str) -> String {
    let bare = !s.is_empty()
        && !s
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
    if bare { s.to_owned() } else { json_string(s) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(format: LogFormat, level: LogLevel, log: impl FnOnce()) -> Vec<String> {
        let buf = Buf::default();
        let writer = buf.clone();
        let args = LogArgs { level, format };
        tracing::subscriber::with_default(subscriber(&args, move || writer.clone()), log);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn sample() {
        let err = std::io::Error::other("disk \"full\"");
        tracing::info!(
            target = "eu",
            month = "2026-11",
            days = 3_u64,
            "result applied"
        );
        tracing::warn!(
            target = "eu",
            error = &err as &dyn std::error::Error,
            "write failed"
        );
        tracing::debug!("hidden at info");
    }

    #[test]
    fn logfmt_quotes_only_what_needs_it() {
        let got = lines(LogFormat::Logfmt, LogLevel::Info, sample);
        assert_eq!(got.len(), 2, "{got:?}");
        let first = got[0].split_once(' ').unwrap().1;
        assert_eq!(
            first,
            "level=info msg=\"result applied\" target=eu month=2026-11 days=3"
        );
        assert!(got[0].starts_with("ts=20"), "{}", got[0]);
        assert!(
            got[1]
                .ends_with("level=warn msg=\"write failed\" target=eu error=\"disk \\\"full\\\"\""),
            "{}",
            got[1]
        );
    }

    #[test]
    fn json_has_the_fields_at_top_level() {
        let got = lines(LogFormat::Json, LogLevel::Debug, sample);
        assert_eq!(got.len(), 3, "{got:?}");
        let first: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(first["level"], "info");
        assert_eq!(first["msg"], "result applied");
        assert_eq!(first["target"], "eu");
        assert_eq!(first["month"], "2026-11");
        assert_eq!(first["days"], 3);
        let second: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
        assert_eq!(second["error"], "disk \"full\"");
    }

    #[test]
    fn level_hides_what_is_below() {
        let got = lines(LogFormat::Logfmt, LogLevel::Warn, sample);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("level=warn"), "{got:?}");
    }

    #[test]
    fn rust_log_wins_unless_invalid() {
        let (chosen, rejected) = filter(LogLevel::Error, Some("debug"));
        assert_eq!(chosen.to_string(), "debug");
        assert!(rejected.is_none());
        let (chosen, rejected) = filter(LogLevel::Warn, Some("=x=[}"));
        assert_eq!(chosen.to_string(), "warn");
        assert_eq!(rejected.as_deref(), Some("=x=[}"));
    }
}
