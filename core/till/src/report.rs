//! The journal's report: what waits, reported in order under the keys it was journaled with, and
//! the outcomes the server gave.

use rusqlite::{OptionalExtension, params};

use tessera_domain::api::{VoidReport, codes};

use super::*;

impl Till {
    /// Requests journaled and not reported yet.
    pub fn pending(&self) -> Result<u32, TillError> {
        self.journal.read(|c| -> Result<u32, TillError> {
            Ok(c.query_row("SELECT count(*) FROM pending", [], |r| r.get(0))?)
        })
    }

    /// Report the journal in order. Stops at the first request the server cannot take now
    /// (offline again); each answered one leaves the journal with its outcome recorded.
    pub fn sync(&self) -> Result<TillSyncReport, TillError> {
        let mut report = TillSyncReport::default();
        type Row = (i64, String, String, Option<String>, String, String, String);
        loop {
            let next: Option<Row> = self.journal.read(|c| -> Result<_, TillError> {
                Ok(c.query_row(
                    "SELECT seq, kind, receipt, coupon_id, path, body, idempotency_key
                     FROM pending ORDER BY seq LIMIT 1",
                    [],
                    |r| r.try_into(),
                )
                .optional()?)
            })?;
            let Some((seq, kind, receipt, coupon_id, path, body, key)) = next else {
                break;
            };
            let answer = match self.post(&path, &body, &key) {
                Ok(a) => a,
                Err(e) if e.is_transient() => break,
                Err(e) => return Err(e.into()),
            };
            let status = answer.status;
            // The till's token is refused: keep the journal for when it is fixed.
            if status == 401 {
                return Err(refusal(&answer));
            }
            let problem = (!(200..300).contains(&answer.status)).then(|| answer.problem());
            let now = now_ms();
            let outcome = TillOutcome {
                kind,
                receipt,
                coupon_id,
                status,
                code: problem.as_ref().map(|p| p.code.clone()),
                detail: problem.as_ref().and_then(|p| p.detail.clone()),
                reported_at: tessera_domain::rfc3339_ms(now),
            };
            if outcome.kind == "void"
                && let Ok(r) = answer.json::<VoidReport>()
            {
                self.forget_seen(&r.coupons_restored)?;
            }
            self.journal.write(|tx| -> Result<(), TillError> {
                tx.execute("DELETE FROM pending WHERE seq = ?1", [seq])?;
                if outcome.code.is_none() {
                    Self::mark_sent(tx, &outcome.receipt)?;
                }
                tx.execute(
                    "INSERT INTO outcome (kind, receipt, coupon_id, status, code, detail,
                       reported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        outcome.kind,
                        outcome.receipt,
                        outcome.coupon_id,
                        status,
                        outcome.code,
                        outcome.detail,
                        now
                    ],
                )?;
                Ok(())
            })?;
            match outcome.code.as_deref() {
                None => report.accepted += 1,
                Some(codes::REDEMPTION_CONFLICT) => report.conflicts.push(outcome),
                Some(_) => report.refused.push(outcome),
            }
        }
        report.pending = self.pending()?;
        Ok(report)
    }

    /// The server's answers to journaled reports, newest first.
    pub fn outcomes(&self, limit: u32) -> Result<Vec<TillOutcome>, TillError> {
        self.journal.read(|c| -> Result<_, TillError> {
            let mut stmt = c.prepare(
                "SELECT kind, receipt, coupon_id, status, code, detail, reported_at FROM outcome
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    Ok(TillOutcome {
                        kind: r.get(0)?,
                        receipt: r.get(1)?,
                        coupon_id: r.get(2)?,
                        status: r.get(3)?,
                        code: r.get(4)?,
                        detail: r.get(5)?,
                        reported_at: tessera_domain::rfc3339_ms(r.get(6)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
