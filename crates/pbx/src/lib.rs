//! The PBX engine.

pub mod call;
