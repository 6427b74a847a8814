//! `query`: one Billing Usage query from the terminal, with every filter and dimension of the API
//! (reference §3, §4), printed as a table, CSV or JSON with per-currency totals. Dates on the
//! command line are inclusive; the exclusive `sentUntil` is computed here (reference A1).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, YearMonth, retention_start};
use crate::billing::labels::NOT_APPLICABLE;
use crate::commands::oneshot::{self, CallbackArgs, OneShotError, Phase, Receiver, TargetArgs};
use crate::infobip::filters::{self, UsageFilter};
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageQueryOptions, BillingUsageResult, Category, Cell,
    DateInterval, Direction, Platform, QueryAggregateDataStatus, QueryBillingUsageApiRequest,
    SubCategory, parse_instant,
};

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, then one TOTAL line per currency.
    Table,
    /// RFC 4180 CSV, then one `TOTAL` row per currency.
    Csv,
    /// One JSON document: columns, rows as objects, totals per currency.
    Json,
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
    #[error(transparent)]
    OneShot(#[from] OneShotError),
    #[error("Infobip could not run the query: {0}")]
    Failed(String),
    #[error("the callback body is not a usable BillingUsageResult: {0}")]
    Unusable(String),
}

impl QueryError {
    pub fn reason(&self) -> &'static str {
        match self {
            QueryError::DateOrder { .. }
            | QueryError::BeforeRetention { .. }
            | QueryError::Future { .. }
            | QueryError::DayAndMonth => "usage",
            QueryError::OneShot(e) => e.reason(),
            QueryError::Failed(_) => "failed_result",
            QueryError::Unusable(_) => "unusable_result",
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

/// Runs the query and prints the result on stdout; progress goes to stderr on a terminal only.
pub async fn run(
    args: QueryArgs,
    clock: &dyn Clock,
    shutdown: CancellationToken,
) -> Result<String, QueryError> {
    let request = args.filters.request(clock.today())?;
    let target = args.target.resolve()?;
    let client = oneshot::client(&target)?;
    let receiver = Receiver::bind(
        args.callback.callback_listen,
        args.callback.public_url.as_deref(),
    )
    .await?;
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
    render(&result, args.format)
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

/// A successful result as rows of display text, with the totals per currency.
struct Table {
    columns: Vec<String>,
    /// Which columns hold numbers (right-aligned in the table).
    numeric: Vec<bool>,
    rows: Vec<Vec<Cell>>,
    totals: BTreeMap<String, Decimal>,
}

impl Table {
    fn of(result: &BillingUsageResult) -> Result<Self, QueryError> {
        if result.status != QueryAggregateDataStatus::Success {
            return Err(QueryError::Failed(
                result
                    .failure_message
                    .clone()
                    .unwrap_or_else(|| "no failure message".to_owned()),
            ));
        }
        let response = result
            .response
            .as_ref()
            .ok_or_else(|| QueryError::Unusable("SUCCESS without a response".into()))?;
        let columns: Vec<String> = response
            .columns
            .iter()
            .map(|c| c.column_name.clone())
            .collect();
        let col = |name: &str| columns.iter().position(|c| c == name);
        let mut rows = Vec::with_capacity(response.rows.len());
        for (i, row) in response.rows.iter().enumerate() {
            if row.len() != columns.len() {
                return Err(QueryError::Unusable(format!(
                    "row {i} has {} cells for {} columns",
                    row.len(),
                    columns.len()
                )));
            }
            let mut row = row.clone();
            for time_col in ["DAY", "MONTH"] {
                if let Some(c) = col(time_col) {
                    row[c] = short_time(&row[c], time_col == "MONTH");
                }
            }
            rows.push(row);
        }
        // Stable output: rows ordered by their dimension values (dates sort as text).
        rows.sort_by_cached_key(|r| r.iter().map(cell_text).collect::<Vec<_>>());
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        if let (Some(total), Some(currency)) = (col("TOTAL_PER_UNIT"), col("CURRENCY")) {
            for row in &rows {
                if let (Cell::Number(amount), Cell::Text(code)) = (&row[total], &row[currency]) {
                    *totals.entry(code.clone()).or_default() += *amount;
                }
            }
        }
        let numeric = (0..columns.len())
            .map(|c| rows.iter().any(|r| matches!(r[c], Cell::Number(_))))
            .collect();
        Ok(Self {
            columns,
            numeric,
            rows,
            totals,
        })
    }
}

/// `2026-11-01T00:00:00.000+0000` as `2026-11-01` (or `2026-11` for MONTH); anything else as is.
fn short_time(cell: &Cell, month: bool) -> Cell {
    match cell {
        Cell::Text(t) => match parse_instant(t) {
            Some(at) if month => Cell::Text(YearMonth::of(at.date()).to_string()),
            Some(at) => Cell::Text(at.date().to_string()),
            None => cell.clone(),
        },
        other => other.clone(),
    }
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => t.clone(),
        Cell::Number(n) => n.to_string(),
        Cell::NotApplicable => NOT_APPLICABLE.to_owned(),
    }
}

/// The printed form of a result.
pub fn render(result: &BillingUsageResult, format: OutputFormat) -> Result<String, QueryError> {
    let table = Table::of(result)?;
    Ok(match format {
        OutputFormat::Table => render_table(&table),
        OutputFormat::Csv => render_csv(&table),
        OutputFormat::Json => render_json(result, &table),
    })
}

fn render_table(t: &Table) -> String {
    let texts: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(cell_text).collect())
        .collect();
    let widths: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .map(|(c, name)| {
            texts
                .iter()
                .map(|r| r[c].chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (c, text) in cells.iter().enumerate() {
            let w = widths[c];
            if c > 0 {
                l.push_str("  ");
            }
            let _ = if t.numeric[c] {
                write!(l, "{text:>w$}")
            } else {
                write!(l, "{text:<w$}")
            };
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&t.columns);
    for row in &texts {
        line(row);
    }
    if t.rows.is_empty() {
        out.push_str("(no rows)\n");
    }
    if !t.totals.is_empty() {
        out.push('\n');
        let w = t
            .totals
            .values()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(0);
        for (currency, total) in &t.totals {
            let _ = writeln!(out, "TOTAL {currency} {:>w$}", total.to_string());
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn render_csv(t: &Table) -> String {
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let fields: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    };
    line(t.columns.clone());
    for row in &t.rows {
        line(row.iter().map(cell_text).collect());
    }
    let total_col = t.columns.iter().position(|c| c == "TOTAL_PER_UNIT");
    let currency_col = t.columns.iter().position(|c| c == "CURRENCY");
    if let (Some(tc), Some(cc)) = (total_col, currency_col) {
        for (currency, total) in &t.totals {
            let mut cells = vec![String::new(); t.columns.len()];
            cells[0] = "TOTAL".to_owned();
            cells[tc] = total.to_string();
            cells[cc] = currency.clone();
            line(cells);
        }
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonOutput<'a> {
    request_id: &'a str,
    /// The period Infobip used, `until` inclusive like the command line.
    period: Option<JsonPeriod>,
    billing_periods: Vec<JsonBillingPeriod<'a>>,
    columns: &'a [String],
    rows: Vec<BTreeMap<&'a str, &'a Cell>>,
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
    /// A JSON number with the exact decimal digits.
    total: Cell,
}

fn render_json(result: &BillingUsageResult, t: &Table) -> String {
    let period = result.response.as_ref().map(|r| {
        let days = r.requested_period.covered_days();
        JsonPeriod {
            from: days.since.to_string(),
            until: days.until.previous_day().unwrap_or(days.until).to_string(),
        }
    });
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
        columns: &t.columns,
        rows: t
            .rows
            .iter()
            .map(|r| t.columns.iter().map(String::as_str).zip(r).collect())
            .collect(),
        totals: t
            .totals
            .iter()
            .map(|(currency, total)| JsonTotal {
                currency,
                total: Cell::Number(*total),
            })
            .collect(),
    };
    // Serializing plain structs of strings, numbers and maps with string keys cannot fail.
    let mut text = serde_json::to_string_pretty(&out).unwrap_or_default();
    text.push('\n');
    text
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

    #[test]
    fn table_is_aligned_with_totals_per_currency() {
        let text = render(&result(ROWS), OutputFormat::Table).unwrap();
        assert_eq!(
            text,
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
    fn csv_quotes_and_appends_totals() {
        let text = render(&result(ROWS), OutputFormat::Csv).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "DAY,ACCOUNT_NAME,UNIT_TYPE,QUANTITY,TOTAL_PER_UNIT,CURRENCY"
        );
        assert_eq!(lines[1], "2026-11-01,\"Acme, Inc\",message,1200,12.05,EUR");
        assert_eq!(lines[4], "TOTAL,,,,12.15,EUR");
        assert_eq!(lines[5], "TOTAL,,,,1.5,USD");
    }

    #[test]
    fn json_keeps_exact_numbers() {
        let text = render(&result(ROWS), OutputFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["period"],
            serde_json::json!({"from": "2026-11-01", "until": "2026-11-02"})
        );
        assert_eq!(v["rows"][0]["DAY"], "2026-11-01");
        assert!(text.contains("\"total\": 12.15"), "{text}");
        assert_eq!(v["billingPeriods"][0]["volumeFinalized"], false);
    }

    #[test]
    fn failed_result_is_an_error() {
        let failed: BillingUsageResult = serde_json::from_str(
            r#"{"requestId":"R","status":"FAILED","failureMessage":"Could not load data"}"#,
        )
        .unwrap();
        let err = render(&failed, OutputFormat::Table).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Infobip could not run the query: Could not load data"
        );
    }
}
