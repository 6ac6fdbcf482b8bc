//! Communities' retry queue (`LC_EVENT_REPLAY`): lifecycle events waiting for an app, in the
//! order they were queued, at most one row per event and app.
//!
//! Every failed delivery asks whether its row is there already, and every retry takes one row
//! out, so both find a row by (event, app) without reading the queue; the rows stay in queue
//! order for everything that lists them. A queue is copied with its deployment at every backup:
//! both maps are persistent, so a copy shares them until one side changes. A queue of tens of
//! thousands of rows (a deployment of months whose queue was seldom cleared) made searching a
//! list of rows a third of the fold's time.

use crate::state::QueueEntry;
use crate::vocabulary::App;
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// The retry queue: rows in the order they were queued, found by (event, app).
#[derive(Clone, Default)]
pub struct Queue {
    /// Rows by the order they were queued in (a number that only grows).
    rows: OrdMap<u64, Arc<QueueEntry>>,
    /// (event, app) → the row's number in `rows`.
    by_delivery: OrdMap<(Uuid, App), u64>,
    next: u64,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows in the order they were queued.
    pub fn iter(&self) -> Rows<'_> {
        fn row(r: &Arc<QueueEntry>) -> &QueueEntry {
            r
        }
        self.rows
            .values()
            .map(row as fn(&Arc<QueueEntry>) -> &QueueEntry)
    }

    /// Whether `event` waits here for `app`.
    pub fn contains(&self, event: Uuid, app: App) -> bool {
        self.by_delivery.contains_key(&(event, app))
    }

    /// Queues `row` last; `false` (and the queue as it was) when its event already waits for
    /// its app.
    pub fn push(&mut self, row: QueueEntry) -> bool {
        let key = (row.event, row.app);
        if self.by_delivery.contains_key(&key) {
            return false;
        }
        self.by_delivery.insert(key, self.next);
        self.rows.insert(self.next, Arc::new(row));
        self.next += 1;
        true
    }

    /// Takes out the row of `event` for `app`, if it waits here.
    pub fn remove(&mut self, event: Uuid, app: App) -> Option<QueueEntry> {
        let n = self.by_delivery.remove(&(event, app))?;
        let row = self
            .rows
            .remove(&n)
            .expect("every delivery indexed has its row");
        Some(Arc::unwrap_or_clone(row))
    }

    /// Keeps only the rows `keep` says to.
    pub fn retain(&mut self, mut keep: impl FnMut(&QueueEntry) -> bool) {
        let gone: Vec<(u64, (Uuid, App))> = self
            .rows
            .iter()
            .filter(|(_, r)| !keep(r))
            .map(|(n, r)| (*n, (r.event, r.app)))
            .collect();
        for (n, key) in gone {
            self.rows.remove(&n);
            self.by_delivery.remove(&key);
        }
    }

    pub fn clear(&mut self) {
        *self = Queue::default();
    }
}

/// The rows of a [`Queue`], in the order they were queued.
pub type Rows<'a> = std::iter::Map<
    imbl::ordmap::Values<'a, u64, Arc<QueueEntry>, imbl::shared_ptr::DefaultSharedPtr>,
    fn(&'a Arc<QueueEntry>) -> &'a QueueEntry,
>;

impl<'a> IntoIterator for &'a Queue {
    type Item = &'a QueueEntry;
    type IntoIter = Rows<'a>;
    fn into_iter(self) -> Rows<'a> {
        self.iter()
    }
}

impl FromIterator<QueueEntry> for Queue {
    /// The rows in this order; a later row for an event and app already queued is left out.
    fn from_iter<I: IntoIterator<Item = QueueEntry>>(rows: I) -> Queue {
        let mut q = Queue::default();
        for r in rows {
            q.push(r);
        }
        q
    }
}

/// Two queues are equal when they hold the same rows in the same order.
impl PartialEq for Queue {
    fn eq(&self, other: &Queue) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Queue {}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Written as the list of its rows, in order (the form snapshots and JSON have always had).
impl Serialize for Queue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Queue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Queue, D::Error> {
        Ok(Vec::<QueueEntry>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(event: u128, app: App) -> QueueEntry {
        QueueEntry {
            event: Uuid::from_u128(event),
            position: event as u64,
            community: Uuid::from_u128(7),
            app,
            event_type: "WidgetAdded".into(),
            data: format!("{{\"n\":{event}}}").into_bytes(),
        }
    }

    fn events(q: &Queue) -> Vec<(u128, App)> {
        q.iter().map(|r| (r.event.as_u128(), r.app)).collect()
    }

    #[test]
    fn rows_keep_their_order_and_each_event_waits_once_for_an_app() {
        let mut q = Queue::default();
        assert!(q.push(row(1, App::Files)));
        assert!(q.push(row(1, App::Wiki)));
        assert!(q.push(row(2, App::Files)));
        assert!(
            !q.push(row(1, App::Files)),
            "a second row for event 1 and Files"
        );
        assert_eq!(
            events(&q),
            [(1, App::Files), (1, App::Wiki), (2, App::Files)]
        );
        assert!(q.contains(Uuid::from_u128(1), App::Wiki));
        assert!(!q.contains(Uuid::from_u128(2), App::Wiki));

        assert_eq!(
            q.remove(Uuid::from_u128(1), App::Wiki),
            Some(row(1, App::Wiki))
        );
        assert_eq!(q.remove(Uuid::from_u128(1), App::Wiki), None);
        assert!(!q.contains(Uuid::from_u128(1), App::Wiki));
        // Queued again after its retry, it goes last.
        assert!(q.push(row(1, App::Wiki)));
        assert_eq!(
            events(&q),
            [(1, App::Files), (2, App::Files), (1, App::Wiki)]
        );

        q.retain(|r| r.app != App::Files);
        assert_eq!(events(&q), [(1, App::Wiki)]);
        assert!(!q.contains(Uuid::from_u128(2), App::Files));
        assert!(
            q.push(row(2, App::Files)),
            "a row cleared can be queued again"
        );
        assert_eq!(q.len(), 2);
        q.clear();
        assert!(q.is_empty() && !q.contains(Uuid::from_u128(1), App::Wiki));
    }

    #[test]
    fn a_copy_changes_apart_and_equality_is_by_rows_in_order() {
        let mut q: Queue = [row(1, App::Files), row(2, App::Blog)]
            .into_iter()
            .collect();
        let backup = q.clone();
        q.remove(Uuid::from_u128(1), App::Files);
        assert_eq!(events(&backup), [(1, App::Files), (2, App::Blog)]);
        assert_eq!(events(&q), [(2, App::Blog)]);
        assert_ne!(q, backup);
        // The same rows reached another way are equal; another order is not.
        let again: Queue = [row(2, App::Blog)].into_iter().collect();
        assert_eq!(q, again);
        let swapped: Queue = [row(2, App::Blog), row(1, App::Files)]
            .into_iter()
            .collect();
        assert_ne!(backup, swapped);
    }

    #[test]
    fn it_is_written_as_the_list_of_its_rows() {
        let rows = vec![row(3, App::Forum), row(1, App::Files), row(2, App::Files)];
        let q: Queue = rows.iter().cloned().collect();
        let config = bincode::config::standard();
        let as_list = bincode::serde::encode_to_vec(&rows, config).unwrap();
        assert_eq!(bincode::serde::encode_to_vec(&q, config).unwrap(), as_list);
        let (back, _): (Queue, usize) =
            bincode::serde::decode_from_slice(&as_list, config).unwrap();
        assert_eq!(back, q);
        assert_eq!(
            serde_json::to_value(&q).unwrap(),
            serde_json::to_value(&rows).unwrap()
        );
    }
}
