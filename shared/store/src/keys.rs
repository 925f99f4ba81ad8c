//! Every key the project writes, in one place.
//!
//! All keys carry the `vt:` prefix (a Redis backend ignores the store label,
//! so the prefix keeps our keys apart from anything else on the server). No
//! key contains an ID number or a phone number: people and phones appear only
//! as keyed hashes ([`crate::pii`]). Keys stay far below the 256-byte limit of
//! hosted stores.

/// Prefix of every key.
pub const PREFIX: &str = "vt:";

/// The parts joined, in one allocation (the keys of a 60-trainee class's
/// context are 130 of these per request; `format!` costs several times more).
fn concat(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        key.push_str(p);
    }
    key
}

/// A class record.
pub fn class(id: &str) -> String {
    concat(&[PREFIX, "class:", id])
}
/// Claim of an application by one class (duplicate filing guard), by the
/// application's keyed digest ([`crate::classes::application_digest`]: an
/// application holds ID numbers and mobiles, so never a plain hash of it).
pub fn class_claim(institution: &str, digest: &str) -> String {
    concat(&[PREFIX, "class-claim:", institution, ":", digest])
}
/// Counter of class numbers in a year.
pub fn class_seq(year: i32) -> String {
    format!("{PREFIX}seq:class:{year}")
}
/// Head of a paged index.
pub fn index_head(name: &str) -> String {
    concat(&[PREFIX, "index:", name, ":head"])
}
/// One page of a paged index.
pub fn index_page(name: &str, page: u64) -> String {
    format!("{PREFIX}index:{name}:{page}")
}
/// An idempotency record.
pub fn idempotency(scope: &str, hash: &str) -> String {
    concat(&[PREFIX, "idem:", scope, ":", hash])
}
/// Hint of the next audit sequence number (a counter).
pub fn audit_next() -> String {
    format!("{PREFIX}audit:next")
}
/// One audit event.
pub fn audit_event(seq: u64) -> String {
    format!("{PREFIX}audit:event:{seq}")
}
/// The signed gap record integrated in place of an event never written.
pub fn audit_gap(seq: u64) -> String {
    format!("{PREFIX}audit:gap:{seq}")
}
/// The transparency log's state: its size, frontier and latest checkpoint.
pub fn audit_tree() -> String {
    format!("{PREFIX}audit:tree")
}
/// The hash of one complete subtree of the log (`level`, `index`).
pub fn audit_node(level: u32, index: u64) -> String {
    format!("{PREFIX}audit:node:{level}:{index}")
}
/// A registry entry: `kind` is `institution`, `trainer`, `courseware` or `textbook`.
pub fn registry(kind: &str, id: &str) -> String {
    concat(&[PREFIX, "registry:", kind, ":", id])
}
/// Sessions of live classes that hold a trainer.
pub fn trainer_bookings(registration_no: &str) -> String {
    concat(&[PREFIX, "occ:trainer:", registration_no])
}
/// Sessions of live classes that hold a site (by the site's hash).
pub fn site_bookings(site_hash: &str) -> String {
    concat(&[PREFIX, "occ:site:", site_hash])
}
/// Live classes of a person (by person ref).
pub fn person_enrolments(person_ref: &str) -> String {
    concat(&[PREFIX, "occ:person:", person_ref])
}
/// Live classes using a phone (by phone ref).
pub fn phone_users(phone_ref: &str) -> String {
    concat(&[PREFIX, "occ:phone:", phone_ref])
}
/// An institution's class counts in a year (CO-ENTRY).
pub fn institution_year(institution: &str, year: i32) -> String {
    format!("{PREFIX}stats:institution:{institution}:{year}")
}

/// The current policy record (the version in force, rewritten whole on each change).
pub fn policy_current() -> String {
    format!("{PREFIX}policy:current")
}
/// One version of the policy data, never overwritten.
pub fn policy_version(n: u64) -> String {
    format!("{PREFIX}policy:version:{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored data is found by these keys: a change of layout loses it.
    #[test]
    fn keys_keep_their_stored_layout() {
        let cases = [
            ("class", class("KM-2026-000001"), "vt:class:KM-2026-000001"),
            (
                "class_claim",
                class_claim("91530100MA6K000001", "ab12"),
                "vt:class-claim:91530100MA6K000001:ab12",
            ),
            ("index_head", index_head("classes"), "vt:index:classes:head"),
            ("index_page", index_page("classes", 7), "vt:index:classes:7"),
            (
                "idempotency",
                idempotency("file", "ff00"),
                "vt:idem:file:ff00",
            ),
            (
                "registry",
                registry("trainer", "T-1"),
                "vt:registry:trainer:T-1",
            ),
            (
                "trainer_bookings",
                trainer_bookings("T-1"),
                "vt:occ:trainer:T-1",
            ),
            ("site_bookings", site_bookings("5a5a"), "vt:occ:site:5a5a"),
            (
                "person_enrolments",
                person_enrolments("0f0f"),
                "vt:occ:person:0f0f",
            ),
            ("phone_users", phone_users("1e1e"), "vt:occ:phone:1e1e"),
            ("audit_event", audit_event(42), "vt:audit:event:42"),
            ("policy_current", policy_current(), "vt:policy:current"),
            ("policy_version", policy_version(3), "vt:policy:version:3"),
            (
                "institution_year",
                institution_year("91530100MA6K000001", 2026),
                "vt:stats:institution:91530100MA6K000001:2026",
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }
}
