//! `ringcast-transcoder jobs …`: the operator's view of the queue and hands on it, over the
//! same Redis the workers use (the config's `[redis]`, `[queue]`). Each command prints its
//! result and the binary exits 0; an unknown id or a refused action is an error (exit 1) with
//! a message saying why.
//!
//! - `list [--dlq] [--running] [--json]`: dead letters (entry id, job, video, version, when,
//!   reason; newest first) and running jobs (delivered, not acknowledged: stream, entry, job,
//!   consumer, idle time, deliveries, state); both unless a filter is given.
//! - `show ID`: the job hash (every field, TTL) and the stream entries that carry the job.
//! - `requeue ID [--force]`, `drop ID`: a dead letter back to its stream, or gone
//!   (`ringcast_infra::queue::admin`). ID is a job id or a dead-letter entry id.
//! - `cancel ID`: asks the worker to cancel the job (`cancel_requested` in its hash).
//!
//! Rendering (tables, JSON) is pure and unit-tested here; the Redis side lives in
//! `ringcast_infra::queue::{inspect, admin}`.

use std::collections::BTreeMap;

use ringcast_infra::queue::admin::{AdminError, CancelRequest, DeadLetterRef};
use ringcast_infra::queue::inspect::{DeadLetter, PendingJob};
use ringcast_infra::queue::Queue;
use ringcast_proto::job::{now_ms, JobStatus};
use ringcast_proto::live::format_rfc3339_millis;
use ringcast_proto::stream_id::StreamId;
use serde_json::{json, Value};

/// Dead letters `list` reads at most.
const LIST_LIMIT: usize = 1000;

/// The `jobs` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum JobsCommand {
    /// Dead letters and running jobs (both unless --dlq or --running is given).
    List {
        /// Only the dead letters.
        #[arg(long)]
        dlq: bool,
        /// Only the running (delivered, unacknowledged) jobs.
        #[arg(long)]
        running: bool,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// A job's hash and the stream entries that carry it.
    Show {
        /// Job id, or a dead-letter entry id.
        id: String,
    },
    /// Put a dead-lettered job back on its stream (attempts start over, state queued).
    Requeue {
        /// Job id, or a dead-letter entry id.
        id: String,
        /// Requeue even when the video has a newer version (this one becomes current again).
        #[arg(long)]
        force: bool,
    },
    /// Delete a dead letter; its job stays failed (marked dropped) until its hash expires.
    Drop {
        /// Job id, or a dead-letter entry id.
        id: String,
    },
    /// Ask the worker running (or about to run) a job to cancel it.
    Cancel {
        /// Job id.
        id: String,
    },
}

/// Run `cmd` against `queue`; the text to print.
pub async fn run(cmd: &JobsCommand, queue: &Queue) -> Result<String, AdminError> {
    match cmd {
        JobsCommand::List { dlq, running, json } => {
            // No filter: both.
            let (want_dlq, want_running) = (*dlq || !*running, *running || !*dlq);
            let dead = if want_dlq {
                Some(queue.dead_letters(LIST_LIMIT).await?)
            } else {
                None
            };
            let running = if want_running {
                let mut out = Vec::new();
                for p in queue.pending_jobs().await? {
                    let status = match &p.job {
                        Some(j) => queue.job_status(&j.job_id).await?,
                        None => None,
                    };
                    out.push((p, status));
                }
                Some(out)
            } else {
                None
            };
            let now = now_ms();
            Ok(if *json {
                let mut v = serde_json::Map::new();
                if let Some(d) = &dead {
                    v.insert(
                        "dead_letters".into(),
                        d.iter().map(dead_letter_json).collect(),
                    );
                }
                if let Some(r) = &running {
                    v.insert(
                        "running".into(),
                        r.iter().map(|(p, s)| running_json(p, s.as_ref())).collect(),
                    );
                }
                format!("{}\n", Value::Object(v))
            } else {
                let mut out = String::new();
                if let Some(d) = &dead {
                    out.push_str(&dead_letters_table(d, now));
                }
                if let Some(r) = &running {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&running_table(r));
                }
                out
            })
        }
        JobsCommand::Show { id } => {
            let job_id = match DeadLetterRef::parse(id)? {
                DeadLetterRef::Job(j) => j,
                r @ DeadLetterRef::Entry(_) => match &queue.find_dead_letters(&r).await?[0].job {
                    Ok(job) => job.job_id.clone(),
                    Err(e) => return Err(AdminError::NotFound(format!("{r}: {e}"))),
                },
            };
            let hash = queue.job_hash(&job_id).await?;
            let entries = queue.find_entries(&job_id).await?;
            if hash.is_none() && entries.is_empty() {
                return Err(AdminError::NotFound(format!(
                    "no job {job_id} (unknown, or expired and trimmed)"
                )));
            }
            let (fields, ttl) = match hash {
                Some((map, ttl)) => (Some(map.into_iter().collect::<BTreeMap<_, _>>()), ttl),
                None => (None, None),
            };
            let entries: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "stream": e.stream,
                        "entry_id": e.entry_id,
                        "job": serde_json::from_str::<Value>(&e.payload)
                            .unwrap_or_else(|_| Value::String(e.payload.clone())),
                    })
                })
                .collect();
            let v = json!({
                "job_id": job_id,
                "hash": fields,
                "ttl_secs": ttl,
                "entries": entries,
            });
            Ok(format!(
                "{}\n",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            ))
        }
        JobsCommand::Requeue { id, force } => {
            let r = queue.requeue(&DeadLetterRef::parse(id)?, *force).await?;
            Ok(format!(
                "requeued job {} to {} as entry {} (removed dead letters: {})\n",
                r.job_id,
                r.stream,
                r.entry_id,
                r.removed.join(", ")
            ))
        }
        JobsCommand::Drop { id } => {
            let r = DeadLetterRef::parse(id)?;
            let removed = queue.drop_dead_letter(&r).await?;
            Ok(format!(
                "dropped {r} (dead letters: {})\n",
                removed.join(", ")
            ))
        }
        JobsCommand::Cancel { id } => match queue.request_cancel(id).await? {
            CancelRequest::Requested => Ok(format!("cancel requested for job {id}\n")),
            CancelRequest::AlreadyEnded(state) => Err(AdminError::Refused(format!(
                "job {id} has already ended ({state}); nothing to cancel"
            ))),
        },
    }
}

fn dead_letter_json(d: &DeadLetter) -> Value {
    let at = StreamId::parse(&d.entry_id).map(|i| i.ms);
    let job = d.job.as_ref().ok();
    json!({
        "entry_id": d.entry_id,
        "job_id": job.map(|j| j.job_id.clone()),
        "video_id": job.map(|j| j.video_id.clone()),
        "version": job.map(|j| j.version),
        "stream": d.stream,
        "source_entry_id": d.source_entry_id,
        "reason": d.reason,
        "payload_error": d.job.as_ref().err(),
        "dead_lettered_ms": at,
        "dead_lettered_at": at.map(format_rfc3339_millis),
    })
}

fn running_json(p: &PendingJob, status: Option<&JobStatus>) -> Value {
    json!({
        "stream": p.stream,
        "entry_id": p.entry_id,
        "job_id": p.job.as_ref().map(|j| j.job_id.clone()),
        "video_id": p.job.as_ref().map(|j| j.video_id.clone()),
        "version": p.job.as_ref().map(|j| j.version),
        "consumer": p.consumer,
        "idle_ms": p.idle_ms,
        "deliveries": p.deliveries,
        "state": status.map(|s| s.state.as_str()),
        "progress": status.map(|s| s.progress),
    })
}

/// The dead letters as a table, with a heading line.
pub fn dead_letters_table(dead: &[DeadLetter], now_ms: u64) -> String {
    let rows: Vec<Vec<String>> = dead
        .iter()
        .map(|d| {
            let job = d.job.as_ref().ok();
            let when = StreamId::parse(&d.entry_id).map_or_else(String::new, |i| {
                format!(
                    "{} ({} ago)",
                    format_rfc3339_millis(i.ms),
                    ago(i.age_ms(now_ms))
                )
            });
            vec![
                d.entry_id.clone(),
                job.map_or("-".into(), |j| j.job_id.clone()),
                job.map_or("-".into(), |j| j.video_id.clone()),
                job.map_or("-".into(), |j| j.version.to_string()),
                when,
                d.reason.clone(),
            ]
        })
        .collect();
    format!(
        "dead letters: {}\n{}",
        dead.len(),
        table(
            &[
                "ENTRY",
                "JOB",
                "VIDEO",
                "VERSION",
                "DEAD-LETTERED",
                "REASON"
            ],
            &rows
        )
    )
}

/// The running jobs as a table, with a heading line.
pub fn running_table(running: &[(PendingJob, Option<JobStatus>)]) -> String {
    let rows: Vec<Vec<String>> = running
        .iter()
        .map(|(p, s)| {
            let job = p.job.as_ref();
            vec![
                p.stream.clone(),
                p.entry_id.clone(),
                job.map_or("-".into(), |j| j.job_id.clone()),
                job.map_or("-".into(), |j| j.video_id.clone()),
                p.consumer.clone(),
                ago(p.idle_ms),
                p.deliveries.to_string(),
                s.as_ref().map_or("-".into(), |s| {
                    format!("{} {:.0}%", s.state.as_str(), s.progress)
                }),
            ]
        })
        .collect();
    format!(
        "running: {}\n{}",
        running.len(),
        table(
            &[
                "STREAM",
                "ENTRY",
                "JOB",
                "VIDEO",
                "CONSUMER",
                "IDLE",
                "DELIVERIES",
                "STATE"
            ],
            &rows
        )
    )
}

/// A duration in ms as `1.2s`, `3m04s`, `2h05m`, `3d04h`.
pub fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_proto::job::{JobState, Priority, TranscodeJob, JOB_SCHEMA_VERSION};

    fn job(id: &str) -> TranscodeJob {
        TranscodeJob {
            v: JOB_SCHEMA_VERSION,
            job_id: id.into(),
            video_id: format!("vid-{id}"),
            version: 2,
            source_key: String::new(),
            priority: Priority::Normal,
            created_ms: 0,
            live: None,
            container: None,
        }
    }

    #[test]
    fn dead_letters_render_as_a_table_and_json() {
        let dead = vec![
            DeadLetter {
                entry_id: "1000-0".into(),
                stream: "rc:jobs:normal".into(),
                source_entry_id: "900-0".into(),
                job: Ok(job("j1")),
                payload: job("j1").to_json(),
                reason: "not a readable video".into(),
            },
            DeadLetter {
                entry_id: "2000-1".into(),
                stream: "rc:jobs:high".into(),
                source_entry_id: "1900-0".into(),
                job: Err("entry has no `job` field".into()),
                payload: String::new(),
                reason: "undecodable".into(),
            },
        ];
        let text = dead_letters_table(&dead, 62_000);
        assert_eq!(
            text,
            "dead letters: 2\n\
             ENTRY   JOB  VIDEO   VERSION  DEAD-LETTERED                         REASON\n\
             1000-0  j1   vid-j1  2        1970-01-01T00:00:01.000Z (1m01s ago)  not a readable video\n\
             2000-1  -    -       -        1970-01-01T00:00:02.000Z (1m00s ago)  undecodable\n"
        );
        let v = dead_letter_json(&dead[0]);
        assert_eq!(v["job_id"], "j1");
        assert_eq!(v["version"], 2);
        assert_eq!(v["dead_lettered_ms"], 1000);
        assert_eq!(v["payload_error"], Value::Null);
        assert_eq!(dead_letter_json(&dead[1])["job_id"], Value::Null);
    }

    #[test]
    fn running_jobs_show_consumer_idle_and_state() {
        let p = PendingJob {
            stream: "rc:jobs:live".into(),
            entry_id: "5-0".into(),
            consumer: "host-1-live-0".into(),
            idle_ms: 4200,
            deliveries: 1,
            job: Some(job("j2")),
        };
        let status = JobStatus {
            job_id: "j2".into(),
            video_id: "vid-j2".into(),
            version: 2,
            state: JobState::Running,
            progress: 41.6,
            error: None,
            updated_ms: 0,
        };
        let text = running_table(&[(p.clone(), Some(status.clone()))]);
        assert!(text.starts_with("running: 1\nSTREAM"), "{text}");
        assert!(
            text.contains(
                "rc:jobs:live  5-0    j2   vid-j2  host-1-live-0  4.2s  1           running 42%\n"
            ),
            "{text}"
        );
        let v = running_json(&p, Some(&status));
        assert_eq!(v["consumer"], "host-1-live-0");
        assert_eq!(v["state"], "running");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(ago(1234), "1.2s");
        assert_eq!(ago(61_000), "1m01s");
        assert_eq!(ago(3_600_000 + 5 * 60_000), "1h05m");
        assert_eq!(ago(2 * 86_400_000 + 3 * 3_600_000), "2d03h");
    }
}
