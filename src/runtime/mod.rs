//! The service at run time: each connector's one path through its helpdesk, knowledge base and
//! judge ([`connector`]), the threads that judge ([`judge_pool`]), the accept loop the HTTP
//! server runs on ([`serve`]), the sweep for lost webhooks ([`sweep`]) and the syncs of the
//! knowledge-base mirrors ([`mirror`]). The HTTP routes are
//! in `server/`; the crate's `run` starts them all. The offline commands (`offline/`) use the
//! connector, never the other way round.
//!
//! The ticket lock (one writer per ticket) is not here: the survey takes it too, and the survey
//! sits below the connector, so the lock is a leaf at the crate's root.

pub mod connector;
pub mod judge_pool;
pub mod mirror;
pub mod serve;
pub mod sweep;
