//! The async exports (Kotlin `suspend`, Swift and Python `async`): the blocking call runs on a
//! thread of its own and the future awaits it through a oneshot channel, so no dispatcher or
//! executor thread is held and no runtime is needed. Dropping the future (a cancelled coroutine
//! or task) cancels the work's [`Cancel`]: the call ends at once; work that can stop early stops
//! at its next safe point (ADR 0001).

use tessera_core::sync::Cancel;

/// Cancels when dropped: with the future, whether it was cancelled or finished.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Run `work` on a thread named `name` and await its result; `None` if no thread could be
/// started or the work panicked.
pub(crate) async fn on_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce(&Cancel) -> T + Send + 'static,
) -> Option<T> {
    let cancel = Cancel::new();
    let _stop = CancelOnDrop(cancel.clone());
    let (done, answer) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = done.send(work(&cancel));
        })
        .ok()?;
    answer.await.ok()
}

/// What a caller answers when the work had no thread or panicked.
pub(crate) fn stopped() -> crate::SyncError {
    crate::SyncError::Protocol {
        reason: "the work stopped unexpectedly (no thread, or a panic)".into(),
    }
}
