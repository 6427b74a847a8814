//! Infobip Billing Usage API → Prometheus and OpenTelemetry.
//!
//! Module map (one domain concept each, see `docs/` and the README):
//! - [`config`]: the YAML configuration, strict, with one `validate()`.
//! - [`calendar`]: the UTC billing calendar, retention, exclusive windows, the clock.
//! - [`infobip`]: the upstream wire types and the HTTP client.
//! - [`scheduler`]: what to query when, the pending table.
//! - [`callback`]: the webhook receiver for results.
//! - [`labels`]: label strings held once and referred to by id; sums keyed by ids.
//! - [`ledger`]: the billing facts, replaced per covered day.
//! - [`snapshot`]: the series a scrape encodes, built from the ledger, immutable.
//! - [`state`]: the state file (ledger and pending table), written atomically.
//! - [`collector`]: encodes the snapshot as Prometheus text and OpenMetrics.
//! - [`otlp`]: pushes the same data metrics over OTLP (gRPC or HTTP/protobuf).
//! - [`selfmetrics`]: the exporter's own metrics.
//! - [`server`]: the internal web listener and the public callback listener.
//! - [`simulator`]: a Billing Usage API simulator for tests and the demo.
//! - [`demo`]: simulator and exporter wired on loopback.
//! - [`oneshot`]: target selection and the short-lived callback listener of one-shot commands.
//! - [`query`]: one Billing Usage query from the terminal, as a table, CSV or JSON.
//! - [`backfill`]: the retention window as OpenMetrics for `promtool tsdb create-blocks-from`.
#![forbid(unsafe_code)]

pub mod backfill;
pub mod calendar;
pub mod callback;
pub mod cli;
pub mod collector;
pub mod config;
pub mod demo;
pub mod exporter;
pub mod infobip;
pub mod labels;
pub mod ledger;
pub mod oneshot;
pub mod otlp;
pub mod query;
pub mod scheduler;
pub mod selfmetrics;
pub mod server;
pub mod simulator;
pub mod snapshot;
pub mod state;
