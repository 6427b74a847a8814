//! The upstream: wire types, result decoding and the HTTP client.

pub mod client;
pub mod filters;
pub mod key;
pub mod model;
pub mod result;
