//! Every key the project writes, in one place.
//!
//! All keys carry the `vt:` prefix (a Redis backend ignores the store label,
//! so the prefix keeps our keys apart from anything else on the server). No
//! key contains an ID number or a phone number: people and phones appear only
//! as keyed hashes ([`crate::pii`]). Keys stay far below the 256-byte limit of
//! hosted stores.

/// Prefix of every key.
pub const PREFIX: &str = "vt:";

/// A class record.
pub fn class(id: &str) -> String {
    format!("{PREFIX}class:{id}")
}
/// Claim of an application's content digest by one class (duplicate filing guard).
pub fn class_claim(institution: &str, digest: &str) -> String {
    format!("{PREFIX}class-claim:{institution}:{digest}")
}
/// Counter of class numbers in a year.
pub fn class_seq(year: i32) -> String {
    format!("{PREFIX}seq:class:{year}")
}
/// Head of a paged index.
pub fn index_head(name: &str) -> String {
    format!("{PREFIX}index:{name}:head")
}
/// One page of a paged index.
pub fn index_page(name: &str, page: u64) -> String {
    format!("{PREFIX}index:{name}:{page}")
}
/// An idempotency record.
pub fn idempotency(scope: &str, hash: &str) -> String {
    format!("{PREFIX}idem:{scope}:{hash}")
}
/// Hint of the next audit sequence number (a counter).
pub fn audit_next() -> String {
    format!("{PREFIX}audit:next")
}
/// One audit event.
pub fn audit_event(seq: u64) -> String {
    format!("{PREFIX}audit:event:{seq}")
}
/// A registry entry: `kind` is `institution`, `trainer`, `courseware` or `textbook`.
pub fn registry(kind: &str, id: &str) -> String {
    format!("{PREFIX}registry:{kind}:{id}")
}
/// Sessions of live classes that hold a trainer.
pub fn trainer_bookings(registration_no: &str) -> String {
    format!("{PREFIX}occ:trainer:{registration_no}")
}
/// Sessions of live classes that hold a site (by the site's hash).
pub fn site_bookings(site_hash: &str) -> String {
    format!("{PREFIX}occ:site:{site_hash}")
}
/// Live classes of a person (by person ref).
pub fn person_enrolments(person_ref: &str) -> String {
    format!("{PREFIX}occ:person:{person_ref}")
}
/// Live classes using a phone (by phone ref).
pub fn phone_users(phone_ref: &str) -> String {
    format!("{PREFIX}occ:phone:{phone_ref}")
}
/// An institution's class counts in a year (CO-ENTRY).
pub fn institution_year(institution: &str, year: i32) -> String {
    format!("{PREFIX}stats:institution:{institution}:{year}")
}
