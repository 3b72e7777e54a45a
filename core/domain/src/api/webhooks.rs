//! Webhooks (issue #19): the programme's events delivered to the operator's systems (a CRM, a
//! data warehouse, a marketing tool), signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), at least
//! once, in order per member. The types here are the admin API's and the delivered bodies'.

use serde::{Deserialize, Serialize};

use super::PointsKind;
use crate::consent::{Channel, ConsentSource, Decision, Purpose};

/// An event a webhook endpoint may subscribe to, by its name on the wire (`points.changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    #[serde(rename = "member.enrolled")]
    MemberEnrolled,
    #[serde(rename = "member.tier_changed")]
    MemberTierChanged,
    #[serde(rename = "member.erased")]
    MemberErased,
    #[serde(rename = "points.changed")]
    PointsChanged,
    #[serde(rename = "coupon.issued")]
    CouponIssued,
    #[serde(rename = "coupon.redeemed")]
    CouponRedeemed,
    #[serde(rename = "coupon.redemption_voided")]
    CouponRedemptionVoided,
    #[serde(rename = "coupon.redemption_conflict")]
    CouponRedemptionConflict,
    #[serde(rename = "challenge.joined")]
    ChallengeJoined,
    #[serde(rename = "challenge.completed")]
    ChallengeCompleted,
    #[serde(rename = "consent.recorded")]
    ConsentRecorded,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::MemberEnrolled,
        EventType::MemberTierChanged,
        EventType::MemberErased,
        EventType::PointsChanged,
        EventType::CouponIssued,
        EventType::CouponRedeemed,
        EventType::CouponRedemptionVoided,
        EventType::CouponRedemptionConflict,
        EventType::ChallengeJoined,
        EventType::ChallengeCompleted,
        EventType::ConsentRecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MemberEnrolled => "member.enrolled",
            EventType::MemberTierChanged => "member.tier_changed",
            EventType::MemberErased => "member.erased",
            EventType::PointsChanged => "points.changed",
            EventType::CouponIssued => "coupon.issued",
            EventType::CouponRedeemed => "coupon.redeemed",
            EventType::CouponRedemptionVoided => "coupon.redemption_voided",
            EventType::CouponRedemptionConflict => "coupon.redemption_conflict",
            EventType::ChallengeJoined => "challenge.joined",
            EventType::ChallengeCompleted => "challenge.completed",
            EventType::ConsentRecorded => "consent.recorded",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What happened, by event type: the `type` and `data` of a delivered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    /// A member enrolled (the card number the till scans).
    #[serde(rename = "member.enrolled")]
    MemberEnrolled { card_number: String },
    /// The member's tier changed (a review after points moved, or points lapsing).
    #[serde(rename = "member.tier_changed")]
    MemberTierChanged { from: String, to: String },
    /// The member was erased: the receiver erases what it holds about them.
    #[serde(rename = "member.erased")]
    MemberErased {},
    /// An entry of the member's points ledger; `points` negative for spent, lapsed or taken
    /// back.
    #[serde(rename = "points.changed")]
    PointsChanged {
        kind: PointsKind,
        points: i64,
        reason: String,
    },
    #[serde(rename = "coupon.issued")]
    CouponIssued {
        coupon_id: String,
        offer_id: String,
        /// `clip`, `purchase`, `reward` or `challenge`.
        origin: String,
    },
    #[serde(rename = "coupon.redeemed")]
    CouponRedeemed {
        coupon_id: String,
        offer_id: String,
        store_id: String,
    },
    /// A till voided the sale a coupon was redeemed in: usable again.
    #[serde(rename = "coupon.redemption_voided")]
    CouponRedemptionVoided { coupon_id: String, store_id: String },
    /// An offline till redeemed a coupon already redeemed elsewhere.
    #[serde(rename = "coupon.redemption_conflict")]
    CouponRedemptionConflict { coupon_id: String, store_id: String },
    #[serde(rename = "challenge.joined")]
    ChallengeJoined { challenge_id: String },
    /// A completion of a challenge, paid (`completion` 1 for the first).
    #[serde(rename = "challenge.completed")]
    ChallengeCompleted {
        challenge_id: String,
        completion: u32,
        points: u64,
        badge: Option<String>,
    },
    #[serde(rename = "consent.recorded")]
    ConsentRecorded {
        record_id: String,
        purpose: Purpose,
        channel: Channel,
        decision: Decision,
        source: ConsentSource,
    },
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            EventData::MemberEnrolled { .. } => EventType::MemberEnrolled,
            EventData::MemberTierChanged { .. } => EventType::MemberTierChanged,
            EventData::MemberErased {} => EventType::MemberErased,
            EventData::PointsChanged { .. } => EventType::PointsChanged,
            EventData::CouponIssued { .. } => EventType::CouponIssued,
            EventData::CouponRedeemed { .. } => EventType::CouponRedeemed,
            EventData::CouponRedemptionVoided { .. } => EventType::CouponRedemptionVoided,
            EventData::CouponRedemptionConflict { .. } => EventType::CouponRedemptionConflict,
            EventData::ChallengeJoined { .. } => EventType::ChallengeJoined,
            EventData::ChallengeCompleted { .. } => EventType::ChallengeCompleted,
            EventData::ConsentRecorded { .. } => EventType::ConsentRecorded,
        }
    }
}

/// The body of a delivery: the event's id (also the `webhook-id` header: the same at every
/// attempt, the receiver's idempotency key), its time, its place in the programme's sequence
/// (increasing; per member, deliveries follow it), the member, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    /// RFC 3339, when it happened at the server.
    pub timestamp: String,
    pub sequence: u64,
    pub member_id: String,
    #[serde(flatten)]
    pub data: EventData,
}

/// The document's `WebhookEvent`: one object (client generators refuse an `allOf` of the
/// `EventData` union and the event's own fields, which is what the flattened enum would derive),
/// with `type` an `EventType` and `data` an object whose fields `EventData` gives per type.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for WebhookEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Ref, RefOr};
        let text = |d: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(d))
        };
        RefOr::T(
            ObjectBuilder::new()
                .description(Some(
                    "The body of a delivery: the event's id (also the `webhook-id` header: the \
                     same at every attempt, the receiver's idempotency key), its time, its place \
                     in the programme's sequence (per member, deliveries follow it), the member, \
                     its type and its data (the fields of the `EventData` variant of that type).",
                ))
                .property("id", text("evt_…"))
                .property(
                    "timestamp",
                    text("RFC 3339, when it happened at the server"),
                )
                .property(
                    "sequence",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                            utoipa::openapi::schema::KnownFormat::Int64,
                        )))
                        .minimum(Some(0)),
                )
                .property("member_id", text("The member"))
                .property("type", Ref::from_schema_name("EventType"))
                .property(
                    "data",
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .description(Some("The data of the `EventData` variant of this type")),
                )
                .required("id")
                .required("timestamp")
                .required("sequence")
                .required("member_id")
                .required("type")
                .required("data")
                .build()
                .into(),
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for WebhookEvent {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("EventType".into(), EventType::schema()));
        schemas.push(("EventData".into(), EventData::schema()));
        <EventType as utoipa::ToSchema>::schemas(schemas);
        <EventData as utoipa::ToSchema>::schemas(schemas);
    }
}

/// An operator's endpoint as written (`POST /admin/v1/webhooks`, `PUT …/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointSpec {
    /// `https://…` (or `http://` to a loopback address, for a receiver on the same host).
    pub url: String,
    /// The events it receives; empty: all of them.
    #[serde(default)]
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: Option<String>,
    /// Paused: its events are kept and delivered once it is resumed.
    #[serde(default)]
    pub paused: bool,
}

/// An endpoint as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub paused: bool,
    /// The signing secret (`whsec_` and base64), shown when the endpoint is created only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Deliveries waiting (due, retrying or in flight).
    pub pending: u64,
    /// Deliveries that failed every attempt (the dead-letter list).
    pub dead: u64,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its turn, a retry, or in flight.
    Pending,
    Delivered,
    /// Every attempt failed: in the dead-letter list until replayed.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    pub event: WebhookEvent,
    pub state: DeliveryState,
    pub attempts: u32,
    /// RFC 3339: the next attempt (pending).
    pub next_attempt_at: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

/// A page of deliveries, oldest event first; `next` is the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDeliveries {
    pub deliveries: Vec<WebhookDelivery>,
    pub next: Option<u64>,
}

/// Deliveries to send again (`POST /admin/v1/webhooks/{id}/replay`): these events, or every
/// dead one of the endpoint if `event_ids` is absent. Each is due at once, with its attempts
/// counted afresh; its id and sequence are the event's, so a receiver that had it drops it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub event_ids: Option<Vec<String>>,
}

/// How many deliveries were queued again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayAnswer {
    pub replayed: u64,
}

/// The longest endpoint URL.
pub const MAX_WEBHOOK_URL: usize = 2048;
/// The longest description.
pub const MAX_WEBHOOK_DESCRIPTION: usize = 256;

/// Why an endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSpecError {
    #[error("the URL is longer than {MAX_WEBHOOK_URL} characters")]
    UrlTooLong,
    #[error("the URL is not an absolute http(s) URL")]
    NotHttp,
    #[error("plain http is for loopback receivers only: use https")]
    PlainHttp,
    #[error("the URL carries credentials: send them as the signing secret's proof instead")]
    Credentials,
    #[error("the description is longer than {MAX_WEBHOOK_DESCRIPTION} characters")]
    DescriptionTooLong,
    #[error("an event type is listed twice")]
    RepeatedEvent,
}

impl WebhookEndpointSpec {
    /// Check the endpoint (the URL's scheme and host as the server sees them; the parse of the
    /// URL is the caller's, which has a URL parser).
    pub fn validate(&self, url: &ParsedUrl<'_>) -> Result<(), WebhookSpecError> {
        if self.url.len() > MAX_WEBHOOK_URL {
            return Err(WebhookSpecError::UrlTooLong);
        }
        match url.scheme {
            "https" => {}
            "http" if url.loopback => {}
            "http" => return Err(WebhookSpecError::PlainHttp),
            _ => return Err(WebhookSpecError::NotHttp),
        }
        if url.has_credentials {
            return Err(WebhookSpecError::Credentials);
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_WEBHOOK_DESCRIPTION)
        {
            return Err(WebhookSpecError::DescriptionTooLong);
        }
        let mut seen = self.events.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.events.len() {
            return Err(WebhookSpecError::RepeatedEvent);
        }
        Ok(())
    }

    /// Whether the endpoint receives `t`.
    pub fn wants(&self, t: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&t)
    }
}

/// What [`WebhookEndpointSpec::validate`] needs of a parsed URL.
#[derive(Debug, Clone, Copy)]
pub struct ParsedUrl<'a> {
    pub scheme: &'a str,
    /// The host is `localhost` or a loopback address.
    pub loopback: bool,
    pub has_credentials: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_by_name() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("points.earned"), None);
    }

    #[test]
    fn a_delivered_event_is_flat() {
        let e = WebhookEvent {
            id: "evt_1".into(),
            timestamp: "2026-12-01T10:00:00.000Z".into(),
            sequence: 7,
            member_id: "m-1".into(),
            data: EventData::PointsChanged {
                kind: PointsKind::Earn,
                points: 12,
                reason: "purchase".into(),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "points.changed");
        assert_eq!(v["data"]["points"], 12);
        assert_eq!(v["sequence"], 7);
        assert_eq!(serde_json::from_value::<WebhookEvent>(v).unwrap(), e);
        assert_eq!(e.data.event_type(), EventType::PointsChanged);
    }

    #[test]
    fn endpoints_are_checked() {
        let spec = |url: &str| WebhookEndpointSpec {
            url: url.into(),
            events: vec![],
            description: None,
            paused: false,
        };
        let https = ParsedUrl {
            scheme: "https",
            loopback: false,
            has_credentials: false,
        };
        assert_eq!(spec("https://crm.example/hook").validate(&https), Ok(()));
        let http = ParsedUrl {
            scheme: "http",
            ..https
        };
        assert_eq!(
            spec("http://crm.example/hook").validate(&http),
            Err(WebhookSpecError::PlainHttp)
        );
        let local = ParsedUrl {
            loopback: true,
            ..http
        };
        assert_eq!(spec("http://127.0.0.1:9/hook").validate(&local), Ok(()));
        let ftp = ParsedUrl {
            scheme: "ftp",
            ..https
        };
        assert_eq!(
            spec("ftp://x").validate(&ftp),
            Err(WebhookSpecError::NotHttp)
        );
        let creds = ParsedUrl {
            has_credentials: true,
            ..https
        };
        assert_eq!(
            spec("https://u:p@x").validate(&creds),
            Err(WebhookSpecError::Credentials)
        );
        let long = format!("https://x/{}", "a".repeat(MAX_WEBHOOK_URL));
        assert_eq!(
            spec(&long).validate(&https),
            Err(WebhookSpecError::UrlTooLong)
        );
        let mut twice = spec("https://x/");
        twice.events = vec![EventType::PointsChanged, EventType::PointsChanged];
        assert_eq!(twice.validate(&https), Err(WebhookSpecError::RepeatedEvent));
        let mut described = spec("https://x/");
        described.description = Some("é".repeat(MAX_WEBHOOK_DESCRIPTION + 1));
        assert_eq!(
            described.validate(&https),
            Err(WebhookSpecError::DescriptionTooLong)
        );
        assert!(spec("https://x/").wants(EventType::MemberErased));
        twice.events = vec![EventType::PointsChanged];
        assert!(twice.wants(EventType::PointsChanged));
        assert!(!twice.wants(EventType::MemberErased));
    }
}
