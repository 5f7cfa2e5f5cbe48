//! Reconciliation capacity (a benchmark, not a test; not part of the product): how late a lost
//! final callback is noticed when verifications start at `--rate` per second and `--lost` of
//! their final callbacks never arrive.
//!
//! It drives the real schedule on a real Redis (keys under a random prefix, deleted at the end):
//! every start schedules its first check `--interval` seconds out, as a start does; a call lasts
//! 5–40 s; an ordinary end goes through the same `Unschedule` queue as a webhook's end; the
//! instance's loop runs the real [`pass`] every 500 ms. Only the provider is simulated: a check
//! waits `--provider-ms`, then finds the call over (its end becomes the verification's end) or
//! still going (checked again `--interval` later). Reported: how long after its call ended each
//! lost one was ended (the docs promise ≤ 30 s), and the checks run.
//!
//!   cargo run --release --example reconcile_capacity -- [--rate 300] [--lost 0.05]
//!       [--seconds 60] [--interval 15] [--provider-ms 150] [--redis redis://127.0.0.1:6379]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callverify::ids::{TenantId, UserId, VerificationId};
use callverify::store::Store;
use callverify::verification::reconcile::{Batch, Checked, pass};
use callverify::verification::unschedule::Unschedule;
use rand::RngExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    rate: f64,
    lost: f64,
    seconds: u64,
    interval_ms: u64,
    provider_ms: u64,
    redis: String,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        rate: 300.0,
        lost: 0.05,
        seconds: 60,
        interval_ms: 15_000,
        provider_ms: 150,
        redis: "redis://127.0.0.1:6379".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).ok_or("every option takes a value")?;
        match pair[0].as_str() {
            "--rate" => o.rate = value.parse()?,
            "--lost" => o.lost = value.parse()?,
            "--seconds" => o.seconds = value.parse()?,
            "--interval" => o.interval_ms = value.parse::<u64>()? * 1000,
            "--provider-ms" => o.provider_ms = value.parse()?,
            "--redis" => o.redis.clone_from(value),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// A simulated call: when it ends, and whether its final callback is lost.
struct Call {
    ends_at: Instant,
    lost: bool,
}

#[derive(Default)]
struct Figures {
    /// For each lost final callback: how long after its call ended the check ended it.
    lost_ended_after: Vec<Duration>,
    checks: u64,
    checks_of_ended: u64,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let o = options()?;
    let prefix = format!("cvbench-{:016x}", rand::rng().random::<u64>());
    let overlay = format!("[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n", o.redis);
    let config = callverify::config::Config::from_toml_overlay(&overlay)?;
    let store = Store::open(&config.redis).await?;
    let unschedule = Unschedule::start(store.clone());
    let calls: Arc<Mutex<HashMap<String, Call>>> = Arc::default();
    let figures: Arc<Mutex<Figures>> = Arc::default();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);

    // The reconciler: the real pass, a simulated provider.
    let reconciler = {
        let (store, calls, figures, stop) = (store.clone(), calls.clone(), figures.clone(), stop);
        let (interval_ms, provider) = (o.interval_ms, Duration::from_millis(o.provider_ms));
        tokio::spawn(async move {
            let mut batch = Batch::default();
            while !*stop.borrow() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let check = |id: String| {
                    let (store, calls, figures) = (store.clone(), calls.clone(), figures.clone());
                    async move {
                        tokio::time::sleep(provider).await;
                        let vid = VerificationId::parse(&id).expect("generated");
                        let call = calls.lock().unwrap().get(&id).map(|c| (c.ends_at, c.lost));
                        figures.lock().unwrap().checks += 1;
                        match call {
                            Some((ends_at, _)) if ends_at > Instant::now() => {
                                store
                                    .schedule_reconcile(&vid, interval_ms, false)
                                    .await
                                    .ok();
                                Checked::Open
                            }
                            Some((ends_at, lost)) => {
                                calls.lock().unwrap().remove(&id);
                                if lost {
                                    figures
                                        .lock()
                                        .unwrap()
                                        .lost_ended_after
                                        .push(ends_at.elapsed());
                                }
                                store.unschedule_reconcile(&id).await.ok();
                                Checked::Ended
                            }
                            None => {
                                figures.lock().unwrap().checks_of_ended += 1;
                                store.unschedule_reconcile(&id).await.ok();
                                Checked::Done
                            }
                        }
                    }
                };
                if let Err(e) = pass(&store, &mut batch, &stop, check).await {
                    eprintln!("pass: {e}");
                }
            }
        })
    };

    // Ordinary ends: at its call's end, a verification whose final callback arrives ends.
    let ender = {
        let (calls, unschedule) = (calls.clone(), unschedule.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = Instant::now();
                let mut calls = calls.lock().unwrap();
                let over: Vec<String> = calls
                    .iter()
                    .filter(|(_, c)| !c.lost && c.ends_at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in over {
                    calls.remove(&id);
                    unschedule.ended(&VerificationId::parse(&id).expect("generated"));
                }
            }
        })
    };

    // Starts at `rate` per second for `seconds`.
    let tenant = TenantId::parse("contoso")?;
    let started = Instant::now();
    let total = (o.rate * o.seconds as f64) as u64;
    let mut lost_total = 0;
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / o.rate);
        tokio::time::sleep_until(due.into()).await;
        let id = VerificationId::generate(&tenant, &UserId::parse(&format!("u{n}"))?);
        store.schedule_reconcile(&id, o.interval_ms, false).await?;
        let (secs, lost) = {
            let mut rng = rand::rng();
            (rng.random_range(5.0..40.0), rng.random_bool(o.lost))
        };
        lost_total += u64::from(lost);
        let call = Call {
            ends_at: Instant::now() + Duration::from_secs_f64(secs),
            lost,
        };
        calls.lock().unwrap().insert(id.as_str().to_owned(), call);
    }
    // Until every lost one is ended (or clearly never will be).
    let give_up = Instant::now() + Duration::from_secs(40 + 2 * o.interval_ms / 1000);
    while figures.lock().unwrap().lost_ended_after.len() < lost_total as usize
        && Instant::now() < give_up
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(true);
    ender.abort();
    let _ = reconciler.await;

    let figures = std::mem::take(&mut *figures.lock().unwrap());
    let mut late = figures.lost_ended_after.clone();
    late.sort();
    let pick =
        |q: f64| late.get(((late.len() as f64 * q) as usize).min(late.len().saturating_sub(1)));
    println!(
        "{total} starts at {}/s, {lost_total} lost final callbacks ({} ended by a check)",
        o.rate,
        late.len()
    );
    println!(
        "lost one ended after its call: median {:?}, p99 {:?}, max {:?} (promise: <= 30 s)",
        pick(0.5),
        pick(0.99),
        late.last()
    );
    println!(
        "checks run: {} ({} of already-ended verifications)",
        figures.checks, figures.checks_of_ended
    );
    // Clean up the prefix's keys.
    let key = format!("{prefix}:{{recon}}:due");
    let client = redis::Client::open(o.redis.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
    Ok(())
}
