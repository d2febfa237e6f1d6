//! The fake helpdesks of the library (`escalation_gate::helpdesk::{zendesk,salesforce,freshdesk}::sandbox`,
//! the helpdesks' documented APIs on loopback) and, one folder each, what the shared harness
//! ([`crate::helpers::spawn_app`]) needs of them (see [`crate::helpers::FakeHelpdesk`]): the
//! test connector that points at each fake and request helpers.

pub mod freshdesk;
pub mod salesforce;
pub mod zendesk;
