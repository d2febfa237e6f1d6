//! Integration tests: the service on a random port against fake helpdesks on loopback.

mod cli;
mod config;
mod eval;
mod fake_salesforce;
mod fake_zendesk;
mod helpers;
mod judge_scale;
mod kb_http;
mod properties;
mod salesforce;
mod salesforce_survey;
mod smtp;
mod survey;
mod sweep;
mod webdriver;
mod zendesk;
