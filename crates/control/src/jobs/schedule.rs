//! Scheduled runs: each schedule of a job (its [`api::schedule::SCHEDULES_ANNOTATION`])
//! starts an execution at each occurrence, as Cloud Scheduler does for Cloud Run jobs.
//! The last occurrence run is kept in the store's meta table, so a restart neither repeats
//! it nor forgets it: occurrences missed while homerun was down run once, at the first
//! pass after it starts (the latest of them). A schedule seen for the first time starts
//! counting from now.

use std::sync::Arc;

use api::schedule::{schedules_of, Schedule};
use api::{Job, RunJobRequest};
use chrono::{DateTime, TimeZone, Utc};
use store::Store;

fn meta_key(job: &str, s: &Schedule) -> String {
    format!("schedule/{job}/{}/{}", s.spec.cron, s.spec.time_zone)
}

fn read_last(store: &dyn Store, key: &str) -> Option<DateTime<Utc>> {
    let bytes = store.get_meta(key).ok()??;
    let secs: i64 = std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?;
    Utc.timestamp_opt(secs, 0).single()
}

fn write_last(store: &dyn Store, key: &str, t: DateTime<Utc>) {
    if let Err(e) = store.put_meta(key, t.timestamp().to_string().as_bytes()) {
        tracing::warn!(key, "recording a scheduled run: {e}");
    }
}

/// Starts the runs that are due at `now`.
pub(crate) fn run_due(
    store: &Arc<dyn Store>,
    endpoint: &api::Endpoint,
    jobs: &[Job],
    now: DateTime<Utc>,
) {
    for job in jobs {
        let schedules = match schedules_of(&job.annotations) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(job = %job.name, "schedules: {e}");
                continue;
            }
        };
        for s in &schedules {
            let key = meta_key(&job.name, s);
            let Some(last) = read_last(&**store, &key) else {
                write_last(&**store, &key, now);
                continue;
            };
            let Some(due) = s.due(last, now) else {
                continue;
            };
            // Recorded first: a run that fails to start is not retried every second.
            write_last(&**store, &key, due);
            let Ok(name) = job.name.parse::<api::JobName>() else {
                continue;
            };
            let state = api::ApiState::new(store.clone(), name.location.clone(), endpoint.clone());
            match api::http::jobs::run_job(
                &state,
                &api::Caller::Admin,
                &name,
                RunJobRequest::default(),
            ) {
                Ok(op) => {
                    tracing::info!(job = %job.name, cron = %s.spec.cron, %due, operation = %op.name, "scheduled run")
                }
                Err(e) => {
                    tracing::warn!(job = %job.name, cron = %s.spec.cron, "scheduled run: {}", e.message)
                }
            }
        }
    }
}
