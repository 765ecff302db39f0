//! `apply_registration_batch` on both backends: order, reduction, atomicity.

#[macro_use]
#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;

use store::*;
use support::Backend;
use time::{Duration, OffsetDateTime};

fn binding(e: &Extension, c: &SipCredential, contact: &str, cseq: u32) -> Binding {
    Binding {
        extension_id: e.id,
        credential_id: c.id,
        aor: format!("sip:{}@batch.pbx.test", e.number),
        contact_uri: contact.into(),
        call_id: "call@host".into(),
        cseq,
        q: None,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(3600),
        instance_id: None,
        reg_id: None,
        source_addr: "127.0.0.1:5062".parse::<SocketAddr>().unwrap(),
        transport: Transport::Udp,
        local_addr: Some("127.0.0.1:5060".parse().unwrap()),
        user_agent: Some("Batch Phone".into()),
        path: None,
    }
}

pub async fn batch_applies_in_order_and_atomically(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let t = d
        .create_tenant(&NewTenant {
            slug: "batch".parse().unwrap(),
            sip_domain: "batch.pbx.test".parse().unwrap(),
            settings: TenantSettings::new("Batch"),
        })
        .await
        .unwrap();
    let (e, c) = d
        .create_extension(
            t.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Desk"),
            },
            Some(&NewCredential {
                username: "201".parse().unwrap(),
                ha1_md5: "5f4dcc3b5aa765d61d8327deb882cf99".parse().unwrap(),
                ha1_sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
                    .parse()
                    .unwrap(),
                mac_address: None,
                model: None,
            }),
        )
        .await
        .unwrap();
    let c = c.unwrap();
    let up = |contact: &str, cseq| RegistrationChange::Upsert {
        tenant: t.id,
        binding: binding(&e, &c, contact, cseq),
    };
    let rm = |contact: &str| RegistrationChange::Remove {
        tenant: t.id,
        credential: c.id,
        contact_uri: contact.into(),
    };
    d.apply_registration_batch(&[]).await.unwrap();
    d.apply_registration_batch(&[
        up("sip:a@10.0.0.1", 1),
        up("sip:b@10.0.0.2", 1),
        rm("sip:a@10.0.0.1"),
        up("sip:c@10.0.0.3", 1),
        up("sip:c@10.0.0.3", 2),
        rm("sip:never@10.0.0.9"),
    ])
    .await
    .unwrap();
    let mut rows = d.list_registrations(t.id, e.id).await.unwrap();
    rows.sort_by(|x, y| x.binding.contact_uri.cmp(&y.binding.contact_uri));
    let got: Vec<(&str, u32)> = rows
        .iter()
        .map(|r| (r.binding.contact_uri.as_str(), r.binding.cseq))
        .collect();
    assert_eq!(got, [("sip:b@10.0.0.2", 1), ("sip:c@10.0.0.3", 2)]);
    // remove then re-add in one batch: the binding stays
    d.apply_registration_batch(&[rm("sip:b@10.0.0.2"), up("sip:b@10.0.0.2", 5)])
        .await
        .unwrap();
    assert_eq!(d.list_registrations(t.id, e.id).await.unwrap().len(), 2);
    // a bad change fails the whole batch: nothing of it is written
    let mut foreign = binding(&e, &c, "sip:d@10.0.0.4", 1);
    foreign.credential_id = CredentialId::new();
    let err = d
        .apply_registration_batch(&[
            up("sip:e@10.0.0.5", 1),
            RegistrationChange::Upsert {
                tenant: t.id,
                binding: foreign,
            },
        ])
        .await;
    assert!(err.is_err());
    assert_eq!(d.list_registrations(t.id, e.id).await.unwrap().len(), 2);
    // a larger batch than one statement's chunk
    let many: Vec<RegistrationChange> = (0..300)
        .map(|i| up(&format!("sip:m{i}@10.1.0.1"), 1))
        .collect();
    d.apply_registration_batch(&many).await.unwrap();
    assert_eq!(d.list_registrations(t.id, e.id).await.unwrap().len(), 302);
}

contract_tests!(batch_applies_in_order_and_atomically);
