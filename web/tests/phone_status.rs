//! Honest phone status: online/offline and the last registration on the extensions list and
//! the extension page, derived from the stored registrations.

mod support;

use std::net::SocketAddr;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend, between};
use time::{Duration, OffsetDateTime};

fn cred(username: &str) -> NewCredential {
    NewCredential {
        username: username.parse().unwrap(),
        ha1_md5: "5f4dcc3b5aa765d61d8327deb882cf99".parse().unwrap(),
        ha1_sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
            .parse()
            .unwrap(),
        mac_address: None,
        model: None,
    }
}

fn binding(e: &Extension, c: &SipCredential, contact: &str, expires_in: i64) -> Binding {
    Binding {
        extension_id: e.id,
        credential_id: c.id,
        aor: format!("sip:{}@acme.pbx.test", e.number),
        contact_uri: contact.into(),
        call_id: format!("{contact}-call"),
        cseq: 1,
        q: None,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(expires_in),
        instance_id: None,
        reg_id: None,
        source_addr: "192.0.2.10:5062".parse::<SocketAddr>().unwrap(),
        transport: Transport::Udp,
        local_addr: None,
        user_agent: Some("Desk phone".into()),
        path: None,
    }
}

/// The page's "last registered" for a moment: London time, naming GMT or BST.
fn minute(t: OffsetDateTime) -> String {
    jiff::Timestamp::from_second(t.unix_timestamp())
        .unwrap()
        .to_zoned(jiff::tz::db().get("Europe/London").unwrap())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

async fn ext(app: &App, t: TenantId, number: &str) -> (Extension, SipCredential) {
    let (e, c) = app
        .dir
        .create_extension(
            t,
            &NewExtension {
                number: number.parse().unwrap(),
                settings: ExtensionSettings::new(format!("Desk {number}")),
            },
            Some(&cred(number)),
        )
        .await
        .unwrap();
    (e, c.unwrap())
}

async fn online_offline_and_last_registered(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);
    let (e1, c1) = ext(&app, t.id, "201").await;
    let (e2, c2) = ext(&app, t.id, "202").await;
    let (e3, _) = ext(&app, t.id, "203").await;
    let live = app
        .dir
        .upsert_registration(t.id, &binding(&e1, &c1, "sip:201@192.0.2.10:5062", 300))
        .await
        .unwrap();
    let gone = app
        .dir
        .upsert_registration(t.id, &binding(&e2, &c2, "sip:202@192.0.2.11:5062", -5))
        .await
        .unwrap();

    let check_list = |body: &str| {
        let row = |e: &Extension| {
            between(body, &format!(r#"<tr id="ext-{}">"#, e.id), "</tr>").to_owned()
        };
        let r1 = row(&e1);
        assert!(r1.contains(">online<"), "{r1}");
        assert!(r1.contains(&minute(live.updated_at)), "{r1}");
        let r2 = row(&e2);
        assert!(
            r2.contains(">offline<"),
            "an expired binding is not online: {r2}"
        );
        assert!(r2.contains(&minute(gone.updated_at)), "{r2}");
        let r3 = row(&e3);
        assert!(r3.contains(">offline<") && r3.contains("never"), "{r3}");
    };
    let r = adm.get(&format!("{base}/extensions")).await;
    r.assert(StatusCode::OK);
    check_list(&r.body);

    let r = adm.get(&format!("{base}/extensions/{}", e1.id)).await;
    r.assert(StatusCode::OK);
    let creds = between(&r.body, "<h2>SIP credentials</h2>", "</table>");
    assert!(creds.contains(">online<"), "{creds}");
    assert!(creds.contains(&minute(live.updated_at)), "{creds}");
    assert!(!creds.contains("never"), "{creds}");

    // The expiry sweep removes 202's binding; its last registration stays.
    app.dir
        .delete_expired_registrations(OffsetDateTime::now_utc())
        .await
        .unwrap();
    let r = adm.get(&format!("{base}/extensions")).await;
    check_list(&r.body);
    let r = adm.get(&format!("{base}/extensions/{}", e2.id)).await;
    let creds = between(&r.body, "<h2>SIP credentials</h2>", "</table>");
    assert!(creds.contains(">offline<"), "{creds}");
    assert!(creds.contains(&minute(gone.updated_at)), "{creds}");

    // The inline DND switch returns the row with its status too.
    let req = axum::http::Request::post(format!("{base}/extensions/{}/dnd", e1.id))
        .header(
            "cookie",
            format!("sb_session={}", adm.cookie.clone().unwrap()),
        )
        .header("x-csrf-token", adm.csrf.clone().unwrap())
        .header("hx-request", "true")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("dnd=on"))
        .unwrap();
    let r = app.send(req).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains(">online<"), "{}", r.body);
}

/// Refused registrations reported by the SIP service show on the extension page, newest first,
/// and only on the page of the credential's own extension and business.
async fn failed_registrations_on_the_extension_page(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let other = app.tenant("bravo").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);
    let (e1, c1) = ext(&app, t.id, "201").await;
    let (e2, _) = ext(&app, t.id, "202").await;
    let at = time::macros::datetime!(2026-12-08 09:30:10 UTC);
    let failure = |secs: i64, source: &str, reason: &str, count: u32| web::RegistrationFailure {
        at: at + Duration::seconds(secs),
        source: source.parse().unwrap(),
        reason: reason.into(),
        count,
    };
    app.failures
        .add(t.id, c1.id, failure(0, "198.51.100.7", "wrong password", 3));
    app.failures.add(
        t.id,
        c1.id,
        failure(
            120,
            "198.51.100.7",
            "source address banned (request ignored)",
            1,
        ),
    );
    // Filed under another business: not shown.
    app.failures
        .add(other.id, c1.id, failure(60, "203.0.113.9", "forged", 1));

    let r = adm.get(&format!("{base}/extensions/{}", e1.id)).await;
    r.assert(StatusCode::OK);
    let table = between(&r.body, "<h3>Failed registrations</h3>", "</table>");
    let banned = table.find("source address banned").expect(table);
    let wrong = table.find("wrong password").expect(table);
    assert!(banned < wrong, "newest first: {table}");
    assert!(table.contains("198.51.100.7") && table.contains("2026-12-08 09:32 GMT"));
    assert!(table.contains("<td>3</td>"), "{table}");
    assert!(!table.contains("203.0.113.9") && !table.contains("forged"));

    let r = adm.get(&format!("{base}/extensions/{}", e2.id)).await;
    let section = between(&r.body, "<h3>Failed registrations</h3>", "<h3>");
    assert!(section.contains("None recently"), "{section}");

    // The business's time zone setting: a name the tz database does not know is refused
    // beside the field; a known one moves every time the pages show.
    let settings = format!("{base}/settings");
    let r = adm
        .post(&settings, &[("time_zone", "Europe/Londres")])
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"e-time_zone\"") && r.body.contains("Europe/Londres"));
    assert_eq!(
        app.dir.get_tenant(t.id).await.unwrap().settings.time_zone,
        "Europe/London"
    );
    let r = adm
        .post(&settings, &[("time_zone", "America/New_York")])
        .await;
    r.assert(StatusCode::OK);
    assert!(
        r.body
            .contains("<option value=\"America/New_York\" selected>")
    );
    let r = adm.get(&format!("{base}/extensions/{}", e1.id)).await;
    let table = between(&r.body, "<h3>Failed registrations</h3>", "</table>");
    assert!(table.contains("2026-12-08 04:32 EST"), "{table}");
    assert!(!table.contains("UTC") && !table.contains("GMT"), "{table}");
}

both_backends!(
    online_offline_and_last_registered,
    failed_registrations_on_the_extension_page
);
