//! The synthetic customer and the query engine.
//!
//! The customer is a list of traffic *streams*: one per combination of every dimension (account,
//! channel, traffic type, country, network, sender, …). A stream's units on a day are a pure
//! function of (seed, stream, day) and of how far that day's processing has gone at `now`
//! (late records, retroactive discounts, price corrections), frozen once the month is final
//! (reference §6, A21). A query filters the streams, groups them by the requested dimensions plus
//! unit type, unit price and currency (so `TOTAL_PER_UNIT = UNIT_PRICE × QUANTITY` holds per row,
//! A17), and sums the units.
//!
//! - [`catalogue`]: the products, countries and names the customer is drawn from.
//! - [`customer`]: the accounts and streams a seed and a scale give, held by [`dataset`].
//! - [`revisions`]: how a day's figures move until its month is final.
//! - [`query`]: the query engine, with [`filter`], [`period`] and [`columns`] reading the request.
//! - [`table`]: the compact answer, streamed as the callback body by [`body`].
//! - [`symbols`] and [`hashing`]: interned dimension values and the seeded hash.

mod body;
mod catalogue;
mod columns;
mod customer;
mod dataset;
mod filter;
mod hashing;
mod period;
mod query;
mod revisions;
mod symbols;
mod table;

pub use dataset::AccountInfo;
pub(super) use dataset::Dataset;
pub(super) use hashing::{hash, unit_interval};

pub const MAX_ACCOUNTS: usize = 10_000;
pub const MAX_COUNTRIES: usize = catalogue::COUNTRIES.len();
pub const MAX_SENDERS: usize = 100;
