//! Media: SDP offer/answer, RTP/RTCP relay, codecs, mixing and players.
//! Sans-IO where it can be: nothing here opens a socket or reads a clock;
//! every time-dependent call takes `now`.
//!
//! How the call engine anchors one call (one [`Bridge`] per m-line; the
//! socket driver owns the sockets bound to each [`PortPair`]):
//!
//! ```
//! # use std::{net::IpAddr, time::Instant};
//! # use media::*;
//! # let offer_text = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
//! let public: IpAddr = "203.0.113.7".parse().unwrap(); // SWITCHBOARD_PUBLIC_ADDR
//! let pool = PortPool::new("30000-30999".parse().unwrap()); // SWITCHBOARD_RTP_PORTS
//! let (ports_a, ports_b) = (pool.allocate()?, pool.allocate()?);
//! let (mut origin_a, mut origin_b) = (LegOrigin::new(1), LegOrigin::new(2));
//! let offer_a: Sdp = offer_text.parse()?; // INVITE body from leg A
//! let offer_b = anchor(&offer_a, public, &[ports_b.rtp()], &mut origin_b)?; // INVITE to B
//! let answer_b = offer_a.clone(); // ...B's 200 OK body (stand-in here)
//! let _streams = negotiated(&offer_b, &answer_b)?; // codecs, directions, rtcp-mux
//! let answer_a = anchor(&answer_b, public, &[ports_a.rtp()], &mut origin_a)?; // 200 OK to A
//! let mut bridge = Bridge::new(
//!     Leg::new(LegConfig::from_sdp(&offer_a, 0)),
//!     Leg::new(LegConfig::from_sdp(&answer_b, 0)),
//!     RelayConfig::default(),
//! );
//! bridge.arm_media_timeout(Instant::now()); // on answer
//! // Per datagram read on leg A's RTP socket:
//! let mut buf = rtp::build_rtp(0, 1, 160, 7, false, &[0xff; 160]);
//! match bridge.on_packet(Side::A, Component::Rtp, "198.51.100.9:5000".parse()?, &mut buf, Instant::now()) {
//!     Action::Forward(f) => { /* socket of (f.via, f.component) sends buf[..f.len] to f.to */ }
//!     Action::Drop(_reason) => { /* count it */ }
//! }
//! // On the timer: bridge.poll_timeout(), then media_timed_out(now, timeout) → BYE both legs.
//! # let _ = answer_a;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod anchor;
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod leg_input;
pub mod mixer;
pub mod music;
mod negotiate;
pub mod pcm;
pub mod player;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod tone;

pub use anchor::{AnchorError, LegOrigin, anchor};
pub use codec::{Codec, PtMap, codecs_of};
pub use music::Music;
pub use negotiate::{
    Answer, Capabilities, NegotiationError, Stream, answer, answer_direction, negotiated,
};
pub use ports::{PortError, PortPair, PortPool, PortProbe, PortRange};
pub use relay::{
    Action, Bridge, Component, DropReason, Forward, LatchPolicy, Leg, LegConfig, LegStats,
    RelayConfig, Side, Transcode,
};
pub use sdp::{Direction, Sdp, SdpError, direction_of};
