//! Error answers: `application/problem+json` (RFC 9457) with a stable `code`, and the extractors
//! that turn every malformed request into one (never a 5xx, never axum's plain-text rejections).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tessera_domain::api::{PROBLEM_JSON, Problem, codes};

use crate::storage::StorageError;

/// A problem document and the headers that go with it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Boxed: errors travel in every handler's `Result`, and a small `Err` keeps those cheap.
    pub problem: Box<Problem>,
    pub retry_after: Option<u64>,
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &str,
        title: &str,
        detail: impl Into<Option<String>>,
    ) -> Self {
        ApiError {
            problem: Box::new(Problem::new(status.as_u16(), code, title, detail.into())),
            retry_after: None,
            www_authenticate: false,
        }
    }

    pub fn validation(e: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::VALIDATION_FAILED,
            "The request breaks a rule",
            Some(e.to_string()),
        )
    }

    pub fn unauthorized(code: &str, detail: &str) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            code,
            "Not authenticated",
            Some(detail.to_owned()),
        );
        e.www_authenticate = true;
        e
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            "Not found",
            Some(detail.into()),
        )
    }

    /// A problem the storage decided (a business refusal) as the answer.
    pub fn from_problem(problem: Problem) -> Self {
        ApiError {
            problem: Box::new(problem),
            retry_after: None,
            www_authenticate: false,
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "Internal error",
            None,
        )
    }
}

/// Writes a problem document with its status and content type.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_string(problem).unwrap_or_else(|_| "{}".to_owned());
    (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = problem_response(&self.problem);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        }
        resp
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ApiError::not_found("no such resource"),
            StorageError::Conflict(detail) => ApiError::new(
                StatusCode::CONFLICT,
                codes::VALIDATION_FAILED,
                "Conflict",
                Some(detail),
            ),
            StorageError::Duplicate(detail) => {
                tracing::warn!(%detail, "duplicate write");
                ApiError::new(
                    StatusCode::CONFLICT,
                    codes::VALIDATION_FAILED,
                    "Conflict",
                    None,
                )
            }
            StorageError::Backend(reason) => {
                tracing::error!(%reason, "storage failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::UNAVAILABLE,
                    "Storage unavailable",
                    None,
                )
                .with_retry_after(1)
            }
        }
    }
}

impl ApiError {
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

/// `Json<T>` whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        // Bounded by the route's body limit (413 beyond it).
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        let syntax = |detail: String| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_BODY,
                "The body is not valid JSON for this call",
                Some(detail),
            )
        };
        // A member given twice is refused, not resolved by the last one winning: two readers of
        // the same body (a proxy, a log, this server) must not see different requests.
        unique_members(&bytes).map_err(syntax)?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| syntax(e.to_string()))?;
        let invalid = |detail: String| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::INVALID_BODY,
                "The body is not valid JSON for this call",
                Some(detail),
            )
        };
        if !tags_are_strings(&value) {
            return Err(invalid("`type` and `field` tags must be strings".into()));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| invalid(e.to_string()))
    }
}

/// 415 unless the body is declared JSON.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        codes::UNSUPPORTED_MEDIA_TYPE,
        "Send application/json",
        Some("Expected request with `Content-Type: application/json`".to_owned()),
    ))
}

/// `application/json` or any `+json` type.
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Checks that no JSON object in `bytes` names a member twice (at any depth); the reason names
/// the member.
pub fn unique_members(bytes: &[u8]) -> Result<(), String> {
    use serde::de::{Deserializer as _, MapAccess, SeqAccess, Visitor};
    struct Walk;
    impl<'de> serde::de::DeserializeSeed<'de> for Walk {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Walk)
        }
    }
    impl<'de> Visitor<'de> for Walk {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Walk)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !seen.insert(key.clone()) {
                    return Err(serde::de::Error::custom(format!(
                        "the member `{key}` is given twice"
                    )));
                }
                map.next_value_seed(Walk)?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_any(Walk).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

/// serde reads an enum tag from a number as the variant's index (`{"type": 0}` would be the
/// first variant); the wire format names variants, so a tag that is not a string is refused.
pub fn tags_are_strings(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(map) => map.iter().all(|(k, v)| {
            (!matches!(k.as_str(), "type" | "field") || v.is_string()) && tags_are_strings(v)
        }),
        serde_json::Value::Array(items) => items.iter().all(tags_are_strings),
        _ => true,
    }
}

/// `Query<T>` whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_QUERY,
        "The query string is not valid for this call",
        Some(r.body_text()),
    )
}

/// `Path<T>` whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_QUERY,
                "The path is not valid for this call",
                Some(r.body_text()),
            )),
        }
    }
}

/// The raw body (under the route's size limit) whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(ApiBytes(b)),
            Err(r) => {
                let status = r.status();
                let (status, code, title) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    (status, codes::PAYLOAD_TOO_LARGE, "The body is too large")
                } else {
                    (
                        StatusCode::BAD_REQUEST,
                        codes::INVALID_BODY,
                        "The body could not be read",
                    )
                };
                Err(ApiError::new(status, code, title, Some(r.body_text())))
            }
        }
    }
}

/// The HTTP answer for a stored idempotent answer: its status, JSON or problem+json, and
/// `Idempotent-Replayed: true` when it is a replay.
pub fn stored_answer(
    stored: crate::storage::StoredAnswer,
    replayed: bool,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(stored.status).map_err(|_| ApiError::internal())?;
    let content_type = if status.is_success() {
        "application/json"
    } else {
        tessera_domain::api::PROBLEM_JSON
    };
    let mut resp = (
        status,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        stored.body,
    )
        .into_response();
    if replayed {
        resp.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// 422: the same idempotency key came with another body.
pub fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        codes::IDEMPOTENCY_KEY_REUSED,
        "This Idempotency-Key was used with another body",
        None,
    )
}

/// The request's `Idempotency-Key`: 400 `idempotency_key_missing` without one,
/// `idempotency_key_invalid` when it is not 8–128 of `A-Z a-z 0-9 - _ .`.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(tessera_domain::api::IDEMPOTENCY_KEY_HEADER)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::IDEMPOTENCY_KEY_MISSING,
                "Idempotency-Key is required",
                None,
            )
        })?;
    value
        .to_str()
        .ok()
        .filter(|k| tessera_domain::api::check_idempotency_key(k))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::IDEMPOTENCY_KEY_INVALID,
                "Idempotency-Key must be 8 to 128 of A-Z a-z 0-9 - _ .",
                None,
            )
        })
}

/// SHA-256 of a request body, hex: what an idempotency key is bound to.
pub fn body_hash(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The problem document for a refusal of the programme's rules: the one place they become HTTP
/// (routes, and the answers stored under idempotency keys).
impl From<crate::storage::Refusal> for Problem {
    fn from(r: crate::storage::Refusal) -> Self {
        use crate::storage::Refusal as R;
        use tessera_domain::rfc3339_ms;
        let p = |status: u16, code: &str, title: &str, detail: String| {
            Problem::new(status, code, title, Some(detail))
        };
        match r {
            R::ConsentRecordReused { .. } => p(
                422,
                codes::RECORD_ID_REUSED,
                "This record id holds another record",
                "consent records are never changed: make a new record".into(),
            ),
            R::Points(e) => p(
                422,
                codes::INSUFFICIENT_POINTS,
                "The balance cannot go below zero",
                e.to_string(),
            ),
            R::EventInFuture { event_id } => p(
                422,
                codes::EVENT_IN_FUTURE,
                "Event in the future",
                format!("event {event_id} is later than the server's clock"),
            ),
            R::UnknownStore { store_id } => p(
                422,
                codes::UNKNOWN_STORE,
                "Unknown store",
                format!("there is no store {store_id}"),
            ),
            R::UnknownOffer => p(
                422,
                codes::UNKNOWN_OFFER,
                "This offer cannot be clipped",
                "there is no such offer".into(),
            ),
            R::NotAReward => p(
                422,
                codes::UNKNOWN_OFFER,
                "This reward cannot be bought",
                "no such reward".into(),
            ),
            R::Offer(refusal) => Problem::offer_refused(&refusal),
            R::RewardUnaffordable(e) => p(
                422,
                codes::INSUFFICIENT_POINTS,
                "Not enough points",
                e.to_string(),
            ),
            R::ConsentRequired => Problem::new(
                422,
                codes::CONSENT_REQUIRED,
                "The member has not consented to analytics",
                None,
            ),
            R::UnknownChallenge { challenge_id } => p(
                422,
                codes::UNKNOWN_CHALLENGE,
                "Unknown challenge",
                format!("the programme has no challenge {challenge_id}"),
            ),
            R::ReceiptReused { purchase_id } => p(
                409,
                codes::RECEIPT_REUSED,
                "Another purchase has this receipt in this shop",
                purchase_id,
            ),
            R::UnknownCard => p(
                422,
                codes::UNKNOWN_CARD,
                "No member has this card",
                "unknown card number".into(),
            ),
            R::MemberCode(e) => Problem {
                rule: Some(e.reason().to_owned()),
                ..Problem::new(
                    422,
                    codes::MEMBER_CODE_REFUSED,
                    "The scanned member code is refused",
                    Some(e.to_string()),
                )
            },
            R::NothingToVoid { receipt } => p(
                404,
                codes::NOTHING_TO_VOID,
                "Nothing to void under this receipt in this shop",
                receipt,
            ),
            R::VoidWindowClosed {
                recorded_ms,
                window_minutes,
            } => p(
                422,
                codes::VOID_WINDOW_CLOSED,
                "Too late to void",
                format!(
                    "recorded at {}; voids are accepted for {window_minutes} minutes",
                    rfc3339_ms(recorded_ms)
                ),
            ),
            R::NoPurchase { store_id, receipt } => p(
                404,
                codes::RETURN_REFUSED,
                "No purchase under this receipt",
                format!(
                    "no purchase under receipt {receipt} at {store_id} (never recorded there, or voided)"
                ),
            ),
            R::OverRefund { refundable_cents } => p(
                422,
                codes::RETURN_REFUSED,
                "More refunded than the purchase is still worth",
                format!("{refundable_cents} cents can still be refunded"),
            ),
            R::RedemptionConflict { store_id, at_ms } => p(
                409,
                codes::REDEMPTION_CONFLICT,
                "Redeemed offline after another redemption: recorded as a conflict",
                format!("{store_id} {}", rfc3339_ms(at_ms)),
            ),
            R::AlreadyRedeemed { store_id, at_ms } => p(
                409,
                codes::ALREADY_REDEEMED,
                "This coupon was redeemed already",
                format!("{store_id} {}", rfc3339_ms(at_ms)),
            ),
            R::CouponRevoked => p(
                422,
                codes::COUPON_REFUSED,
                "This coupon was revoked",
                "revoked".into(),
            ),
            R::UnknownCoupon => p(
                422,
                codes::COUPON_REFUSED,
                "This coupon is not known to the server",
                "unknown coupon".into(),
            ),
        }
    }
}

/// The answer stored under an idempotency key for what a business operation decided: 200 and
/// its JSON, or the refusal's problem document.
pub fn answer_of<T: serde::Serialize>(
    outcome: Result<T, crate::storage::Refusal>,
) -> Result<crate::storage::StoredAnswer, StorageError> {
    let (status, body) = match outcome {
        Ok(body) => (200, serde_json::to_string(&body)),
        Err(refusal) => {
            let problem = Problem::from(refusal);
            (problem.status, serde_json::to_string(&problem))
        }
    };
    Ok(crate::storage::StoredAnswer {
        status,
        body: body.map_err(|e| StorageError::Backend(e.to_string()))?,
    })
}
