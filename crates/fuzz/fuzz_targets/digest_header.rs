//! The digest header parsers: `Authorization`-style credentials (server
//! side, peer input) and `WWW-Authenticate`-style challenges (client side,
//! a trunk's input).
//!
//! Never panics; a parsed value round-trips through `to_header_value` to the
//! same value; and the verifier, fed parsed credentials that name its realm
//! and URI, reaches its nonce and digest checks without panicking.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sip::auth::{Challenge, Credentials, Verifier, VerifierConfig};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::new(&[7u8; 32], VerifierConfig::default()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Credentials::parse(text) {
        let value = c.to_header_value();
        match Credentials::parse(&value) {
            Ok(back) => assert_eq!(back, c, "credentials changed in a round trip: {value}"),
            Err(e) => panic!("serialized credentials do not re-parse ({e}): {value}"),
        }
        let now = Duration::from_secs(1_800_000_000);
        let _ = verifier().verify_unknown_user(&c, "REGISTER", &c.uri, &c.realm, now);
        let _ = verifier().verify(&c, "INVITE", &c.uri, &c.realm, &c.response, now);
    }
    if let Ok(c) = Challenge::parse(text) {
        let value = c.to_header_value();
        match Challenge::parse(&value) {
            Ok(back) => assert_eq!(back, c, "challenge changed in a round trip: {value}"),
            Err(e) => panic!("serialized challenge does not re-parse ({e}): {value}"),
        }
        let answer = c.answer("alice", "secret", "REGISTER", "sip:example.com", 1, "abc");
        let _ = answer.to_header_value();
    }
});
