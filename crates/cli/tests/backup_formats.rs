//! Backups and restores on the real test host beyond the plain round trip:
//! both compression methods (zstd by `pg_dump` from PostgreSQL 16, zstd on the
//! host before, forced here with `--method` on the PostgreSQL 17 test image),
//! read back by PostgreSQL's and zstd's own tools; the database's and role's
//! settings carried through a backup and a restore; and
//! one of Immich's own nightly backups (a gzip'd `pg_dumpall --clean
//! --if-exists`) of a schema shaped like Immich's loaded into the deployment.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::path::{Path, PathBuf};

use common::{TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};
use ops::{code, config_with_backup, json, run, run_ok, sql};

/// The manifest beside a dump (`X.dump` or `X.dump.zst` → `X.json`).
fn manifest_of(dump: &Path) -> serde_json::Value {
    let name = dump.file_name().unwrap().to_string_lossy();
    let base = name
        .strip_suffix(".dump.zst")
        .or_else(|| name.strip_suffix(".dump"))
        .unwrap();
    let path = dump.with_file_name(format!("{base}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `pg_restore --list` of an archive given on standard input, run in the
/// deployment's container: its table of contents.
fn pg_restore_list(d: &TestDeployment, shell_input: &str) -> String {
    let out = d
        .host
        .command("sh")
        .arg("-c")
        .arg(format!(
            "{shell_input} | podman exec -i {} pg_restore --list",
            d.pg
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The settings of the database `immich` as `pg_db_role_setting` holds them:
/// `role|setting` lines (the role empty for the database's own).
fn settings(d: &TestDeployment) -> String {
    sql(
        d,
        "SELECT coalesce(r.rolname, ''), c FROM pg_db_role_setting s \
         LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c \
         WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = 'immich') \
         ORDER BY 1, 2",
    )
}

#[test]
fn backup_methods_and_database_settings() {
    methods_and_settings(require_host!());
}

#[test]
fn rootless_backup_methods_and_database_settings() {
    methods_and_settings(require_rootless_host!());
}

fn methods_and_settings(host: &'static Host) {
    let d = TestDeployment::new(host, "bm");
    let config = config_with_backup(&d, "keep = 5\n");
    run_ok(&d, &config, &["deploy"]);
    sql(
        &d,
        "CREATE EXTENSION vector; \
         CREATE TABLE smart_search (id int PRIMARY KEY, embedding vector(3)); \
         INSERT INTO smart_search SELECT g, ARRAY[g, g + 1, g + 2]::vector \
         FROM generate_series(1, 3000) g; \
         ALTER DATABASE immich SET search_path TO \"$user\", public, vectors; \
         ALTER ROLE immich IN DATABASE immich SET statement_timeout TO '5min'",
    );
    let before = settings(&d);
    assert_eq!(
        before,
        "|search_path=\"$user\", public, vectors\nimmich|statement_timeout=5min"
    );

    // PostgreSQL 17: pg_dump compresses with zstd itself.
    let native = json(&d, &config, &["backup"]);
    let native_dump = PathBuf::from(native["backup"]["dump"].as_str().unwrap());
    assert!(
        native_dump.to_string_lossy().ends_with(".dump"),
        "{native:#}"
    );
    let manifest = manifest_of(&native_dump);
    assert_eq!(manifest["compression"]["algorithm"], "zstd", "{manifest:#}");
    assert_eq!(manifest["compression"]["by"], "pg_dump", "{manifest:#}");
    assert_eq!(manifest["settings"].as_array().unwrap().len(), 2);
    let listing = pg_restore_list(&d, &format!("cat {}", native_dump.display()));
    assert!(listing.contains("Compression: zstd"), "{listing}");
    assert!(
        listing.contains("TABLE DATA public smart_search"),
        "{listing}"
    );

    // As for PostgreSQL 14 and 15: uncompressed out of pg_dump, zstd on the
    // host; zstd's own tool gives back the archive pg_restore reads.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let host_zstd = json(&d, &config, &["backup", "--method", "host-zstd"]);
    let zst = PathBuf::from(host_zstd["backup"]["dump"].as_str().unwrap());
    assert!(
        zst.to_string_lossy().ends_with(".dump.zst"),
        "{host_zstd:#}"
    );
    let manifest = manifest_of(&zst);
    assert_eq!(manifest["compression"]["by"], "immich-db", "{manifest:#}");
    let listing = pg_restore_list(&d, &format!("zstd -dc {}", zst.display()));
    assert!(listing.contains("Compression: none"), "{listing}");
    assert!(
        listing.contains("TABLE DATA public smart_search"),
        "{listing}"
    );
    let unpacked = host
        .command("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | wc -c", zst.display()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&unpacked.stdout).trim(),
        manifest["uncompressed_size"].to_string()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&zst).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");

    // The settings and the rows go; each backup brings both back.
    for dump in [&zst, &native_dump] {
        sql(
            &d,
            "DELETE FROM smart_search WHERE id > 10; \
             ALTER DATABASE immich RESET search_path; \
             ALTER ROLE immich IN DATABASE immich RESET statement_timeout",
        );
        assert_eq!(settings(&d), "");
        let out = run(&d, &config, &["restore", dump.to_str().unwrap()]);
        assert_eq!(code(&out), Some(2), "{}", text(&out));
        assert!(text(&out).contains("--force"), "{}", text(&out));
        let report = json(&d, &config, &["restore", "--force", dump.to_str().unwrap()]);
        assert_eq!(report["ok"], true, "{report:#}");
        assert_eq!(report["loaded"]["settings"], 2, "{report:#}");
        assert_eq!(settings(&d), before, "{}", dump.display());
        assert_eq!(
            sql(
                &d,
                "SELECT count(*), (SELECT embedding::text FROM smart_search WHERE id = 3000) FROM smart_search"
            ),
            "3000|[3000,3001,3002]"
        );
        // A new session has the restored search_path.
        assert_eq!(sql(&d, "SHOW search_path"), "\"$user\", public, vectors");
    }
    // Nothing of the restores is left beside the deployment's database.
    assert_eq!(
        sql(
            &d,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'immich\\_db\\_%'"
        ),
        "0"
    );
}

/// Builds, in the deployment's database, a schema shaped like Immich's, owned
/// by a role `postgres` (Immich's default `DB_USERNAME`), as Immich's own
/// PostgreSQL would hold it.
const IMMICH_SHAPED: &str = "\
CREATE ROLE postgres SUPERUSER LOGIN; \
CREATE ROLE immich_reader NOLOGIN; \
ALTER DATABASE immich OWNER TO postgres; \
SET ROLE postgres; \
CREATE EXTENSION vector; \
CREATE EXTENSION cube; \
CREATE EXTENSION earthdistance; \
CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text UNIQUE NOT NULL); \
CREATE TABLE assets (id int PRIMARY KEY, owner_id uuid REFERENCES users(id), path text NOT NULL); \
CREATE TABLE exif (asset_id int PRIMARY KEY REFERENCES assets(id), latitude float8, longitude float8); \
CREATE INDEX exif_latitude_longitude_idx ON exif USING gist (ll_to_earth(latitude, longitude)); \
CREATE TABLE smart_search (asset_id int PRIMARY KEY REFERENCES assets(id), embedding vector(4) NOT NULL); \
INSERT INTO users (email) VALUES ('owner@example.invalid'); \
INSERT INTO assets SELECT g, (SELECT id FROM users), 'upload/' || g || '.jpg' FROM generate_series(1, 2000) g; \
INSERT INTO exif SELECT g, 48 + g / 1000.0, 2 + g / 1000.0 FROM generate_series(1, 2000) g; \
INSERT INTO smart_search SELECT g, ARRAY[g, 0, 0, 1]::vector FROM generate_series(1, 2000) g; \
GRANT SELECT ON assets TO immich_reader; \
RESET ROLE; \
ALTER DATABASE immich SET search_path TO \"$user\", public, vectors";

#[test]
fn restore_of_immichs_own_backup() {
    immich_backup(require_host!());
}

#[test]
fn rootless_restore_of_immichs_own_backup() {
    immich_backup(require_rootless_host!());
}

fn immich_backup(host: &'static Host) {
    let d = TestDeployment::new(host, "ib");
    let config = config_with_backup(&d, "");
    run_ok(&d, &config, &["deploy"]);
    sql(&d, IMMICH_SHAPED);

    // Immich's nightly job: pg_dumpall --clean --if-exists, gzip'd.
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch
        .path()
        .join("immich-db-backup-20251108T020000-v1.140.0-pg17.4.sql.gz");
    host.give(scratch.path());
    let out = host
        .command("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; podman exec {} pg_dumpall --clean --if-exists -U immich | gzip > {}",
            d.pg,
            file.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let dump_text = host
        .command("sh")
        .arg("-c")
        .arg(format!("gzip -dc {}", file.display()))
        .output()
        .unwrap();
    let dump_text = String::from_utf8_lossy(&dump_text.stdout);
    // The trap this guards: pg_dump empties search_path, under which the
    // earthdistance index cannot be built.
    assert!(
        dump_text.contains("set_config('search_path', '', false)"),
        "the dump is not what the test expects"
    );
    assert!(dump_text.contains("ll_to_earth"));

    // The database is not empty: refused, unchanged.
    let out = run(&d, &config, &["restore", file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(sql(&d, "SELECT count(*) FROM assets"), "2000");

    // A cut-off copy: refused before anything is touched.
    let cut = scratch.path().join("immich-db-backup-cut.sql.gz");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    host.give(scratch.path());
    let out = run(&d, &config, &["restore", "--force", cut.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nothing was changed"), "{}", text(&out));
    assert_eq!(sql(&d, "SELECT count(*) FROM assets"), "2000");

    // An empty database, as after a loss: the role Immich used and the
    // reader role gone too.
    sql_maintenance(
        &d,
        "DROP DATABASE immich WITH (FORCE); CREATE DATABASE immich OWNER immich; \
         DROP ROLE immich_reader; DROP ROLE postgres",
    );
    let report = json(&d, &config, &["restore", file.to_str().unwrap()]);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["sql_dump"]["kind"], "cluster", "{report:#}");
    assert_eq!(report["sql_dump"]["database"], "immich", "{report:#}");
    assert_eq!(report["sql_dump"]["owner"], "postgres", "{report:#}");
    assert_eq!(
        report["sql_dump"]["roles_created"],
        serde_json::json!(["immich_reader"]),
        "{report:#}"
    );

    // Everything is back, owned by the deployment's role, and the
    // earthdistance index is there, valid, and used.
    assert_eq!(
        sql(&d, "SELECT count(*), count(DISTINCT owner_id) FROM assets"),
        "2000|1"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT embedding::text FROM smart_search WHERE asset_id = 7"
        ),
        "[7,0,0,1]"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension \
             WHERE extname IN ('vector', 'cube', 'earthdistance')"
        ),
        "cube,earthdistance,vector"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = 'exif_latitude_longitude_idx'"
        ),
        "t"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace"
        ),
        "immich"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'immich'"
        ),
        "immich"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT has_table_privilege('immich_reader', 'assets', 'SELECT')"
        ),
        "t"
    );
    assert_eq!(sql(&d, "SHOW search_path"), "\"$user\", public, vectors");
    let plan = sql(
        &d,
        "SET enable_seqscan = off; EXPLAIN SELECT count(*) FROM exif \
         WHERE earth_box(ll_to_earth(49, 3), 5000) @> ll_to_earth(latitude, longitude)",
    );
    assert!(plan.contains("exif_latitude_longitude_idx"), "{plan}");
    // No role named postgres was brought back: what it owned is immich's.
    assert_eq!(
        sql(
            &d,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"
        ),
        "0"
    );

    // Over what is there now, with --force.
    sql(&d, "DELETE FROM smart_search WHERE asset_id > 5");
    let report = json(&d, &config, &["restore", "--force", file.to_str().unwrap()]);
    assert_eq!(report["replaced_existing"], true, "{report:#}");
    assert_eq!(sql(&d, "SELECT count(*) FROM smart_search"), "2000");
}

/// `psql` connected to the maintenance database `postgres`.
fn sql_maintenance(d: &TestDeployment, statement: &str) {
    for part in statement.split("; ") {
        let out = d.host.podman([
            "exec",
            &d.pg,
            "psql",
            "-X",
            "-U",
            "immich",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            part,
        ]);
        assert!(out.status.success(), "psql {part:?}: {}", text(&out));
    }
}
