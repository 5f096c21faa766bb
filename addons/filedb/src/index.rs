//! The in-memory index: every live URI and where its latest record is.
//!
//! Records themselves are not kept in memory: a load reads the entry back
//! with one positioned read (usually from the page cache) and checks its
//! checksum. So memory grows with the number of records (about 100 bytes
//! plus the URI each), not with their size.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::log::segment::Segment;

/// Where an entry lies in the log.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// The segment holding it.
    pub(crate) segment: Arc<Segment>,
    /// Offset of the entry in the segment file.
    pub(crate) offset: u64,
    /// Length of the entry (header, URI and data).
    pub(crate) len: u32,
}

impl Location {
    /// True when both name the same bytes of the same segment.
    pub(crate) fn same_as(&self, other: &Location) -> bool {
        Arc::ptr_eq(&self.segment, &other.segment) && self.offset == other.offset
    }
}

/// The latest record of one URI.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The record's version.
    pub(crate) version: u64,
    /// Where its entry is.
    pub(crate) at: Location,
}

/// URI → latest entry, sorted (for `list`), with the live byte counts of
/// the segments kept in step.
#[derive(Debug, Default)]
pub(crate) struct Index {
    map: BTreeMap<String, Entry>,
    live_bytes: u64,
}

impl Index {
    /// The latest entry of `uri`.
    pub(crate) fn get(&self, uri: &str) -> Option<&Entry> {
        self.map.get(uri)
    }

    /// Makes `entry` the latest of `uri`.
    pub(crate) fn put(&mut self, uri: &str, entry: Entry) {
        let len = u64::from(entry.at.len);
        entry.at.segment.add_live(len);
        self.live_bytes += len;
        let old = match self.map.get_mut(uri) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => {
                self.map.insert(uri.to_owned(), entry);
                None
            }
        };
        if let Some(old) = old {
            self.forget(&old);
        }
    }

    /// Removes `uri`; returns its entry if it had one.
    pub(crate) fn remove(&mut self, uri: &str) -> Option<Entry> {
        let old = self.map.remove(uri)?;
        self.forget(&old);
        Some(old)
    }

    /// Points `uri` at `to` if it is still at `from` (compaction moved the
    /// entry, and no newer save or delete came in between). Returns whether
    /// it did.
    pub(crate) fn relocate(&mut self, uri: &str, from: &Location, to: Location) -> bool {
        let Some(entry) = self.map.get_mut(uri) else { return false };
        if !entry.at.same_as(from) {
            return false;
        }
        let len = u64::from(from.len);
        from.segment.sub_live(len);
        to.segment.add_live(u64::from(to.len));
        self.live_bytes = self.live_bytes - len + u64::from(to.len);
        entry.at = to;
        true
    }

    fn forget(&mut self, old: &Entry) {
        let len = u64::from(old.at.len);
        old.at.segment.sub_live(len);
        self.live_bytes -= len;
    }

    /// The URIs starting with `prefix`, sorted.
    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        self.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(uri, _)| uri.starts_with(prefix))
            .map(|(uri, _)| uri.clone())
            .collect()
    }

    /// Every `(uri, location)` whose entry lies in a segment for which
    /// `pick` is true.
    pub(crate) fn locations_in(&self, pick: impl Fn(&Segment) -> bool) -> Vec<(String, Location)> {
        self.map
            .iter()
            .filter(|(_, e)| pick(&e.at.segment))
            .map(|(uri, e)| (uri.clone(), e.at.clone()))
            .collect()
    }

    /// Number of live records.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes of all live entries.
    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }
}
