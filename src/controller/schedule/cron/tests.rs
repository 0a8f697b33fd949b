use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn schedule(expr: &str, tz: Option<&str>) -> Schedule {
    Schedule::new(expr, tz).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The bits of a field as the values they allow.
fn values(bits: u64) -> Vec<u32> {
    (0..64).filter(|n| bits & (1 << n) != 0).collect()
}

#[test]
fn accepted_expressions_allow_exactly_their_values() {
    let cases: [(&str, [&[u32]; 5]); 6] = [
        (
            "* * * * *",
            [
                &(0..=59).collect::<Vec<_>>(),
                &(0..=23).collect::<Vec<_>>(),
                &(1..=31).collect::<Vec<_>>(),
                &(1..=12).collect::<Vec<_>>(),
                &[0, 1, 2, 3, 4, 5, 6],
            ],
        ),
        (
            "0 3 * * *",
            [
                &[0],
                &[3],
                &(1..=31).collect::<Vec<_>>(),
                &(1..=12).collect::<Vec<_>>(),
                &[0, 1, 2, 3, 4, 5, 6],
            ],
        ),
        (
            "*/15 0-2,22 1,15 */4 1-5",
            [&[0, 15, 30, 45], &[0, 1, 2, 22], &[1, 15], &[1, 5, 9], &[1, 2, 3, 4, 5]],
        ),
        (
            "5/20 10-20/5 31 2-3 7",
            [&[5, 25, 45], &[10, 15, 20], &[31], &[2, 3], &[0]],
        ),
        ("59 23 1 12 0,6", [&[59], &[23], &[1], &[12], &[0, 6]]),
        (
            "  0   0  *  *  7 ",
            [
                &[0],
                &[0],
                &(1..=31).collect::<Vec<_>>(),
                &(1..=12).collect::<Vec<_>>(),
                &[0],
            ],
        ),
    ];
    for (expr, want) in cases {
        let c: Cron = expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}"));
        let got = [c.minutes, c.hours, c.days, c.months, c.weekdays].map(values);
        for (field, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.as_slice(), w, "{expr}: field {field}");
        }
    }
}

#[test]
fn refused_expressions_say_what_is_wrong() {
    let cases = [
        (
            "0 3 * *",
            "has 4 fields; expected 5: minute hour day-of-month month day-of-week",
        ),
        (
            "0 0 3 * * *",
            "has 6 fields; expected 5: minute hour day-of-month month day-of-week; there is no seconds field",
        ),
        ("@daily", "macros like @daily are not supported: write 0 0 * * *"),
        ("", "has 0 fields"),
        ("60 * * * *", "minute field \"60\": 60 is out of range 0-59"),
        ("* 24 * * *", "hour field \"24\": 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month field \"0\": 0 is out of range 1-31"),
        ("* * * 13 *", "month field \"13\": 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field \"8\": 8 is out of range 0-7"),
        (
            "* * * JAN *",
            "month field \"JAN\": names are not supported: use numbers",
        ),
        (
            "* * * * MON-FRI",
            "day-of-week field \"MON-FRI\": names are not supported",
        ),
        ("0 0 ? * 1", "'?' (a Quartz extension) is not supported"),
        ("0 0 L * *", "'L' (a Quartz extension) is not supported"),
        ("0 0 * * 5#3", "'#' (a Quartz extension) is not supported"),
        ("*/0 * * * *", "minute field \"*/0\": a step of 0"),
        (
            "0 22-2 * * *",
            "range 22-2 runs backwards (wrap-around ranges are not supported: write 22-23,0-2)",
        ),
        ("1,,2 * * * *", "an empty list item"),
        ("1- * * * *", "range end \"\" is not a number"),
        ("*/x * * * *", "'x' is not allowed; only *, numbers, -, / and ,"),
        ("-1 * * * *", "range start \"\" is not a number"),
        (
            "0 0 30,31 2 *",
            "matches no date: none of its days of the month exists in any of its months",
        ),
        ("0 0 31 4,6,9,11 *", "matches no date"),
    ];
    for (expr, says) in cases {
        let e = expr.parse::<Cron>().expect_err(expr).to_string();
        assert!(e.contains(says), "{expr}: {e}");
    }
    // 30 February with a day of week matches that day of week (either field matches).
    assert!("0 0 30 2 1".parse::<Cron>().is_ok());
    assert!("0 0 29 2 *".parse::<Cron>().is_ok());
}

#[test]
fn time_zone_defaults_to_utc_and_unknown_names_are_refused() {
    assert_eq!(schedule("0 3 * * *", None).time_zone(), "UTC");
    assert_eq!(
        schedule("0 3 * * *", Some("Asia/Shanghai")).time_zone(),
        "Asia/Shanghai"
    );
    for bad in ["Mars/Olympus", "", "EST5EDT,M3.2.0,M11.1.0"] {
        let e = Schedule::new("0 3 * * *", Some(bad)).unwrap_err();
        assert_eq!(e, CronError::UnknownTimeZone { name: bad.into() }, "{bad}");
        assert!(e.to_string().contains("is not a known IANA time zone"));
    }
}

/// (expression, zone, now, latest slot at or before now, next slot after now).
type SlotCase = (
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    &'static str,
);

fn check(cases: &[SlotCase]) {
    for (expr, tz, now, latest, next) in cases {
        let s = schedule(expr, *tz);
        let now = ts(now);
        assert_eq!(
            s.latest_at_or_before(now),
            latest.map(ts),
            "latest of {expr:?} in {tz:?} at {now}"
        );
        assert_eq!(
            s.next_after(now),
            Some(ts(next)),
            "next of {expr:?} in {tz:?} after {now}"
        );
    }
}

#[test]
fn slots_in_utc() {
    check(&[
        (
            "* * * * *",
            None,
            "2026-05-04T10:00:30Z",
            Some("2026-05-04T10:00:00Z"),
            "2026-05-04T10:01:00Z",
        ),
        // A slot is its own latest slot, and not its own next.
        (
            "* * * * *",
            None,
            "2026-05-04T10:01:00Z",
            Some("2026-05-04T10:01:00Z"),
            "2026-05-04T10:02:00Z",
        ),
        (
            "0 3 * * *",
            None,
            "2026-05-04T02:59:59Z",
            Some("2026-05-03T03:00:00Z"),
            "2026-05-04T03:00:00Z",
        ),
        (
            "*/20 * * * *",
            None,
            "2026-12-31T23:59:00Z",
            Some("2026-12-31T23:40:00Z"),
            "2027-01-01T00:00:00Z",
        ),
        // Monday to Friday at 09:30: Friday to Monday.
        (
            "30 9 * * 1-5",
            None,
            "2026-05-09T12:00:00Z",
            Some("2026-05-08T09:30:00Z"),
            "2026-05-11T09:30:00Z",
        ),
        // Day 13 or a Friday (both day fields restricted: either matches).
        (
            "0 0 13 * 5",
            None,
            "2026-05-09T00:00:00Z",
            Some("2026-05-08T00:00:00Z"),
            "2026-05-13T00:00:00Z",
        ),
        // 29 February: the next leap year.
        (
            "0 0 29 2 *",
            None,
            "2026-03-01T00:00:00Z",
            Some("2024-02-29T00:00:00Z"),
            "2028-02-29T00:00:00Z",
        ),
        (
            "0 12 1 1 *",
            None,
            "2026-06-01T00:00:00Z",
            Some("2026-01-01T12:00:00Z"),
            "2027-01-01T12:00:00Z",
        ),
    ]);
}

#[test]
fn slots_in_a_zone_without_dst() {
    // Asia/Shanghai is UTC+8 all year: 03:00 there is 19:00 UTC the day before.
    check(&[
        (
            "0 3 * * *",
            Some("Asia/Shanghai"),
            "2026-06-01T00:00:00Z",
            Some("2026-05-31T19:00:00Z"),
            "2026-06-01T19:00:00Z",
        ),
        (
            "0 3 * * *",
            Some("Asia/Shanghai"),
            "2026-06-01T19:00:00Z",
            Some("2026-06-01T19:00:00Z"),
            "2026-06-02T19:00:00Z",
        ),
        // Monday 00:30 there is Sunday 16:30 UTC.
        (
            "30 0 * * 1",
            Some("Asia/Shanghai"),
            "2026-05-10T16:00:00Z",
            Some("2026-05-03T16:30:00Z"),
            "2026-05-10T16:30:00Z",
        ),
        // New year there comes at 16:00 UTC on 31 December.
        (
            "0 0 1 1 *",
            Some("Asia/Shanghai"),
            "2026-12-31T15:59:00Z",
            Some("2025-12-31T16:00:00Z"),
            "2026-12-31T16:00:00Z",
        ),
    ]);
}

#[test]
fn spring_forward_in_new_york_loses_no_daily_slot() {
    // Sunday 8 March 2026, 02:00 EST (07:00Z) becomes 03:00 EDT: 02:00-02:59 do not exist.
    let ny = Some("America/New_York");
    check(&[
        // Daily at 02:30: the day before 07:30Z (EST), that day at 03:30 EDT (07:30Z, as much
        // later as the gap is long), the day after 06:30Z (EDT).
        (
            "30 2 * * *",
            ny,
            "2026-03-07T08:00:00Z",
            Some("2026-03-07T07:30:00Z"),
            "2026-03-08T07:30:00Z",
        ),
        (
            "30 2 * * *",
            ny,
            "2026-03-08T07:30:00Z",
            Some("2026-03-08T07:30:00Z"),
            "2026-03-09T06:30:00Z",
        ),
        // Daily at 03:00 is unaffected: 07:00Z on the day (EDT), 08:00Z the day before (EST).
        (
            "0 3 * * *",
            ny,
            "2026-03-08T06:59:00Z",
            Some("2026-03-07T08:00:00Z"),
            "2026-03-08T07:00:00Z",
        ),
        // Hourly: 01:00 EST (06:00Z), then 02:00 → 03:00 EDT (07:00Z), which is also the 03:00
        // slot: one slot; then 04:00 EDT (08:00Z).
        (
            "0 * * * *",
            ny,
            "2026-03-08T06:30:00Z",
            Some("2026-03-08T06:00:00Z"),
            "2026-03-08T07:00:00Z",
        ),
        (
            "0 * * * *",
            ny,
            "2026-03-08T07:00:00Z",
            Some("2026-03-08T07:00:00Z"),
            "2026-03-08T08:00:00Z",
        ),
        // Every minute: 01:59 EST (06:59Z) is followed by 03:00 EDT (07:00Z).
        (
            "* * * * *",
            ny,
            "2026-03-08T06:59:00Z",
            Some("2026-03-08T06:59:00Z"),
            "2026-03-08T07:00:00Z",
        ),
    ]);
}

#[test]
fn fall_back_in_new_york_runs_a_repeated_time_at_both_occurrences() {
    // Sunday 1 November 2026, 02:00 EDT (06:00Z) becomes 01:00 EST: 01:00-01:59 happen twice.
    let ny = Some("America/New_York");
    check(&[
        // Daily at 01:30: at 01:30 EDT (05:30Z) and at 01:30 EST (06:30Z).
        (
            "30 1 * * *",
            ny,
            "2026-11-01T05:00:00Z",
            Some("2026-10-31T05:30:00Z"),
            "2026-11-01T05:30:00Z",
        ),
        (
            "30 1 * * *",
            ny,
            "2026-11-01T05:30:00Z",
            Some("2026-11-01T05:30:00Z"),
            "2026-11-01T06:30:00Z",
        ),
        (
            "30 1 * * *",
            ny,
            "2026-11-01T06:00:00Z",
            Some("2026-11-01T05:30:00Z"),
            "2026-11-01T06:30:00Z",
        ),
        (
            "30 1 * * *",
            ny,
            "2026-11-01T06:30:00Z",
            Some("2026-11-01T06:30:00Z"),
            "2026-11-02T06:30:00Z",
        ),
        // Every minute: 01:59 EDT (05:59Z) is followed by 01:00 EST (06:00Z), no hole.
        (
            "* * * * *",
            ny,
            "2026-11-01T05:59:00Z",
            Some("2026-11-01T05:59:00Z"),
            "2026-11-01T06:00:00Z",
        ),
        // Daily at 03:00 is unaffected: 08:00Z (EST) that day, 07:00Z (EDT) the day before.
        (
            "0 3 * * *",
            ny,
            "2026-11-01T07:30:00Z",
            Some("2026-10-31T07:00:00Z"),
            "2026-11-01T08:00:00Z",
        ),
    ]);
}

#[test]
fn the_expression_is_kept_normalised_for_messages() {
    let s = schedule(" */5  *  * * * ", Some("Asia/Shanghai"));
    assert_eq!(s.expression(), "*/5 * * * *");
}
