//! The slot-pool policy: which routed experts sit in which GPU slot, pure logic with no GPU.
//!
//! # What it decides
//!
//! The routed experts of every MoE layer live in one GPU pool of `n_slots` slots. Layer `l` owns
//! the contiguous slot range `base_l .. base_l + quota_l` (its *quota*; the quotas split the pool
//! evenly unless given), so layers never compete for a slot and a loader can upload into one layer's
//! range while the kernels read another's. Slot ids are global pool indices, which is what the
//! `matvec_id` kernel's slot table holds (`slot_base` of a pool is the first slot it binds).
//!
//! Per decoded token and layer the router picks `k` experts and the loader calls
//! [`ExpertPolicy::request`]: a resident expert is a hit; a missing one gets a free slot of the
//! layer, or the slot of the *victim*, the resident expert of that layer with the lowest score that
//! is neither pinned nor requested by the same token. After `request` every requested expert is
//! resident. [`ExpertPolicy::prefetch`] loads predicted experts ahead of need (e.g. the next
//! layer's router applied to the current hidden state) into free or evictable slots, never evicting
//! a pinned expert, an expert of the layer's latest request (in flight or about to be reused), or
//! another candidate of the same call.
//!
//! # Scores: LFU-aged with recency
//!
//! Each `(layer, expert)` keeps an aged use count: every use adds 1, and the count halves every
//! `half_life_tokens` tokens of that layer (continuous decay, applied lazily when read). The score
//! of a resident expert is
//!
//! ```text
//! score = aged_count + recency_weight / (1 + tokens since last use)
//! ```
//!
//! ties broken by older last use, then by lower expert id, so the policy is deterministic. The
//! count survives eviction, so an expert that was hot comes back hot. [`Eviction::Lru`] (the score
//! is only the last use) is kept for comparison and for tests.
//!
//! A *pinned set* per layer: after `warmup_tokens` requests on a layer, its `pinned_per_layer` most
//! used experts of the warm-up window (ties: lower id) are pinned and never evicted once resident.
//! The pinned count is capped at `quota - k_max` (`k_max` the largest request seen in warm-up) so a
//! request of that size always fits. [`ExpertPolicy::set_pinned`] pins an explicit set instead.
//!
//! # Why
//!
//! Ideas only, no code: Mixtral-offloading (arXiv 2312.17238) keeps a per-layer LRU cache of
//! experts and shows that consecutive tokens reuse experts, so recency matters; MoE-Infinity (arXiv
//! 2401.14361) and HOBBIT (arXiv 2411.01433) show that expert activation is skewed and that
//! frequency-aware (and decayed, request-level) statistics beat pure LRU when some experts are
//! persistently popular. The aged count is LRFU-like: a short half-life behaves like LRU, a long
//! one like LFU; pinning takes the persistently hot experts out of the competition entirely.
//!
//! # Cost per call
//!
//! With `q` the layer's quota and `k` the experts in the call: `request` is `O(k² + k·q)` (dedup,
//! then one scan of the layer's slots per miss to find a free slot or the lowest score), `prefetch`
//! is `O(c·(c + q))` for `c` candidates, `slot_table` is `O(1)`. No allocation per call beyond the
//! returned vector and a `k`-sized dedup list. The end of a layer's warm-up sorts its experts once
//! (`O(n_experts log n_experts)`). Debug builds re-check the touched layer's invariants after every
//! call (`O(n_experts + q)`).

use std::ops::Range;

/// A slot-table entry for an expert that is not resident: what the GPU table holds.
pub const NOT_RESIDENT: u32 = u32::MAX;

/// A local slot that holds no expert.
const EMPTY: u32 = u32::MAX;

/// The eviction rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eviction {
    /// Least recently used (score = last use only).
    Lru,
    /// LFU with aging plus recency; see the module documentation.
    LfuAged {
        /// The aged use count halves every this many tokens of the layer (≥ 1).
        half_life_tokens: u32,
        /// Weight of the recency term `1 / (1 + tokens since last use)`.
        recency_weight: f32,
    },
}

impl Default for Eviction {
    fn default() -> Self {
        Eviction::LfuAged {
            half_life_tokens: 64,
            recency_weight: 1.0,
        }
    }
}

/// How an [`ExpertPolicy`] is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// MoE layers that page their routed experts.
    pub n_layers: usize,
    /// Routed experts per layer.
    pub n_experts: u32,
    /// Slots in the whole pool (all layers).
    pub n_slots: u32,
    /// Slots per layer; `None` splits `n_slots` evenly (the first layers take the remainder, and no
    /// layer gets more than `n_experts`).
    pub quotas: Option<Vec<u32>>,
    /// Most-used experts per layer pinned at the end of the warm-up window (0: none).
    pub pinned_per_layer: u32,
    /// Requests per layer measured before pinning (0: never pin automatically).
    pub warmup_tokens: u32,
    /// The eviction rule.
    pub eviction: Eviction,
}

impl PolicyConfig {
    /// Even quotas, no pinning, the default LFU-aged rule.
    pub fn new(n_layers: usize, n_experts: u32, n_slots: u32) -> PolicyConfig {
        PolicyConfig {
            n_layers,
            n_experts,
            n_slots,
            quotas: None,
            pinned_per_layer: 0,
            warmup_tokens: 0,
            eviction: Eviction::default(),
        }
    }
}

/// Where one requested expert is, index for index with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Already resident in `slot`; nothing to load.
    Hit { slot: u32 },
    /// Not resident: load it into `slot`, which held `evicted` (or nothing).
    Miss { slot: u32, evicted: Option<u32> },
}

impl Placement {
    /// The (global) slot the expert is in after the request.
    pub fn slot(&self) -> u32 {
        match *self {
            Placement::Hit { slot } | Placement::Miss { slot, .. } => slot,
        }
    }

    pub fn is_hit(&self) -> bool {
        matches!(self, Placement::Hit { .. })
    }
}

/// Cache counters, over all layers. Duplicated ids within one request count once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyStats {
    /// Requested experts that were resident (prefetch hits included).
    pub hits: u64,
    /// Requested experts that had to be loaded.
    pub misses: u64,
    /// Hits on an expert a prefetch loaded and no request had used yet: misses avoided.
    pub prefetch_hits: u64,
    /// Experts loaded by [`ExpertPolicy::prefetch`].
    pub prefetch_loads: u64,
    /// Prefetched experts evicted before any request used them.
    pub prefetch_wasted: u64,
    /// Resident experts replaced (by a request or a prefetch).
    pub evictions: u64,
}

impl PolicyStats {
    /// `hits / (hits + misses)`, 0 before any request.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// `prefetch_hits / prefetch_loads`, 0 before any prefetch.
    pub fn prefetch_accuracy(&self) -> f64 {
        if self.prefetch_loads == 0 {
            0.0
        } else {
            self.prefetch_hits as f64 / self.prefetch_loads as f64
        }
    }

    /// Experts loaded from host memory, on demand or ahead.
    pub fn loads(&self) -> u64 {
        self.misses + self.prefetch_loads
    }
}

/// Why a configuration or a call was refused. A refused call changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("expert policy configuration: {0}")]
    Config(String),
    #[error("layer {layer} out of range (the policy has {n_layers} layers)")]
    Layer { layer: usize, n_layers: usize },
    #[error("layer {layer}: expert {expert} out of range (the layer has {n_experts} experts)")]
    Expert {
        layer: usize,
        expert: u32,
        n_experts: u32,
    },
    #[error(
        "layer {layer}: {needed} experts must be loaded but only {available} slots are free or evictable \
         (quota {quota})"
    )]
    OverQuota {
        layer: usize,
        needed: u32,
        available: u32,
        quota: u32,
    },
}

/// What the policy remembers about one `(layer, expert)`, resident or not.
#[derive(Debug, Clone, Copy, Default)]
struct ExpertMeta {
    /// Aged use count as of token `count_at`.
    count: f64,
    count_at: u64,
    /// The layer's token of the last use (or of the prefetch that loaded it).
    last_use: u64,
    /// Loaded by a prefetch and not used by a request since.
    prefetched: bool,
    pinned: bool,
}

#[derive(Debug, Clone)]
struct LayerState {
    /// First global slot of the layer's range.
    base: u32,
    /// expert → global slot, or [`NOT_RESIDENT`].
    table: Vec<u32>,
    /// local slot → expert, or [`EMPTY`]; its length is the quota.
    slots: Vec<u32>,
    meta: Vec<ExpertMeta>,
    /// Requests on this layer so far (the layer's token clock).
    tick: u64,
    /// Uses during the warm-up window.
    warm_counts: Vec<u32>,
    /// The largest distinct request seen so far.
    max_k: u32,
    /// Whether the pinned set is decided (warm-up over, or set explicitly).
    pins_decided: bool,
    /// The distinct experts of the latest request: protected from prefetch eviction.
    last_request: Vec<u32>,
}

impl LayerState {
    fn quota(&self) -> u32 {
        self.slots.len() as u32
    }

    fn resident_count(&self) -> u32 {
        self.slots.iter().filter(|&&e| e != EMPTY).count() as u32
    }

    fn is_resident(&self, expert: u32) -> bool {
        self.table[expert as usize] != NOT_RESIDENT
    }
}

/// The slot-pool policy; see the module documentation.
#[derive(Debug, Clone)]
pub struct ExpertPolicy {
    config: PolicyConfig,
    layers: Vec<LayerState>,
    stats: PolicyStats,
}

impl ExpertPolicy {
    /// A policy with every slot empty.
    pub fn new(config: PolicyConfig) -> Result<ExpertPolicy, PolicyError> {
        let n_layers = config.n_layers;
        if n_layers == 0 || config.n_experts == 0 {
            return Err(PolicyError::Config(format!(
                "need at least one layer and one expert (got {n_layers} layers, {} experts)",
                config.n_experts
            )));
        }
        if config.n_experts == u32::MAX {
            return Err(PolicyError::Config("too many experts".into()));
        }
        if let Eviction::LfuAged {
            half_life_tokens,
            recency_weight,
        } = config.eviction
            && (half_life_tokens == 0 || !recency_weight.is_finite() || recency_weight < 0.0)
        {
            return Err(PolicyError::Config(format!(
                "LFU-aged needs half_life_tokens ≥ 1 and a finite recency_weight ≥ 0 (got {half_life_tokens}, \
                 {recency_weight})"
            )));
        }
        let quotas = match &config.quotas {
            Some(q) => {
                if q.len() != n_layers {
                    return Err(PolicyError::Config(format!(
                        "{} quotas for {n_layers} layers",
                        q.len()
                    )));
                }
                if let Some(layer) = q.iter().position(|&q| q == 0) {
                    return Err(PolicyError::Config(format!(
                        "layer {layer} has a quota of 0 slots"
                    )));
                }
                let sum: u64 = q.iter().map(|&q| u64::from(q)).sum();
                if sum > u64::from(config.n_slots) {
                    return Err(PolicyError::Config(format!(
                        "quotas sum to {sum} slots but the pool has {}",
                        config.n_slots
                    )));
                }
                q.clone()
            }
            None => {
                let n = u32::try_from(n_layers)
                    .map_err(|_| PolicyError::Config(format!("{n_layers} layers")))?;
                let each = config.n_slots / n;
                let extra = config.n_slots % n;
                if each == 0 {
                    return Err(PolicyError::Config(format!(
                        "{} slots cannot give each of {n_layers} layers one slot",
                        config.n_slots
                    )));
                }
                (0..n)
                    .map(|l| (each + u32::from(l < extra)).min(config.n_experts))
                    .collect()
            }
        };
        let n_experts = config.n_experts as usize;
        let mut base = 0u32;
        let mut layers = Vec::with_capacity(n_layers);
        for &quota in &quotas {
            layers.push(LayerState {
                base,
                table: vec![NOT_RESIDENT; n_experts],
                slots: vec![EMPTY; quota as usize],
                meta: vec![ExpertMeta::default(); n_experts],
                tick: 0,
                warm_counts: vec![0; n_experts],
                max_k: 0,
                pins_decided: config.warmup_tokens == 0 || config.pinned_per_layer == 0,
                last_request: Vec::new(),
            });
            base += quota;
        }
        Ok(ExpertPolicy {
            config,
            layers,
            stats: PolicyStats::default(),
        })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The layer's slots: global slot ids `start .. end`.
    pub fn slot_range(&self, layer: usize) -> Range<u32> {
        self.layers
            .get(layer)
            .map_or(0..0, |l| l.base..l.base + l.quota())
    }

    /// The layer's quota (0 for a layer out of range).
    pub fn quota(&self, layer: usize) -> u32 {
        self.layers.get(layer).map_or(0, LayerState::quota)
    }

    /// expert id → global slot, [`NOT_RESIDENT`] when not resident: the GPU slot table of the
    /// layer. Empty for a layer out of range.
    pub fn slot_table(&self, layer: usize) -> &[u32] {
        self.layers.get(layer).map_or(&[], |l| &l.table)
    }

    pub fn is_resident(&self, layer: usize, expert: u32) -> bool {
        self.slot_table(layer)
            .get(expert as usize)
            .is_some_and(|&s| s != NOT_RESIDENT)
    }

    pub fn is_pinned(&self, layer: usize, expert: u32) -> bool {
        self.layers
            .get(layer)
            .and_then(|l| l.meta.get(expert as usize))
            .is_some_and(|m| m.pinned)
    }

    /// The pinned experts of a layer, in id order.
    pub fn pinned(&self, layer: usize) -> Vec<u32> {
        self.layers.get(layer).map_or_else(Vec::new, |l| {
            (0..l.meta.len() as u32)
                .filter(|&e| l.meta[e as usize].pinned)
                .collect()
        })
    }

    pub fn stats(&self) -> PolicyStats {
        self.stats
    }

    /// Zero the counters (residency and scores stay), e.g. after a warm-up.
    pub fn reset_stats(&mut self) {
        self.stats = PolicyStats::default();
    }

    /// Pin exactly `experts` on `layer` (replacing any pinned set, and ending its warm-up): they
    /// are never evicted once resident. At most `quota - 1` experts.
    pub fn set_pinned(&mut self, layer: usize, experts: &[u32]) -> Result<(), PolicyError> {
        self.check_ids(layer, experts)?;
        let state = &mut self.layers[layer];
        let distinct = dedup(experts);
        if distinct.len() as u32 >= state.quota() {
            return Err(PolicyError::Config(format!(
                "layer {layer}: {} pinned experts leave no slot free (quota {})",
                distinct.len(),
                state.quota()
            )));
        }
        for m in &mut state.meta {
            m.pinned = false;
        }
        for &e in &distinct {
            state.meta[e as usize].pinned = true;
        }
        state.pins_decided = true;
        Ok(())
    }

    /// The router picked `experts` for the next token on `layer`: make them all resident. The
    /// result is index for index with `experts`; a repeated id is a hit on its first placement.
    pub fn request(
        &mut self,
        layer: usize,
        experts: &[u32],
    ) -> Result<Vec<Placement>, PolicyError> {
        self.check_ids(layer, experts)?;
        let distinct = dedup(experts);
        let eviction = self.config.eviction;
        let state = &mut self.layers[layer];
        let needed = distinct.iter().filter(|&&e| !state.is_resident(e)).count() as u32;
        let free = state.quota() - state.resident_count();
        let evictable = state
            .slots
            .iter()
            .filter(|&&e| e != EMPTY && !state.meta[e as usize].pinned && !distinct.contains(&e))
            .count() as u32;
        if needed > free + evictable {
            return Err(PolicyError::OverQuota {
                layer,
                needed,
                available: free + evictable,
                quota: state.quota(),
            });
        }

        state.tick += 1;
        let now = state.tick;
        let mut placements = Vec::with_capacity(experts.len());
        let mut seen: Vec<u32> = Vec::with_capacity(distinct.len());
        for &e in experts {
            if seen.contains(&e) {
                placements.push(Placement::Hit {
                    slot: state.table[e as usize],
                });
                continue;
            }
            seen.push(e);
            let placement = if state.is_resident(e) {
                self.stats.hits += 1;
                let meta = &mut state.meta[e as usize];
                if meta.prefetched {
                    meta.prefetched = false;
                    self.stats.prefetch_hits += 1;
                }
                Placement::Hit {
                    slot: state.table[e as usize],
                }
            } else {
                self.stats.misses += 1;
                let (slot, evicted) = place(state, eviction, e, &distinct, &mut self.stats).ok_or(
                    PolicyError::OverQuota {
                        layer,
                        needed,
                        available: free + evictable,
                        quota: state.slots.len() as u32,
                    },
                )?;
                Placement::Miss { slot, evicted }
            };
            touch(&mut state.meta[e as usize], eviction, now);
            placements.push(placement);
        }

        state.max_k = state.max_k.max(distinct.len() as u32);
        if !state.pins_decided {
            for &e in &distinct {
                state.warm_counts[e as usize] += 1;
            }
            if now >= u64::from(self.config.warmup_tokens) {
                decide_pins(state, self.config.pinned_per_layer);
            }
        }
        state.last_request = distinct;
        debug_assert_eq!(check_layer(layer, state), Ok(()));
        Ok(placements)
    }

    /// Load up to `max_loads` of `candidates` (in priority order) that are not resident into free
    /// slots or over evictable experts, never over a pinned expert, an expert of the layer's latest
    /// request, or another candidate. Returns `(expert, slot)` for each load. Stops at the first
    /// candidate that finds no slot. Does not advance the layer's clock.
    pub fn prefetch(
        &mut self,
        layer: usize,
        candidates: &[u32],
        max_loads: usize,
    ) -> Result<Vec<(u32, u32)>, PolicyError> {
        self.check_ids(layer, candidates)?;
        let distinct = dedup(candidates);
        let eviction = self.config.eviction;
        let state = &mut self.layers[layer];
        let mut protected = distinct.clone();
        protected.extend_from_slice(&state.last_request);
        let now = state.tick;
        let mut loads = Vec::new();
        for &e in &distinct {
            if loads.len() >= max_loads {
                break;
            }
            if state.is_resident(e) {
                continue;
            }
            let Some((slot, _)) = place(state, eviction, e, &protected, &mut self.stats) else {
                break;
            };
            self.stats.prefetch_loads += 1;
            let meta = &mut state.meta[e as usize];
            meta.prefetched = true;
            meta.last_use = now;
            loads.push((e, slot));
        }
        debug_assert_eq!(check_layer(layer, state), Ok(()));
        Ok(loads)
    }

    /// Every invariant, over every layer: no slot holds two experts, the table and the reverse map
    /// agree, each layer stays in its quota range, the latest request of each layer is resident,
    /// the pinned set fits. Tests call it after every step; debug builds check the touched layer.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut end = 0u32;
        for (l, state) in self.layers.iter().enumerate() {
            if state.base != end {
                return Err(format!(
                    "layer {l}: slot range starts at {} not {end}",
                    state.base
                ));
            }
            end += state.quota();
            check_layer(l, state)?;
        }
        if end > self.config.n_slots {
            return Err(format!("quotas use {end} slots of {}", self.config.n_slots));
        }
        Ok(())
    }

    fn check_ids(&self, layer: usize, experts: &[u32]) -> Result<(), PolicyError> {
        if layer >= self.layers.len() {
            return Err(PolicyError::Layer {
                layer,
                n_layers: self.layers.len(),
            });
        }
        let n_experts = self.config.n_experts;
        match experts.iter().find(|&&e| e >= n_experts) {
            Some(&expert) => Err(PolicyError::Expert {
                layer,
                expert,
                n_experts,
            }),
            None => Ok(()),
        }
    }
}

/// The distinct ids of `experts`, first occurrence order.
fn dedup(experts: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(experts.len());
    for &e in experts {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// A use at `now`: age the count, add one, note the time.
fn touch(meta: &mut ExpertMeta, eviction: Eviction, now: u64) {
    meta.count = aged_count(meta, eviction, now) + 1.0;
    meta.count_at = now;
    meta.last_use = now;
}

fn aged_count(meta: &ExpertMeta, eviction: Eviction, now: u64) -> f64 {
    match eviction {
        Eviction::Lru => 0.0,
        Eviction::LfuAged {
            half_life_tokens, ..
        } => {
            let age = now.saturating_sub(meta.count_at) as f64;
            meta.count * (-age / f64::from(half_life_tokens)).exp2()
        }
    }
}

fn score(meta: &ExpertMeta, eviction: Eviction, now: u64) -> f64 {
    match eviction {
        Eviction::Lru => 0.0,
        Eviction::LfuAged { recency_weight, .. } => {
            let age = now.saturating_sub(meta.last_use) as f64;
            aged_count(meta, eviction, now) + f64::from(recency_weight) / (1.0 + age)
        }
    }
}

/// Put `expert` into a free slot of the layer, or over the lowest-scoring resident expert that is
/// not pinned and not in `protected`. Returns the global slot and the evicted expert, or `None`
/// when no slot can be had (nothing changed then).
fn place(
    state: &mut LayerState,
    eviction: Eviction,
    expert: u32,
    protected: &[u32],
    stats: &mut PolicyStats,
) -> Option<(u32, Option<u32>)> {
    let local = match state.slots.iter().position(|&e| e == EMPTY) {
        Some(free) => free,
        None => {
            let now = state.tick;
            let mut best: Option<(usize, f64, u64, u32)> = None;
            for (i, &e) in state.slots.iter().enumerate() {
                let meta = &state.meta[e as usize];
                if meta.pinned || protected.contains(&e) {
                    continue;
                }
                let key = (score(meta, eviction, now), meta.last_use, e);
                let better = best.is_none_or(|(_, s, t, id)| {
                    key.0
                        .total_cmp(&s)
                        .then(key.1.cmp(&t))
                        .then(key.2.cmp(&id))
                        .is_lt()
                });
                if better {
                    best = Some((i, key.0, key.1, key.2));
                }
            }
            best?.0
        }
    };
    let slot = state.base + local as u32;
    let evicted = match state.slots[local] {
        EMPTY => None,
        old => {
            state.table[old as usize] = NOT_RESIDENT;
            let meta = &mut state.meta[old as usize];
            if meta.prefetched {
                meta.prefetched = false;
                stats.prefetch_wasted += 1;
            }
            stats.evictions += 1;
            Some(old)
        }
    };
    state.slots[local] = expert;
    state.table[expert as usize] = slot;
    Some((slot, evicted))
}

/// End of warm-up: pin the most used experts, leaving room for the largest request seen.
fn decide_pins(state: &mut LayerState, pinned_per_layer: u32) {
    let room = state.quota().saturating_sub(state.max_k.max(1));
    let n = pinned_per_layer.min(room) as usize;
    let mut order: Vec<u32> = (0..state.warm_counts.len() as u32)
        .filter(|&e| state.warm_counts[e as usize] > 0)
        .collect();
    order.sort_by(|&a, &b| {
        state.warm_counts[b as usize]
            .cmp(&state.warm_counts[a as usize])
            .then(a.cmp(&b))
    });
    for &e in order.iter().take(n) {
        state.meta[e as usize].pinned = true;
    }
    state.pins_decided = true;
}

fn check_layer(l: usize, state: &LayerState) -> Result<(), String> {
    let quota = state.quota();
    for (i, &e) in state.slots.iter().enumerate() {
        if e == EMPTY {
            continue;
        }
        let Some(&slot) = state.table.get(e as usize) else {
            return Err(format!(
                "layer {l}: slot {i} holds expert {e}, out of range"
            ));
        };
        if slot != state.base + i as u32 {
            return Err(format!(
                "layer {l}: local slot {i} holds expert {e} but its table entry is {slot}"
            ));
        }
    }
    for (e, &slot) in state.table.iter().enumerate() {
        if slot == NOT_RESIDENT {
            continue;
        }
        if slot < state.base || slot >= state.base + quota {
            return Err(format!(
                "layer {l}: expert {e} in slot {slot}, outside the quota range {}..{}",
                state.base,
                state.base + quota
            ));
        }
        if state.slots[(slot - state.base) as usize] != e as u32 {
            return Err(format!(
                "layer {l}: table puts expert {e} in slot {slot}, which holds {}",
                state.slots[(slot - state.base) as usize]
            ));
        }
    }
    if let Some(&e) = state.last_request.iter().find(|&&e| !state.is_resident(e)) {
        return Err(format!(
            "layer {l}: expert {e} of the latest request is not resident"
        ));
    }
    let pinned = state.meta.iter().filter(|m| m.pinned).count() as u32;
    if pinned >= quota.max(1) {
        return Err(format!(
            "layer {l}: {pinned} pinned experts for a quota of {quota}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Knuth's MMIX LCG: deterministic traces on every platform.
    struct Lcg(u64);

    impl Lcg {
        fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 32) as u32
        }

        fn unit(&mut self) -> f64 {
            f64::from(self.next_u32()) / 4_294_967_296.0
        }

        fn below(&mut self, n: u32) -> u32 {
            ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
        }
    }

    /// A synthetic routing trace: `[token][layer]` → `k` distinct experts.
    #[derive(Clone, Copy)]
    struct TraceSpec {
        n_layers: usize,
        n_experts: u32,
        k: u32,
        tokens: usize,
        /// Zipf exponent of expert popularity (0: uniform), over a per-layer random ranking.
        zipf_s: f64,
        /// Probability that each of the previous token's experts is kept (token-to-token locality).
        keep: f64,
        seed: u64,
    }

    type Trace = Vec<Vec<Vec<u32>>>;

    fn trace(spec: TraceSpec) -> Trace {
        let mut rng = Lcg(spec.seed);
        let n = spec.n_experts;
        let mut per_layer = Vec::new();
        for _ in 0..spec.n_layers {
            let mut rank: Vec<u32> = (0..n).collect();
            for i in (1..n as usize).rev() {
                let j = rng.below(i as u32 + 1) as usize;
                rank.swap(i, j);
            }
            let mut cdf = Vec::with_capacity(n as usize);
            let mut acc = 0.0;
            for r in 0..n {
                acc += 1.0 / f64::from(r + 1).powf(spec.zipf_s);
                cdf.push(acc);
            }
            per_layer.push((rank, cdf));
        }
        let mut out: Trace = Vec::with_capacity(spec.tokens);
        for t in 0..spec.tokens {
            let mut token = Vec::with_capacity(spec.n_layers);
            for (l, (rank, cdf)) in per_layer.iter().enumerate() {
                let mut chosen: Vec<u32> = Vec::with_capacity(spec.k as usize);
                if t > 0 {
                    for &e in &out[t - 1][l] {
                        if rng.unit() < spec.keep {
                            chosen.push(e);
                        }
                    }
                }
                let total = cdf[cdf.len() - 1];
                while chosen.len() < spec.k as usize {
                    let u = rng.unit() * total;
                    let r = cdf.partition_point(|&c| c <= u).min(n as usize - 1);
                    let e = rank[r];
                    if !chosen.contains(&e) {
                        chosen.push(e);
                    }
                }
                token.push(chosen);
            }
            out.push(token);
        }
        out
    }

    const V2: TraceSpec = TraceSpec {
        n_layers: 4,
        n_experts: 64,
        k: 6,
        tokens: 3000,
        zipf_s: 1.0,
        keep: 0.5,
        seed: 7,
    };

    fn lfu() -> Eviction {
        Eviction::default()
    }

    /// Replays `trace`, checking after every request that the token's experts are resident.
    fn replay(config: PolicyConfig, trace: &Trace, check_every_step: bool) -> ExpertPolicy {
        let mut policy = ExpertPolicy::new(config).unwrap();
        for token in trace {
            for (l, experts) in token.iter().enumerate() {
                let placements = policy.request(l, experts).unwrap();
                assert_eq!(placements.len(), experts.len());
                for (&e, p) in experts.iter().zip(&placements) {
                    assert_eq!(policy.slot_table(l)[e as usize], p.slot());
                }
                if check_every_step {
                    policy.check_invariants().unwrap();
                }
            }
        }
        policy.check_invariants().unwrap();
        policy
    }

    fn hit_rate(spec: TraceSpec, slots_per_layer: u32, eviction: Eviction, pinned: u32) -> f64 {
        let t = trace(spec);
        let mut config = PolicyConfig::new(
            spec.n_layers,
            spec.n_experts,
            slots_per_layer * spec.n_layers as u32,
        );
        config.eviction = eviction;
        config.pinned_per_layer = pinned;
        config.warmup_tokens = if pinned > 0 { 200 } else { 0 };
        replay(config, &t, false).stats().hit_rate()
    }

    #[test]
    fn hit_rate_table() {
        // Not an assertion: the figures quoted in reports (`cargo test --lib paging -- --nocapture`).
        let uniform = TraceSpec {
            zipf_s: 0.0,
            keep: 0.0,
            ..V2
        };
        let zipf = TraceSpec { keep: 0.0, ..V2 };
        for (name, spec) in [("zipf+locality", V2), ("zipf", zipf), ("uniform", uniform)] {
            for slots in [16, 32] {
                let lru = hit_rate(spec, slots, Eviction::Lru, 0);
                let aged = hit_rate(spec, slots, lfu(), 0);
                let pinned = hit_rate(spec, slots, lfu(), 4);
                eprintln!(
                    "{name:14} {slots:2}/64 slots: LRU {lru:.3}  LFU-aged {aged:.3}  LFU-aged+4 pinned {pinned:.3}"
                );
            }
        }
    }

    #[test]
    fn zipf_locality_beats_uniform() {
        let uniform = TraceSpec {
            zipf_s: 0.0,
            keep: 0.0,
            ..V2
        };
        let skewed = hit_rate(V2, 16, lfu(), 0);
        let flat = hit_rate(uniform, 16, lfu(), 0);
        // Uniform routing can do no better than quota / n_experts = 25 % on average.
        assert!((0.18..0.32).contains(&flat), "uniform hit rate {flat}");
        assert!(
            skewed > flat + 0.3,
            "zipf+locality {skewed} vs uniform {flat}"
        );
    }

    #[test]
    fn lfu_aged_at_least_lru_on_zipf() {
        for keep in [0.0, 0.5] {
            let spec = TraceSpec { keep, ..V2 };
            for slots in [12, 16, 32] {
                let lru = hit_rate(spec, slots, Eviction::Lru, 0);
                let aged = hit_rate(spec, slots, lfu(), 0);
                assert!(
                    aged >= lru,
                    "keep {keep} slots {slots}: LFU-aged {aged} < LRU {lru}"
                );
            }
        }
    }

    #[test]
    fn full_budget_hits_everything_after_first_touch() {
        let t = trace(TraceSpec {
            tokens: 500,
            zipf_s: 0.0,
            keep: 0.0,
            ..V2
        });
        for eviction in [Eviction::Lru, lfu()] {
            let mut config = PolicyConfig::new(V2.n_layers, V2.n_experts, 64 * 4 + 3);
            config.eviction = eviction;
            let policy = replay(config, &t, false);
            let distinct: u64 = (0..V2.n_layers)
                .map(|l| {
                    let mut seen = [false; 64];
                    for token in &t {
                        for &e in &token[l] {
                            seen[e as usize] = true;
                        }
                    }
                    seen.iter().filter(|&&s| s).count() as u64
                })
                .sum();
            let stats = policy.stats();
            assert_eq!(stats.misses, distinct);
            assert_eq!(stats.evictions, 0);
            assert_eq!(stats.hits + stats.misses, 500 * 4 * 6);
            for l in 0..V2.n_layers {
                assert_eq!(policy.quota(l), 64);
            }
        }
    }

    #[test]
    fn budget_of_exactly_k_slots_misses_what_is_not_shared() {
        let spec = TraceSpec { tokens: 400, ..V2 };
        let t = trace(spec);
        for eviction in [Eviction::Lru, lfu()] {
            let mut config = PolicyConfig::new(spec.n_layers, spec.n_experts, spec.k * 4);
            config.eviction = eviction;
            // Pinning must yield when the quota holds only one token's experts.
            config.pinned_per_layer = 3;
            config.warmup_tokens = 10;
            let mut policy = ExpertPolicy::new(config).unwrap();
            for (i, token) in t.iter().enumerate() {
                for (l, experts) in token.iter().enumerate() {
                    let placements = policy.request(l, experts).unwrap();
                    let misses = placements.iter().filter(|p| !p.is_hit()).count();
                    let expected = if i == 0 {
                        experts.len()
                    } else {
                        experts.iter().filter(|e| !t[i - 1][l].contains(e)).count()
                    };
                    assert_eq!(misses, expected, "token {i} layer {l}");
                    policy.check_invariants().unwrap();
                }
            }
            assert!(policy.pinned(0).is_empty());
        }
    }

    #[test]
    fn pinned_experts_stay_resident() {
        let t = trace(V2);
        let mut config = PolicyConfig::new(V2.n_layers, V2.n_experts, 12 * 4);
        config.pinned_per_layer = 4;
        config.warmup_tokens = 100;
        config.eviction = Eviction::Lru;
        let mut policy = ExpertPolicy::new(config).unwrap();
        let mut resident_pins: Vec<Vec<u32>> = vec![Vec::new(); V2.n_layers];
        for (i, token) in t.iter().enumerate() {
            for (l, experts) in token.iter().enumerate() {
                policy.request(l, experts).unwrap();
                for &e in &resident_pins[l] {
                    assert!(
                        policy.is_resident(l, e),
                        "pinned {e} of layer {l} evicted at token {i}"
                    );
                }
                resident_pins[l] = policy
                    .pinned(l)
                    .into_iter()
                    .filter(|&e| policy.is_resident(l, e))
                    .collect();
            }
            if i == 100 {
                // The pins are the warm-up's most used experts.
                for (l, pins) in resident_pins.iter().enumerate() {
                    assert_eq!(policy.pinned(l).len(), 4);
                    let mut counts = vec![0u32; 64];
                    for token in &t[..100] {
                        for &e in &token[l] {
                            counts[e as usize] += 1;
                        }
                    }
                    let min_pinned = pins.iter().map(|&e| counts[e as usize]).min().unwrap();
                    let unpinned_max = (0..64u32)
                        .filter(|e| !policy.is_pinned(l, *e))
                        .map(|e| counts[e as usize])
                        .max()
                        .unwrap();
                    assert!(min_pinned >= unpinned_max);
                }
            }
        }
    }

    #[test]
    fn prefetch_hits_count_and_spare_needed_experts() {
        let mut config = PolicyConfig::new(1, 16, 4);
        config.eviction = Eviction::Lru;
        let mut policy = ExpertPolicy::new(config).unwrap();
        assert_eq!(
            policy.request(0, &[1, 2]).unwrap(),
            vec![
                Placement::Miss {
                    slot: 0,
                    evicted: None
                },
                Placement::Miss {
                    slot: 1,
                    evicted: None
                }
            ]
        );
        // Two free slots; 1 and 2 (the latest request) are never evicted by a prefetch.
        let loads = policy.prefetch(0, &[2, 3, 4, 5, 6], 8).unwrap();
        assert_eq!(loads, vec![(3, 2), (4, 3)]);
        assert!(policy.is_resident(0, 1) && policy.is_resident(0, 2));
        let placements = policy.request(0, &[3, 7]).unwrap();
        assert_eq!(placements[0], Placement::Hit { slot: 2 });
        // 4 was prefetched but not used yet, so it is the least recent candidate after 1 and 2.
        assert!(matches!(
            placements[1],
            Placement::Miss {
                evicted: Some(_),
                ..
            }
        ));
        let stats = policy.stats();
        assert_eq!((stats.prefetch_loads, stats.prefetch_hits), (2, 1));
        assert_eq!((stats.hits, stats.misses), (1, 3));
        // max_loads is honoured, and a prefetch with nothing evictable loads nothing.
        assert!(policy.prefetch(0, &[9, 10], 0).unwrap().is_empty());
        policy.set_pinned(0, &[3]).unwrap();
        let loads = policy.prefetch(0, &[9, 10, 11], 3).unwrap();
        assert!(loads.len() <= 2);
        assert!(policy.is_resident(0, 3) && policy.is_resident(0, 7));
        policy.check_invariants().unwrap();
    }

    #[test]
    fn prefetch_accuracy_and_wrong_prefetch() {
        let t = trace(V2);
        let run = |accuracy: f64| {
            let mut rng = Lcg(99);
            let mut policy =
                ExpertPolicy::new(PolicyConfig::new(V2.n_layers, V2.n_experts, 16 * 4)).unwrap();
            for token in &t {
                for (l, experts) in token.iter().enumerate() {
                    // A predictor right with probability `accuracy` for each expert.
                    let guess: Vec<u32> = experts
                        .iter()
                        .map(|&e| {
                            if rng.unit() < accuracy {
                                e
                            } else {
                                rng.below(64)
                            }
                        })
                        .collect();
                    policy.prefetch(l, &guess, 6).unwrap();
                    policy.request(l, experts).unwrap();
                    assert!(experts.iter().all(|&e| policy.is_resident(l, e)));
                }
            }
            policy.check_invariants().unwrap();
            policy.stats()
        };
        let none = hit_rate(V2, 16, lfu(), 0);
        let good = run(0.8);
        let wrong = run(0.0);
        eprintln!(
            "prefetch 80 %: hit rate {:.3} (no prefetch {none:.3}), accuracy {:.3}; \
             prefetch random: hit rate {:.3}, accuracy {:.3}",
            good.hit_rate(),
            good.prefetch_accuracy(),
            wrong.hit_rate(),
            wrong.prefetch_accuracy()
        );
        assert!(good.hit_rate() > none + 0.1);
        assert!(good.prefetch_hits > 0 && good.prefetch_accuracy() > 0.3);
        assert!(wrong.prefetch_accuracy() < good.prefetch_accuracy());
    }

    #[test]
    fn refused_calls_change_nothing() {
        assert!(ExpertPolicy::new(PolicyConfig::new(4, 64, 3)).is_err());
        let mut bad = PolicyConfig::new(2, 64, 10);
        bad.quotas = Some(vec![6, 6]);
        assert!(matches!(
            ExpertPolicy::new(bad),
            Err(PolicyError::Config(_))
        ));
        let mut given = PolicyConfig::new(2, 64, 10);
        given.quotas = Some(vec![3, 7]);
        let mut policy = ExpertPolicy::new(given).unwrap();
        assert_eq!(policy.slot_range(0), 0..3);
        assert_eq!(policy.slot_range(1), 3..10);
        policy.request(0, &[1, 2]).unwrap();
        policy.set_pinned(0, &[1]).unwrap();
        let before = policy.clone();
        assert!(matches!(
            policy.request(0, &[3, 4, 5]),
            Err(PolicyError::OverQuota {
                needed: 3,
                available: 2,
                ..
            })
        ));
        assert!(matches!(
            policy.request(0, &[64]),
            Err(PolicyError::Expert { .. })
        ));
        assert!(matches!(
            policy.request(2, &[0]),
            Err(PolicyError::Layer { .. })
        ));
        assert!(policy.set_pinned(0, &[1, 2, 3]).is_err());
        assert_eq!(policy.slot_table(0), before.slot_table(0));
        assert_eq!(policy.stats(), before.stats());
        // Duplicates: one placement each, counted once.
        let p = policy.request(1, &[5, 5, 6]).unwrap();
        assert_eq!(p[1], Placement::Hit { slot: p[0].slot() });
        assert_eq!(policy.stats().misses, before.stats().misses + 2);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Request(usize, Vec<u32>),
        Prefetch(usize, Vec<u32>, usize),
    }

    fn op(n_layers: usize, n_experts: u32, k: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..n_layers, prop::collection::vec(0..n_experts, 1..=k))
                .prop_map(|(l, e)| Op::Request(l, e)),
            1 => (0..n_layers, prop::collection::vec(0..n_experts, 0..=2 * k), 0usize..8)
                .prop_map(|(l, e, m)| Op::Prefetch(l, e, m)),
        ]
    }

    proptest! {
           #[test]
           fn invariants_hold_on_random_traces(
               (quotas, ops, pinned, warmup, lru) in (1usize..4, 2u32..20, 1usize..5).prop_flat_map(
                   |(n_layers, n_experts, k)| (
                       prop::collection::vec(k as u32..=n_experts + 2, n_layers),
                       prop::collection::vec(op(n_layers, n_experts, k), 1..200),
                       0u32..4,
                       0u32..20,
                       any::<bool>(),
                   ).prop_map(move |(q, o, p, w, lru)| ((q, n_experts), o, p, w, lru))
               )
           ) {
               let (quotas, n_experts) = quotas;
               let n_layers = quotas.len();
               let mut config = PolicyConfig::new(n_layers, n_experts, quotas.iter().sum::<u32>() + 1);
               config.quotas = Some(quotas.clone());
               config.pinned_per_layer = pinned;
               config.warmup_tokens = warmup;
               if lru {
                   config.eviction = Eviction::Lru;
               }
               let mut policy = ExpertPolicy::new(config).unwrap();
               let mut pins: Vec<Vec<u32>> = vec![Vec::new(); n_layers];
               let mut last = policy.stats();
               for op in ops {
                   match op {
                       Op::Request(l, experts) => {
    let before = policy.clone();
    match policy.request(l, &experts) {
                           Ok(placements) => {
                               prop_assert_eq!(placements.len(), experts.len());
                               for (&e, p) in experts.iter().zip(&placements) {
                                   prop_assert_eq!(policy.slot_table(l)[e as usize], p.slot());
                                   prop_assert!(policy.slot_range(l).contains(&p.slot()));
                                   if let Placement::Miss { evicted: Some(v), .. } = p {
                                       prop_assert!(!experts.contains(v));
                                       prop_assert!(!before.is_pinned(l, *v));
                                   }
                               }
                               let s = policy.stats();
                               let distinct = dedup(&experts).len() as u64;
                               prop_assert_eq!(s.hits + s.misses, last.hits + last.misses + distinct);
                           }
                           Err(PolicyError::OverQuota { .. }) => {
                               // Only when pins crowd the quota: requests up to the largest
                               // warm-up request always fit.
                               prop_assert!(!policy.pinned(l).is_empty());
                           }
                           Err(e) => prop_assert!(false, "{e}"),
                       }},
                       Op::Prefetch(l, candidates, max) => {
                           let before = policy.clone();
                           let loads = policy.prefetch(l, &candidates, max).unwrap();
                           prop_assert!(loads.len() <= max);
                           for &(e, slot) in &loads {
                               prop_assert!(candidates.contains(&e));
                               prop_assert!(!before.is_resident(l, e));
                               prop_assert_eq!(policy.slot_table(l)[e as usize], slot);
                           }
                           // Every candidate resident before stays resident.
                           for &e in &candidates {
                               if before.is_resident(l, e) {
                                   prop_assert!(policy.is_resident(l, e));
                               }
                           }
                       }
                   }
                   if let Err(msg) = policy.check_invariants() {
                       prop_assert!(false, "{}", msg);
                   }
                   for (l, p) in pins.iter_mut().enumerate() {
                       for &e in p.iter() {
                           prop_assert!(policy.is_resident(l, e), "pinned {} of layer {} evicted", e, l);
                       }
                       *p = policy.pinned(l).into_iter().filter(|&e| policy.is_resident(l, e)).collect();
                   }
                   last = policy.stats();
               }
           }
       }
}
