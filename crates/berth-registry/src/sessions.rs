//! Upload sessions' bookkeeping: how many are open and when each was last
//! used, so that a registry holds a bounded number of them and drops the
//! ones clients abandoned (CNCF distribution purges them after a week; a
//! registry for tests and demos can be quicker).
//!
//! A session is busy while a request is working on it and never expires
//! then, however long its body takes; its idle time counts from the end of
//! its last request.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::names::{RepoName, UploadId};

/// How many upload sessions may be open at once, by default.
pub const DEFAULT_MAX_UPLOADS: usize = 1024;
/// How long an upload session may sit unused before it is dropped, by
/// default.
pub const DEFAULT_UPLOAD_IDLE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug)]
struct Entry {
    repo: RepoName,
    last_used: Instant,
    busy: usize,
}

/// The open sessions and their limits.
#[derive(Debug)]
pub(crate) struct Sessions {
    max_open: usize,
    max_idle: Duration,
    open: Mutex<HashMap<UploadId, Entry>>,
}

impl Sessions {
    pub(crate) fn new(max_open: usize, max_idle: Duration) -> Sessions {
        Sessions {
            max_open,
            max_idle,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<UploadId, Entry>> {
        // The map stays consistent whatever panicked while holding it.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the sessions idle for `max_idle` or longer and returns them,
    /// for the caller to cancel in storage.
    pub(crate) fn take_expired(&self) -> Vec<(RepoName, UploadId)> {
        let now = Instant::now();
        let mut open = self.lock();
        let expired: Vec<UploadId> = open
            .iter()
            .filter(|(_, e)| e.busy == 0 && now.duration_since(e.last_used) >= self.max_idle)
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|id| open.remove(&id).map(|e| (e.repo, id)))
            .collect()
    }

    /// Whether another session may open; the limit when not.
    pub(crate) fn room(&self) -> Result<(), usize> {
        if self.lock().len() < self.max_open {
            Ok(())
        } else {
            Err(self.max_open)
        }
    }

    /// Records a new session, busy until the guard is dropped.
    pub(crate) fn opened(&self, repo: &RepoName, id: &UploadId) -> Busy<'_> {
        self.lock().insert(
            id.clone(),
            Entry {
                repo: repo.clone(),
                last_used: Instant::now(),
                busy: 1,
            },
        );
        Busy {
            sessions: self,
            id: id.clone(),
        }
    }

    /// Marks session `id` busy until the guard is dropped. A session this
    /// registry does not know is left to storage to refuse.
    pub(crate) fn busy(&self, id: &UploadId) -> Busy<'_> {
        if let Some(e) = self.lock().get_mut(id) {
            e.busy += 1;
            e.last_used = Instant::now();
        }
        Busy {
            sessions: self,
            id: id.clone(),
        }
    }

    /// Forgets session `id`: finished or cancelled.
    pub(crate) fn closed(&self, id: &UploadId) {
        self.lock().remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A session in use; its idle time starts again when this is dropped.
#[derive(Debug)]
pub(crate) struct Busy<'a> {
    sessions: &'a Sessions,
    id: UploadId,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.sessions.lock().get_mut(&self.id) {
            e.busy = e.busy.saturating_sub(1);
            e.last_used = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoName {
        RepoName::parse("team/app").expect("name")
    }

    #[test]
    fn idle_sessions_expire_and_busy_ones_do_not() {
        let sessions = Sessions::new(10, Duration::ZERO);
        let (a, b) = (UploadId::generate(), UploadId::generate());
        drop(sessions.opened(&repo(), &a));
        let held = sessions.opened(&repo(), &b);
        let expired = sessions.take_expired();
        assert_eq!(expired, vec![(repo(), a)]);
        assert_eq!(sessions.len(), 1, "b is busy");
        let again = sessions.busy(&b);
        drop(held);
        assert!(sessions.take_expired().is_empty(), "still busy once");
        drop(again);
        assert_eq!(sessions.take_expired(), vec![(repo(), b)]);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn sessions_within_their_idle_time_stay() {
        let sessions = Sessions::new(10, Duration::from_secs(3600));
        let a = UploadId::generate();
        drop(sessions.opened(&repo(), &a));
        assert!(sessions.take_expired().is_empty());
        sessions.closed(&a);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn the_count_is_capped_until_one_closes() {
        let sessions = Sessions::new(2, Duration::from_secs(3600));
        let ids: Vec<UploadId> = (0..2).map(|_| UploadId::generate()).collect();
        for id in &ids {
            assert_eq!(sessions.room(), Ok(()));
            drop(sessions.opened(&repo(), id));
        }
        assert_eq!(sessions.room(), Err(2));
        sessions.closed(&ids[0]);
        assert_eq!(sessions.room(), Ok(()));
        // Unknown ids change nothing.
        drop(sessions.busy(&UploadId::generate()));
        sessions.closed(&UploadId::generate());
        assert_eq!(sessions.len(), 1);
    }
}
