//! The media driver over real loopback UDP: two "phones" whose SDP points
//! at decoy sockets send G.711 tones through the relay; latching must make
//! each hear the other. Each test uses its own port range.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use media::{LegConfig, PortPool, Sdp, Side, g711, rtp, tone};
use pbx::call::{MediaCommand, StreamPorts};
use pbx::media_driver::{MediaDriver, MediaDriverConfig, MediaEvent, OpenError};
use tokio::net::UdpSocket;
use tokio::time::{sleep, timeout};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(3);
const FRAMES: u16 = 50;

fn config() -> MediaDriverConfig {
    MediaDriverConfig {
        bind_ip: LOOPBACK,
        stats_interval: Duration::ZERO,
        ..MediaDriverConfig::default()
    }
}

/// An RTP socket and the RTCP socket on the port above it.
struct Endpoint {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl Endpoint {
    async fn bind() -> Endpoint {
        for _ in 0..100 {
            let rtp = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
            let port = rtp.local_addr().unwrap().port();
            if port % 2 == 1 || port == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind((LOOPBACK, port + 1)).await {
                return Endpoint { rtp, rtcp };
            }
        }
        panic!("no free adjacent port pair");
    }

    fn rtp_addr(&self) -> SocketAddr {
        self.rtp.local_addr().unwrap()
    }

    fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp.local_addr().unwrap()
    }
}

/// The leg configuration of a phone whose SDP names `decoy`'s ports
/// (loopback ports the phone does not send from).
fn leg_config(decoy: &Endpoint) -> LegConfig {
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtcp:{}\r\n",
        decoy.rtp_addr().port(),
        decoy.rtcp_addr().port()
    );
    let sdp: Sdp = text.parse().unwrap();
    LegConfig::from_sdp(&sdp, 0)
}

fn open(
    driver: &mut MediaDriver,
    pool: &PortPool,
    call: u64,
) -> Result<(SocketAddr, SocketAddr), OpenError> {
    let s = StreamPorts {
        a: pool.allocate().unwrap(),
        b: pool.allocate().unwrap(),
    };
    let addrs = (
        SocketAddr::new(LOOPBACK, s.a.rtp()),
        SocketAddr::new(LOOPBACK, s.b.rtp()),
    );
    driver.execute(MediaCommand::Open {
        call,
        streams: vec![s],
    })?;
    Ok(addrs)
}

fn leg(driver: &mut MediaDriver, call: u64, side: Side, config: LegConfig) {
    driver
        .execute(MediaCommand::Leg {
            call,
            side,
            index: 0,
            config,
        })
        .unwrap();
}

/// A G.711 µ-law tone source, 20 ms a packet.
struct Talker {
    tone: tone::ToneGenerator,
    seq: u16,
    ts: u32,
    ssrc: u32,
    pcm: [i16; 160],
    payload: [u8; 160],
}

impl Talker {
    fn new(freq: f64, ssrc: u32) -> Talker {
        Talker {
            tone: tone::ToneGenerator::new(freq, 8000, 8000),
            seq: 1000,
            ts: 5000,
            ssrc,
            pcm: [0; 160],
            payload: [0; 160],
        }
    }

    fn next(&mut self) -> Vec<u8> {
        self.tone.fill(&mut self.pcm);
        for (b, s) in self.payload.iter_mut().zip(self.pcm) {
            *b = g711::linear_to_ulaw(s);
        }
        let p = rtp::build_rtp(0, self.seq, self.ts, self.ssrc, false, &self.payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        p
    }
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (n, from) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("datagram in time")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

/// What a phone heard: checks numbering continuity and returns the PCM.
fn check_stream(packets: &[Vec<u8>]) -> Vec<i16> {
    let headers: Vec<_> = packets.iter().map(|p| rtp::parse_rtp(p).unwrap()).collect();
    for w in headers.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc, "one SSRC");
        assert_eq!(
            w[1].sequence,
            w[0].sequence.wrapping_add(1),
            "seq continuous"
        );
        assert_eq!(
            w[1].timestamp,
            w[0].timestamp.wrapping_add(160),
            "ts continuous"
        );
    }
    packets
        .iter()
        .zip(&headers)
        .flat_map(|(p, h)| rtp::payload(p, h).iter().map(|&b| g711::ulaw_to_linear(b)))
        .collect()
}

async fn nothing_on(sock: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    timeout(Duration::from_millis(50), sock.recv_from(&mut buf))
        .await
        .is_err()
}

#[tokio::test]
async fn tones_cross_through_latched_addresses_with_rtcp_beside() {
    let pool = PortPool::new("47100-47119".parse().unwrap());
    let (mut driver, _events) = MediaDriver::new(config());
    let (relay_a, relay_b) = open(&mut driver, &pool, 7).unwrap();
    let (phone_a, phone_b) = (Endpoint::bind().await, Endpoint::bind().await);
    let (decoy_a, decoy_b) = (Endpoint::bind().await, Endpoint::bind().await);
    leg(&mut driver, 7, Side::A, leg_config(&decoy_a));
    leg(&mut driver, 7, Side::B, leg_config(&decoy_b));
    driver.execute(MediaCommand::Connected { call: 7 }).unwrap();

    let (mut talk_a, mut talk_b) = (Talker::new(440.0, 0xaaaa), Talker::new(880.0, 0xbbbb));
    // A speaks first: B has not sent anything, so its SDP address gets it.
    phone_a.rtp.send_to(&talk_a.next(), relay_a).await.unwrap();
    let (_, from) = recv(&decoy_b.rtp).await;
    assert_eq!(from, relay_b, "sent from B's relay port");
    // From now on both are latched to where they really send from.
    let mut heard_a = Vec::new();
    let mut heard_b = Vec::new();
    for _ in 0..FRAMES {
        phone_b.rtp.send_to(&talk_b.next(), relay_b).await.unwrap();
        phone_a.rtp.send_to(&talk_a.next(), relay_a).await.unwrap();
        let (p, from) = recv(&phone_a.rtp).await;
        assert_eq!(from, relay_a);
        heard_a.push(p);
        let (p, from) = recv(&phone_b.rtp).await;
        assert_eq!(from, relay_b);
        heard_b.push(p);
        sleep(Duration::from_millis(1)).await;
    }
    let pcm_a = check_stream(&heard_a);
    let pcm_b = check_stream(&heard_b);
    assert!(tone::dominates(&pcm_a, 880.0, 8000), "A hears B's 880 Hz");
    assert!(tone::dominates(&pcm_b, 440.0, 8000), "B hears A's 440 Hz");
    assert!(!tone::dominates(&pcm_a, 440.0, 8000));
    assert!(nothing_on(&decoy_a.rtp).await, "nothing to A's SDP address");
    assert!(
        nothing_on(&decoy_b.rtp).await,
        "only the first packet went to B's SDP"
    );

    // RTCP: A's receiver report leaves A's relay RTCP port toward B's
    // RTCP socket, beside its latched RTP address.
    let rr = [0x80, 201, 0, 1, 0, 0, 0xaa, 0xaa];
    phone_a
        .rtcp
        .send_to(&rr, relay_a_rtcp(relay_a))
        .await
        .unwrap();
    let (p, from) = recv(&phone_b.rtcp).await;
    assert_eq!(from, relay_a_rtcp(relay_b));
    assert_eq!((p[1], p.len()), (201, 8));
    phone_b
        .rtcp
        .send_to(&rr, relay_a_rtcp(relay_b))
        .await
        .unwrap();
    let (p, from) = recv(&phone_a.rtcp).await;
    assert_eq!((from, p[1]), (relay_a_rtcp(relay_a), 201));
    assert!(nothing_on(&decoy_a.rtcp).await && nothing_on(&decoy_b.rtcp).await);

    let stats = driver.stats().get(7).expect("stats of a live call");
    let s = stats.streams[0];
    assert_eq!(s.a.latched, Some(phone_a.rtp_addr()));
    assert_eq!(s.b.latched, Some(phone_b.rtp_addr()));
    assert_eq!(s.a.sdp_rtp, Some(decoy_a.rtp_addr()));
    assert_eq!(s.b.counters.rtp_out, u64::from(FRAMES) + 1);
    assert_eq!(s.a.counters.rtp_out, u64::from(FRAMES));
    assert_eq!(
        stats.packets(),
        (u64::from(FRAMES) + 2, u64::from(FRAMES) + 1)
    );
    assert!(stats.connected && !stats.timed_out);
    assert_eq!(stats.send_errors, 0);
}

fn relay_a_rtcp(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port() + 1)
}

#[tokio::test]
async fn media_timeout_fires_once_after_silence_on_an_answered_call() {
    let pool = PortPool::new("47200-47219".parse().unwrap());
    let (mut driver, mut events) = MediaDriver::new(MediaDriverConfig {
        media_timeout: Duration::from_millis(500),
        ..config()
    });
    let (relay_a, _) = open(&mut driver, &pool, 3).unwrap();
    let (phone_a, decoy_a, decoy_b) = (
        Endpoint::bind().await,
        Endpoint::bind().await,
        Endpoint::bind().await,
    );
    leg(&mut driver, 3, Side::A, leg_config(&decoy_a));
    leg(&mut driver, 3, Side::B, leg_config(&decoy_b));
    // Not answered yet: silence is fine.
    sleep(Duration::from_millis(500)).await;
    assert!(events.try_recv().is_err());
    driver.execute(MediaCommand::Connected { call: 3 }).unwrap();
    // RTP from one side keeps it alive.
    let mut talk = Talker::new(440.0, 1);
    for _ in 0..8 {
        phone_a.rtp.send_to(&talk.next(), relay_a).await.unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    assert!(events.try_recv().is_err(), "no timeout while RTP flows");
    let started = tokio::time::Instant::now();
    let ev = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(ev, MediaEvent::TimedOut { call: 3 });
    // Nominally 400 ms after `started` (500 ms after the last packet).
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(driver.stats().get(3).unwrap().timed_out);
    sleep(Duration::from_millis(600)).await;
    assert!(events.try_recv().is_err(), "reported once");
    driver.execute(MediaCommand::Close { call: 3 }).unwrap();
    wait_for_pool(&pool).await;
}

async fn wait_for_pool(pool: &PortPool) {
    timeout(WAIT, async {
        while pool.available() != pool.capacity() {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every port pair back in the pool");
}

#[tokio::test]
async fn close_returns_every_port_and_they_can_be_bound_again() {
    let pool = PortPool::new("47300-47311".parse().unwrap());
    assert_eq!(pool.capacity(), 6);
    let (mut driver, _events) = MediaDriver::new(config());
    for round in 0..3 {
        for call in 1..=3 {
            open(&mut driver, &pool, call).unwrap();
        }
        assert_eq!(pool.available(), 0, "round {round}");
        assert_eq!(driver.active_calls(), 3);
        assert_eq!(driver.stats().len(), 3);
        for call in 1..=3 {
            driver.execute(MediaCommand::Close { call }).unwrap();
        }
        assert_eq!(driver.active_calls(), 0);
        wait_for_pool(&pool).await;
        // The sockets are closed too: the ports bind again.
        for port in 47300..47312u16 {
            timeout(WAIT, async {
                while std::net::UdpSocket::bind((LOOPBACK, port)).is_err() {
                    sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .expect("port free");
        }
    }
    assert!(driver.stats().is_empty());
    // Commands for closed or unknown calls are ignored.
    driver.execute(MediaCommand::Close { call: 1 }).unwrap();
    driver.execute(MediaCommand::Connected { call: 9 }).unwrap();
}

#[tokio::test]
async fn a_port_taken_by_someone_else_fails_the_open_cleanly() {
    let pool = PortPool::new("47400-47403".parse().unwrap());
    let (mut driver, _events) = MediaDriver::new(config());
    // Someone else holds the RTCP port of the second pair.
    let squatter = std::net::UdpSocket::bind((LOOPBACK, 47403)).unwrap();
    let err = open(&mut driver, &pool, 1).unwrap_err();
    assert_eq!((err.call, err.port), (1, 47403));
    assert_eq!(pool.available(), pool.capacity(), "ports back at once");
    assert_eq!(driver.active_calls(), 0);
    assert!(driver.stats().is_empty());
    // The first pair's sockets were closed as well.
    drop(std::net::UdpSocket::bind((LOOPBACK, 47400)).unwrap());
    drop(squatter);
    open(&mut driver, &pool, 2).unwrap();
    // Exhaustion is the pool's (the engine answers it): nothing left to open.
    assert!(pool.allocate().is_err());
    driver.execute(MediaCommand::Close { call: 2 }).unwrap();
    wait_for_pool(&pool).await;
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    timeout(WAIT, async {
        while !check() {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn packets_before_signalling_are_dropped_and_counted() {
    let pool = PortPool::new("47500-47503".parse().unwrap());
    let (mut driver, _events) = MediaDriver::new(config());
    let stats = driver.stats();
    let (relay_a, _) = open(&mut driver, &pool, 5).unwrap();
    let phone_a = Endpoint::bind().await;
    let mut talk = Talker::new(440.0, 1);
    phone_a.rtp.send_to(&talk.next(), relay_a).await.unwrap();
    phone_a.rtp.send_to(b"garbage", relay_a).await.unwrap();
    until("two datagrams without a leg", || {
        stats.get(5).unwrap().before_leg == 2
    })
    .await;
    let decoy = Endpoint::bind().await;
    leg(&mut driver, 5, Side::A, leg_config(&decoy));
    // Admitted (and latched) but nobody to send it to; then malformed.
    phone_a.rtp.send_to(&talk.next(), relay_a).await.unwrap();
    phone_a.rtp.send_to(b"garbage", relay_a).await.unwrap();
    until("drops counted on the leg", || {
        let s = stats.get(5).unwrap().streams[0].a;
        s.counters.dropped == 2 && s.counters.rtp_in == 1
    })
    .await;
    assert_eq!(
        stats.get(5).unwrap().streams[0].a.latched,
        Some(phone_a.rtp_addr())
    );
    assert!(nothing_on(&decoy.rtp).await);
    // Dropping the driver ends every call.
    drop(driver);
    wait_for_pool(&pool).await;
    until("stats emptied", || stats.is_empty()).await;
}

#[tokio::test]
async fn a_second_m_line_relays_on_its_own_ports_with_rtcp_mux() {
    let pool = PortPool::new("47600-47619".parse().unwrap());
    let (mut driver, _events) = MediaDriver::new(config());
    let streams: Vec<StreamPorts> = (0..2)
        .map(|_| StreamPorts {
            a: pool.allocate().unwrap(),
            b: pool.allocate().unwrap(),
        })
        .collect();
    let video_a = SocketAddr::new(LOOPBACK, streams[1].a.rtp());
    let video_b = SocketAddr::new(LOOPBACK, streams[1].b.rtp());
    driver
        .execute(MediaCommand::Open { call: 9, streams })
        .unwrap();
    let (phone_a, phone_b) = (Endpoint::bind().await, Endpoint::bind().await);
    // Video legs, rtcp-mux on both, SDP pointing at the phones themselves.
    for (side, phone) in [(Side::A, &phone_a), (Side::B, &phone_b)] {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 0 RTP/AVP 0\r\nm=video {} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=rtcp-mux\r\n",
            phone.rtp_addr().port()
        );
        let sdp: Sdp = text.parse().unwrap();
        let config = LegConfig::from_sdp(&sdp, 1);
        assert!(config.rtcp_mux);
        driver
            .execute(MediaCommand::Leg {
                call: 9,
                side,
                index: 1,
                config,
            })
            .unwrap();
    }
    let frame = rtp::build_rtp(96, 1, 90_000, 0x7777, true, &[0x65; 1200]);
    phone_a.rtp.send_to(&frame, video_a).await.unwrap();
    let (p, from) = recv(&phone_b.rtp).await;
    assert_eq!(from, video_b);
    assert_eq!(
        (p.len(), rtp::parse_rtp(&p).unwrap().payload_type),
        (1212, 96)
    );
    // Muxed RTCP from B comes back to A on the RTP port.
    let rr = [0x80, 201, 0, 1, 0, 0, 0xbb, 0xbb];
    phone_b.rtp.send_to(&rr, video_b).await.unwrap();
    let (p, from) = recv(&phone_a.rtp).await;
    assert_eq!((from, p[1]), (video_a, 201));
    assert!(nothing_on(&phone_a.rtcp).await && nothing_on(&phone_b.rtcp).await);
    let stats = driver.stats().get(9).unwrap();
    assert!(!stats.streams[0].a.configured, "audio m-line untouched");
    assert_eq!(stats.streams[1].b.counters.rtp_out, 1);
    assert_eq!(stats.streams[1].a.counters.rtcp_out, 1);
    driver.execute(MediaCommand::Close { call: 9 }).unwrap();
    wait_for_pool(&pool).await;
}
