//! What a restored database must have of the original: its extensions, its
//! tables with their exact row counts, views, indexes and sequences with
//! their positions. Objects an extension made are left out: another major's
//! image may carry another release of the extension.

use crate::backup;
use crate::error::{Error, Result};
use crate::layer::Layer;

/// One line per object, sorted: `extension vector`, `table public.assets: 3
/// row(s)`, `index public.assets_pkey`, `sequence public.s at 7`.
const CONTENTS: &str = r"
WITH member_rel AS (
    SELECT objid FROM pg_depend
    WHERE deptype = 'e' AND classid = 'pg_class'::regclass
), member_ns AS (
    SELECT objid FROM pg_depend
    WHERE deptype = 'e' AND classid = 'pg_namespace'::regclass
), rel AS (
    SELECT c.oid, c.relkind, n.nspname, c.relname, coalesce(i.indrelid, c.oid) AS of_rel
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'i', 'I', 'S', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
      AND n.oid NOT IN (SELECT objid FROM member_ns)
      AND c.oid NOT IN (SELECT objid FROM member_rel)
)
SELECT line FROM (
    SELECT 'extension ' || extname AS line FROM pg_extension
    UNION ALL
    SELECT CASE relkind
               WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
               WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
               WHEN 'f' THEN 'foreign table' ELSE 'index' END
           || format(' %I.%I', nspname, relname)
           || CASE
                  WHEN relkind IN ('r', 'p') THEN format(': %s row(s)', (xpath('/row/n/text()',
                      query_to_xml(format('SELECT count(*) AS n FROM %I.%I', nspname, relname),
                                   false, true, '')))[1]::text)
                  WHEN relkind = 'S' THEN format(' at %s', (SELECT coalesce(s.last_value::text, 'its start')
                      FROM pg_sequences s WHERE s.schemaname = nspname AND s.sequencename = relname))
                  ELSE ''
              END
    FROM rel
    WHERE of_rel NOT IN (SELECT objid FROM member_rel)
) lines
ORDER BY line;";

/// The contents of the database in `ctx`'s PostgreSQL container, a line per
/// object.
pub(crate) async fn contents(ctx: &Layer) -> Result<Vec<String>> {
    let out = backup::psql(ctx, "listing the database's contents", CONTENTS).await?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Fails unless `restored` holds what `original` does, saying what differs.
pub(crate) fn same(original: &[String], restored: &[String], what: &str) -> Result<()> {
    if original == restored {
        return Ok(());
    }
    let missing: Vec<&String> = original.iter().filter(|l| !restored.contains(l)).collect();
    let extra: Vec<&String> = restored.iter().filter(|l| !original.contains(l)).collect();
    let list = |lines: &[&String]| {
        let shown: Vec<&str> = lines.iter().take(5).map(|l| l.as_str()).collect();
        let more = lines.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} and {more} more", shown.join("; "))
        } else {
            shown.join("; ")
        }
    };
    let mut differences = Vec::new();
    if !missing.is_empty() {
        differences.push(format!("only the original has: {}", list(&missing)));
    }
    if !extra.is_empty() {
        differences.push(format!("only {what} has: {}", list(&extra)));
    }
    Err(Error::failed(format!(
        "{what} differs from the original database: {}",
        differences.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named_both_ways() {
        let a: Vec<String> = vec!["extension vector".into(), "table public.a: 3 row(s)".into()];
        assert!(same(&a, &a, "the new cluster").is_ok());
        let b: Vec<String> = vec!["extension vector".into(), "table public.a: 2 row(s)".into()];
        let e = same(&a, &b, "the new cluster").unwrap_err();
        assert!(
            e.what
                .contains("only the original has: table public.a: 3 row(s)"),
            "{e}"
        );
        assert!(
            e.what
                .contains("only the new cluster has: table public.a: 2 row(s)"),
            "{e}"
        );
    }
}
