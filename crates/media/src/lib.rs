//! Media: SDP offer/answer, RTP/RTCP relay, codecs, mixing and players.
//! Sans-IO where it can be: nothing here opens a socket or reads a clock;
//! every time-dependent call takes `now`.

mod anchor;
pub mod codec;
pub mod g711;
mod negotiate;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod tone;

pub use anchor::{AnchorError, LegOrigin, anchor};
pub use codec::{Codec, PtMap, codecs_of};
pub use negotiate::{
    Answer, Capabilities, NegotiationError, Stream, answer, answer_direction, negotiated,
};
pub use ports::{PortError, PortPair, PortPool, PortRange};
pub use relay::{
    Action, Bridge, Component, DropReason, Forward, LatchPolicy, Leg, LegConfig, LegStats,
    RelayConfig, Side, Transcode,
};
pub use sdp::{Direction, Sdp, SdpError, direction_of};
