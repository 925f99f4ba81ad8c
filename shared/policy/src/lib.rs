//! The bureau's rules as pure functions (昆人社通〔2022〕34号 and POLICY.md).
//!
//! Nothing here does I/O: callers read what a rule needs from the store and
//! pass it in, and get back an explained [`decision::Decision`]. Every rule
//! carries its POLICY.md id; parameters are dated data ([`params`]).

#![warn(missing_docs)]

pub mod calendar;
pub mod catalogue;
pub mod checks;
pub mod class_opening;
pub mod data;
pub mod decision;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ids;
pub mod params;
pub mod reference;
pub mod registry;
pub mod sampling;
pub mod text;
pub mod vouchers;

pub use catalogue::Catalogue;
pub use data::{Policy, PolicyData};
pub use decision::{Decision, Finding, Outcome, PolicyRef, Severity};
pub use params::Parameters;
