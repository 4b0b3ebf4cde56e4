//! The progress bar of `tessera sim` and `tessera compare`, drawn from the simulator's counters.

/// A progress bar on stderr for `sim` and `compare`: shown only on a terminal, not with
/// `--quiet`, and only once the work has taken a second, so short runs and pipes stay clean.
pub struct ProgressDisplay {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressDisplay {
    pub fn start(quiet: bool) -> (Option<std::sync::Arc<tessera_sim::progress::Progress>>, ProgressDisplay) {
        use std::io::IsTerminal;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return (None, ProgressDisplay { stop, thread: None });
        }
        let progress = Arc::new(tessera_sim::progress::Progress::default());
        // The bar lives in this slot: the runner's hook takes it out and clears it, on the
        // runner's thread, before the summary table is printed to the same terminal.
        let slot: Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>> = Arc::default();
        let (hook_slot, hook_stop) = (slot.clone(), stop.clone());
        progress.on_output(move || {
            hook_stop.store(true, Ordering::Relaxed);
            if let Some(bar) = hook_slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                bar.finish_and_clear();
            }
        });
        let (p, s) = (progress.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let tick = std::time::Duration::from_millis(200);
            while started.elapsed() < std::time::Duration::from_secs(1) {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(tick);
            }
            {
                let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let bar = indicatif::ProgressBar::new(0);
                // The run counts are in the message, not `{pos}/{len}`: indicatif draws on each
                // setter, and a frame between two setters showed one tick's position beside the
                // last tick's count of runs left.
                bar.set_style(indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}").expect("a valid template").progress_chars("=> "));
                *slot = Some(bar);
            }
            // The rate is over the last two seconds (at first, the run so far): the engine
            // publishes its counters every few thousand events, so two ticks 200 ms apart often
            // see the same count, and a rate between them would flicker to 0.
            let window = std::time::Duration::from_secs(2);
            let mut samples: std::collections::VecDeque<(std::time::Instant, u64)> = std::collections::VecDeque::from([(started, 0)]);
            while !s.load(Ordering::Relaxed) {
                let snap = p.snapshot();
                let now = std::time::Instant::now();
                samples.push_back((now, snap.events));
                while samples.len() > 2 && now.duration_since(samples[1].0) >= window {
                    samples.pop_front();
                }
                let all_done = snap.jobs_total > 0 && snap.jobs_done >= snap.jobs_total;
                // Once every job is done, outputs are being written: the mean rate says more than 0.
                let rate = if all_done {
                    snap.events as f64 / started.elapsed().as_secs_f64()
                } else {
                    let (t0, e0) = samples[0];
                    let dt = now.duration_since(t0).as_secs_f64();
                    if dt > 0.0 { (snap.events - e0) as f64 / dt } else { 0.0 }
                };
                {
                    let slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(bar) = slot.as_ref() else { break };
                    bar.set_message(format!(
                        "{}/{} runs ({} left) | simulated {:.1} h | jobs done {}/{} | {:.2} M events/s",
                        snap.runs_done,
                        snap.runs_total,
                        snap.runs_total - snap.runs_done,
                        snap.sim_time_s / 3600.0,
                        snap.jobs_done,
                        snap.jobs_total,
                        rate / 1e6
                    ));
                    bar.set_length(snap.runs_total);
                    bar.set_position(snap.runs_done);
                }
                std::thread::sleep(tick);
            }
            if let Some(bar) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                bar.finish_and_clear();
            }
        });
        (Some(progress), ProgressDisplay { stop, thread: Some(thread) })
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
