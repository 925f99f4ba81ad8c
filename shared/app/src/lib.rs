//! Request handling of the three functions, from `http::Request` to `http::Response`.
//!
//! Each module is one function's routes: parse the request, call `policy` and
//! `store`, shape the response. The Spin components in `functions/` only adapt
//! spin-sdk's types to these and supply the [`web::Env`].

#![warn(missing_docs)]
// `Problem` is the error type of every handler and the body of the response
// it becomes; it is built once per failed request, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod audit;
pub mod class_opening;
pub mod policy_admin;
pub mod spot_checks;
pub mod view;
pub mod vouchers;
pub mod wechat;
