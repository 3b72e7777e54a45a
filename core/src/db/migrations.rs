//! Schema versions. Each step is a numbered `.sql` file, applied once, in order, in a transaction
//! (`rusqlite_migration` keeps the version in `PRAGMA user_version`). Never edit a shipped step:
//! add the next one. The schema each version had when it shipped is committed in
//! `migrations/snapshots/` and the tests hold every step to it, so an edited step fails (a fresh
//! database and an upgraded one run the same steps, so comparing them alone could not).

use rusqlite_migration::{M, Migrations};

const STEPS: &[M<'static>] = &[
    M::up(include_str!("migrations/0001_card.sql")),
    M::up(include_str!("migrations/0002_sync.sql")),
    M::up(include_str!("migrations/0003_privacy.sql")),
    M::up(include_str!("migrations/0004_offers.sql")),
    M::up(include_str!("migrations/0005_rules.sql")),
    M::up(include_str!("migrations/0006_secrets.sql")),
    M::up(include_str!("migrations/0007_member_code.sql")),
];

/// Every step, in order.
pub static MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = STEPS.len() as u32;

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Tables, indexes and triggers with their SQL, sorted: two databases with the same dump
    /// have the same schema.
    fn schema_dump(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        let mut stmt = conn
            .prepare(
                "SELECT type, name, sql FROM sqlite_schema
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn dump_text(conn: &Connection) -> String {
        schema_dump(conn)
            .into_iter()
            .map(|(kind, name, sql)| format!("-- {kind} {name}\n{};\n", sql.unwrap_or_default()))
            .collect()
    }

    /// Each version's schema as it shipped. A new step adds its snapshot: run the tests once
    /// with `TESSERA_WRITE_SNAPSHOTS=1`, read the file, commit it. An existing snapshot is never
    /// rewritten.
    #[test]
    fn every_version_has_the_schema_it_shipped_with() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db/migrations/snapshots");
        for version in 1..=SCHEMA_VERSION {
            let mut conn = Connection::open_in_memory().unwrap();
            MIGRATIONS.to_version(&mut conn, version as usize).unwrap();
            let got = dump_text(&conn);
            let path = dir.join(format!("v{version}.schema"));
            match std::fs::read_to_string(&path) {
                Ok(want) => assert_eq!(
                    got, want,
                    "version {version} no longer builds the schema it shipped with: a shipped \
                     step was edited (add a new step instead)"
                ),
                Err(_) if std::env::var_os("TESSERA_WRITE_SNAPSHOTS").is_some() => {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&path, got).unwrap();
                }
                Err(_) => panic!(
                    "no snapshot of schema version {version}: run the tests with \
                     TESSERA_WRITE_SNAPSHOTS=1 and commit {}",
                    path.display()
                ),
            }
        }
    }

    #[test]
    fn steps_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn upgrading_every_older_version_equals_a_fresh_database() {
        let mut fresh = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut fresh).unwrap();
        let want = schema_dump(&fresh);
        assert!(!want.is_empty());
        let version: u32 = fresh
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);

        for from in 0..SCHEMA_VERSION {
            let mut old = Connection::open_in_memory().unwrap();
            MIGRATIONS.to_version(&mut old, from as usize).unwrap();
            if from >= 1 {
                // Data written by version 1 must survive every later step.
                old.execute_batch(
                    "INSERT INTO program VALUES (1, 'p', 'Shop', '#112233', 'qr', 0);
                     INSERT INTO member_card VALUES (1, '42', '42', 'A', '2020-01-01', NULL, 0);",
                )
                .unwrap();
            }
            MIGRATIONS.to_latest(&mut old).unwrap();
            assert_eq!(schema_dump(&old), want, "upgrade from version {from}");
            if from >= 1 {
                let n: u32 = old
                    .query_row("SELECT count(*) FROM member_card", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(n, 1, "data kept when upgrading from version {from}");
            }
        }
    }
}
