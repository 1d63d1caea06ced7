//! Traffic seasonality in New York time: a daily curve peaking in market
//! hours, quiet weekends, a burst at the 9:30 open and a smaller one
//! before the 16:00 close, and heavier month and quarter ends — the
//! patterns a baseline must learn as normal.

use std::sync::OnceLock;

use sextant_calendar::{Calendar, Session};

pub use sextant_query::calendar::{civil, days_from_civil};

/// The NYSE calendar the simulated market keeps.
pub fn nyse() -> &'static Calendar {
    static CAL: OnceLock<Calendar> = OnceLock::new();
    CAL.get_or_init(Calendar::nyse)
}

/// The traffic multiplier at `utc_ms` (1.0: a normal market-hours minute).
/// Holidays are as quiet as weekends; an early close ends the day's
/// plateau at its close.
pub fn load(utc_ms: i64) -> f64 {
    let m = nyse().moment(utc_ms);
    let minute = f64::from(m.local.hour()) * 60.0
        + f64::from(m.local.minute())
        + f64::from(m.local.second()) / 60.0;
    let h = minute / 60.0;
    // Night trough, morning ramp, market plateau, evening tail.
    let daily = if h < 6.0 {
        0.08
    } else if h < 9.5 {
        0.08 + 0.6 * (h - 6.0) / 3.5
    } else if h < 16.0 {
        1.0
    } else if h < 22.0 {
        1.0 - 0.85 * (h - 16.0) / 6.0
    } else {
        0.08 + 0.07 * (24.0 - h) / 2.0
    };
    let mut f = daily;
    let close = if m.day.session == Session::EarlyClose {
        780.0
    } else {
        960.0
    };
    if !m.day.business() {
        f *= 0.3;
    } else {
        // The opening bell: 3.5× at 9:30, back to normal by 10:00.
        if (570.0..600.0).contains(&minute) {
            f *= 1.0 + 2.5 * (600.0 - minute) / 30.0;
        }
        // Into the close: 1.6× over the last ten minutes.
        if (close - 10.0..close).contains(&minute) {
            f *= 1.6;
        }
        // After an early close, the evening's quiet comes at once.
        if close < 960.0 && (close..960.0).contains(&minute) {
            f *= 0.25;
        }
    }
    if m.day.quarter_end {
        f *= 1.6;
    } else if m.day.month_end {
        f *= 1.3;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i64, m: u32, d: u32, hh: i64, mm: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400_000 + (hh * 60 + mm) * 60_000
    }

    #[test]
    fn the_open_is_the_busiest_minute_of_a_normal_day() {
        let day = |hh, mm| load(utc(2026, 12, 2, hh, mm));
        let open = day(14, 31);
        assert!(open > 3.0, "{open}");
        assert!(day(17, 0) == 1.0);
        assert!(day(8, 0) < 0.1, "3 am in New York");
        assert!(load(utc(2026, 12, 5, 17, 0)) < 0.5, "a Saturday");
        assert!(load(utc(2026, 12, 31, 17, 0)) > 1.5, "quarter end");
        assert!(load(utc(2026, 11, 26, 17, 0)) < 0.5, "Thanksgiving");
        assert!(
            load(utc(2026, 11, 27, 19, 0)) < 0.5,
            "after the early close"
        );
    }
}
