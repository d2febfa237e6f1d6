//! Fake helpdesks on loopback, one folder each: `server.rs` is the fake itself (the helpdesk's
//! documented API, nothing the service does not call), `mod.rs` what the shared harness
//! ([`crate::helpers::spawn_app`]) needs of it (see [`crate::helpers::FakeHelpdesk`]).

pub mod freshdesk;
pub mod salesforce;
pub mod zendesk;

/// A failure a test injects into a fake: the next `times` requests of `method` whose path
/// contains `path_contains` get it instead of an answer.
pub trait Injected: Clone {
    /// `(method, path_contains, times)`.
    fn target(&mut self) -> (&str, &str, &mut usize);
}

/// The first injected failure left for `method` on `path`, spent once; `None`: answer normally.
pub fn next_failure<F: Injected>(fails: &mut [F], method: &str, path: &str) -> Option<F> {
    for f in fails.iter_mut() {
        let (m, part, times) = f.target();
        if *times > 0 && m == method && path.contains(part) {
            *times -= 1;
            return Some(f.clone());
        }
    }
    None
}

/// How many requests of a fake's log (`"METHOD /path"`, status) matched `method` and a path
/// containing `part`.
pub fn count(log: &[(String, u16)], method: &str, part: &str) -> usize {
    log.iter()
        .filter(|(l, _)| l.starts_with(&format!("{method} ")) && l.contains(part))
        .count()
}
