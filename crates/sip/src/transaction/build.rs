//! Requests the transaction layer builds itself (ACK for a non-2xx final
//! response, CANCEL) and where responses go. These belong with the message
//! API; they live here until it grows them.

use std::net::SocketAddr;

use super::{Target, TxError};
use crate::MAGIC_COOKIE;
use crate::message::{Method, Request, Response};

/// Copies the first header line called `name`, erroring when absent.
fn copy_one(from: &Request, to: &mut Request, name: &'static str) -> Result<(), TxError> {
    let v = from.headers.get(name).ok_or(TxError::MissingHeader(name))?;
    to.headers.push(name, v);
    Ok(())
}

/// The first Via value of a request (a comma list split apart).
fn top_via_value(req: &Request) -> Result<&str, TxError> {
    req.headers
        .values("Via")
        .next()
        .map(str::trim)
        .ok_or(TxError::MissingVia)
}

fn cseq_number(req: &Request) -> Result<u32, TxError> {
    Ok(req.cseq()?.ok_or(TxError::MissingHeader("CSeq"))?.seq)
}

/// The ACK an INVITE client transaction sends for a 300-699 response
/// (RFC 3261 §17.1.1.3): the INVITE's Request-URI, Call-ID, From and CSeq
/// number, only its top Via (same branch), its Route headers, and the To of
/// the response (with the tag).
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Result<Request, TxError> {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    ack.headers.push("Via", top_via_value(invite)?);
    ack.headers.push(
        "Max-Forwards",
        invite.headers.get("Max-Forwards").unwrap_or("70"),
    );
    copy_one(invite, &mut ack, "From")?;
    let to = response
        .headers
        .get("To")
        .ok_or(TxError::MissingHeader("To"))?;
    ack.headers.push("To", to);
    copy_one(invite, &mut ack, "Call-ID")?;
    ack.headers
        .push("CSeq", &format!("{} ACK", cseq_number(invite)?));
    for r in invite.headers.get_all("Route") {
        ack.headers.push("Route", r);
    }
    Ok(ack)
}

/// A CANCEL for a request (RFC 3261 §9.1): same Request-URI, Call-ID, To,
/// From and CSeq number, a single Via equal to the request's top Via (so it
/// carries the same branch), and the request's Route headers.
pub fn cancel_for(request: &Request) -> Result<Request, TxError> {
    let mut c = Request::new(Method::Cancel, request.uri.clone());
    c.headers.push("Via", top_via_value(request)?);
    c.headers.push(
        "Max-Forwards",
        request.headers.get("Max-Forwards").unwrap_or("70"),
    );
    copy_one(request, &mut c, "From")?;
    copy_one(request, &mut c, "To")?;
    copy_one(request, &mut c, "Call-ID")?;
    c.headers
        .push("CSeq", &format!("{} CANCEL", cseq_number(request)?));
    for r in request.headers.get_all("Route") {
        c.headers.push("Route", r);
    }
    Ok(c)
}

/// Where a server transaction sends its responses (RFC 3261 §18.2.2 and
/// RFC 3581): back over the connection on reliable transports; on UDP to the
/// source address, at the source port when the top Via has `rport`, else at
/// the Via sent-by port (5060 by default). `maddr` (multicast) is not handled.
pub fn response_target(request: &Request, source: Target) -> Target {
    if source.transport.is_reliable() {
        return source;
    }
    match request.top_via() {
        Ok(Some(via)) if via.rport().is_none() => Target::new(
            source.transport,
            SocketAddr::new(source.addr.ip(), via.port.unwrap_or(5060)),
        ),
        _ => source,
    }
}

/// Makes sure the request's top Via has an RFC 3261 branch, adding
/// `branch()` when it has none; returns the branch.
pub(crate) fn ensure_branch(
    request: &mut Request,
    branch: impl FnOnce() -> String,
) -> Result<String, TxError> {
    let via = request.top_via()?.ok_or(TxError::MissingVia)?;
    if let Some(b) = via.branch() {
        if b.starts_with(MAGIC_COOKIE) {
            return Ok(b.to_owned());
        }
        // An old-style branch on our own request: replace it.
    }
    let new_branch = branch();
    let mut vias: Vec<String> = request
        .headers
        .values("Via")
        .map(|v| v.trim().to_owned())
        .collect();
    let top = vias.first_mut().ok_or(TxError::MissingVia)?;
    *top = with_param(top, "branch", &new_branch);
    request.headers.set("Via", &vias[0]);
    for v in &vias[1..] {
        request.headers.push("Via", v);
    }
    Ok(new_branch)
}

/// Sets `;name=value` on a header value, replacing an existing one.
fn with_param(value: &str, name: &str, param: &str) -> String {
    let mut out = String::with_capacity(value.len() + name.len() + param.len() + 2);
    for (i, part) in value.split(';').enumerate() {
        let pname = part.split('=').next().unwrap_or("").trim();
        if i > 0 && pname.eq_ignore_ascii_case(name) {
            continue;
        }
        if i > 0 {
            out.push(';');
        }
        out.push_str(part);
    }
    out.push(';');
    out.push_str(name);
    out.push('=');
    out.push_str(param);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::Transport;
    use crate::{Limits, Message, StatusCode, parse_datagram};

    fn req(text: &str) -> Request {
        match parse_datagram(text.replace('\n', "\r\n").as_bytes(), &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\n\
Via: SIP/2.0/UDP a.example:5070;branch=z9hG4bKabc, SIP/2.0/UDP p.example;branch=z9hG4bKp\n\
Max-Forwards: 69\nRoute: <sip:p1.example;lr>\nRoute: <sip:p2.example;lr>\n\
From: \"A\" <sip:a@a.example>;tag=f1\nTo: <sip:bob@b.example>\nCall-ID: c1\n\
CSeq: 4 INVITE\nContact: <sip:a@a.example>\nContent-Type: application/sdp\n\nv=0\n";

    #[test]
    fn ack_follows_17_1_1_3() {
        let inv = req(INVITE);
        let mut busy = inv.response(StatusCode::new(486).unwrap());
        busy.set_to_tag("t1");
        let ack = ack_for_non_2xx(&inv, &busy).unwrap();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        let vias = ack.vias().unwrap();
        assert_eq!(vias.len(), 1);
        assert_eq!(vias[0].branch(), Some("z9hG4bKabc"));
        assert_eq!(ack.to_addr().unwrap().unwrap().tag(), Some("t1"));
        assert_eq!(ack.from_addr().unwrap().unwrap().tag(), Some("f1"));
        assert_eq!(ack.call_id().unwrap(), Some("c1"));
        let cseq = ack.cseq().unwrap().unwrap();
        assert_eq!((cseq.seq, cseq.method), (4, Method::Ack));
        assert_eq!(ack.routes().unwrap().len(), 2);
        assert_eq!(ack.max_forwards().unwrap(), Some(69));
        assert!(ack.body.is_empty());
        assert!(ack.headers.get("Contact").is_none());
        // It survives a round trip through the parser.
        let back = req(&String::from_utf8(ack.to_bytes())
            .unwrap()
            .replace("\r\n", "\n"));
        assert_eq!(back.to_bytes(), ack.to_bytes());
    }

    #[test]
    fn cancel_follows_9_1() {
        let inv = req(INVITE);
        let c = cancel_for(&inv).unwrap();
        assert_eq!(c.method, Method::Cancel);
        assert_eq!(c.uri, inv.uri);
        assert_eq!(c.vias().unwrap().len(), 1);
        assert_eq!(c.top_via().unwrap().unwrap().branch(), Some("z9hG4bKabc"));
        assert_eq!(c.headers.get("To"), inv.headers.get("To"));
        assert_eq!(c.headers.get("From"), inv.headers.get("From"));
        let cseq = c.cseq().unwrap().unwrap();
        assert_eq!((cseq.seq, cseq.method), (4, Method::Cancel));
        assert_eq!(c.routes().unwrap().len(), 2);
        assert!(c.body.is_empty());
    }

    #[test]
    fn missing_headers_are_errors_not_panics() {
        let bare = Request::new(Method::Invite, crate::Uri::parse("sip:b").unwrap());
        assert_eq!(cancel_for(&bare), Err(TxError::MissingVia));
        let resp = bare.response(StatusCode::OK);
        assert_eq!(ack_for_non_2xx(&bare, &resp), Err(TxError::MissingVia));
    }

    #[test]
    fn response_target_follows_18_2_2() {
        let src = Target::new(Transport::Udp, "192.0.2.1:40000".parse().unwrap());
        let inv = req(INVITE);
        assert_eq!(
            response_target(&inv, src).addr,
            "192.0.2.1:5070".parse().unwrap()
        );
        let rport = req(&INVITE.replace("branch=z9hG4bKabc", "branch=z9hG4bKabc;rport"));
        assert_eq!(response_target(&rport, src), src);
        let tcp = Target::new(Transport::Tcp, src.addr);
        assert_eq!(response_target(&inv, tcp), tcp);
    }

    #[test]
    fn ensure_branch_adds_or_keeps() {
        let mut inv = req(INVITE);
        assert_eq!(
            ensure_branch(&mut inv, || unreachable!()).unwrap(),
            "z9hG4bKabc"
        );
        let mut old = req(&INVITE.replace("branch=z9hG4bKabc", "branch=1;rport"));
        let b = ensure_branch(&mut old, || "z9hG4bKnew".into()).unwrap();
        assert_eq!(b, "z9hG4bKnew");
        let vias = old.vias().unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].branch(), Some("z9hG4bKnew"));
        assert_eq!(vias[0].rport(), Some(None));
        assert_eq!(vias[1].branch(), Some("z9hG4bKp"));
        let mut none = req(&INVITE.replace(";branch=z9hG4bKabc", ""));
        ensure_branch(&mut none, || "z9hG4bKx".into()).unwrap();
        assert_eq!(none.top_via().unwrap().unwrap().branch(), Some("z9hG4bKx"));
    }
}
