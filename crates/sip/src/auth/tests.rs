use std::time::Duration;

use super::*;

const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC_REALM: &str = "http-auth@example.org";

fn rfc_params<'a>(algorithm: Algorithm, ha1: &'a str) -> ResponseParams<'a> {
    ResponseParams {
        algorithm,
        ha1,
        nonce: RFC_NONCE,
        nc: "00000001",
        cnonce: RFC_CNONCE,
        qop: Some("auth"),
        method: "GET",
        uri: "/dir/index.html",
    }
}

#[test]
fn rfc7616_example_md5() {
    let ha1 = ha1_md5("Mufasa", RFC_REALM, "Circle of Life");
    assert_eq!(ha1.len(), 32);
    let r = compute_response(&rfc_params(Algorithm::Md5, &ha1)).unwrap();
    assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn rfc7616_example_sha256() {
    let ha1 = ha1_sha256("Mufasa", RFC_REALM, "Circle of Life");
    assert_eq!(ha1.len(), 64);
    let r = compute_response(&rfc_params(Algorithm::Sha256, &ha1)).unwrap();
    assert_eq!(
        r,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    // Uppercase stored HA1 is accepted the same.
    let upper = ha1.to_ascii_uppercase();
    assert_eq!(
        compute_response(&rfc_params(Algorithm::Sha256, &upper)).unwrap(),
        r
    );
    // A HA1 of the wrong length is refused, not hashed.
    assert_eq!(
        compute_response(&rfc_params(Algorithm::Sha256, &ha1[..32])),
        None
    );
}

#[test]
fn rfc7616_example_header_parses() {
    let h = r#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    let c = Credentials::parse(h).unwrap();
    assert_eq!(c.username, "Mufasa");
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.nc_value, Some(1));
    assert_eq!(
        c.opaque.as_deref(),
        Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    );
    assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const REALM: &str = "acme.pbx.example";
const URI: &str = "sip:acme.pbx.example";
const T0: Duration = Duration::from_secs(1_800_000_000);

fn verifier() -> Verifier {
    Verifier::new(SECRET, VerifierConfig::default())
}

fn stored(alg: Algorithm, password: &str) -> String {
    ha1(alg, "1001", REALM, password)
}

/// Challenge → client answer → header → parse, as over the wire.
fn answer(v: &Verifier, alg: Algorithm, password: &str, nc: u32, now: Duration) -> Credentials {
    let [sha, md5] = v.challenge_headers(REALM, false, now);
    let hv = if alg.base() == Algorithm::Sha256 {
        sha
    } else {
        md5
    };
    let mut ch = Challenge::parse(&hv).unwrap();
    ch.algorithm = alg;
    let creds = ch.answer("1001", password, "REGISTER", URI, nc, "c0ffee42");
    Credentials::parse(&creds.to_header_value()).unwrap()
}

#[test]
fn round_trip_all_algorithms() {
    let v = verifier();
    for alg in [
        Algorithm::Sha256,
        Algorithm::Md5,
        Algorithm::Sha256Sess,
        Algorithm::Md5Sess,
    ] {
        let c = answer(&v, alg, "s3cret", 1, T0);
        assert_eq!(c.algorithm, alg);
        let verdict = v.verify(
            &c,
            "REGISTER",
            URI,
            REALM,
            &stored(alg.base(), "s3cret"),
            T0,
        );
        assert_eq!(verdict, Verdict::Ok, "{alg}");
    }
}

#[test]
fn challenge_headers_sha256_first_and_stale_flag() {
    let v = verifier();
    let [a, b] = v.challenge_headers(REALM, true, T0);
    assert!(a.starts_with("Digest realm=\"acme.pbx.example\", qop=\"auth\", nonce=\""));
    assert!(a.contains("algorithm=SHA-256"));
    assert!(b.contains("algorithm=MD5"));
    let (ca, cb) = (Challenge::parse(&a).unwrap(), Challenge::parse(&b).unwrap());
    assert!(ca.stale && cb.stale && ca.qop_auth);
    assert_eq!(ca.nonce.len(), NONCE_LEN);
    assert_eq!(ca.nonce, cb.nonce);
    assert!(ca.opaque.is_some());
    let [c, _] = v.challenge_headers(REALM, false, T0);
    assert!(!c.contains("stale"));
    assert_ne!(
        Challenge::parse(&c).unwrap().nonce,
        ca.nonce,
        "nonces are fresh"
    );
}

#[test]
fn wrong_password_is_bad_response() {
    let v = verifier();
    let c = answer(&v, Algorithm::Sha256, "guess", 1, T0);
    let verdict = v.verify(
        &c,
        "REGISTER",
        URI,
        REALM,
        &stored(Algorithm::Sha256, "s3cret"),
        T0,
    );
    assert_eq!(verdict, Verdict::BadResponse);
    assert!(verdict.counts_as_failure());
    // A wrong guess does not burn the nonce-count for the real client.
    let good = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    assert_eq!(
        v.verify(&good, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Ok
    );
}

#[test]
fn ha1_of_other_algorithm_is_bad_stored_ha1() {
    let v = verifier();
    let c = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    let md5 = stored(Algorithm::Md5, "s3cret");
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &md5, T0),
        Verdict::BadStoredHa1
    );
}

#[test]
fn stale_nonce_only_for_correct_response() {
    let v = verifier();
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    let c = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    let at_limit = T0 + Duration::from_secs(300);
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, at_limit),
        Verdict::Ok
    );
    let later = T0 + Duration::from_secs(301);
    let c2 = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    let verdict = v.verify(&c2, "REGISTER", URI, REALM, &ha1, later);
    assert_eq!(verdict, Verdict::Stale);
    assert!(verdict.is_stale());
    let bad = answer(&v, Algorithm::Sha256, "nope", 1, T0);
    assert_eq!(
        v.verify(&bad, "REGISTER", URI, REALM, &ha1, later),
        Verdict::BadResponse
    );
}

#[test]
fn nonce_survives_restart_with_same_secret_only() {
    let c = answer(&verifier(), Algorithm::Md5, "s3cret", 1, T0);
    let ha1 = stored(Algorithm::Md5, "s3cret");
    let restarted = verifier();
    assert_eq!(
        restarted.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Ok
    );
    let other = Verifier::new(
        b"another secret entirely.........",
        VerifierConfig::default(),
    );
    assert_eq!(
        other.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
}

#[test]
fn forged_nonce_bit_flips_are_bad_nonce() {
    let v = verifier();
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    let good = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    let raw = good.nonce.clone().into_bytes();
    for i in 0..raw.len() {
        let mut forged = raw.clone();
        // Swap one base64url character for another valid one.
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        let mut c = good.clone();
        c.nonce = String::from_utf8(forged).unwrap();
        // Recompute the response so only the nonce MAC can catch it.
        let nc = c.nc.clone().unwrap();
        let cn = c.cnonce.clone().unwrap();
        c.response = compute_response(&ResponseParams {
            algorithm: Algorithm::Sha256,
            ha1: &ha1,
            nonce: &c.nonce,
            nc: &nc,
            cnonce: &cn,
            qop: Some("auth"),
            method: "REGISTER",
            uri: URI,
        })
        .unwrap();
        assert_eq!(
            v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
            Verdict::BadNonce,
            "byte {i}"
        );
    }
    let mut c = good.clone();
    c.nonce.push('A');
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
    c.nonce = "not base64 at all!!".into();
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
}

#[test]
fn nonce_from_the_future_is_bad() {
    let v = verifier();
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    let c = answer(
        &v,
        Algorithm::Sha256,
        "s3cret",
        1,
        T0 + Duration::from_secs(60),
    );
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
}

#[test]
fn wrong_realm_and_cross_realm_nonce() {
    let v = verifier();
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    let c = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    assert_eq!(
        v.verify(&c, "REGISTER", URI, "other.example", &ha1, T0),
        Verdict::WrongRealm
    );
    // A nonce minted for another tenant's realm, answered correctly for ours.
    let ch = v.challenge("other.example", Algorithm::Sha256, false, T0);
    let theirs = Challenge {
        realm: REALM.into(),
        ..ch
    };
    let c2 = theirs.answer("1001", "s3cret", "REGISTER", URI, 1, "abc");
    assert_eq!(
        v.verify(&c2, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
}

#[test]
fn uri_and_method_are_bound() {
    let v = verifier();
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    let c = answer(&v, Algorithm::Sha256, "s3cret", 1, T0);
    assert_eq!(
        v.verify(&c, "REGISTER", "sip:evil.example", REALM, &ha1, T0),
        Verdict::UriMismatch
    );
    assert_eq!(
        v.verify(&c, "INVITE", URI, REALM, &ha1, T0),
        Verdict::BadResponse
    );
    assert_eq!(
        v.verify(&c, "REGISTER", "SIP:ACME.PBX.EXAMPLE", REALM, &ha1, T0),
        Verdict::Ok
    );
}

#[test]
fn replayed_nc_refused_increasing_accepted() {
    let v = verifier();
    let ha1 = stored(Algorithm::Sha256, "s3cret");
    let [h, _] = v.challenge_headers(REALM, false, T0);
    let ch = Challenge::parse(&h).unwrap();
    let c1 = ch.answer("1001", "s3cret", "REGISTER", URI, 1, "cn");
    assert_eq!(v.verify(&c1, "REGISTER", URI, REALM, &ha1, T0), Verdict::Ok);
    assert_eq!(
        v.verify(&c1, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Replayed
    );
    let c2 = ch.answer("1001", "s3cret", "REGISTER", URI, 2, "cn");
    assert_eq!(v.verify(&c2, "REGISTER", URI, REALM, &ha1, T0), Verdict::Ok);
    let c5 = ch.answer("1001", "s3cret", "REGISTER", URI, 5, "cn");
    let c4 = ch.answer("1001", "s3cret", "REGISTER", URI, 4, "cn");
    assert_eq!(v.verify(&c5, "REGISTER", URI, REALM, &ha1, T0), Verdict::Ok);
    assert_eq!(
        v.verify(&c4, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Ok,
        "reordered"
    );
    assert_eq!(
        v.verify(&c4, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Replayed
    );
    assert_eq!(v.tracked_nonces(), 1);
}

#[test]
fn eviction_makes_old_nonces_stale_not_fresh() {
    let cfg = VerifierConfig {
        max_tracked_nonces: 2,
        ..VerifierConfig::default()
    };
    let v = Verifier::new(SECRET, cfg);
    let ha1 = stored(Algorithm::Md5, "s3cret");
    let mut creds = Vec::new();
    for i in 0..3u64 {
        let now = T0 + Duration::from_secs(i);
        let c = answer(&v, Algorithm::Md5, "s3cret", 1, now);
        assert_eq!(v.verify(&c, "REGISTER", URI, REALM, &ha1, now), Verdict::Ok);
        creds.push(c);
    }
    assert_eq!(v.tracked_nonces(), 2);
    let now = T0 + Duration::from_secs(3);
    // The first nonce was evicted: its replay is Stale, never Ok.
    assert_eq!(
        v.verify(&creds[0], "REGISTER", URI, REALM, &ha1, now),
        Verdict::Stale
    );
    // The tracked ones still refuse their replays.
    assert_eq!(
        v.verify(&creds[2], "REGISTER", URI, REALM, &ha1, now),
        Verdict::Replayed
    );
    v.sweep(T0 + Duration::from_secs(1000));
    assert_eq!(v.tracked_nonces(), 0);
}

#[test]
fn rfc2069_and_unsupported_features_refused() {
    let v = verifier();
    let ha1 = stored(Algorithm::Md5, "s3cret");
    let mut ch = v.challenge(REALM, Algorithm::Md5, false, T0);
    ch.qop_auth = false;
    let legacy = ch.answer("1001", "s3cret", "REGISTER", URI, 1, "cn");
    assert!(legacy.qop.is_none());
    let legacy = Credentials::parse(&legacy.to_header_value()).unwrap();
    assert_eq!(
        v.verify(&legacy, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::QopRequired
    );

    let mut c = answer(&v, Algorithm::Md5, "s3cret", 1, T0);
    c.qop = Some("auth-int".into());
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Unsupported
    );
    let mut c = answer(&v, Algorithm::Md5, "s3cret", 1, T0);
    c.userhash = true;
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Unsupported
    );
    let mut c = answer(&v, Algorithm::Md5, "s3cret", 1, T0);
    c.opaque = Some("tampered".into());
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
    let mut c = answer(&v, Algorithm::Md5, "s3cret", 1, T0);
    c.opaque = None; // some phones drop it: tolerated
    assert_eq!(v.verify(&c, "REGISTER", URI, REALM, &ha1, T0), Verdict::Ok);
}

// ---- parser edge cases ----

const MIN: &str = r#"username="bob", realm="r", nonce="n", uri="sip:r", response="00""#;

#[test]
fn parse_case_order_and_unquoted() {
    let c = Credentials::parse(
        "dIgEsT  RESPONSE=abc,URI=sip:r;transport=udp ,Nonce=n,Realm=r,\tUserName=bob , QOP=auth,NC=0000000a,CNONCE=xyz, ALGORITHM=sha-256,,",
    )
    .unwrap();
    assert_eq!(c.username, "bob");
    assert_eq!(c.uri, "sip:r;transport=udp");
    assert_eq!(c.response, "abc");
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.nc.as_deref(), Some("0000000a"));
    assert_eq!(c.nc_value, Some(10));
    assert_eq!(c.qop.as_deref(), Some("auth"));
}

#[test]
fn parse_escapes_and_commas_in_quotes() {
    let c = Credentials::parse(
        r#"Digest username="a\"b\\c, d", realm="x,y", nonce="n", uri="sip:r", response="00", foo="bar\"""#,
    )
    .unwrap();
    assert_eq!(c.username, r#"a"b\c, d"#);
    assert_eq!(c.realm, "x,y");
    assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
    let c = Credentials::parse(
        r#"Digest username="ünï\çode", realm="r", nonce="n", uri="u", response="0""#,
    )
    .unwrap();
    assert_eq!(c.username, "ünïçode");
}

/// Caught by the `digest_header` fuzz target's round-trip check: a qop sent
/// quoted (`qop="auth, auth-int"`) was written back bare and no longer parsed.
#[test]
fn quoted_qop_list_round_trips() {
    for qop in [r#""auth, auth-int""#, r#""""#, "auth"] {
        let h = format!(r#"Digest {MIN}, qop={qop}, nc=00000001, cnonce="c""#);
        let c = Credentials::parse(&h).unwrap();
        let value = c.to_header_value();
        assert_eq!(Credentials::parse(&value), Ok(c), "{value}");
    }
}

#[test]
fn parse_defaults_and_missing() {
    let c = Credentials::parse(&format!("Digest {MIN}")).unwrap();
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert!(c.qop.is_none() && c.nc.is_none());
    for (name, _) in [
        ("username", 0),
        ("realm", 0),
        ("nonce", 0),
        ("uri", 0),
        ("response", 0),
    ] {
        let without: Vec<&str> = MIN
            .split(", ")
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect();
        let h = format!("Digest {}", without.join(", "));
        assert!(
            matches!(Credentials::parse(&h), Err(AuthError::Missing(n)) if n == name),
            "{name}"
        );
    }
    assert_eq!(
        Credentials::parse(&format!("Digest {MIN}, qop=auth, cnonce=\"c\"")),
        Err(AuthError::Missing("nc"))
    );
    assert_eq!(
        Credentials::parse(&format!("Digest {MIN}, qop=auth, nc=00000001")),
        Err(AuthError::Missing("cnonce"))
    );
}

#[test]
fn parse_rejects_bad_input() {
    use AuthError::*;
    let p = |s: &str| Credentials::parse(s);
    assert_eq!(p(&format!("Basic {MIN}")), Err(NotDigest));
    assert_eq!(p(&format!("Digestusername=\"x\" {MIN}")), Err(NotDigest));
    assert_eq!(p(""), Err(NotDigest));
    assert_eq!(
        p(&format!("Digest {MIN}, Username=\"eve\"")),
        Err(Duplicate("username".into()))
    );
    assert!(matches!(
        p(&format!("Digest {MIN}, algorithm=SHA-512-256")),
        Err(UnsupportedAlgorithm(_))
    ));
    assert!(matches!(
        p(&format!("Digest {MIN}, nc=00000000")),
        Err(BadNonceCount(_))
    ));
    assert!(matches!(
        p(&format!("Digest {MIN}, nc=123456789")),
        Err(BadNonceCount(_))
    ));
    assert!(matches!(
        p(&format!("Digest {MIN}, nc=zz")),
        Err(BadNonceCount(_))
    ));
    assert!(matches!(
        p(&format!("Digest {MIN}, userhash=maybe")),
        Err(BadValue("userhash"))
    ));
    assert!(matches!(
        p(r#"Digest username="unterminated"#),
        Err(Syntax(_))
    ));
    assert!(matches!(p(r#"Digest username="x\"#), Err(Syntax(_))));
    assert!(matches!(p("Digest username"), Err(Syntax(_))));
    assert!(matches!(p("Digest =x"), Err(Syntax(_))));
    assert!(matches!(p("Digest username=, realm=r"), Err(Syntax(_))));
    assert!(matches!(p(r#"Digest username="a" "b""#), Err(Syntax(_))));
    assert!(matches!(
        p(r#"Digest username="a" realm="b""#),
        Err(Syntax(_))
    ));
    let long = "x".repeat(MAX_VALUE_LEN + 1);
    assert_eq!(
        p(&format!("Digest username=\"{long}\"")),
        Err(ValueTooLong("username".into()))
    );
    assert_eq!(
        p(&format!("Digest username={long}")),
        Err(ValueTooLong("username".into()))
    );
    assert_eq!(
        p(&format!("Digest {}", "a".repeat(MAX_HEADER_LEN))),
        Err(TooLong)
    );
    let many: Vec<String> = (0..MAX_PARAMS + 1).map(|i| format!("x{i}=1")).collect();
    assert_eq!(p(&format!("Digest {}", many.join(","))), Err(TooManyParams));
}

#[test]
fn parse_never_panics_on_truncations() {
    let full = r#"Digest username="a\"b", realm="r", nonce="n", uri="sip:ü", response="00", qop=auth, nc=1, cnonce="c""#;
    for (i, _) in full.char_indices() {
        let _ = Credentials::parse(&full[..i]);
        let _ = Challenge::parse(&full[..i]);
        let _ = Credentials::parse(&full[i..]);
    }
}

#[test]
fn challenge_parse_client_side() {
    let c = Challenge::parse(
        r#"Digest realm="trunk.example", nonce="abc", qop="auth,auth-int", algorithm=MD5, stale=TRUE, opaque="o""#,
    )
    .unwrap();
    assert!(c.qop_auth && c.stale);
    assert_eq!(c.opaque.as_deref(), Some("o"));
    let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
    assert!(!c.qop_auth && !c.stale);
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert_eq!(
        Challenge::parse(r#"Digest nonce="n""#),
        Err(AuthError::Missing("realm"))
    );
}

#[test]
fn unknown_user_looks_like_wrong_password() {
    let v = verifier();
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let c = answer(&v, alg, "whatever", 1, T0);
        let verdict = v.verify_unknown_user(&c, "REGISTER", URI, REALM, T0);
        assert_eq!(verdict, Verdict::BadResponse);
        assert!(verdict.counts_as_failure());
        // Even with an expired nonce: no stale hint for unknown users.
        let late = T0 + Duration::from_secs(1000);
        assert_eq!(
            v.verify_unknown_user(&c, "REGISTER", URI, REALM, late),
            Verdict::BadResponse
        );
    }
}

#[test]
fn nc_is_taken_from_the_digested_string() {
    let v = verifier();
    let ha1 = stored(Algorithm::Md5, "s3cret");
    let mut c = answer(&v, Algorithm::Md5, "s3cret", 1, T0);
    c.nc_value = Some(999); // a hand-built inconsistent value is ignored
    assert_eq!(v.verify(&c, "REGISTER", URI, REALM, &ha1, T0), Verdict::Ok);
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Replayed
    );
    let mut c = answer(&v, Algorithm::Md5, "s3cret", 1, T0);
    c.nc = Some("+0000001".into());
    assert_eq!(
        v.verify(&c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Unsupported
    );
}

#[test]
fn verifier_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<crate::guard::Guard>();
}

#[test]
fn parse_random_garbage_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7616);
    let alphabet: Vec<char> = "Digest =,\"\\ \tabcnuri:é\r\n0".chars().collect();
    for _ in 0..20_000 {
        let len = rng.gen_range(0..80);
        let mut s: String = if rng.gen_bool(0.5) {
            "Digest ".into()
        } else {
            String::new()
        };
        for _ in 0..len {
            s.push(alphabet[rng.gen_range(0..alphabet.len())]);
        }
        let _ = Credentials::parse(&s);
        let _ = Challenge::parse(&s);
    }
}

fn answer_from(
    v: &Verifier,
    source: std::net::IpAddr,
    password: &str,
    now: Duration,
) -> Credentials {
    let [_, md5] = v.challenge_headers_for(REALM, Some(source), false, now);
    let creds = Challenge::parse(&md5)
        .unwrap()
        .answer("1001", password, "REGISTER", URI, 1, "c0ffee42");
    Credentials::parse(&creds.to_header_value()).unwrap()
}

#[test]
fn nonce_is_bound_to_the_source_it_was_issued_to() {
    let v = verifier();
    let ha1 = stored(Algorithm::Md5, "s3cret");
    let phone: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    let spoofer: std::net::IpAddr = "192.0.2.66".parse().unwrap();
    let c = answer_from(&v, phone, "s3cret", T0);
    // From another address (a spoofer replaying it, or claiming to be
    // someone else), the nonce is not ours: no verdict on the password.
    assert_eq!(
        v.verify_from(Some(spoofer), &c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadNonce
    );
    assert_eq!(
        v.check_nonce(&c, REALM, Some(spoofer), T0),
        NonceStatus::Invalid
    );
    assert_eq!(v.check_nonce(&c, REALM, None, T0), NonceStatus::Invalid);
    // The IPv4-mapped form is the same source.
    let mapped: std::net::IpAddr = "::ffff:192.0.2.10".parse().unwrap();
    assert_eq!(
        v.check_nonce(&c, REALM, Some(mapped), T0),
        NonceStatus::Fresh
    );
    assert_eq!(
        v.verify_from(Some(phone), &c, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::Ok
    );
    // A wrong password under a nonce issued to this source is a failure.
    let wrong = answer_from(&v, phone, "guess", T0);
    assert_eq!(
        v.verify_from(Some(phone), &wrong, "REGISTER", URI, REALM, &ha1, T0),
        Verdict::BadResponse
    );
}

#[test]
fn check_nonce_sees_garbage_and_age_without_a_password() {
    let v = verifier();
    let ip: std::net::IpAddr = "2001:db8::7".parse().unwrap();
    let c = answer_from(&v, ip, "anything", T0);
    assert_eq!(c.nonce.len(), NONCE_LEN);
    assert_eq!(v.check_nonce(&c, REALM, Some(ip), T0), NonceStatus::Fresh);
    let later = T0 + Duration::from_secs(301);
    assert_eq!(
        v.check_nonce(&c, REALM, Some(ip), later),
        NonceStatus::Expired
    );
    assert_eq!(
        v.check_nonce(&c, "other.example", Some(ip), T0),
        NonceStatus::Invalid
    );
    let mut garbage = c.clone();
    garbage.nonce = "A".repeat(NONCE_LEN);
    assert_eq!(
        v.check_nonce(&garbage, REALM, Some(ip), T0),
        NonceStatus::Invalid
    );
    let mut opaque = c.clone();
    opaque.opaque = Some("00".into());
    assert_eq!(
        v.check_nonce(&opaque, REALM, Some(ip), T0),
        NonceStatus::Invalid
    );
    let earlier = T0 - Duration::from_secs(60);
    assert_eq!(
        v.check_nonce(&c, REALM, Some(ip), earlier),
        NonceStatus::Invalid
    );
}

#[test]
fn nonces_carry_96_random_bits() {
    use base64::Engine;
    let v = verifier();
    let a = v.nonce(REALM, T0);
    let b = v.nonce(REALM, T0);
    let raw = |n: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(n)
            .unwrap()
    };
    let (ra, rb) = (raw(&a), raw(&b));
    assert_eq!(ra.len(), 36);
    assert_eq!(ra[..8], rb[..8], "same issue time");
    assert_ne!(ra[8..20], rb[8..20], "12 fresh random bytes each");
}
