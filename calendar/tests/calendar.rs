//! The exchange calendar: holidays, early closes, month and quarter ends,
//! daylight-saving changes, and which earlier moments are comparable.

use jiff::civil::Date;
use sextant_calendar::{Calendar, DayKind, Session};

fn date(y: i16, m: i8, d: i8) -> Date {
    Date::new(y, m, d).unwrap()
}

fn utc(y: i16, m: i8, d: i8, hh: i8, mm: i8) -> i64 {
    jiff::tz::TimeZone::UTC
        .to_timestamp(date(y, m, d).at(hh, mm, 0, 0))
        .unwrap()
        .as_millisecond()
}

fn days_of(cal: &Calendar, year: i16, pick: impl Fn(&sextant_calendar::Day) -> bool) -> Vec<Date> {
    let mut d = date(year, 1, 1);
    let mut out = Vec::new();
    while d.year() == year {
        let day = cal.day(d);
        if pick(&day) {
            out.push(d);
        }
        d = d.tomorrow().unwrap();
    }
    out
}

#[test]
fn nyse_holidays_match_the_exchange_published_lists() {
    let cal = Calendar::nyse();
    let holidays = |y| days_of(&cal, y, |d| d.holiday);
    let want = |y: i16, md: &[(i8, i8)]| md.iter().map(|&(m, d)| date(y, m, d)).collect::<Vec<_>>();
    // 2026: Independence Day is a Saturday, observed Friday 3 July.
    assert_eq!(
        holidays(2026),
        want(
            2026,
            &[
                (1, 1),
                (1, 19),
                (2, 16),
                (4, 3),
                (5, 25),
                (6, 19),
                (7, 3),
                (9, 7),
                (11, 26),
                (12, 25)
            ]
        )
    );
    // 2027: Juneteenth and Christmas on Saturdays (observed Fridays),
    // Independence Day on a Sunday (observed Monday).
    assert_eq!(
        holidays(2027),
        want(
            2027,
            &[
                (1, 1),
                (1, 18),
                (2, 15),
                (3, 26),
                (5, 31),
                (6, 18),
                (7, 5),
                (9, 6),
                (11, 25),
                (12, 24)
            ]
        )
    );
    // New Year's Day 2022 fell on a Saturday: the NYSE traded on Friday
    // 31 December 2021.
    assert_eq!(cal.day(date(2021, 12, 31)).session, Session::Regular);
    assert!(cal.day(date(2021, 12, 31)).quarter_end);
}

#[test]
fn nyse_early_closes() {
    let cal = Calendar::nyse();
    let early = |y| days_of(&cal, y, |d| d.session == Session::EarlyClose);
    assert_eq!(
        early(2025),
        vec![date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24)]
    );
    // 3 July 2026 is the observed holiday, so there is no early close before it.
    assert_eq!(early(2026), vec![date(2026, 11, 27), date(2026, 12, 24)]);
    let m = cal.moment(utc(2026, 11, 27, 18, 30)); // 13:30 in New York
    assert!(!m.in_session, "closed after 13:00 on an early-close day");
    assert_eq!(m.day.kind(), DayKind::EarlyClose);
    assert!(cal.moment(utc(2026, 11, 27, 17, 30)).in_session);
    // Its quiet afternoon compares with ordinary evenings: 13:05 after an
    // early close is 16:05 on the latest ordinary trading days.
    let cmp = cal.comparable(utc(2026, 11, 27, 18, 5), 35, 2);
    assert_eq!(
        cmp,
        vec![utc(2026, 11, 25, 21, 5), utc(2026, 11, 24, 21, 5)]
    );
}

#[test]
fn month_quarter_ends_and_first_business_days_skip_weekends_and_holidays() {
    let cal = Calendar::nyse();
    // 31 October 2026 is a Saturday: Friday the 30th ends the month.
    assert_eq!(cal.day(date(2026, 10, 30)).kind(), DayKind::MonthEnd);
    assert_eq!(cal.day(date(2026, 10, 31)).kind(), DayKind::Closed);
    assert_eq!(cal.day(date(2026, 12, 31)).kind(), DayKind::QuarterEnd);
    assert_eq!(cal.day(date(2026, 9, 30)).kind(), DayKind::QuarterEnd);
    // 1 January 2027 is a holiday: Monday the 4th is the first business day.
    assert_eq!(cal.day(date(2027, 1, 1)).kind(), DayKind::Closed);
    assert!(cal.day(date(2027, 1, 1)).holiday);
    assert_eq!(cal.day(date(2027, 1, 4)).kind(), DayKind::FirstBusinessDay);
    assert_eq!(cal.day(date(2026, 12, 1)).kind(), DayKind::FirstBusinessDay);
    assert_eq!(cal.day(date(2026, 12, 2)).kind(), DayKind::Trading);
}

#[test]
fn the_open_follows_new_york_across_daylight_saving_changes() {
    let cal = Calendar::nyse();
    // 13:30 UTC is the open in summer, an hour before it in winter.
    assert_eq!(cal.moment(utc(2026, 7, 1, 13, 30)).from_open_min, Some(0));
    assert_eq!(
        cal.moment(utc(2026, 12, 2, 13, 30)).from_open_min,
        Some(-60)
    );
    assert!(cal.moment(utc(2026, 12, 2, 14, 30)).in_session);
    // DST began on Sunday 8 March 2026: the Tuesday after opens at 13:30
    // UTC, and its comparable moment a week earlier is at 14:45 UTC, not
    // 13:45. (Monday 2 March was the month's first business day, another
    // kind of day, hence a Tuesday.)
    let t = utc(2026, 3, 10, 13, 45);
    assert_eq!(cal.moment(t).from_open_min, Some(15));
    let cmp = cal.comparable(t, 35, 5);
    assert_eq!(cmp[0], utc(2026, 3, 3, 14, 45));
    assert_eq!(cmp.len(), 5);
    for c in cmp {
        assert_eq!(cal.moment(c).from_open_min, Some(15));
        assert_eq!(
            cal.moment(c).day.date.weekday(),
            jiff::civil::Weekday::Tuesday
        );
    }
}

#[test]
fn comparable_moments_are_days_of_the_same_kind() {
    let cal = Calendar::nyse();
    // An ordinary Wednesday 9:31: the Wednesdays before it, at 9:31.
    let t = utc(2026, 12, 9, 14, 31);
    let weeks = [(12, 2), (11, 25), (11, 18), (11, 11)];
    let want: Vec<i64> = weeks
        .iter()
        .map(|&(m, d)| utc(2026, m, d, 14, 31))
        .collect();
    assert_eq!(cal.comparable(t, 35, 4), want);

    // A month-end compares with earlier month-ends first (30 September is
    // a quarter-end, another kind), then with ordinary days.
    let t = utc(2026, 10, 30, 19, 0); // 15:00 in New York
    let cmp = cal.comparable(t, 35, 3);
    assert_eq!(cmp[..2], [utc(2026, 8, 31, 19, 0), utc(2026, 7, 31, 19, 0)]);
    assert_eq!(cal.moment(cmp[2]).day.kind(), DayKind::Trading);

    // A quarter-end: the previous quarter-end, then recent month-ends.
    let t = utc(2026, 12, 31, 20, 0);
    let cmp = cal.comparable(t, 35, 2);
    assert_eq!(cmp, vec![utc(2026, 9, 30, 19, 0), utc(2026, 11, 30, 20, 0)]);

    // Good Friday noon: compared with weekend noons, not with Fridays.
    let t = utc(2026, 4, 3, 16, 0);
    let cmp = cal.comparable(t, 35, 2);
    assert_eq!(cmp, vec![utc(2026, 3, 29, 16, 0), utc(2026, 3, 28, 16, 0)]);
}

#[test]
fn calendar_files_set_another_exchange() {
    let cal = Calendar::from_toml(
        r#"
time_zone = "Europe/London"
open = "08:00"
close = "16:30"
early_close = "12:30"
rules = "none"
holidays = ["2026-12-25", "2026-12-28"]
early_closes = ["2026-12-24"]
"#,
    )
    .unwrap();
    assert_eq!(cal.time_zone(), "Europe/London");
    assert_eq!(cal.moment(utc(2026, 12, 2, 8, 0)).from_open_min, Some(0));
    // British summer time: the open is 07:00 UTC.
    assert_eq!(cal.moment(utc(2026, 7, 1, 7, 0)).from_open_min, Some(0));
    assert!(cal.day(date(2026, 12, 28)).holiday);
    assert_eq!(cal.day(date(2026, 12, 24)).session, Session::EarlyClose);
    // Without the NYSE rules, Thanksgiving is a trading day.
    assert_eq!(cal.day(date(2026, 11, 26)).session, Session::Regular);

    for (text, says) in [
        ("time_zone = \"Mars/Olympus\"", "Mars/Olympus"),
        ("open = \"9.30\"", "HH:MM"),
        ("open = \"17:00\"", "open before it closes"),
        ("holidays = [\"2026-13-01\"]", "YYYY-MM-DD"),
        ("timezone = \"UTC\"", "unknown field"),
        ("rules = \"lse\"", "unknown variant"),
    ] {
        let err = Calendar::from_toml(text).unwrap_err().to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
}
