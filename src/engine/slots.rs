//! The slot table: up to `limit` sequences (KV caches) kept between requests, so that requests
//! which alternate between conversations (autocomplete between chat turns, a title request beside
//! each agent turn) each find their own prefix cached.
//!
//! [`pick`] is the selection rule, a pure function of what each slot holds: the idle slot whose
//! cached tokens share the longest prefix with the prompt (ties: the most recently used) when that
//! prefix is at least half of the prompt ([`MIN_SHARE`], as llama-server's
//! `--slot-prompt-similarity 0.5`), else an empty slot, else a new one while the table has room,
//! else the least recently used idle slot. Slots are marked busy while they run, so that a
//! batching worker can later run several at once through the same table; the serial worker claims
//! one slot at a time.

/// The least share of the prompt a slot's common prefix must cover for the request to go to that
/// slot rather than an empty or least recently used one (so a request that shares only the BOS
/// token or a short system prompt does not evict another conversation's cache).
pub const MIN_SHARE: f64 = 0.5;

/// What [`pick`] knows of one slot.
#[derive(Clone, Copy, Debug)]
pub struct SlotView<'a> {
    /// The tokens the slot's cache holds, in order.
    pub cached: &'a [u32],
    /// When it was last claimed (larger is more recent).
    pub last_used: u64,
    /// Running a request now.
    pub busy: bool,
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The existing slot `index`, whose first `shared` cached tokens equal the prompt's.
    Slot { index: usize, shared: usize },
    /// A new slot (the table has room for one more).
    New,
    /// Every slot is busy and the table is full: wait for one to be released.
    Wait,
}

/// Tokens at the start of `a` and `b` that are equal.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The selection rule (see the module docs) for `prompt` over `slots`, with room for `limit`
/// slots in all.
pub fn pick(slots: &[SlotView<'_>], limit: usize, prompt: &[u32]) -> Pick {
    let idle = || slots.iter().enumerate().filter(|(_, slot)| !slot.busy);
    let best = idle()
        .map(|(index, slot)| (index, common_prefix(slot.cached, prompt), slot.last_used))
        .filter(|&(_, shared, _)| shared > 0 && shared as f64 >= MIN_SHARE * prompt.len() as f64)
        .max_by_key(|&(_, shared, last_used)| (shared, last_used));
    if let Some((index, shared, _)) = best {
        return Pick::Slot { index, shared };
    }
    let free = idle()
        .filter(|(_, slot)| slot.cached.is_empty())
        .min_by_key(|(_, slot)| slot.last_used);
    if let Some((index, _)) = free {
        return Pick::Slot { index, shared: 0 };
    }
    if slots.len() < limit {
        return Pick::New;
    }
    match idle().min_by_key(|(_, slot)| slot.last_used) {
        Some((index, slot)) => Pick::Slot {
            index,
            shared: common_prefix(slot.cached, prompt),
        },
        None => Pick::Wait,
    }
}

struct Entry<S> {
    value: S,
    last_used: u64,
    busy: bool,
}

/// The slots themselves: each a value `S` (the worker's sequence and the generator that knows its
/// tokens), with its use time and busy mark. Created with one slot; more are added with
/// [`SlotTable::push`] when [`SlotTable::pick`] says [`Pick::New`].
pub struct SlotTable<S> {
    entries: Vec<Entry<S>>,
    limit: usize,
    clock: u64,
}

impl<S> SlotTable<S> {
    /// A table of at most `limit` slots (at least 1) holding `first`.
    pub fn new(limit: usize, first: S) -> SlotTable<S> {
        SlotTable {
            entries: vec![Entry {
                value: first,
                last_used: 0,
                busy: false,
            }],
            limit: limit.max(1),
            clock: 0,
        }
    }

    /// Slots that exist now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never empty (created with one slot).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most slots the table will hold.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Where a request for `prompt` goes; `cached` says which tokens a slot's cache holds.
    pub fn pick(&self, prompt: &[u32], cached: impl Fn(&S) -> &[u32]) -> Pick {
        let views: Vec<SlotView<'_>> = self
            .entries
            .iter()
            .map(|entry| SlotView {
                cached: cached(&entry.value),
                last_used: entry.last_used,
                busy: entry.busy,
            })
            .collect();
        pick(&views, self.limit, prompt)
    }

    /// Adds a slot (idle, never used) and returns its index; `None` when the table is full.
    pub fn push(&mut self, value: S) -> Option<usize> {
        if self.entries.len() >= self.limit {
            return None;
        }
        self.entries.push(Entry {
            value,
            last_used: 0,
            busy: false,
        });
        Some(self.entries.len() - 1)
    }

    /// Adds no more slots (creating one failed): the ones there are get reused.
    pub fn stop_growing(&mut self) {
        self.limit = self.entries.len();
    }

    /// Marks slot `index` busy and most recently used, and returns it (None for no such slot).
    pub fn claim(&mut self, index: usize) -> Option<&mut S> {
        self.clock += 1;
        let entry = self.entries.get_mut(index)?;
        entry.last_used = self.clock;
        entry.busy = true;
        Some(&mut entry.value)
    }

    /// Marks slot `index` idle again.
    pub fn release(&mut self, index: usize) {
        if let Some(entry) = self.entries.get_mut(index) {
            entry.busy = false;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn view(cached: &[u32], last_used: u64) -> SlotView<'_> {
        SlotView {
            cached,
            last_used,
            busy: false,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let (a, b) = ([1, 2, 3, 4], [1, 2, 9, 9, 9]);
        let slots = [view(&a, 1), view(&b, 2)];
        assert_eq!(
            pick(&slots, 4, &[1, 2, 3, 4, 5]),
            Pick::Slot {
                index: 0,
                shared: 4
            }
        );
        assert_eq!(
            pick(&slots, 4, &[1, 2, 9]),
            Pick::Slot {
                index: 1,
                shared: 3
            }
        );
    }

    #[test]
    fn ties_go_to_the_most_recently_used() {
        let (a, b) = ([1, 2, 3, 7], [1, 2, 3, 8]);
        let slots = [view(&a, 5), view(&b, 9)];
        assert_eq!(
            pick(&slots, 2, &[1, 2, 3, 4]),
            Pick::Slot {
                index: 1,
                shared: 3
            }
        );
        let slots = [view(&a, 9), view(&b, 5)];
        assert_eq!(
            pick(&slots, 2, &[1, 2, 3, 4]),
            Pick::Slot {
                index: 0,
                shared: 3
            }
        );
    }

    #[test]
    fn a_short_shared_prefix_takes_a_free_or_new_slot() {
        // Only the BOS token in common: not worth evicting the other conversation.
        let a = [1, 2, 3, 4, 5, 6];
        let empty: [u32; 0] = [];
        assert_eq!(pick(&[view(&a, 3)], 4, &[1, 9, 9, 9]), Pick::New);
        assert_eq!(
            pick(&[view(&a, 3), view(&empty, 1)], 4, &[1, 9, 9, 9]),
            Pick::Slot {
                index: 1,
                shared: 0
            }
        );
        // Exactly half of the prompt counts.
        assert_eq!(
            pick(&[view(&a, 3)], 4, &[1, 2, 9, 9]),
            Pick::Slot {
                index: 0,
                shared: 2
            }
        );
    }

    #[test]
    fn a_full_table_reuses_the_least_recently_used() {
        let (a, b, c) = ([1, 2, 3], [4, 5, 6], [7, 8, 9]);
        let slots = [view(&a, 7), view(&b, 3), view(&c, 5)];
        assert_eq!(
            pick(&slots, 3, &[10, 11]),
            Pick::Slot {
                index: 1,
                shared: 0
            }
        );
        // One slot: everything goes there, reporting what it shares.
        assert_eq!(
            pick(&[view(&a, 1)], 1, &[1, 9, 9]),
            Pick::Slot {
                index: 0,
                shared: 1
            }
        );
    }

    #[test]
    fn busy_slots_are_skipped() {
        let (a, b) = ([1, 2, 3], [4, 5, 6]);
        let mut slots = [view(&a, 1), view(&b, 2)];
        slots[0].busy = true;
        assert_eq!(
            pick(&slots, 2, &[1, 2, 3, 4]),
            Pick::Slot {
                index: 1,
                shared: 0
            }
        );
        slots[1].busy = true;
        assert_eq!(pick(&slots, 2, &[1, 2, 3, 4]), Pick::Wait);
        assert_eq!(pick(&slots, 3, &[1, 2, 3, 4]), Pick::New);
    }

    #[test]
    fn the_table_claims_grows_and_stops_growing() {
        let mut table = SlotTable::new(3, vec![1u32, 2, 3]);
        let cached = Vec::as_slice;
        assert_eq!(table.pick(&[9, 9], cached), Pick::New);
        assert_eq!(table.push(vec![9, 9]), Some(1));
        table.claim(1).unwrap();
        assert_eq!(
            table.pick(&[1, 2, 3, 4], cached),
            Pick::Slot {
                index: 0,
                shared: 3
            }
        );
        table.release(1);
        table.stop_growing();
        assert_eq!(table.limit(), 2);
        assert_eq!(table.push(vec![5]), None);
        // Slot 0 was never claimed, slot 1 was: 0 is the least recently used.
        assert_eq!(
            table.pick(&[7], cached),
            Pick::Slot {
                index: 0,
                shared: 0
            }
        );
        assert!(table.claim(5).is_none());
        assert_eq!(SlotTable::new(0, ()).limit(), 1);
    }
}
