//! The SQLite and PostgreSQL schemas are kept in step: after every
//! migration, both declare the same tables, the same columns with the same
//! nullability, the same primary keys, unique constraints and foreign keys,
//! and the same named indexes. (Column types differ by dialect on purpose:
//! `INTEGER PRIMARY KEY AUTOINCREMENT` against `BIGSERIAL`, `BLOB` against
//! `BYTEA`.) Read from each engine's catalogue, not from the SQL text.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyPool, Row};

/// One table as both engines can describe it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// Column name to NOT NULL (primary key columns count as NOT NULL).
    columns: BTreeMap<String, bool>,
    primary_key: Vec<String>,
    /// Column lists of UNIQUE constraints (the primary key's excluded).
    unique: BTreeSet<Vec<String>>,
    /// (columns, referenced table, referenced columns).
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>)>,
    /// Names of indexes created with CREATE INDEX.
    indexes: BTreeSet<String>,
}

type Schema = BTreeMap<String, Table>;

async fn strings(pool: &AnyPool, sql: &str) -> Vec<Vec<String>> {
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| (0..row.len()).map(|i| row.try_get::<String, _>(i).unwrap()).collect())
        .collect()
}

async fn sqlite_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables =
        strings(pool, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").await;
    for t in tables.into_iter().map(|r| r[0].clone()) {
        let mut table = Table::default();
        let columns = strings(
            pool,
            &format!("SELECT name, CAST(\"notnull\" AS TEXT), CAST(pk AS TEXT) FROM pragma_table_info('{t}') ORDER BY pk, cid"),
        )
        .await;
        for c in &columns {
            table.columns.insert(c[0].clone(), c[1] == "1" || c[2] != "0");
            if c[2] != "0" {
                table.primary_key.push(c[0].clone());
            }
        }
        let indexes =
            strings(pool, &format!("SELECT name, CAST(\"unique\" AS TEXT), origin FROM pragma_index_list('{t}')"))
                .await;
        for i in &indexes {
            let cols: Vec<String> =
                strings(pool, &format!("SELECT name FROM pragma_index_info('{}') ORDER BY seqno", i[0]))
                    .await
                    .into_iter()
                    .map(|r| r[0].clone())
                    .collect();
            match i[2].as_str() {
                "c" => {
                    table.indexes.insert(i[0].clone());
                }
                "u" if cols != table.primary_key => {
                    table.unique.insert(cols);
                }
                _ => {}
            }
        }
        let fks = strings(
            pool,
            &format!("SELECT CAST(id AS TEXT), \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('{t}') ORDER BY id, seq"),
        )
        .await;
        let mut by_id: BTreeMap<String, (Vec<String>, String, Vec<String>)> = BTreeMap::new();
        for f in fks {
            let e = by_id.entry(f[0].clone()).or_insert_with(|| (Vec::new(), f[2].clone(), Vec::new()));
            e.0.push(f[1].clone());
            e.2.push(f[3].clone());
        }
        table.foreign_keys = by_id.into_values().collect();
        schema.insert(t, table);
    }
    schema
}

async fn postgres_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables = strings(
        pool,
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .await;
    for t in tables.into_iter().map(|r| r[0].clone()) {
        let mut table = Table::default();
        for c in strings(
            pool,
            &format!(
                "SELECT column_name::text, is_nullable::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{t}'"
            ),
        )
        .await
        {
            table.columns.insert(c[0].clone(), c[1] == "NO");
        }
        // Constraints with their columns in key order, from pg_constraint.
        let constraints = strings(
            pool,
            &format!(
                "SELECT c.conname::text, c.contype::text, \
                        array_to_string(ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
                            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), ','), \
                        COALESCE(f.relname::text, ''), \
                        COALESCE(array_to_string(ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
                            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o), ','), '') \
                 FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid \
                 LEFT JOIN pg_class f ON f.oid = c.confrelid \
                 WHERE r.relname = '{t}' AND c.contype IN ('p', 'u', 'f')"
            ),
        )
        .await;
        let split = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        for c in &constraints {
            match c[1].as_str() {
                "p" => table.primary_key = split(&c[2]),
                "u" => {
                    table.unique.insert(split(&c[2]));
                }
                _ => {
                    table.foreign_keys.insert((split(&c[2]), c[3].clone(), split(&c[4])));
                }
            }
        }
        let constraint_names: BTreeSet<&str> = constraints.iter().map(|c| c[0].as_str()).collect();
        for i in strings(
            pool,
            &format!("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = '{t}'"),
        )
        .await
        {
            if !constraint_names.contains(i[0].as_str()) {
                table.indexes.insert(i[0].clone());
            }
        }
        schema.insert(t, table);
    }
    schema
}

#[tokio::test]
async fn sqlite_and_postgres_declare_the_same_tables_columns_and_constraints() {
    let Some(pg_url) = common::fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.path().join("frankly.db").display());
    // Db::connect migrates to the newest version.
    frankly_server::Db::connect(&sqlite_url, 1).await.unwrap();
    frankly_server::Db::connect(&pg_url, 1).await.unwrap();
    let sqlite = AnyPool::connect(&sqlite_url).await.unwrap();
    let postgres = AnyPool::connect(&pg_url).await.unwrap();
    let (lite, pg) = (sqlite_schema(&sqlite).await, postgres_schema(&postgres).await);
    assert!(lite.len() >= 10, "the SQLite schema was not read: {lite:?}");
    assert_eq!(
        lite.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>(),
        "the two dialects declare different tables"
    );
    let mut differences = Vec::new();
    for (name, table) in &lite {
        if table != &pg[name] {
            differences.push(format!("{name}:\n  sqlite:   {table:?}\n  postgres: {:?}", pg[name]));
        }
    }
    assert!(differences.is_empty(), "the schemas differ:\n{}", differences.join("\n"));
}
