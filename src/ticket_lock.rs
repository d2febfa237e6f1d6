//! Work on one ticket is serialised inside one instance: concurrent deliveries of the same
//! ticket (a redelivery racing the first try, the sweep meeting a webhook, a double-clicked
//! survey answer) take turns, so they never race to the helpdesk. Across instances, the
//! helpdesk's conditional writes still decide.
//!
//! A leaf at the crate's root, not in `runtime/`: the connector's path and the survey both take
//! the lock, and the survey sits below the connector.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::OwnedMutexGuard;

type Locks = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// One lock per ticket in use; an entry is removed when its last user is done.
static TICKETS: LazyLock<Locks> = LazyLock::new(Default::default);

/// Held while working on a ticket; dropping it lets the next delivery of the ticket go on.
pub struct TicketGuard {
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

/// Waits until no other work of this instance is under way on `connector`'s `ticket`.
pub async fn lock(connector: &str, ticket: &str) -> TicketGuard {
    let key = format!("{connector}\u{0}{ticket}");
    let lock = Arc::clone(locks().entry(key.clone()).or_default());
    TicketGuard {
        key,
        guard: Some(lock.lock_owned().await),
    }
}

fn locks() -> std::sync::MutexGuard<'static, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
    TICKETS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut all = locks();
        // Only the map holds it: nobody waits for this ticket.
        if all
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            all.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_at_a_time_per_ticket_and_entries_removed_when_unused() {
        let first = lock("lock-test", "1").await;
        let other = lock("lock-test", "2").await;
        let waiting = tokio::spawn(async { lock("lock-test", "1").await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the same ticket waits");
        drop(other);
        drop(first);
        drop(waiting.await.unwrap());
        assert!(!locks().contains_key("lock-test\u{0}1"));
        assert!(!locks().contains_key("lock-test\u{0}2"));
    }
}
