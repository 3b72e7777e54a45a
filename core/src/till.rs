//! The till: verifies coupons offline with the programme's public keys, and redeems them
//! through the server exactly once. Used by the CLI's till shell and the bindings.

use std::sync::Mutex;

use crate::api::{RedeemRequest, Redemption, codes};
use crate::coupon::{CouponClaims, CouponError, CouponKey, verify};
use crate::sync::http::{Request, Traffic};
use crate::sync::{Http, SyncConfig, SyncError};

/// Why a till could not redeem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TillError {
    /// The coupon is refused (forged, expired, another shop's, redeemed already…).
    #[error(transparent)]
    Coupon(#[from] CouponError),
    /// The server could not be reached or refused the till.
    #[error(transparent)]
    Network(#[from] SyncError),
}

/// One till of one shop.
pub struct Till {
    runtime: tokio::runtime::Runtime,
    http: Http,
    token: String,
    store_id: String,
    keys: Mutex<Vec<CouponKey>>,
}

impl std::fmt::Debug for Till {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Till")
            .field("store_id", &self.store_id)
            .finish_non_exhaustive()
    }
}

impl Till {
    /// A till of `store_id` talking to `server_url` with its token; fetches the public keys.
    pub fn connect(server_url: &str, token: &str, store_id: &str) -> Result<Self, TillError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SyncError::Protocol {
                reason: format!("cannot start the network runtime: {e}"),
            })?;
        let http = Http::new(server_url, SyncConfig::default())?;
        let till = Till {
            runtime,
            http,
            token: token.to_owned(),
            store_id: store_id.to_owned(),
            keys: Mutex::new(Vec::new()),
        };
        till.refresh_keys()?;
        Ok(till)
    }

    /// Fetch the server's coupon keys again (a new key was added).
    pub fn refresh_keys(&self) -> Result<usize, TillError> {
        let mut traffic = Traffic::default();
        let answer = self.runtime.block_on(
            self.http
                .send(&Request::get("/v1/coupon-keys"), &mut traffic),
        )?;
        if answer.status.as_u16() != 200 {
            return Err(SyncError::Server {
                status: answer.status.as_u16(),
                code: answer.problem().code,
            }
            .into());
        }
        let keys: Vec<CouponKey> = answer.json()?;
        let n = keys.len();
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(n)
    }

    /// Everything checked offline, on the till's clock.
    pub fn verify(
        &self,
        code: &str,
        member_id: Option<&str>,
        basket_cents: u64,
    ) -> Result<CouponClaims, CouponError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner()).clone();
        verify(
            code,
            &keys,
            jiff::Timestamp::now().as_second(),
            &self.store_id,
            member_id,
            basket_cents,
        )
    }

    /// Verify offline, then redeem through the server: exactly one till ever succeeds for a
    /// coupon; the others get `AlreadyRedeemed` with where and when. Retries (lost answers,
    /// timeouts) reuse one idempotency key, so they get the first answer.
    pub fn redeem(
        &self,
        code: &str,
        basket_cents: u64,
        receipt: &str,
    ) -> Result<Redemption, TillError> {
        self.verify(code, None, basket_cents)?;
        let body = serde_json::to_vec(&RedeemRequest {
            code: code.to_owned(),
            receipt: receipt.to_owned(),
            basket_cents,
            redeemed_offline_at: None,
        })
        .map_err(|e| SyncError::Protocol {
            reason: e.to_string(),
        })?;
        let mut req = Request::post("/v1/till/redemptions", body);
        req.bearer = Some(self.token.clone());
        req.idempotency_key = Some(format!("r-{}", uuid::Uuid::new_v4().simple()));
        let mut traffic = Traffic::default();
        let answer = self.runtime.block_on(self.http.send(&req, &mut traffic))?;
        match answer.status.as_u16() {
            200 => Ok(answer.json()?),
            _ => {
                let problem = answer.problem();
                let detail = problem.detail.clone().unwrap_or_default();
                Err(match problem.code.as_str() {
                    codes::ALREADY_REDEEMED => {
                        let (store_id, redeemed_at) =
                            detail.split_once(' ').unwrap_or((detail.as_str(), ""));
                        CouponError::AlreadyRedeemed {
                            store_id: store_id.to_owned(),
                            redeemed_at: redeemed_at.to_owned(),
                        }
                        .into()
                    }
                    codes::COUPON_REFUSED => CouponError::Malformed { reason: detail }.into(),
                    _ => SyncError::Server {
                        status: answer.status.as_u16(),
                        code: problem.code,
                    }
                    .into(),
                })
            }
        }
    }
}
