//! Plain std-timed micro benchmark (no criterion): parse + common accessors of a
//! typical authenticated REGISTER. Run with `cargo bench -p sip`.

use std::hint::black_box;
use std::time::Instant;

use sip::{Limits, Message, parse_datagram};

const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1871519734;rport\r\n\
From: \"Reception\" <sip:1001@pbx.example.com>;tag=1298513306\r\n\
To: \"Reception\" <sip:1001@pbx.example.com>\r\n\
Call-ID: 1442867513@192.0.2.10\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:1001@192.0.2.10:5060;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000b82aabbcc>\"\r\n\
Authorization: Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"6520c6d3a1b2c3d4e5f6\", uri=\"sip:pbx.example.com\", response=\"5f2e0a7fb1a3c4d5e6f708192a3b4c5d\", algorithm=MD5\r\n\
Max-Forwards: 70\r\n\
User-Agent: Grandstream GXP2170 1.0.11.3\r\n\
Supported: replaces, path, timer, eventlist\r\n\
Allow: INVITE, ACK, OPTIONS, CANCEL, BYE, SUBSCRIBE, NOTIFY, INFO, REFER, UPDATE, MESSAGE\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

fn main() {
    let limits = Limits::default();
    let iters = 200_000u32;
    let run = |with_access: bool| {
        let start = Instant::now();
        for _ in 0..iters {
            let m = parse_datagram(black_box(REGISTER), &limits).expect("parses");
            if with_access {
                let Message::Request(r) = &m else {
                    unreachable!()
                };
                let _ = black_box((
                    r.top_via(),
                    r.to_addr(),
                    r.call_id(),
                    r.cseq(),
                    r.contacts(),
                    r.expires(),
                ));
                black_box(r.response_tagged(sip::StatusCode::OK).to_bytes());
            }
            black_box(m);
        }
        start.elapsed().as_nanos() / u128::from(iters)
    };
    run(false); // warm up
    println!(
        "parse REGISTER ({} bytes): {} ns",
        REGISTER.len(),
        run(false)
    );
    println!(
        "parse + typed accessors + 200 response serialized: {} ns",
        run(true)
    );
}
