//! Job schedules: Cloud Scheduler's role for Cloud Run jobs, kept on the job itself as the
//! annotation [`SCHEDULES_ANNOTATION`], a JSON list of `{"cron": "*/5 * * * *",
//! "timeZone": "Europe/Paris"}` (5-field crontab as Cloud Scheduler takes it, or a
//! nickname such as `@daily`; the IANA time zone defaults to UTC).
//!
//! Pure: [`Schedule::due`] says whether a run is due at `now` given the last one, so the
//! controller (which persists the last run) fires each occurrence once, and a run missed
//! while homerun was down once on the next start.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};

/// The annotation holding a job's schedules.
pub const SCHEDULES_ANNOTATION: &str = "homerun.dev/schedules";

/// One schedule as written in the annotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    pub cron: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
}

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub spec: ScheduleSpec,
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    pub fn parse(spec: &ScheduleSpec) -> Result<Schedule, String> {
        let fields = spec.cron.split_whitespace().count();
        if !spec.cron.trim_start().starts_with('@') && fields != 5 {
            return Err(format!(
                "schedule {:?} has {fields} fields; a crontab schedule has 5 (minute hour day-of-month month day-of-week)",
                spec.cron
            ));
        }
        let cron = Cron::from_str(spec.cron.trim())
            .map_err(|e| format!("schedule {:?} is not a crontab schedule: {e}", spec.cron))?;
        let tz = if spec.time_zone.is_empty() {
            Tz::UTC
        } else {
            spec.time_zone.parse::<Tz>().map_err(|_| {
                format!(
                    "time zone {:?} is not an IANA time zone (like Europe/Paris)",
                    spec.time_zone
                )
            })?
        };
        Ok(Schedule {
            spec: spec.clone(),
            cron,
            tz,
        })
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The occurrence to run now, if one came after `last` and at or before `now`: the
    /// latest such one (runs missed meanwhile collapse into this one).
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut due = None;
        let mut t = last;
        // Bounded: a minutely schedule missed for a week is ~10 000 steps.
        for _ in 0..100_000 {
            match self.next_after(t) {
                Some(next) if next <= now => {
                    due = Some(next);
                    t = next;
                }
                _ => break,
            }
        }
        due
    }
}

/// A job's schedules from its annotations; errors name the offending entry.
pub fn schedules_of(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Schedule>, String> {
    let Some(text) = annotations.get(SCHEDULES_ANNOTATION) else {
        return Ok(Vec::new());
    };
    let specs: Vec<ScheduleSpec> = serde_json::from_str(text).map_err(|e| {
        format!("must be a JSON list of {{\"cron\": \"...\", \"timeZone\": \"...\"}}: {e}")
    })?;
    specs.iter().map(Schedule::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    fn every(cron: &str, tz: &str) -> Schedule {
        Schedule::parse(&ScheduleSpec {
            cron: cron.into(),
            time_zone: tz.into(),
        })
        .unwrap()
    }

    #[test]
    fn due_once_per_occurrence_and_missed_runs_collapse() {
        let s = every("*/15 * * * *", "");
        assert_eq!(s.due(at(10, 0), at(10, 14)), None);
        assert_eq!(s.due(at(10, 0), at(10, 15)), Some(at(10, 15)));
        assert_eq!(s.due(at(10, 15), at(10, 20)), None);
        // Down from 10:15 to 11:05: four were missed, one run, the latest.
        assert_eq!(s.due(at(10, 15), at(11, 5)), Some(at(11, 0)));
    }

    #[test]
    fn time_zones_shift_the_hour() {
        // 03:00 in Paris is 02:00 UTC in March (winter time).
        let s = every("0 3 * * *", "Europe/Paris");
        assert_eq!(s.next_after(at(0, 0)), Some(at(2, 0)));
        assert_eq!(every("@hourly", "").next_after(at(0, 30)), Some(at(1, 0)));
    }

    #[test]
    fn bad_schedules_are_named() {
        let bad = |cron: &str, tz: &str| {
            Schedule::parse(&ScheduleSpec {
                cron: cron.into(),
                time_zone: tz.into(),
            })
            .unwrap_err()
        };
        assert!(bad("* * * *", "").contains("4 fields"));
        assert!(bad("61 * * * *", "").contains("\"61 * * * *\""));
        assert!(bad("* * * * *", "Mars/Olympus").contains("Mars/Olympus"));
        let map = [(SCHEDULES_ANNOTATION.to_string(), "not json".to_string())].into();
        assert!(schedules_of(&map).unwrap_err().contains("JSON list"));
    }
}
