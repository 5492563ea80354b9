//! [`ImageRef`]: a container image reference, checked as registries read it.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The longest image name (registry and path, without tag or digest) that
/// registries accept.
const MAX_NAME_LEN: usize = 255;

/// The longest tag.
const MAX_TAG_LEN: usize = 128;

/// A container image reference, `[REGISTRY[:PORT]/]PATH[:TAG][@ALGORITHM:HEX]`,
/// checked against the grammar registries and podman use, so a typo is caught
/// before anything is pulled or written.
///
/// The first part of the name is the registry when it has a `.` or a `:`, is
/// `localhost`, or has an uppercase letter (`docker.io/valkey/valkey`,
/// `localhost:5000/app`); otherwise the whole name is a path, which podman
/// looks up in its search registries (`valkey/valkey`).
///
/// ```
/// use homelab_podman::ImageRef;
///
/// let image: ImageRef = "ghcr.io/immich-app/postgres:14-vectorchord0.4.3".parse()?;
/// assert_eq!(image.registry(), Some("ghcr.io"));
/// assert_eq!(image.path(), "immich-app/postgres");
/// assert_eq!(image.tag(), Some("14-vectorchord0.4.3"));
/// assert_eq!(image.to_string(), "ghcr.io/immich-app/postgres:14-vectorchord0.4.3");
///
/// let e = ImageRef::parse("docker.io/Valkey/valkey:8").unwrap_err();
/// assert!(e.to_string().contains("path component `Valkey`"), "{e}");
/// # Ok::<(), homelab_podman::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    reference: String,
    registry: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Checks and splits a reference;
    /// [`Error::InvalidImageReference`] says what is wrong.
    pub fn parse(reference: &str) -> Result<Self> {
        parse(reference).map_err(|reason| Error::InvalidImageReference {
            reference: reference.to_owned(),
            reason,
        })
    }

    /// The registry host, with its port when it has one (`docker.io`,
    /// `localhost:5000`); `None` for a name podman looks up in its search
    /// registries.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The path in the registry (`valkey/valkey`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, when one is given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), when one is given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Whether the image lives only in local storage: podman names images it
    /// built or loaded `localhost/…`, and no registry serves them.
    pub fn is_local(&self) -> bool {
        self.registry.as_deref() == Some("localhost")
    }

    /// The reference as given.
    pub fn as_str(&self) -> &str {
        &self.reference
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference)
    }
}

impl AsRef<str> for ImageRef {
    fn as_ref(&self) -> &str {
        &self.reference
    }
}

/// The repository (`REGISTRY/PATH`) and the tag (`latest` when none is
/// given) that a reference names, for tagging an image with it; a reference
/// pinned by digest is no name to tag with.
pub(crate) fn name_and_tag(reference: &str) -> Result<(String, String)> {
    let image = ImageRef::parse(reference)?;
    if image.digest().is_some() {
        return Err(Error::InvalidImageReference {
            reference: reference.to_owned(),
            reason: "it is pinned by digest: an image cannot be tagged with it".into(),
        });
    }
    let repo = match image.registry() {
        Some(registry) => format!("{registry}/{}", image.path()),
        None => image.path().to_owned(),
    };
    Ok((repo, image.tag().unwrap_or("latest").to_owned()))
}

fn parse(value: &str) -> std::result::Result<ImageRef, String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("it contains {c:?}"));
    }
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
            (rest, Some(digest.to_owned()))
        }
        None => (value, None),
    };
    // A tag follows the last `:` after the last `/` (an earlier `:` is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name is {} characters long; at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if is_registry(first) => {
            check_registry(first)?;
            (Some(first.to_owned()), path)
        }
        _ => (None, name),
    };
    for component in path.split('/') {
        check_component(component)?;
    }
    Ok(ImageRef {
        reference: value.to_owned(),
        registry,
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// Whether the first part of a name is a registry rather than a path.
fn is_registry(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

/// `host[:port]`: host labels of letters, digits and inner `-`, joined by `.`.
fn check_registry(registry: &str) -> std::result::Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "registry `{registry}` is not a host name with an optional port"
        ))
    }
}

/// Lowercase letters and digits, in runs joined by one `.`, one or two `_`, or
/// any number of `-`.
fn check_component(component: &str) -> std::result::Result<(), String> {
    let bad = || {
        Err(format!(
            "path component `{component}` is not valid (lowercase letters and digits, joined by `.`, `_`, `__` or `-`)"
        ))
    };
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return bad();
        }
    }
    Ok(())
}

/// A word character, then up to 127 word characters, `.` or `-`.
fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= MAX_TAG_LEN
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` is not valid (letters, digits, `_`, `.` and `-`, not starting with `.` or `-`; at most {MAX_TAG_LEN})"
        ))
    }
}

/// `ALGORITHM:HEX`: the algorithm in letters and digits (parts joined by
/// `+`, `.`, `_` or `-`), then at least 32 hexadecimal digits.
fn check_digest(digest: &str) -> std::result::Result<(), String> {
    let bad = || {
        Err(format!(
            "digest `{digest}` is not ALGORITHM:HEX (such as sha256:…)"
        ))
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return bad();
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        bad()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference, then its registry, path, tag, and whether it is local.
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, Option<&'a str>, bool);

    #[test]
    fn valid_references_split_into_their_parts() {
        let cases: [Case; 8] = [
            (
                "docker.io/valkey/valkey:8",
                Some("docker.io"),
                "valkey/valkey",
                Some("8"),
                false,
            ),
            ("valkey/valkey", None, "valkey/valkey", None, false),
            ("postgres", None, "postgres", None, false),
            (
                "localhost/immich-db-test/postgres:latest",
                Some("localhost"),
                "immich-db-test/postgres",
                Some("latest"),
                true,
            ),
            (
                "localhost:5000/a/b:c",
                Some("localhost:5000"),
                "a/b",
                Some("c"),
                false,
            ),
            (
                "ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0",
                Some("ghcr.io"),
                "immich-app/postgres",
                Some("14-vectorchord0.4.3-pgvectors0.2.0"),
                false,
            ),
            ("Registry/a", Some("Registry"), "a", None, false),
            ("a__b/c---d/e.f_g", None, "a__b/c---d/e.f_g", None, false),
        ];
        for (reference, registry, path, tag, local) in cases {
            let image = ImageRef::parse(reference).unwrap_or_else(|e| panic!("{reference}: {e}"));
            assert_eq!(image.registry(), registry, "{reference}");
            assert_eq!(image.path(), path, "{reference}");
            assert_eq!(image.tag(), tag, "{reference}");
            assert_eq!(image.is_local(), local, "{reference}");
            assert_eq!(image.as_str(), reference);
        }
        let digest_only = ImageRef::parse(
            "postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert_eq!((digest_only.path(), digest_only.tag()), ("postgres", None));
        let pinned = ImageRef::parse(
            "postgres:17@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert_eq!(pinned.tag(), Some("17"));
        assert_eq!(
            pinned.digest(),
            Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn invalid_references_say_what_is_wrong() {
        for (bad, words) in [
            ("", "empty"),
            ("Valkey", "path component `Valkey`"),
            ("a//b", "path component ``"),
            ("a:b:c", "path component `a:b`"),
            ("valkey:", "tag ``"),
            ("valkey:.x", "tag `.x`"),
            ("valkey@sha256:xyz", "digest `sha256:xyz`"),
            ("valkey@0123456789abcdef0123456789abcdef", "digest"),
            ("-a/b", "path component `-a`"),
            ("reg istry/a", "contains ' '"),
            ("a/b_", "path component `b_`"),
            ("a/b___c", "path component `b___c`"),
            ("a/b._c", "path component `b._c`"),
            ("docker.io:/a", "registry `docker.io:`"),
            ("bad-.io/a", "registry `bad-.io`"),
            ("docker.io/", "path component ``"),
            (":8", "the name is empty"),
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            let text = e.to_string();
            assert!(
                matches!(&e, Error::InvalidImageReference { reference, .. } if reference == bad),
                "{bad}: {e:?}"
            );
            assert!(text.contains(words), "{bad}: {text}");
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(
            ImageRef::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 255")
        );
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(ImageRef::parse(&long_tag).is_err());
    }
}
