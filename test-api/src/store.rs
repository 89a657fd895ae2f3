//! In-memory object store: JSON objects keyed by resource type, namespace and name, a global
//! resourceVersion counter and an event log for watches.

use crate::resources::ResKey;
use crate::util;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

/// One recorded change.
#[derive(Debug, Clone)]
pub struct Event {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Resource type.
    pub key: ResKey,
    /// Change type.
    pub kind: EventKind,
    /// Object after the change (before, for deletions).
    pub obj: Arc<Value>,
    /// Object before the change (modifications only).
    pub old: Option<Arc<Value>>,
}

/// Shared with the events that recorded them, and with list replies encoded after the lock is let go.
type Objects = BTreeMap<(String, String), Arc<Value>>;

/// The store.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<ResKey, Objects>,
    rv: u64,
    events: Vec<Event>,
    /// Watches from a resourceVersion before this one are refused (410 Expired).
    compacted: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store { objects: BTreeMap::new(), rv: 1000, events: Vec::new(), compacted: 0 }
    }
}

impl Store {
    /// Current global resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// One object.
    pub fn get(&self, key: &ResKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(key)?.get(&(ns.to_string(), name.to_string())).map(|o| &**o)
    }

    /// Objects of a type, ordered by namespace then name; only `ns` when given; strictly after
    /// `after` when given.
    /// Objects of a type, ordered by namespace then name; only `ns` when given; strictly after
    /// `after` when given.
    pub fn list<'a>(
        &'a self,
        key: &ResKey,
        ns: Option<&str>,
        after: Option<(String, String)>,
    ) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(self.list_shared(key, ns, after).map(|o| &**o))
    }

    pub fn list_shared<'a>(
        &'a self,
        key: &ResKey,
        ns: Option<&str>,
        after: Option<(String, String)>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Value>> + 'a> {
        let Some(map) = self.objects.get(key) else {
            return Box::new(std::iter::empty());
        };
        let lower = match (&after, ns) {
            (Some(a), _) => Bound::Excluded(a.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let ns_owned = ns.map(str::to_string);
        Box::new(
            map.range((lower, Bound::Unbounded))
                .take_while(move |((ons, _), _)| ns_owned.as_ref().is_none_or(|n| n == ons))
                .map(|(_, v)| v),
        )
    }

    /// Number of objects of a type.
    pub fn count(&self, key: &ResKey) -> usize {
        self.objects.get(key).map(BTreeMap::len).unwrap_or(0)
    }

    /// Insert or replace; assigns the next resourceVersion. Returns the stored object.
    pub fn put(&mut self, key: &ResKey, mut obj: Value) -> Value {
        self.rv += 1;
        let rv = self.rv;
        util::meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let ns = util::meta_str(&obj, "namespace").to_string();
        let name = util::meta_str(&obj, "name").to_string();
        let map = self.objects.entry(key.clone()).or_default();
        let shared = Arc::new(obj.clone());
        let old = map.insert((ns, name), shared.clone());
        let kind = if old.is_some() { EventKind::Modified } else { EventKind::Added };
        self.events.push(Event { rv, key: key.clone(), kind, obj: shared, old });
        obj
    }

    /// Remove; records a DELETED event with a new resourceVersion.
    pub fn delete(&mut self, key: &ResKey, ns: &str, name: &str) -> Option<Value> {
        let mut obj =
            Arc::unwrap_or_clone(self.objects.get_mut(key)?.remove(&(ns.to_string(), name.to_string()))?);
        self.rv += 1;
        util::meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.events.push(Event {
            rv: self.rv,
            key: key.clone(),
            kind: EventKind::Deleted,
            obj: Arc::new(obj.clone()),
            old: None,
        });
        Some(obj)
    }

    /// Compacts the history at the current resourceVersion: see [`Store::compacted`].
    pub fn compact(&mut self) {
        self.compacted = self.rv;
    }

    /// The oldest resourceVersion a new watch may start from. The events stay for the watches already
    /// open (a kube-apiserver's watch cache goes on serving them too).
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Events with a resourceVersion greater than `rv`.
    pub fn events_since(&self, rv: u64) -> &[Event] {
        let idx = self.events.partition_point(|e| e.rv <= rv);
        &self.events[idx..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(ns: &str, name: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}})
    }

    #[test]
    fn ordered_lists_and_events() {
        let mut s = Store::default();
        let k = ResKey::new("", "pods");
        for (ns, n) in [("b", "x"), ("a", "z"), ("a", "y"), ("c", "w")] {
            s.put(&k, obj(ns, n));
        }
        let names: Vec<&str> = s.list(&k, None, None).map(|o| util::meta_str(o, "name")).collect();
        assert_eq!(names, vec!["y", "z", "x", "w"]);
        let in_a: Vec<&str> = s.list(&k, Some("a"), None).map(|o| util::meta_str(o, "name")).collect();
        assert_eq!(in_a, vec!["y", "z"]);
        let after: Vec<&str> = s
            .list(&k, Some("a"), Some(("a".into(), "y".into())))
            .map(|o| util::meta_str(o, "name"))
            .collect();
        assert_eq!(after, vec!["z"]);
        let rv = s.rv();
        s.put(&k, obj("a", "y"));
        s.delete(&k, "a", "z");
        let ev: Vec<EventKind> = s.events_since(rv).iter().map(|e| e.kind).collect();
        assert_eq!(ev, vec![EventKind::Modified, EventKind::Deleted]);
        assert_eq!(s.rv(), rv + 2);
    }
}
