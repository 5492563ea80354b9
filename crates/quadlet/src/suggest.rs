//! Fixes that name what was probably meant: the closest known name, and the
//! unit file a reference to a missing one meant.

use crate::naming::{self, UnitKind};
use crate::set::{SourceUnit, UnitSet};

/// A fix for a reference (through `key`) to a missing file.
pub(crate) fn suggest_unit(set: &UnitSet, key: &str, file_name: &str) -> Option<String> {
    let kind = UnitKind::of_file_name(file_name)?;
    let base = naming::base_name(file_name);
    let same_kind: Vec<&SourceUnit> = set.units().iter().filter(|u| u.kind == kind).collect();
    let name_it = |file: &str| {
        if key == "Network" {
            format!("`Network={file}`")
        } else {
            format!("{file} instead")
        }
    };
    // The podman name used as a file name: `systemd-photos.network`.
    if let Some(u) = same_kind
        .iter()
        .find(|u| u.names.resource.as_deref() == Some(base))
    {
        let by_name = if key == "Network" {
            format!(
                ", or the network's podman name `Network={base}` (which adds no dependency: then also add Requires= and After= on {})",
                u.names.service
            )
        } else {
            String::new()
        };
        return Some(format!(
            "write {} ({} is the file that creates `{base}`){by_name}",
            name_it(u.file_name()),
            u.file_name()
        ));
    }
    if let Some(u) = base.strip_prefix("systemd-").and_then(|stripped| {
        same_kind
            .iter()
            .find(|u| naming::base_name(u.file_name()) == stripped)
    }) {
        return Some(format!("write {}", name_it(u.file_name())));
    }
    let names: Vec<&str> = same_kind.iter().map(|u| u.file_name()).collect();
    if let Some(close) = closest(file_name, &names, 3) {
        return Some(format!("did you mean {}?", name_it(close)));
    }
    Some(format!(
        "add {file_name} to the directory, or refer to an existing .{kind} file"
    ))
}

/// The closest name to `word` by edit distance (case-insensitive), if close enough.
pub(crate) fn closest<'n>(word: &str, names: &[&'n str], max: usize) -> Option<&'n str> {
    let lower = word.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (distance(&lower, &n.to_ascii_lowercase()), *n))
        .filter(|(d, _)| *d <= max && *d < word.len())
        .min_by_key(|(d, n)| (*d, *n))
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("Enviroment", &["Environment", "Exec"], 3),
            Some("Environment")
        );
        assert_eq!(closest("Xyzzy", &["Environment", "Exec"], 3), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
