//! `backfill`: the whole retention window as an OpenMetrics file for
//! `promtool tsdb create-blocks-from openmetrics`, so a new Prometheus has history on day one;
//! or, with `--format focus` or `xlsx`, as the FOCUS or XLSX file of `query` (one charge row per
//! usage row, grouped as the daemon groups: the figures of `/metrics`).
//!
//! One query per month in retention, each asked once (the file is a one-off, so a final month is
//! never asked again). Results go through the daemon's decoder, ledger and collector, so the
//! names and labels are those of `/metrics`. Each complete UTC day gets one sample per series,
//! stamped at the day's last whole second, 23:59:59 UTC: inside the day its `day` label names,
//! exact in OpenMetrics' float seconds, and what an instant query at that time sees.
//! `infobip_billing_month_cost` gets one sample per day too: the month-to-date cost at that
//! day's end. Today is left out: it is incomplete, and the running exporter serves it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use time::Date;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, DayRange, YearMonth, retention_months, retention_start};
use crate::billing::ledger::{Ledger, Restatement, SegmentKey};
use crate::billing::snapshot::{CostSeries, Kind, Snapshot, View};
use crate::commands::oneshot::{
    self, CallbackArgs, OneShotError, Phase, Receiver, Target, TargetArgs,
};
use crate::commands::output::{self, RowsError, WriteError};
use crate::config::TargetConfig;
use crate::daemon::scheduler::AGGREGATE_BY;
use crate::daemon::store::{read_filters, read_segments};
use crate::export::exposition;
use crate::export::focus::{self, Billing, FocusError};
use crate::export::sheet::{Sheet, Value};
use crate::export::xlsx::{self, WorkbookError};
use crate::infobip::filters::UsageFilter;
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageResult, QueryBillingUsageApiRequest,
};
use crate::infobip::result::{self, DecodeError, Outcome};

/// What `backfill` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackfillFormat {
    /// Timestamped OpenMetrics for `promtool tsdb create-blocks-from openmetrics`.
    Openmetrics,
    /// FOCUS 1.2 CSV (docs/focus.md); with --config, days of final months that changed since
    /// the daemon stored them are marked ChargeClass Correction.
    Focus,
    /// An XLSX workbook: the rows as typed cells, and a totals sheet.
    Xlsx,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    /// Write the file here (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value_t = BackfillFormat::Openmetrics)]
    pub format: BackfillFormat,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub callback: CallbackArgs,
}

/// Why a backfill failed; `reason()` is a bounded label.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    OneShot(#[from] OneShotError),
    #[error("month {month}: {cause}")]
    Month {
        month: YearMonth,
        cause: OneShotError,
    },
    #[error("month {month}: the result cannot be used: {cause}")]
    Decode {
        month: YearMonth,
        cause: DecodeError,
    },
    #[error("month {month}: Infobip could not run the query: {message}")]
    Failed { month: YearMonth, message: String },
    #[error("month {month}: {cause}")]
    Rows { month: YearMonth, cause: RowsError },
    #[error(transparent)]
    Focus(#[from] FocusError),
    #[error(transparent)]
    Xlsx(#[from] WorkbookError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("a query task stopped unexpectedly: {0}")]
    Task(String),
}

impl BackfillError {
    pub fn reason(&self) -> &'static str {
        match self {
            BackfillError::OneShot(e) | BackfillError::Month { cause: e, .. } => e.reason(),
            BackfillError::Decode { cause, .. } => cause.reason(),
            BackfillError::Failed { .. }
            | BackfillError::Rows {
                cause: RowsError::Failed(_),
                ..
            } => "failed_result",
            BackfillError::Rows { .. } => "unusable_result",
            BackfillError::Focus(_) | BackfillError::Xlsx(_) => "export",
            BackfillError::Write(_) => "write",
            BackfillError::Task(_) => "internal",
        }
    }
}

/// What a backfill wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Samples (OpenMetrics) or rows (FOCUS, XLSX).
    pub written: usize,
    pub unit: &'static str,
    /// The days covered, `until` exclusive.
    pub days: DayRange,
}

/// The months to ask for, each from its 1st up to (not including) today.
pub fn plan(today: Date) -> Vec<(YearMonth, DayRange)> {
    retention_months(today)
        .into_iter()
        .map(|m| {
            let range = DayRange {
                since: m.first_day(),
                until: m.end_exclusive().min(today),
            };
            (m, range)
        })
        .filter(|(_, r)| !r.is_empty())
        .collect()
}

pub async fn run(
    args: BackfillArgs,
    clock: &dyn Clock,
    shutdown: CancellationToken,
) -> Result<Summary, BackfillError> {
    let target = args.target.resolve()?;
    let dimensions: Vec<BillingUsageAggregate> = target
        .config
        .as_ref()
        .map(|c| c.metrics.dimensions.clone())
        .unwrap_or_default();
    // The target's own filters, as the daemon's queries carry them.
    let filter = target
        .config
        .as_ref()
        .and_then(|c| c.targets.iter().find(|t| t.name == target.name))
        .map(|t| t.filter.clone())
        .unwrap_or_default();
    let client = oneshot::client(&target)?;
    let receiver = Arc::new(
        Receiver::bind(
            args.callback.callback_listen,
            args.callback.public_url.as_deref(),
        )
        .await?,
    );
    let today = clock.today();
    let months = plan(today);
    let bar = progress_bar(months.len() as u64);
    let mut queries = tokio::task::JoinSet::new();
    for (month, range) in months.iter().copied() {
        let request = QueryBillingUsageApiRequest {
            filter_by: filter.over(range.into()),
            aggregate_by: AGGREGATE_BY.iter().chain(&dimensions).copied().collect(),
            options: None,
        };
        let (receiver, client, shutdown, bar) = (
            Arc::clone(&receiver),
            client.clone(),
            shutdown.clone(),
            bar.clone(),
        );
        let timeout = args.callback.timeout;
        queries.spawn(async move {
            let show = |phase: Phase| {
                if let Phase::Waiting { .. } = phase {
                    bar.set_message("submitted, waiting for the callbacks");
                }
            };
            let body = receiver
                .run(&client, request, timeout, &shutdown, &show)
                .await;
            bar.inc(1);
            (month, range, body)
        });
    }
    let mut ledger = Ledger::new(dimensions.iter().map(|d| d.as_str().to_owned()).collect());
    let mut bodies = Vec::new();
    while let Some(joined) = queries.join_next().await {
        let (month, range, body) = joined.map_err(|e| BackfillError::Task(e.to_string()))?;
        let body = body.map_err(|cause| BackfillError::Month { month, cause })?;
        bodies.push((month, range, body));
    }
    bar.finish_and_clear();
    // Oldest first, as the daemon would have applied them.
    bodies.sort_by_key(|(m, _, _)| *m);
    let days = DayRange {
        since: retention_start(today),
        until: today,
    };
    if args.format != BackfillFormat::Openmetrics {
        return usage_file(
            &args,
            &target,
            (&mut ledger, &dimensions),
            bodies,
            clock,
            days,
        )
        .await;
    }
    for (month, range, body) in bodies {
        apply(
            &mut ledger,
            &target.name,
            (month, range),
            &body,
            &dimensions,
            clock,
        )?;
    }
    let text = openmetrics(&ledger, today, days);
    let written = text.lines().filter(|l| !l.starts_with('#')).count();
    output::write_file(&args.out, text.into_bytes()).await?;
    Ok(Summary {
        written,
        unit: "samples",
        days,
    })
}

/// Decodes one month's result into the ledger, as the daemon does; what it restated.
fn apply(
    ledger: &mut Ledger,
    target: &str,
    (month, range): (YearMonth, DayRange),
    body: &[u8],
    dimensions: &[BillingUsageAggregate],
    clock: &dyn Clock,
) -> Result<Vec<Restatement>, BackfillError> {
    let decoded =
        result::decode(body, dimensions).map_err(|cause| BackfillError::Decode { month, cause })?;
    match decoded.outcome {
        Outcome::Success(usage) => {
            let key = SegmentKey::new(target, month);
            Ok(ledger.apply(&key, range, usage, clock.now()).restatements)
        }
        Outcome::Failed { message } => Err(BackfillError::Failed { month, message }),
    }
}

/// The FOCUS or XLSX file of every month's rows, each month's cut to the days its query asked
/// for. For FOCUS, the ledger starts from the figures the daemon stored for this target (with
/// `--config`), so a final day they disagree with is a correction.
async fn usage_file(
    args: &BackfillArgs,
    target: &Target,
    (ledger, dimensions): (&mut Ledger, &[BillingUsageAggregate]),
    bodies: Vec<(YearMonth, DayRange, impl AsRef<[u8]>)>,
    clock: &dyn Clock,
    days: DayRange,
) -> Result<Summary, BackfillError> {
    if args.format == BackfillFormat::Focus
        && let Some(config) = &target.config
        && let Some(configured) = config.targets.iter().find(|t| t.name == target.name)
    {
        restore_stored(ledger, configured, &config.state_dir, days);
    }
    let mut sheet = Sheet::default();
    let mut final_months = BTreeSet::new();
    let mut corrections = BTreeSet::new();
    for (month, range, body) in bodies {
        let body = body.as_ref();
        if args.format == BackfillFormat::Focus {
            let restated = apply(
                ledger,
                &target.name,
                (month, range),
                body,
                dimensions,
                clock,
            )?;
            corrections.extend(
                restated
                    .into_iter()
                    .filter(|r| r.was_final)
                    .map(|r| (r.day, r.currency)),
            );
        }
        let parsed: BillingUsageResult = serde_json::from_slice(body).map_err(|e| {
            let cause = RowsError::Unusable(e.to_string());
            BackfillError::Rows { month, cause }
        })?;
        let mut rows =
            output::sheet_of(&parsed).map_err(|cause| BackfillError::Rows { month, cause })?;
        if let Some(day) = rows.column("DAY") {
            rows.rows
                .retain(|r| matches!(r[day], Value::Day(d) if range.contains(d)));
        }
        final_months.extend(output::final_months(&parsed));
        sheet.append(rows);
    }
    sheet.sort();
    let account_id = output::billing_account_id(&target.base_url);
    let account_name = target.name.clone();
    let format = args.format;
    // Building the file is CPU work: off the async threads.
    let (bytes, written) = tokio::task::spawn_blocking(move || {
        let bytes = match format {
            BackfillFormat::Xlsx => xlsx::workbook(&sheet)?,
            _ => focus::csv(
                &sheet,
                &Billing {
                    account_id: &account_id,
                    account_name: &account_name,
                    final_months: &final_months,
                    corrections: &corrections,
                },
            )?,
        };
        let written = match format {
            BackfillFormat::Xlsx => sheet.rows.len(),
            _ => focus::charges(&sheet),
        };
        Ok::<_, BackfillError>((bytes, written))
    })
    .await
    .map_err(|e| BackfillError::Task(e.to_string()))??;
    output::write_file(&args.out, bytes).await?;
    Ok(Summary {
        written,
        unit: "rows",
        days,
    })
}

/// Puts the daemon's stored months of `target` into `ledger`, those in `days` and kept with
/// the same dimensions: figures at another grouping were rounded per other rows, and would
/// differ by the rounding alone.
fn restore_stored(ledger: &mut Ledger, target: &TargetConfig, state_dir: &Path, days: DayRange) {
    // Figures fetched under other filters or dimensions are no earlier version of these.
    let fetched_under = read_filters(state_dir).unwrap_or_default();
    let unfiltered = UsageFilter::default().identity();
    if *fetched_under.get(&target.name).unwrap_or(&unfiltered) != target.filter.identity() {
        return;
    }
    let first = YearMonth::of(days.since);
    for (key, segment, dimensions) in read_segments(state_dir) {
        if key.target == target.name
            && key.month >= first
            && dimensions == ledger.dimensions
            && !segment.reshaped
        {
            ledger.restore(key, segment, &dimensions);
        }
    }
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} months {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The last whole second of `day`, in Unix seconds.
pub fn end_of_day(day: Date) -> i64 {
    day.next_day()
        .unwrap_or(day)
        .midnight()
        .assume_utc()
        .unix_timestamp()
        - 1
}

/// The ledger's complete days in `days` as OpenMetrics: cost and quantity per day, month-to-date
/// cost at the end of each day, one family after the other, each series in time order.
pub fn openmetrics(ledger: &Ledger, today: Date, days: DayRange) -> String {
    let view = View {
        today,
        day_window: days,
        // No roll-up: every series keeps its own labels for the whole history.
        max_series: usize::MAX / 8,
        budgets: Vec::new(),
    };
    let snapshot = Snapshot::build(ledger, &view, &[]);
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    let day_of = |s: &CostSeries| Date::parse(&s.period, &iso).ok();
    let stamped = |kind| -> Vec<(CostSeries, i64)> {
        snapshot
            .series(kind)
            .filter_map(|s| day_of(s).map(|d| (s.clone(), end_of_day(d))))
            .collect()
    };
    let mut stamped_days = stamped(Kind::Cost);
    // Month-to-date at each day's end: a running sum of the day costs per series and month.
    let mut by_day: BTreeMap<Date, Vec<&CostSeries>> = BTreeMap::new();
    for (s, _) in &stamped_days {
        if let Some(day) = day_of(s) {
            by_day.entry(day).or_default().push(s);
        }
    }
    let mut running: BTreeMap<YearMonth, BTreeMap<CostSeries, Decimal>> = BTreeMap::new();
    let mut months: Vec<(CostSeries, i64)> = Vec::new();
    for (day, series) in &by_day {
        let month = YearMonth::of(*day);
        let so_far = running.entry(month).or_default();
        for s in series {
            let key = CostSeries {
                period: month.to_string(),
                value: Decimal::ZERO,
                ..(*s).clone()
            };
            *so_far.entry(key).or_default() += s.value;
        }
        // Every series of the month so far gets a sample, also on a day it cost nothing:
        // month-to-date does not turn absent.
        months.extend(so_far.iter().map(|(key, total)| {
            (
                CostSeries {
                    value: *total,
                    ..key.clone()
                },
                end_of_day(*day),
            )
        }));
    }
    let mut stamped_quantities = stamped(Kind::Quantity);
    let dims = &snapshot.dimension_labels;
    let mut out = String::new();
    exposition::encode_samples(&mut out, Kind::Cost, &mut stamped_days, dims);
    exposition::encode_samples(&mut out, Kind::MonthCost, &mut months, dims);
    exposition::encode_samples(&mut out, Kind::Quantity, &mut stamped_quantities, dims);
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::facts::{Amount, FactKey, Usage};
    use time::macros::date;

    #[test]
    fn plan_asks_each_month_up_to_yesterday() {
        let months = plan(date!(2026 - 12 - 01));
        let shown: Vec<String> = months
            .iter()
            .map(|(m, r)| format!("{m} {}..{}", r.since, r.until))
            .collect();
        // December has no complete day yet on the 1st.
        assert_eq!(
            shown,
            [
                "2026-10 2026-10-01..2026-11-01",
                "2026-11 2026-11-01..2026-12-01"
            ]
        );
        assert_eq!(
            plan(date!(2026 - 11 - 27))[2].1.until,
            date!(2026 - 11 - 27)
        );
    }

    #[test]
    fn a_day_ends_at_its_last_whole_second() {
        assert_eq!(end_of_day(date!(2026 - 11 - 26)), 1_795_737_599);
    }

    fn fact(account: &str, cost: &str) -> (FactKey, Amount) {
        (
            FactKey {
                account: account.to_owned(),
                account_key: "K".to_owned(),
                category: "SMS".to_owned(),
                currency: "EUR".to_owned(),
                unit: "message part".to_owned(),
                dimensions: Vec::new(),
            },
            Amount {
                cost: cost.parse().unwrap(),
                quantity: Decimal::ONE,
            },
        )
    }

    #[test]
    fn openmetrics_has_day_samples_and_a_running_month_total() {
        let mut ledger = Ledger::default();
        let (a, b) = (date!(2026 - 11 - 01), date!(2026 - 11 - 02));
        let mut facts = std::collections::HashMap::new();
        let (k, v) = fact("Acme \"EU\"", "1.10");
        facts.insert((a, k.clone()), v);
        facts.insert(
            (b, k),
            Amount {
                cost: "2.25".parse().unwrap(),
                ..v
            },
        );
        let (k2, v2) = fact("Beta", "5");
        facts.insert((a, k2), v2);
        let covered = DayRange {
            since: a,
            until: date!(2026 - 11 - 03),
        };
        let usage = Usage::from_facts(Some(covered), vec![(YearMonth::of(a), false)], facts);
        let key = SegmentKey::new("eu", YearMonth::of(a));
        ledger.apply(&key, covered, usage, time::OffsetDateTime::UNIX_EPOCH);
        let text = openmetrics(
            &ledger,
            date!(2026 - 11 - 03),
            DayRange {
                since: date!(2026 - 09 - 01),
                until: date!(2026 - 11 - 03),
            },
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let acme =
            r#"target="eu",account="Acme \"EU\"",category="SMS",channel="sms",currency="EUR""#;
        let beta = r#"target="eu",account="Beta",category="SMS",channel="sms",currency="EUR""#;
        let (end_a, end_b) = (end_of_day(a), end_of_day(b));
        for want in [
            format!(
                r#"infobip_billing_cost{{{acme},day="2026-11-01",status="provisional"}} 1.1 {end_a}"#
            ),
            format!(
                r#"infobip_billing_cost{{{acme},day="2026-11-02",status="provisional"}} 2.25 {end_b}"#
            ),
            format!(
                r#"infobip_billing_month_cost{{{acme},month="2026-11",status="provisional"}} 1.1 {end_a}"#
            ),
            format!(
                r#"infobip_billing_month_cost{{{acme},month="2026-11",status="provisional"}} 3.35 {end_b}"#
            ),
            // No cost on the 2nd, still a month-to-date sample.
            format!(
                r#"infobip_billing_month_cost{{{beta},month="2026-11",status="provisional"}} 5.0 {end_b}"#
            ),
        ] {
            assert!(samples.contains(&want.as_str()), "missing {want}\n{text}");
        }
        // A series' samples are contiguous and in time order.
        let month_acme: Vec<usize> = (0..samples.len())
            .filter(|&i| {
                samples[i].starts_with("infobip_billing_month_cost") && samples[i].contains("Acme")
            })
            .collect();
        assert_eq!(month_acme.len(), 2);
        assert_eq!(month_acme[1], month_acme[0] + 1);
        assert!(samples[month_acme[0]].ends_with(&end_a.to_string()));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
