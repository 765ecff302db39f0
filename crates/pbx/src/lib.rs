//! The PBX engine.
