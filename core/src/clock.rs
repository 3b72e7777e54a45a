//! The device's clock: the one place the phone client reads it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the epoch (the device's clock).
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub(crate) fn to_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH
    }
}

/// An instant given as milliseconds since the epoch, refused when it is outside what a calendar
/// holds (so that later arithmetic on it cannot overflow).
pub(crate) fn checked_instant(field: &'static str, ms: i64) -> crate::Result<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms).map_err(|_| crate::Error::InvalidInput {
        field,
        reason: "is not a time between the years -9999 and 9999".into(),
    })
}
