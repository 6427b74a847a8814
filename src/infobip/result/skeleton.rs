//! The document around the rows: followed byte by byte as the body streams, to find where
//! `response.columns` ends and `response.rows` starts, and kept to be read with serde at the end.

use serde::Deserialize;

use super::DecodeError;
use super::columns::WireColumn;
use crate::infobip::model::{BillingUsageMetadata, DateTimeInterval, QueryAggregateDataStatus};

/// The document without its rows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Skeleton {
    pub(super) request_id: String,
    pub(super) status: QueryAggregateDataStatus,
    #[serde(default)]
    pub(super) failure_message: Option<String>,
    #[serde(default)]
    pub(super) response: Option<SkeletonResponse>,
    #[serde(default)]
    pub(super) metadata: Option<BillingUsageMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SkeletonResponse {
    pub(super) requested_period: DateTimeInterval,
    pub(super) total_rows: i64,
    pub(super) columns: Vec<WireColumn>,
    /// Always empty here: the decoder took the rows out.
    #[serde(rename = "rows")]
    _rows: [(); 0],
}

/// What a byte of the skeleton means to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Continue,
    /// The `[` of `response.rows`: the bytes up to its `]` are rows, not skeleton.
    RowsOpened,
    /// The `]` of `response.columns`: [`SkeletonScan::columns`] has its text.
    ColumnsClosed,
}

/// Which object a container is, as far as the decoder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Top,
    Response,
    ColumnsArray,
    Other,
}

/// The skeleton's text so far, and where in its strings and containers the last byte was.
pub(super) struct SkeletonScan {
    text: Vec<u8>,
    /// Open containers: which, whether an object, whether a key comes next.
    stack: Vec<(Container, bool, bool)>,
    in_string: bool,
    escaped: bool,
    /// The last object key read, while it may still be the key of the next value.
    key: Vec<u8>,
    capturing_key: bool,
    columns_start: usize,
}

impl SkeletonScan {
    pub(super) fn new() -> Self {
        Self {
            text: Vec::with_capacity(4096),
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            key: Vec::new(),
            capturing_key: false,
            columns_start: 0,
        }
    }

    /// Takes the next byte of the skeleton.
    pub(super) fn byte(&mut self, b: u8) -> Step {
        self.text.push(b);
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                return Step::Continue;
            }
            if self.capturing_key && self.key.len() < 32 {
                self.key.push(b);
            }
            return Step::Continue;
        }
        match b {
            b'"' => {
                self.in_string = true;
                let expecting_key = self.stack.last().is_some_and(|&(_, _, k)| k);
                self.capturing_key = expecting_key;
                if expecting_key {
                    self.key.clear();
                }
            }
            b':' => {
                if let Some(top) = self.stack.last_mut() {
                    top.2 = false;
                }
            }
            b',' => {
                if let Some(top) = self.stack.last_mut() {
                    top.2 = top.1;
                }
                self.key.clear();
            }
            b'{' | b'[' => {
                let parent = self.stack.last().map(|&(c, _, _)| c);
                let kind = match (parent, b, self.key.as_slice()) {
                    (None, b'{', _) => Container::Top,
                    (Some(Container::Top), b'{', b"response") => Container::Response,
                    (Some(Container::Response), b'[', b"rows") => return Step::RowsOpened,
                    (Some(Container::Response), b'[', b"columns") => {
                        self.columns_start = self.text.len() - 1;
                        Container::ColumnsArray
                    }
                    _ => Container::Other,
                };
                self.stack.push((kind, b == b'{', b == b'{'));
                self.key.clear();
            }
            b'}' | b']' => {
                if let Some((Container::ColumnsArray, _, _)) = self.stack.pop() {
                    return Step::ColumnsClosed;
                }
            }
            _ => {}
        }
        Step::Continue
    }

    /// The text of `response.columns`, right after [`Step::ColumnsClosed`].
    pub(super) fn columns(&self) -> &[u8] {
        &self.text[self.columns_start..]
    }

    /// Ends `response.rows`, whose `[` the text has already, as an empty array.
    pub(super) fn close_rows(&mut self) {
        self.text.push(b']');
    }

    pub(super) fn in_string(&self) -> bool {
        self.in_string
    }

    pub(super) fn read(&self) -> Result<Skeleton, DecodeError> {
        serde_json::from_slice(&self.text).map_err(|e| DecodeError::Json(e.to_string()))
    }
}
