//! Every unknown key of a file at once. serde stops at the first one, so the file is read again
//! as a YAML tree: each unknown key found is taken out of the tree and the tree deserialized
//! again, until none is left.

use serde::de::DeserializeOwned;
use serde_norway::Value;
use serde_path_to_error::Segment;

use super::problems::Problem;

/// More than this many typos in one file is not a config worth reading further.
const MAX_REPORTED: usize = 100;

/// Whether serde's message is about an unknown key.
pub(super) fn is_unknown_key(message: &str) -> bool {
    message.contains("unknown field `")
}

/// The unknown keys of `text` as `T` reads it, in the order serde meets them: one problem each,
/// at the path of the mapping that holds the key. Empty when `text` has none (or is no YAML).
pub(super) fn unknown_keys<T: DeserializeOwned>(text: &str) -> Vec<Problem> {
    let Ok(mut tree) = serde_norway::from_str::<Value>(text) else {
        return Vec::new();
    };
    scalars_as_strings(&mut tree);
    let mut found = Vec::new();
    while found.len() < MAX_REPORTED {
        let Err(err) = serde_path_to_error::deserialize::<_, T>(tree.clone()) else {
            break;
        };
        let message = err.inner().to_string();
        let segments: Vec<&Segment> = err.path().iter().collect();
        let Some((Segment::Map { key }, parents)) = segments.split_last() else {
            break;
        };
        if !is_unknown_key(&message) || !remove(&mut tree, parents, key) {
            break;
        }
        found.push(Problem::new(path_text(parents), message));
    }
    found
}

/// The raw config reads every scalar as a string, as serde_norway does from text; a tree holds
/// typed scalars, which would fail as the wrong type before their key is checked.
fn scalars_as_strings(value: &mut Value) {
    match value {
        Value::Number(n) => *value = Value::String(n.to_string()),
        Value::Bool(b) => *value = Value::String(b.to_string()),
        Value::Sequence(items) => items.iter_mut().for_each(scalars_as_strings),
        Value::Mapping(map) => map.values_mut().for_each(scalars_as_strings),
        Value::Tagged(tagged) => scalars_as_strings(&mut tagged.value),
        Value::Null | Value::String(_) => {}
    }
}

/// Takes `key` out of the mapping at `parents`; false when it is not there.
fn remove(tree: &mut Value, parents: &[&Segment], key: &str) -> bool {
    let mut at = tree;
    for segment in parents {
        let next = match (segment, at) {
            (Segment::Map { key }, Value::Mapping(map)) => map.get_mut(key.as_str()),
            (Segment::Seq { index }, Value::Sequence(items)) => items.get_mut(*index),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        at = next;
    }
    match at {
        Value::Mapping(map) => map.remove(key).is_some(),
        _ => false,
    }
}

/// `budgets[0].match`, as the rest of validation writes paths; the root is `config`.
fn path_text(parents: &[&Segment]) -> String {
    let mut text = String::new();
    for segment in parents {
        match segment {
            Segment::Map { key } => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            Segment::Enum { variant } => text.push_str(variant),
            Segment::Unknown => text.push('?'),
        }
    }
    if text.is_empty() {
        text.push_str("config");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;

    #[test]
    fn every_unknown_key_is_found_with_its_path() {
        let text = "intervall: 1h\ndays: 35\ntargets:\n  - name: eu\n    api_key: x\nbudgets:\n  - name: b\n    monthly: 10\n    match: { target: eu, country: DE }\nbogus: { a: 1 }\n";
        let found: Vec<String> = unknown_keys::<Option<RawConfig>>(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].starts_with("config: unknown field `intervall`, expected one of `targets`")
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("targets[0]: unknown field `api_key`"))
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("budgets[0].match: unknown field `country`"))
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("config: unknown field `bogus`"))
        );
    }

    #[test]
    fn a_file_without_unknown_keys_has_none() {
        assert!(unknown_keys::<Option<RawConfig>>("days: 35\ninterval: 1h\n").is_empty());
        assert!(unknown_keys::<Option<RawConfig>>(": : [").is_empty());
    }
}
