//! The integration tests: the service on a random loopback port against faithful fake helpdesks.

mod fake_salesforce;
mod salesforce;
