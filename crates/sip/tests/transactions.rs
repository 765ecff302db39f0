//! Two transaction layers — a client side and a server side — talking through
//! an in-memory network on a virtual clock. A seeded xorshift PRNG makes the
//! network drop, duplicate, delay and (through random delays) reorder
//! datagrams; each scenario runs across hundreds of seeds. Nothing sleeps:
//! the clock jumps from one deadline to the next.

use std::time::Duration;

use sip::transaction::{Event, Role, State, Timer, Transport, TxKey};
use sip::{Method, Request};

#[path = "transactions/sim.rs"]
mod sim;
#[path = "transactions/tus.rs"]
mod tus;

use sim::*;
use tus::*;

const SEEDS: u64 = 250;

/// Maximum one-way delay for a seed: short, around T1, and well past T1 (so
/// retransmissions overtake the originals).
fn jitter(seed: u64) -> u64 {
    [50, 300, 1200][(seed % 3) as usize]
}

// ---------------------------------------------------------------- scenarios

/// Non-INVITE request whose first N copies are lost, over a lossy network:
/// the server TU sees it once, the client TU gets the final response once.
#[test]
fn non_invite_survives_loss_and_completes_once() {
    for seed in 0..SEEDS {
        let lost_first = (seed % 4) as usize;
        let mut seen = 0usize;
        let net = Net::lossy(10, 10, jitter(seed)).with_filter(move |to, msg, _| {
            if to == Side::Server && msg.as_request().is_some() {
                seen += 1;
                return seen <= lost_first;
            }
            false
        });
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let req = request(Method::Message, Transport::Udp, "nonInvite", 1);
        let key = sim
            .client
            .send_request(req, sim.server_addr, sim.now)
            .unwrap();
        sim.run(&mut Idle, &mut Answer(200), Duration::from_secs(120));

        let got = responses(&sim.client_events, &key);
        assert_eq!(
            got.iter().filter(|r| r.status.is_final()).count(),
            1,
            "seed {seed}"
        );
        assert_eq!(code(got[got.len() - 1]), 200, "seed {seed}");
        assert_eq!(
            requests(&sim.server_events, Method::Message).len(),
            1,
            "seed {seed}"
        );
        assert!(no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events));
        let copies = sim
            .client_sent
            .iter()
            .filter(|(_, m)| m.as_request().is_some())
            .count();
        assert!(
            copies > lost_first,
            "seed {seed}: retransmitted past the losses"
        );
        // Terminated transactions are removed: nothing is left behind.
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
        assert_eq!(
            count(&sim.client_events, |e| matches!(
                e,
                Event::Terminated { .. }
            )),
            1
        );
        assert_eq!(
            count(&sim.server_events, |e| matches!(
                e,
                Event::Terminated { .. }
            )),
            1
        );
    }
}

/// INVITE answered 180 then 486: the client transaction ACKs the 486 with the
/// INVITE's branch, the server retransmits the 486 until that ACK arrives and
/// absorbs it, and each TU sees one INVITE / one final response.
#[test]
fn invite_rejected_486_is_acked_by_the_transactions() {
    for seed in 0..SEEDS {
        // ACKs sent within 2 s of the first 486 are lost, so the server
        // must retransmit it (at +0.5 s and +1.5 s at least) until one gets through.
        let net = Net::lossy(10, 10, jitter(seed)).with_filter(ack_blackout(486));
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let inv = request(Method::Invite, Transport::Udp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let mut stu = InviteAnswer::new(true, 486, Duration::from_millis(800));
        sim.run(&mut Idle, &mut stu, Duration::from_secs(120));

        let got = responses(&sim.client_events, &key);
        let finals: Vec<_> = got.iter().filter(|r| r.status.is_final()).collect();
        assert_eq!(finals.len(), 1, "seed {seed}: final delivered once");
        assert_eq!(code(finals[0]), 486);
        assert!(got.iter().all(|r| matches!(code(r), 100 | 180 | 486)));
        assert_eq!(
            requests(&sim.server_events, Method::Invite).len(),
            1,
            "seed {seed}"
        );
        assert_eq!(
            count(&sim.server_events, |e| matches!(e, Event::Ack { .. })),
            0,
            "ACK absorbed"
        );
        assert!(no_timeouts(&sim.client_events), "seed {seed}");
        assert!(
            no_timeouts(&sim.server_events),
            "seed {seed}: ACK reached the server before H"
        );

        let busy_sent = sim
            .server_sent
            .iter()
            .filter(|(_, m)| m.as_response().is_some_and(|r| code(r) == 486))
            .count();
        assert!(
            busy_sent >= 3,
            "seed {seed}: 486 retransmitted ({busy_sent})"
        );
        let acks: Vec<&Request> = sim
            .client_sent
            .iter()
            .filter_map(|(_, m)| m.as_request().filter(|r| r.method == Method::Ack))
            .collect();
        assert!(!acks.is_empty());
        for ack in acks {
            assert_eq!(ack.top_via().unwrap().unwrap().branch(), Some(key.branch()));
            assert!(ack.to_addr().unwrap().unwrap().tag().is_some());
        }
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
    }
}

/// INVITE answered 200 (RFC 6026): 2xx retransmissions by the server TU
/// reach the client TU through the Accepted client transaction, a late copy
/// of the INVITE is absorbed by the Accepted server transaction, and the
/// ACK for the 2xx surfaces at the server TU as a stray ACK.
#[test]
fn invite_accepted_rfc6026() {
    let inject_at = Duration::from_millis(3000);
    let (mut several_2xx, mut injected_while_accepted) = (0, 0);
    for seed in 0..SEEDS {
        let net = Net::lossy(10, 10, jitter(seed)).with_filter(ack_blackout(200));
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let inv = request(Method::Invite, Transport::Udp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let first_invite = sim.client.poll_transmit().unwrap().bytes;
        sim.send(Side::Client, Side::Server, first_invite.clone());
        // A stale copy of the INVITE shows up while the server is Accepted.
        sim.injections.push((inject_at, Side::Server, first_invite));
        let mut stu = InviteAnswer::new(false, 200, Duration::from_millis(1000));
        sim.run(&mut AckOn2xx, &mut stu, Duration::from_secs(120));

        // Every 2xx the network delivered reached the client TU: the
        // Accepted state passes retransmissions up instead of absorbing them.
        let oks = responses(&sim.client_events, &key)
            .into_iter()
            .filter(|r| code(r) == 200)
            .count();
        let delivered = sim
            .client_received
            .iter()
            .filter(|(_, m)| m.as_response().is_some_and(|r| code(r) == 200))
            .count();
        assert!(oks >= 1, "seed {seed}");
        assert_eq!(
            oks, delivered,
            "seed {seed}: every delivered 2xx reached the TU"
        );
        several_2xx += usize::from(oks >= 2);
        // The INVITE (original, retransmissions, duplicates, the stale
        // copy) reached the server TU exactly once.
        assert_eq!(
            requests(&sim.server_events, Method::Invite).len(),
            1,
            "seed {seed}"
        );
        let answered_at = sim
            .server_sent
            .iter()
            .find(|(_, m)| m.as_response().is_some_and(|r| code(r) == 200))
            .map(|(t, _)| *t)
            .unwrap();
        if answered_at < inject_at {
            injected_while_accepted += 1;
            let answered_stale = sim
                .server_sent
                .iter()
                .any(|(t, m)| *t == inject_at && m.as_response().is_some_and(|r| code(r) == 100));
            assert!(
                !answered_stale,
                "seed {seed}: the stale INVITE was absorbed"
            );
        }
        assert!(
            stu.acks_for_2xx >= 1,
            "seed {seed}: ACK for 2xx reached the server TU"
        );
        assert!(no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events));
        // Timers L and M end both transactions 64*T1 after the 2xx.
        let end_of = |events: &[(Duration, Event)]| {
            events
                .iter()
                .find(|(_, e)| matches!(e, Event::Terminated { key: k } if k.method() == &Method::Invite))
                .map(|(t, _)| *t)
                .unwrap()
        };
        assert!(end_of(&sim.server_events) >= answered_at + Duration::from_secs(32));
        assert!(end_of(&sim.client_events) >= Duration::from_secs(33));
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
    }
    // The interesting cases are the common ones, not lucky exceptions.
    let seeds = SEEDS as usize;
    assert!(
        several_2xx * 10 >= seeds * 9,
        "{several_2xx}/{seeds} saw 2xx retransmissions"
    );
    assert!(
        injected_while_accepted * 10 >= seeds * 9,
        "{injected_while_accepted}/{seeds} hit Accepted"
    );
}

const CONCURRENT: usize = 12;

/// [`CONCURRENT`] requests at once, each answered after a random 0-6 s (with or
/// without a 100 first) over a lossy, reordering network: every one is seen
/// once by the server TU and completes once at the client TU.
#[test]
fn concurrent_non_invites_with_slow_server_tu() {
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, Net::lossy(10, 10, jitter(seed)), Transport::Udp);
        let mut keys = Vec::new();
        for i in 0..CONCURRENT {
            let req = request(Method::Message, Transport::Udp, &format!("m{i}"), 1);
            keys.push(
                sim.client
                    .send_request(req, sim.server_addr, sim.now)
                    .unwrap(),
            );
        }
        let mut delays = Rng::new(seed ^ 0xdead);
        let mut stu = SlowAnswer::new(202, seed % 2 == 0, move |_| delays.below(6_000));
        sim.run(&mut Idle, &mut stu, Duration::from_secs(200));

        for key in &keys {
            let finals: Vec<u16> = responses(&sim.client_events, key)
                .into_iter()
                .filter(|r| r.status.is_final())
                .map(code)
                .collect();
            assert_eq!(finals, [202], "seed {seed} {key:?}");
        }
        let mut call_ids: Vec<String> = requests(&sim.server_events, Method::Message)
            .iter()
            .map(|r| r.call_id().unwrap().unwrap().to_owned())
            .collect();
        assert_eq!(call_ids.len(), CONCURRENT, "seed {seed}");
        call_ids.sort();
        call_ids.dedup();
        assert_eq!(call_ids.len(), CONCURRENT, "seed {seed}");
        assert!(no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events));
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
    }
}

/// Nobody answers: Timer B and Timer F fire at 64*T1 after 7 INVITE and 11
/// non-INVITE transmissions.
#[test]
fn unreachable_server_times_out_at_64_t1() {
    for seed in 0..SEEDS {
        let net = Net::lossy(100, 0, 0);
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let offset = Duration::from_millis(seed % 7);
        sim.now += offset;
        let inv = sim
            .client
            .send_request(
                request(Method::Invite, Transport::Udp, "b", 1),
                sim.server_addr,
                sim.now,
            )
            .unwrap();
        let reg = sim
            .client
            .send_request(
                request(Method::Register, Transport::Udp, "f", 1),
                sim.server_addr,
                sim.now,
            )
            .unwrap();
        sim.run(&mut Idle, &mut Idle, Duration::from_secs(120));
        let at = |key: &TxKey, timer: Timer| {
            sim.client_events
                .iter()
                .find(|(_, e)| matches!(e, Event::Timeout { key: k, timer: t } if k == key && *t == timer))
                .map(|(t, _)| *t)
        };
        assert_eq!(at(&inv, Timer::B), Some(offset + Duration::from_secs(32)));
        assert_eq!(at(&reg, Timer::F), Some(offset + Duration::from_secs(32)));
        let sent = |m: Method| {
            sim.client_sent
                .iter()
                .filter(|(_, x)| x.as_request().is_some_and(|r| r.method == m))
                .count()
        };
        // Exact schedules: A doubles from T1 without a cap, E caps at T2.
        let times = |m: Method| -> Vec<u64> {
            sim.client_sent
                .iter()
                .filter(|(_, x)| x.as_request().is_some_and(|r| r.method == m))
                .map(|(t, _)| (*t - offset).as_millis() as u64)
                .collect()
        };
        assert_eq!(
            times(Method::Invite),
            [0, 500, 1500, 3500, 7500, 15500, 31500]
        );
        assert_eq!(
            times(Method::Register),
            [
                0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(sent(Method::Invite), 7);
        assert_eq!(sent(Method::Register), 11);
        assert!(sim.client.is_empty());
        assert!(sim.server_events.is_empty());
    }
}

/// Over TCP nothing is retransmitted and the wait timers are zero: both
/// sides finish as soon as the exchange is done.
#[test]
fn reliable_transport_skips_retransmissions() {
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, Net::lossy(0, 0, 20), Transport::Tcp);
        let inv = request(Method::Invite, Transport::Tcp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let opt = request(Method::Options, Transport::Tcp, "opt", 1);
        let okey = sim
            .client
            .send_request(opt, sim.server_addr, sim.now)
            .unwrap();
        let mut stu = Both(
            InviteAnswer::new(true, 603, Duration::from_secs(2)),
            Answer(200),
        );
        sim.run(&mut Idle, &mut stu, Duration::from_secs(120));
        assert_eq!(
            code(responses(&sim.client_events, &key).last().unwrap()),
            603
        );
        assert_eq!(
            code(responses(&sim.client_events, &okey).last().unwrap()),
            200
        );
        let invites = sim
            .client_sent
            .iter()
            .filter(|(_, m)| m.as_request().is_some_and(|r| r.method == Method::Invite))
            .count();
        assert_eq!(invites, 1);
        assert_eq!(
            sim.server_sent
                .iter()
                .filter(|(_, m)| m.as_response().is_some_and(|r| code(r) == 603))
                .count(),
            1
        );
        // Everything is over within the network delay of the final exchange.
        let last = sim
            .client_events
            .iter()
            .chain(&sim.server_events)
            .map(|(t, _)| *t)
            .max()
            .unwrap();
        assert!(
            last <= Duration::from_millis(2100),
            "seed {seed}: lingered until {last:?}"
        );
        assert!(sim.client.is_empty() && sim.server.is_empty());
    }
}

#[test]
fn cancel_pending_invite_gets_200_and_487() {
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, Net::lossy(10, 10, jitter(seed)), Transport::Udp);
        let inv = request(Method::Invite, Transport::Udp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let immediately = seed % 2 == 0;
        let mut ctu = Canceller {
            immediately,
            invite: Some(key.clone()),
            cancel: None,
        };
        if ctu.immediately {
            let ck = sim.client.cancel(&key, sim.now).unwrap();
            assert_eq!(sim.client.state(&ck), Some(State::Pending));
            ctu.cancel = Some(ck);
        }
        sim.run(&mut ctu, &mut RingForever, Duration::from_secs(120));

        let ck = ctu.cancel.clone().expect("cancelled");
        assert_eq!(ck.role(), Role::Client);
        let cancel_finals: Vec<u16> = responses(&sim.client_events, &ck)
            .into_iter()
            .filter(|r| r.status.is_final())
            .map(code)
            .collect();
        assert_eq!(cancel_finals, [200], "seed {seed}");
        let invite_finals: Vec<u16> = responses(&sim.client_events, &key)
            .into_iter()
            .filter(|r| r.status.is_final())
            .map(code)
            .collect();
        assert_eq!(invite_finals, [487], "seed {seed}");
        assert_eq!(
            requests(&sim.server_events, Method::Invite).len(),
            1,
            "seed {seed}"
        );
        assert_eq!(
            requests(&sim.server_events, Method::Cancel).len(),
            1,
            "seed {seed}"
        );
        assert!(
            no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events),
            "seed {seed}"
        );
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
        // §9.1: no CANCEL before a provisional response arrived.
        let first_provisional = sim
            .client_events
            .iter()
            .find(|(_, e)| matches!(e, Event::Response { response, .. } if response.status.is_provisional()))
            .map(|(t, _)| *t)
            .unwrap();
        let first_cancel = sim
            .client_sent
            .iter()
            .find(|(_, m)| m.as_request().is_some_and(|r| r.method == Method::Cancel))
            .map(|(t, _)| *t)
            .unwrap();
        assert!(first_cancel >= first_provisional, "seed {seed}");
    }
}

/// Random operations in random order — requests with and without the magic
/// cookie, stray ACKs and CANCELs, responses with random codes for random
/// keys, cancels, transport errors, clock jumps — never panic, never leave a
/// transaction behind once the TU has answered everything and time passes.
#[test]
fn chaos_never_panics_and_always_drains() {
    use sip::transaction::{Config, Target, TransactionLayer};
    use sip::{Message, StatusCode};
    use std::time::Instant;

    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed);
        let t0 = Instant::now();
        let mut now = t0;
        let mut server = TransactionLayer::new(Config::default(), seed);
        let mut client = TransactionLayer::new(Config::default(), seed + 1);
        let peer =
            |port: u16| Target::new(Transport::Udp, format!("127.0.0.1:{port}").parse().unwrap());
        let mut server_keys: Vec<TxKey> = Vec::new();
        let mut client_keys: Vec<TxKey> = Vec::new();
        let methods = [
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Options,
            Method::Bye,
        ];
        for _ in 0..200 {
            match rng.below(7) {
                0 | 1 => {
                    let m = methods[rng.below(5) as usize].clone();
                    let mut r = request(m, Transport::Udp, &format!("c{}", rng.below(3)), 1);
                    let branch = match rng.below(3) {
                        0 => format!("z9hG4bK{}", rng.below(4)),
                        1 => format!("old{}", rng.below(2)),
                        _ => String::new(),
                    };
                    let port = 5070 + rng.below(2) as u16;
                    let via = if branch.is_empty() {
                        format!("SIP/2.0/UDP 127.0.0.1:{port}")
                    } else {
                        format!("SIP/2.0/UDP 127.0.0.1:{port};branch={branch}")
                    };
                    r.headers.set("Via", &via);
                    if rng.chance(30) {
                        r.headers.set("To", "<sip:bob@127.0.0.1>;tag=x");
                    }
                    let _ = server.receive(Message::Request(r), peer(port), now);
                }
                2 if !server_keys.is_empty() => {
                    let key = &server_keys[rng.below(server_keys.len() as u64) as usize];
                    let code = [100, 180, 200, 202, 404, 486, 487][rng.below(7) as usize];
                    let mut r = request(key.method().clone(), Transport::Udp, "c0", 1)
                        .response_tagged(StatusCode::new(code).unwrap());
                    r.headers.set(
                        "Via",
                        &format!("SIP/2.0/UDP 127.0.0.1:5070;branch={}", key.branch()),
                    );
                    let _ = server.send_response(key, r, now);
                }
                3 => {
                    let m = [Method::Invite, Method::Options][rng.below(2) as usize].clone();
                    let r = request(m, Transport::Udp, "cc", 1);
                    if let Ok(k) = client.send_request(r, peer(5060), now) {
                        client_keys.push(k);
                    }
                }
                4 if !client_keys.is_empty() => {
                    let key = client_keys[rng.below(client_keys.len() as u64) as usize].clone();
                    match rng.below(4) {
                        0 => {
                            if let Ok(k) = client.cancel(&key, now) {
                                client_keys.push(k);
                            }
                        }
                        1 => client.transport_error(&key, now),
                        _ => {
                            let code = [100, 180, 200, 486][rng.below(4) as usize];
                            let mut r = request(key.method().clone(), Transport::Udp, "cc", 1)
                                .response_tagged(StatusCode::new(code).unwrap());
                            r.headers.set(
                                "Via",
                                &format!("SIP/2.0/UDP 127.0.0.1:5070;branch={}", key.branch()),
                            );
                            let _ = client.receive(Message::Response(r), peer(5060), now);
                        }
                    }
                }
                5 => {
                    now += Duration::from_millis(rng.below(5_000));
                    server.handle_timeout(now);
                    client.handle_timeout(now);
                }
                _ => {
                    if let Some(k) = client_keys.first().cloned() {
                        server.transport_error(&k, now);
                    }
                }
            }
            while let Some(ev) = server.poll_event() {
                if let Event::Request { key, .. } = ev {
                    server_keys.push(key);
                }
            }
            while client.poll_event().is_some() {}
            while server.poll_transmit().is_some() {}
            while client.poll_transmit().is_some() {}
        }
        // The TUs finish whatever is still open — the server answers, the
        // client cancels its INVITEs — then time runs out.
        for key in &client_keys {
            let _ = client.cancel(key, now);
        }
        for key in &server_keys {
            let mut r = request(key.method().clone(), Transport::Udp, "c0", 1)
                .response_tagged(StatusCode::new(500).unwrap());
            r.headers.set(
                "Via",
                &format!("SIP/2.0/UDP 127.0.0.1:5070;branch={}", key.branch()),
            );
            let _ = server.send_response(key, r, now);
        }
        let mut steps = 0;
        while let Some(at) = [server.poll_timeout(), client.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        {
            server.handle_timeout(at);
            client.handle_timeout(at);
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: timers never settle");
        }
        assert!(
            server.is_empty(),
            "seed {seed}: {} server transactions left",
            server.len()
        );
        let left: Vec<_> = client_keys
            .iter()
            .filter_map(|k| client.state(k).map(|s| (k, s)))
            .collect();
        assert!(
            client.is_empty(),
            "seed {seed}: client transactions left: {left:?}"
        );
    }
}
