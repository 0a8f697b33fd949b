//! Pure: the five-field cron expression of a `RedisBackupSchedule` read in its IANA time zone,
//! and its slots (the instants a backup is due) around a given instant.
//!
//! The dialect is the common core of cron(8) and Kubernetes `CronJob`, numbers only:
//! `minute hour day-of-month month day-of-week`, each field `*`, a number, a range `a-b`, a step
//! `*/s`, `a-b/s` or `a/s` (from `a` to the field's end), or a comma-separated list of those.
//! Day of week is 0-7, 0 and 7 both Sunday. As in cron(8), when both day fields are restricted
//! (neither is `*`) a day matches if either does. Names (`MON`, `JAN`), macros (`@daily`), a
//! seconds field and the Quartz extensions (`?`, `L`, `W`, `#`) are refused with a message
//! saying what to write instead.
//!
//! Daylight saving time: every matching local time of every matching day is one slot. A local
//! time that a spring-forward skips is due as much later as the gap is long (02:30 in a
//! 02:00 → 03:00 gap is due at 03:30: jiff's `compatible` rule, as in RFC 5545 and
//! `java.time`), so a daily backup is never lost; a local time that a fall-back repeats is due
//! at both of its occurrences, so an hourly or every-minute schedule has no hole. Two slots
//! falling on the same instant are one.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// How far the slot searches look, in days: every valid expression matches a day within this
/// span (29 February comes back within 8 years).
const SEARCH_DAYS: usize = 366 * 9;

/// Why an expression or a time zone is refused. The message is shown in the schedule's
/// conditions as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five space-separated fields.
    #[error("schedule {expr:?} has {found} fields; expected 5: minute hour day-of-month month day-of-week{hint}")]
    FieldCount {
        /// The expression.
        expr: String,
        /// How many fields it has.
        found: usize,
        /// A hint for a common mistake (a seconds field, a macro), or empty.
        hint: &'static str,
    },
    /// One field is not understood.
    #[error("schedule {expr:?}: {field} field {text:?}: {problem}")]
    Field {
        /// The expression.
        expr: String,
        /// The field's name (`minute`, ...).
        field: &'static str,
        /// The field's text.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The day-of-month and month fields name no date that exists (e.g. 31 February).
    #[error("schedule {expr:?} matches no date: {problem}")]
    NeverMatches {
        /// The expression.
        expr: String,
        /// Which days and months.
        problem: String,
    },
    /// The time zone is not an IANA name this system knows.
    #[error("timeZone {name:?} is not a known IANA time zone (e.g. UTC, Asia/Shanghai, America/New_York)")]
    UnknownTimeZone {
        /// The name.
        name: String,
    },
}

/// One field's range and name.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
}

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
    },
    FieldSpec {
        name: "day-of-week",
        min: 0,
        max: 7,
    },
];

/// A parsed cron expression: one bit per allowed value of each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day of month is `*` (then only the day of week restricts days).
    any_day: bool,
    /// Day of week is `*` (then only the day of month restricts days).
    any_weekday: bool,
    text: String,
}

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                expr: expr.to_owned(),
                found: fields.len(),
                hint: field_count_hint(expr, fields.len()),
            });
        }
        let mut bits = [0u64; 5];
        for ((text, spec), out) in fields.iter().zip(&FIELDS).zip(&mut bits) {
            *out = parse_field(text, spec).map_err(|problem| CronError::Field {
                expr: expr.to_owned(),
                field: spec.name,
                text: (*text).to_owned(),
                problem,
            })?;
        }
        // 7 is Sunday too.
        let weekdays = (bits[4] | (bits[4] >> 7)) & 0x7f;
        let cron = Self {
            minutes: bits[0],
            hours: bits[1],
            days: bits[2],
            months: bits[3],
            weekdays,
            any_day: is_any(fields[2]),
            any_weekday: is_any(fields[4]),
            text: fields.join(" "),
        };
        cron.check_some_date_exists()?;
        Ok(cron)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether a day field leaves days unrestricted (cron(8) looks at `*` alone).
fn is_any(field: &str) -> bool {
    field == "*" || field == "*/1"
}

fn field_count_hint(expr: &str, found: usize) -> &'static str {
    if expr.trim_start().starts_with('@') {
        "; macros like @daily are not supported: write 0 0 * * *"
    } else if found == 6 {
        "; there is no seconds field"
    } else {
        ""
    }
}

/// The bits of one field: a comma-separated list of items.
fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, String> {
    let mut bits = 0;
    for item in text.split(',') {
        bits |= parse_item(item, spec)?;
    }
    Ok(bits)
}

/// One item: `*`, `n`, `a-b`, each optionally `/step` (`n/step` runs to the field's end).
fn parse_item(item: &str, spec: &FieldSpec) -> Result<u64, String> {
    if item.is_empty() {
        return Err("an empty list item".to_owned());
    }
    if let Some(c) = item
        .chars()
        .find(|&c| !(c.is_ascii_digit() || matches!(c, '*' | '-' | '/')))
    {
        return Err(unsupported_char(c, spec));
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(number(step, "step")?)),
        None => (item, None),
    };
    let (low, high) = match range {
        "*" => (spec.min, spec.max),
        _ => match range.split_once('-') {
            Some((a, b)) => (number(a, "range start")?, number(b, "range end")?),
            None => {
                let n = number(range, "value")?;
                (n, if step.is_some() { spec.max } else { n })
            }
        },
    };
    for n in [low, high] {
        if n < spec.min || n > spec.max {
            return Err(format!("{n} is out of range {}-{}", spec.min, spec.max));
        }
    }
    if low > high {
        return Err(format!(
            "range {low}-{high} runs backwards (wrap-around ranges are not supported: write {low}-{},{}-{high})",
            spec.max, spec.min
        ));
    }
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err("a step of 0".to_owned());
    }
    Ok((low..=high)
        .step_by(step as usize)
        .fold(0, |bits, n| bits | (1u64 << n)))
}

fn number(text: &str, what: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n <= 99 => Ok(n),
        _ => Err(format!("{what} {text:?} is not a number from the field's range")),
    }
}

fn unsupported_char(c: char, spec: &FieldSpec) -> String {
    if c.is_ascii_alphabetic() && matches!(spec.name, "month" | "day-of-week") && !matches!(c, 'L' | 'W') {
        return "names are not supported: use numbers (month 1-12, day of week 0-7, 0 and 7 = Sunday)".to_owned();
    }
    match c {
        '?' | 'L' | 'W' | '#' => format!("{c:?} (a Quartz extension) is not supported; only *, numbers, -, / and ,"),
        _ => format!("{c:?} is not allowed; only *, numbers, -, / and ,"),
    }
}

/// How many days each month can have (February in a leap year).
const MONTH_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl Cron {
    /// Refuses day-of-month and month fields that name no existing date, when the day of week
    /// cannot make up for it (it is `*`).
    fn check_some_date_exists(&self) -> Result<(), CronError> {
        if !self.any_weekday || self.any_day {
            return Ok(());
        }
        let exists =
            (1..=12).any(|m| self.months & (1 << m) != 0 && (1..=MONTH_DAYS[m - 1]).any(|d| self.days & (1 << d) != 0));
        if exists {
            return Ok(());
        }
        Err(CronError::NeverMatches {
            expr: self.text.clone(),
            problem: "none of its days of the month exists in any of its months".to_owned(),
        })
    }

    /// Whether `date` is a day the expression runs on.
    fn matches_day(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.any_day, self.any_weekday) {
            (false, false) => day || weekday,
            _ => day && weekday,
        }
    }

    /// The (hour, minute) pairs the expression runs at, in order.
    fn times(&self) -> impl Iterator<Item = (i8, i8)> + '_ {
        let set = |bits: u64, max: i8| (0..=max).filter(move |n| bits & (1 << n) != 0);
        set(self.hours, 23).flat_map(move |h| set(self.minutes, 59).map(move |m| (h, m)))
    }
}

/// A cron expression in a time zone: what a schedule's slots are computed from.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

impl Schedule {
    /// Parses `expr` and looks up `time_zone` (UTC when absent).
    pub fn new(expr: &str, time_zone: Option<&str>) -> Result<Self, CronError> {
        let cron: Cron = expr.parse()?;
        let tz = match time_zone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| CronError::UnknownTimeZone { name: name.to_owned() })?,
        };
        Ok(Self { cron, tz })
    }

    /// The latest slot at or before `now`.
    pub fn latest_at_or_before(&self, now: Timestamp) -> Option<Timestamp> {
        let start = self.tz.to_datetime(now).date().tomorrow().ok()?;
        self.search(
            start,
            Date::yesterday,
            |slots| slots.iter().rev().find(|t| **t <= now).copied(),
            |a, b| a.max(b),
        )
    }

    /// The first slot after `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        let start = self.tz.to_datetime(now).date().yesterday().ok()?;
        self.search(
            start,
            Date::tomorrow,
            |slots| slots.iter().find(|t| **t > now).copied(),
            |a, b| a.min(b),
        )
    }

    /// Walks the days from `start` with `step`, taking `pick` of each matching day's slots; the
    /// first day that gives a slot and the day after it are looked at (a slot shifted by a
    /// transition may cross midnight), and the `best` of the two wins.
    fn search(
        &self,
        start: Date,
        step: fn(Date) -> Result<Date, jiff::Error>,
        pick: impl Fn(&[Timestamp]) -> Option<Timestamp>,
        best: fn(Timestamp, Timestamp) -> Timestamp,
    ) -> Option<Timestamp> {
        let on = |date: Date| {
            self.cron
                .matches_day(date)
                .then(|| pick(&self.slots_of(date)))
                .flatten()
        };
        let mut date = start;
        for _ in 0..SEARCH_DAYS {
            if let Some(t) = on(date) {
                let also = step(date).ok().and_then(on);
                return Some(also.map_or(t, |a| best(t, a)));
            }
            date = step(date).ok()?;
        }
        None
    }

    /// Every slot of the local day `date`, in order, without duplicates.
    fn slots_of(&self, date: Date) -> Vec<Timestamp> {
        let mut slots = vec![];
        for (hour, minute) in self.cron.times() {
            let dt = DateTime::from_parts(date, jiff::civil::time(hour, minute, 0, 0));
            let ambiguous = self.tz.to_ambiguous_timestamp(dt);
            let fold = matches!(ambiguous.offset(), AmbiguousOffset::Fold { .. });
            let instants = if fold {
                [ambiguous.earlier(), ambiguous.later()].map(Result::ok)
            } else {
                [ambiguous.compatible().ok(), None]
            };
            slots.extend(instants.into_iter().flatten());
        }
        slots.sort();
        slots.dedup();
        slots
    }

    /// The expression, as written (fields separated by single spaces).
    pub fn expression(&self) -> String {
        self.cron.to_string()
    }

    /// The time zone's IANA name (`UTC` by default).
    pub fn time_zone(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }
}

#[cfg(test)]
mod tests;
