//! `query`: one Billing Usage query from the terminal, with every filter and dimension of the API
//! (reference §3, §4), printed as a table with per-currency totals, or written as clean CSV,
//! JSON, FOCUS or XLSX (`commands::render`). Dates on the command line are inclusive; the
//! exclusive `sentUntil` is computed here (reference A1).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use time::Date;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, DayRange, YearMonth, retention_start};
use crate::commands::oneshot::{self, CallbackArgs, OneShotError, Phase, Receiver, TargetArgs};
use crate::commands::output::{self, WriteError};
pub use crate::commands::render::OutputFormat;
use crate::commands::render::{Context, Output, RenderError, render};
use crate::daemon::scheduler::AGGREGATE_BY;
use crate::infobip::filters::{self, UsageFilter};
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageQueryOptions, BillingUsageResult, Category, DateInterval,
    Direction, Platform, QueryBillingUsageApiRequest, SubCategory,
};

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
    #[error("the callback body is not a usable BillingUsageResult: {0}")]
    Unusable(String),
    #[error(transparent)]
    Render(#[from] RenderError),
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
            QueryError::Unusable(_) => "unusable_result",
            QueryError::Render(e) => e.reason(),
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

/// FOCUS has one charge per day and sub-account: the dimensions are the daemon's (DAY,
/// ACCOUNT_NAME, ACCOUNT_KEY, CATEGORY_CODE), then the others asked for, so with no `--by`
/// the rows and their rounding are those behind `/metrics`.
fn focus_grouping(by: &mut Vec<BillingUsageAggregate>) -> Result<(), QueryError> {
    if by.contains(&BillingUsageAggregate::MONTH) {
        return Err(QueryError::FocusByMonth);
    }
    let extra: Vec<BillingUsageAggregate> = by
        .iter()
        .filter(|d| !AGGREGATE_BY.contains(d))
        .copied()
        .collect();
    *by = AGGREGATE_BY.iter().copied().chain(extra).collect();
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

    #[test]
    fn focus_asks_for_days_and_sub_accounts() {
        let mut by = vec![BillingUsageAggregate::CATEGORY_CODE];
        focus_grouping(&mut by).unwrap();
        assert_eq!(by, AGGREGATE_BY);
        let mut by = vec![
            BillingUsageAggregate::TRAFFIC_TYPE,
            BillingUsageAggregate::DAY,
        ];
        focus_grouping(&mut by).unwrap();
        assert_eq!(by[..4], AGGREGATE_BY);
        assert_eq!(by[4..], [BillingUsageAggregate::TRAFFIC_TYPE]);
        let mut by = vec![BillingUsageAggregate::MONTH];
        assert_eq!(
            focus_grouping(&mut by).unwrap_err().to_string(),
            "--format focus has one charge per day: drop --by MONTH"
        );
    }
}
