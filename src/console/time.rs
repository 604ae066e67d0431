//! Times as people read and write them in the console: in the node's time zone and the reader's
//! language, and never finer than what a partner shared. A time shared to the day reads as the day
//! ("tisdag 1 december"), one shared to the hour as that hour ("tis 1 dec 21–22"), never as a made-up
//! exact moment. The filing form's local date and time are read in the node's zone.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::i18n::Lang;
use crate::domain::view::TimePrecision;

const WEEKDAYS_SV: [&str; 7] = ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"];
const WEEKDAYS_EN: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS_SV: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A moment, to the minute, in `zone`: "tis 1 dec 2026 21:30" / "Tue 1 Dec 2026 21:30".
pub fn moment(t: DateTime<Utc>, zone: Tz, lang: Lang) -> String {
    let local = t.with_timezone(&zone);
    format!(
        "{} {:02}:{:02}",
        short_date(local.weekday().num_days_from_monday(), local.day(), local.month0(), local.year(), lang),
        local.hour(),
        local.minute()
    )
}

/// A time as precise as it was shared: exact, to the hour, or to the day.
pub fn shared(t: DateTime<Utc>, precision: Option<TimePrecision>, zone: Tz, lang: Lang) -> String {
    match precision.unwrap_or(TimePrecision::Exact) {
        TimePrecision::Exact => moment(t, zone, lang),
        TimePrecision::Hour => {
            let local = t.with_timezone(&zone);
            let next = (t + chrono::Duration::hours(1)).with_timezone(&zone);
            format!(
                "{} {:02}–{:02}",
                short_date(local.weekday().num_days_from_monday(), local.day(), local.month0(), local.year(), lang),
                local.hour(),
                next.hour()
            )
        }
        // The day was cut at midnight UTC by the sender: it is that calendar day, whatever the zone.
        TimePrecision::Day => {
            let (weekday, month) = (t.weekday().num_days_from_monday() as usize, t.month0() as usize);
            match lang {
                Lang::Sv => format!("{} {} {} {}", WEEKDAYS_SV[weekday], t.day(), MONTHS_SV[month], t.year()),
                Lang::En => format!("{} {} {} {}", WEEKDAYS_EN[weekday], t.day(), MONTHS_EN[month], t.year()),
            }
        }
    }
}

fn short_date(weekday: u32, day: u32, month0: u32, year: i32, lang: Lang) -> String {
    let (weekday, month) = (weekday as usize, month0 as usize);
    match lang {
        Lang::Sv => format!("{} {day} {} {year}", &WEEKDAYS_SV[weekday][..3], &MONTHS_SV[month][..3]),
        Lang::En => format!("{} {day} {} {year}", &WEEKDAYS_EN[weekday][..3], &MONTHS_EN[month][..3]),
    }
}

/// The value of a `datetime-local` input for `t` in `zone`: `2026-12-01T21:30`.
pub fn input_value(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()
}

/// A `datetime-local` input's value (`2026-12-01T21:30`, seconds optional) read in `zone`. A time
/// the clocks skipped is refused; one they passed twice is taken at its first passing.
pub fn parse_input(text: &str, zone: Tz) -> Result<DateTime<Utc>, &'static str> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| "must be a date and time, such as 2026-12-01T21:30")?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err("does not exist in this time zone (the clocks were put forward); pick another time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    const STOCKHOLM: Tz = chrono_tz::Europe::Stockholm;

    #[test]
    fn a_time_shared_to_the_day_reads_as_that_day_and_no_hour() {
        let day = at("2026-12-01T00:00:00Z");
        assert_eq!(shared(day, Some(TimePrecision::Day), STOCKHOLM, Lang::Sv), "tisdag 1 december 2026");
        assert_eq!(shared(day, Some(TimePrecision::Day), STOCKHOLM, Lang::En), "Tuesday 1 December 2026");
    }

    #[test]
    fn a_time_shared_to_the_hour_reads_as_that_hour_in_the_nodes_zone() {
        let hour = at("2026-12-01T20:00:00Z");
        assert_eq!(shared(hour, Some(TimePrecision::Hour), STOCKHOLM, Lang::Sv), "tis 1 dec 2026 21–22");
        assert_eq!(moment(at("2026-07-01T20:05:00Z"), STOCKHOLM, Lang::En), "Wed 1 Jul 2026 22:05");
    }

    #[test]
    fn the_forms_local_time_is_read_in_the_nodes_zone() {
        assert_eq!(parse_input("2026-12-01T21:30", STOCKHOLM), Ok(at("2026-12-01T20:30:00Z")));
        assert_eq!(input_value(at("2026-12-01T20:30:00Z"), STOCKHOLM), "2026-12-01T21:30");
        assert!(parse_input("2026-03-29T02:30", STOCKHOLM).is_err(), "a time the clocks skipped");
        assert!(parse_input("yesterday", STOCKHOLM).is_err());
    }
}
