//! Password attempts on one login from one address, checked one at a time: each then reads
//! the failures the one before it wrote, so a burst sent at once cannot all be judged on the
//! same earlier count and get past the address's lockout. Per process: across instances the
//! burst is only split by their number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The attempts in progress, by key (a throttle key's hash).
#[derive(Default)]
pub struct Turns {
    queues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to check one attempt of a key; the next waits until it is dropped.
pub struct Turn<'a> {
    turns: &'a Turns,
    key: String,
    queue: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits for the turn of `key`, for at most `within` (`None` then): a queue that long
    /// (the database is slow or gone, and every attempt before this one waits on it) is not
    /// waited out.
    pub async fn take(&self, key: &str, within: std::time::Duration) -> Option<Turn<'_>> {
        let queue = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mut turn = Turn {
            turns: self,
            key: key.to_owned(),
            queue: queue.clone(),
            held: None,
        };
        turn.held = Some(
            tokio::time::timeout(within, queue.lock_owned())
                .await
                .ok()?,
        );
        Some(turn)
    }

    /// How many keys have an attempt in progress or waiting.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues.lock().unwrap().len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut queues = self
            .turns
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The map's handle and this one: nobody else waits, so the key is forgotten.
        if Arc::strong_count(&self.queue) == 2 {
            queues.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_takes_turns_and_is_forgotten_when_nobody_waits() {
        let within = std::time::Duration::from_millis(50);
        let turns = Turns::default();
        let first = turns.take("k", within).await.unwrap();
        assert!(
            turns.take("k", within).await.is_none(),
            "the second waits for the first, and gives up"
        );
        let other = turns.take("other", within).await.unwrap();
        drop(other);
        drop(first);
        let again = turns.take("k", within).await.unwrap();
        drop(again);
        assert_eq!(turns.len(), 0);
    }
}
