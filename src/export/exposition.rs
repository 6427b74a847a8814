//! The one exposition encoder: Prometheus text (0.0.4) and OpenMetrics for `/metrics`, and
//! timestamped OpenMetrics for `backfill`. Nothing here calls Infobip: each segment's series are
//! encoded once, when the segment is built; a scrape concatenates them and appends the
//! exporter's own metrics.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::billing::snapshot::{CostSeries, Kind, SegmentSnapshot, Snapshot};

pub const PREFIX: &str = "infobip_billing";

// HELP texts stay one short ASCII line (under 160 characters with `# HELP` and the name);
// docs/metrics.md says the rest.

const COST_HELP: &str = "Cost of one UTC day as billed by Infobip, in the currency label's unit; never sum across currencies.";

const MONTH_COST_HELP: &str = "Month-to-date cost per calendar month, in the currency label's unit; never sum across currencies.";

const QUANTITY_HELP: &str = "Billed units of one UTC day, in the unit label's unit; series of different units do not add up.";

const FORECAST_HELP: &str = "Projected month-end cost of the current month from its complete days, in the currency label's unit.";

const BUDGET_HELP: &str =
    "Monthly budget amount from the configuration, in the currency label's unit.";

const BUDGET_USED_HELP: &str =
    "Month-to-date cost that a budget matches, in its currency only, over its monthly amount.";

const FINALIZED_HELP: &str =
    "1 once Infobip reported the month's figures final (volumeFinalized), 0 before.";

const ACCOUNT_INFO_HELP: &str =
    "Joins an account name to its stable ACCOUNT_KEY; the value is always 1.";

/// Every data metric: (name without the prefix, HELP), in exposition order.
const DATA_METRICS: [(&str, &str); 8] = [
    ("cost", COST_HELP),
    ("month_cost", MONTH_COST_HELP),
    ("quantity", QUANTITY_HELP),
    ("month_forecast_cost", FORECAST_HELP),
    ("budget", BUDGET_HELP),
    ("budget_used_ratio", BUDGET_USED_HELP),
    ("month_finalized", FINALIZED_HELP),
    ("account_info", ACCOUNT_INFO_HELP),
];

/// Every data metric: (full name, HELP), in exposition order. OTLP registers one instrument each.
pub fn data_metrics() -> Vec<(String, &'static str)> {
    DATA_METRICS
        .iter()
        .map(|(name, help)| (format!("{PREFIX}_{name}"), *help))
        .collect()
}

/// One metric family as both /metrics and OTLP export it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full name, e.g. `infobip_billing_cost`.
    pub name: String,
    pub help: &'static str,
    pub points: Vec<Point>,
}

/// One series of a family: label pairs and the value, converted from `Decimal` only here.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Receives data metrics from the walks below: a family, then per series its labels in order
/// and its value. [`families`] (OTLP) and the text encoder (/metrics, backfill) are both sinks,
/// so the label names, their order and the values cannot drift between them.
trait Sink {
    /// Starts a family that has at least one series; `name` is without the prefix.
    fn family(&mut self, name: &'static str, help: &'static str);
    fn label(&mut self, name: &str, value: &str);
    /// Ends the series whose labels came before; a timestamp (Unix seconds) only in backfills.
    fn value(&mut self, value: f64, at: Option<i64>);
}

/// The family of a kind of cost series, and the label its period goes in.
fn cost_family(kind: Kind) -> ((&'static str, &'static str), &'static str) {
    match kind {
        Kind::Cost => (DATA_METRICS[0], "day"),
        Kind::MonthCost => (DATA_METRICS[1], "month"),
        Kind::Quantity => (DATA_METRICS[2], "day"),
        Kind::Forecast => (DATA_METRICS[3], "month"),
    }
}

/// The series of one kind, without the family's HELP and TYPE.
fn costs<'a>(
    sink: &mut impl Sink,
    kind: Kind,
    series: impl IntoIterator<Item = (&'a CostSeries, Option<i64>)>,
    dimension_labels: &[String],
) {
    let period_label = cost_family(kind).1;
    for (s, at) in series {
        sink.label("target", &s.target);
        sink.label("account", &s.account);
        sink.label("category", &s.category);
        sink.label("channel", &s.channel);
        sink.label("currency", &s.currency);
        if let Some(unit) = &s.unit {
            sink.label("unit", unit);
        }
        for (k, v) in dimension_labels.iter().zip(&s.dimensions) {
            sink.label(k, v);
        }
        sink.label(period_label, &s.period);
        if let Some(status) = s.status {
            sink.label("status", status.as_str());
        }
        sink.value(to_f64(s.value), at);
    }
}

/// The families built from every segment: budgets, finalization, accounts.
fn cross(snapshot: &Snapshot, sink: &mut impl Sink) {
    let [.., budget, used, finalized, accounts] = DATA_METRICS;
    if !snapshot.budgets.is_empty() {
        sink.family(budget.0, budget.1);
        for b in &snapshot.budgets {
            sink.label("budget", &b.name);
            sink.label("currency", &b.currency);
            for (k, v) in &b.matcher {
                sink.label(k, v);
            }
            sink.value(to_f64(b.monthly), None);
        }
        sink.family(used.0, used.1);
        for b in &snapshot.budgets {
            sink.label("budget", &b.name);
            sink.label("currency", &b.currency);
            sink.value(to_f64(b.used_ratio()), None);
        }
    }
    if !snapshot.finalized.is_empty() {
        sink.family(finalized.0, finalized.1);
        for (target, month, done) in &snapshot.finalized {
            sink.label("target", target);
            sink.label("month", &month.to_string());
            sink.value(if *done { 1.0 } else { 0.0 }, None);
        }
    }
    if !snapshot.accounts.is_empty() {
        sink.family(accounts.0, accounts.1);
        for (target, account, key) in &snapshot.accounts {
            sink.label("target", target);
            sink.label("account", account);
            sink.label("account_key", key);
            sink.value(1.0, None);
        }
    }
}

fn to_f64(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Every data metric of a snapshot, in exposition order. Families without series are left out.
pub fn families(snapshot: &Snapshot) -> Vec<Family> {
    #[derive(Default)]
    struct Families {
        out: Vec<Family>,
        labels: Vec<(String, String)>,
    }
    impl Sink for Families {
        fn family(&mut self, name: &'static str, help: &'static str) {
            self.out.push(Family {
                name: format!("{PREFIX}_{name}"),
                help,
                points: Vec::new(),
            });
        }
        fn label(&mut self, name: &str, value: &str) {
            self.labels.push((name.to_owned(), value.to_owned()));
        }
        fn value(&mut self, value: f64, _at: Option<i64>) {
            let labels = std::mem::take(&mut self.labels);
            if let Some(family) = self.out.last_mut() {
                family.points.push(Point { labels, value });
            }
        }
    }
    let mut sink = Families::default();
    for kind in Kind::ALL {
        if snapshot.series(kind).next().is_some() {
            let (name, help) = cost_family(kind).0;
            sink.family(name, help);
            costs(
                &mut sink,
                kind,
                snapshot.series(kind).map(|s| (s, None)),
                &snapshot.dimension_labels,
            );
        }
    }
    cross(snapshot, &mut sink);
    sink.out
}

/// The text encoder: valid Prometheus text 0.0.4 and OpenMetrics alike, since every family is a
/// gauge, label values are escaped alike in both, and no HELP text holds a character either
/// format escapes.
struct Text<'o> {
    out: &'o mut String,
    name: &'static str,
    /// Whether the current series' `{` is written.
    open: bool,
}

impl<'o> Text<'o> {
    /// Appends series of the family `name` to `out`.
    fn new(out: &'o mut String, name: &'static str) -> Self {
        Self {
            out,
            name,
            open: false,
        }
    }

    fn push_name(&mut self) {
        self.out.push_str(PREFIX);
        self.out.push('_');
        self.out.push_str(self.name);
    }
}

impl Sink for Text<'_> {
    fn family(&mut self, name: &'static str, help: &'static str) {
        self.name = name;
        self.out.push_str("# HELP ");
        self.push_name();
        self.out.push(' ');
        self.out.push_str(help);
        self.out.push_str("\n# TYPE ");
        self.push_name();
        self.out.push_str(" gauge\n");
    }
    fn label(&mut self, name: &str, value: &str) {
        if self.open {
            self.out.push(',');
        } else {
            self.push_name();
            self.out.push('{');
            self.open = true;
        }
        self.out.push_str(name);
        self.out.push_str("=\"");
        push_escaped(self.out, value);
        self.out.push('"');
    }
    fn value(&mut self, value: f64, at: Option<i64>) {
        if self.open {
            self.out.push('}');
        } else {
            self.push_name();
        }
        self.open = false;
        self.out.push(' ');
        // dtoa, as prometheus-client formats gauges: `1.0`, `2.42`.
        match value {
            v if v.is_finite() => self.out.push_str(dtoa::Buffer::new().format_finite(v)),
            v if v.is_nan() => self.out.push_str("NaN"),
            v if v > 0.0 => self.out.push_str("+Inf"),
            _ => self.out.push_str("-Inf"),
        }
        if let Some(at) = at {
            self.out.push(' ');
            self.out.push_str(&at.to_string());
        }
        self.out.push('\n');
    }
}

/// One segment's series as exposition lines, per kind, without HELP and TYPE: encoded once when
/// the segment is built, so that a scrape only copies them.
#[derive(Debug, Default)]
pub struct SegmentText([String; 4]);

impl SegmentText {
    pub fn encode(segment: &SegmentSnapshot, dimension_labels: &[String]) -> Self {
        Self(Kind::ALL.map(|kind| {
            let mut out = String::new();
            let mut sink = Text::new(&mut out, cost_family(kind).0.0);
            costs(
                &mut sink,
                kind,
                segment.series(kind).iter().map(|s| (s, None)),
                dimension_labels,
            );
            // Growth by doubling can leave up to half of a large text unused for its life.
            out.shrink_to_fit();
            out
        }))
    }
}

/// A snapshot and its data metrics as text: what a scrape serves and the OTLP pusher reads.
#[derive(Debug, Default)]
pub struct Exposition {
    pub snapshot: Snapshot,
    /// Per segment of the snapshot, in its order.
    segments: Vec<Arc<SegmentText>>,
    /// The families built from every segment, HELP and TYPE included.
    cross: String,
}

impl Exposition {
    /// Encodes the segments `previous` does not already hold (by identity: a segment not built
    /// again is the same `Arc`) and the parts built from every segment.
    pub fn new(snapshot: Snapshot, previous: &Exposition) -> Self {
        let segments = snapshot
            .segments
            .iter()
            .map(|segment| {
                previous
                    .snapshot
                    .segments
                    .iter()
                    .position(|old| Arc::ptr_eq(old, segment))
                    .and_then(|i| previous.segments.get(i))
                    .map(Arc::clone)
                    .unwrap_or_else(|| {
                        Arc::new(SegmentText::encode(segment, &snapshot.dimension_labels))
                    })
            })
            .collect();
        let mut cross_text = String::new();
        cross(&snapshot, &mut Text::new(&mut cross_text, ""));
        Self {
            snapshot,
            segments,
            cross: cross_text,
        }
    }

    /// The data metrics: per kind its HELP and TYPE and every segment's lines, then the rest.
    pub fn write(&self, out: &mut String) {
        for kind in Kind::ALL {
            if self.segments.iter().all(|s| s.0[kind.index()].is_empty()) {
                continue;
            }
            let (name, help) = cost_family(kind).0;
            Text::new(out, name).family(name, help);
            for segment in &self.segments {
                out.push_str(&segment.0[kind.index()]);
            }
        }
        out.push_str(&self.cross);
    }

    /// Bytes of text the data metrics take, for sizing a scrape's buffer.
    fn text_len(&self) -> usize {
        let bodies: usize = self
            .segments
            .iter()
            .flat_map(|s| s.0.iter())
            .map(String::len)
            .sum();
        bodies + self.cross.len() + 4 * 1024
    }
}

/// Timestamped samples of one kind as OpenMetrics for a backfill: each series contiguous and in
/// time order, as the OpenMetrics parser of `promtool tsdb create-blocks-from` expects.
pub fn encode_samples(
    out: &mut String,
    kind: Kind,
    samples: &mut [(CostSeries, i64)],
    dimension_labels: &[String],
) {
    if samples.is_empty() {
        return;
    }
    samples.sort_by(|(a, at), (b, bt)| {
        let labels = |s: &CostSeries| {
            (
                s.target.clone(),
                s.account.clone(),
                s.category.clone(),
                s.channel.clone(),
                s.currency.clone(),
                s.unit.clone(),
                s.dimensions.clone(),
                s.period.clone(),
                s.status,
            )
        };
        labels(a).cmp(&labels(b)).then(at.cmp(bt))
    });
    let (name, help) = cost_family(kind).0;
    let mut sink = Text::new(out, name);
    sink.family(name, help);
    costs(
        &mut sink,
        kind,
        samples.iter().map(|(s, at)| (s, Some(*at))),
        dimension_labels,
    );
}

/// Escapes a label value as both text formats do (`\\`, `\"`, `\n`).
fn push_escaped(out: &mut String, value: &str) {
    let mut rest = value;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// The exposition formats a scrape can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: what `promtool check metrics` reads and the default.
    Text,
    OpenMetrics,
}

impl Format {
    /// Picks OpenMetrics only when the scraper asks for it.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The scrape response: the data metrics as encoded when their segments were built, then the
/// exporter's own metrics from `registry`.
pub fn render(
    exposition: &Exposition,
    registry: &Registry,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(exposition.text_len() + 16 * 1024);
    exposition.write(&mut out);
    match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?,
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::ledger::SegmentKey;
    use crate::billing::ledger::Status;
    use crate::billing::snapshot::BudgetSeries;
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::MetricType;
    use prometheus_client::metrics::gauge::ConstGauge;

    /// The families through prometheus-client's own encoders: what /metrics served before the
    /// data metrics were pre-encoded, and the reference they must still match byte for byte.
    #[derive(Debug)]
    struct Reference(Vec<Family>);

    impl Collector for Reference {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for f in &self.0 {
                let mut metric =
                    encoder.encode_descriptor(&f.name, f.help, None, MetricType::Gauge)?;
                for point in &f.points {
                    let labels: Vec<(&str, &str)> = point
                        .labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    ConstGauge::new(point.value).encode(metric.encode_family(&labels)?)?;
                }
            }
            Ok(())
        }
    }

    fn series(account: &str, value: &str, unit: Option<&str>) -> CostSeries {
        CostSeries {
            target: "eu".into(),
            account: account.into(),
            category: "SMS".into(),
            channel: "sms".into(),
            currency: "EUR".into(),
            unit: unit.map(Into::into),
            dimensions: vec!["A2P".into()],
            period: "2026-11-02".into(),
            status: Some(Status::Provisional),
            value: value.parse().unwrap(),
        }
    }

    fn snapshot() -> Snapshot {
        let odd = "Acme \"Retail\" \\ EU\nline two";
        let segment = SegmentSnapshot {
            key: SegmentKey::new("eu", "2026-11".parse().unwrap()),
            finalized: true,
            wants: false,
            results_applied: 1,
            last_result_at: None,
            series: [
                vec![
                    series(odd, "86.69", None),
                    series("B", "1", None),
                    series("C", "-0.10", None),
                    series("D", "12345678901234567890.5", None),
                    series("E", "0.000000001", None),
                ],
                vec![series("B", "1000000", None)],
                vec![series("B", "12040", Some("message part"))],
                vec![CostSeries {
                    status: None,
                    ..series("B", "33.333", None)
                }],
            ],
            needs: [0; 4],
            shares: [0; 4],
            rolled_up: 0,
            budget_used: Vec::new(),
            accounts: Vec::new(),
        };
        Snapshot {
            dimension_labels: vec!["traffic_type".into()],
            segments: vec![Arc::new(segment)],
            budgets: vec![BudgetSeries {
                name: "sms".into(),
                currency: "EUR".into(),
                matcher: vec![("channel", "sms".into())],
                monthly: "500".parse().unwrap(),
                used: "12.5".parse().unwrap(),
            }],
            finalized: vec![("eu".into(), "2026-11".parse().unwrap(), true)],
            accounts: vec![("eu".into(), odd.into(), "K".into())],
            ..Snapshot::default()
        }
    }

    #[test]
    fn encodes_byte_for_byte_as_prometheus_client_in_both_formats() {
        let snap = Exposition::new(snapshot(), &Exposition::default());
        let mut reference = Registry::default();
        reference.register_collector(Box::new(Reference(families(&snap.snapshot))));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &reference).unwrap();
        let mut open = String::new();
        prometheus_client::encoding::text::encode(&mut open, &reference).unwrap();

        let empty = Registry::default();
        assert_eq!(render(&snap, &empty, Format::Text).unwrap(), text);
        assert_eq!(render(&snap, &empty, Format::OpenMetrics).unwrap(), open);
        assert!(text.contains(r#"account="Acme \"Retail\" \\ EU\nline two""#));
        assert_eq!(families(&snap.snapshot).len(), DATA_METRICS.len());
    }

    #[test]
    fn help_texts_need_no_escaping_in_either_format() {
        for (name, help) in DATA_METRICS {
            assert!(!help.contains(['\\', '"', '\n']), "{name}");
        }
    }
}
