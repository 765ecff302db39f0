//! Transaction keys (RFC 3261 §17.1.3 and §17.2.3) and branch generation.

use std::fmt;
use std::sync::Arc;

use super::TxError;
use crate::message::{Method, Request, Response};
use crate::{MAGIC_COOKIE, Via};

/// Which side of a transaction this layer is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// Identifies a transaction.
///
/// Client keys are the top Via branch plus the CSeq method (§17.1.3). Server
/// keys are branch, sent-by and method, with ACK folded into INVITE
/// (§17.2.3). For requests whose branch lacks the magic cookie (RFC 2543
/// peers) the branch field holds the Request-URI, From tag, Call-ID, CSeq
/// number and top Via instead. A CANCEL has its own key; the key of the
/// INVITE it targets is [`TxKey::with_method`]`(Method::Invite)`.
/// Cloning is cheap (shared strings).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    role: Role,
    method: Method,
    branch: Arc<str>,
    sent_by: Arc<str>,
}

impl TxKey {
    pub fn role(&self) -> Role {
        self.role
    }
    /// The transaction's method (INVITE for an INVITE transaction's ACK).
    pub fn method(&self) -> &Method {
        &self.method
    }
    /// The Via branch (for RFC 2543 keys: the joined matching fields).
    pub fn branch(&self) -> &str {
        &self.branch
    }
    /// The normalized sent-by (`host:port`) of server keys; empty for clients.
    pub fn sent_by(&self) -> &str {
        &self.sent_by
    }
    /// Whether the key came from an RFC 3261 (magic cookie) branch.
    pub fn is_rfc3261(&self) -> bool {
        self.branch.starts_with(MAGIC_COOKIE)
    }
    /// The same key for another method: a CANCEL's key with INVITE is the key
    /// of the INVITE transaction it cancels, and vice versa.
    pub fn with_method(&self, method: Method) -> TxKey {
        TxKey {
            method,
            ..self.clone()
        }
    }

    pub(crate) fn client(branch: &str, method: Method) -> TxKey {
        TxKey {
            role: Role::Client,
            method,
            branch: branch.into(),
            sent_by: "".into(),
        }
    }

    /// The server key of a received request (ACK maps to INVITE).
    pub(crate) fn for_request(req: &Request) -> Result<TxKey, TxError> {
        let via = req.top_via()?.ok_or(TxError::MissingVia)?;
        let method = match &req.method {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        if via.is_rfc3261_branch() {
            let branch = via.branch().unwrap_or_default();
            return Ok(TxKey {
                role: Role::Server,
                method,
                branch: branch.into(),
                sent_by: normalized_sent_by(&via).into(),
            });
        }
        // RFC 2543 fallback (§17.2.3): everything but the To tag, which is
        // checked separately for ACKs.
        let cseq = req.cseq()?.ok_or(TxError::MissingHeader("CSeq"))?;
        let from = req.from_addr()?.ok_or(TxError::MissingHeader("From"))?;
        let call_id = req.call_id()?.ok_or(TxError::MissingHeader("Call-ID"))?;
        let top = req.values("Via").next().unwrap_or_default().trim();
        let joined = format!(
            "{}\n{}\n{}\n{}\n{}",
            req.uri.as_str(),
            from.tag().unwrap_or_default(),
            call_id,
            cseq.seq,
            top
        );
        Ok(TxKey {
            role: Role::Server,
            method,
            branch: joined.into(),
            sent_by: "".into(),
        })
    }

    /// The client key a response matches: top Via branch + CSeq method.
    /// `None` when either is missing or the branch is not ours (no cookie).
    pub(crate) fn for_response(resp: &Response) -> Result<Option<TxKey>, TxError> {
        let Some(via) = resp.top_via()? else {
            return Ok(None);
        };
        let Some(cseq) = resp.cseq()? else {
            return Ok(None);
        };
        Ok(match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && cseq.method != Method::Ack => {
                Some(TxKey::client(b, cseq.method))
            }
            _ => None,
        })
    }
}

impl fmt::Debug for TxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}/{}/{}",
            self.role,
            self.method,
            self.branch.replace('\n', "|")
        )?;
        if !self.sent_by.is_empty() {
            write!(f, "@{}", self.sent_by)?;
        }
        Ok(())
    }
}

/// `host:port`, host lower-cased, the transport's default port filled in.
pub(crate) fn normalized_sent_by(via: &Via<'_>) -> String {
    let tls =
        via.transport.eq_ignore_ascii_case("TLS") || via.transport.eq_ignore_ascii_case("WSS");
    let port = via.port.unwrap_or(if tls { 5061 } else { 5060 });
    format!("{}:{}", via.host.to_ascii_lowercase(), port)
}

/// Generates RFC 3261 branches: `z9hG4bK` + 32 hex digits, 128 bits from
/// the thread's CSPRNG (`rand::thread_rng`, OS-seeded ChaCha), so a peer
/// that sees any number of our branches cannot predict the next one (and
/// so cannot forge a response that matches a transaction by branch).
#[derive(Debug, Default)]
pub struct BranchGenerator {
    _private: (),
}

impl BranchGenerator {
    /// `seed` is not used: branches must not be derivable from a 64-bit
    /// value. Kept so callers that seeded the old generator still build.
    pub fn new(_seed: u64) -> Self {
        BranchGenerator { _private: () }
    }

    /// The next branch.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> String {
        let v: u128 = rand::random();
        format!("{MAGIC_COOKIE}{v:032x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Message, parse_datagram};

    fn req(text: &str) -> Request {
        match parse_datagram(text.replace('\n', "\r\n").as_bytes(), &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\n\
Via: SIP/2.0/UDP A.example;branch=z9hG4bKabc\n\
Via: SIP/2.0/UDP c.example;branch=z9hG4bKzzz\n\
From: <sip:a@a.example>;tag=f1\nTo: <sip:bob@b.example>\nCall-ID: c1\n\
CSeq: 4 INVITE\nMax-Forwards: 70\n\n";

    #[test]
    fn server_key_uses_branch_sent_by_and_method() {
        let inv = req(INVITE);
        let k = TxKey::for_request(&inv).unwrap();
        assert_eq!(k.role(), Role::Server);
        assert_eq!(k.branch(), "z9hG4bKabc");
        assert_eq!(k.sent_by(), "a.example:5060");
        assert_eq!(k.method(), &Method::Invite);
        assert!(k.is_rfc3261());
        let ack = req(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("4 INVITE", "4 ACK")
            .replace("To: <sip:bob@b.example>", "To: <sip:bob@b.example>;tag=t9"));
        assert_eq!(TxKey::for_request(&ack).unwrap(), k);
        let cancel = req(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("4 INVITE", "4 CANCEL"));
        let ck = TxKey::for_request(&cancel).unwrap();
        assert_ne!(ck, k);
        assert_eq!(ck.with_method(Method::Invite), k);
        let other_port = req(&INVITE.replace("A.example;", "a.example:5062;"));
        assert_ne!(TxKey::for_request(&other_port).unwrap(), k);
        let explicit = req(&INVITE.replace("A.example;", "a.example:5060;"));
        assert_eq!(TxKey::for_request(&explicit).unwrap(), k);
    }

    #[test]
    fn sent_by_defaults_follow_the_transport() {
        let tls = req(&INVITE.replace("SIP/2.0/UDP A.example;", "SIP/2.0/TLS A.example;"));
        assert_eq!(
            TxKey::for_request(&tls).unwrap().sent_by(),
            "a.example:5061"
        );
        let v6 = req(&INVITE.replace("A.example;", "[2001:DB8::1]:5070;"));
        assert_eq!(
            TxKey::for_request(&v6).unwrap().sent_by(),
            "[2001:db8::1]:5070"
        );
    }

    #[test]
    fn rfc2543_key_ignores_to_tag_and_method_of_ack() {
        let old = INVITE.replace("branch=z9hG4bKabc", "branch=1");
        let inv = req(&old);
        let k = TxKey::for_request(&inv).unwrap();
        assert!(!k.is_rfc3261());
        let ack = req(&old
            .replace("INVITE sip", "ACK sip")
            .replace("4 INVITE", "4 ACK")
            .replace("To: <sip:bob@b.example>", "To: <sip:bob@b.example>;tag=t9"));
        assert_eq!(TxKey::for_request(&ack).unwrap(), k);
        let next = req(&old.replace("4 INVITE", "5 INVITE"));
        assert_ne!(TxKey::for_request(&next).unwrap(), k);
        let other_from = req(&old.replace("tag=f1", "tag=f2"));
        assert_ne!(TxKey::for_request(&other_from).unwrap(), k);
        let no_branch = req(&old.replace(";branch=1", ""));
        assert!(!TxKey::for_request(&no_branch).unwrap().is_rfc3261());
    }

    #[test]
    fn request_without_via_has_no_key() {
        let r = req("OPTIONS sip:b SIP/2.0\nCSeq: 1 OPTIONS\n\n");
        assert_eq!(TxKey::for_request(&r), Err(TxError::MissingVia));
    }

    #[test]
    fn response_key_is_branch_and_cseq_method() {
        let mut resp = req(INVITE).response(crate::StatusCode::OK);
        let k = TxKey::for_response(&resp).unwrap().unwrap();
        assert_eq!(k, TxKey::client("z9hG4bKabc", Method::Invite));
        resp.headers.set("CSeq", "4 CANCEL");
        assert_eq!(
            TxKey::for_response(&resp).unwrap().unwrap(),
            TxKey::client("z9hG4bKabc", Method::Cancel)
        );
        resp.headers.set("Via", "SIP/2.0/UDP a.example;branch=old");
        assert_eq!(TxKey::for_response(&resp).unwrap(), None);
    }

    #[test]
    fn branches_are_distinct_and_cookied() {
        let mut g = BranchGenerator::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let b = g.next();
            assert!(b.starts_with(MAGIC_COOKIE));
            assert_eq!(b.len(), MAGIC_COOKIE.len() + 32);
            assert!(seen.insert(b));
        }
        // Same seed, different branches: nothing is derived from the seed.
        assert_ne!(
            BranchGenerator::new(1).next(),
            BranchGenerator::new(1).next()
        );
    }
}
