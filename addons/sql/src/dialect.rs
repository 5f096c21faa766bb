//! The SQL each back-end runs. Every dialect binds the same parameters in the
//! same order, so [`crate::ops`] is written once.

/// Name of the table records live in.
pub(crate) const TABLE: &str = "kinesis_records";

/// The statements of one dialect. Parameter order:
///
/// * `load`: uri → `type, version, updated_at, schema, fields` (fields as text)
/// * `version`: uri → `version`
/// * `insert`: uri, type, version, updated_at, schema, fields
/// * `update`: type, version, updated_at, schema, fields, uri, expected version
/// * `delete`: uri
/// * `list`: a pattern from [`Dialect::prefix_pattern`] → `uri` (as text)
pub(crate) struct Statements {
    /// Run in one transaction on connect; creates the table if it is missing.
    pub(crate) create: &'static [&'static str],
    /// Selects every column and no row: fails if the table has other columns.
    pub(crate) probe: &'static str,
    pub(crate) load: &'static str,
    pub(crate) version: &'static str,
    pub(crate) insert: &'static str,
    pub(crate) update: &'static str,
    pub(crate) delete: &'static str,
    pub(crate) list: &'static str,
}

/// What differs between back-ends beyond the SQL text.
pub(crate) trait Dialect: sqlx::Database {
    /// Short name for logs and errors: `sqlite`, `postgres`, `mysql`.
    const BACKEND: &'static str;
    /// The statements.
    const SQL: Statements;
    /// Rows a statement changed (`UPDATE`: rows matched).
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// The `list` parameter matching every uri that starts with `prefix`.
    fn prefix_pattern(prefix: &str) -> String;
}

/// A `LIKE … ESCAPE '!'` pattern for `prefix`.
#[allow(dead_code)] // unused when only the `sqlite` feature is on
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(feature = "sqlite")]
impl Dialect for sqlx::Sqlite {
    const BACKEND: &'static str = "sqlite";
    const SQL: Statements = Statements {
        create: &["CREATE TABLE IF NOT EXISTS kinesis_records (
            uri TEXT NOT NULL PRIMARY KEY,
            type TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            \"schema\" INTEGER NOT NULL,
            fields TEXT NOT NULL
        )"],
        probe: "SELECT uri, type, version, updated_at, \"schema\", fields FROM kinesis_records WHERE 1 = 0",
        load: "SELECT type, version, updated_at, \"schema\", fields FROM kinesis_records WHERE uri = ?",
        version: "SELECT version FROM kinesis_records WHERE uri = ?",
        insert: "INSERT INTO kinesis_records (uri, type, version, updated_at, \"schema\", fields) \
                 VALUES (?, ?, ?, ?, ?, ?)",
        update: "UPDATE kinesis_records SET type = ?, version = ?, updated_at = ?, \"schema\" = ?, fields = ? \
                 WHERE uri = ? AND version = ?",
        delete: "DELETE FROM kinesis_records WHERE uri = ?",
        // GLOB is case-sensitive and uses the primary key index for a prefix.
        list: "SELECT uri FROM kinesis_records WHERE uri GLOB ? ORDER BY uri",
    };

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn prefix_pattern(prefix: &str) -> String {
        let mut out = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            match c {
                '*' => out.push_str("[*]"),
                '?' => out.push_str("[?]"),
                '[' => out.push_str("[[]"),
                c => out.push(c),
            }
        }
        out.push('*');
        out
    }
}

#[cfg(feature = "postgres")]
impl Dialect for sqlx::Postgres {
    const BACKEND: &'static str = "postgres";
    const SQL: Statements = Statements {
        // Concurrent `CREATE TABLE IF NOT EXISTS` can fail on PostgreSQL
        // (a unique violation in pg_type); the advisory lock serialises them.
        create: &[
            "SELECT pg_advisory_xact_lock(7739247037573116672)",
            "CREATE TABLE IF NOT EXISTS kinesis_records (
                uri TEXT COLLATE \"C\" NOT NULL PRIMARY KEY,
                type TEXT NOT NULL,
                version BIGINT NOT NULL,
                updated_at TEXT NOT NULL,
                \"schema\" INTEGER NOT NULL,
                fields JSONB NOT NULL
            )",
            // The change history, its trigger and NOTIFY (crate::notify).
            crate::notify::CREATE[0],
            crate::notify::CREATE[1],
            crate::notify::CREATE[2],
        ],
        probe: "SELECT uri, type, version, updated_at, \"schema\", fields FROM kinesis_records WHERE 1 = 0",
        load: "SELECT type, version, updated_at, \"schema\", fields::text FROM kinesis_records WHERE uri = $1",
        version: "SELECT version FROM kinesis_records WHERE uri = $1",
        insert: "INSERT INTO kinesis_records (uri, type, version, updated_at, \"schema\", fields) \
                 VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        update: "UPDATE kinesis_records SET type = $1, version = $2, updated_at = $3, \"schema\" = $4, \
                 fields = $5::jsonb WHERE uri = $6 AND version = $7",
        delete: "DELETE FROM kinesis_records WHERE uri = $1",
        // The column's "C" collation makes LIKE case-sensitive, byte-ordered
        // and able to use the primary key index for a prefix.
        list: "SELECT uri FROM kinesis_records WHERE uri LIKE $1 ESCAPE '!' ORDER BY uri",
    };

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn prefix_pattern(prefix: &str) -> String {
        like_prefix(prefix)
    }
}

#[cfg(feature = "mysql")]
impl Dialect for sqlx::MySql {
    const BACKEND: &'static str = "mysql";
    const SQL: Statements = Statements {
        // VARBINARY: byte-wise comparison and order (MySQL's default
        // collations ignore case); 1024 bytes fit InnoDB's 3072-byte key limit.
        create: &["CREATE TABLE IF NOT EXISTS kinesis_records (
            uri VARBINARY(1024) NOT NULL PRIMARY KEY,
            type TEXT CHARACTER SET utf8mb4 NOT NULL,
            version BIGINT NOT NULL,
            updated_at VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL,
            `schema` INT NOT NULL,
            fields JSON NOT NULL
        ) ENGINE = InnoDB"],
        probe: "SELECT uri, type, version, updated_at, `schema`, fields FROM kinesis_records WHERE 1 = 0",
        load: "SELECT CONVERT(type USING utf8mb4), version, CONVERT(updated_at USING utf8mb4), `schema`, \
               CONVERT(fields USING utf8mb4) FROM kinesis_records WHERE uri = ?",
        version: "SELECT version FROM kinesis_records WHERE uri = ?",
        insert: "INSERT INTO kinesis_records (uri, type, version, updated_at, `schema`, fields) \
                 VALUES (?, ?, ?, ?, ?, ?)",
        update: "UPDATE kinesis_records SET type = ?, version = ?, updated_at = ?, `schema` = ?, fields = ? \
                 WHERE uri = ? AND version = ?",
        delete: "DELETE FROM kinesis_records WHERE uri = ?",
        list: "SELECT CONVERT(uri USING utf8mb4) FROM kinesis_records WHERE uri LIKE ? ESCAPE '!' ORDER BY uri",
    };

    fn rows_affected(result: &sqlx::mysql::MySqlQueryResult) -> u64 {
        // sqlx connects with CLIENT_FOUND_ROWS: rows matched, not rows changed.
        result.rows_affected()
    }

    fn prefix_pattern(prefix: &str) -> String {
        like_prefix(prefix)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_escapes_wildcards_and_the_escape_character() {
        assert_eq!(super::like_prefix("/a_b%c!d"), "/a!_b!%c!!d%");
        assert_eq!(super::like_prefix(""), "%");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn glob_escapes_wildcards() {
        use super::Dialect;
        assert_eq!(sqlx::Sqlite::prefix_pattern("/a*b?c[d]"), "/a[*]b[?]c[[]d]*");
    }
}
