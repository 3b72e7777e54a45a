//! Challenges and badges: one-line methods over `tessera-core`.

use tessera_core::challenges::ChallengesView;

use crate::card::Tessera;
use crate::error::ActionError;

#[uniffi::export]
impl Tessera {
    /// Every challenge with its progress (done/target, left, deadline, reward, badge art) and
    /// the badges earned, in one call. Offline: unsent events count at once (`estimated`).
    pub fn challenges(&self) -> Result<ChallengesView, ActionError> {
        Ok(self.inner.challenges()?)
    }

    /// Join an opt-in challenge (offline too): events from now on count towards it.
    pub fn join_challenge(&self, challenge_id: String) -> Result<(), ActionError> {
        Ok(self.inner.join_challenge(&challenge_id)?)
    }
}
