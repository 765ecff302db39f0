//! Drives a scenario: paces starts open-loop, fires its timers, feeds it
//! what the transport receives, and stops after the sending window plus a
//! drain grace period, whatever the server does.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::pacing::Pacer;
use crate::report::Metrics;
use crate::scenario::Scenario;
use crate::transport::{Sink, Wire};

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the runner measured besides the scenario's own metrics.
#[derive(Debug, Clone, Copy)]
pub struct RunStats {
    /// From the first scheduled start to the end of the run.
    pub wall: Duration,
    pub max_pacing_lag: Duration,
}

struct Feed<S> {
    scenario: Rc<RefCell<S>>,
    wire: Rc<Cell<Option<Rc<dyn Wire>>>>,
    /// Set once every operation has been started.
    draining: Rc<Cell<bool>>,
    /// Wakes the runner when, while draining, nothing is left in flight.
    idle: Rc<Notify>,
}

impl<S: Scenario> Feed<S> {
    fn with_wire(&self, f: impl FnOnce(&mut S, &dyn Wire)) {
        let w = self.wire.take();
        if let Some(w) = &w {
            f(&mut self.scenario.borrow_mut(), &**w);
        }
        self.wire.set(w);
        self.check_idle();
    }

    fn check_idle(&self) {
        if self.draining.get() && self.scenario.borrow().in_flight() == 0 {
            self.idle.notify_one();
        }
    }
}

impl<S: Scenario> Sink for Feed<S> {
    fn deliver(&self, source: usize, msg: &[u8]) {
        self.with_wire(|s, w| s.on_message(source, msg, now(), w));
    }
    fn malformed(&self, _source: usize) {
        self.scenario.borrow_mut().metrics_mut().malformed += 1;
    }
    fn broken(&self, source: usize) {
        self.scenario.borrow_mut().on_broken(source);
        self.check_idle();
    }
}

/// A scenario started on a network: reader tasks running, a wire to send
/// on. [`Session::drive`] runs one paced phase; a scenario with phases
/// (`calls`: register, then call) drives several on the same sockets.
pub struct Session<S> {
    scenario: Rc<RefCell<S>>,
    wire: Rc<dyn Wire>,
    wire_cell: Rc<Cell<Option<Rc<dyn Wire>>>>,
    draining: Rc<Cell<bool>>,
    idle: Rc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<S: Scenario + 'static> Session<S> {
    /// Starts the transport's tasks feeding `scenario`. Must be called
    /// inside a `LocalSet`.
    pub fn start(scenario: S, net: crate::transport::Net) -> Self {
        let scenario = Rc::new(RefCell::new(scenario));
        let wire_cell: Rc<Cell<Option<Rc<dyn Wire>>>> = Rc::new(Cell::new(None));
        let draining = Rc::new(Cell::new(false));
        let idle = Rc::new(Notify::new());
        let feed = Rc::new(Feed {
            scenario: Rc::clone(&scenario),
            wire: Rc::clone(&wire_cell),
            draining: Rc::clone(&draining),
            idle: Rc::clone(&idle),
        });
        let (wire, tasks) = net.start(feed);
        wire_cell.set(Some(Rc::clone(&wire)));
        Session {
            scenario,
            wire,
            wire_cell,
            draining,
            idle,
            tasks,
        }
    }

    /// Runs `f` on the scenario between phases.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.scenario.borrow_mut())
    }

    /// Starts operations at `pacer`'s schedule, then waits up to `grace`
    /// for what is in flight.
    pub async fn drive(&self, pacer: Pacer, grace: Duration) -> RunStats {
        let scenario = &self.scenario;
        let wire = &self.wire;
        self.draining.set(false);
        let start = now();
        let end_send = start + pacer.duration();
        let hard_end = end_send + grace;
        let mut started = 0u64;
        let mut max_lag = Duration::ZERO;
        loop {
            let t = now();
            let due = pacer.due(t.saturating_duration_since(start));
            {
                let mut s = scenario.borrow_mut();
                while started < due {
                    let lag = t.saturating_duration_since(start + pacer.scheduled_at(started));
                    max_lag = max_lag.max(lag);
                    s.start(started, t, &**wire);
                    started += 1;
                }
                s.on_timers(t, &**wire);
            }
            let all_started = pacer.done(started);
            self.draining.set(all_started);
            let (in_flight, next_timer) = {
                let s = scenario.borrow();
                (s.in_flight(), s.next_deadline())
            };
            if (all_started && in_flight == 0) || t >= hard_end {
                break;
            }
            let mut wake = hard_end;
            if !all_started {
                wake = wake.min(start + pacer.scheduled_at(started));
            }
            if let Some(n) = next_timer {
                wake = wake.min(n);
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => {}
                () = self.idle.notified(), if all_started => {}
            }
        }
        self.draining.set(false);
        RunStats {
            wall: now().saturating_duration_since(start),
            max_pacing_lag: max_lag,
        }
    }

    /// Stops the transport and ends the scenario (`finish`: what is still
    /// in flight fails as unfinished); returns it.
    pub fn close(self) -> Rc<RefCell<S>> {
        for t in &self.tasks {
            t.abort();
        }
        self.wire_cell.set(None);
        drop(self.wire);
        self.scenario.borrow_mut().finish();
        self.scenario
    }
}

/// Runs `scenario` over `net` at `pacer`'s schedule, then waits up to
/// `grace` for what is in flight. Must be called inside a `LocalSet`.
pub async fn run<S: Scenario + 'static>(
    scenario: S,
    net: crate::transport::Net,
    pacer: Pacer,
    grace: Duration,
) -> (Metrics, RunStats) {
    let session = Session::start(scenario, net);
    let stats = session.drive(pacer, grace).await;
    let scenario = session.close();
    let metrics = scenario.borrow().metrics().clone();
    (metrics, stats)
}
