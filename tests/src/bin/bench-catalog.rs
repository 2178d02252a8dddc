//! Prepares the catalog benchmark (`make bench`): fills a database with shows of mixed
//! statuses, then writes a wrk script whose requests walk the three catalog sections
//! from many cursors. Talks to the database only; wrk measures the running server.

use anyhow::Context;
use chrono::Utc;
use chrono::{DateTime, TimeDelta};
use clap::Parser;
use live_core::lifecycle::LiveIngest;
use live_core::{EndReason, Lifecycle};
use live_server::db::{Db, new_id, to_ms};
use live_server::store::{Cursor, LifecycleColumns};
use rand::Rng;
use std::fmt::Write as _;

#[derive(Parser)]
struct Args {
    /// Database to fill (migrated first).
    #[arg(long)]
    database_url: String,
    /// How many shows.
    #[arg(long, default_value_t = 100_000)]
    streams: usize,
    /// Cursors per section in the wrk script.
    #[arg(long, default_value_t = 300)]
    cursors: usize,
    /// Where to write the wrk script.
    #[arg(long)]
    lua: std::path::PathBuf,
}

const SELLERS: usize = 200;
const BATCH: usize = 400;
const COLUMNS: &str = "id, vendor_id, title, description, status, scheduled_at, started_at, \
    ended_at, end_reason, created_at, updated_at, ingest_state, ingest_since, \
    ingest_last_update, replay_state, stream_url, viewer_count, like_count";
const PER_ROW: usize = 18;

/// A show as the server would store it: its lifecycle (built with the lifecycle's own
/// types, stored through the server's own mapping), its time, its replay's state.
struct Row {
    lifecycle: Lifecycle,
    scheduled_at: i64,
    replay_state: Option<&'static str>,
}

fn random_row(rng: &mut impl Rng, now: DateTime<Utc>) -> Row {
    const HOUR: i64 = 3_600_000;
    let roll = rng.random_range(0..100);
    let ago = |ms: i64| now - TimeDelta::milliseconds(ms);
    let past = |rng: &mut _| ago(Rng::random_range(rng, HOUR..365 * 24 * HOUR));
    match roll {
        // Live, its ingest connected and heard from just now.
        0..10 => {
            let started = ago(rng.random_range(0..3 * HOUR));
            Row {
                lifecycle: Lifecycle::Live {
                    started_at: started,
                    ingest: LiveIngest::Connected { last_heard: now },
                },
                scheduled_at: to_ms(started),
                replay_state: None,
            }
        }
        // A few are late, some over an hour (those are not listed).
        10..40 => Row {
            lifecycle: Lifecycle::Scheduled {
                waiting_since: None,
            },
            scheduled_at: to_ms(now) + rng.random_range(-2 * HOUR..365 * 24 * HOUR),
            replay_state: None,
        },
        40..85 => {
            let started = past(rng);
            Row {
                lifecycle: Lifecycle::Archived {
                    started_at: Some(started),
                    ended_at: started
                        + TimeDelta::milliseconds(rng.random_range(HOUR / 6..2 * HOUR)),
                    reason: EndReason::SellerEnded,
                },
                scheduled_at: to_ms(started),
                replay_state: Some("ready"),
            }
        }
        85..93 => {
            let started = past(rng);
            Row {
                lifecycle: Lifecycle::Ended {
                    started_at: Some(started),
                    ended_at: started + TimeDelta::hours(1),
                    reason: EndReason::Discarded,
                },
                scheduled_at: to_ms(started),
                replay_state: None,
            }
        }
        _ => {
            let at = past(rng);
            Row {
                lifecycle: Lifecycle::Cancelled { at },
                scheduled_at: to_ms(at),
                replay_state: None,
            }
        }
    }
}

async fn seed(db: &Db, n: usize) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut sellers = Vec::new();
    for i in 0..SELLERS {
        let (id, _) = live_server::auth::create_seller(db, &format!("Seller {i}")).await?;
        sellers.push(id);
    }
    let mut rng = rand::rng();
    let mut done = 0;
    while done < n {
        let rows = BATCH.min(n - done);
        let mut sql = format!("insert into live_streams ({COLUMNS}) values ");
        for r in 0..rows {
            let b = r * PER_ROW;
            let params: Vec<String> = (1..=PER_ROW).map(|k| format!("${}", b + k)).collect();
            let _ = write!(
                sql,
                "{}({})",
                if r == 0 { "" } else { "," },
                params.join(",")
            );
        }
        let mut q = sqlx::query(&sql);
        for _ in 0..rows {
            let row = random_row(&mut rng, now);
            let id = new_id();
            let c = LifecycleColumns::of(&row.lifecycle);
            q = q
                .bind(id.clone())
                .bind(sellers[rng.random_range(0..SELLERS)].clone())
                .bind(format!("Show {done} — spring collection"))
                .bind("Fresh arrivals, live prices, questions answered.")
                .bind(c.status)
                .bind(row.scheduled_at)
                .bind(c.started_at)
                .bind(c.ended_at)
                .bind(c.end_reason)
                .bind(row.scheduled_at - 86_400_000)
                .bind(to_ms(now))
                .bind(c.ingest_state)
                .bind(c.ingest_since)
                .bind(c.ingest_last_update)
                .bind(row.replay_state)
                .bind(format!("http://127.0.0.1:8088/hls/{id}.m3u8"))
                .bind(rng.random_range(0..500_i64))
                .bind(rng.random_range(0..5_000_i64));
        }
        q.execute(&db.pool)
            .await
            .context("insert a batch of shows")?;
        done += rows;
    }
    Ok(())
}

/// Request paths for one section: the first page and pages from random cursors.
async fn section_paths(
    db: &Db,
    section: &str,
    cursors: usize,
    out: &mut Vec<String>,
) -> anyhow::Result<()> {
    let now = to_ms(Utc::now());
    let (filter, key, order) = match section {
        "live" => ("status = 'live'".to_owned(), "started_at", "desc"),
        "upcoming" => (
            format!(
                "status = 'scheduled' and scheduled_at >= {}",
                now - 3_600_000
            ),
            "scheduled_at",
            "asc",
        ),
        _ => (
            "status = 'archived' and (replay_state is null or replay_state <> 'failed')".to_owned(),
            "ended_at",
            "desc",
        ),
    };
    let total: i64 =
        sqlx::query_scalar(&format!("select count(*) from live_streams where {filter}"))
            .fetch_one(&db.pool)
            .await?;
    out.push(format!("/api/streams?section={section}&limit=20"));
    let mut rng = rand::rng();
    for _ in 0..cursors {
        let offset = rng.random_range(0..total.max(1));
        let row: Option<(i64, String)> = sqlx::query_as(&format!(
            "select {key}, id from live_streams where {filter} order by {key} {order}, id {order} limit 1 offset {offset}"
        ))
        .fetch_optional(&db.pool)
        .await?;
        if let Some((k, id)) = row {
            out.push(format!(
                "/api/streams?section={section}&limit=20&cursor={}",
                Cursor { key: k, id }.encode()
            ));
        }
    }
    println!("{section}: {total} shows listed, {cursors} cursors");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = Db::connect(&args.database_url).await?;
    let t = std::time::Instant::now();
    seed(&db, args.streams).await?;
    println!(
        "seeded {} shows in {:.1} s",
        args.streams,
        t.elapsed().as_secs_f64()
    );
    let mut paths = Vec::new();
    for section in ["live", "upcoming", "recent"] {
        section_paths(&db, section, args.cursors, &mut paths).await?;
    }
    let mut lua = String::from("-- generated by bench-catalog\nlocal paths = {\n");
    for p in &paths {
        let _ = writeln!(lua, "  \"{p}\",");
    }
    lua.push_str(
        "}\nlocal i = math.random(#paths)\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
    );
    std::fs::write(&args.lua, lua)?;
    Ok(())
}
