//! Runs a request over the streams: filter them, group them by the requested dimensions plus unit
//! type, unit price and currency, and sum their units per time bucket.

use std::collections::HashMap;

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime, UtcOffset};

use super::catalogue::round_price;
use super::columns::{column_type, dimension_columns, format_bucket, time_column};
use super::dataset::{Dataset, Stream};
use super::filter::Filter;
use super::hashing::hash;
use super::period::{billing_periods, effective_period, inside_window};
use super::revisions::{discount_percent, mispriced, revision};
use super::symbols::Sym;
use super::table::{Row, Source, Table, number_text};
use crate::billing::calendar::{DayRange, YearMonth};
use crate::infobip::model::{
    BillingUsageAggregate as Agg, ColumnDataType, ColumnInfo, QueryBillingUsageApiRequest,
};
use crate::simulator::{OutOfWindow, SimulatorOptions};

impl Dataset {
    /// Runs one request at `now`, shaped by the options' §14 choices (A3, A5).
    pub(in crate::simulator) fn query(
        &self,
        request: &QueryBillingUsageApiRequest,
        now: OffsetDateTime,
        opts: &SimulatorOptions,
    ) -> Table<'_> {
        let now = now.to_offset(UtcOffset::UTC);
        let today = now.date();
        let interval = request.filter_by.date_interval;
        let client_period = DayRange {
            since: interval.sent_since,
            until: interval.sent_until,
        };
        // `--out-of-window empty`: a query reaching outside retention finds nothing at all, and
        // says it covered what was asked.
        let nothing = opts.out_of_window == OutOfWindow::Empty && !inside_window(interval, today);
        let period = if nothing {
            client_period
        } else {
            effective_period(request, now)
        };
        let billing_periods = billing_periods(period, now);

        let dims = dimension_columns(&request.aggregate_by);
        let mut columns = Vec::with_capacity(dims.len() + 5);
        let mut sources = Vec::with_capacity(dims.len() + 5);
        let mut grouped = Vec::new();
        for d in &dims {
            columns.push(ColumnInfo::new(d.as_str(), column_type(*d)));
            if matches!(d, Agg::DAY | Agg::MONTH) {
                sources.push(Source::Time);
            } else {
                sources.push(Source::Dim(grouped.len()));
                grouped.push(*d as usize);
            }
        }
        for (name, data_type, source) in [
            ("UNIT_TYPE", ColumnDataType::String, Source::Unit),
            ("UNIT_PRICE", ColumnDataType::Number, Source::Price),
            ("QUANTITY", ColumnDataType::Number, Source::Quantity),
            ("TOTAL_PER_UNIT", ColumnDataType::Number, Source::Total),
            ("CURRENCY", ColumnDataType::String, Source::Currency),
        ] {
            columns.push(ColumnInfo::new(name, data_type));
            sources.push(source);
        }

        // Streams passing every filter, each mapped to its output group.
        let filter = Filter::new(self, request);
        let group_width = grouped.len() + 2;
        let mut group_ids: HashMap<Vec<Sym>, u32> = HashMap::new();
        let mut group_values = Vec::new();
        let mut active: Vec<(&Stream, u32)> = Vec::new();
        let mut key = Vec::with_capacity(group_width);
        for stream in &self.streams {
            if !filter.matches(stream) {
                continue;
            }
            key.clear();
            key.extend(grouped.iter().map(|d| stream.dims[*d]));
            key.push(stream.unit);
            key.push(stream.currency);
            let next = u32::try_from(group_ids.len()).unwrap_or(u32::MAX);
            let group = *group_ids.entry(key.clone()).or_insert_with(|| {
                group_values.extend_from_slice(&key);
                next
            });
            active.push((stream, group));
        }
        let group_count = group_ids.len();
        drop(group_ids);

        // Time buckets: one per day, per month, or one for the whole period.
        let data_days = DayRange {
            since: period.since,
            until: if nothing {
                period.since
            } else {
                period.until.min(today.next_day().unwrap_or(today))
            },
        };
        let time = time_column(&request.aggregate_by);
        let mut buckets: Vec<(String, Vec<Date>)> = Vec::new();
        for day in data_days.days() {
            let label = match time {
                Some(Agg::DAY) => format_bucket(day, opts.datetime_format),
                Some(_) => format_bucket(YearMonth::of(day).first_day(), opts.datetime_format),
                None => String::new(),
            };
            match buckets.last_mut() {
                Some((l, days)) if *l == label => days.push(day),
                _ => buckets.push((label, vec![day])),
            }
        }

        // Prices: per month, each list price with the month's discount, and its mispriced twin.
        let mut prices: Vec<Decimal> = Vec::new();
        let mut price_ids: HashMap<Decimal, u32> = HashMap::new();
        let mut intern_price = |p: Decimal| {
            let next = u32::try_from(prices.len()).unwrap_or(u32::MAX);
            *price_ids.entry(p).or_insert_with(|| {
                prices.push(p);
                next
            })
        };
        let mut month_prices: HashMap<YearMonth, Vec<[u32; 2]>> = HashMap::new();
        for day in data_days.days() {
            let month = YearMonth::of(day);
            if month_prices.contains_key(&month) {
                continue;
            }
            let percent = discount_percent(month, now);
            let mut table = Vec::with_capacity(self.list_prices.len() * 2);
            for list in &self.list_prices {
                for discounted in [false, true] {
                    let off = if discounted { percent } else { 0 };
                    let normal = round_price(*list * Decimal::new(100 - off, 2));
                    let wrong = round_price(normal * Decimal::new(105, 2));
                    table.push([intern_price(normal), intern_price(wrong)]);
                }
            }
            month_prices.insert(month, table);
        }

        let mut rows = Vec::new();
        let mut acc: Vec<Vec<(u32, u64)>> = vec![Vec::new(); group_count];
        let day_seconds = 86_400u64;
        for (bucket, (_, days)) in buckets.iter().enumerate() {
            for &day in days {
                let r = revision(day, now);
                let elapsed = if day == today {
                    u64::try_from((now - today.midnight().assume_utc()).whole_seconds())
                        .unwrap_or(0)
                } else {
                    day_seconds
                };
                let Some(table) = month_prices.get(&YearMonth::of(day)) else {
                    continue;
                };
                let julian = u64::from(day.to_julian_day().unsigned_abs());
                for &(stream, group) in &active {
                    let h = hash(&[stream.id, julian]);
                    let mut units = stream.units(day, r, h);
                    if elapsed < day_seconds {
                        units = units * elapsed / day_seconds;
                    }
                    if units == 0 {
                        continue;
                    }
                    let pair = table[stream.list_price as usize * 2 + usize::from(stream.discount)];
                    let price = pair[usize::from(mispriced(r, h))];
                    let cell = &mut acc[group as usize];
                    match cell.iter_mut().find(|(p, _)| *p == price) {
                        Some((_, q)) => *q += units,
                        None => cell.push((price, units)),
                    }
                }
            }
            let bucket = u32::try_from(bucket).unwrap_or(u32::MAX);
            for (group, cell) in acc.iter_mut().enumerate() {
                for (price, quantity) in cell.drain(..) {
                    rows.push(Row {
                        bucket,
                        group: group as u32,
                        price,
                        quantity,
                    });
                }
            }
        }

        Table {
            data: self,
            requested_period: period,
            client_period,
            billing_periods,
            columns,
            sources,
            buckets: buckets.into_iter().map(|(label, _)| label).collect(),
            group_width,
            group_values,
            price_cells: prices.iter().map(|p| number_text(*p)).collect(),
            prices,
            rows,
        }
    }
}
