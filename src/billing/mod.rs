//! The billing domain: calendar, labels, ledger segments, their series and their file format.
//! Nothing here does I/O or knows the layers above.

pub mod budget;
pub mod calendar;
pub mod facts;
pub mod labels;
pub mod ledger;
pub mod snapshot;
pub mod state;
