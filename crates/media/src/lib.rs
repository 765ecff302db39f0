//! Media: SDP offer/answer, RTP/RTCP relay, codecs, mixing and players.
//! Sans-IO where it can be: nothing here opens a socket or reads a clock;
//! every time-dependent call takes `now`.

mod anchor;
pub mod codec;
pub mod g711;
mod negotiate;
pub mod sdp;

pub use anchor::{AnchorError, LegOrigin, anchor};
pub use codec::{Codec, PtMap, codecs_of};
pub use negotiate::{
    Answer, Capabilities, NegotiationError, Stream, answer, answer_direction, negotiated,
};
pub use sdp::{Direction, Sdp, SdpError, direction_of};
