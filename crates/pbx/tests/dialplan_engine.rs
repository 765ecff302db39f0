//! The prepared dial plan driving the real call engine: a device's INVITE
//! for a UK mobile number, resolved against SQLite beforehand, leaves
//! through the first trunk in E.164 with the caller's own number; at the
//! tenant's limit it is refused with 503 while 999 still goes out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use media::PortPool;
use pbx::call::{CallEngine, CallerIdentity, ContactTarget, EngineConfig, Locator, SipOutput};
use pbx::dialplan::{OutsideCalls, PreparedPlan, Resolver};
use sip::transaction::{Config, Event, Target, TransactionLayer, Transport as SipTransport};
use sip::{Limits, Method, parse_datagram};
use store::*;

const PHONE: &str = "10.0.0.2:5062";
const DDI: &str = "+442079460018";

struct Nobody;

impl Locator for Nobody {
    fn contacts(&self, _: TenantId, _: &pbx::call::ExtensionProfile) -> Vec<ContactTarget> {
        Vec::new()
    }
}

fn invite(dialled: &str, n: u32) -> Vec<u8> {
    let sdp = "v=0\r\no=- 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=sendrecv\r\n";
    format!(
        "INVITE sip:{dialled}@acme.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK-dp-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1001@acme.example.com>;tag=a{n}\r\n\
         To: <sip:{dialled}@acme.example.com>\r\n\
         Call-ID: dp-{n}@10.0.0.2\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:1001@{PHONE}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

struct Rig {
    engine: CallEngine,
    layer: TransactionLayer,
    plan: Arc<PreparedPlan>,
    resolver: Resolver,
    tenant: TenantId,
    calls: Arc<OutsideCalls>,
    n: u32,
    _tmp: tempfile::TempDir,
}

async fn rig() -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("sb.db").display());
    let dir = store::connect(&url).await.unwrap();
    dir.migrate().await.unwrap();
    let mut settings = TenantSettings::new("Acme");
    settings.max_outside_calls = 1;
    let t = dir
        .create_tenant(&NewTenant {
            slug: "acme".parse().unwrap(),
            sip_domain: "acme.example.com".parse().unwrap(),
            settings,
        })
        .await
        .unwrap();
    let (alice, _) = dir
        .create_extension(
            t.id,
            &NewExtension {
                number: "1001".parse().unwrap(),
                settings: ExtensionSettings::new("Alice"),
            },
            None,
        )
        .await
        .unwrap();
    let mut bob = ExtensionSettings::new("Bob");
    bob.forwarding.always = Some(ForwardTarget::External("07400 123457".parse().unwrap()));
    dir.create_extension(
        t.id,
        &NewExtension {
            number: "1002".parse().unwrap(),
            settings: bob,
        },
        None,
    )
    .await
    .unwrap();
    dir.add_number_routed(
        &DDI.parse().unwrap(),
        t.id,
        RouteTarget::Extension(alice.id),
    )
    .await
    .unwrap();
    for (name, port, prio, emergency) in [("carrier", 5080, 1, Some(1)), ("backup", 5081, 2, None)]
    {
        dir.create_trunk(&TrunkSettings {
            name: name.into(),
            host: "127.0.0.1".into(),
            port,
            transport: Transport::Udp,
            username: None,
            password: None,
            from_domain: Some("sip.acme.example".into()),
            priority: prio,
            emergency_priority: emergency,
            enabled: true,
            inbound_source: None,
            force_wide_source: false,
            inbound_auth: false,
            calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
            register: false,
            registrar: None,
            register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
        })
        .await
        .unwrap();
    }
    let calls = OutsideCalls::new();
    let plan = Arc::new(PreparedPlan::new(calls.clone(), PreparedPlan::DEFAULT_TTL));
    let cfg = EngineConfig::new(
        "10.0.0.1:5060".parse().unwrap(),
        "203.0.113.7".parse().unwrap(),
    );
    let engine = CallEngine::new(
        cfg,
        plan.clone(),
        Arc::new(Nobody),
        PortPool::new("31000-31099".parse().unwrap()),
    );
    Rig {
        engine,
        layer: TransactionLayer::new(Config::default(), 7),
        plan,
        resolver: Resolver::new(dir),
        tenant: t.id,
        calls,
        n: 0,
        _tmp: tmp,
    }
}

impl Rig {
    /// What the driver does: resolve first (async), then hand the INVITE to
    /// the engine. Returns the engine's SIP outputs.
    async fn call(&mut self, dialled: &str) -> Vec<SipOutput> {
        let caller: ExtensionNumber = "1001".parse().unwrap();
        self.resolver
            .prepare(&self.plan, self.tenant, Some(&caller), dialled)
            .await
            .unwrap();
        self.n += 1;
        let now = Instant::now();
        let msg = parse_datagram(&invite(dialled, self.n), &Limits::default()).unwrap();
        let src: SocketAddr = PHONE.parse().unwrap();
        self.layer
            .receive(msg, Target::new(SipTransport::Udp, src), now)
            .unwrap();
        let Some(Event::Request {
            key,
            request,
            source,
            ..
        }) = self.layer.poll_event()
        else {
            panic!("no request event");
        };
        assert_eq!(
            pbx::dialplan::dialled_of(&request).as_deref(),
            Some(dialled)
        );
        let id = CallerIdentity {
            tenant: self.tenant,
            extension: caller,
            credential: "1001".parse().unwrap(),
        };
        self.engine.on_invite(key, request, source, id, now);
        std::iter::from_fn(|| self.engine.poll_sip()).collect()
    }
}

fn trunk_invite(out: &[SipOutput]) -> Option<(&sip::Request, Target)> {
    out.iter().find_map(|o| match o {
        SipOutput::Request { request, dest } if request.method == Method::Invite => {
            Some((request, *dest))
        }
        _ => None,
    })
}

fn final_status(out: &[SipOutput]) -> Option<u16> {
    out.iter().find_map(|o| match o {
        SipOutput::Response { response, .. } if response.status.as_u16() >= 200 => {
            Some(response.status.as_u16())
        }
        _ => None,
    })
}

#[tokio::test]
async fn a_uk_mobile_leaves_through_the_first_trunk_in_e164_with_the_callers_number() {
    let mut rig = rig().await;
    let out = rig.call("07400123456").await;
    let (req, dest) = trunk_invite(&out).expect("an INVITE to the trunk");
    assert_eq!(dest.addr, "127.0.0.1:5080".parse().unwrap());
    assert_eq!(req.uri.to_string(), "sip:+447400123456@127.0.0.1:5080");
    let from = req.from_addr().unwrap().unwrap();
    assert_eq!(from.uri.to_string(), format!("sip:{DDI}@sip.acme.example"));
}

#[tokio::test]
async fn at_the_limit_outside_calls_get_503_and_999_still_goes_out() {
    let mut rig = rig().await;
    let _live = rig.calls.guard(rig.tenant);
    let out = rig.call("07400123456").await;
    assert!(trunk_invite(&out).is_none());
    assert_eq!(final_status(&out), Some(503));
    let out = rig.call("999").await;
    let (req, dest) = trunk_invite(&out).expect("999 goes out");
    assert_eq!(dest.addr, "127.0.0.1:5080".parse().unwrap());
    assert_eq!(req.uri.to_string(), "sip:999@127.0.0.1:5080");
}

#[tokio::test]
async fn a_forward_to_an_outside_number_resolves_from_the_prepared_plan() {
    let mut rig = rig().await;
    let out = rig.call("1002").await;
    let (req, dest) = trunk_invite(&out).expect("forwarded out through the trunk");
    assert_eq!(dest.addr, "127.0.0.1:5080".parse().unwrap());
    assert_eq!(req.uri.to_string(), "sip:+447400123457@127.0.0.1:5080");
    assert!(req.headers.get("Diversion").is_some());
}
