//! A request's filters, matched against the streams.

use super::dataset::{Dataset, Stream};
use super::symbols::{Atom, NA, Sym, UNKNOWN};
use crate::infobip::model::{BillingUsageAggregate as Agg, QueryBillingUsageApiRequest};

/// A request's filters as sets of interned values: within a filter any value matches (OR),
/// across filters all must (AND). A value the dataset never had matches nothing.
pub(super) struct Filter {
    dims: Vec<(usize, Vec<Sym>)>,
    platforms: Vec<(Option<Sym>, Option<Sym>)>,
}

impl Filter {
    pub(super) fn new(data: &Dataset, request: &QueryBillingUsageApiRequest) -> Self {
        let f = &request.filter_by;
        let text = |s: &str| {
            data.ids
                .get(&Atom::Text(s.into()))
                .copied()
                .unwrap_or(UNKNOWN)
        };
        let texts = |v: &[String]| v.iter().map(|s| text(s)).collect::<Vec<_>>();
        let mut dims = Vec::new();
        let mut add = |d: Agg, values: Vec<Sym>, present: bool| {
            if present {
                dims.push((d as usize, values));
            }
        };
        add(
            Agg::ACCOUNT_KEY,
            texts(&f.account_keys),
            !f.account_keys.is_empty(),
        );
        add(
            Agg::CATEGORY_CODE,
            f.categories.iter().map(|c| text(c.as_str())).collect(),
            !f.categories.is_empty(),
        );
        add(
            Agg::SUBCATEGORY_CODE,
            f.sub_categories.iter().map(|c| text(c.as_str())).collect(),
            !f.sub_categories.is_empty(),
        );
        add(
            Agg::COUNTRY_CODE,
            texts(&f.country_codes),
            !f.country_codes.is_empty(),
        );
        add(
            Agg::DIRECTION,
            f.directions.iter().map(|d| text(d.as_str())).collect(),
            !f.directions.is_empty(),
        );
        add(
            Agg::TRAFFIC_TYPE,
            texts(&f.traffic_types),
            !f.traffic_types.is_empty(),
        );
        add(Agg::SENDER, texts(&f.senders), !f.senders.is_empty());
        add(
            Agg::SENDER_TYPE,
            texts(&f.sender_types),
            !f.sender_types.is_empty(),
        );
        add(
            Agg::CAMPAIGN_REFERENCE,
            texts(&f.campaign_reference_ids),
            !f.campaign_reference_ids.is_empty(),
        );
        add(
            Agg::CAMPAIGN_ID,
            f.campaign_ids
                .iter()
                .map(|i| data.ids.get(&Atom::Int(*i)).copied().unwrap_or(UNKNOWN))
                .collect(),
            !f.campaign_ids.is_empty(),
        );
        add(
            Agg::TEMPLATE_ID,
            texts(&f.template_ids),
            !f.template_ids.is_empty(),
        );
        let platforms = f
            .platforms
            .iter()
            .map(|p| {
                (
                    p.application_id.as_deref().map(text),
                    p.entity_id.as_deref().map(text),
                )
            })
            .collect();
        Self { dims, platforms }
    }

    pub(super) fn matches(&self, stream: &Stream) -> bool {
        let dims_ok = self.dims.iter().all(|(d, values)| {
            let v = stream.dims[*d];
            v != NA && values.contains(&v)
        });
        dims_ok
            && (self.platforms.is_empty() || {
                let app = stream.dims[Agg::APPLICATION_ID as usize];
                let entity = stream.dims[Agg::ENTITY_ID as usize];
                app != NA
                    && self
                        .platforms
                        .iter()
                        .any(|(a, e)| a.is_none_or(|a| a == app) && e.is_none_or(|e| e == entity))
            })
    }
}
