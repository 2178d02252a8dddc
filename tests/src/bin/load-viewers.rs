//! Load generator for benchmarks (never part of `make test`): simulated viewers
//! against a local server.
//!   sse:   N viewers hold the show's event stream open while a driver comments once a
//!          second and reacts; prints how many got each comment and the delivery
//!          latency (server time of the comment to arrival) p50/p99.
//!   react: V viewers (spread over several 127.0.0.x source addresses) send reactions
//!          at a target rate; prints the accepted rate, failures by kind (a status, a
//!          timeout, a refused connection: any fails the run), latency p50/p99, and each
//!          viewer's last accepted reaction tallied (to compare with the server's counts).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The server.
    #[arg(long)]
    base: String,
    /// The live show.
    #[arg(long)]
    stream: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Sse {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Source addresses 127.0.0.2 … (connections spread over them).
        #[arg(long, default_value_t = 4)]
        sources: u8,
    },
    React {
        #[arg(long, default_value_t = 5_000)]
        viewers: usize,
        /// Reactions a second, all viewers together.
        #[arg(long, default_value_t = 5_000)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        sources: u8,
    },
}

fn source(i: usize, sources: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + (i % sources.max(1) as usize) as u8])
}

fn client(from: IpAddr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(from)
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Failed requests counted by kind: the status answered, or what broke the request.
#[derive(Default)]
struct Failures(std::sync::Mutex<std::collections::BTreeMap<String, u64>>);

impl Failures {
    fn add(&self, kind: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(kind)
            .or_default() += 1;
    }

    /// A request that did not get `want`.
    fn add_outcome(&self, r: &reqwest::Result<reqwest::Response>) {
        self.add(match r {
            Ok(resp) => format!("answered {}", resp.status().as_u16()),
            Err(e) if e.is_timeout() => "timed out".to_owned(),
            Err(e) if e.is_connect() => "connection refused or failed".to_owned(),
            Err(e) => format!("broken off ({e})"),
        });
    }

    fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }

    fn said(&self) -> String {
        let m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.is_empty() {
            return "none".to_owned();
        }
        m.iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn new_viewer(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let v: serde_json::Value = http
        .post(format!("{base}/api/viewers"))
        .json(&serde_json::json!({ "display_name": "Load" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["token"].as_str().context("a token")?.to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Sse {
            clients,
            seconds,
            sources,
        } => sse(&args.base, &args.stream, clients, seconds, sources).await,
        Mode::React {
            viewers,
            rate,
            seconds,
            sources,
        } => react(&args.base, &args.stream, viewers, rate, seconds, sources).await,
    }
}

async fn sse(
    base: &str,
    stream: &str,
    clients: usize,
    seconds: u64,
    sources: u8,
) -> anyhow::Result<()> {
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let connected = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Failures::default());
    let received = Arc::new(AtomicU64::new(0));
    let url = format!("{base}/api/streams/{stream}/events");
    let http: Vec<reqwest::Client> = (0..sources as usize)
        .map(|i| client(source(i, sources)))
        .collect::<Result<_, _>>()?;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (http, url) = (http[i % http.len()].clone(), url.clone());
        let (latencies, connected, received, failures) = (
            latencies.clone(),
            connected.clone(),
            received.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = http
                .get(&url)
                .timeout(Duration::from_secs(3600))
                .send()
                .await;
            // Connected means the event stream was answered 200, nothing less.
            let resp = match r {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => resp,
                other => {
                    failures.add_outcome(&other);
                    return;
                }
            };
            connected.fetch_add(1, Ordering::Relaxed);
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if !block.contains("event: comment\n") {
                        continue;
                    }
                    let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                        continue;
                    };
                    if let Some(at) = v["comment"]["created_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    {
                        let ms = (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                            .num_microseconds()
                            .unwrap_or(0) as f64
                            / 1000.0;
                        latencies.lock().unwrap().push(ms);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (connected.load(Ordering::Relaxed) as usize) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "sse: {} of {clients} viewers connected; failed: {}",
        connected.load(Ordering::Relaxed),
        failures.said()
    );
    if (connected.load(Ordering::Relaxed) as usize) < clients {
        bail!(
            "only {} of {clients} viewers connected (failed: {}): no figure",
            connected.load(Ordering::Relaxed),
            failures.said()
        );
    }
    // The driver: a comment a second, and reactions that change the counts.
    let driver = client(IpAddr::from([127, 0, 0, 1]))?;
    let token = new_viewer(&driver, base).await?;
    let mut sent = 0u64;
    for s in 0..seconds {
        driver
            .post(format!("{base}/api/streams/{stream}/comments"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "text": format!("tick {s}") }))
            .send()
            .await?
            .error_for_status()?;
        sent += 1;
        let reaction = if s % 2 == 0 { "like" } else { "none" };
        let _ = driver
            .put(format!("{base}/api/streams/{stream}/reaction"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "reaction": reaction }))
            .send()
            .await;
        println!("sse: marker {s}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    let expected = sent * connected.load(Ordering::Relaxed);
    println!(
        "sse: comments delivered {} of {expected} ({:.2} %); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        received.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed) as f64 * 100.0 / expected.max(1) as f64,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN)
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

async fn react(
    base: &str,
    stream: &str,
    viewers: usize,
    rate: u64,
    seconds: u64,
    sources: u8,
) -> anyhow::Result<()> {
    let http: Vec<reqwest::Client> = (0..sources as usize)
        .map(|i| client(source(i, sources)))
        .collect::<Result<_, _>>()?;
    // Viewers, made 100 at a time.
    let mut tokens = Vec::with_capacity(viewers);
    for chunk in (0..viewers).collect::<Vec<_>>().chunks(100) {
        let made = futures_util::future::join_all(
            chunk
                .iter()
                .map(|&i| new_viewer(&http[i % http.len()], base)),
        )
        .await;
        for t in made {
            tokens.push(t?);
        }
    }
    println!("react: {viewers} viewers over {sources} source addresses");
    let tokens = Arc::new(tokens);
    // Each viewer's last accepted reaction: 0 none, 1 like, 2 dislike.
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..viewers).map(|_| AtomicU64::new(0)).collect());
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(Failures::default());
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::with_capacity(
        (rate * seconds) as usize,
    )));
    let started = Instant::now();
    let total = rate * seconds;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    let mut tasks = Vec::new();
    for n in 0..total {
        // Paced: request n leaves at n / rate seconds.
        let at = started + Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(at.into()).await;
        let permit = in_flight.clone().acquire_owned().await?;
        let v = (n as usize * 7919) % viewers;
        let choice = (n / viewers as u64 + v as u64) % 3;
        let reaction = ["none", "like", "dislike"][choice as usize];
        let (http, tokens, last) = (http[v % http.len()].clone(), tokens.clone(), last.clone());
        let (ok, failed, latencies) = (ok.clone(), failed.clone(), latencies.clone());
        let url = format!("{base}/api/streams/{stream}/reaction");
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = http
                .put(&url)
                .bearer_auth(&tokens[v])
                .json(&serde_json::json!({ "reaction": reaction }))
                .send()
                .await;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            match &r {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    last[v].store(choice, Ordering::Relaxed);
                    latencies.lock().unwrap().push(ms);
                }
                // A 429 is a failure too: the bench's limits are set above its rate.
                _ => failed.add_outcome(&r),
            }
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    let likes = last
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) == 1)
        .count();
    let dislikes = last
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) == 2)
        .count();
    println!(
        "react: {} accepted in {elapsed:.1} s = {:.0}/s (target {rate}/s); failed: {}; p50 {:.1} ms, p99 {:.1} ms",
        ok.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        failed.said(),
        percentile(&l, 0.5),
        percentile(&l, 0.99)
    );
    println!(
        "react: last accepted reaction per viewer, as this client saw them: likes={likes} dislikes={dislikes}"
    );
    if failed.total() > 0 {
        bail!(
            "{} reactions failed ({}): no figure",
            failed.total(),
            failed.said()
        );
    }
    Ok(())
}
