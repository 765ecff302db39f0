//! RFC 4475 torture messages: every message's parser verdict, checked against
//! EXPECT.tsv, plus properties the engine needs to answer each one correctly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sip::{
    Contacts, Headers, Limits, Message, Method, ParseError, Scheme, check_mandatory,
    error_response, parse_datagram,
};

struct Case {
    name: String,
    category: String,
    kind: String,
    accept: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475")
}

fn cases() -> Vec<Case> {
    let tsv = std::fs::read_to_string(dir().join("EXPECT.tsv")).expect("EXPECT.tsv");
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("name\t") && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 7, "bad EXPECT line {l}");
            Case {
                name: f[0].into(),
                category: f[2].into(),
                kind: f[3].into(),
                accept: f[4].into(),
            }
        })
        .collect()
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.dat"))).expect("corpus file")
}

fn parse(name: &str) -> Result<Message, ParseError> {
    parse_datagram(&load(name), &Limits::default())
}

/// Whether `status` satisfies an EXPECT `accept` spec (`none` is not a status).
fn accepts(spec: &str, status: u16) -> bool {
    let matches = |t: &str| {
        t == "any"
            || t.parse::<u16>() == Ok(status)
            || (t.len() == 3 && t.ends_with("xx") && t.as_bytes()[0] == b'0' + (status / 100) as u8)
    };
    let toks: Vec<&str> = spec.split_whitespace().collect();
    toks.iter().any(|t| !t.starts_with('!') && matches(t))
        && !toks.iter().any(|t| {
            t.strip_prefix('!')
                .is_some_and(|x| !x.contains(':') && matches(x))
        })
}

fn without_cl(h: &Headers) -> Vec<(String, String)> {
    h.iter()
        .filter(|(n, _)| *n != "Content-Length")
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect()
}

fn assert_round_trip(name: &str, m: &Message) {
    let bytes = m.to_bytes();
    let again = parse_datagram(&bytes, &Limits::default()).unwrap_or_else(|e| {
        panic!(
            "{name}: re-parse failed: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        without_cl(&again),
        without_cl(m),
        "{name}: headers differ after round trip"
    );
    assert_eq!(again.body(), m.body(), "{name}: body differs");
    match (m, &again) {
        (Message::Request(a), Message::Request(b)) => {
            assert_eq!((&a.method, &a.uri), (&b.method, &b.uri), "{name}");
        }
        (Message::Response(a), Message::Response(b)) => {
            assert_eq!((a.status, &a.reason), (b.status, &b.reason), "{name}");
        }
        _ => panic!("{name}: kind changed on round trip"),
    }
    // serializing the re-parsed message is a fixed point
    assert_eq!(again.to_bytes(), bytes, "{name}: serialization not stable");
}

fn req(name: &str) -> sip::Request {
    match parse(name) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: expected a request, got {other:?}"),
    }
}

#[test]
fn corpus_is_complete() {
    let c = cases();
    assert_eq!(c.len(), 49);
    for case in &c {
        assert!(
            dir().join(format!("{}.dat", case.name)).exists(),
            "{}",
            case.name
        );
    }
}

#[test]
fn every_message_gets_the_expected_verdict() {
    let mut verdicts = BTreeMap::new();
    for case in cases() {
        let name = case.name.as_str();
        let result = parse(name);
        if let Ok(m) = &result {
            let is_req = matches!(m, Message::Request(_));
            assert_eq!(is_req, case.kind == "request", "{name}: request/response");
        }
        // Application-layer cases the parser itself must reject: duplicated
        // single-value headers (multi01) and conflicting Content-Length (mcl01).
        let parser_rejects = case.category == "invalid" || matches!(name, "multi01" | "mcl01");
        match (&result, parser_rejects) {
            (Ok(m), false) => {
                if case.category == "valid" {
                    assert_round_trip(name, m);
                }
            }
            (Err(e), true) => {
                if case.kind == "request" {
                    let resp = error_response(&load(name), e, &Limits::default())
                        .unwrap_or_else(|| panic!("{name}: no error response for {e}"));
                    let code = resp.status.as_u16();
                    assert_eq!(code, e.status_code(), "{name}");
                    assert!(
                        accepts(&case.accept, code),
                        "{name}: {code} not in {:?}",
                        case.accept
                    );
                    assert!(
                        resp.headers.get("To").is_some_and(|t| t.contains(";tag=")),
                        "{name}: To-tag"
                    );
                    assert_eq!(resp.headers("Via").count(), resp.headers.count("Via"));
                    assert!(resp.headers.get("CSeq").is_some(), "{name}: CSeq copied");
                }
            }
            (Ok(_), true) => panic!("{name}: parser accepted a message it must reject"),
            (Err(e), false) => panic!("{name}: parser rejected a message it must accept: {e}"),
        }
        verdicts.insert(
            name.to_owned(),
            result.map(|_| ()).map_err(|e| e.to_string()),
        );
    }
    assert_eq!(verdicts.len(), 49);
}

#[test]
fn specific_rejections_name_the_problem() {
    let cases: &[(&str, u16, &str)] = &[
        ("badvers", 505, "version"),
        ("mismatch01", 400, "CSeq"),
        ("mismatch02", 400, "CSeq"),
        ("clerr", 400, "Content-Length"),
        ("ncl", 400, "Content-Length"),
        ("scalar02", 400, ""),
        ("ltgtruri", 400, "<>"),
        ("lwsruri", 400, "whitespace"),
        ("escruri", 400, "Request-URI"),
        ("quotbal", 400, "quoted"),
        ("baddate", 400, "Date"),
        ("badbranch", 400, "branch"),
        ("multi01", 400, "more than one"),
        ("mcl01", 400, "Content-Length"),
        ("badinv01", 400, "Via"),
    ];
    for (name, code, needle) in cases {
        let e = parse(name).expect_err(name);
        assert_eq!(e.status_code(), *code, "{name}: {e}");
        assert!(e.to_string().contains(needle), "{name}: {e}");
        let r = error_response(&load(name), &e, &Limits::default()).expect(name);
        assert!(r.reason.contains(needle), "{name}: {}", r.reason);
    }
    for name in ["bigcode", "scalarlg"] {
        assert!(parse(name).is_err(), "{name}");
        // responses are never answered
        let e = parse(name).unwrap_err();
        assert!(error_response(&load(name), &e, &Limits::default()).is_none());
    }
}

#[test]
fn valid_messages_expose_their_content() {
    let w = req("wsinv");
    assert_eq!(w.method, Method::Invite);
    assert_eq!(w.to_addr().unwrap().unwrap().tag(), Some("1918181833n"));
    let from = w.from_addr().unwrap().unwrap();
    assert_eq!(from.display_name().unwrap(), "J Rosenberg \\\"");
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(w.max_forwards().unwrap(), Some(68));
    let cseq = w.cseq().unwrap().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let vias = w.vias().unwrap();
    let t: Vec<_> = vias.iter().map(|v| (v.transport, v.host)).collect();
    assert_eq!(
        t,
        [
            ("UDP", "192.0.2.2"),
            ("TCP", "spindle.example.com"),
            ("UDP", "192.168.255.111")
        ]
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(
        w.get("NewFangledHeader"),
        Some("newfangled value   continued newfangled value")
    );
    assert_eq!(w.get("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    assert_eq!(w.get("Subject"), Some(""));
    let Contacts::List(c) = w.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].q(), Some(330));
    assert_eq!(c[0].display_name().unwrap(), "Quoted string \"\"");
    assert_eq!(c[0].params.value("newparam"), Some("newvalue"));
    assert_eq!(
        w.routes().unwrap()[0].uri.params().get("unknown-no-value"),
        Some(None)
    );
    assert_eq!(w.body.len(), 150);

    let i = req("intmeth");
    assert_eq!(
        i.method,
        Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert_eq!(
        i.uri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        i.uri.as_ref().password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(
        i.to_addr().unwrap().unwrap().display_name().unwrap(),
        "BEL:\x07 NUL:\0 DEL:\x7f"
    );

    let e = req("esc01");
    let to = e.to_addr().unwrap().unwrap();
    assert!(
        to.uri
            .equivalent(&sip::UriRef::parse("sip:user@example.com").unwrap())
    );
    assert_eq!(to.uri.canonical_aor().unwrap(), "sip:user@example.com");
    assert_eq!(e.uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(
        e.uri.as_ref().user_unescaped().unwrap().as_ref(),
        b"sips:user@example.com"
    );

    let n = req("escnull");
    let Contacts::List(c) = n.contacts().unwrap() else {
        panic!()
    };
    let users: Vec<_> = c
        .iter()
        .map(|c| c.uri.user_unescaped().unwrap().into_owned())
        .collect();
    assert_eq!(users, [b"\0".to_vec(), b"\0\0".to_vec()]);
    let keys: Vec<_> = c.iter().map(|c| c.uri.canonical_aor().unwrap()).collect();
    assert_eq!(
        keys,
        ["sip:%00@host5.example.com", "sip:%00%00@host5.example.com"]
    );
    let aor = n.to_addr().unwrap().unwrap().uri.canonical_aor().unwrap();
    assert_eq!(
        aor, "sip:null-%00-null@example.com",
        "AOR not truncated at NUL"
    );
    assert_eq!(
        n.to_addr()
            .unwrap()
            .unwrap()
            .uri
            .user_unescaped()
            .unwrap()
            .as_ref(),
        b"null-\0-null"
    );

    let e2 = req("esc02");
    assert_eq!(e2.method, Method::Extension("RE%47IST%45R".into()));
    assert_ne!(e2.method, Method::Register);
    assert_eq!(
        e2.headers("Contact").count(),
        2,
        "C%6Fntact is a different header"
    );
    assert_eq!(e2.get("C%6Fntact"), Some("<sip:alias2@host2.example.com>"));

    assert_eq!(
        req("lwsdisp")
            .from_addr()
            .unwrap()
            .unwrap()
            .display_name()
            .unwrap(),
        "caller"
    );
    assert_eq!(req("longreq").vias().unwrap().len(), 34);
    assert_eq!(req("semiuri").uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(req("semiuri").values("Accept").count(), 6);
    let tr: Vec<_> = req("transports")
        .vias()
        .unwrap()
        .iter()
        .map(|v| v.transport.to_owned())
        .collect();
    assert_eq!(tr, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let mp = req("mpart01");
    assert!(mp.body.contains(&0));
    assert_eq!(Some(mp.body.len() as u64), mp.content_length().unwrap());

    let d = req("dblreq");
    assert_eq!(d.method, Method::Register);
    assert!(d.body.is_empty(), "trailing INVITE is ignored");
    assert_eq!(
        d.call_id().unwrap(),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );

    let Message::Response(u) = parse("unreason").unwrap() else {
        panic!()
    };
    assert_eq!(u.status.as_u16(), 200);
    assert!(u.reason.starts_with("= 2**3 * 5**2 "));
    assert!(!u.reason.is_ascii());
    let Message::Response(nr) = parse("noreason").unwrap() else {
        panic!()
    };
    assert_eq!((nr.status.as_u16(), nr.reason.as_str()), (100, ""));

    // RFC 2543 style: accepted, and the missing pieces are observable
    let o = req("inv2543");
    let v = o.top_via().unwrap().unwrap();
    assert_eq!(v.branch(), None);
    assert!(!v.is_rfc3261_branch());
    assert_eq!(o.from_addr().unwrap().unwrap().tag(), None);
    assert_eq!(o.max_forwards().unwrap(), None);
    assert_eq!(o.content_length().unwrap(), None);
    assert!(
        !o.body.is_empty(),
        "no Content-Length on UDP: body is the rest of the datagram"
    );
    // bare addr-spec: `;user=phone` is a header parameter, not a URI parameter
    assert_eq!(
        o.to_addr().unwrap().unwrap().params.value("user"),
        Some("phone")
    );
    assert_eq!(
        o.from_addr().unwrap().unwrap().uri.params().value("user"),
        Some("phone")
    );
}

#[test]
fn application_cases_expose_what_the_engine_decides_on() {
    let i = req("insuf");
    assert!(matches!(check_mandatory(&i), Err(ParseError::Missing(_))));
    let r = i.response_tagged(sip::StatusCode::BAD_REQUEST);
    assert_eq!(r.vias().unwrap().len(), 1);
    assert_eq!(r.cseq().unwrap().unwrap().seq, 193942);
    for name in ["wsinv", "esc01", "cparam01", "zeromf", "unksm2"] {
        assert!(check_mandatory(&req(name)).is_ok(), "{name}");
    }

    let u = req("unkscm");
    assert_eq!(u.uri.scheme(), Scheme::Other);
    assert_eq!(u.uri.as_str(), "nobodyKnowsThisScheme:totallyopaquecontent");
    let n = req("novelsc");
    assert!(!n.uri.is_sip());
    assert_eq!(n.uri.as_ref().scheme_str(), "soap.beep");
    assert_eq!(n.uri.as_str(), "soap.beep://192.0.2.103:3002");

    let s = req("unksm2");
    assert_eq!(
        s.to_addr().unwrap().unwrap().uri.as_str(),
        "isbn:2983792873"
    );
    assert!(!s.to_addr().unwrap().unwrap().uri.is_sip());
    assert_eq!(
        s.from_addr().unwrap().unwrap().uri.as_str(),
        "http://www.example.com"
    );
    let Contacts::List(c) = s.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.as_str(), "name:John_Smith");
    assert!(!c[0].uri.is_sip());

    let b = req("bext01");
    let req_tags: Vec<_> = b.require().collect();
    assert_eq!(
        req_tags,
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(b.values("Proxy-Require").count(), 2);

    assert_eq!(
        req("invut").content_type().unwrap(),
        Some("application/unknownformat")
    );
    let a = req("regaut01");
    let auth: Vec<_> = a.headers("Authorization").collect();
    assert_eq!(auth, ["NoOneKnowsThisScheme opaque-data=here"]);

    let Message::Response(bc) = parse("bcast").unwrap() else {
        panic!()
    };
    assert_eq!(bc.vias().unwrap()[1].host, "255.255.255.255");

    let z = req("zeromf");
    assert_eq!(z.max_forwards().unwrap(), Some(0));

    let m_c1 = req("cparam01");
    let Contacts::List(c1) = m_c1.contacts().unwrap() else {
        panic!()
    };
    assert!(
        c1[0].params.contains("unknownparam"),
        "contact-param, not URI param"
    );
    assert!(c1[0].uri.params().is_empty());
    assert!(!c1[0].bracketed);
    let m_c2 = req("cparam02");
    let Contacts::List(c2) = m_c2.contacts().unwrap() else {
        panic!()
    };
    assert!(c2[0].uri.params().contains("unknownparam"));
    assert!(c2[0].params.is_empty());
    let m_c3 = req("regescrt");
    let Contacts::List(c3) = m_c3.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c3[0].uri.headers(), Some("Route=%3Csip:sip.example.com%3E"));
    assert_eq!(
        c3[0].uri.as_str(),
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );

    let sdp = req("sdp01");
    assert!(
        !sdp.values("Accept")
            .any(|v| v.eq_ignore_ascii_case("application/sdp"))
    );
}

#[test]
fn serialized_valid_messages_frame_back_out_of_a_stream() {
    let valid: Vec<Message> = cases()
        .iter()
        .filter(|c| c.category == "valid")
        .map(|c| parse(&c.name).unwrap())
        .collect();
    let mut stream = b"\r\n\r\n".to_vec();
    for m in &valid {
        stream.extend_from_slice(&m.to_bytes());
    }
    let limits = Limits::default();
    let mut rest = &stream[..];
    let mut out = Vec::new();
    let mut pings = 0;
    while !rest.is_empty() {
        match sip::frame_stream(rest, &limits) {
            sip::Framing::Ping(n) => {
                pings += 1;
                rest = &rest[n..];
            }
            sip::Framing::Complete(n) => {
                out.push(sip::parse_stream_message(&rest[..n], &limits).unwrap());
                rest = &rest[n..];
            }
            other => panic!("unexpected {other:?} with {} bytes left", rest.len()),
        }
    }
    assert_eq!(pings, 1);
    assert_eq!(out.len(), valid.len());
    for (a, b) in out.iter().zip(&valid) {
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.body(), b.body());
    }
}
