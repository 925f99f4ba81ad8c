//! The audit trail end to end: the events written by real requests form a
//! chain that `/api/v1/audit/verify` checks, and changing one byte of any
//! stored event (sealed at rest) makes it report that event.

use crate::common::{call, seed, token};
use e2e::Host;
use web::auth::Role;

#[tokio::test(flavor = "multi_thread")]
async fn changing_one_byte_of_any_stored_audit_event_is_reported_at_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite_key_value.db");
    let host = Host::start(crate::common::product(&db)).unwrap();
    seed(&host).await;
    crate::common::file_class(&host, 5).await;
    let admin = token(Role::BureauAdmin, None);
    let v = call(&host, "GET", "/api/v1/audit/verify", Some(&admin), "", &[])
        .await
        .json()
        .unwrap();
    assert_eq!(v["intact"], true, "{v}");
    let length = v["length"].as_u64().unwrap();
    assert!(
        length >= 9,
        "registry puts and the filing were audited: {v}"
    );

    let conn = rusqlite::Connection::open(&db).unwrap();
    for seq in 1..=length {
        let key = store::keys::audit_event(seq);
        let original: Vec<u8> = conn
            .query_row(
                "SELECT value FROM spin_key_value WHERE key = ?1",
                [&key],
                |r| r.get(0),
            )
            .unwrap();
        let mut changed = original.clone();
        let at = original.len() / 2;
        changed[at] ^= 0x01;
        conn.execute(
            "UPDATE spin_key_value SET value = ?1 WHERE key = ?2",
            rusqlite::params![changed, key],
        )
        .unwrap();
        let v = call(&host, "GET", "/api/v1/audit/verify", Some(&admin), "", &[])
            .await
            .json()
            .unwrap();
        assert_eq!(
            (v["intact"].as_bool(), v["broken_at"].as_u64()),
            (Some(false), Some(seq)),
            "event {seq}: {v}"
        );
        conn.execute(
            "UPDATE spin_key_value SET value = ?1 WHERE key = ?2",
            rusqlite::params![original, key],
        )
        .unwrap();
    }
    let v = call(&host, "GET", "/api/v1/audit/verify", Some(&admin), "", &[])
        .await
        .json()
        .unwrap();
    assert_eq!(v["intact"], true, "restored: {v}");
}
