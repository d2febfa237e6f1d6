//! A local mirror of a helpdesk's own knowledge base, kept in the connector's persisted
//! embedded index, so the judge that runs searches what `eval` measured.

pub mod source;

pub use source::{Cursor, KbSource, Page, Start};
