//! The settings a database and its role carry outside the database's own
//! objects (`ALTER DATABASE … SET`, `ALTER ROLE … [IN DATABASE …] SET`, kept
//! in `pg_db_role_setting`): a custom-format `pg_dump` restores none of them, so
//! a backup records them in its manifest and a restore sets them again.
//! Immich's own `ALTER DATABASE immich SET search_path TO "$user", public,
//! vectors` is one (older Immich databases need it for pgvecto.rs).

use serde::{Deserialize, Serialize};

use crate::backup::psql_on;
use crate::error::{Error, Result};
use crate::layer::Layer;

/// One setting, as `pg_db_role_setting` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Setting {
    /// The role it is for; none for the database's own setting.
    #[serde(default)]
    pub role: Option<String>,
    /// Whether it holds in the backed-up database only (`ALTER DATABASE`,
    /// `ALTER ROLE … IN DATABASE`); else it is the role's in every database.
    pub in_database: bool,
    /// The parameter.
    pub name: String,
    /// Its value, as PostgreSQL keeps it (a list as `"$user", public`).
    pub value: String,
}

/// The row the query below answers with, a `name=value` each.
#[derive(Deserialize)]
struct Row {
    role: Option<String>,
    in_database: bool,
    setting: String,
}

/// The settings of the database `psql` connects to and those of the role it
/// connects as, in JSON: the database's own first, then each role's in it,
/// then the role's everywhere.
const QUERY: &str = "SELECT coalesce(json_agg(json_build_object(\
     'role', r.rolname, 'in_database', s.setdatabase <> 0, 'setting', c.setting) \
     ORDER BY s.setdatabase = 0, r.rolname NULLS FIRST, c.n), '[]') \
     FROM pg_db_role_setting s \
     LEFT JOIN pg_roles r ON r.oid = s.setrole \
     CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY AS c(setting, n) \
     WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     OR (s.setdatabase = 0 AND r.rolname = current_user);";

/// The settings of `database` (and of the deployment's role, everywhere).
pub(crate) async fn read(ctx: &Layer, database: &str) -> Result<Vec<Setting>> {
    let json = psql_on(
        ctx,
        database,
        "reading the database's and the role's settings",
        QUERY,
    )
    .await?;
    parse(&json)
}

fn parse(json: &str) -> Result<Vec<Setting>> {
    let rows: Vec<Row> = serde_json::from_str(json).map_err(|e| {
        Error::failed(format!(
            "psql answered {json:?} when asked for the settings: {e}"
        ))
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let (name, value) = row.setting.split_once('=')?;
            Some(Setting {
                role: row.role,
                in_database: row.in_database,
                name: name.to_owned(),
                value: value.to_owned(),
            })
        })
        .collect())
}

/// Parameters whose value is a list of names, each quoted as an identifier
/// where it needs to be: `ALTER … SET` takes them as a list of literals. (These
/// are the ones `pg_dump` splits the same way.)
const LIST_PARAMETERS: &[&str] = &[
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// Splits a list value as PostgreSQL writes it (`"$user", public`) into its
/// elements: separated by commas, each maybe in double quotes (`""` inside
/// being one quote), blanks around them dropped. `None` when it is not such a
/// list.
fn split_list(value: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut chars = value.chars().peekable();
    let skip_blanks = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    skip_blanks(&mut chars);
    if chars.peek().is_none() {
        return Some(items);
    }
    loop {
        skip_blanks(&mut chars);
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        item.push('"');
                    }
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                item.push(c);
                chars.next();
            }
            if item.is_empty() {
                return None;
            }
        }
        items.push(item);
        skip_blanks(&mut chars);
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// `'text'`, for SQL.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `"name"`, for SQL.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SET name TO value` for an `ALTER DATABASE` or `ALTER ROLE`.
fn set_clause(setting: &Setting) -> String {
    let lowered = setting.name.to_ascii_lowercase();
    let value = match LIST_PARAMETERS
        .contains(&lowered.as_str())
        .then(|| split_list(&setting.value))
        .flatten()
    {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| literal(i))
            .collect::<Vec<_>>()
            .join(", "),
        _ => literal(&setting.value),
    };
    format!("SET {} TO {value}", ident(&setting.name))
}

/// The statements that give `database` the backup's settings: the database's
/// own, each existing role's in it, and the role the backup was made as
/// (`from_role`) everywhere, as `to_role`. Settings of roles this server does
/// not have are returned apart, to be told.
pub(crate) fn statements<'s>(
    settings: &'s [Setting],
    database: &str,
    from_role: &str,
    to_role: &str,
    roles: &[String],
) -> (Vec<String>, Vec<&'s Setting>) {
    let mut sql = Vec::new();
    let mut skipped = Vec::new();
    for setting in settings {
        let role = setting
            .role
            .as_deref()
            .map(|r| if r == from_role { to_role } else { r });
        let set = set_clause(setting);
        match (role, setting.in_database) {
            (None, _) => sql.push(format!("ALTER DATABASE {} {set};", ident(database))),
            (Some(role), true) if roles.iter().any(|r| r == role) => sql.push(format!(
                "ALTER ROLE {} IN DATABASE {} {set};",
                ident(role),
                ident(database)
            )),
            (Some(role), false) if role == to_role => {
                sql.push(format!("ALTER ROLE {} {set};", ident(role)));
            }
            _ => skipped.push(setting),
        }
    }
    (sql, skipped)
}

/// The roles of the server.
pub(crate) async fn roles(ctx: &Layer, database: &str) -> Result<Vec<String>> {
    let out = psql_on(
        ctx,
        database,
        "listing the server's roles",
        "SELECT rolname FROM pg_roles ORDER BY 1;",
    )
    .await?;
    Ok(out.lines().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(role: Option<&str>, in_database: bool, name: &str, value: &str) -> Setting {
        Setting {
            role: role.map(str::to_owned),
            in_database,
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn rows_are_read_from_the_json_answer() {
        let json = r#"[{"role": null, "in_database": true, "setting": "search_path=\"$user\", public, vectors"},
                       {"role": "immich", "in_database": false, "setting": "statement_timeout=5min"},
                       {"role": "x", "in_database": true, "setting": "not a setting"}]"#;
        assert_eq!(
            parse(json).unwrap(),
            [
                setting(None, true, "search_path", "\"$user\", public, vectors"),
                setting(Some("immich"), false, "statement_timeout", "5min"),
            ]
        );
        assert_eq!(parse("[]").unwrap(), []);
        assert!(parse("0").is_err());
    }

    #[test]
    fn lists_split_as_postgres_writes_them() {
        assert_eq!(
            split_list("\"$user\", public, vectors").unwrap(),
            ["$user", "public", "vectors"]
        );
        assert_eq!(
            split_list("\"we\"\"ird, name\",x").unwrap(),
            ["we\"ird, name", "x"]
        );
        assert_eq!(split_list("\"\"").unwrap(), [""]);
        assert_eq!(split_list("").unwrap(), Vec::<String>::new());
        assert_eq!(split_list("a b"), None);
        assert_eq!(split_list("\"open"), None);
        assert_eq!(split_list("a,,b"), None);
    }

    #[test]
    fn statements_set_what_was_recorded_on_the_new_database() {
        let settings = [
            setting(None, true, "search_path", "\"$user\", public, vectors"),
            setting(None, true, "work_mem", "64MB"),
            setting(Some("postgres"), true, "lock_timeout", "1s"),
            setting(Some("reader"), true, "work_mem", "it's"),
            setting(Some("gone"), true, "work_mem", "8MB"),
            setting(Some("postgres"), false, "statement_timeout", "5min"),
            setting(Some("reader"), false, "statement_timeout", "1min"),
        ];
        let roles = ["immich".to_owned(), "reader".to_owned()];
        let (sql, skipped) = statements(&settings, "new_db", "postgres", "immich", &roles);
        assert_eq!(
            sql,
            [
                r#"ALTER DATABASE "new_db" SET "search_path" TO '$user', 'public', 'vectors';"#,
                r#"ALTER DATABASE "new_db" SET "work_mem" TO '64MB';"#,
                r#"ALTER ROLE "immich" IN DATABASE "new_db" SET "lock_timeout" TO '1s';"#,
                r#"ALTER ROLE "reader" IN DATABASE "new_db" SET "work_mem" TO 'it''s';"#,
                r#"ALTER ROLE "immich" SET "statement_timeout" TO '5min';"#,
            ]
        );
        assert_eq!(skipped, [&settings[4], &settings[6]]);
    }
}
