//! Fake helpdesks on loopback, one folder each: `server.rs` is the fake itself (the helpdesk's
//! documented API, nothing the service does not call), `mod.rs` what the shared harness
//! ([`crate::helpers::spawn_app`]) needs of it (see [`crate::helpers::FakeHelpdesk`]).

pub mod freshdesk;
pub mod salesforce;
pub mod zendesk;
