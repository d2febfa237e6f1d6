//! Integration tests: the service on a random port against fake helpdesks on loopback.

mod backfill;
mod behaviour;
mod calibrate;
mod cli;
mod config;
mod dashboards;
mod eval;
mod fakes;
mod freshdesk;
mod helpers;
mod install_zendesk;
mod judge_scale;
mod kb_http;
mod module_graph;
mod properties;
mod remote_search;
mod report;
mod review;
mod salesforce;
mod salesforce_survey;
mod service;
mod smtp;
mod survey;
mod sweep;
mod webdriver;
mod zendesk;
