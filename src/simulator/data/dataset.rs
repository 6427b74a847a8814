//! The generated customer: its accounts, interned values, list prices and traffic streams.

use std::collections::HashMap;

use rust_decimal::Decimal;
use time::{Date, Weekday};

use super::revisions::FINAL_REVISION;
use super::symbols::{Atom, Sym};
use crate::infobip::model::BillingUsageAggregate as Agg;

pub(super) const DIMS: usize = Agg::ALL.len();

/// One account of the simulated hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    /// 32 uppercase hex characters, like Infobip's hashed account ids.
    pub key: String,
    /// The account bills in this currency only.
    pub currency: String,
    /// The parent has none; sub-accounts name the parent's key.
    pub parent_key: Option<String>,
}

/// A combination of every dimension, with what it costs and how much it sends.
pub(super) struct Stream {
    /// Stable identity from the stream's own coordinates, so its figures do not depend on
    /// what else the scale adds.
    pub(super) id: u64,
    pub(super) dims: [Sym; DIMS],
    pub(super) unit: Sym,
    pub(super) currency: Sym,
    /// Index into `Dataset::list_prices`.
    pub(super) list_price: u32,
    /// Whether the account earns the retroactive volume discount.
    pub(super) discount: bool,
    /// Weekday units per day, in thousandths.
    pub(super) volume_milli: u64,
    pub(super) weekend_per_mille: u64,
    /// Share of a day's units that arrive late, per mille.
    pub(super) late_per_mille: u64,
}

impl Stream {
    /// Units of the stream on `day` as seen at revision `r`, before the running-day cut.
    pub(super) fn units(&self, day: Date, r: u64, h: u64) -> u64 {
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        let shape = if weekend {
            self.weekend_per_mille
        } else {
            1000
        };
        let noise = 700 + h % 601;
        let milli = self.volume_milli * shape / 1000 * noise / 1000;
        // Stochastic rounding keeps small streams alive on average.
        let full = milli / 1000 + u64::from((h >> 20) % 1000 < milli % 1000);
        let missing = full * self.late_per_mille * (FINAL_REVISION - r) / (FINAL_REVISION * 1000);
        full - missing
    }
}

pub(in crate::simulator) struct Dataset {
    pub(super) atoms: Vec<Atom>,
    pub(super) ids: HashMap<Atom, Sym>,
    pub(super) accounts: Vec<AccountInfo>,
    pub(super) list_prices: Vec<Decimal>,
    pub(super) streams: Vec<Stream>,
}

impl Dataset {
    pub(in crate::simulator) fn accounts(&self) -> Vec<AccountInfo> {
        self.accounts.clone()
    }

    pub(super) fn atom(&self, sym: Sym) -> Option<&Atom> {
        self.atoms.get(sym as usize)
    }
}
