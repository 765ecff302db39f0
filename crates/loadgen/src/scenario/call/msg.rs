//! Writing the requests of a call straight into a reused buffer, and the
//! identifiers that let replies and in-dialog requests find their call
//! without a lookup table: the Via branch carries (run, slot, epoch,
//! transaction) and our Contact user parts carry (side, slot, epoch).

use std::io::Write as _;

use crate::transport::Transport;

/// `z9hG4bK` + this, then `RUN.SLOT.EPOCH.TXN` in hex. Registrations use
/// `z9hG4bKlg`, so the two never collide.
pub const BRANCH_TAG: &str = "z9hG4bKlc";

/// Transactions of a call, as numbered in its branches.
pub const TXN_INVITE: u32 = 1;
pub const TXN_INVITE_AUTH: u32 = 2;
pub const TXN_BYE_CALLER: u32 = 3;
pub const TXN_ACK: u32 = 4;
pub const TXN_BYE_CALLEE: u32 = 5;

/// Which side of a call: the caller (A, our UAC) or the callee (B, our UAS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn letter(self) -> char {
        match self {
            Side::A => 'a',
            Side::B => 'b',
        }
    }
}

/// The (slot, epoch, txn) of one of our branches of run `run`.
pub fn parse_branch(branch: &str, run: u32) -> Option<(u32, u32, u32)> {
    let rest = branch.strip_prefix(BRANCH_TAG)?;
    let mut p = rest.split('.');
    let r = u32::from_str_radix(p.next()?, 16).ok()?;
    let slot = u32::from_str_radix(p.next()?, 16).ok()?;
    let epoch = u32::from_str_radix(p.next()?, 16).ok()?;
    let txn = u32::from_str_radix(p.next()?, 16).ok()?;
    (r == run && p.next().is_none()).then_some((slot, epoch, txn))
}

/// The user part of our Contact for one side of a call: `a1f.3`.
pub fn contact_user(side: Side, slot: u32, epoch: u32) -> String {
    format!("{}{slot:x}.{epoch:x}", side.letter())
}

/// Reads a Contact user part written by [`contact_user`].
pub fn parse_contact_user(user: &str) -> Option<(Side, u32, u32)> {
    let side = match user.as_bytes().first()? {
        b'a' => Side::A,
        b'b' => Side::B,
        _ => return None,
    };
    let (slot, epoch) = user.get(1..)?.split_once('.')?;
    Some((
        side,
        u32::from_str_radix(slot, 16).ok()?,
        u32::from_str_radix(epoch, 16).ok()?,
    ))
}

/// What a request needs; all header values as they go on the wire.
pub struct ReqParts<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub transport: Transport,
    /// Our sent-by (the source's local address).
    pub local: &'a str,
    pub run: u32,
    pub slot: u32,
    pub epoch: u32,
    pub txn: u32,
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Route headers (the dialog's route set), in order.
    pub routes: &'a [String],
    pub contact: Option<&'a str>,
    pub auth: Option<(&'a str, &'a str)>,
    pub sdp: Option<&'a [u8]>,
}

pub fn write_request(out: &mut Vec<u8>, r: &ReqParts<'_>) {
    out.clear();
    // writes to a Vec cannot fail
    let _ = write!(
        out,
        "{} {} SIP/2.0\r\nVia: SIP/2.0/{} {};rport;branch={BRANCH_TAG}{:08x}.{:x}.{:x}.{:x}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n",
        r.method,
        r.uri,
        r.transport.via(),
        r.local,
        r.run,
        r.slot,
        r.epoch,
        r.txn,
        r.from,
        r.to,
        r.call_id,
        r.cseq,
        r.method
    );
    for route in r.routes {
        let _ = write!(out, "Route: {route}\r\n");
    }
    if let Some(c) = r.contact {
        let _ = write!(out, "Contact: {c}\r\n");
    }
    if let Some((name, value)) = r.auth {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if r.method == "INVITE" {
        out.extend_from_slice(b"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n");
    }
    out.extend_from_slice(b"User-Agent: sb-loadgen\r\n");
    match r.sdp {
        Some(body) => {
            let _ = write!(
                out,
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
    }
}

/// `<sip:USER@LOCAL>` (with `;transport=tcp` on TCP).
pub fn contact(user: &str, local: &str, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:{user}@{local}>"),
        Transport::Tcp => format!("<sip:{user}@{local};transport=tcp>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip_and_reject_others() {
        let b = format!(
            "{BRANCH_TAG}{:08x}.{:x}.{:x}.{:x}",
            0xabcdu32, 77, 3, TXN_BYE_CALLER
        );
        assert_eq!(parse_branch(&b, 0xabcd), Some((77, 3, TXN_BYE_CALLER)));
        assert_eq!(parse_branch(&b, 0xabce), None);
        assert_eq!(parse_branch("z9hG4bKlg0000abcd.1.2", 0xabcd), None);
        assert_eq!(parse_branch(&format!("{b}.9"), 0xabcd), None);
        let u = contact_user(Side::B, 0x1f, 2);
        assert_eq!(u, "b1f.2");
        assert_eq!(parse_contact_user(&u), Some((Side::B, 0x1f, 2)));
        assert_eq!(parse_contact_user("a0.0"), Some((Side::A, 0, 0)));
        for bad in ["", "c1.2", "a1", "a.2", "ax.1", "200001"] {
            assert_eq!(parse_contact_user(bad), None, "{bad}");
        }
    }

    #[test]
    fn requests_parse_with_the_full_parser() {
        let mut out = Vec::new();
        let routes = vec!["<sip:p1;lr>".to_owned()];
        let sdp = b"v=0\r\n";
        write_request(
            &mut out,
            &ReqParts {
                method: "INVITE",
                uri: "sip:200001@bench.example",
                transport: Transport::Udp,
                local: "127.0.0.2:5555",
                run: 1,
                slot: 2,
                epoch: 3,
                txn: TXN_INVITE_AUTH,
                from: "<sip:200000@bench.example>;tag=x",
                to: "<sip:200001@bench.example>",
                call_id: "c1",
                cseq: 2,
                routes: &routes,
                contact: Some("<sip:a2.3@127.0.0.2:5555>"),
                auth: Some(("Proxy-Authorization", "Digest username=\"200000\"")),
                sdp: Some(sdp),
            },
        );
        let m = sip::parse_datagram(&out, &sip::Limits::default()).unwrap();
        let req = m.as_request().unwrap();
        assert_eq!(req.method, sip::Method::Invite);
        assert_eq!(req.body, sdp);
        let via = req.top_via().unwrap().unwrap();
        assert_eq!(parse_branch(via.branch().unwrap(), 1), Some((2, 3, 2)));
        assert_eq!(req.headers.get("Route"), Some("<sip:p1;lr>"));
        assert!(req.headers.get("Proxy-Authorization").is_some());
        assert_eq!(req.cseq().unwrap().unwrap().seq, 2);
        // a bodiless request on TCP
        write_request(
            &mut out,
            &ReqParts {
                method: "BYE",
                uri: "sip:b1.1@127.0.0.1:5060",
                transport: Transport::Tcp,
                local: "127.0.0.2:5555",
                run: 1,
                slot: 2,
                epoch: 3,
                txn: TXN_BYE_CALLER,
                from: "<sip:a@b>;tag=1",
                to: "<sip:c@d>;tag=2",
                call_id: "c1",
                cseq: 3,
                routes: &[],
                contact: None,
                auth: None,
                sdp: None,
            },
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("Via: SIP/2.0/TCP 127.0.0.2:5555;rport;"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        assert!(sip::parse_stream_message(&out, &sip::Limits::default()).is_ok());
        assert_eq!(
            contact("b1.1", "127.0.0.2:5555", Transport::Tcp),
            "<sip:b1.1@127.0.0.2:5555;transport=tcp>"
        );
    }
}
