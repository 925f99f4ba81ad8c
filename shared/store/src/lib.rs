//! Typed records and explicit indexes over a key-value store with Spin's semantics.
//!
//! [`kv::KeyValue`] is the seam: Spin's store in the function crates,
//! [`memory::MemoryStore`] in tests. Above it: JSON records with
//! compare-and-swap updates ([`records`]), paged indexes ([`index`]),
//! idempotency records ([`idempotency`]), the audit trail as a transparency log
//! ([`audit`]), keyed hashes of personal identifiers ([`pii`]), and the
//! domain's records ([`classes`], [`registry`]). Keys are all in [`keys`].

#![warn(missing_docs)]

pub mod audit;
pub mod checkpoint;
pub mod classes;
pub mod findings;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod idempotency;
pub mod index;
pub mod keys;
pub mod kv;
pub mod memory;
pub mod pii;
pub mod policy;
pub mod records;
pub mod registry;
pub mod sealed;
pub mod spot_checks;
pub mod tlog;
pub mod vouchers;
pub mod wechat;

pub use kv::{Cas, KeyValue, KvError};
pub use memory::MemoryStore;
pub use records::{StoreError, UpdateError};
