//! Calendar windows in the member's time zone: the period (day, week, month) an instant falls
//! in, computed once per offset span so that evaluating a history does not ask the time zone
//! database per event.

use super::*;
use crate::catalog::parse_instant;

/// The most periods of `p` a window can span (at least partly).
pub(super) fn periods_in(window: &Window, p: Period) -> Option<u64> {
    let days: u64 = match window {
        Window::CalendarWeek => 7,
        Window::CalendarMonth => 31,
        Window::RollingDays { days } => u64::from(*days),
        Window::Fixed { from, to } => {
            let f = parse_instant("window.from", from).ok()?.as_millisecond();
            let t = parse_instant("window.to", to).ok()?.as_millisecond();
            u64::try_from((t - f).div_euclid(DAY_MS) + 1).ok()?
        }
    };
    Some(match (window, p) {
        (_, Period::Day) => days + 1,
        (Window::CalendarWeek, Period::Week) => 1,
        (Window::CalendarMonth, Period::Week) => 6,
        (Window::CalendarMonth, Period::Month) => 1,
        (Window::CalendarWeek, Period::Month) => 2,
        (_, Period::Week) => days / 7 + 2,
        (_, Period::Month) => days / 28 + 2,
    })
}

/// Where an instant falls in the member's calendar (32-bit: events are checked to lie between
/// the years -9999 and 9999; an absurd clock is clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Local {
    /// Days since the epoch.
    pub(super) day: i32,
    /// Monday-based weeks since the epoch.
    pub(super) week: i32,
    /// Months since year 0.
    pub(super) month: i32,
}

impl Local {
    pub(super) fn of(ms: i64, tz: &jiff::tz::TimeZone) -> Local {
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        Local::at(ms, i64::from(tz.to_offset(at).seconds()) * 1000)
    }

    /// With the zone's offset at that instant (daylight saving included), then calendar
    /// arithmetic on the local time: cheaper than building a zoned date-time per event.
    #[inline]
    pub(super) fn at(ms: i64, offset_ms: i64) -> Local {
        let local_ms = ms.saturating_add(offset_ms);
        let day = local_ms.div_euclid(DAY_MS);
        let (y, m, _) = civil_from_days(day);
        let narrow = |n: i64| n.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
        Local {
            day: narrow(day),
            // 1970-01-01 was a Thursday: Monday-based weeks start three days later.
            week: narrow((day + 3).div_euclid(7)),
            month: narrow(y.saturating_mul(12).saturating_add(m - 1)),
        }
    }

    #[inline]
    pub(super) fn period(&self, p: Period) -> i64 {
        i64::from(match p {
            Period::Day => self.day,
            Period::Week => self.week,
            Period::Month => self.month,
        })
    }
}

/// The zone's offset over the span between two transitions: events in time order ask the
/// time zone database again only when they cross a daylight-saving change.
#[derive(Debug, Clone, Copy)]
pub(super) struct OffsetSpan {
    pub(super) from: i64,
    pub(super) until: i64,
    pub(super) offset_ms: i64,
}

impl OffsetSpan {
    pub(super) const EMPTY: OffsetSpan = OffsetSpan {
        from: 0,
        until: 0,
        offset_ms: 0,
    };

    pub(super) fn local(&mut self, ms: i64, tz: &jiff::tz::TimeZone) -> Local {
        if !(self.from <= ms && ms < self.until) {
            let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            *self = OffsetSpan {
                from: ms,
                until: tz
                    .following(at)
                    .next()
                    .map_or(i64::MAX, |t| t.timestamp().as_millisecond()),
                offset_ms: i64::from(tz.to_offset(at).seconds()) * 1000,
            };
        }
        Local::at(ms, self.offset_ms)
    }
}

/// The first instant of calendar period `index` of kind `p` in `tz`.
pub(super) fn period_start(p: Period, index: i64, tz: &jiff::tz::TimeZone) -> Option<i64> {
    let (y, m, d) = match p {
        Period::Month => (index.div_euclid(12), index.rem_euclid(12) + 1, 1),
        Period::Day | Period::Week => {
            let day = if p == Period::Week {
                index * 7 - 3
            } else {
                index
            };
            civil_from_days(day)
        }
    };
    let date = jiff::civil::Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    Some(
        date.to_zoned_datetime(tz.clone())
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

pub(super) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}
