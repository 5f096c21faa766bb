//! SQL stores of kinesis through sqlx: SQLite, PostgreSQL, MySQL/MariaDB. (being built; see the project's issues.)
