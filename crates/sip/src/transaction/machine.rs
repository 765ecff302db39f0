//! The four transaction state machines behind one enum.

use std::time::Instant;

use super::State;
use super::client::{ClientInvite, ClientNonInvite};
use super::server::{ServerInvite, ServerNonInvite};
use super::timers::{Config, Deadlines, Out, Timer};

#[derive(Debug)]
pub(crate) enum Machine {
    InviteClient(ClientInvite),
    NonInviteClient(ClientNonInvite),
    InviteServer(ServerInvite),
    NonInviteServer(ServerNonInvite),
}

impl Machine {
    pub fn deadlines(&mut self) -> &mut Deadlines {
        match self {
            Machine::InviteClient(m) => &mut m.deadlines,
            Machine::NonInviteClient(m) => &mut m.deadlines,
            Machine::InviteServer(m) => &mut m.deadlines,
            Machine::NonInviteServer(m) => &mut m.deadlines,
        }
    }

    pub fn state(&self) -> State {
        match self {
            Machine::InviteClient(m) => m.state(),
            Machine::NonInviteClient(m) => m.state(),
            Machine::InviteServer(m) => m.state(),
            Machine::NonInviteServer(m) => m.state(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &Config, now: Instant, out: &mut Out) {
        match self {
            Machine::InviteClient(m) => m.on_timer(timer, cfg, now, out),
            Machine::NonInviteClient(m) => m.on_timer(timer, cfg, now, out),
            Machine::InviteServer(m) => m.on_timer(timer, cfg, now, out),
            Machine::NonInviteServer(m) => m.on_timer(timer, out),
        }
    }

    pub fn on_transport_error(&mut self, out: &mut Out) {
        match self {
            Machine::InviteClient(m) => m.on_transport_error(out),
            Machine::NonInviteClient(m) => m.on_transport_error(out),
            Machine::InviteServer(m) => m.on_transport_error(out),
            Machine::NonInviteServer(m) => m.on_transport_error(out),
        }
    }
}
