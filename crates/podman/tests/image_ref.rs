//! Property tests of the image-reference parser: what is built from the
//! grammar parses back into its parts, what it accepts is made of the parts it
//! reports, and no input makes it panic.

use homelab_podman::{Error, ImageRef};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// A path component: lowercase letters and digits, in runs joined by the
/// grammar's separators.
fn component() -> impl Strategy<Value = String> {
    let run = "[a-z0-9]{1,6}";
    let separator = prop_oneof![Just("."), Just("_"), Just("__"), Just("-"), Just("---")];
    (run, vec((separator, run), 0..3)).prop_map(|(first, rest)| {
        let mut out = first;
        for (sep, part) in rest {
            out.push_str(sep);
            out.push_str(&part);
        }
        out
    })
}

fn registry() -> impl Strategy<Value = String> {
    let label = "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?";
    prop_oneof![
        (vec(label, 1..3), "(com|io|org|lan)")
            .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join("."))),
        Just("localhost".to_owned()),
        (label, 1u16..=65535).prop_map(|(host, port)| format!("{host}:{port}")),
    ]
}

prop_compose! {
    fn reference()(
        registry in option::of(registry()),
        path in vec(component(), 1..4),
        tag in option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        digest in option::of("[0-9a-f]{64}"),
    ) -> (String, Option<String>, String, Option<String>, Option<String>) {
        let path = path.join("/");
        let mut text = String::new();
        if let Some(r) = &registry {
            text.push_str(r);
            text.push('/');
        }
        text.push_str(&path);
        if let Some(t) = &tag {
            text.push(':');
            text.push_str(t);
        }
        let digest = digest.map(|hex| format!("sha256:{hex}"));
        if let Some(d) = &digest {
            text.push('@');
            text.push_str(d);
        }
        (text, registry, path, tag, digest)
    }
}

proptest! {
    #[test]
    fn references_built_from_the_grammar_parse_into_their_parts(
        (text, registry, path, tag, digest) in reference()
    ) {
        // A first path component that looks like a host is read as one.
        prop_assume!(registry.is_some() || !path.split('/').next().unwrap().contains('.') || !path.contains('/'));
        let image = ImageRef::parse(&text).unwrap();
        prop_assert_eq!(image.registry(), registry.as_deref());
        prop_assert_eq!(image.path(), path.as_str());
        prop_assert_eq!(image.tag(), tag.as_deref());
        prop_assert_eq!(image.digest(), digest.as_deref());
        prop_assert_eq!(image.to_string(), text.clone());
        prop_assert_eq!(text.parse::<ImageRef>().unwrap(), image);
    }

    #[test]
    fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,80}") {
        match ImageRef::parse(&text) {
            Ok(image) => prop_assert_eq!(image.as_str(), text.as_str()),
            Err(Error::InvalidImageReference { reference, reason }) => {
                prop_assert_eq!(reference, text);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn near_misses_parse_into_parts_that_make_up_the_text_or_are_refused(text in NEAR_MISS) {
        match ImageRef::parse(&text) {
            Ok(image) => {
                let mut rebuilt = String::new();
                if let Some(registry) = image.registry() {
                    rebuilt.push_str(registry);
                    rebuilt.push('/');
                }
                rebuilt.push_str(image.path());
                if let Some(tag) = image.tag() {
                    rebuilt.push(':');
                    rebuilt.push_str(tag);
                }
                if let Some(digest) = image.digest() {
                    rebuilt.push('@');
                    rebuilt.push_str(digest);
                }
                prop_assert_eq!(rebuilt, text.clone());
                // Repositories are lowercase and have no spaces.
                prop_assert!(!image.path().contains(|c: char| c.is_ascii_uppercase() || c == ' '));
                prop_assert_eq!(image.to_string().parse::<ImageRef>().unwrap(), image);
            }
            Err(Error::InvalidImageReference { reference, reason }) => {
                prop_assert_eq!(reference, text);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

/// Text close to an image reference: often one, often not.
const NEAR_MISS: &str = "([a-z0-9.-]{1,8}(:[0-9]{1,5})?/)?[a-z0-9._-]{1,12}(/[a-z0-9_-]{1,6})?(:[a-zA-Z0-9._-]{0,8})?(@sha256:[0-9a-f]{64}|@[a-z0-9:]{0,8})?\
    |[a-zA-Z0-9 ][a-zA-Z0-9./:@_ -]{0,20}";

/// The positive control of the near-miss property: it sees references that
/// parse and text that does not.
#[test]
fn near_misses_are_sometimes_references() {
    use proptest::strategy::ValueTree as _;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::string::string_regex(NEAR_MISS).unwrap();
    let accepted = (0..500)
        .filter(|_| ImageRef::parse(&strategy.new_tree(&mut runner).unwrap().current()).is_ok())
        .count();
    assert!((25..=475).contains(&accepted), "{accepted} of 500 accepted");
}
