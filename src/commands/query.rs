//! `query`: one Billing Usage query from the terminal, with every filter and dimension of the API
//! (reference §3, §4), printed as a table with per-currency totals, or written as clean CSV,
//! JSON, FOCUS or XLSX (`export::sheet`, `export::focus`, `export::xlsx`). Dates on the command
//! line are inclusive; the exclusive `sentUntil` is computed here (reference A1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, DayRange, YearMonth, retention_start};
use crate::commands::oneshot::{self, CallbackArgs, OneShotError, Phase, Receiver, TargetArgs};
use crate::commands::output::{self, RowsError, WriteError};
use crate::export::focus::{self, Billing, FocusError};
use crate::export::sheet::{Sheet, TOTAL, Value, totals_text};
use crate::export::xlsx::{self, WorkbookError};
use crate::infobip::filters::{self, UsageFilter};
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageQueryOptions, BillingUsageResult, Category, DateInterval,
    Direction, Platform, QueryBillingUsageApiRequest, SubCategory,
};

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, then one TOTAL line per currency.
    Table,
    /// RFC 4180 CSV: a header row, then the data rows only (totals with --totals, on stderr).
    Csv,
    /// One JSON document: columns, rows as objects, totals per currency apart.
    Json,
    /// FOCUS 1.2 CSV for FinOps tools, one charge per day and sub-account (docs/focus.md).
    Focus,
    /// An XLSX workbook (needs --out): the rows as typed cells, and a totals sheet.
    Xlsx,
}

#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub callback: CallbackArgs,
    #[command(flatten)]
    pub filters: Filters,
    /// How to print the rows.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Write the output to this file (replaced atomically) instead of stdout; needed for xlsx.
    #[arg(long, value_name = "FILE", required_if_eq("format", "xlsx"))]
    pub out: Option<PathBuf>,
    /// Also print the totals per currency on stderr, whatever the format.
    #[arg(long)]
    pub totals: bool,
}

/// The query itself: period, dimensions and filters. Within one filter the values are
/// alternatives; different filters narrow the result.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filters {
    /// First day, inclusive, UTC (yyyy-MM-dd). Default: the 1st of the current month.
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub from: Option<Date>,
    /// Last day, inclusive, UTC (yyyy-MM-dd). Default: today.
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub until: Option<Date>,
    /// A dimension to break the costs down by; repeat or separate with commas. Default:
    /// CATEGORY_CODE (Infobip adds ACCOUNT_NAME and CATEGORY_CODE to every query).
    #[arg(long = "by", value_name = "DIM", value_delimiter = ',', ignore_case = true,
          value_parser = codes::<BillingUsageAggregate>(BillingUsageAggregate::ALL.iter().map(|c| c.as_str())))]
    pub by: Vec<BillingUsageAggregate>,
    // The filters parse with `infobip::filters`, as a target's `filters` in the config do, so
    // both refuse a wrong value with the same message.
    /// Only this category (repeatable, or comma-separated).
    #[arg(long, value_name = "CODE", value_delimiter = ',',
          value_parser = Codes(Category::ALL, filters::parse_category))]
    pub category: Vec<Category>,
    /// Only this subcategory (Viber only today).
    #[arg(long, value_name = "CODE", value_delimiter = ',',
          value_parser = Codes(SubCategory::ALL, filters::parse_sub_category))]
    pub sub_category: Vec<SubCategory>,
    /// Only this account (its ACCOUNT_KEY); default: every account of the hierarchy.
    #[arg(long, value_name = "KEY", value_parser = filters::parse_text)]
    pub account_key: Vec<String>,
    /// Only this country (ISO 3166-1 alpha-2, e.g. DE).
    #[arg(long, value_name = "CC", value_delimiter = ',', value_parser = filters::parse_country)]
    pub country: Vec<String>,
    /// Only this direction.
    #[arg(long, value_name = "DIR", value_delimiter = ',',
          value_parser = Codes(Direction::ALL, filters::parse_direction))]
    pub direction: Vec<Direction>,
    /// Only this traffic type (values vary by channel, e.g. UTILITY, FREE_FORM).
    #[arg(long, value_name = "TYPE", value_parser = filters::parse_text)]
    pub traffic_type: Vec<String>,
    /// Only this sender (alphanumeric, number or e-mail address).
    #[arg(long, value_name = "SENDER", value_parser = filters::parse_text)]
    pub sender: Vec<String>,
    /// Only this sender type (e.g. ALPHANUMERIC, SHORT_CODE, VIRTUAL_LONG_NUMBER, DOMAIN).
    #[arg(long, value_name = "TYPE", value_parser = filters::parse_text)]
    pub sender_type: Vec<String>,
    /// Only traffic tagged with this campaignReferenceId at send time.
    #[arg(long, value_name = "REF", value_parser = filters::parse_text)]
    pub campaign_reference: Vec<String>,
    /// Only this Broadcast or Moments campaign id.
    #[arg(long, value_name = "ID", value_parser = filters::parse_campaign_id)]
    pub campaign_id: Vec<i64>,
    /// Only this WhatsApp template id.
    #[arg(long, value_name = "ID", value_parser = filters::parse_text)]
    pub template_id: Vec<String>,
    /// Only this CPaaS X application (and entity): `app`, `app:entity` or `:entity`.
    #[arg(long, value_name = "APP[:ENTITY]", value_parser = filters::parse_platform)]
    pub platform: Vec<Platform>,
    /// Only finalized billing data (includeUnfinalizedData=false).
    #[arg(long)]
    pub final_only: bool,
}

/// Why `query` failed; `reason()` is a bounded label.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("--from {from} is after --until {until}")]
    DateOrder { from: Date, until: Date },
    #[error(
        "--from {from} is before {first}: Infobip keeps only the current month and the two before"
    )]
    BeforeRetention { from: Date, first: Date },
    #[error("--until {until} is in the future (today is {today}, UTC)")]
    Future { until: Date, today: Date },
    #[error("--by DAY and --by MONTH cannot be combined: ask for one time dimension")]
    DayAndMonth,
    #[error("--format focus has one charge per day: drop --by MONTH")]
    FocusByMonth,
    #[error(transparent)]
    OneShot(#[from] OneShotError),
    #[error("Infobip could not run the query: {0}")]
    Failed(String),
    #[error("the callback body is not a usable BillingUsageResult: {0}")]
    Unusable(String),
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write the JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Focus(#[from] FocusError),
    #[error(transparent)]
    Xlsx(#[from] WorkbookError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl QueryError {
    pub fn reason(&self) -> &'static str {
        match self {
            QueryError::DateOrder { .. }
            | QueryError::BeforeRetention { .. }
            | QueryError::Future { .. }
            | QueryError::DayAndMonth
            | QueryError::FocusByMonth => "usage",
            QueryError::OneShot(e) => e.reason(),
            QueryError::Failed(_) => "failed_result",
            QueryError::Unusable(_) => "unusable_result",
            QueryError::Csv(_)
            | QueryError::Json(_)
            | QueryError::Focus(_)
            | QueryError::Xlsx(_) => "export",
            QueryError::Write(_) => "write",
        }
    }
}

/// A clap parser for a wire enum: its codes in `--help` and completions, any letter case.
fn codes<T>(names: impl IntoIterator<Item = &'static str>) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(|s| s.to_ascii_uppercase().parse::<T>())
}

/// A filter's wire enum: its codes in `--help` and completions, parsed (and refused) by the
/// same function as the config's `filters`.
#[derive(Clone)]
struct Codes<T: 'static>(&'static [T], fn(&str) -> Result<T, String>);

impl<T> TypedValueParser for Codes<T>
where
    T: Copy + Send + Sync + 'static,
    &'static str: From<T>,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.1)(&text).map_err(|problem| {
            let arg = arg.map_or_else(|| "...".to_owned(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value '{text}' for '{arg}': {problem}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            self.0
                .iter()
                .map(|&code| PossibleValue::new(<&str>::from(code))),
        ))
    }
}

fn parse_date(s: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &format).map_err(|_| format!("expected a date as yyyy-MM-dd, got {s:?}"))
}

impl Filters {
    /// The filters among the flags.
    pub fn usage_filter(&self) -> UsageFilter {
        UsageFilter {
            account_keys: self.account_key.clone(),
            categories: self.category.clone(),
            sub_categories: self.sub_category.clone(),
            countries: self.country.clone(),
            directions: self.direction.clone(),
            traffic_types: self.traffic_type.clone(),
            senders: self.sender.clone(),
            sender_types: self.sender_type.clone(),
            campaign_references: self.campaign_reference.clone(),
            campaign_ids: self.campaign_id.clone(),
            template_ids: self.template_id.clone(),
            platforms: self.platform.clone(),
        }
    }

    /// The request these flags describe, checked against retention and order before sending.
    pub fn request(&self, today: Date) -> Result<QueryBillingUsageApiRequest, QueryError> {
        let first = retention_start(today);
        let from = self
            .from
            .unwrap_or_else(|| YearMonth::of(today).first_day());
        let until = self.until.unwrap_or(today);
        if from > until {
            return Err(QueryError::DateOrder { from, until });
        }
        if from < first {
            return Err(QueryError::BeforeRetention { from, first });
        }
        if until > today {
            return Err(QueryError::Future { until, today });
        }
        let mut aggregate_by = filters::unique(&self.by);
        if aggregate_by.is_empty() {
            aggregate_by.push(BillingUsageAggregate::CATEGORY_CODE);
        }
        if aggregate_by.contains(&BillingUsageAggregate::DAY)
            && aggregate_by.contains(&BillingUsageAggregate::MONTH)
        {
            return Err(QueryError::DayAndMonth);
        }
        Ok(QueryBillingUsageApiRequest {
            filter_by: self.usage_filter().over(DateInterval {
                sent_since: from,
                // `until` is at most today, so the next day always exists.
                sent_until: until.next_day().unwrap_or(until),
            }),
            aggregate_by,
            options: self.final_only.then_some(BillingUsageQueryOptions {
                include_unfinalized_data: false,
            }),
        })
    }
}

/// Runs the query: the rows for stdout (or written to `--out`), and the notes for stderr.
/// Progress goes to stderr on a terminal only.
pub async fn run(
    args: QueryArgs,
    clock: &dyn Clock,
    shutdown: CancellationToken,
) -> Result<Output, QueryError> {
    let mut request = args.filters.request(clock.today())?;
    if args.format == OutputFormat::Focus {
        focus_grouping(&mut request.aggregate_by)?;
    }
    let target = args.target.resolve()?;
    let client = oneshot::client(&target)?;
    let receiver = Receiver::bind(
        args.callback.callback_listen,
        args.callback.public_url.as_deref(),
    )
    .await?;
    let asked = request.filter_by.date_interval;
    let spinner = progress_spinner();
    let show = |phase: Phase| {
        spinner.set_message(match phase {
            Phase::Submitting => format!("submitting the query to {}", target.base_url),
            Phase::Waiting { request_id } => {
                format!("waiting for the callback of request {request_id}")
            }
        });
    };
    let body = receiver
        .run(&client, request, args.callback.timeout, &shutdown, &show)
        .await;
    spinner.finish_and_clear();
    let result = serde_json::from_slice::<BillingUsageResult>(&body?)
        .map_err(|e| QueryError::Unusable(e.to_string()))?;
    let account_id = output::billing_account_id(&target.base_url);
    let context = Context {
        asked: DayRange {
            since: asked.sent_since,
            until: asked.sent_until,
        },
        final_only: args.filters.final_only,
        totals: args.totals,
        target: &target.name,
        account_id: &account_id,
    };
    let rendered = render(&result, args.format, &context)?;
    let mut stderr = rendered.notes;
    let stdout = match &args.out {
        None => rendered.bytes,
        Some(path) => {
            output::write_file(path, rendered.bytes).await?;
            let _ = writeln!(stderr, "wrote {} rows to {}", rendered.rows, path.display());
            Vec::new()
        }
    };
    Ok(Output { stdout, stderr })
}

/// FOCUS has one charge per day and sub-account: DAY and ACCOUNT_KEY join the dimensions asked
/// for (Infobip adds ACCOUNT_NAME and CATEGORY_CODE itself), so with no `--by` the grouping is
/// the daemon's and the figures are those of `/metrics`.
fn focus_grouping(by: &mut Vec<BillingUsageAggregate>) -> Result<(), QueryError> {
    if by.contains(&BillingUsageAggregate::MONTH) {
        return Err(QueryError::FocusByMonth);
    }
    for dim in [BillingUsageAggregate::DAY, BillingUsageAggregate::ACCOUNT_KEY] {
        if !by.contains(&dim) {
            by.push(dim);
        }
    }
    Ok(())
}

/// A spinner with elapsed time and state on stderr, hidden when stderr is not a terminal.
fn progress_spinner() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// What `query` prints: the rows on stdout (nothing with `--out`), notes on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// What rendering needs beyond the result.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The days asked for, `until` exclusive.
    pub asked: DayRange,
    pub final_only: bool,
    /// Print the totals per currency on stderr too (`--totals`).
    pub totals: bool,
    /// The target's name, FOCUS `BillingAccountName`.
    pub target: &'a str,
    /// FOCUS `BillingAccountId`: see [`output::billing_account_id`].
    pub account_id: &'a str,
}

/// A result in one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    /// Data rows written.
    pub rows: usize,
    /// For stderr: what `--final-only` left out, and the totals with `--totals`.
    pub notes: String,
}

/// The printed form of a result.
pub fn render(
    result: &BillingUsageResult,
    format: OutputFormat,
    context: &Context<'_>,
) -> Result<Rendered, QueryError> {
    let mut sheet = output::sheet_of(result).map_err(|e| match e {
        RowsError::Failed(m) => QueryError::Failed(m),
        RowsError::Unusable(m) => QueryError::Unusable(m),
    })?;
    // Stable output: rows ordered by their dimension values.
    sheet.sort();
    let covered = result
        .response
        .as_ref()
        .map(|r| r.requested_period.covered_days());
    let mut notes = String::new();
    if context.final_only {
        notes.push_str(&final_only_note(context.asked, covered));
    }
    let totals = sheet.totals();
    if context.totals {
        notes.push_str(&totals_text(&totals));
    }
    let mut rows = sheet.rows.len();
    let bytes = match format {
        OutputFormat::Table => sheet.text_table().into_bytes(),
        OutputFormat::Csv => sheet.csv()?,
        OutputFormat::Json => render_json(result, &sheet, &totals, covered)?.into_bytes(),
        OutputFormat::Focus => {
            let final_months = output::final_months(result);
            let billing = Billing {
                account_id: context.account_id,
                account_name: context.target,
                final_months: &final_months,
                // One query has no earlier figures to compare with.
                corrections: &BTreeSet::new(),
            };
            let cost = sheet.column(TOTAL);
            rows = sheet
                .rows
                .iter()
                .filter(|r| cost.is_some_and(|c| r[c].number().is_some()))
                .count();
            focus::csv(&sheet, &billing)?
        }
        OutputFormat::Xlsx => xlsx::workbook(&sheet)?,
    };
    Ok(Rendered { bytes, rows, notes })
}

/// What `--final-only` left out: every day, or the days after the last final month.
fn final_only_note(asked: DayRange, covered: Option<DayRange>) -> String {
    let last = |r: DayRange| r.until.previous_day().unwrap_or(r.until);
    match covered {
        Some(c) if c.is_empty() => format!(
            "no month from {} to {} is final yet: --final-only gives no rows\n",
            asked.since,
            last(asked)
        ),
        Some(c) if c.until < asked.until => format!(
            "only {} to {} is final: --final-only leaves out the days after\n",
            c.since,
            last(c)
        ),
        _ => String::new(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonOutput<'a> {
    request_id: &'a str,
    /// The period Infobip used, `until` inclusive like the command line; `null` when it holds
    /// no day (with `--final-only`, when no month in range is final).
    period: Option<JsonPeriod>,
    billing_periods: Vec<JsonBillingPeriod<'a>>,
    columns: &'a [String],
    rows: Vec<BTreeMap<&'a str, Exact<'a>>>,
    totals: Vec<JsonTotal<'a>>,
}

#[derive(Serialize)]
struct JsonPeriod {
    from: String,
    until: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonBillingPeriod<'a> {
    month: &'a str,
    volume_finalized: bool,
}

#[derive(Serialize)]
struct JsonTotal<'a> {
    currency: &'a str,
    total: Exact<'a>,
}

/// A value in JSON with the digits Infobip sent: numbers as JSON numbers, never through a
/// float; days, months and `N/A` as strings.
struct Exact<'a>(&'a Value);

impl Serialize for Exact<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => serde_json::value::RawValue::from_string(n.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            other => s.serialize_str(&other.text()),
        }
    }
}

fn render_json(
    result: &BillingUsageResult,
    sheet: &Sheet,
    totals: &BTreeMap<String, Decimal>,
    covered: Option<DayRange>,
) -> Result<String, serde_json::Error> {
    let period = covered.filter(|c| !c.is_empty()).map(|days| JsonPeriod {
        from: days.since.to_string(),
        until: days.until.previous_day().unwrap_or(days.until).to_string(),
    });
    let totals: Vec<(&String, Value)> = totals
        .iter()
        .map(|(currency, total)| (currency, Value::Number(*total)))
        .collect();
    let out = JsonOutput {
        request_id: &result.request_id,
        period,
        billing_periods: result
            .metadata
            .iter()
            .flat_map(|m| &m.billing_periods)
            .map(|p| JsonBillingPeriod {
                month: &p.month,
                volume_finalized: p.volume_finalized,
            })
            .collect(),
        columns: &sheet.columns,
        rows: sheet
            .rows
            .iter()
            .map(|r| {
                sheet
                    .columns
                    .iter()
                    .map(String::as_str)
                    .zip(r.iter().map(Exact))
                    .collect()
            })
            .collect(),
        totals: totals
            .iter()
            .map(|(currency, total)| JsonTotal {
                currency,
                total: Exact(total),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&out)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use time::macros::date;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        filters: Filters,
    }

    fn filters(args: &[&str]) -> Result<Filters, clap::Error> {
        Cmd::try_parse_from(std::iter::once("query").chain(args.iter().copied())).map(|c| c.filters)
    }

    const TODAY: Date = date!(2026 - 11 - 27);

    #[test]
    fn every_filter_reaches_the_request() {
        let f = filters(&[
            "--from",
            "2026-09-01",
            "--until",
            "2026-11-26",
            "--by",
            "day,traffic_type",
            "--by",
            "DAY",
            "--category",
            "SMS,whatsapp",
            "--sub-category",
            "VIBER_BM",
            "--account-key",
            "K1",
            "--country",
            "de",
            "--direction",
            "OUTBOUND",
            "--traffic-type",
            "UTILITY",
            "--sender",
            "InfoSMS",
            "--sender-type",
            "ALPHANUMERIC",
            "--campaign-reference",
            "black-friday",
            "--campaign-id",
            "754564654689",
            "--template-id",
            "5653923468715475",
            "--platform",
            "app1:ent1",
            "--platform",
            ":ent2",
            "--final-only",
        ])
        .unwrap();
        let r = f.request(TODAY).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "filterBy": {
                    "dateInterval": {"sentSince": "2026-09-01", "sentUntil": "2026-11-27"},
                    "accountKeys": ["K1"],
                    "categories": ["SMS", "WHATSAPP"],
                    "subCategories": ["VIBER_BM"],
                    "countryCodes": ["DE"],
                    "platforms": [{"applicationId": "app1", "entityId": "ent1"}, {"entityId": "ent2"}],
                    "directions": ["OUTBOUND"],
                    "trafficTypes": ["UTILITY"],
                    "senders": ["InfoSMS"],
                    "senderTypes": ["ALPHANUMERIC"],
                    "campaignReferenceIds": ["black-friday"],
                    "campaignIds": [754564654689_i64],
                    "templateIds": ["5653923468715475"],
                },
                "aggregateBy": ["DAY", "TRAFFIC_TYPE"],
                "options": {"includeUnfinalizedData": false},
            })
        );
    }

    #[test]
    fn defaults_ask_for_this_month_by_category() {
        let r = filters(&[]).unwrap().request(TODAY).unwrap();
        assert_eq!(
            r.filter_by.date_interval,
            DateInterval {
                sent_since: date!(2026 - 11 - 01),
                sent_until: date!(2026 - 11 - 28)
            }
        );
        assert_eq!(r.aggregate_by, [BillingUsageAggregate::CATEGORY_CODE]);
        assert_eq!(r.options, None);
    }

    #[test]
    fn bad_dates_are_refused_before_sending() {
        let err = |args: &[&str]| filters(args).unwrap().request(TODAY).unwrap_err();
        assert!(matches!(
            err(&["--from", "2026-08-31"]),
            QueryError::BeforeRetention { .. }
        ));
        assert!(matches!(
            err(&["--from", "2026-11-10", "--until", "2026-11-09"]),
            QueryError::DateOrder { .. }
        ));
        assert!(matches!(
            err(&["--until", "2026-11-28"]),
            QueryError::Future { .. }
        ));
        assert!(matches!(
            err(&["--by", "DAY", "--by", "MONTH"]),
            QueryError::DayAndMonth
        ));
        for bad in [
            &["--from", "2026-11-31"][..],
            &["--by", "WEEK"],
            &["--country", "DEU"],
            &["--platform", ":"],
            &["--campaign-id", "x"],
            &["--category", "FAX"],
        ] {
            assert!(filters(bad).is_err(), "{bad:?}");
        }
    }

    fn result(rows: &str) -> BillingUsageResult {
        serde_json::from_str(&format!(
            r#"{{"requestId":"R1","status":"SUCCESS","response":{{
                "requestedPeriod":{{"sentSince":"2026-11-01T00:00:00.000+0000","sentUntil":"2026-11-03T00:00:00.000+0000"}},
                "totalRows":3,
                "columns":[{{"columnName":"DAY","columnDataType":"DATE_TIME"}},{{"columnName":"ACCOUNT_NAME","columnDataType":"STRING"}},
                  {{"columnName":"UNIT_TYPE","columnDataType":"STRING"}},{{"columnName":"QUANTITY","columnDataType":"NUMBER"}},
                  {{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}},{{"columnName":"CURRENCY","columnDataType":"STRING"}}],
                "rows":{rows}}},
              "metadata":{{"clientRequestedPeriod":{{"sentSince":"2026-11-01","sentUntil":"2026-11-03"}},
                "billingPeriods":[{{"month":"2026-11","volumeFinalized":false}}]}}}}"#
        ))
        .unwrap()
    }

    const ROWS: &str = r#"[["2026-11-02T00:00:00.000+0000","Acme, Inc","message",3,0.10,"EUR"],
        ["2026-11-01T00:00:00.000+0000","Acme, Inc","message",1200,12.05,"EUR"],
        ["2026-11-01T00:00:00.000+0000","Beta","N/A",7,1.5,"USD"]]"#;

    const CONTEXT: Context<'static> = Context {
        asked: DayRange {
            since: date!(2026 - 11 - 01),
            until: date!(2026 - 11 - 03),
        },
        final_only: false,
        totals: false,
        target: "eu",
        account_id: "xxxxx.api.infobip.com",
    };

    fn rendered(rows: &str, format: OutputFormat) -> String {
        let r = render(&result(rows), format, &CONTEXT).unwrap();
        assert_eq!(r.notes, "");
        String::from_utf8(r.bytes).unwrap()
    }

    #[test]
    fn table_is_aligned_with_totals_per_currency() {
        assert_eq!(
            rendered(ROWS, OutputFormat::Table),
            "DAY         ACCOUNT_NAME  UNIT_TYPE  QUANTITY  TOTAL_PER_UNIT  CURRENCY\n\
             2026-11-01  Acme, Inc     message        1200           12.05  EUR\n\
             2026-11-01  Beta          N/A               7             1.5  USD\n\
             2026-11-02  Acme, Inc     message           3            0.10  EUR\n\
             \n\
             TOTAL EUR 12.15\n\
             TOTAL USD   1.5\n"
        );
    }

    #[test]
    fn csv_quotes_and_has_data_rows_only() {
        let text = rendered(ROWS, OutputFormat::Csv);
        assert_eq!(
            text,
            "DAY,ACCOUNT_NAME,UNIT_TYPE,QUANTITY,TOTAL_PER_UNIT,CURRENCY\r\n\
             2026-11-01,\"Acme, Inc\",message,1200,12.05,EUR\r\n\
             2026-11-01,Beta,N/A,7,1.5,USD\r\n\
             2026-11-02,\"Acme, Inc\",message,3,0.10,EUR\r\n"
        );
        let with_totals = Context {
            totals: true,
            ..CONTEXT
        };
        let r = render(&result(ROWS), OutputFormat::Csv, &with_totals).unwrap();
        assert_eq!(r.notes, "TOTAL EUR 12.15\nTOTAL USD   1.5\n", "on stderr");
        assert_eq!(String::from_utf8(r.bytes).unwrap(), text, "not in the CSV");
    }

    #[test]
    fn json_keeps_exact_numbers() {
        let text = rendered(ROWS, OutputFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["period"],
            serde_json::json!({"from": "2026-11-01", "until": "2026-11-02"})
        );
        assert_eq!(v["rows"][0]["DAY"], "2026-11-01");
        assert!(text.contains("\"total\": 12.15"), "{text}");
        assert!(text.contains("\"TOTAL_PER_UNIT\": 0.10"), "as sent: {text}");
        assert_eq!(v["billingPeriods"][0]["volumeFinalized"], false);
    }

    #[test]
    fn final_only_says_when_no_month_is_final() {
        let empty = r#"{"requestId":"R1","status":"SUCCESS","response":{
            "requestedPeriod":{"sentSince":"2026-11-01T00:00:00.000+0000","sentUntil":"2026-11-01T00:00:00.000+0000"},
            "totalRows":0,"columns":[{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}],"rows":[]},
          "metadata":{"clientRequestedPeriod":{"sentSince":"2026-11-01","sentUntil":"2026-11-27"},"billingPeriods":[]}}"#;
        let result: BillingUsageResult = serde_json::from_str(empty).unwrap();
        let context = Context {
            asked: DayRange {
                since: date!(2026 - 11 - 01),
                until: date!(2026 - 11 - 27),
            },
            final_only: true,
            ..CONTEXT
        };
        let r = render(&result, OutputFormat::Json, &context).unwrap();
        assert_eq!(
            r.notes,
            "no month from 2026-11-01 to 2026-11-26 is final yet: --final-only gives no rows\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&r.bytes).unwrap();
        assert_eq!(v["period"], serde_json::Value::Null, "no backwards period");
        // A range cut at the first provisional month says where.
        let asked = DayRange {
            since: date!(2026 - 09 - 01),
            until: date!(2026 - 11 - 27),
        };
        let october = DayRange {
            since: date!(2026 - 09 - 01),
            until: date!(2026 - 10 - 01),
        };
        assert_eq!(
            final_only_note(asked, Some(october)),
            "only 2026-09-01 to 2026-09-30 is final: --final-only leaves out the days after\n"
        );
        assert_eq!(final_only_note(asked, Some(asked)), "");
    }

    #[test]
    fn focus_asks_for_days_and_sub_accounts() {
        let mut by = vec![BillingUsageAggregate::CATEGORY_CODE];
        focus_grouping(&mut by).unwrap();
        assert_eq!(
            by,
            [
                BillingUsageAggregate::CATEGORY_CODE,
                BillingUsageAggregate::DAY,
                BillingUsageAggregate::ACCOUNT_KEY
            ]
        );
        let mut by = vec![BillingUsageAggregate::MONTH];
        assert_eq!(
            focus_grouping(&mut by).unwrap_err().to_string(),
            "--format focus has one charge per day: drop --by MONTH"
        );
    }

    #[test]
    fn failed_result_is_an_error() {
        let failed: BillingUsageResult = serde_json::from_str(
            r#"{"requestId":"R","status":"FAILED","failureMessage":"Could not load data"}"#,
        )
        .unwrap();
        let err = render(&failed, OutputFormat::Table, &CONTEXT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Infobip could not run the query: Could not load data"
        );
    }
}
