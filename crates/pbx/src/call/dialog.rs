//! Dialog state (RFC 3261 §12) for one leg, and the requests built in it.

use std::net::SocketAddr;

use sip::transaction::Target;
use sip::{Method, NameAddr, Request, Response, Uri};

/// Tags, Call-IDs and branches: 128 bits each from the thread's CSPRNG
/// (`rand::thread_rng`, ChaCha seeded from the OS), so no token reveals
/// anything about the next one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tokens;

/// Hex digits in a token (128 bits).
pub(crate) const TOKEN_HEX: usize = 32;

impl Tokens {
    pub fn next(&mut self) -> String {
        let x: u128 = rand::random();
        format!("{x:0width$x}", width = TOKEN_HEX)
    }

    pub fn branch(&mut self) -> String {
        format!("{}sb{}", sip::MAGIC_COOKIE, self.next())
    }
}

/// A header value (From/To/Contact) without its `tag` parameter.
pub(crate) fn without_tag(value: &str) -> String {
    let Ok(na) = NameAddr::parse(value, "To") else {
        return value.trim().to_owned();
    };
    let mut out = String::new();
    if let Some(d) = na.display_raw() {
        out.push_str(d);
        out.push(' ');
    }
    out.push('<');
    out.push_str(na.uri.as_str());
    out.push('>');
    for (name, v) in na.params.iter() {
        if name.eq_ignore_ascii_case("tag") {
            continue;
        }
        out.push(';');
        out.push_str(name);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// The tag of a From/To header value.
pub(crate) fn tag_of(value: Option<&str>) -> Option<String> {
    value
        .and_then(|v| NameAddr::parse(v, "To").ok())
        .and_then(|na| na.tag().map(str::to_owned))
}

/// The first Contact URI of a message.
pub(crate) fn contact_uri(headers: &sip::Headers) -> Option<Uri> {
    match headers.contacts().ok()? {
        sip::Contacts::List(list) => list.first().map(|na| na.uri.to_uri()),
        _ => None,
    }
}

/// One dialog (or early dialog) of a leg.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// From/To values without tags.
    pub local_uri: String,
    pub remote_uri: String,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    pub remote_target: Uri,
    /// Route headers for requests in this dialog, in order.
    pub route_set: Vec<String>,
    /// The flow requests are sent over (NAT: the source, not the Contact).
    pub peer: Target,
    /// Our Contact header value.
    pub local_contact: String,
    /// The trunk this dialog runs over (`None`: a phone of the business).
    /// In-dialog requests of a trunk dialog may come from any of the
    /// trunk's addresses; a phone's only from `peer`.
    pub trunk: Option<store::TrunkId>,
}

impl Dialog {
    /// The UAS side of a dialog created by `invite` (received from `source`).
    pub fn uas(invite: &Request, source: Target, local_tag: String, local_contact: String) -> Self {
        let remote_target = contact_uri(&invite.headers).unwrap_or_else(|| invite.uri.clone());
        Dialog {
            call_id: invite
                .headers
                .get("Call-ID")
                .unwrap_or("")
                .trim()
                .to_owned(),
            local_tag,
            remote_tag: tag_of(invite.headers.get("From")),
            local_uri: without_tag(invite.headers.get("To").unwrap_or("")),
            remote_uri: without_tag(invite.headers.get("From").unwrap_or("")),
            local_cseq: 0,
            remote_cseq: invite.cseq().ok().flatten().map(|c| c.seq),
            remote_target,
            route_set: invite
                .headers
                .values("Record-Route")
                .map(|v| v.trim().to_owned())
                .collect(),
            peer: source,
            local_contact,
            trunk: None,
        }
    }

    /// The UAC side: a fresh dialog towards `remote_target` over `peer`.
    pub fn uac(
        call_id: String,
        local_tag: String,
        local_uri: String,
        remote_uri: String,
        remote_target: Uri,
        peer: Target,
        local_contact: String,
    ) -> Self {
        Dialog {
            call_id,
            local_tag,
            remote_tag: None,
            local_uri,
            remote_uri,
            local_cseq: 0,
            remote_cseq: None,
            remote_target,
            route_set: Vec::new(),
            peer,
            local_contact,
            trunk: None,
        }
    }

    /// Takes the remote tag, target and route set from a response to our
    /// dialog-creating INVITE (RFC 3261 §12.1.2: Record-Route reversed).
    pub fn learn_from_response(&mut self, resp: &Response) {
        // A 2xx fixes the dialog: its tag wins over an earlier early dialog's.
        if self.remote_tag.is_none() || resp.status.is_success() {
            if let Some(tag) = tag_of(resp.headers.get("To")) {
                self.remote_tag = Some(tag);
            }
        }
        if let Some(uri) = contact_uri(&resp.headers) {
            self.remote_target = uri;
        }
        let rr: Vec<String> = resp
            .headers
            .values("Record-Route")
            .map(|v| v.trim().to_owned())
            .collect();
        if !rr.is_empty() || resp.status.is_success() {
            self.route_set = rr.into_iter().rev().collect();
        }
    }

    /// Whether `req` (received) belongs to this dialog: Call-ID, its To tag
    /// is our local tag and its From tag the remote one.
    pub fn matches_request(
        &self,
        call_id: &str,
        from_tag: Option<&str>,
        to_tag: Option<&str>,
    ) -> bool {
        call_id == self.call_id
            && to_tag == Some(self.local_tag.as_str())
            && from_tag == self.remote_tag.as_deref()
    }

    fn local_header(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    fn remote_header(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={}", self.remote_uri, t),
            None => self.remote_uri.clone(),
        }
    }

    /// A request in this dialog with the next CSeq (RFC 3261 §12.2.1.1).
    pub fn request(&mut self, method: Method, sent_by: SocketAddr, branch: &str) -> Request {
        self.local_cseq = self.local_cseq.saturating_add(1);
        let seq = self.local_cseq;
        self.build(method, seq, sent_by, branch)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `seq` (RFC 3261 §13.2.2.4).
    pub fn ack(&self, seq: u32, sent_by: SocketAddr, branch: &str) -> Request {
        self.build(Method::Ack, seq, sent_by, branch)
    }

    fn build(&self, method: Method, seq: u32, sent_by: SocketAddr, branch: &str) -> Request {
        let mut req = Request::new(method.clone(), self.remote_target.clone());
        req.headers.push(
            "Via",
            &format!(
                "SIP/2.0/{} {};branch={};rport",
                self.peer.transport, sent_by, branch
            ),
        );
        req.headers.push("Max-Forwards", "70");
        req.headers.push("From", &self.local_header());
        req.headers.push("To", &self.remote_header());
        req.headers.push("Call-ID", &self.call_id);
        req.headers
            .push("CSeq", &format!("{seq} {}", method.as_str()));
        for r in &self.route_set {
            req.headers.push("Route", r);
        }
        if matches!(method, Method::Invite | Method::Update) {
            req.headers.push("Contact", &self.local_contact);
        }
        req
    }

    /// RFC 3261 §12.2.2: a request with a CSeq below the last one is out of
    /// order (answer 500). Records the CSeq when acceptable.
    pub fn accept_remote_cseq(&mut self, seq: u32, method: &Method) -> bool {
        if *method == Method::Ack || *method == Method::Cancel {
            return true;
        }
        match self.remote_cseq {
            Some(last) if seq <= last => false,
            _ => {
                self.remote_cseq = Some(seq);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::transaction::Transport;

    #[test]
    fn tokens_are_128_bit_and_unrelated() {
        let mut t = Tokens;
        let a = t.next();
        let b = t.next();
        assert_eq!(a.len(), TOKEN_HEX);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(t.branch().starts_with("z9hG4bKsb"));
    }

    #[test]
    fn without_tag_keeps_display_and_other_params() {
        assert_eq!(
            without_tag("\"Bob B\" <sip:bob@x.org>;tag=abc;foo=1"),
            "\"Bob B\" <sip:bob@x.org>;foo=1"
        );
        assert_eq!(without_tag("sip:a@b;tag=1"), "<sip:a@b>");
    }

    #[test]
    fn uac_request_carries_route_set_and_increments_cseq() {
        let peer = Target::new(Transport::Udp, "10.0.0.2:5060".parse().unwrap());
        let mut d = Dialog::uac(
            "cid".into(),
            "lt".into(),
            "<sip:1000@pbx>".into(),
            "<sip:1001@pbx>".into(),
            Uri::parse("sip:1001@10.0.0.2").unwrap(),
            peer,
            "<sip:pbx>".into(),
        );
        let mut ok = Response::new(sip::StatusCode::OK);
        ok.headers.push("To", "<sip:1001@pbx>;tag=rt");
        ok.headers.push("Contact", "<sip:1001@10.0.0.9:5062>");
        ok.headers.push("Record-Route", "<sip:p1;lr>, <sip:p2;lr>");
        d.learn_from_response(&ok);
        let bye = d.request(Method::Bye, "10.0.0.1:5060".parse().unwrap(), "z9hG4bKx");
        assert_eq!(bye.uri.as_str(), "sip:1001@10.0.0.9:5062");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(routes, ["<sip:p2;lr>", "<sip:p1;lr>"]);
        assert_eq!(bye.headers.get("CSeq"), Some("1 BYE"));
        assert_eq!(bye.headers.get("To"), Some("<sip:1001@pbx>;tag=rt"));
        let again = d.request(Method::Bye, "10.0.0.1:5060".parse().unwrap(), "z9hG4bKy");
        assert_eq!(again.headers.get("CSeq"), Some("2 BYE"));
        assert!(!d.accept_remote_cseq(0, &Method::Bye) || d.remote_cseq == Some(0));
    }

    #[test]
    fn uas_route_set_is_the_invite_s_record_route_in_order() {
        // RFC 3261 §12.1.1: the UAS takes Record-Route as it came, not reversed.
        let mut invite = Request::new(Method::Invite, Uri::parse("sip:+442079460018@pbx").unwrap());
        invite.headers.push(
            "Record-Route",
            "<sip:edge.carrier;lr>, <sip:core.carrier;lr>",
        );
        invite.headers.push("Record-Route", "<sip:sbc.carrier;lr>");
        invite.headers.push("From", "<sip:a@carrier>;tag=f");
        invite.headers.push("To", "<sip:b@pbx>");
        invite.headers.push("Call-ID", "c");
        invite.headers.push("CSeq", "1 INVITE");
        invite.headers.push("Contact", "<sip:far@10.0.0.5>");
        let peer = Target::new(Transport::Udp, "10.0.0.2:5060".parse().unwrap());
        let mut d = Dialog::uas(&invite, peer, "lt".into(), "<sip:pbx>".into());
        let bye = d.request(Method::Bye, "10.0.0.1:5060".parse().unwrap(), "z9hG4bKb");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            [
                "<sip:edge.carrier;lr>",
                "<sip:core.carrier;lr>",
                "<sip:sbc.carrier;lr>"
            ]
        );
        assert_eq!(bye.uri.as_str(), "sip:far@10.0.0.5");
    }
}
