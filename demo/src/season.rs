//! Traffic seasonality in New York time: a daily curve peaking in market
//! hours, quiet weekends, a burst at the 9:30 open and a smaller one
//! before the 16:00 close, and heavier month and quarter ends — the
//! patterns a baseline must learn as normal.

const DAY_MS: i64 = 86_400_000;

pub use sextant_query::calendar::{civil, days_from_civil};

/// Day of week, 0 = Sunday.
pub fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// The day of the `n`th (1-based) Sunday of a month.
fn nth_sunday(y: i64, m: u32, n: u32) -> u32 {
    let first = days_from_civil(y, m, 1);
    let to_sunday = (7 - weekday(first)) % 7;
    1 + to_sunday + 7 * (n - 1)
}

/// New York's offset from UTC at `utc_ms`, in ms: −4 h in daylight time
/// (second Sunday of March 2:00 to first Sunday of November 2:00 local),
/// −5 h otherwise (US rules since 2007).
pub fn ny_offset_ms(utc_ms: i64) -> i64 {
    const EST: i64 = -5 * 3_600_000;
    const EDT: i64 = -4 * 3_600_000;
    let (y, _, _) = civil(utc_ms.div_euclid(DAY_MS));
    // 2:00 EST = 7:00 UTC on the March change; 2:00 EDT = 6:00 UTC in November.
    let start = days_from_civil(y, 3, nth_sunday(y, 3, 2)) * DAY_MS + 7 * 3_600_000;
    let end = days_from_civil(y, 11, nth_sunday(y, 11, 1)) * DAY_MS + 6 * 3_600_000;
    if (start..end).contains(&utc_ms) {
        EDT
    } else {
        EST
    }
}

/// A moment in New York.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NyTime {
    /// Days since the epoch, local.
    pub days: i64,
    /// Minutes since local midnight (fractional).
    pub minute: f64,
}

impl NyTime {
    /// `utc_ms` in New York.
    pub fn at(utc_ms: i64) -> NyTime {
        let local = utc_ms + ny_offset_ms(utc_ms);
        NyTime {
            days: local.div_euclid(DAY_MS),
            minute: local.rem_euclid(DAY_MS) as f64 / 60_000.0,
        }
    }

    fn business_day(days: i64) -> bool {
        (1..=5).contains(&weekday(days))
    }

    /// Whether this is the last business day of its month.
    pub fn month_end(&self) -> bool {
        if !Self::business_day(self.days) {
            return false;
        }
        let (_, m, _) = civil(self.days);
        let mut d = self.days + 1;
        while !Self::business_day(d) {
            d += 1;
        }
        civil(d).1 != m
    }

    /// Whether this is the last business day of a quarter.
    pub fn quarter_end(&self) -> bool {
        self.month_end() && civil(self.days).1.is_multiple_of(3)
    }

    /// Whether the US equity market is open (9:30–16:00, weekdays).
    pub fn market_open(&self) -> bool {
        Self::business_day(self.days) && (570.0..960.0).contains(&self.minute)
    }
}

/// The traffic multiplier at `utc_ms` (1.0: a normal market-hours minute).
pub fn load(utc_ms: i64) -> f64 {
    let ny = NyTime::at(utc_ms);
    let h = ny.minute / 60.0;
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
    if NyTime::business_day(ny.days) {
        // The opening bell: 3.5× at 9:30, back to normal by 10:00.
        if (570.0..600.0).contains(&ny.minute) {
            f *= 1.0 + 2.5 * (600.0 - ny.minute) / 30.0;
        }
        // Into the close: 1.6× over the last ten minutes.
        if (950.0..960.0).contains(&ny.minute) {
            f *= 1.6;
        }
    } else {
        f *= 0.3;
    }
    if ny.quarter_end() {
        f *= 1.6;
    } else if ny.month_end() {
        f *= 1.3;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i64, m: u32, d: u32, hh: i64, mm: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + (hh * 60 + mm) * 60_000
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 20_000, 20_423, 2_932_896] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(weekday(days_from_civil(2026, 12, 1)), 2, "a Tuesday");
    }

    #[test]
    fn new_york_daylight_saving_changes() {
        // 2026: DST from 8 March 07:00 UTC to 1 November 06:00 UTC.
        assert_eq!(ny_offset_ms(utc(2026, 3, 8, 6, 59)), -5 * 3_600_000);
        assert_eq!(ny_offset_ms(utc(2026, 3, 8, 7, 0)), -4 * 3_600_000);
        assert_eq!(ny_offset_ms(utc(2026, 11, 1, 5, 59)), -4 * 3_600_000);
        assert_eq!(ny_offset_ms(utc(2026, 11, 1, 6, 0)), -5 * 3_600_000);
        // The opening bell is 13:30 UTC in summer, 14:30 UTC in winter.
        assert!(NyTime::at(utc(2026, 7, 1, 13, 30)).market_open());
        assert!(!NyTime::at(utc(2026, 12, 1, 13, 30)).market_open());
        assert!(NyTime::at(utc(2026, 12, 1, 14, 30)).market_open());
    }

    #[test]
    fn month_and_quarter_ends_are_business_days() {
        // 31 October 2026 is a Saturday: the 30th is the month end.
        assert!(NyTime::at(utc(2026, 10, 30, 15, 0)).month_end());
        assert!(!NyTime::at(utc(2026, 10, 31, 15, 0)).month_end());
        assert!(NyTime::at(utc(2026, 12, 31, 15, 0)).quarter_end());
        assert!(!NyTime::at(utc(2026, 11, 30, 15, 0)).quarter_end());
        assert!(NyTime::at(utc(2026, 11, 30, 15, 0)).month_end());
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
    }
}
