//! Contract tests: every column CHECK, one UPDATE at a time.

use store::*;
use uuid::Uuid;

use super::schema::refuses;
use super::support::{Backend, V};
use super::{HASH, new_cred, tenant};

/// Every CHECK on a column, exercised by updating a valid row: the good value is accepted, the
/// bad one refused.
pub async fn schema_checks_each_column(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let (e, c) = d
        .create_extension(a.id, &super::new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let c = c.unwrap();
    let n = |s: &str| s.parse::<ExtensionNumber>().unwrap();
    let room = d
        .create_conference_room(a.id, &n("800"), "Board", None)
        .await
        .unwrap();
    let ivr = d.create_ivr_menu(a.id, &n("700"), "Main").await.unwrap();
    let rg = d
        .create_ring_group(
            a.id,
            &n("600"),
            &RingGroupSettings::new("G", RingStrategy::Simultaneous),
        )
        .await
        .unwrap();
    let num = d
        .add_number(&"07400 123456".parse().unwrap(), Some(a.id))
        .await
        .unwrap();
    let user = d
        .create_user(&NewUser {
            tenant_id: Some(a.id),
            email: "ann@acme.test".parse().unwrap(),
            display_name: "Ann".into(),
            role: Role::Member,
            password_hash: HASH.parse().unwrap(),
        })
        .await
        .unwrap();
    let trunk = d
        .create_trunk(&TrunkSettings {
            name: "main".into(),
            host: "sip.example.test".into(),
            port: 5060,
            transport: Transport::Udp,
            username: None,
            password: None,
            from_domain: None,
            priority: 1,
            emergency_priority: None,
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
    let reg = d
        .upsert_registration(
            a.id,
            &super::operations::binding(&e, &c, "sip:201@127.0.0.1", 60),
        )
        .await
        .unwrap();
    let cdr = super::operations::cdr(a.id, "201", "202", time::OffsetDateTime::now_utc(), false);
    d.insert_cdr(&cdr).await.unwrap();

    let long = "x".repeat(201);
    let audit = d
        .append_audit(&NewAuditEntry {
            tenant_id: Some(a.id),
            actor: "ann@acme.test".into(),
            action: "number.route".into(),
            subject: "+442079460018".into(),
            detail: String::new(),
        })
        .await
        .unwrap();
    let long_detail = "x".repeat(1001);
    let cases: &[(&str, &str, Uuid, V<'_>, V<'_>)] = &[
        (
            "tenants",
            "name",
            a.id.as_uuid(),
            V::Text("Acme"),
            V::Text("   "),
        ),
        (
            "tenants",
            "slug",
            a.id.as_uuid(),
            V::Text("acme-2"),
            V::Text("-acme"),
        ),
        (
            "tenants",
            "sip_domain",
            a.id.as_uuid(),
            V::Text("acme2.test"),
            V::Text("acme_2.test"),
        ),
        (
            "tenants",
            "max_concurrent_calls",
            a.id.as_uuid(),
            V::Int(0),
            V::Int(-1),
        ),
        (
            "tenants",
            "max_outside_calls",
            a.id.as_uuid(),
            V::Int(0),
            V::Int(-1),
        ),
        (
            "tenants",
            "main_number",
            a.id.as_uuid(),
            V::Text("+442079460018"),
            V::Text("02079460018"),
        ),
        (
            "tenants",
            "time_zone",
            a.id.as_uuid(),
            V::Text("Europe/Dublin"),
            V::Text(""),
        ),
        (
            "audit_log",
            "actor",
            audit.id.as_uuid(),
            V::Text("bob@acme.test"),
            V::Text("  "),
        ),
        (
            "audit_log",
            "action",
            audit.id.as_uuid(),
            V::Text("user.role"),
            V::Text(""),
        ),
        (
            "audit_log",
            "detail",
            audit.id.as_uuid(),
            V::Text("made an admin"),
            V::Text(&long_detail),
        ),
        (
            "users",
            "display_name",
            user.id.as_uuid(),
            V::Text("Ann B"),
            V::Text(&long),
        ),
        (
            "users",
            "password_hash",
            user.id.as_uuid(),
            V::Text(HASH),
            V::Text("plain"),
        ),
        (
            "extensions",
            "display_name",
            e.id.as_uuid(),
            V::Text("Desk"),
            V::Text(&long),
        ),
        (
            "extensions",
            "no_answer_timeout_secs",
            e.id.as_uuid(),
            V::Int(5),
            V::Int(4),
        ),
        (
            "extensions",
            "max_concurrent_calls",
            e.id.as_uuid(),
            V::Int(1),
            V::Int(0),
        ),
        (
            "extensions",
            "forward_always",
            e.id.as_uuid(),
            V::Text("202"),
            V::Text(""),
        ),
        (
            "extensions",
            "forward_busy",
            e.id.as_uuid(),
            V::Text("+447400123456"),
            V::Text(""),
        ),
        (
            "extensions",
            "forward_no_answer",
            e.id.as_uuid(),
            V::Text("202"),
            V::Text(""),
        ),
        (
            "sip_credentials",
            "username",
            c.id.as_uuid(),
            V::Text("desk.201"),
            V::Text("desk 201"),
        ),
        (
            "sip_credentials",
            "ha1_sha256",
            c.id.as_uuid(),
            V::Text(&"a".repeat(64)),
            V::Text("abc"),
        ),
        (
            "sip_credentials",
            "model",
            c.id.as_uuid(),
            V::Text("T46U"),
            V::Text(""),
        ),
        (
            "conference_rooms",
            "pin",
            room.id.as_uuid(),
            V::Text("1234"),
            V::Text("12a4"),
        ),
        (
            "conference_rooms",
            "name",
            room.id.as_uuid(),
            V::Text("Board"),
            V::Text(""),
        ),
        (
            "ivr_menus",
            "name",
            ivr.id.as_uuid(),
            V::Text("Main"),
            V::Text(" "),
        ),
        (
            "ring_groups",
            "strategy",
            rg.id.as_uuid(),
            V::Text("sequential"),
            V::Text("random"),
        ),
        (
            "ring_groups",
            "ring_timeout_secs",
            rg.id.as_uuid(),
            V::Int(600),
            V::Int(601),
        ),
        (
            "ring_groups",
            "member_timeout_secs",
            rg.id.as_uuid(),
            V::Int(300),
            V::Int(4),
        ),
        (
            "ring_groups",
            "fallback_kind",
            rg.id.as_uuid(),
            V::Text("none"),
            V::Text("extension"),
        ),
        (
            "numbers",
            "number_type",
            num.id.as_uuid(),
            V::Text("mobile"),
            V::Text("fancy"),
        ),
        (
            "numbers",
            "route_kind",
            num.id.as_uuid(),
            V::Text("none"),
            V::Text("voicemail"),
        ),
        (
            "trunks",
            "port",
            trunk.id.as_uuid(),
            V::Int(65535),
            V::Int(65536),
        ),
        (
            "trunks",
            "transport",
            trunk.id.as_uuid(),
            V::Text("tls"),
            V::Text("sctp"),
        ),
        (
            "trunks",
            "host",
            trunk.id.as_uuid(),
            V::Text("h.test"),
            V::Text(""),
        ),
        (
            "trunks",
            "username",
            trunk.id.as_uuid(),
            V::Text("acct"),
            V::Text(""),
        ),
        (
            "trunks",
            "from_domain",
            trunk.id.as_uuid(),
            V::Text("pbx.test"),
            V::Text(""),
        ),
        (
            "trunks",
            "inbound_source",
            trunk.id.as_uuid(),
            V::Text("192.0.2.1"),
            V::Text(""),
        ),
        ("registrations", "q", reg.id.as_uuid(), V::Int(1), V::Int(2)),
        (
            "registrations",
            "cseq",
            reg.id.as_uuid(),
            V::Int(0),
            V::Int(-1),
        ),
        (
            "registrations",
            "transport",
            reg.id.as_uuid(),
            V::Text("wss"),
            V::Text("sctp"),
        ),
        (
            "registrations",
            "aor",
            reg.id.as_uuid(),
            V::Text("sip:201@acme.test"),
            V::Text(""),
        ),
        (
            "cdrs",
            "direction",
            cdr.id.as_uuid(),
            V::Text("emergency"),
            V::Text("sideways"),
        ),
        (
            "cdrs",
            "disposition",
            cdr.id.as_uuid(),
            V::Text("busy"),
            V::Text("meh"),
        ),
        (
            "cdrs",
            "hangup_by",
            cdr.id.as_uuid(),
            V::Text("system"),
            V::Text("nobody"),
        ),
    ];
    for (table, column, id, good, bad) in cases {
        // Identifiers come from the table above, values are bound.
        let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
        let what = format!("{table}.{column}");
        refuses(&db, &what, &sql, &[*good, V::Id(*id)], &[*bad, V::Id(*id)]).await;
    }
}
