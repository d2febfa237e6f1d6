//! `escalation-gate sandbox`: the whole product offline.

pub mod mail;
