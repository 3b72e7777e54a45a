//! What a region event turns into: the notification to show or why not (consent, closed shop,
//! cooldown, already notified, preferences), and the store visit a dwell records.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::*;
use crate::catalog::Offer;
use crate::consent::Purpose;
use crate::{Error, Result};

/// What the OS reported about a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RegionEventKind {
    Enter,
    Dwell,
    Exit,
}

/// A notification to show, ready for the platform's notification API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OfferNotification {
    pub title: String,
    pub body: String,
    pub offer_id: String,
    pub store_id: Option<String>,
    /// Opens the offer in the app, offline too (`tessera://offer/<id>?store=<id>`).
    pub deep_link: String,
}

/// Why nothing is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SuppressReason {
    /// The member has not consented (location, or offers by push for that purpose).
    NoConsent,
    /// Not a region of the current plan (an old registration): re-plan.
    UnknownRegion,
    /// The event is older than the configured age, or in the future.
    Stale,
    StoreClosed,
    /// No offer the member may use there now (or only ones already clipped or used).
    NoEligibleOffer,
    /// A notification about this store was shown recently; RFC 3339 end of the cooldown.
    Cooldown {
        until: String,
    },
    QuietHours {
        until: String,
    },
    CapReached {
        per_day: bool,
    },
    NotOfInterest,
    ChannelNotPreferred,
    /// Every offer there was already notified recently (at another shop, or by push).
    AlreadyNotified,
    /// A push message already handled.
    Duplicate,
    /// A push message past its expiry.
    Expired,
}

/// What to do about an OS region event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RegionAction {
    Notify {
        notification: OfferNotification,
    },
    Suppress {
        reason: SuppressReason,
    },
    /// The member left the re-plan region: call `plan_geofences` again.
    Replan,
    /// Nothing to do (leaving a store).
    Nothing,
}

/// The decision, and whether a store visit was recorded (sent at the next sync).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RegionOutcome {
    pub action: RegionAction,
    pub visit_recorded: bool,
}

/// Tunables of the geofence features.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OfferSettings {
    /// No second notification about the same store within this.
    pub store_cooldown_ms: i64,
    /// Events older than this (or this far in the future) are not notified.
    pub max_event_age_ms: i64,
    /// A re-plan sooner than this and closer than `replan_min_move_m` returns the last plan.
    pub replan_min_interval_ms: i64,
    pub replan_min_move_m: f64,
    /// The same offer is not notified again within this, wherever the member is.
    pub offer_repeat_ms: i64,
}

impl Default for OfferSettings {
    fn default() -> Self {
        OfferSettings {
            store_cooldown_ms: 6 * 3_600_000,
            max_event_age_ms: 30 * 60_000,
            replan_min_interval_ms: 60_000,
            replan_min_move_m: 100.0,
            offer_repeat_ms: 24 * 3_600_000,
        }
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The notification for `offer` at `store`.
pub(crate) fn notification(offer: &Offer, store: Option<(&str, &str)>) -> OfferNotification {
    let body = match store {
        Some((_, name)) if offer.description.is_empty() => name.to_owned(),
        Some((_, name)) => format!("{name} · {}", offer.description),
        None => offer.description.clone(),
    };
    let deep_link = match store {
        Some((id, _)) => format!("tessera://offer/{}?store={id}", offer.id),
        None => format!("tessera://offer/{}", offer.id),
    };
    OfferNotification {
        title: truncate(&offer.title, 65),
        body: truncate(&body, 178),
        offer_id: offer.id.clone(),
        store_id: store.map(|(id, _)| id.to_owned()),
        deep_link,
    }
}

/// The offers to notify at `store` now, best first: eligible with their hours, not clipped
/// already; the member's interests first (with personalisation), then ending soonest, then id.
pub(crate) fn offers_at(idx: &OfferIndex, member: &MemberView, store: u32, at_ms: i64) -> Vec<u32> {
    let mut offers: Vec<u32> = idx
        .candidates(store)
        .filter(|&o| !member.clipped.contains(&o) && idx.eligible(o, store, member, at_ms, true))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    offers.sort_by(|&a, &b| {
        let (oa, ob) = (&idx.offers()[a as usize], &idx.offers()[b as usize]);
        idx.boosted(b, member)
            .cmp(&idx.boosted(a, member))
            .then(oa.to_ms.cmp(&ob.to_ms))
            .then(a.cmp(&b)) // offers are indexed in id order
    });
    offers
}

/// Whether a notification about `offer_id` was shown since `since_ms` (at any store, by push).
pub(crate) fn offer_notified_since(
    conn: &Connection,
    offer_id: &str,
    since_ms: i64,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM notification_log WHERE offer_id = ?1 AND sent_at >= ?2)",
    )
    .map_err(st)?
    .query_row(params![offer_id, since_ms], |r| r.get(0))
    .map_err(st)
    .map_err(Error::from)
}

pub(crate) fn store_index(idx: &OfferIndex, store_id: &str) -> Option<u32> {
    idx.store(store_id)
}

pub(crate) fn store_names(idx: &OfferIndex, store: u32) -> (String, String) {
    (
        idx.store_id(store).to_owned(),
        idx.store_name(store).to_owned(),
    )
}

pub(crate) fn store_open(idx: &OfferIndex, store: u32, at_ms: i64) -> bool {
    idx.open_at(store, at_ms)
}

pub(crate) fn offer_id(idx: &OfferIndex, offer: u32) -> &str {
    idx.offer_id(offer)
}

/// When a notification about `store` was last shown, if within `since_ms`.
pub(crate) fn last_store_notification(
    conn: &Connection,
    store_id: &str,
    since_ms: i64,
) -> Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT max(sent_at) FROM notification_log WHERE store_id = ?1 AND sent_at >= ?2",
    )
    .map_err(st)?
    .query_row(params![store_id, since_ms], |r| r.get(0))
    .map_err(st)
    .map_err(Error::from)
}

/// The gate's purpose for a geofence notification.
pub(crate) const GEOFENCE_PURPOSE: Purpose = Purpose::GeolocatedOffers;

/// A region event the OS reported for a known store.
#[derive(Debug)]
pub(crate) struct RegionEvent<'a> {
    pub(crate) store: u32,
    pub(crate) store_id: &'a str,
    pub(crate) kind: RegionEventKind,
    pub(crate) at: jiff::Timestamp,
    pub(crate) at_ms: i64,
    pub(crate) now_ms: i64,
}

/// The policy for entering or dwelling at a store's region, in the transaction that records
/// what it decided: a dwell records a visit; then staleness, consent, opening hours, the store's
/// cooldown, an eligible offer not notified lately, and the member's notification preferences,
/// in that order.
pub(crate) fn region_event(
    tx: &rusqlite::Transaction<'_>,
    idx: &OfferIndex,
    gate: crate::consent::ConsentGate,
    settings: &OfferSettings,
    e: &RegionEvent<'_>,
) -> Result<RegionOutcome> {
    let (store, store_id, at_ms, now) = (e.store, e.store_id, e.at_ms, e.now_ms);
    let mut visit_recorded = false;
    if e.kind == RegionEventKind::Dwell {
        let attributes = [("source".to_owned(), "geofence".to_owned())].into();
        crate::activity::record_event_at(
            tx,
            crate::api::EventKind::StoreVisit,
            Some(store_id.to_owned()),
            attributes,
            at_ms.min(now),
        )?;
        visit_recorded = true;
    }
    let suppress = |reason| {
        Ok(RegionOutcome {
            action: RegionAction::Suppress { reason },
            visit_recorded,
        })
    };
    if (now - at_ms).abs() > settings.max_event_age_ms {
        return suppress(SuppressReason::Stale);
    }
    if !gate.permits(Feature::GeolocatedNotifications) {
        return suppress(SuppressReason::NoConsent);
    }
    if !store_open(idx, store, at_ms) {
        return suppress(SuppressReason::StoreClosed);
    }
    if let Some(last) = last_store_notification(tx, store_id, at_ms - settings.store_cooldown_ms)? {
        let until = crate::rfc3339_ms(last + settings.store_cooldown_ms);
        return suppress(SuppressReason::Cooldown { until });
    }
    let member = MemberView::read(tx, idx, gate)?;
    let candidates = offers_at(idx, &member, store, at_ms);
    if candidates.is_empty() {
        return suppress(SuppressReason::NoEligibleOffer);
    }
    let mut fresh = None;
    for o in candidates {
        if !offer_notified_since(tx, offer_id(idx, o), at_ms - settings.offer_repeat_ms)? {
            fresh = Some(o);
            break;
        }
    }
    let Some(offer) = fresh else {
        return suppress(SuppressReason::AlreadyNotified);
    };
    // Gone since the index in use was built (a newer one is on its way): nothing to offer.
    let Some(offer) = read_offer(tx, offer_id(idx, offer))? else {
        return suppress(SuppressReason::NoEligibleOffer);
    };
    let request = crate::preferences::NotificationRequest {
        purpose: GEOFENCE_PURPOSE,
        channel: crate::consent::Channel::Push,
        categories: offer.categories.clone(),
    };
    let verdict =
        crate::privacy::claim_at(tx, gate, &request, e.at, Some(store_id), Some(&offer.id))?;
    let (sid, name) = store_names(idx, store);
    Ok(RegionOutcome {
        action: match verdict_reason(verdict) {
            None => RegionAction::Notify {
                notification: notification(&offer, Some((&sid, &name))),
            },
            Some(reason) => RegionAction::Suppress { reason },
        },
        visit_recorded,
    })
}

/// Why a notification verdict is not `Send`, as a suppression reason.
pub(crate) fn verdict_reason(v: crate::preferences::NotificationVerdict) -> Option<SuppressReason> {
    use crate::preferences::NotificationVerdict as V;
    match v {
        V::Send => None,
        V::NoConsent { .. } | V::Unsupported => Some(SuppressReason::NoConsent),
        V::ChannelNotPreferred => Some(SuppressReason::ChannelNotPreferred),
        V::NotOfInterest => Some(SuppressReason::NotOfInterest),
        V::QuietHours { until } => Some(SuppressReason::QuietHours { until }),
        V::CapReached { per_day } => Some(SuppressReason::CapReached { per_day }),
    }
}
