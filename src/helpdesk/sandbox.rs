//! What the fake helpdesks (`{helpdesk}/sandbox`) share: failures injected into their answers
//! and counts of the requests they recorded. The fakes are the helpdesks' documented APIs on
//! loopback, for the integration tests and `escalation-gate sandbox` alike.

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
