//! Where a PostgreSQL image keeps its data, and which cluster a data directory
//! holds.
//!
//! PostgreSQL's images do not all keep their data in one place. Up to 17 the
//! official images (and Immich's, built on them) keep the cluster in
//! `PGDATA=/var/lib/postgresql/data` and declare that as their volume. From 18
//! on the volume is `/var/lib/postgresql`, and the cluster lives in
//! `PGDATA=/var/lib/postgresql/18/docker` below it, so that the clusters of two
//! majors can sit side by side in one volume. The image's configuration says
//! which: the deployment's data directory is mounted at the declared volume
//! that contains `PGDATA`, else at `PGDATA` itself.
//!
//! ```
//! use std::path::Path;
//! use homelab_immich::layout::PostgresLayout;
//!
//! // An image the host has not inspected yet: its tag says the major, and the
//! // official images of that major say the rest.
//! let layout = PostgresLayout::assumed("docker.io/library/postgres:18-trixie");
//! assert_eq!(layout.major, Some(18));
//! assert_eq!(layout.mount, "/var/lib/postgresql");
//! assert_eq!(
//!     layout.cluster_dir(Path::new("/pool/postgres")),
//!     Path::new("/pool/postgres/18/docker")
//! );
//! let immich = PostgresLayout::assumed("ghcr.io/immich-app/postgres:14-vectorchord0.4.3");
//! assert_eq!(immich.major, Some(14));
//! assert_eq!(immich.mount, "/var/lib/postgresql/data");
//! assert!(!immich.mount_is_parent());
//! ```

use std::path::{Path, PathBuf};

use homelab_podman::ImageInfo;
use serde::Serialize;

/// `PGDATA` of the official images up to PostgreSQL 17 (and of their
/// entrypoint when an image does not set it).
pub const CLASSIC_PGDATA: &str = "/var/lib/postgresql/data";

/// The parent of every major's cluster in the official images from
/// PostgreSQL 18 on.
const VERSIONED_ROOT: &str = "/var/lib/postgresql";

/// The first major whose official images keep the cluster in a versioned
/// directory below the volume.
const FIRST_VERSIONED_MAJOR: u32 = 18;

/// The file in a cluster's directory that names its major version.
pub const PG_VERSION_FILE: &str = "PG_VERSION";

/// What a layout was learnt from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LayoutSource {
    /// The image's own configuration (`ENV PGDATA`, `VOLUME`), inspected on
    /// this host.
    Image,
    /// Assumed from the image reference's tag and the official images'
    /// conventions, without the image at hand.
    Assumed,
}

/// Where an image keeps PostgreSQL's data, and which major it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PostgresLayout {
    /// Where the deployment's data directory is mounted in the container.
    pub mount: String,
    /// `PGDATA` in the container: `mount` itself or a directory below it.
    pub pgdata: String,
    /// The server's major version, when the image says it (`PG_MAJOR`,
    /// `PG_VERSION`) or its tag starts with it.
    pub major: Option<u32>,
    /// What this was learnt from.
    pub source: LayoutSource,
}

impl PostgresLayout {
    /// The layout an image's configuration gives: `PGDATA` (the official
    /// entrypoint's default when unset), mounted at the declared volume that
    /// contains it (the nearest), else at `PGDATA` itself. The major comes
    /// from `PG_MAJOR`, else `PG_VERSION`, else the tag of `reference`.
    pub fn of_image(image: &ImageInfo, reference: &str) -> Self {
        let pgdata = image
            .env
            .get("PGDATA")
            .filter(|p| p.starts_with('/'))
            .map(|p| normalise(p))
            .filter(|p| p != "/")
            .unwrap_or_else(|| CLASSIC_PGDATA.to_owned());
        let mount = image
            .volumes
            .iter()
            .filter(|v| v.starts_with('/'))
            .map(|v| normalise(v))
            .filter(|v| contains(v, &pgdata))
            .max_by_key(String::len)
            .unwrap_or_else(|| pgdata.clone());
        let major = image
            .env
            .get("PG_MAJOR")
            .and_then(|m| leading_number(m))
            .or_else(|| image.env.get("PG_VERSION").and_then(|v| leading_number(v)))
            .or_else(|| major_from_tag(reference));
        Self {
            mount,
            pgdata,
            major,
            source: LayoutSource::Image,
        }
    }

    /// The layout of an image not at hand, as the official images of the
    /// major its tag names lay it out: the cluster in
    /// `/var/lib/postgresql/MAJOR/docker` below a volume at
    /// `/var/lib/postgresql` from PostgreSQL 18 on, else in (and mounted at)
    /// `/var/lib/postgresql/data`.
    pub fn assumed(reference: &str) -> Self {
        let major = major_from_tag(reference);
        let (mount, pgdata) = match major {
            Some(m) if m >= FIRST_VERSIONED_MAJOR => (
                VERSIONED_ROOT.to_owned(),
                format!("{VERSIONED_ROOT}/{m}/docker"),
            ),
            _ => (CLASSIC_PGDATA.to_owned(), CLASSIC_PGDATA.to_owned()),
        };
        Self {
            mount,
            pgdata,
            major,
            source: LayoutSource::Assumed,
        }
    }

    /// Whether the data directory is mounted above the cluster's own
    /// directory (the layout of PostgreSQL 18's images): the container's
    /// server then has to pass through the mounted directory to reach it.
    pub fn mount_is_parent(&self) -> bool {
        self.mount != self.pgdata
    }

    /// `PGDATA` relative to the mount: empty when they are one.
    pub fn pgdata_below_mount(&self) -> &Path {
        Path::new(&self.pgdata)
            .strip_prefix(&self.mount)
            .unwrap_or(Path::new(""))
    }

    /// Where the cluster is on the host, for a data directory `data_dir`
    /// mounted as this layout says.
    pub fn cluster_dir(&self, data_dir: &Path) -> PathBuf {
        let below = self.pgdata_below_mount();
        if below.as_os_str().is_empty() {
            data_dir.to_path_buf()
        } else {
            data_dir.join(below)
        }
    }

    /// The major, for a person: `PostgreSQL 17`, or `an unknown PostgreSQL`.
    pub fn describe_major(&self) -> String {
        self.major.map_or_else(
            || "an unknown PostgreSQL major".to_owned(),
            |m| format!("PostgreSQL {m}"),
        )
    }
}

/// A PostgreSQL cluster found in a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cluster {
    /// Its directory (the one with `PG_VERSION`).
    pub dir: PathBuf,
    /// Its major version, from `PG_VERSION`.
    pub major: u32,
}

/// The cluster in the data directory `data_dir`: where `layout` keeps it, else
/// at the top of the directory (the layout up to PostgreSQL 17), else one in a
/// directory two levels below it (`18/docker`, the layout from 18 on).
/// `Ok(None)` when there is none (or `data_dir` does not exist); an error
/// when a directory or `PG_VERSION` cannot be read.
pub fn find_cluster(data_dir: &Path, layout: &PostgresLayout) -> std::io::Result<Option<Cluster>> {
    let expected = layout.cluster_dir(data_dir);
    for dir in [expected, data_dir.to_path_buf()] {
        if let Some(cluster) = read_cluster(&dir)? {
            return Ok(Some(cluster));
        }
    }
    let top = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for first in top {
        let first = first?;
        if !first.file_type()?.is_dir() {
            continue;
        }
        for second in std::fs::read_dir(first.path())? {
            let second = second?;
            if second.file_type()?.is_dir()
                && let Some(cluster) = read_cluster(&second.path())?
            {
                found.push(cluster);
            }
        }
    }
    // The newest major first: where clusters of several majors sit side by
    // side, the newest is the one in use.
    found.sort_by(|a, b| b.major.cmp(&a.major).then_with(|| a.dir.cmp(&b.dir)));
    Ok(found.into_iter().next())
}

/// The cluster whose directory is `dir`, if it is one.
fn read_cluster(dir: &Path) -> std::io::Result<Option<Cluster>> {
    match std::fs::read_to_string(dir.join(PG_VERSION_FILE)) {
        Ok(text) => Ok(leading_number(text.trim()).map(|major| Cluster {
            dir: dir.to_path_buf(),
            major,
        })),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The major an image tag starts with: `14-vectorchord0.4.3` and `18.1-trixie`
/// give 14 and 18; `latest` gives none.
pub fn major_from_tag(reference: &str) -> Option<u32> {
    let tag = homelab_podman::ImageRef::parse(reference)
        .ok()?
        .tag()?
        .to_owned();
    leading_number(&tag)
}

/// The number at the start of `text` (`17`, `17.2-1.pgdg120+1`).
fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|n| *n > 0)
}

/// A container path without a trailing or doubled slash.
fn normalise(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Whether `outer` is `inner` or one of its ancestors.
fn contains(outer: &str, inner: &str) -> bool {
    Path::new(inner).starts_with(outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(env: &[(&str, &str)], volumes: &[&str]) -> ImageInfo {
        let mut info = ImageInfo::new("id");
        info.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        info.volumes = volumes.iter().map(|v| (*v).to_owned()).collect();
        info
    }

    #[test]
    fn the_volume_that_contains_pgdata_is_mounted() {
        // The official 18 images, and the local 18 test image.
        let pg18 = PostgresLayout::of_image(
            &image(
                &[
                    ("PGDATA", "/var/lib/postgresql/18/docker"),
                    ("PG_MAJOR", "18"),
                ],
                &["/var/lib/postgresql"],
            ),
            "localhost/immich-db-test/postgres:18",
        );
        assert_eq!(pg18.mount, "/var/lib/postgresql");
        assert_eq!(pg18.pgdata, "/var/lib/postgresql/18/docker");
        assert_eq!(pg18.major, Some(18));
        assert!(pg18.mount_is_parent());
        assert_eq!(
            pg18.cluster_dir(Path::new("/p/db")),
            Path::new("/p/db/18/docker")
        );
        // The official 17 image declares PGDATA itself as its volume.
        let pg17 = PostgresLayout::of_image(
            &image(
                &[("PGDATA", "/var/lib/postgresql/data"), ("PG_MAJOR", "17")],
                &["/var/lib/postgresql/data"],
            ),
            "docker.io/library/postgres:17",
        );
        assert_eq!(pg17.mount, "/var/lib/postgresql/data");
        assert!(!pg17.mount_is_parent());
        assert_eq!(pg17.cluster_dir(Path::new("/p/db")), Path::new("/p/db"));
        // The local 17 test image declares no volume: PGDATA itself.
        let test17 = PostgresLayout::of_image(
            &image(&[("PGDATA", "/var/lib/postgresql/data/")], &[]),
            "localhost/immich-db-test/postgres:latest",
        );
        assert_eq!(test17.mount, "/var/lib/postgresql/data");
        assert_eq!(test17.pgdata, "/var/lib/postgresql/data");
        assert_eq!(test17.major, None);
        assert_eq!(test17.source, LayoutSource::Image);
    }

    #[test]
    fn a_volume_beside_pgdata_is_not_the_mount_and_the_nearest_one_is() {
        let layout = PostgresLayout::of_image(
            &image(
                &[("PGDATA", "/srv/pg/main/data")],
                &["/srv/other", "/srv", "/srv/pg/main", "/srv/pg/mainly"],
            ),
            "example.org/pg:16",
        );
        assert_eq!(layout.mount, "/srv/pg/main");
        assert_eq!(layout.pgdata_below_mount(), Path::new("data"));
        assert_eq!(layout.major, Some(16), "from the tag");
    }

    #[test]
    fn without_pgdata_the_entrypoint_default_is_taken() {
        let layout =
            PostgresLayout::of_image(&image(&[("PG_VERSION", "16.4-1.pgdg120+2")], &[]), "x/pg");
        assert_eq!(layout.pgdata, CLASSIC_PGDATA);
        assert_eq!(layout.mount, CLASSIC_PGDATA);
        assert_eq!(layout.major, Some(16));
    }

    #[test]
    fn a_major_from_the_tag() {
        assert_eq!(
            major_from_tag("ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0"),
            Some(14)
        );
        assert_eq!(major_from_tag("postgres:18.1-trixie"), Some(18));
        assert_eq!(major_from_tag("postgres:latest"), None);
        assert_eq!(major_from_tag("postgres"), None);
        assert_eq!(major_from_tag("localhost:5000/postgres"), None);
        let assumed = PostgresLayout::assumed("postgres:17");
        assert_eq!(assumed.mount, CLASSIC_PGDATA);
        assert_eq!(assumed.source, LayoutSource::Assumed);
        let unknown = PostgresLayout::assumed("postgres:latest");
        assert_eq!(unknown.major, None);
        assert_eq!(unknown.pgdata, CLASSIC_PGDATA);
        assert_eq!(unknown.describe_major(), "an unknown PostgreSQL major");
    }

    #[test]
    fn clusters_are_found_in_either_layout() {
        let dir = tempfile::tempdir().unwrap();
        let classic = PostgresLayout::assumed("postgres:17");
        let versioned = PostgresLayout::assumed("postgres:18");
        // Nothing yet, also where the directory does not exist.
        assert_eq!(find_cluster(dir.path(), &classic).unwrap(), None);
        assert_eq!(
            find_cluster(&dir.path().join("missing"), &versioned).unwrap(),
            None
        );
        // A cluster of 17 at the top, as the 17 images leave it: found also
        // when the image would keep its data in 18/docker.
        let top = dir.path().join("a");
        std::fs::create_dir_all(top.join("base/1")).unwrap();
        std::fs::write(top.join("PG_VERSION"), "17\n").unwrap();
        std::fs::write(top.join("base/1/PG_VERSION"), "17\n").unwrap();
        let found = find_cluster(&top, &versioned).unwrap().unwrap();
        assert_eq!((found.dir.as_path(), found.major), (top.as_path(), 17));
        // A cluster of 18 in 18/docker, found also by the 17 layout.
        let below = dir.path().join("b");
        std::fs::create_dir_all(below.join("18/docker")).unwrap();
        std::fs::write(below.join("18/docker/PG_VERSION"), "18\n").unwrap();
        let found = find_cluster(&below, &classic).unwrap().unwrap();
        assert_eq!(found.dir, below.join("18/docker"));
        assert_eq!(found.major, 18);
        // Two side by side: the newest.
        std::fs::create_dir_all(below.join("17/docker")).unwrap();
        std::fs::write(below.join("17/docker/PG_VERSION"), "17\n").unwrap();
        assert_eq!(find_cluster(&below, &classic).unwrap().unwrap().major, 18);
        // Positive control for the reader of PG_VERSION: what is not a
        // version is no cluster.
        let odd = dir.path().join("c");
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(odd.join("PG_VERSION"), "x\n").unwrap();
        assert_eq!(find_cluster(&odd, &classic).unwrap(), None);
    }
}
