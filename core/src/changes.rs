//! What changed in the member's data, told to the app after each write commits, so that screens
//! re-read what they show (Kotlin `Flow`s, Swift `AsyncStream`s) instead of polling.
//!
//! The source is the database itself: SQLite's update hook on the one writer connection notes
//! the tables each transaction touches, and a commit publishes the kinds of data they hold. No
//! feature has to remember to announce its writes, and a rolled-back transaction announces
//! nothing. A sync holds the announcements and makes one at its end (a first sync commits
//! hundreds of catalog pages). Announcements are made on the thread that wrote, after the
//! commit and outside every lock; the observer must be quick (hand over to the UI and return).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// A kind of data the app shows: re-read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Change {
    /// The card, the programme (`card()`, `program()`).
    Card,
    /// Balance, ledger, tier (`points()`, `tier_progress()`, `rewards()`).
    Points,
    /// Coupons (`wallet()`).
    Wallet,
    /// Challenges and badges (`challenges()`).
    Challenges,
    /// The catalog and what the member may use (`offers()`, `offers_near()`, `stores()`).
    Offers,
    /// Consents (`consent_state()`, `consent_history()`, `permits()`).
    Consent,
    /// The preference centre (`preferences()`).
    Preferences,
    /// The activity list (`activity()`).
    Activity,
    /// Enrolment, pending and rejected actions, the last sync (`sync_status()`,
    /// `rejected_actions()`).
    SyncStatus,
}

impl Change {
    pub const ALL: [Change; 9] = [
        Change::Card,
        Change::Points,
        Change::Wallet,
        Change::Challenges,
        Change::Offers,
        Change::Consent,
        Change::Preferences,
        Change::Activity,
        Change::SyncStatus,
    ];

    const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The kinds in `bits`, in declaration order.
    pub fn from_bits(bits: u32) -> Vec<Change> {
        Change::ALL
            .into_iter()
            .filter(|c| bits & c.bit() != 0)
            .collect()
    }

    pub(crate) fn bits(changes: &[Change]) -> u32 {
        changes.iter().fold(0, |b, c| b | c.bit())
    }
}

/// Told what changed after each commit (or once at the end of a sync).
pub trait ChangeObserver: Send + Sync {
    fn on_change(&self, changes: Vec<Change>);
}

/// The kinds of data a table of the phone's database holds. Tables not listed (logs of what was
/// notified, push messages seen) change nothing the app shows.
pub fn phone_table(table: &str) -> u32 {
    use Change::*;
    let kinds: &[Change] = match table {
        "program" | "member_card" => &[Card],
        // The server's view of the member: points, tier (on the card), coupons, challenges.
        "member_state" => &[Card, Points, Wallet, Challenges],
        "offer_state" => &[Wallet, Offers],
        // Pending actions: the sync status, and challenges estimated from pending events.
        "outbox" => &[SyncStatus, Challenges],
        "outbox_rejected" | "session" | "sync_state" => &[SyncStatus],
        "store" | "offer" | "favourite_store" => &[Offers],
        "rule_set" => &[Challenges, Offers],
        "consent_record" => &[Consent, Offers],
        "preference" => &[Preferences, Offers],
        "activity" => &[Activity, Challenges],
        _ => &[],
    };
    Change::bits(kinds)
}

/// Which tables mean what, per kind of database file.
pub type TableKinds = fn(&str) -> u32;

/// For files whose writes nobody watches (the till's journal).
pub fn no_tables(_: &str) -> u32 {
    0
}

/// What the update hook writes to: boxed, so that its address (given to SQLite) stays put.
struct Watch {
    /// Kinds touched by the transaction in progress.
    pending: AtomicU32,
    kinds: TableKinds,
}

/// SQLite's update hook: note the kinds of data the changed row's table holds. Called by SQLite
/// on the thread writing, inside the write.
extern "C" fn on_update(
    watch: *mut std::ffi::c_void,
    _op: std::ffi::c_int,
    _db: *const std::ffi::c_char,
    table: *const std::ffi::c_char,
    _rowid: i64,
) {
    // SAFETY: `watch` is the `Watch` boxed in the `ChangeFeed` of the `Db` owning the connection,
    // which outlives the connection (`Db` drops its connections before its feed, and `wipe`
    // re-registers the same box on the new connection); SQLite passes `table` as a NUL-terminated
    // string valid for the call.
    #[allow(unsafe_code)]
    let (watch, table) = unsafe { (&*(watch as *const Watch), std::ffi::CStr::from_ptr(table)) };
    let kinds = std::str::from_utf8(table.to_bytes()).map_or(0, watch.kinds);
    watch.pending.fetch_or(kinds, Ordering::Relaxed);
}

/// The announcements of one database.
pub struct ChangeFeed {
    watch: Box<Watch>,
    held: Mutex<Held>,
    observer: Mutex<Option<Arc<dyn ChangeObserver>>>,
}

#[derive(Default)]
struct Held {
    depth: u32,
    bits: u32,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed").finish_non_exhaustive()
    }
}

impl ChangeFeed {
    pub(crate) fn new(kinds: TableKinds) -> Self {
        ChangeFeed {
            watch: Box::new(Watch {
                pending: AtomicU32::new(0),
                kinds,
            }),
            held: Mutex::new(Held::default()),
            observer: Mutex::new(None),
        }
    }

    /// Note on `conn` (the writer) which kinds each row change touches. SQLite's own hook API,
    /// not rusqlite's `hooks` feature: that one also references the progress and authorizer
    /// callbacks, which the shipped SQLite leaves out (scripts/ffi-env.sh).
    pub(crate) fn watch(&self, conn: &rusqlite::Connection) {
        let watch: *const Watch = &*self.watch;
        // SAFETY: `conn.handle()` is the open connection this `Db` owns; `on_update` only reads
        // `watch`, which outlives the connection (see `on_update`).
        #[allow(unsafe_code)]
        unsafe {
            rusqlite::ffi::sqlite3_update_hook(conn.handle(), Some(on_update), watch as *mut _);
        }
    }

    /// Forget what an unfinished transaction touched (called before each transaction, under the
    /// writer's lock).
    pub(crate) fn begin(&self) {
        self.watch.pending.store(0, Ordering::Relaxed);
    }

    /// What the transaction that just committed touched (under the writer's lock).
    pub(crate) fn committed(&self) -> u32 {
        self.watch.pending.swap(0, Ordering::Relaxed)
    }

    pub fn set_observer(&self, observer: Option<Arc<dyn ChangeObserver>>) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    /// Announce `bits` now, or, when this thread holds announcements ([`ChangeFeed::hold`]),
    /// at the end of the last hold. Call with no lock held: the observer is foreign code.
    pub(crate) fn publish(&self, bits: u32) {
        if bits == 0 {
            return;
        }
        if HOLDING.with(|h| h.borrow().contains(&self.id())) {
            self.held.lock().unwrap_or_else(|p| p.into_inner()).bits |= bits;
            return;
        }
        self.announce(bits);
    }

    fn id(&self) -> usize {
        self as *const ChangeFeed as usize
    }

    fn announce(&self, bits: u32) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(o) = observer {
            // The write has committed: the app's listener failing (a foreign exception becomes a
            // panic here) must not make the call that wrote report a failure it did not have.
            let changes = Change::from_bits(bits);
            let told =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| o.on_change(changes)));
            if told.is_err() {
                tracing::warn!("the change listener failed; the write stands");
            }
        }
    }

    /// Hold this thread's announcements until the returned guard is dropped; when the last hold
    /// (on any thread: a sync applies catalog pages on a second one) ends, announce once what
    /// changed meanwhile. Other threads' writes (the member clipping an offer during a sync)
    /// are announced at once as usual.
    pub fn hold(&self) -> Hold<'_> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).depth += 1;
        HOLDING.with(|h| h.borrow_mut().push(self.id()));
        Hold(self)
    }
}

thread_local! {
    /// The feeds this thread holds announcements for (one entry per hold).
    static HOLDING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// See [`ChangeFeed::hold`].
#[derive(Debug)]
pub struct Hold<'a>(&'a ChangeFeed);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let id = self.0.id();
        HOLDING.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|x| *x == id) {
                h.remove(i);
            }
        });
        let bits = {
            let mut held = self.0.held.lock().unwrap_or_else(|p| p.into_inner());
            held.depth -= 1;
            if held.depth > 0 {
                return;
            }
            std::mem::take(&mut held.bits)
        };
        if bits != 0 {
            self.0.announce(bits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::{MemberCard, Program, Symbology, Tessera};

    #[derive(Default)]
    struct Seen(Mutex<Vec<Vec<Change>>>);

    impl ChangeObserver for Seen {
        fn on_change(&self, changes: Vec<Change>) {
            self.0.lock().unwrap().push(changes);
        }
    }

    impl Seen {
        fn take(&self) -> Vec<Vec<Change>> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn watched(db: &Db) -> Arc<Seen> {
        let seen = Arc::new(Seen::default());
        db.changes().set_observer(Some(seen.clone()));
        seen
    }

    fn insert_program(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<usize> {
        tx.execute(
            "INSERT INTO program (id, program_id, name, brand_color, symbology, updated_at)
             VALUES (1, 'p', 'P', '#000000', 'qr', 0)",
            [],
        )
    }

    #[test]
    fn a_commit_announces_the_kinds_its_tables_hold_and_a_rollback_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("t.db")).unwrap();
        let seen = watched(&db);
        let failed: Result<(), crate::StorageError> = db.write(|tx| {
            insert_program(tx)?;
            Err(crate::StorageError::Closed)
        });
        assert!(failed.is_err());
        assert_eq!(
            seen.take(),
            Vec::<Vec<Change>>::new(),
            "rolled back: nothing"
        );
        db.write(|tx| Ok::<_, crate::StorageError>(insert_program(tx)?))
            .unwrap();
        assert_eq!(seen.take(), vec![vec![Change::Card]]);
        // A table the app does not show changes nothing.
        db.write(|tx| {
            tx.execute(
                "INSERT INTO push_seen (push_id, received_at) VALUES ('x', 0)",
                [],
            )?;
            Ok::<_, crate::StorageError>(())
        })
        .unwrap();
        assert_eq!(seen.take(), Vec::<Vec<Change>>::new());
    }

    #[test]
    fn the_members_actions_announce_what_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tessera::open(dir.path().join("t.db")).unwrap();
        let seen = Arc::new(Seen::default());
        t.set_change_observer(Some(seen.clone()));
        t.set_program(&Program {
            id: "maison-dupont".into(),
            name: "Maison Dupont".into(),
            brand_color: "#0a7d5a".into(),
            symbology: Symbology::Ean13,
        })
        .unwrap();
        t.set_card(&MemberCard {
            card_number: "400638133393".into(),
            holder_name: "Ada".into(),
            member_since: "2021-03-04".into(),
            tier_label: Some("Gold".into()),
        })
        .unwrap();
        assert_eq!(seen.take(), vec![vec![Change::Card], vec![Change::Card]]);
        // A bare `DELETE FROM member_card` takes SQLite's truncate shortcut, which skips the hook.
        t.remove_card().unwrap();
        assert_eq!(seen.take(), vec![vec![Change::Card]]);
        t.set_change_observer(None);
        t.set_card(&MemberCard {
            card_number: "400638133393".into(),
            holder_name: "Ada".into(),
            member_since: "2021-03-04".into(),
            tier_label: None,
        })
        .unwrap();
        assert_eq!(
            seen.take(),
            Vec::<Vec<Change>>::new(),
            "no observer: told nothing"
        );
    }

    #[test]
    fn a_hold_makes_one_announcement_and_leaves_other_threads_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path().join("t.db")).unwrap());
        let seen = watched(&db);
        let other = Db::open(dir.path().join("other.db")).unwrap();
        let seen_other = watched(&other);
        {
            let _hold = db.changes().hold();
            db.write(|tx| Ok::<_, crate::StorageError>(insert_program(tx)?))
                .unwrap();
            // Another database written on this thread meanwhile is not held.
            other
                .write(|tx| Ok::<_, crate::StorageError>(insert_program(tx)?))
                .unwrap();
            assert_eq!(seen_other.take(), vec![vec![Change::Card]]);
            // Another thread's write (the member acting during a sync) is told at once.
            let db2 = db.clone();
            std::thread::spawn(move || {
                db2.write(|tx| {
                    tx.execute(
                        "INSERT INTO favourite_store (store_id, updated_at) VALUES ('s', 0)",
                        [],
                    )?;
                    Ok::<_, crate::StorageError>(())
                })
                .unwrap()
            })
            .join()
            .unwrap();
            assert_eq!(seen.take(), vec![vec![Change::Offers]]);
            // A second thread joining the hold (the sync's page writer) adds to it.
            let db3 = db.clone();
            std::thread::spawn(move || {
                let _hold = db3.changes().hold();
                db3.write(|tx| {
                    tx.execute(
                        "INSERT INTO activity (event_id, kind, occurred_at, attributes)
                         VALUES ('e', 'app_opened', '2026-11-30T00:00:00Z', '{}')",
                        [],
                    )?;
                    Ok::<_, crate::StorageError>(())
                })
                .unwrap()
            })
            .join()
            .unwrap();
            assert_eq!(seen.take(), Vec::<Vec<Change>>::new(), "held");
        }
        assert_eq!(
            seen.take(),
            vec![vec![Change::Card, Change::Challenges, Change::Activity]]
        );
    }

    struct Panicking;

    impl ChangeObserver for Panicking {
        fn on_change(&self, _: Vec<Change>) {
            panic!("the app's listener failed");
        }
    }

    #[test]
    fn a_failing_observer_does_not_fail_the_write_it_is_told_about() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("t.db")).unwrap();
        db.changes().set_observer(Some(Arc::new(Panicking)));
        db.write(|tx| Ok::<_, crate::StorageError>(insert_program(tx)?))
            .unwrap();
        let rows: i64 = db
            .read(|c| {
                Ok::<_, crate::StorageError>(c.query_row(
                    "SELECT count(*) FROM program",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn wiping_the_database_announces_everything() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("t.db")).unwrap();
        let seen = watched(&db);
        db.wipe().unwrap();
        assert_eq!(seen.take(), vec![Change::ALL.to_vec()]);
        // The fresh writer is watched too.
        db.write(|tx| Ok::<_, crate::StorageError>(insert_program(tx)?))
            .unwrap();
        assert_eq!(seen.take(), vec![vec![Change::Card]]);
    }
}
