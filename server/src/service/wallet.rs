//! Wallet passes on the server (issue #18): a member's card pass and their coupons' passes,
//! issued once (serial, authentication token, the shops listed), their content always computed
//! from the member's state in the database, and the change tracking that tells the wallets:
//! every change to a member marks their passes stale (the repository does it), the worker looks
//! at them ([`look_at`]), and a pass whose content changed gets a new `updated_at` (its
//! Last-Modified and update tag) and is pushed.

use sha2::Digest;
use tessera_domain::barcode::Symbology;
use tessera_domain::geo::Position;
use tessera_domain::pass::{CardPass, CouponPass, MAX_LOCATIONS, PassShop, nearest_shops};

use crate::storage::repo::{PassRow, RepoResult};
use crate::storage::{Repo, StorageError, read, write};

/// The card pass's serial for a member.
pub fn card_serial(member_id: &str) -> String {
    format!("card-{member_id}")
}

/// One of a member's passes as staff see it (the console's member page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPass {
    pub serial: String,
    /// `None` for the member's card.
    pub coupon_id: Option<String>,
    /// Devices registered for its updates (Apple Wallet).
    pub devices: usize,
    /// A Google Wallet object was offered for it.
    pub google: bool,
    /// When what it shows last changed (ms).
    pub updated_ms: i64,
    /// The wallets have been told of what it shows now.
    pub up_to_date: bool,
}

/// What a pass shows now.
#[derive(Debug, Clone, PartialEq)]
pub enum PassContent {
    Card(CardPass),
    Coupon(CouponPass),
}

impl PassContent {
    /// The pass as a Google Wallet object (a loyalty object for the card, an offer object of
    /// the offer's class for a coupon), and which kind it is.
    pub fn google(
        &self,
        google: &crate::wallet::GoogleWallet,
    ) -> Result<
        (crate::wallet::google::ObjectKind, serde_json::Value),
        tessera_domain::pass::PassError,
    > {
        use crate::wallet::google::ObjectKind;
        Ok(match self {
            PassContent::Card(c) => (
                ObjectKind::Loyalty,
                c.google(&google.issuer_id, &google.class_id())?,
            ),
            PassContent::Coupon(c) => (
                ObjectKind::Offer,
                c.google(
                    &google.issuer_id,
                    &format!("{}.{}", google.issuer_id, c.offer_id),
                )?,
            ),
        })
    }

    /// A digest of the content: a change of it is a change of the pass.
    pub fn digest(&self) -> String {
        let json = match self {
            PassContent::Card(c) => serde_json::to_vec(c),
            PassContent::Coupon(c) => serde_json::to_vec(c),
        }
        .unwrap_or_default();
        sha2::Sha256::digest(&json)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Which pass to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOf<'a> {
    Card,
    Coupon(&'a str),
}

/// Why a pass cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPass {
    UnknownMember,
    /// Not the member's coupon, or no such coupon.
    UnknownCoupon,
}

fn shops_of(stores: &[tessera_domain::catalog::Store], only: &[String]) -> Vec<PassShop> {
    stores
        .iter()
        .filter(|s| only.is_empty() || only.contains(&s.id))
        .map(|s| PassShop {
            store_id: s.id.clone(),
            name: s.name.clone(),
            position: Position {
                latitude: s.latitude,
                longitude: s.longitude,
            },
        })
        .collect()
}

/// Issue the member's pass (or find the one issued): its row, with its content as of now.
pub(crate) fn issue(
    repo: &mut dyn Repo,
    member_id: &str,
    of: PassOf<'_>,
    near: Option<Position>,
    google: bool,
    now_ms: i64,
) -> RepoResult<Result<(PassRow, PassContent), NoPass>> {
    if repo.member(member_id)?.is_none() {
        return Ok(Err(NoPass::UnknownMember));
    }
    let (serial, coupon) = match of {
        PassOf::Card => (card_serial(member_id), None),
        PassOf::Coupon(id) => match repo.coupon(id, member_id)? {
            None => return Ok(Err(NoPass::UnknownCoupon)),
            found => (id.to_owned(), found),
        },
    };
    if repo.wallet_pass(&serial)?.is_none() {
        // A coupon's pass lists the shops its offer is valid in (all, when it names none).
        let only = match &coupon {
            None => Vec::new(),
            Some(c) => repo
                .offer(&c.offer_id)?
                .map(|o| o.store_ids)
                .unwrap_or_default(),
        };
        let stores = repo.catalog_stores()?;
        let shops = nearest_shops(&shops_of(&stores, &only), near, MAX_LOCATIONS);
        let token = crate::wallet::apple::authentication_token()
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        let row = PassRow {
            serial: serial.clone(),
            member_id: member_id.to_owned(),
            coupon_id: coupon.map(|c| c.id),
            auth_token: token,
            shops: serde_json::to_string(&shops).map_err(StorageError::backend)?,
            digest: String::new(),
            pushed_digest: String::new(),
            updated_ms: now_ms,
            stale: 0,
            google,
        };
        repo.insert_wallet_pass(&row)?;
    }
    if google && !repo.wallet_pass(&serial)?.is_some_and(|p| p.google) {
        repo.pass_offered_to_google(&serial)?;
        if of != PassOf::Card {
            // The card's Google object links the member's offers: it changes too.
            repo.mark_passes_stale(member_id)?;
        }
    }
    match current(repo, &serial, now_ms)? {
        Some(found) => {
            if found.0.pushed_digest.is_empty() {
                // Nothing to tell anyone of what was just issued.
                repo.pass_pushed(&serial, &found.0.digest, found.0.stale)?;
            }
            Ok(Ok(found))
        }
        None => Ok(Err(NoPass::UnknownMember)),
    }
}

/// The pass as it is now: its row (with a new `updated_at` if its content changed since it was
/// last written) and its content; `None` for an unknown pass or a member no longer there.
pub(crate) fn current(
    repo: &mut dyn Repo,
    serial: &str,
    now_ms: i64,
) -> RepoResult<Option<(PassRow, PassContent)>> {
    let Some(row) = repo.wallet_pass(serial)? else {
        return Ok(None);
    };
    let Some(content) = content(repo, &row)? else {
        return Ok(None);
    };
    let digest = content.digest();
    if digest != row.digest {
        repo.pass_changed(serial, &digest, now_ms)?;
        let Some(row) = repo.wallet_pass(serial)? else {
            return Ok(None);
        };
        return Ok(Some((row, content)));
    }
    Ok(Some((row, content)))
}

/// What the pass shows, from the member's state.
fn content(repo: &mut dyn Repo, row: &PassRow) -> RepoResult<Option<PassContent>> {
    let Some(member) = repo.member(&row.member_id)? else {
        return Ok(None);
    };
    let shops: Vec<PassShop> = serde_json::from_str(&row.shops).map_err(StorageError::backend)?;
    match &row.coupon_id {
        None => {
            let symbology = repo
                .catalog_program()?
                .map_or(Symbology::Qr, |p| p.symbology);
            let linked_offers = repo
                .member_passes(&row.member_id)?
                .into_iter()
                .filter(|p| p.coupon_id.is_some() && p.google)
                .map(|p| p.serial)
                .collect();
            let balance = repo.balance(&row.member_id)?;
            Ok(Some(PassContent::Card(CardPass {
                serial: row.serial.clone(),
                card_number: member.card_number,
                member_name: member.holder_name,
                points: i64::try_from(balance).unwrap_or(i64::MAX),
                tier: Some(member.tier).filter(|t| !t.is_empty()),
                symbology,
                shops,
                linked_offers,
            })))
        }
        Some(coupon_id) => {
            let Some(coupon) = repo.coupon(coupon_id, &row.member_id)? else {
                return Ok(None);
            };
            let offer = repo.offer(&coupon.offer_id)?;
            let (title, description) = offer
                .map(|o| (o.title, o.description))
                .unwrap_or_else(|| (coupon.offer_id.clone(), String::new()));
            Ok(Some(PassContent::Coupon(CouponPass {
                serial: row.serial.clone(),
                coupon_id: coupon.id.clone(),
                offer_id: coupon.offer_id.clone(),
                title,
                description,
                code: coupon.code.clone(),
                expires_at: tessera_domain::rfc3339_ms(coupon.expires_s.saturating_mul(1000)),
                shops,
                used: coupon.redeemed_at_ms.is_some() || coupon.revoked_at_ms.is_some(),
            })))
        }
    }
}

/// A stale pass looked at by the worker: what to tell whom.
#[derive(Debug, Clone)]
pub struct Looked {
    pub row: PassRow,
    pub content: Option<PassContent>,
    /// The stale count seen: cleared after the wallets were told, unless it moved since.
    pub stale: i64,
    /// The devices registered for the pass's updates.
    pub push_tokens: Vec<String>,
}

/// Look at a stale pass: its content now (a change gets a new `updated_at`), and who to tell.
pub(crate) fn look_at(
    repo: &mut dyn Repo,
    serial: &str,
    now_ms: i64,
) -> RepoResult<Option<Looked>> {
    let Some(before) = repo.wallet_pass(serial)? else {
        return Ok(None);
    };
    let found = current(repo, serial, now_ms)?;
    let push_tokens = repo.pass_push_tokens(serial)?;
    Ok(Some(match found {
        Some((row, content)) => Looked {
            row,
            content: Some(content),
            stale: before.stale,
            push_tokens,
        },
        None => Looked {
            row: before.clone(),
            content: None,
            stale: before.stale,
            push_tokens,
        },
    }))
}

/// The wallet operations, on any storage.
#[async_trait::async_trait]
pub trait WalletServices {
    /// Issue the member's card or coupon pass (or find it): its row and content now.
    async fn issue_pass(
        &self,
        member_id: String,
        coupon_id: Option<String>,
        near: Option<Position>,
        google: bool,
        now_ms: i64,
    ) -> Result<Result<(PassRow, PassContent), NoPass>, StorageError>;
    /// The pass as it is now; `None` if unknown.
    async fn current_pass(
        &self,
        serial: String,
        now_ms: i64,
    ) -> Result<Option<(PassRow, PassContent)>, StorageError>;
    async fn wallet_pass(&self, serial: String) -> Result<Option<PassRow>, StorageError>;
    async fn register_pass(
        &self,
        device_id: String,
        serial: String,
        push_token: String,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
    async fn unregister_pass(
        &self,
        device_id: String,
        serial: String,
    ) -> Result<bool, StorageError>;
    async fn device_passes(
        &self,
        device_id: String,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StorageError>;
    async fn stale_passes(
        &self,
        after: String,
        limit: u32,
    ) -> Result<Vec<(String, i64)>, StorageError>;
    async fn look_at_pass(
        &self,
        serial: String,
        now_ms: i64,
    ) -> Result<Option<Looked>, StorageError>;
    async fn pass_pushed(
        &self,
        serial: String,
        digest: String,
        stale: i64,
    ) -> Result<(), StorageError>;
    async fn forget_pass_push_token(&self, push_token: String) -> Result<u64, StorageError>;
    /// The member's passes (the card's and their coupons'), by serial.
    async fn member_wallet_passes(
        &self,
        member_id: String,
    ) -> Result<Vec<MemberPass>, StorageError>;
}

#[async_trait::async_trait]
impl<S: crate::storage::Storage + ?Sized> WalletServices for S {
    async fn issue_pass(
        &self,
        member_id: String,
        coupon_id: Option<String>,
        near: Option<Position>,
        google: bool,
        now_ms: i64,
    ) -> Result<Result<(PassRow, PassContent), NoPass>, StorageError> {
        write(self, move |repo| {
            let of = match &coupon_id {
                None => PassOf::Card,
                Some(id) => PassOf::Coupon(id),
            };
            issue(repo, &member_id, of, near, google, now_ms)
        })
        .await
    }

    async fn current_pass(
        &self,
        serial: String,
        now_ms: i64,
    ) -> Result<Option<(PassRow, PassContent)>, StorageError> {
        write(self, move |repo| current(repo, &serial, now_ms)).await
    }

    async fn wallet_pass(&self, serial: String) -> Result<Option<PassRow>, StorageError> {
        read(self, move |repo| repo.wallet_pass(&serial)).await
    }

    async fn register_pass(
        &self,
        device_id: String,
        serial: String,
        push_token: String,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        write(self, move |repo| {
            repo.register_pass(&device_id, &serial, &push_token, now_ms)
        })
        .await
    }

    async fn unregister_pass(
        &self,
        device_id: String,
        serial: String,
    ) -> Result<bool, StorageError> {
        write(self, move |repo| repo.unregister_pass(&device_id, &serial)).await
    }

    async fn device_passes(
        &self,
        device_id: String,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        read(self, move |repo| repo.device_passes(&device_id, since_ms)).await
    }

    async fn stale_passes(
        &self,
        after: String,
        limit: u32,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        read(self, move |repo| repo.stale_passes(&after, limit)).await
    }

    async fn look_at_pass(
        &self,
        serial: String,
        now_ms: i64,
    ) -> Result<Option<Looked>, StorageError> {
        write(self, move |repo| look_at(repo, &serial, now_ms)).await
    }

    async fn pass_pushed(
        &self,
        serial: String,
        digest: String,
        stale: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| repo.pass_pushed(&serial, &digest, stale)).await
    }

    async fn forget_pass_push_token(&self, push_token: String) -> Result<u64, StorageError> {
        write(self, move |repo| repo.forget_pass_push_token(&push_token)).await
    }

    async fn member_wallet_passes(
        &self,
        member_id: String,
    ) -> Result<Vec<MemberPass>, StorageError> {
        read(self, move |repo| {
            let rows = repo.member_passes(&member_id)?;
            let mut passes = Vec::with_capacity(rows.len());
            for row in rows {
                passes.push(MemberPass {
                    devices: repo.pass_push_tokens(&row.serial)?.len(),
                    up_to_date: row.stale == 0 && row.digest == row.pushed_digest,
                    serial: row.serial,
                    coupon_id: row.coupon_id,
                    google: row.google,
                    updated_ms: row.updated_ms,
                });
            }
            Ok(passes)
        })
        .await
    }
}
