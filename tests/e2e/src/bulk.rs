//! Programmes at scale for the load generators (`benches/kpis.rs`, `benches/audience.rs`):
//! rows written straight into a server's database with set-based SQL in either backend's
//! dialect, and the percentiles the generators report.

use std::time::Duration;

use crate::{Backend, Server};

/// The rows `0..n` as a table `n` with one column `i`.
pub fn series(postgres: bool, n: usize) -> String {
    if postgres {
        format!("(SELECT generate_series(0::bigint, {}) AS i) n", n - 1)
    } else {
        format!(
            "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) \
             SELECT i FROM s) n",
            n - 1
        )
    }
}

/// `prefix` followed by `expr` (an integer expression) padded with zeros to `width`.
pub fn padded(postgres: bool, prefix: &str, expr: &str, width: usize) -> String {
    if postgres {
        format!("'{prefix}' || lpad(({expr})::text, {width}, '0')")
    } else {
        format!("printf('{prefix}%0{width}d', {expr})")
    }
}

/// Run `sql` on the server's database in one transaction (SQLite) or one `psql` script
/// (PostgreSQL, in the server's schema).
pub fn load(server: &Server, sql: &[String]) {
    match &server.backend {
        Backend::Sqlite(s) => {
            let c = rusqlite::Connection::open(s.path()).unwrap();
            c.busy_timeout(Duration::from_secs(60)).unwrap();
            c.execute_batch("BEGIN").unwrap();
            for statement in sql {
                c.execute_batch(statement).unwrap();
            }
            c.execute_batch("COMMIT").unwrap();
        }
        Backend::Postgres(s) => {
            let url = tessera_server::storage::postgres::test_url().unwrap();
            let schema = s.temporary_schema().expect("a test schema");
            let script = format!("SET search_path TO {schema};\n{};\n", sql.join(";\n"));
            let out = std::process::Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", &url, "-c", &script])
                .output()
                .expect("psql");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The `p` percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
