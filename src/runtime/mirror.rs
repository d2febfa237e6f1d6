//! The mirror loops of `serve`: one per connector that mirrors its helpdesk's knowledge base.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::runtime::connector::Connectors;

/// The first wait after a failed sync; it doubles with each failure, up to `every_minutes`.
const FIRST_RETRY: Duration = Duration::from_secs(30);

/// Starts one loop per mirroring connector: a first sync at once when the mirror is empty (or
/// its last sync is older than `every_minutes`), then one every `every_minutes`; after a failure,
/// again after 30 s, 1 min, 2 min, ... up to `every_minutes`. The last good mirror serves
/// throughout. Each loop ends when `stop` turns true (a sync under way is dropped: its journal
/// lets the next start resume it).
pub fn spawn(connectors: &Connectors, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    connectors
        .values()
        .filter_map(|c| c.mirror().cloned())
        .map(|mirror| {
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let mut failures: u32 = 0;
                loop {
                    let wait = if failures == 0 {
                        (mirror.next_due(Utc::now()) - Utc::now())
                            .to_std()
                            .unwrap_or_default()
                    } else {
                        FIRST_RETRY
                            .saturating_mul(2u32.saturating_pow(failures - 1))
                            .min(mirror.settings.every)
                    };
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    let synced = tokio::select! {
                        r = mirror.sync(false) => r,
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    failures = match synced {
                        Ok(_) => 0,
                        Err(_) => failures.saturating_add(1),
                    };
                }
            })
        })
        .collect()
}
