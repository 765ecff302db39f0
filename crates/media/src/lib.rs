//! Media: SDP offer/answer, RTP/RTCP relay, codecs, mixing and players.
//! Sans-IO where it can be: nothing here opens a socket or reads a clock;
//! every time-dependent call takes `now`.

pub mod g711;
pub mod sdp;
