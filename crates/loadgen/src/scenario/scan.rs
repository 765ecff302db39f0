//! A fast read of the few things a client needs from a response (status,
//! top Via branch, challenges), so the generator stays much cheaper than
//! the server it measures. Anything unusual (folded lines, no branch) makes
//! it give up, and the caller falls back to the full `sip` parser.

/// The parts of a response the scenarios act on, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub status: u16,
    /// The branch of the top Via.
    pub branch: &'a str,
    /// `WWW-Authenticate` values, then `Proxy-Authenticate` ones (at most
    /// [`MAX_CHALLENGES`] of each kind).
    www: [&'a str; MAX_CHALLENGES],
    n_www: usize,
    proxy: [&'a str; MAX_CHALLENGES],
    n_proxy: usize,
}

pub const MAX_CHALLENGES: usize = 4;

impl<'a> Reply<'a> {
    pub fn new(status: u16, branch: &'a str) -> Self {
        Reply {
            status,
            branch,
            www: [""; MAX_CHALLENGES],
            n_www: 0,
            proxy: [""; MAX_CHALLENGES],
            n_proxy: 0,
        }
    }

    pub fn push_challenge(&mut self, proxy: bool, value: &'a str) {
        let (arr, n) = if proxy {
            (&mut self.proxy, &mut self.n_proxy)
        } else {
            (&mut self.www, &mut self.n_www)
        };
        if let Some(slot) = arr.get_mut(*n) {
            *slot = value;
            *n += 1;
        }
    }

    /// `WWW-Authenticate` values (or `Proxy-Authenticate` ones for a 407).
    pub fn challenges(&self) -> &[&'a str] {
        if self.status == 407 {
            self.proxy.get(..self.n_proxy).unwrap_or(&[])
        } else {
            self.www.get(..self.n_www).unwrap_or(&[])
        }
    }

    /// From a fully parsed response (the slow path).
    pub fn from_response(resp: &'a sip::Response) -> Option<Self> {
        let via = resp.top_via().ok().flatten()?;
        let mut r = Reply::new(resp.status.as_u16(), via.branch()?);
        for v in resp.headers("WWW-Authenticate") {
            r.push_challenge(false, v);
        }
        for v in resp.headers("Proxy-Authenticate") {
            r.push_challenge(true, v);
        }
        Some(r)
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The branch parameter of the first via-parm of a Via value.
fn branch_of(via: &str) -> Option<&str> {
    let first = via.split(',').next()?;
    for param in first.split(';').skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue; // a flag such as `rport`
        };
        if name.trim().eq_ignore_ascii_case("branch") {
            let v = value.trim();
            return (!v.is_empty()).then_some(v);
        }
    }
    None
}

/// The quick path. `None` means "use the full parser", not "invalid".
pub fn scan(msg: &[u8]) -> Option<Reply<'_>> {
    let text = std::str::from_utf8(msg).ok()?;
    let rest = text.strip_prefix("SIP/2.0 ")?;
    let code = rest.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = code.parse().ok()?;
    if !(100..=699).contains(&status) {
        return None;
    }
    let mut branch = None;
    let mut reply = Reply::new(status, "");
    // lines end in CRLF; splitting on the LF byte is cheaper than on "\r\n"
    let mut lines = rest.split('\n');
    lines.next(); // the rest of the status line
    for line in lines {
        let line = line.strip_suffix('\r')?;
        if line.is_empty() {
            break;
        }
        if line.bytes().next().is_some_and(is_ws) {
            return None; // folded header: leave it to the parser
        }
        let (name, value) = line.split_once(':')?;
        let name = name.trim_end_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        if branch.is_none() && (name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v"))
        {
            branch = Some(branch_of(value)?);
        } else if name.eq_ignore_ascii_case("www-authenticate") {
            reply.push_challenge(false, value);
        } else if name.eq_ignore_ascii_case("proxy-authenticate") {
            reply.push_challenge(true, value);
        }
    }
    reply.branch = branch?;
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 127.0.0.2:4000;rport;branch=z9hG4bKlg1.2.3;received=127.0.0.2, SIP/2.0/UDP x;branch=z9hG4bKno\r\n\
        Via: SIP/2.0/UDP y;branch=z9hG4bKnope\r\n\
        From: <sip:1@a>;tag=x\r\nTo: <sip:1@a>;tag=y\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"a\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\n\
        www-authenticate: Digest realm=\"a\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn fast_and_full_paths_agree() {
        let fast = scan(CHALLENGE.as_bytes()).unwrap();
        assert_eq!(fast.status, 401);
        assert_eq!(fast.branch, "z9hG4bKlg1.2.3");
        assert_eq!(fast.challenges().len(), 2);
        assert!(fast.challenges()[1].contains("MD5"));
        let parsed = sip::parse_datagram(CHALLENGE.as_bytes(), &sip::Limits::default()).unwrap();
        let full = Reply::from_response(parsed.as_response().unwrap()).unwrap();
        assert_eq!(fast, full);
    }

    #[test]
    fn unusual_input_falls_back() {
        let folded = CHALLENGE.replace("Call-ID: c\r\n", "Call-ID:\r\n c\r\n");
        assert_eq!(scan(folded.as_bytes()), None);
        let no_branch = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        assert_eq!(scan(no_branch.as_bytes()), None);
        assert_eq!(scan(b"REGISTER sip:a SIP/2.0\r\n\r\n"), None);
        assert_eq!(scan(b"SIP/2.0 99 Odd\r\n\r\n"), None);
        assert_eq!(scan(b"SIP/2.0 2x0 OK\r\n"), None);
        assert_eq!(scan(&[0xff, 0xfe]), None);
        // compact Via and a proxy challenge
        let r = scan(b"SIP/2.0 407 Proxy\r\nv: SIP/2.0/TCP h;BRANCH=z9hG4bKq\r\nProxy-Authenticate: Digest realm=\"p\"\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.branch), (407, "z9hG4bKq"));
        assert_eq!(r.challenges(), ["Digest realm=\"p\""]);
    }

    #[test]
    fn never_panics_on_truncations() {
        for n in 0..CHALLENGE.len() {
            let _ = scan(CHALLENGE.as_bytes().get(..n).unwrap());
        }
    }
}
