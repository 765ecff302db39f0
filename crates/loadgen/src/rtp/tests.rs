use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn spec(id: u32, epoch: u32, socket: usize, dest: &str) -> StreamSpec {
    StreamSpec {
        id,
        epoch,
        socket,
        dest: sa(dest),
        pt: 0,
        ssrc: 100 + id,
    }
}

/// A pair of streams (a call): 0 sends to relay port 20000 from socket 0,
/// 1 sends to relay port 20002 from socket 1.
fn call(m: &mut Media, epoch: u32, now_ms: u64) {
    m.command(
        MediaCmd::Start(spec(0, epoch, 0, "127.0.0.1:20000")),
        now_ms,
    );
    m.command(
        MediaCmd::Start(spec(1, epoch, 1, "127.0.0.1:20002")),
        now_ms,
    );
}

type Sent = Vec<(usize, SocketAddr, Vec<u8>)>;

fn run(m: &mut Media, ms: u64, out: &mut Sent) {
    m.due(ms, |sock, dest, pt, ssrc, probe| {
        let mut b = vec![0u8; packet::PACKET];
        packet::write(&mut b, pt, ssrc, probe);
        out.push((sock, dest, b));
    });
}

#[test]
fn each_stream_sends_once_per_20ms_in_its_own_phase() {
    let mut m = Media::new();
    let mut out = Sent::new();
    run(&mut m, 100, &mut out);
    call(&mut m, 1, 100);
    for ms in 101..=300 {
        if ms == 105 {
            m.command(MediaCmd::Start(spec(2, 1, 0, "127.0.0.1:20004")), ms);
        }
        run(&mut m, ms, &mut out);
    }
    let count = |id: u32| {
        out.iter()
            .filter(|(_, _, b)| packet::parse(b).unwrap().1.stream == id)
            .count()
    };
    // 200 ms: 10 packets each (stream 2 from 105)
    assert_eq!((count(0), count(1), count(2)), (10, 10, 10));
    let idx: Vec<u32> = out
        .iter()
        .map(|(_, _, b)| packet::parse(b).unwrap().1)
        .filter(|p| p.stream == 2)
        .map(|p| p.index)
        .collect();
    assert_eq!(idx, (0..10).collect::<Vec<_>>());
    // a late wake-up catches up on the slots it missed
    let before = out.len();
    run(&mut m, 303, &mut out);
    assert_eq!(
        out.len() - before,
        2,
        "streams 0/1 at 301 (stream 2 is due at 305)"
    );
    // a wake-up more than one interval late skips, and says so
    run(&mut m, 400, &mut out);
    assert!(m.stats.skipped >= 3, "{}", m.stats.skipped);
}

#[test]
fn received_packets_are_counted_checked_and_timed() {
    let mut m = Media::new();
    let mut out = Sent::new();
    call(&mut m, 1, 0);
    for ms in 0..40 {
        run(&mut m, ms, &mut out);
    }
    m.sent(out.len() as u64);
    assert_eq!(out.len(), 4);
    for (_, dest, b) in &out {
        let p = packet::parse(b).unwrap().1;
        let mut b = b.clone();
        packet::stamp(&mut b, 1_000_000_000);
        // the relay answers the partner from the port the partner sends to
        let (sock, from) = if p.stream == 0 {
            (1, sa("127.0.0.1:20002"))
        } else {
            (0, sa("127.0.0.1:20000"))
        };
        assert_ne!(*dest, from);
        m.on_packet(sock, Some(from), &b, 1_000_000_000 + 350_000);
    }
    assert_eq!(m.stats.received, 4);
    assert_eq!(m.stats.lost(), 0);
    assert_eq!(m.stats.latency.quantile(0.5), Some(350));
    // again: duplicates; on the wrong socket or from the wrong port: misrouted
    let (_, _, b0) = &out[0];
    let s0 = packet::parse(b0).unwrap().1.stream;
    let (good_sock, good_from) = if s0 == 0 {
        (1, sa("127.0.0.1:20002"))
    } else {
        (0, sa("127.0.0.1:20000"))
    };
    m.on_packet(good_sock, Some(good_from), b0, 0);
    assert_eq!(m.stats.duplicates, 1);
    m.on_packet(1 - good_sock, Some(good_from), b0, 0);
    m.on_packet(good_sock, Some(sa("127.0.0.1:9")), b0, 0);
    assert_eq!(m.stats.misrouted, 2);
    m.on_packet(0, None, b"not rtp", 0);
    assert_eq!(m.stats.foreign, 1);
    assert_eq!(m.stats.received, 4);
}

#[test]
fn stop_ends_sending_and_reuse_tells_generations_apart() {
    let mut m = Media::new();
    let mut out = Sent::new();
    call(&mut m, 1, 0);
    for ms in 0..20 {
        run(&mut m, ms, &mut out);
    }
    m.sent(out.len() as u64);
    assert_eq!(m.sending(), 2);
    m.command(
        MediaCmd::Stop {
            id: 0,
            epoch: 1,
            socket: 0,
        },
        20,
    );
    m.command(
        MediaCmd::Stop {
            id: 1,
            epoch: 7,
            socket: 1,
        },
        20,
    ); // stale: ignored
    assert_eq!(m.sending(), 1);
    m.command(
        MediaCmd::Stop {
            id: 1,
            epoch: 1,
            socket: 1,
        },
        20,
    );
    let before = out.len();
    for ms in 20..60 {
        run(&mut m, ms, &mut out);
    }
    assert_eq!(out.len(), before);
    // the slots go to the next call; a late packet of the old one still
    // counts as received, without the checks that no longer apply
    call(&mut m, 2, 60);
    let old = &out[0].2;
    m.on_packet(5, None, old, 0);
    assert_eq!((m.stats.received, m.stats.misrouted), (1, 0));
    // a packet of the current call is checked: the right socket and port
    let mut b = vec![0u8; packet::PACKET];
    packet::write(
        &mut b,
        0,
        1,
        &Probe {
            stream: 0,
            epoch: 2,
            index: 0,
            sent_ns: 0,
        },
    );
    m.on_packet(1, Some(sa("127.0.0.1:20002")), &b, 0);
    m.on_packet(0, Some(sa("127.0.0.1:20002")), &b, 0);
    assert_eq!((m.stats.received, m.stats.misrouted), (2, 1));
    // a restarted stream is wheeled once, not twice
    for ms in 60..80 {
        run(&mut m, ms, &mut out);
    }
    assert_eq!(out.len(), before + 2);
}

#[test]
fn window_dedupes_and_tolerates_reordering() {
    let (mut top, mut bits) = (0u32, 0u64);
    assert_eq!(window_accept(&mut top, &mut bits, 0), Some(true));
    assert_eq!(window_accept(&mut top, &mut bits, 2), Some(true));
    assert_eq!(window_accept(&mut top, &mut bits, 1), Some(true));
    assert_eq!(window_accept(&mut top, &mut bits, 1), Some(false));
    assert_eq!(window_accept(&mut top, &mut bits, 2), Some(false));
    assert_eq!(window_accept(&mut top, &mut bits, 200), Some(true));
    assert_eq!(window_accept(&mut top, &mut bits, 137), Some(true));
    assert_eq!(window_accept(&mut top, &mut bits, 137), Some(false));
    assert_eq!(window_accept(&mut top, &mut bits, 136), None);
    assert_eq!(top, 201);
}

#[test]
fn loss_is_what_was_sent_and_never_arrived() {
    let s = RtpStats {
        sent: 10_000,
        received: 9_999,
        ..RtpStats::default()
    };
    assert_eq!(s.lost(), 1);
    assert!((s.loss_percent() - 0.01).abs() < 1e-9);
    assert_eq!(RtpStats::default().loss_percent(), 0.0);
}

#[test]
fn packets_before_the_partner_starts_are_received_not_misrouted() {
    let mut m = Media::new();
    let mut out = Sent::new();
    // only the caller side has started (the callee starts at the ACK)
    m.command(MediaCmd::Start(spec(0, 1, 0, "127.0.0.1:20000")), 0);
    run(&mut m, 0, &mut out);
    m.sent(out.len() as u64);
    m.on_packet(1, Some(sa("127.0.0.1:20002")), &out[0].2, 0);
    assert_eq!((m.stats.received, m.stats.misrouted), (1, 0));
}
