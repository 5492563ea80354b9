//! Secret names: validation and near-duplicate detection.

use std::collections::BTreeMap;

use crate::{Error, NameProblem};

/// Podman's limit on a secret name, in bytes.
pub const MAX_NAME_BYTES: usize = 253;

/// Checks `name` against exactly the rules of `podman secret create`.
///
/// Podman 5 accepts a name of 1 to 253 bytes without `=`, `/`, `,` or NUL,
/// and nothing else: spaces, newlines, a leading `-` or `.`, and any Unicode
/// pass. Use this for names that already exist; use [`validate_name`] for
/// names you are about to create.
///
/// ```
/// use homelab_secrets::validate_podman_name;
///
/// assert!(validate_podman_name("redis password").is_ok());
/// assert!(validate_podman_name("immich/db").is_err());
/// ```
pub fn validate_podman_name(name: &str) -> Result<(), Error> {
    podman_problem(name).map_or(Ok(()), |problem| Err(invalid(name, problem)))
}

/// Checks a name for a new secret: Podman's rules
/// ([`validate_podman_name`]) and, beyond them, only ASCII letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit.
///
/// Podman accepts `my secret`, but a Quadlet `Secret=my secret,type=env`
/// line splits it into two secrets; a leading `-` reads as an option on the
/// command line. Such names are refused here, with the reason.
///
/// ```
/// use homelab_secrets::validate_name;
///
/// assert!(validate_name("postgres-password").is_ok());
/// let error = validate_name("redis password").unwrap_err();
/// assert!(error.to_string().contains("byte 5"));
/// ```
pub fn validate_name(name: &str) -> Result<(), Error> {
    let problem = podman_problem(name).or_else(|| portable_problem(name));
    problem.map_or(Ok(()), |problem| Err(invalid(name, problem)))
}

fn invalid(name: &str, problem: NameProblem) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        problem,
    }
}

fn podman_problem(name: &str) -> Option<NameProblem> {
    if name.is_empty() {
        return Some(NameProblem::Empty);
    }
    if let Some((offset, character)) = name
        .char_indices()
        .find(|&(_, c)| matches!(c, '=' | '/' | ',' | '\0'))
    {
        return Some(NameProblem::Forbidden { character, offset });
    }
    (name.len() > MAX_NAME_BYTES).then_some(NameProblem::TooLong {
        bytes: name.len(),
        maximum: MAX_NAME_BYTES,
    })
}

fn portable_problem(name: &str) -> Option<NameProblem> {
    let first = name.chars().next()?;
    if let Some((offset, character)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(NameProblem::NotPortable { character, offset });
    }
    (!first.is_ascii_alphanumeric()).then_some(NameProblem::BadStart { character: first })
}

/// Two existing secret names that differ only in letter case or in the
/// separators `-`, `_` and `.`, such as `redis_password` and
/// `redis-password`: easy to mix up, and often a leftover of an earlier
/// set-up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct NearDuplicate {
    /// The name that sorts first.
    pub first: String,
    /// The name that sorts second.
    pub second: String,
}

impl std::fmt::Display for NearDuplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "secrets `{}` and `{}` differ only in case or in `-`, `_` and `.`",
            self.first, self.second
        )
    }
}

/// The form two names share when they are near-duplicates: lower case,
/// separators removed.
fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// All pairs of near-duplicate names among `names`, sorted.
///
/// A name that appears more than once is counted once. Three names that
/// fold together give three pairs.
///
/// ```
/// use homelab_secrets::near_duplicates;
///
/// let pairs = near_duplicates(["redis_password", "redis-password", "postgres-password"]);
/// assert_eq!(pairs.len(), 1);
/// assert_eq!(pairs[0].first, "redis-password");
/// assert_eq!(pairs[0].second, "redis_password");
/// ```
pub fn near_duplicates<I, S>(names: I) -> Vec<NearDuplicate>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        let name = name.as_ref();
        let group = groups.entry(fold(name)).or_default();
        if !group.iter().any(|known| known == name) {
            group.push(name.to_owned());
        }
    }
    let mut pairs = Vec::new();
    for mut group in groups.into_values() {
        group.sort();
        for (i, first) in group.iter().enumerate() {
            for second in &group[i + 1..] {
                pairs.push(NearDuplicate {
                    first: first.clone(),
                    second: second.clone(),
                });
            }
        }
    }
    pairs.sort();
    pairs
}

/// The names among `existing` that are near-duplicates of `name` (not
/// `name` itself), sorted. Use it before creating `name`, to warn that a
/// look-alike already exists.
///
/// ```
/// use homelab_secrets::near_duplicates_of;
///
/// let existing = ["redis_password", "Redis.Password", "redis-password"];
/// assert_eq!(
///     near_duplicates_of("redis-password", existing),
///     ["Redis.Password", "redis_password"]
/// );
/// ```
pub fn near_duplicates_of<I, S>(name: &str, existing: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let folded = fold(name);
    let mut found: Vec<String> = existing
        .into_iter()
        .map(|other| other.as_ref().to_owned())
        .filter(|other| other != name && fold(other) == folded)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn problem(result: Result<(), Error>) -> NameProblem {
        match result {
            Err(Error::InvalidName { problem, .. }) => problem,
            other => panic!("expected an invalid name, got {other:?}"),
        }
    }

    /// The outcomes recorded from `podman secret create NAME -` on podman
    /// 5.4.2.
    #[test]
    fn podman_rules_match_podman_5() {
        let accepted = [
            "a",
            "idbt-a b",
            ".idbt-a",
            "-idbt",
            "_idbt",
            "idbt.a",
            "IDBT-A",
            "idbt-é",
            "idbt:a",
            "idbt+a",
            "idbt@a",
            "0idbt",
            "idbt-a\nb",
            "idbt-a\tb",
            "idbt-\u{1}",
            "idbt-a\\b",
            "idbt-'\"",
        ];
        for name in accepted {
            assert!(validate_podman_name(name).is_ok(), "{name:?}");
        }
        assert!(validate_podman_name(&format!("idbt-{}", "a".repeat(248))).is_ok());
        // The limit counts bytes: 5 + 124 * 2 = 253 passes, 255 fails.
        assert!(validate_podman_name(&format!("idbt-{}", "é".repeat(124))).is_ok());
        assert_eq!(
            problem(validate_podman_name(&format!("idbt-{}", "é".repeat(125)))),
            NameProblem::TooLong {
                bytes: 255,
                maximum: 253
            }
        );
        assert_eq!(
            problem(validate_podman_name(&format!("idbt-{}", "a".repeat(249)))),
            NameProblem::TooLong {
                bytes: 254,
                maximum: 253
            }
        );
        assert_eq!(problem(validate_podman_name("")), NameProblem::Empty);
        for (name, character, offset) in [
            ("idbt-a/b", '/', 6),
            ("idbt=a", '=', 4),
            ("idbt,a", ',', 4),
            ("a\0", '\0', 1),
        ] {
            assert_eq!(
                problem(validate_podman_name(name)),
                NameProblem::Forbidden { character, offset }
            );
        }
    }

    #[test]
    fn portable_rules() {
        for name in ["postgres-password", "immich_jwt.secret", "A1", "0abc"] {
            assert!(validate_name(name).is_ok(), "{name:?}");
        }
        assert_eq!(
            problem(validate_name("redis password")),
            NameProblem::NotPortable {
                character: ' ',
                offset: 5
            }
        );
        assert_eq!(
            problem(validate_name("-x")),
            NameProblem::BadStart { character: '-' }
        );
        assert_eq!(
            problem(validate_name(".hidden")),
            NameProblem::BadStart { character: '.' }
        );
        assert_eq!(
            problem(validate_name("pässword")),
            NameProblem::NotPortable {
                character: 'ä',
                offset: 1
            }
        );
        // Podman's own rules win where both apply.
        assert_eq!(
            problem(validate_name("a b/c")),
            NameProblem::Forbidden {
                character: '/',
                offset: 3
            }
        );
    }

    #[test]
    fn error_message_says_what_where_and_how() {
        let message = validate_name("immich db").unwrap_err().to_string();
        assert!(message.contains("\"immich db\""), "{message}");
        assert!(message.contains("byte 6"), "{message}");
        assert!(message.contains("use only ASCII letters"), "{message}");
        let message = validate_name("a\nb").unwrap_err().to_string();
        assert!(
            !message.contains('\n'),
            "control characters are escaped: {message}"
        );
    }

    #[test]
    fn near_duplicates_from_the_journal() {
        let pairs = near_duplicates([
            "postgres-password",
            "redis-password",
            "immich-jwt-secret",
            "redis_password",
        ]);
        assert_eq!(
            pairs,
            [NearDuplicate {
                first: "redis-password".into(),
                second: "redis_password".into()
            }]
        );
        assert_eq!(
            pairs[0].to_string(),
            "secrets `redis-password` and `redis_password` differ only in case or in `-`, `_` and `.`"
        );
    }

    #[test]
    fn near_duplicates_cover_case_and_every_separator() {
        let pairs = near_duplicates(["a-b", "A_B", "a.b", "ab", "a-c", "a-b"]);
        let names: Vec<_> = pairs
            .iter()
            .map(|p| (p.first.as_str(), p.second.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("A_B", "a-b"),
                ("A_B", "a.b"),
                ("A_B", "ab"),
                ("a-b", "a.b"),
                ("a-b", "ab"),
                ("a.b", "ab")
            ]
        );
        assert!(near_duplicates(["db-password", "db-passwords"]).is_empty());
        assert!(near_duplicates(Vec::<String>::new()).is_empty());
    }

    #[test]
    fn near_duplicates_of_one_name() {
        assert_eq!(
            near_duplicates_of("redis-password", ["redis_password", "redis-password", "x"]),
            ["redis_password"]
        );
        assert!(near_duplicates_of("new", ["old"]).is_empty());
    }

    proptest! {
        #[test]
        fn names_are_refused_for_what_podman_and_portability_forbid(
            name in prop_oneof![
                any::<String>(),
                "[a-zA-Z0-9=/,\0 ._é-]{0,12}",
                "[a-z]{250,256}",
            ]
        ) {
            // The oracle: podman's rules as its documentation states them.
            let forbidden = name.char_indices().find(|(_, c)| "=/,\0".contains(*c));
            let expected = if name.is_empty() {
                Some(NameProblem::Empty)
            } else if let Some((offset, character)) = forbidden {
                Some(NameProblem::Forbidden { character, offset })
            } else if name.len() > MAX_NAME_BYTES {
                Some(NameProblem::TooLong { bytes: name.len(), maximum: MAX_NAME_BYTES })
            } else {
                None
            };
            let problem = |r: Result<(), Error>| match r {
                Ok(()) => Ok(None),
                Err(Error::InvalidName { name: given, problem }) if given == name => Ok(Some(problem)),
                Err(other) => Err(TestCaseError::fail(format!("{other:?}"))),
            };
            prop_assert_eq!(problem(validate_podman_name(&name))?, expected.clone());
            // A portable name is a podman name of ASCII letters, digits, `-`,
            // `_` and `.` that starts with a letter or digit.
            let portable = expected.is_none()
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            let refused = problem(validate_name(&name))?;
            prop_assert_eq!(refused.is_none(), portable, "{:?}", refused);
            if expected.is_some() {
                // Podman's own refusal comes first.
                prop_assert_eq!(refused, expected);
            }
        }

        #[test]
        fn portable_names_pass(name in "[A-Za-z0-9][A-Za-z0-9._-]{0,252}") {
            prop_assert!(validate_name(&name).is_ok());
        }

        #[test]
        fn separator_and_case_variants_are_found(
            words in proptest::collection::vec("[a-z]{1,8}", 2..4),
            seps in proptest::collection::vec(proptest::sample::select(vec!["-", "_", ".", ""]), 2),
        ) {
            let a = words.join(seps[0]);
            let b = words.join(seps[1]).to_uppercase();
            let pairs = near_duplicates([&a, &b]);
            prop_assert_eq!(pairs.len(), usize::from(a != b));
            prop_assert_eq!(near_duplicates_of(&a, [&b]).len(), usize::from(a != b));
        }

        #[test]
        fn pairs_are_ordered_and_distinct(names in proptest::collection::vec("[aAbB._-]{1,4}", 0..12)) {
            for pair in near_duplicates(&names) {
                prop_assert!(pair.first < pair.second);
                prop_assert_eq!(fold(&pair.first), fold(&pair.second));
            }
        }
    }
}
