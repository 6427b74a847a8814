//! The `name` of list entries (targets, budgets): its syntax, and that it is unique in its list.

use super::problems::Problems;

/// Longest target name: it becomes a label value and a URL path segment, keep it short.
const MAX_NAME_LEN: usize = 63;

/// The `name` of list entry `index` of `list`: valid (`why` says what it is used for) and not
/// already taken by an earlier entry, whose index `seen` remembers.
pub(super) fn unique_name(
    raw: Option<String>,
    (index, list, why): (usize, &str, &str),
    seen: &mut Vec<(String, usize)>,
    p: &mut Problems,
) -> Option<String> {
    let path = format!("{list}[{index}].name");
    let Some(name) = raw else {
        p.push(
            path,
            "missing; expected 1-63 characters from a-z, 0-9, '_' and '-'",
        );
        return None;
    };
    if !valid_target_name(&name) {
        p.push(
            path,
            format!("{name:?} is not a valid name; expected 1-63 characters from a-z, 0-9, '_' and '-' ({why})"),
        );
        return None;
    }
    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
        let singular = list.trim_end_matches('s');
        p.push(
            path,
            format!(
                "{name:?} is already the name of {list}[{first}]; expected unique {singular} names"
            ),
        );
        return None;
    }
    seen.push((name.clone(), index));
    Some(name)
}

fn valid_target_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
