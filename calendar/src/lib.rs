//! The estate's calendar: which days are trading days, which close early,
//! which end a month or a quarter, in the market's own time zone. The
//! baseline of a moment is read at comparable moments of earlier days
//! (same kind of day, same minute relative to the open), so the 9:30 burst,
//! month-end reporting and quarter-end batch jobs are normal, and a
//! daylight-saving change moves the comparison with the market, not with
//! UTC.

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde::Deserialize;

/// A calendar file or setting that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// How a day trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// A weekend day or an exchange holiday.
    Closed,
    /// The regular session, open to close.
    Regular,
    /// A shortened session ending at the early close.
    EarlyClose,
}

/// The kind of a day, as baselines compare them: a moment is compared with
/// the same moment of earlier days of the same kind. The most specific kind
/// wins: a quarter-end is also a month-end, but it is compared with earlier
/// quarter-ends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A weekend day or a holiday.
    Closed,
    /// A regular trading day with nothing special about it.
    Trading,
    /// A trading day that closes early.
    EarlyClose,
    /// The first business day of a month.
    FirstBusinessDay,
    /// The last business day of a month.
    MonthEnd,
    /// The last business day of a quarter.
    QuarterEnd,
}

/// A local date and what the calendar says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// The local date.
    pub date: Date,
    /// How it trades.
    pub session: Session,
    /// Whether it is a weekday the exchange is closed.
    pub holiday: bool,
    /// The last business day of its month.
    pub month_end: bool,
    /// The last business day of a quarter.
    pub quarter_end: bool,
    /// The first business day of its month.
    pub first_business_day: bool,
}

impl Day {
    /// The most specific kind of the day.
    pub fn kind(&self) -> DayKind {
        if self.session == Session::Closed {
            DayKind::Closed
        } else if self.quarter_end {
            DayKind::QuarterEnd
        } else if self.month_end {
            DayKind::MonthEnd
        } else if self.first_business_day {
            DayKind::FirstBusinessDay
        } else if self.session == Session::EarlyClose {
            DayKind::EarlyClose
        } else {
            DayKind::Trading
        }
    }

    /// Whether the exchange trades that day.
    pub fn business(&self) -> bool {
        self.session != Session::Closed
    }
}

/// A UTC instant in the market's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moment {
    /// The day it falls on, locally.
    pub day: Day,
    /// Local wall-clock time.
    pub local: DateTime,
    /// Minutes since the open (negative before it); `None` on closed days.
    pub from_open_min: Option<i64>,
    /// Whether the market is in session.
    pub in_session: bool,
    /// What the moment is compared by on other days.
    pub anchor: Anchor,
}

/// What fixes a moment's place in its day, for comparison with other days:
/// before and during the session the open (the 9:30 burst is at the open
/// whatever the date), after it the close (an early close's quiet
/// afternoon compares with the evenings of ordinary days), on closed days
/// the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Minutes since the open (negative before it).
    Open(i64),
    /// Minutes since the close.
    Close(i64),
    /// Local time of day (closed days).
    Clock,
}

/// Which built-in holiday rules a calendar starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rules {
    /// The New York Stock Exchange's holidays and early closes.
    Nyse,
    /// Weekends only; list holidays in the file.
    None,
}

/// A calendar file (TOML), for an exchange other than the NYSE or to add
/// closures the rules do not know (a national day of mourning). Every key
/// is optional; the defaults are the NYSE's.
///
/// ```toml
/// time_zone = "Europe/London"
/// open = "08:00"
/// close = "16:30"
/// early_close = "12:30"
/// rules = "none"
/// holidays = ["2026-12-25", "2026-12-28"]
/// early_closes = ["2026-12-24"]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// IANA time zone name.
    pub time_zone: Option<String>,
    /// Local opening time, `HH:MM`.
    pub open: Option<String>,
    /// Local closing time, `HH:MM`.
    pub close: Option<String>,
    /// Local closing time on early-close days, `HH:MM`.
    pub early_close: Option<String>,
    /// Built-in rules to start from.
    pub rules: Option<Rules>,
    /// Extra closed dates, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Extra early-close dates, `YYYY-MM-DD`.
    #[serde(default)]
    pub early_closes: Vec<String>,
}

/// An exchange calendar in a time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    tz_name: String,
    open: Time,
    close: Time,
    early_close: Time,
    rules: Rules,
    holidays: BTreeSet<Date>,
    early_closes: BTreeSet<Date>,
}

/// Comparable days are searched this far back at most: a quarter-end
/// looks for the previous quarter-end, a little over three months back.
const MAX_LOOKBACK_DAYS: i64 = 100;

impl Calendar {
    /// The NYSE in New York time: 9:30–16:00, early closes at 13:00.
    pub fn nyse() -> Calendar {
        Calendar::from_file(CalendarFile::default()).expect("the built-in calendar is valid")
    }

    /// A calendar from a TOML file's text (see [`CalendarFile`]).
    pub fn from_toml(text: &str) -> Result<Calendar> {
        let file: CalendarFile =
            toml::from_str(text).map_err(|e| Error(format!("calendar file: {e}")))?;
        Calendar::from_file(file)
    }

    /// A calendar from a parsed file.
    pub fn from_file(f: CalendarFile) -> Result<Calendar> {
        let tz_name = f.time_zone.unwrap_or_else(|| "America/New_York".into());
        let tz =
            TimeZone::get(&tz_name).map_err(|e| Error(format!("time zone {tz_name:?}: {e}")))?;
        let time = |s: Option<String>, default: Time, what: &str| -> Result<Time> {
            match s {
                None => Ok(default),
                Some(s) => Time::strptime("%H:%M", &s)
                    .map_err(|e| Error(format!("{what} {s:?} is not a time of day HH:MM: {e}"))),
            }
        };
        let open = time(f.open, Time::constant(9, 30, 0, 0), "open")?;
        let close = time(f.close, Time::constant(16, 0, 0, 0), "close")?;
        let early_close = time(f.early_close, Time::constant(13, 0, 0, 0), "early_close")?;
        if close <= open || early_close <= open || early_close > close {
            return Err(Error(format!(
                "the session must open before it closes: open {open}, close {close}, early close {early_close}"
            )));
        }
        let dates = |v: Vec<String>, what: &str| -> Result<BTreeSet<Date>> {
            v.iter()
                .map(|s| {
                    s.parse::<Date>()
                        .map_err(|e| Error(format!("{what}: {s:?} is not a date YYYY-MM-DD: {e}")))
                })
                .collect()
        };
        Ok(Calendar {
            tz,
            tz_name,
            open,
            close,
            early_close,
            rules: f.rules.unwrap_or(Rules::Nyse),
            holidays: dates(f.holidays, "holidays")?,
            early_closes: dates(f.early_closes, "early_closes")?,
        })
    }

    /// The IANA name of the calendar's time zone.
    pub fn time_zone(&self) -> &str {
        &self.tz_name
    }

    /// How `date` trades, before month boundaries are considered.
    fn session(&self, date: Date) -> Session {
        let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
        if weekend || self.holidays.contains(&date) {
            return Session::Closed;
        }
        if self.rules == Rules::Nyse {
            if nyse_holiday(date) {
                return Session::Closed;
            }
            if nyse_early_close(date) {
                return Session::EarlyClose;
            }
        }
        if self.early_closes.contains(&date) {
            Session::EarlyClose
        } else {
            Session::Regular
        }
    }

    fn business(&self, date: Date) -> bool {
        self.session(date) != Session::Closed
    }

    /// What the calendar says of `date`.
    pub fn day(&self, date: Date) -> Day {
        let session = self.session(date);
        let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
        let business = session != Session::Closed;
        // The next business day is in another month: this one ends its month.
        let month_end = business && {
            let mut d = add_days(date, 1);
            while !self.business(d) {
                d = add_days(d, 1);
            }
            d.month() != date.month()
        };
        let first_business_day = business && {
            let mut d = add_days(date, -1);
            while !self.business(d) {
                d = add_days(d, -1);
            }
            d.month() != date.month()
        };
        Day {
            date,
            session,
            holiday: !weekend && !business,
            month_end,
            quarter_end: month_end && date.month() % 3 == 0,
            first_business_day,
        }
    }

    /// Local opening and closing times of a business day.
    pub fn hours(&self, day: &Day) -> Option<(Time, Time)> {
        match day.session {
            Session::Closed => None,
            Session::Regular => Some((self.open, self.close)),
            Session::EarlyClose => Some((self.open, self.early_close)),
        }
    }

    /// `utc_ms` in the market's time.
    pub fn moment(&self, utc_ms: i64) -> Moment {
        let local = self.tz.to_datetime(timestamp(utc_ms));
        let day = self.day(local.date());
        let (from_open_min, in_session, anchor) = match self.hours(&day) {
            None => (None, false, Anchor::Clock),
            Some((open, close)) => {
                let open_ms = self.utc_ms(day.date.to_datetime(open));
                let close_ms = self.utc_ms(day.date.to_datetime(close));
                let from_open = (utc_ms - open_ms).div_euclid(60_000);
                let anchor = if utc_ms < close_ms {
                    Anchor::Open(from_open)
                } else {
                    Anchor::Close((utc_ms - close_ms).div_euclid(60_000))
                };
                (
                    Some(from_open),
                    (open_ms..close_ms).contains(&utc_ms),
                    anchor,
                )
            }
        };
        Moment {
            day,
            local,
            from_open_min,
            in_session,
            anchor,
        }
    }

    /// A local wall-clock time as UTC ms. A time skipped by a spring-forward
    /// change resolves to the instant after the gap; a repeated one to its
    /// first occurrence.
    fn utc_ms(&self, local: DateTime) -> i64 {
        self.tz
            .to_ambiguous_timestamp(local)
            .compatible()
            .map_or(i64::MIN, |t| t.as_millisecond())
    }

    /// Earlier instants comparable to `utc_ms`, most recent first, at most
    /// `max` of them from the last `lookback_days` (quarter-ends and
    /// month-ends look further, for their own kind). Comparable means the
    /// same kind of day (the same weekday first, for ordinary days) at the
    /// same [`Anchor`]: local time, so a daylight-saving change moves the
    /// baseline with the market. The result keeps the moment's offset within
    /// its minute.
    pub fn comparable(&self, utc_ms: i64, lookback_days: i64, max: usize) -> Vec<i64> {
        let m = self.moment(utc_ms);
        let kind = m.day.kind();
        let within_minute = utc_ms.rem_euclid(60_000);
        let at = |d: &Day| -> Option<i64> {
            let base = match (m.anchor, self.hours(d)) {
                (Anchor::Open(off), Some((open, _))) => {
                    self.utc_ms(d.date.to_datetime(open)) + off * 60_000
                }
                (Anchor::Close(off), Some((_, close))) => {
                    self.utc_ms(d.date.to_datetime(close)) + off * 60_000
                }
                (Anchor::Clock, None) => {
                    return Some(self.utc_ms(d.date.to_datetime(m.local.time())));
                }
                _ => return None,
            };
            Some(base.div_euclid(60_000) * 60_000 + within_minute)
        };
        let lookback = match kind {
            DayKind::MonthEnd | DayKind::QuarterEnd | DayKind::FirstBusinessDay => {
                MAX_LOOKBACK_DAYS
            }
            DayKind::EarlyClose => MAX_LOOKBACK_DAYS.min(lookback_days.max(1) * 3),
            _ => lookback_days,
        }
        .clamp(1, MAX_LOOKBACK_DAYS);
        let days: Vec<(i64, Day)> = (1..=lookback)
            .map(|n| (n, self.day(add_days(m.day.date, -n))))
            .collect();
        // Most similar first: the same kind (and weekday for ordinary days),
        // then the same kind any weekday, then the kind it specialises.
        let fallback = match kind {
            DayKind::QuarterEnd => Some(DayKind::MonthEnd),
            DayKind::MonthEnd | DayKind::FirstBusinessDay | DayKind::EarlyClose => {
                Some(DayKind::Trading)
            }
            _ => None,
        };
        let weekday = m.day.date.weekday();
        // Ordinary days follow a weekly rhythm (Monday mornings differ from
        // Fridays); month and quarter ends compare with the latest ones.
        let weekly = matches!(kind, DayKind::Trading | DayKind::Closed);
        let mut out: Vec<i64> = Vec::with_capacity(max);
        let pass = |pass: u8, n: i64, d: &Day| match pass {
            0 => d.kind() == kind && (!weekly || d.date.weekday() == weekday),
            1 => d.kind() == kind,
            _ => Some(d.kind()) == fallback && n <= lookback_days.max(1),
        };
        for p in 0..3 {
            for (_, d) in days.iter().filter(|(n, d)| pass(p, *n, d)) {
                if out.len() >= max {
                    return out;
                }
                if let Some(t) = at(d)
                    && t < utc_ms
                    && !out.contains(&t)
                {
                    out.push(t);
                }
            }
        }
        out
    }
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(Span::new().days(n)).unwrap_or(d)
}

/// Whether the NYSE is closed on weekday `d` for a holiday (its rules since
/// 2022, when Juneteenth was added; earlier years follow the same rules
/// otherwise). A holiday on a Saturday is observed the Friday before and
/// one on a Sunday the Monday after, except New Year's Day: the NYSE does
/// not close on the Friday of 31 December.
pub fn nyse_holiday(d: Date) -> bool {
    let (y, m) = (d.year(), d.month());
    let fixed = |fm: i8, fd: i8| -> bool {
        let Ok(h) = Date::new(y, fm, fd) else {
            return false;
        };
        match h.weekday() {
            Weekday::Saturday => add_days(h, -1) == d,
            Weekday::Sunday => add_days(h, 1) == d,
            _ => h == d,
        }
    };
    let nth = |nm: i8, n: i8, w: Weekday| {
        m == nm
            && Date::new(y, nm, 1)
                .ok()
                .and_then(|f| f.nth_weekday_of_month(n, w).ok())
                == Some(d)
    };
    let new_year = Date::new(y, 1, 1).is_ok_and(|h| match h.weekday() {
        Weekday::Sunday => add_days(h, 1) == d,
        Weekday::Saturday => false,
        _ => h == d,
    });
    new_year
        || nth(1, 3, Weekday::Monday) // Martin Luther King Jr. Day
        || nth(2, 3, Weekday::Monday) // Washington's Birthday
        || easter(y).is_some_and(|e| add_days(e, -2) == d) // Good Friday
        || nth(5, -1, Weekday::Monday) // Memorial Day
        || (y >= 2022 && fixed(6, 19)) // Juneteenth
        || fixed(7, 4) // Independence Day
        || nth(9, 1, Weekday::Monday) // Labor Day
        || nth(11, 4, Weekday::Thursday) // Thanksgiving
        || fixed(12, 25) // Christmas
}

/// Whether the NYSE closes early (13:00) on `d`: the day before
/// Independence Day, the day after Thanksgiving and Christmas Eve, when
/// those are trading days.
pub fn nyse_early_close(d: Date) -> bool {
    if matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) || nyse_holiday(d) {
        return false;
    }
    let (m, day) = (d.month(), d.day());
    (m == 7 && day == 3)
        || (m == 12 && day == 24)
        || (m == 11 && nyse_holiday(add_days(d, -1)) && d.weekday() == Weekday::Friday)
}

/// Easter Sunday of year `y` (Gregorian; the anonymous algorithm).
fn easter(y: i16) -> Option<Date> {
    let y = i32::from(y);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(y as i16, month as i8, day as i8).ok()
}
