//! The viewer swarm: N players spread over monoio threads (one runtime per thread, like the
//! servers), started over a ramp, stopped by a deadline. The main thread prints a progress
//! line once a second and merges the threads' measurements at the end.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::player::{self, PlayerConfig, Rendition};
use crate::stats::{Live, Stats, Summary};
use crate::url::split_http_url;

/// A swarm run.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub url: String,
    pub viewers: usize,
    pub duration: Duration,
    pub ramp: Duration,
    pub threads: usize,
    pub rendition: Rendition,
    pub max_buffer: f64,
    pub request_timeout: Duration,
    /// Print the progress line to stderr.
    pub progress: bool,
    /// Static herd mode: `(playlist path, part path, interval)` instead of playing.
    pub herd: Option<(String, String, Duration)>,
}

/// Raise the open-file limit to the hard limit: every viewer holds a socket.
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct; no memory is shared.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Run the swarm to its deadline and return the merged summary.
pub fn run(cfg: &SwarmConfig) -> anyhow::Result<Summary> {
    raise_nofile();
    let (addr, master) = split_http_url(&cfg.url)?;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let live = Arc::new(Live::default());
    let threads = cfg.threads.max(1);
    let mut handles = Vec::new();
    for t in 0..threads {
        let pc = PlayerConfig {
            addr,
            master: master.clone(),
            deadline,
            rendition: cfg.rendition,
            max_buffer: cfg.max_buffer,
            request_timeout: cfg.request_timeout,
            herd: cfg
                .herd
                .as_ref()
                .map(|(playlist, part, interval)| player::Herd {
                    playlist: playlist.clone(),
                    part: part.clone(),
                    interval: *interval,
                    epoch: start,
                }),
        };
        // Viewers t, t+threads, t+2*threads, … live on thread t.
        let mine: Vec<usize> = (t..cfg.viewers).step_by(threads).collect();
        let (live, ramp, n) = (Arc::clone(&live), cfg.ramp, cfg.viewers.max(1));
        let h = std::thread::Builder::new()
            .name(format!("viewers-{t}"))
            .spawn(move || -> anyhow::Result<Stats> {
                let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                    .enable_timer()
                    .build()
                    .context("build monoio runtime")?;
                let stats = Rc::new(RefCell::new(Stats::new(start)));
                let s2 = Rc::clone(&stats);
                rt.block_on(async move {
                    let pc = Rc::new(pc);
                    let mut tasks = Vec::new();
                    for i in mine {
                        let delay = ramp.mul_f64(i as f64 / n as f64);
                        let (pc, st, lv) = (Rc::clone(&pc), Rc::clone(&s2), Arc::clone(&live));
                        tasks.push(monoio::spawn(async move {
                            monoio::time::sleep(delay).await;
                            if Instant::now() < pc.deadline {
                                st.borrow_mut().viewer_active(1);
                                player::run(pc, Rc::clone(&st), lv, i as u64).await;
                                st.borrow_mut().viewer_active(-1);
                            }
                        }));
                    }
                    for t in tasks {
                        t.await;
                    }
                });
                let stats = Rc::try_unwrap(stats)
                    .map_err(|_| anyhow::anyhow!("viewer tasks still hold their stats"))?
                    .into_inner();
                Ok(stats)
            })
            .context("spawn viewer thread")?;
        handles.push(h);
    }
    if cfg.progress {
        crate::report::progress_until_done(&handles, start, |el| {
            format!(
                "{:>5.1}s viewers {:>6} req {:>9} ({:>7.0}/s) {:>8.1} MB/s errors {} stalls {}",
                el,
                live.viewers.load(Ordering::Relaxed),
                live.requests.load(Ordering::Relaxed),
                live.requests.load(Ordering::Relaxed) as f64 / el,
                live.bytes.load(Ordering::Relaxed) as f64 / el / 1e6,
                live.errors.load(Ordering::Relaxed),
                live.stalls.load(Ordering::Relaxed),
            )
        });
    }
    let mut total = Stats::new(start);
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a viewer thread panicked"))??;
        total.merge(&s);
    }
    Ok(total.summary(start.elapsed()))
}
