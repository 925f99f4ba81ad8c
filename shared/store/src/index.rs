//! Append-only paged indexes: the lists Spin's key-value store cannot scan for us.
//!
//! An index is a head record (`last` page number) and pages of at most
//! [`PAGE_SIZE`] entries, each page a JSON list. Appends go through
//! compare-and-swap on the last page, so concurrent appends lose nothing, and an
//! append of an entry already in the last page is skipped, so a retried request
//! does not list an entry twice. Readers page with an opaque cursor.

use crate::keys;
use crate::kv::KeyValue;
use crate::records::{StoreError, UpdateError, get_json, update_json};
use serde::{Deserialize, Serialize};

/// Entries per page (a page of 256 ids of 20 bytes is ~6 KB, far below value limits).
pub const PAGE_SIZE: usize = 256;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Head {
    last: u64,
}

/// A position in an index: page and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Page number.
    pub page: u64,
    /// Offset in the page.
    pub offset: usize,
}

/// Appends `entry` to index `name` unless the last page already holds it.
pub fn append(kv: &impl KeyValue, name: &str, entry: &str) -> Result<(), StoreError> {
    for attempt in 0..crate::records::MAX_CAS_ATTEMPTS {
        crate::records::backoff(attempt);
        let head: Head = get_json(kv, &keys::index_head(name), "index head")?.unwrap_or_default();
        let appended = update_json::<Vec<String>, PageFull>(
            kv,
            &keys::index_page(name, head.last),
            "index page",
            |cur| {
                let mut page = cur.unwrap_or_default();
                if page.iter().any(|e| e == entry) {
                    return Ok(None);
                }
                if page.len() >= PAGE_SIZE {
                    return Err(PageFull);
                }
                page.push(entry.to_string());
                Ok(Some(page))
            },
        );
        match appended {
            Ok(_) => return Ok(()),
            Err(UpdateError::Store(e)) => return Err(e),
            Err(UpdateError::Refused(PageFull)) => {
                // Move the head on (only from the page we saw full), then retry.
                update_json::<Head, std::convert::Infallible>(
                    kv,
                    &keys::index_head(name),
                    "index head",
                    |cur| {
                        let now = cur.unwrap_or_default();
                        Ok((now.last == head.last).then_some(Head {
                            last: head.last + 1,
                        }))
                    },
                )
                .map_err(|e| match e {
                    UpdateError::Store(s) => s,
                    UpdateError::Refused(never) => match never {},
                })?;
            }
        }
    }
    Err(StoreError::Contention)
}

#[derive(Debug)]
struct PageFull;

/// The length of each index in `names` and the entries of its last page,
/// in two batched reads whatever the number of indexes.
pub fn tails(kv: &impl KeyValue, names: &[String]) -> Result<Vec<(u64, Vec<String>)>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let heads: Vec<String> = names.iter().map(|n| keys::index_head(n)).collect();
    let lasts: Vec<u64> = kv
        .get_many(&heads)?
        .into_iter()
        .map(|h| match h {
            None => Ok(0),
            Some(b) => crate::records::decode::<Head>(&b, "index head").map(|h| h.last),
        })
        .collect::<Result<_, _>>()?;
    let pages: Vec<String> = names
        .iter()
        .zip(&lasts)
        .map(|(n, l)| keys::index_page(n, *l))
        .collect();
    kv.get_many(&pages)?
        .into_iter()
        .zip(lasts)
        .map(|(p, last)| {
            let page: Vec<String> = match p {
                None => Vec::new(),
                Some(b) => crate::records::decode(&b, "index page")?,
            };
            Ok((last * PAGE_SIZE as u64 + page.len() as u64, page))
        })
        .collect()
}

/// Reads up to `limit` entries from `from`; returns them and the next position, if any.
pub fn read(
    kv: &impl KeyValue,
    name: &str,
    from: Position,
    limit: usize,
) -> Result<(Vec<String>, Option<Position>), StoreError> {
    let head: Head = get_json(kv, &keys::index_head(name), "index head")?.unwrap_or_default();
    let mut out = Vec::new();
    let mut pos = from;
    while out.len() < limit && pos.page <= head.last {
        let page: Vec<String> =
            get_json(kv, &keys::index_page(name, pos.page), "index page")?.unwrap_or_default();
        let take = (limit - out.len()).min(page.len().saturating_sub(pos.offset));
        out.extend(page.iter().skip(pos.offset).take(take).cloned());
        pos.offset += take;
        if pos.offset >= page.len() {
            if pos.page == head.last {
                // Nothing more now; the cursor stays at the end of the last page.
                return Ok((out, None));
            }
            pos = Position {
                page: pos.page + 1,
                offset: 0,
            };
        }
    }
    let more = pos.page < head.last || {
        let page: Vec<String> =
            get_json(kv, &keys::index_page(name, pos.page), "index page")?.unwrap_or_default();
        pos.offset < page.len()
    };
    Ok((out, more.then_some(pos)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn all(kv: &MemoryStore, name: &str, step: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut pos = Position::default();
        loop {
            let (items, next) = read(kv, name, pos, step).unwrap();
            out.extend(items);
            match next {
                Some(p) => pos = p,
                None => return out,
            }
        }
    }

    #[test]
    fn appends_span_pages_and_read_back_in_order() {
        let kv = MemoryStore::new();
        for i in 0..(PAGE_SIZE * 2 + 3) {
            append(&kv, "t", &format!("e{i}")).unwrap();
        }
        let got = all(&kv, "t", 100);
        assert_eq!(got.len(), PAGE_SIZE * 2 + 3);
        assert_eq!(got[0], "e0");
        assert_eq!(got[PAGE_SIZE], format!("e{PAGE_SIZE}"));
        assert_eq!(
            all(&kv, "t", 7),
            got,
            "page size of the reader does not matter"
        );
    }

    #[test]
    fn a_retried_append_is_not_listed_twice() {
        let kv = MemoryStore::new();
        append(&kv, "t", "a").unwrap();
        append(&kv, "t", "a").unwrap();
        assert_eq!(all(&kv, "t", 10), vec!["a".to_string()]);
    }

    #[test]
    fn concurrent_appends_lose_nothing() {
        let kv = MemoryStore::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        append(&kv, "t", &format!("{t}-{i}")).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut got = all(&kv, "t", 50);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 800);
    }

    #[test]
    fn an_empty_index_reads_empty() {
        let kv = MemoryStore::new();
        assert_eq!(
            read(&kv, "none", Position::default(), 10).unwrap(),
            (vec![], None)
        );
    }
}
