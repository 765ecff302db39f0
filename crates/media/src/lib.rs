//! Media: SDP offer/answer, RTP/RTCP relay, codecs, mixing and players.
//! Sans-IO where it can be.

pub mod g711;
