//! Infobip Billing Usage API → Prometheus and OpenTelemetry.
//!
//! Module map, folders by layer, each importing only the layers below it (see
//! `docs/architecture.md`):
//! - [`commands`]: the subcommands that are not the daemon.
//!   - [`commands::query`]: one Billing Usage query from the terminal, as a table, CSV, JSON,
//!     FOCUS or XLSX.
//!   - [`commands::render`]: `query`'s output in each format, and its notes for stderr.
//!   - [`commands::backfill`]: the retention window as OpenMetrics for `promtool tsdb
//!     create-blocks-from`, or as FOCUS or XLSX.
//!   - [`commands::output`]: what `query` and `backfill` share to write their exports: a
//!     result as typed rows, its final months, a file replaced atomically.
//!   - [`commands::demo`]: simulator and exporter wired on loopback.
//!   - [`commands::oneshot`]: target selection and the short-lived callback listener of one-shot
//!     commands.
//! - [`daemon`]: the running exporter, wired together in its `start`.
//!   - [`daemon::scheduler`]: what to query when.
//!   - [`daemon::pending`]: the pending table of queries sent, found by their secret token.
//!   - [`daemon::callback`]: the webhook receiver for results.
//!   - [`daemon::server`]: the internal web listener and the public callback listener: the
//!     accept loop with its timeouts and connection bound, TLS, basic auth.
//!   - [`daemon::shared`]: what the query loops, the callback receiver and the scrape handler
//!     share.
//!   - [`daemon::store`]: the ledger, its snapshot and its files behind one writer thread.
//! - [`export`]: what leaves the process.
//!   - [`export::exposition`]: the one Prometheus text and OpenMetrics encoder.
//!   - [`export::otlp`]: pushes the same data metrics over OTLP (gRPC or HTTP/protobuf).
//!   - [`export::selfmetrics`]: the exporter's own metrics.
//!   - [`export::sheet`]: usage rows as typed values, the text table and RFC 4180 CSV.
//!   - [`export::focus`]: the FOCUS 1.2 row mapping (docs/focus.md).
//!   - [`export::xlsx`]: the XLSX workbook of usage rows and their totals.
//! - [`billing`]: the domain, without I/O.
//!   - [`billing::calendar`]: the UTC billing calendar, retention, exclusive windows, the clock.
//!   - [`billing::labels`]: label strings held once and referred to by id; sums keyed by ids.
//!   - [`billing::ledger`]: the billing facts in segments per target and month, replaced per
//!     covered day.
//!   - [`billing::snapshot`]: the series of each segment, capped, and what depends on them all.
//!   - [`billing::state`]: the segment file format.
//! - [`infobip`]: the upstream: wire types, the streaming result decoder, the HTTP client.
//! - [`config`]: the YAML configuration, strict, with one `validate()`.
//!   - [`config::webconfig`]: the exporter-toolkit web configuration file (TLS, basic auth).
//! - [`simulator`]: a Billing Usage API simulator for tests and the demo.
//! - [`logging`]: the log lines on stderr, logfmt or JSON, and the final error of a command.
//! - [`errors`]: the one convention for printing an error and its causes, each once.
#![forbid(unsafe_code)]

pub mod billing;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod errors;
pub mod export;
pub mod infobip;
pub mod logging;
pub mod simulator;
