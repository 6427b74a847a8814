//! Encodes the current ledger snapshot as Prometheus text (0.0.4) or OpenMetrics. Nothing here
//! calls Infobip: a scrape only reads the immutable snapshot that the last result produced.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use rust_decimal::prelude::ToPrimitive;
use tokio::sync::watch;

use crate::ledger::{CostSeries, Snapshot};

pub const PREFIX: &str = "infobip_billing";

const COST_HELP: &str = "Cost of one UTC day as billed by Infobip (TOTAL_PER_UNIT summed), in the \
unit of the currency label; never add series of different currencies. Cached from the last \
Billing Usage API result (see infobip_billing_exporter_last_success_timestamp_seconds); \
status=provisional figures may still change until the month is final.";

const MONTH_COST_HELP: &str = "Month-to-date cost per calendar month in retention, as billed by \
Infobip, in the unit of the currency label; never add series of different currencies. Cached \
from the last Billing Usage API result; status=final once Infobip reports volumeFinalized.";

/// Reads the latest snapshot at scrape time.
#[derive(Debug)]
pub struct SnapshotCollector {
    snapshot: watch::Receiver<Arc<Snapshot>>,
}

impl SnapshotCollector {
    pub fn new(snapshot: watch::Receiver<Arc<Snapshot>>) -> Self {
        Self { snapshot }
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = Arc::clone(&self.snapshot.borrow());
        encode_costs(&mut encoder, "cost", COST_HELP, "day", &snapshot.days)?;
        encode_costs(
            &mut encoder,
            "month_cost",
            MONTH_COST_HELP,
            "month",
            &snapshot.months,
        )
    }
}

fn encode_costs(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    period_label: &'static str,
    series: &[CostSeries],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let name = format!("{PREFIX}_{name}");
    let mut family = encoder.encode_descriptor(&name, help, None, MetricType::Gauge)?;
    for s in series {
        let labels = [
            ("target", s.target.as_str()),
            ("account", s.account.as_str()),
            ("category", s.category.as_str()),
            ("channel", s.channel.as_str()),
            ("currency", s.currency.as_str()),
            (period_label, s.period.as_str()),
            ("status", s.status.as_str()),
        ];
        let value = s.cost.to_f64().unwrap_or(f64::NAN);
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(value);
        gauge.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
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

pub fn render(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(64 * 1024);
    match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?,
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry)?,
    }
    Ok(out)
}
