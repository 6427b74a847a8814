//! The upstream: wire types, result decoding and the HTTP client.

pub mod client;
pub mod key;
pub mod model;
pub mod result;
