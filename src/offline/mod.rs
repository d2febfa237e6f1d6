//! The engines of the offline commands, which read a helpdesk back or judge saved data instead
//! of serving webhooks: the partner scorecard ([`report`]), the judge's calibration on reviewed
//! cases ([`calibrate`]), the baseline of a past period ([`backfill`]) and the measurement on
//! labelled cases ([`eval`]). The CLI (`cli/`) parses their arguments and prints their results.

pub mod backfill;
pub mod calibrate;
pub mod eval;
pub mod fit;
pub mod report;
