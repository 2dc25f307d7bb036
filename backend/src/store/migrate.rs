//! Numbered, append-only schema migrations, and the views re-created at every start.

use duckdb::{params, Connection};

use super::{Context, Result, StoreError};

/// Never edit an applied entry; add a new one.
pub(super) const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_labels.sql")),
    (3, include_str!("migrations/0003_notes.sql")),
    (4, include_str!("migrations/0004_llm.sql")),
    (5, include_str!("migrations/0005_variants.sql")),
    (6, include_str!("migrations/0006_label_keys.sql")),
    (7, include_str!("migrations/0007_model_precision.sql")),
    (8, include_str!("migrations/0008_accounts.sql")),
    (9, include_str!("migrations/0009_shares.sql")),
    (10, include_str!("migrations/0010_note_moderation.sql")),
    (11, include_str!("migrations/0011_jobs.sql")),
    (12, include_str!("migrations/0012_run_device.sql")),
    (13, include_str!("migrations/0013_served_models.sql")),
    (14, include_str!("migrations/0014_served_model_tokens.sql")),
    (15, include_str!("migrations/0015_run_pipeline.sql")),
];

const VIEWS: &str = include_str!("views.sql");

pub(super) fn run(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,
            applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)",
    )
    .ctx("create schema_migrations")?;
    let applied: i64 = conn
        .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .ctx("read migrations")?;
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if applied > i64::from(known) {
        return Err(StoreError::NewerSchema { path: String::new(), found: applied, known });
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| i64::from(*v) > applied) {
        let apply = || -> duckdb::Result<()> {
            conn.execute_batch("BEGIN TRANSACTION")?;
            conn.execute_batch(sql)?;
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", params![version])?;
            conn.execute_batch("COMMIT")
        };
        if let Err(source) = apply() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Migration { version, source });
        }
    }
    conn.execute_batch(VIEWS).ctx("create views")?;
    Ok(())
}
