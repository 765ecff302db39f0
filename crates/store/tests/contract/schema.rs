//! Contract tests: the schema's own rules (raw SQL past the store), registrations, CDRs.

use store::*;
use uuid::Uuid;

use super::support::{Backend, V};
use super::{HASH, ext, new_cred, tenant};

/// Asserts the good statement is accepted and the bad one refused (so the refusal is the rule,
/// not a typo in the test).
pub(crate) async fn refuses(
    db: &super::support::TestDb,
    what: &str,
    sql: &str,
    good: &[V<'_>],
    bad: &[V<'_>],
) {
    if !good.is_empty() {
        let n = db
            .raw(sql, good)
            .await
            .unwrap_or_else(|e| panic!("{what}: the good row was refused: {e}"));
        assert_eq!(n, 1, "{what}: the good statement must touch one row");
    }
    let err = db.raw(sql, bad).await.expect_err(what);
    // Refused by a constraint, not by a typo or a type error in the test.
    assert!(err.contains("constraint"), "{what}: {err}");
}

pub async fn schema_refuses_bad_rows(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let (ea, ca) = d
        .create_extension(a.id, &super::new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let ca = ca.unwrap();
    let eb = ext(d, bt.id, "201").await;
    let (ta, tb) = (V::Id(a.id.as_uuid()), V::Id(bt.id.as_uuid()));
    let id = || V::Id(Uuid::now_v7());

    let users = "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, disabled, created_at) \
                 VALUES ($1, $2, $3, 'X', $4, $5, FALSE, $6)";
    refuses(
        &db,
        "operator with a tenant",
        users,
        &[
            id(),
            V::NullId,
            V::Text("op@x.test"),
            V::Text("operator"),
            V::Text(HASH),
            V::Now,
        ],
        &[
            id(),
            ta,
            V::Text("op2@x.test"),
            V::Text("operator"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "admin without a tenant",
        users,
        &[
            id(),
            ta,
            V::Text("ad@x.test"),
            V::Text("admin"),
            V::Text(HASH),
            V::Now,
        ],
        &[
            id(),
            V::NullId,
            V::Text("ad2@x.test"),
            V::Text("admin"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "upper-case e-mail",
        users,
        &[],
        &[
            id(),
            ta,
            V::Text("Ann@x.test"),
            V::Text("member"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "unknown role",
        users,
        &[],
        &[
            id(),
            ta,
            V::Text("r@x.test"),
            V::Text("root"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;

    let tenants =
        "INSERT INTO tenants (id, slug, sip_domain, name, created_at) VALUES ($1, $2, $3, 'T', $4)";
    refuses(
        &db,
        "bad slug",
        tenants,
        &[id(), V::Text("ok-1"), V::Text("ok1.test"), V::Now],
        &[id(), V::Text("Bad"), V::Text("bad.test"), V::Now],
    )
    .await;
    refuses(
        &db,
        "upper-case domain",
        tenants,
        &[],
        &[id(), V::Text("ok-2"), V::Text("OK2.test"), V::Now],
    )
    .await;

    let dial = "INSERT INTO dialables (tenant_id, number, kind) VALUES ($1, $2, $3)";
    refuses(
        &db,
        "number with letters",
        dial,
        &[ta, V::Text("555"), V::Text("ring_group")],
        &[ta, V::Text("55a"), V::Text("extension")],
    )
    .await;
    refuses(
        &db,
        "seven digits",
        dial,
        &[],
        &[ta, V::Text("1234567"), V::Text("extension")],
    )
    .await;
    refuses(
        &db,
        "duplicate dialable",
        dial,
        &[],
        &[ta, V::Text("201"), V::Text("ivr")],
    )
    .await;

    let exts = "INSERT INTO extensions (id, tenant_id, number, display_name, created_at) VALUES ($1, $2, $3, 'X', $4)";
    refuses(
        &db,
        "extension whose number is a ring group's",
        exts,
        &[],
        &[id(), ta, V::Text("555"), V::Now],
    )
    .await;
    refuses(
        &db,
        "extension without a dialable row",
        exts,
        &[],
        &[id(), ta, V::Text("556"), V::Now],
    )
    .await;
    let timeout = "UPDATE extensions SET no_answer_timeout_secs = $1 WHERE id = $2";
    refuses(
        &db,
        "no-answer timeout",
        timeout,
        &[V::Int(300), V::Id(ea.id.as_uuid())],
        &[V::Int(301), V::Id(ea.id.as_uuid())],
    )
    .await;
    let owner = "UPDATE extensions SET user_id = $1 WHERE id = $2";
    let bob = Uuid::now_v7();
    db.raw(
        users,
        &[
            V::Id(bob),
            tb,
            V::Text("bob@x.test"),
            V::Text("member"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await
    .unwrap();
    refuses(
        &db,
        "owner from another tenant",
        owner,
        &[V::Id(bob), V::Id(eb.id.as_uuid())],
        &[V::Id(bob), V::Id(ea.id.as_uuid())],
    )
    .await;

    let creds = "INSERT INTO sip_credentials (id, tenant_id, extension_id, username, ha1_md5, ha1_sha256, mac_address, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let md5 = "0123456789abcdef0123456789abcdef";
    let sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let ext_a = V::Id(ea.id.as_uuid());
    refuses(
        &db,
        "bad HA1",
        creds,
        &[
            id(),
            ta,
            ext_a,
            V::Text("d1"),
            V::Text(md5),
            V::Text(sha),
            V::Text("0011223344ff"),
            V::Now,
        ],
        &[
            id(),
            ta,
            ext_a,
            V::Text("d2"),
            V::Text("XYZ"),
            V::Text(sha),
            V::NullText,
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "upper-case MAC",
        creds,
        &[],
        &[
            id(),
            ta,
            ext_a,
            V::Text("d3"),
            V::Text(md5),
            V::Text(sha),
            V::Text("0011223344FE"),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "credential on another tenant's extension",
        creds,
        &[],
        &[
            id(),
            tb,
            ext_a,
            V::Text("d4"),
            V::Text(md5),
            V::Text(sha),
            V::NullText,
            V::Now,
        ],
    )
    .await;

    let route = "UPDATE numbers SET tenant_id = $1, route_kind = $2, route_extension_id = $3 WHERE e164 = '+442079460018'";
    d.add_number(&"020 7946 0018".parse().unwrap(), None)
        .await
        .unwrap();
    refuses(
        &db,
        "route to another tenant's extension",
        route,
        &[ta, V::Text("extension"), ext_a],
        &[ta, V::Text("extension"), V::Id(eb.id.as_uuid())],
    )
    .await;
    refuses(
        &db,
        "route kind without target",
        route,
        &[],
        &[ta, V::Text("extension"), V::NullId],
    )
    .await;
    refuses(
        &db,
        "target with kind none",
        route,
        &[],
        &[ta, V::Text("none"), ext_a],
    )
    .await;
    refuses(
        &db,
        "route on an unowned number",
        route,
        &[],
        &[V::NullId, V::Text("extension"), ext_a],
    )
    .await;
    let e164 = "INSERT INTO numbers (id, e164, number_type, created_at) VALUES ($1, $2, $3, $4)";
    refuses(
        &db,
        "not E.164",
        e164,
        &[
            id(),
            V::Text("+441134960000"),
            V::Text("geographic"),
            V::Now,
        ],
        &[id(), V::Text("01134960001"), V::Text("geographic"), V::Now],
    )
    .await;

    let g = d
        .create_ring_group(
            a.id,
            &"600".parse().unwrap(),
            &RingGroupSettings::new("G", RingStrategy::Simultaneous),
        )
        .await
        .unwrap();
    let member = "INSERT INTO ring_group_members (tenant_id, ring_group_id, position, member_kind, extension_id, external) \
                  VALUES ($1, $2, $3, $4, $5, $6)";
    let grp = V::Id(g.id.as_uuid());
    refuses(
        &db,
        "member with both targets",
        member,
        &[ta, grp, V::Int(0), V::Text("extension"), ext_a, V::NullText],
        &[
            ta,
            grp,
            V::Int(1),
            V::Text("extension"),
            ext_a,
            V::Text("+447400123456"),
        ],
    )
    .await;
    refuses(
        &db,
        "duplicate position",
        member,
        &[],
        &[
            ta,
            grp,
            V::Int(0),
            V::Text("external"),
            V::NullId,
            V::Text("+447400123456"),
        ],
    )
    .await;
    refuses(
        &db,
        "member from another tenant",
        member,
        &[],
        &[
            ta,
            grp,
            V::Int(2),
            V::Text("extension"),
            V::Id(eb.id.as_uuid()),
            V::NullText,
        ],
    )
    .await;

    let trunks = "INSERT INTO trunks (id, name, host, port, transport, created_at) VALUES ($1, $2, 'h', $3, $4, $5)";
    refuses(
        &db,
        "port 0",
        trunks,
        &[id(), V::Text("t1"), V::Int(5060), V::Text("tls"), V::Now],
        &[id(), V::Text("t2"), V::Int(0), V::Text("udp"), V::Now],
    )
    .await;
    refuses(
        &db,
        "ws trunk",
        trunks,
        &[],
        &[id(), V::Text("t3"), V::Int(5060), V::Text("ws"), V::Now],
    )
    .await;

    let regs = "INSERT INTO registrations (id, tenant_id, extension_id, credential_id, aor, contact_uri, call_id, cseq, expires_at, \
                source_addr, transport, created_at, updated_at) VALUES ($1, $2, $3, $4, 'a', $5, 'c', 1, $6, '127.0.0.1:5060', 'udp', $6, $6)";
    refuses(
        &db,
        "binding for a credential of another extension",
        regs,
        &[
            id(),
            ta,
            ext_a,
            V::Id(ca.id.as_uuid()),
            V::Text("sip:a@h"),
            V::Now,
        ],
        &[
            id(),
            tb,
            V::Id(eb.id.as_uuid()),
            V::Id(ca.id.as_uuid()),
            V::Text("sip:b@h"),
            V::Now,
        ],
    )
    .await;

    let cdrs = "INSERT INTO cdrs (id, tenant_id, call_id, direction, caller, callee, dialled, started_at, ended_at, duration_secs, \
                disposition, hangup_cause, hangup_by, created_at) VALUES ($1, $2, 'c', 'internal', '201', '202', '202', $3, $3, $4, $5, 'x', 'caller', $3)";
    refuses(
        &db,
        "negative duration",
        cdrs,
        &[id(), ta, V::Now, V::Int(0), V::Text("no_answer")],
        &[id(), ta, V::Now, V::Int(-1), V::Text("no_answer")],
    )
    .await;
    refuses(
        &db,
        "answered without answer time",
        cdrs,
        &[],
        &[id(), ta, V::Now, V::Int(0), V::Text("answered")],
    )
    .await;
}
