//! One token sequence on the GPU: the latent KV cache (one buffer per layer, `n_ctx` rows of
//! `r + dr` f32), scratch buffers, and the plans built for the batch sizes used so far.
//!
//! Every call is one queue submission: the token ids and positions are written into their
//! buffers, the plan's dispatches recorded into one command buffer, and the logits (or the
//! greedy token id) copied into a mappable buffer that is read back once the GPU is done.
//!
//! Pipelined decoding ([`GpuSession::submit_choice`], [`GpuSession::wait_choice`]): the token
//! chosen on the GPU (argmax, or [`crate::gpu::ops::sample`]) is copied into the token buffer
//! that the next step's embedding reads, and into one of two small readback buffers. So the host
//! can record and submit step N + 1 before it reads token N back: the GPU never waits for the
//! host between tokens, and each token is still one submission and one 4-byte readback.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc;

use wgpu::{Buffer, BufferUsages, MapMode, PollType, SubmissionIndex};

use super::model::{GpuArch, GpuModel};
use super::plan::{self, Output, Scratch, Step};
use super::weights::GpuFfn;
use crate::gpu::Gpu;
use crate::gpu::ops::attention::Split;
use crate::gpu::ops::cache_type::CacheType;
use crate::gpu::ops::sample::{MAX_TOP_K, SampleStep};
use crate::gpu::paging::PagingStats;
use crate::{Error, Result};

/// Default prompt batch (tokens per prefill submission).
pub const DEFAULT_BATCH: usize = 64;

/// How [`GpuSession::submit_choice`] chooses the next token on the GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DeviceChoice {
    /// The argmax of the logits.
    Greedy,
    /// Temperature sampling after top-k (1 ..= [`MAX_TOP_K`]), top-p and min-p, with this
    /// step's uniform draw in `step.u`.
    Sample { top_k: usize, step: SampleStep },
}

/// Steps whose chosen token may be in flight at once (one readback buffer each).
pub const MAX_IN_FLIGHT: usize = 2;

/// Counters of the work a session has done, for `bench`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SessionStats {
    pub submits: u64,
    pub readbacks: u64,
    pub dispatches: u64,
    /// Tokens processed.
    pub tokens: u64,
    /// Host time spent building command buffers (writing ids and positions, recording,
    /// finishing; not waiting, not in `queue.submit`), in microseconds.
    pub encode_us: u64,
    /// Host time inside `queue.submit` of the forward passes, in microseconds. A driver may
    /// block there until the previous submission is done (lavapipe does: its Vulkan queue
    /// waits for the semaphore wgpu chains submissions with), which a pipelined decode shows.
    pub submit_us: u64,
    /// The model's expert-paging counters (cumulative over its sessions; zero when resident).
    pub paging: PagingStats,
}

/// A sequence being decoded on the GPU.
pub struct GpuSession {
    model: Arc<GpuModel>,
    cache: Vec<Buffer>,
    n_ctx: usize,
    scratch: Scratch,
    /// Plans by (batch size, output, attention split: see [`GpuSession::split`]).
    plans: HashMap<(usize, Output, Split), Vec<Step>>,
    all_logits: Option<(usize, Buffer)>,
    readback: Buffer,
    /// Paged experts: the router's ids (and the predicted ids) of one layer, read back.
    ids_readback: Option<Buffer>,
    /// `--trace-experts`: one JSON line per token and paged layer.
    trace: Option<Box<dyn std::io::Write + Send>>,
    /// Pipelined decoding: one 4-byte readback buffer per step in flight, the steps submitted
    /// and not yet read (buffer index, submission), the buffer the next step uses, and whether
    /// the token buffer holds the last step's chosen token.
    choice_readback: Vec<Buffer>,
    in_flight: VecDeque<(usize, SubmissionIndex)>,
    next_slot: usize,
    device_token: bool,
    n_past: usize,
    pub stats: SessionStats,
}

impl GpuSession {
    /// An empty sequence of at most `n_ctx` tokens, prefilling `max_batch` tokens per submit,
    /// with the default cache type (f16).
    pub fn new(model: Arc<GpuModel>, n_ctx: usize, max_batch: usize) -> Result<GpuSession> {
        Self::with_cache_type(model, n_ctx, max_batch, CacheType::default())
    }

    /// [`GpuSession::new`] with caches of `cache_type` (deepseek2's latent cache, or the dense
    /// models' K and V caches).
    pub fn with_cache_type(
        model: Arc<GpuModel>,
        n_ctx: usize,
        max_batch: usize,
        cache_type: CacheType,
    ) -> Result<GpuSession> {
        let gpu = &model.gpu;
        if n_ctx == 0 || n_ctx > crate::gpu::ops::rope::MAX_POSITION as usize {
            return Err(Error::ContextFull {
                what: format!("a context of {n_ctx} tokens is not supported"),
            });
        }
        if let GpuArch::DeepSeek { config: c, .. } = &model.arch
            && let Some(ix) = c.indexer.filter(|ix| n_ctx > ix.top_k)
        {
            // Up to top_k positions the indexer selects every position: dense MLA is exact.
            return Err(Error::ContextFull {
                what: format!(
                    "DeepSeek-V3.2's sparse attention past {} tokens (its indexer's top_k) runs on \
                     the CPU backend only so far: use --ctx {} or less on the GPU, or --backend cpu",
                    ix.top_k, ix.top_k
                ),
            });
        }
        // deepseek2: the latent rows `[n_ctx, r + dr]` per layer; dense: K and V
        // `[n_ctx, H_kv·hd]` per layer.
        let caches: Vec<(String, u64)> = match &model.arch {
            GpuArch::DeepSeek { config: c, .. } => (0..c.n_layer)
                .map(|il| {
                    (
                        format!("latent cache of layer {il}"),
                        (c.n_lora_kv + c.n_rot) as u64 * cache_type.value_bytes(),
                    )
                })
                .collect(),
            GpuArch::Dense { config: c, .. } => (0..c.n_layer)
                .flat_map(|il| {
                    let row = c.kv_width() as u64 * cache_type.value_bytes();
                    [
                        (format!("K cache of layer {il}"), row),
                        (format!("V cache of layer {il}"), row),
                    ]
                })
                .collect(),
        };
        let cache_bytes: u64 = caches.iter().map(|(_, row)| row * n_ctx as u64).sum();
        let advice = || {
            format!(
                "the cache for a context of {n_ctx} tokens takes {} besides the weights: use a \
                 smaller --ctx",
                crate::gpu::paging::human_bytes(cache_bytes)
            )
        };
        let cache = caches
            .iter()
            .map(|(label, row_bytes)| {
                gpu.create_buffer(
                    &format!("{label} ({n_ctx} tokens)"),
                    row_bytes * n_ctx as u64,
                    BufferUsages::STORAGE | BufferUsages::COPY_SRC | BufferUsages::COPY_DST,
                )
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.with_memory_advice(advice))?;
        let scratch = Scratch::new(&model, max_batch.clamp(1, n_ctx), n_ctx, cache_type)
            .map_err(|e| e.with_memory_advice(advice))?;
        let readback = gpu.create_buffer(
            "logits readback",
            (model.n_vocab.max(1) * 4) as u64,
            BufferUsages::COPY_DST | BufferUsages::MAP_READ,
        )?;
        let ids_readback = match (&model.pager, &model.arch) {
            (Some(_), GpuArch::DeepSeek { config: c, .. }) => Some(gpu.create_buffer(
                "expert ids readback",
                (2 * scratch.max_batch * c.n_expert_used.max(1) * 4) as u64,
                BufferUsages::COPY_DST | BufferUsages::MAP_READ,
            )?),
            _ => None,
        };
        let choice_readback = (0..MAX_IN_FLIGHT)
            .map(|i| {
                gpu.create_buffer(
                    &format!("chosen token readback {i}"),
                    4,
                    BufferUsages::COPY_DST | BufferUsages::MAP_READ,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuSession {
            model,
            cache,
            n_ctx,
            scratch,
            plans: HashMap::new(),
            all_logits: None,
            readback,
            ids_readback,
            trace: None,
            choice_readback,
            in_flight: VecDeque::new(),
            next_slot: 0,
            device_token: false,
            n_past: 0,
            stats: SessionStats::default(),
        })
    }

    /// Writes the routed experts of every token and paged layer to `sink`, one JSON line each
    /// (`{"pos":P,"layer":L,"experts":[…]}`). Only a model loaded with paging (a budget, or
    /// forced for tracing) reads the ids back.
    pub fn set_trace(&mut self, sink: Box<dyn std::io::Write + Send>) -> Result<()> {
        if self.ids_readback.is_none() {
            return Err(Error::Gpu {
                what: "tracing experts".to_owned(),
                message: "the model was loaded without expert paging".to_owned(),
            });
        }
        self.trace = Some(sink);
        Ok(())
    }

    pub fn model(&self) -> &Arc<GpuModel> {
        &self.model
    }

    /// Tokens in the sequence (the position of the next one).
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Forgets every token after the first `n` (their cache rows are overwritten later): the
    /// shared prefix of a new prompt is kept. Chosen tokens not yet read are forgotten too (their
    /// steps still run; the GPU orders them before anything submitted later).
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
        self.in_flight.clear();
        self.device_token = false;
    }

    /// How attention over the positions the next `n` tokens see is split: as
    /// [`Split::for_batch`] decides for that span rounded up to a power of two (at most the
    /// context), so decode attention takes as many chunks as the depth needs, and a plan is
    /// rebuilt only when the split changes (never for batches that are not split).
    fn split(&self, n: usize) -> Split {
        let span = (self.n_past + n).next_power_of_two().min(self.n_ctx);
        let target = self.scratch.attention_target;
        Split::for_batch(n as u32, &self.model.attention_shape(), span as u32, target)
    }

    /// How the caches store their values.
    pub fn cache_type(&self) -> CacheType {
        self.scratch.cache_type
    }

    /// Bytes of cache one token takes over all layers (what a decode step at depth d reads d
    /// times).
    pub fn kv_bytes_per_token(&self) -> u64 {
        let cache: u64 = self.cache.iter().map(Buffer::size).sum();
        cache / self.n_ctx as u64
    }

    /// Bytes of GPU memory this session holds (cache and scratch).
    pub fn gpu_bytes(&self) -> u64 {
        let cache: u64 = self.cache.iter().map(Buffer::size).sum();
        cache + self.scratch.bytes + self.all_logits.as_ref().map_or(0, |(_, b)| b.size())
    }

    /// Appends `tokens`; returns the logits of the last one `[V]`.
    pub fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let bytes = self.forward(tokens, Output::Last)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Appends `tokens`; returns the greedy choice after the last one (argmax on the GPU).
    pub fn forward_greedy(&mut self, tokens: &[u32]) -> Result<u32> {
        let bytes = self.forward(tokens, Output::Greedy)?;
        Ok(bytemuck::pod_read_unaligned(&bytes[..4]))
    }

    /// Appends `tokens`; returns the logits of every one `[n_tok, V]` (tests, perplexity).
    pub fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let v = self.model.n_vocab;
        let mut out = Vec::with_capacity(tokens.len() * v);
        for chunk in tokens.chunks(self.scratch.max_batch) {
            self.check_tokens(chunk)?;
            let n = chunk.len();
            if self.all_logits.as_ref().is_none_or(|(len, _)| *len < n) {
                let buffer = self.model.gpu.create_buffer(
                    "all logits",
                    (n * v * 4) as u64,
                    BufferUsages::STORAGE | BufferUsages::COPY_SRC,
                )?;
                self.all_logits = Some((n, buffer));
                // Plans bound to the old buffer are stale.
                self.plans
                    .retain(|(_, output, _), _| *output != Output::All);
            }
            self.submit(Some(chunk), chunk.len(), Output::All, None)?;
            let buffer = &self.all_logits.as_ref().ok_or(Error::Cancelled)?.1;
            out.extend(self.model.gpu.read_f32("all logits", buffer, n * v)?);
            self.stats.readbacks += 1;
        }
        Ok(out)
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let v = self.model.n_vocab;
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= v) {
            return Err(Error::Tensor {
                name: "token_embd.weight".into(),
                what: format!("token id {bad} is out of range (vocabulary of {v})"),
            });
        }
        self.check_room(tokens.len())
    }

    /// Runs `tokens` through the model in batches; returns the wanted output's bytes.
    fn forward(&mut self, tokens: &[u32], output: Output) -> Result<Vec<u8>> {
        if tokens.is_empty() {
            return Err(Error::Gpu {
                what: "forward".to_owned(),
                message: "no tokens".to_owned(),
            });
        }
        self.check_tokens(tokens)?;
        let batch = self.scratch.max_batch;
        let n_chunks = tokens.len().div_ceil(batch);
        for (i, chunk) in tokens.chunks(batch).enumerate() {
            let last = i + 1 == n_chunks;
            let output = if last { output } else { Output::Nothing };
            self.submit(Some(chunk), chunk.len(), output, None)?;
        }
        let size = match output {
            Output::Greedy => 4,
            _ => (self.model.n_vocab * 4) as u64,
        };
        self.read_back(size)
    }

    /// Appends `feed` (or, when it is empty, the token the previous step chose on the GPU, which
    /// is already in the token buffer) and submits the step that chooses the next token on the
    /// GPU; returns without waiting. [`GpuSession::wait_choice`] returns the chosen tokens in
    /// the order of the calls; at most [`MAX_IN_FLIGHT`] may wait.
    pub fn submit_choice(&mut self, feed: &[u32], choice: &DeviceChoice) -> Result<()> {
        let fail = |message: String| Error::Gpu {
            what: "choosing a token on the GPU".to_owned(),
            message,
        };
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            return Err(fail(format!(
                "{MAX_IN_FLIGHT} chosen tokens are waiting to be read"
            )));
        }
        let output = match *choice {
            DeviceChoice::Greedy => Output::Greedy,
            DeviceChoice::Sample { top_k, step } => {
                if !(1..=MAX_TOP_K).contains(&top_k) {
                    return Err(fail(format!("top_k {top_k} is outside 1..={MAX_TOP_K}")));
                }
                if step.temperature.is_nan() || step.temperature <= 0.0 {
                    return Err(fail("sampling needs a temperature above 0".to_owned()));
                }
                self.model.gpu.queue.write_buffer(
                    &self.scratch.sample_step,
                    0,
                    bytemuck::bytes_of(&step),
                );
                Output::Sample(top_k)
            }
        };
        let slot = self.next_slot;
        if feed.is_empty() {
            if !self.device_token {
                return Err(fail("no token chosen on the GPU to feed".to_owned()));
            }
            self.check_room(1)?;
            let index = self.submit(None, 1, output, Some(slot))?;
            self.in_flight.push_back((slot, index));
        } else {
            self.check_tokens(feed)?;
            self.device_token = false;
            let batch = self.scratch.max_batch;
            let n_chunks = feed.len().div_ceil(batch);
            for (i, chunk) in feed.chunks(batch).enumerate() {
                if i + 1 < n_chunks {
                    self.submit(Some(chunk), chunk.len(), Output::Nothing, None)?;
                } else {
                    let index = self.submit(Some(chunk), chunk.len(), output, Some(slot))?;
                    self.in_flight.push_back((slot, index));
                }
            }
        }
        self.next_slot = (slot + 1) % MAX_IN_FLIGHT;
        self.device_token = true;
        Ok(())
    }

    /// The token chosen by the oldest step [`GpuSession::submit_choice`] submitted, once the
    /// GPU has finished that step (not the later ones).
    pub fn wait_choice(&mut self) -> Result<u32> {
        let (slot, index) = self.in_flight.pop_front().ok_or_else(|| Error::Gpu {
            what: "choosing a token on the GPU".to_owned(),
            message: "no step is waiting to be read".to_owned(),
        })?;
        let bytes = map_read(
            &self.model.gpu,
            &self.choice_readback[slot],
            4,
            Some(index),
            "reading the chosen token back",
        )?;
        self.stats.readbacks += 1;
        self.update_paging_stats();
        Ok(bytemuck::pod_read_unaligned(&bytes[..4]))
    }

    /// Tokens chosen on the GPU that were submitted and not yet read.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn check_room(&self, n: usize) -> Result<()> {
        if self.n_past + n > self.n_ctx {
            return Err(Error::ContextFull {
                what: format!(
                    "{} tokens in the sequence and {n} more do not fit the context of {}",
                    self.n_past, self.n_ctx
                ),
            });
        }
        Ok(())
    }

    /// Writes ids (when given; else the token buffer already holds them) and positions of `n`
    /// tokens, records the plan for `(n, output)` and submits. With `choice_slot`, the chosen
    /// token (greedy or sampled output) is copied into the token buffer, for the next step, and
    /// into that readback buffer.
    fn submit(
        &mut self,
        tokens: Option<&[u32]>,
        n: usize,
        output: Output,
        choice_slot: Option<usize>,
    ) -> Result<SubmissionIndex> {
        let start = std::time::Instant::now();
        if choice_slot.is_none() {
            self.device_token = false;
        }
        let key = (n, output, self.split(n));
        if !self.plans.contains_key(&key) {
            let all = self.all_logits.as_ref().map(|(_, b)| b);
            let steps = plan::build(
                &self.model,
                &self.scratch,
                &self.cache,
                (self.n_ctx, key.2),
                n,
                output,
                all,
            )?;
            // Keep the decode plans and a few prompt plans.
            if self.plans.len() >= 8 {
                self.plans.retain(|(len, _, _), _| *len == 1);
            }
            self.plans.insert(key, steps);
        }
        let model = self.model.clone();
        let gpu = &model.gpu;
        let positions: Vec<u32> = (self.n_past..self.n_past + n).map(|p| p as u32).collect();
        if let Some(tokens) = tokens {
            gpu.queue
                .write_buffer(&self.scratch.tokens, 0, bytemuck::cast_slice(tokens));
        }
        gpu.queue
            .write_buffer(&self.scratch.positions, 0, bytemuck::cast_slice(&positions));
        let steps = self.plans.remove(&key).unwrap_or_default();
        let paging_before = self.model.pager.as_ref().map(|p| {
            let p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            p.stats.sync_wait_us + p.stats.upload_us
        });
        let recorded = if steps.iter().any(|s| matches!(s, Step::PageIn { .. })) {
            self.record_paged(&steps, n)
        } else {
            let mut encoder = new_encoder(gpu);
            plan::record(&mut encoder, &steps);
            Ok(encoder)
        };
        let dispatches = plan::dispatch_count(&steps) as u64;
        self.plans.insert(key, steps);
        let mut encoder = recorded?;
        match (output, choice_slot) {
            (Output::Greedy | Output::Sample(_), Some(slot)) => {
                let chosen = &self.scratch.argmax;
                encoder.copy_buffer_to_buffer(chosen, 0, &self.scratch.tokens, 0, 4);
                encoder.copy_buffer_to_buffer(chosen, 0, &self.choice_readback[slot], 0, 4);
            }
            (Output::Last, _) => encoder.copy_buffer_to_buffer(
                &self.scratch.logits,
                0,
                &self.readback,
                0,
                (self.model.n_vocab * 4) as u64,
            ),
            (Output::Greedy | Output::Sample(_), None) => {
                encoder.copy_buffer_to_buffer(&self.scratch.argmax, 0, &self.readback, 0, 4)
            }
            (Output::All | Output::Nothing, _) => {}
        }
        let commands = encoder.finish();
        let submitted = std::time::Instant::now();
        let index = gpu.checked("submitting a forward pass", |_| {
            gpu.queue.submit([commands])
        })?;
        let submit_us = submitted.elapsed().as_micros() as u64;
        self.stats.submit_us += submit_us;
        self.n_past += n;
        self.stats.submits += 1;
        self.stats.dispatches += dispatches;
        self.stats.tokens += n as u64;
        // Host encoding only: waiting for expert ids and copying experts are counted by the pager.
        let paging_us = match (&self.model.pager, paging_before) {
            (Some(p), Some(before)) => {
                let p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                (p.stats.sync_wait_us + p.stats.upload_us).saturating_sub(before)
            }
            _ => 0,
        };
        self.stats.encode_us +=
            (start.elapsed().as_micros() as u64).saturating_sub(paging_us + submit_us);
        Ok(index)
    }

    /// GPU time per kernel of one decode step of `token` (the step is taken: the token is
    /// appended).
    pub fn profile_step(&mut self, token: u32) -> Result<super::profile::Profile> {
        if self.ids_readback.is_some() {
            return Err(Error::Gpu {
                what: "profiling".to_owned(),
                message: "a model with paged experts cannot be profiled (drop --gpu-budget)"
                    .to_owned(),
            });
        }
        self.check_tokens(&[token])?;
        let key = (1, Output::Greedy, self.split(1));
        if !self.plans.contains_key(&key) {
            let steps = plan::build(
                &self.model,
                &self.scratch,
                &self.cache,
                (self.n_ctx, key.2),
                1,
                Output::Greedy,
                None,
            )?;
            self.plans.insert(key, steps);
        }
        self.device_token = false;
        let gpu = &self.model.gpu;
        gpu.queue
            .write_buffer(&self.scratch.tokens, 0, bytemuck::bytes_of(&token));
        gpu.queue.write_buffer(
            &self.scratch.positions,
            0,
            bytemuck::bytes_of(&(self.n_past as u32)),
        );
        let profile = super::profile::profile(gpu, &self.plans[&key])?;
        self.n_past += 1;
        Ok(profile)
    }

    /// Maps the first `size` bytes of the readback buffer once the GPU has finished.
    fn read_back(&mut self, size: u64) -> Result<Vec<u8>> {
        let bytes = map_read(
            &self.model.gpu,
            &self.readback,
            size,
            None,
            "reading the logits back",
        )?;
        self.stats.readbacks += 1;
        self.update_paging_stats();
        Ok(bytes)
    }

    fn update_paging_stats(&mut self) {
        if let Some(pager) = &self.model.pager {
            self.stats.paging = pager
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stats;
        }
    }

    /// Records `steps` of `n` tokens for a model with paged experts: at each
    /// [`Step::PageIn`] the work so far is submitted, the layer's routed ids are read back, the
    /// missing experts are copied into slots, and the layer's expert steps are recorded once per
    /// group of experts that fits; then the predicted experts of the next paged layer are
    /// prefetched. Returns the encoder holding the rest.
    fn record_paged(&mut self, steps: &[Step], n: usize) -> Result<wgpu::CommandEncoder> {
        let model = self.model.clone();
        let gpu = &model.gpu;
        let (GpuArch::DeepSeek { config, weights }, Some(pager), Some(ids_readback)) =
            (&model.arch, &model.pager, &self.ids_readback)
        else {
            return Err(Error::Gpu {
                what: "paging experts".to_owned(),
                message: "the model has no expert pager".to_owned(),
            });
        };
        let moe_of = |layer: usize| match weights.layers.get(layer).map(|l| &l.ffn) {
            Some(GpuFfn::Moe(moe)) => Ok(moe),
            _ => Err(Error::Gpu {
                what: "paging experts".to_owned(),
                message: format!("block {layer} has no routed experts"),
            }),
        };
        let kk = config.n_expert_used;
        let ids_bytes = (n * kk * 4) as u64;
        let mut encoder = new_encoder(gpu);
        let mut i = 0;
        while i < steps.len() {
            let Step::PageIn { layer, next } = steps[i] else {
                let j = steps[i..]
                    .iter()
                    .position(|s| matches!(s, Step::PageIn { .. }))
                    .map_or(steps.len(), |p| i + p);
                plan::record(&mut encoder, &steps[i..j]);
                i = j;
                continue;
            };
            let end = steps[i..]
                .iter()
                .position(|s| matches!(s, Step::ExpertsEnd))
                .map(|p| i + p)
                .ok_or_else(|| Error::Gpu {
                    what: "paging experts".to_owned(),
                    message: "a paged layer has no end marker".to_owned(),
                })?;
            // Read the routed (and predicted) ids back.
            encoder.copy_buffer_to_buffer(&self.scratch.ids, 0, ids_readback, 0, ids_bytes);
            if next.is_some() {
                encoder.copy_buffer_to_buffer(
                    &self.scratch.pred_ids,
                    0,
                    ids_readback,
                    ids_bytes,
                    ids_bytes,
                );
            }
            let size = if next.is_some() {
                2 * ids_bytes
            } else {
                ids_bytes
            };
            let waited = std::time::Instant::now();
            gpu.checked("submitting a forward pass", |_| {
                gpu.queue.submit([encoder.finish()]);
            })?;
            self.stats.submits += 1;
            let raw = map_read(gpu, ids_readback, size, None, "reading the expert ids back")?;
            let wait_us = waited.elapsed().as_micros() as u64;
            let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&raw);
            let (routed, predicted) = ids.split_at(n * kk);
            if let Some(trace) = &mut self.trace {
                for (t, experts) in routed.chunks(kk).enumerate() {
                    let line = serde_json::json!({
                        "pos": self.n_past + t,
                        "layer": layer,
                        "experts": experts,
                    });
                    writeln!(trace, "{line}").map_err(|e| Error::Gpu {
                        what: "writing the expert trace".to_owned(),
                        message: e.to_string(),
                    })?;
                }
            }

            let moe = moe_of(layer)?;
            let mut pager = pager
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pager.stats.syncs += 1;
            pager.stats.sync_wait_us += wait_us;
            let m = pager.paged_index(layer).ok_or_else(|| Error::Gpu {
                what: "paging experts".to_owned(),
                message: format!("block {layer} is not paged"),
            })?;
            // The next layer's predicted experts start coming from disk while this layer's
            // misses are copied.
            if let Some(mn) = next.and_then(|next| pager.paged_index(next)) {
                pager.read_ahead(mn, predicted);
            }
            let groups = pager.groups(m, routed);
            encoder = new_encoder(gpu);
            for (g, group) in groups.iter().enumerate() {
                pager.load_group(gpu, m, group, &moe.experts, &moe.slot_of)?;
                plan::record(&mut encoder, &steps[i + 1..end]);
                if g + 1 < groups.len() {
                    gpu.checked("submitting a forward pass", |_| {
                        gpu.queue.submit([encoder.finish()]);
                    })?;
                    self.stats.submits += 1;
                    self.stats.dispatches += plan::dispatch_count(&steps[i + 1..end]) as u64;
                    encoder = new_encoder(gpu);
                }
            }
            if let Some(next) = next {
                // Submit this layer's expert passes first, so that the GPU computes them while
                // the host copies the next layer's predicted experts out of the map.
                gpu.checked("submitting a forward pass", |_| {
                    gpu.queue.submit([encoder.finish()]);
                })?;
                self.stats.submits += 1;
                encoder = new_encoder(gpu);
                let next_moe = moe_of(next)?;
                if let Some(mn) = pager.paged_index(next) {
                    pager.prefetch(gpu, mn, predicted, &next_moe.experts, &next_moe.slot_of)?;
                }
            }
            i = end + 1;
        }
        Ok(encoder)
    }
}

fn new_encoder(gpu: &Gpu) -> wgpu::CommandEncoder {
    gpu.device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("forward"),
        })
}

/// Maps the first `size` bytes of `buffer` once the GPU has finished submission `index` (every
/// submission when `None`), copies them out and unmaps it.
fn map_read(
    gpu: &Gpu,
    buffer: &Buffer,
    size: u64,
    index: Option<SubmissionIndex>,
    what: &str,
) -> Result<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    buffer.map_async(MapMode::Read, 0..size, move |result| {
        let _ = sender.send(result);
    });
    let fail = |message: String| Error::Gpu {
        what: what.to_owned(),
        message,
    };
    gpu.device
        .poll(PollType::Wait {
            submission_index: index,
            timeout: None,
        })
        .map_err(|e| fail(e.to_string()))?;
    receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .map_err(|_| fail("the map callback did not run within 60 s".to_owned()))?
        .map_err(|e| fail(e.to_string()))?;
    let bytes = buffer
        .get_mapped_range(0..size)
        .map_err(|e| fail(e.to_string()))?
        .to_vec();
    buffer.unmap();
    Ok(bytes)
}

impl std::fmt::Debug for GpuSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSession")
            .field("n_past", &self.n_past)
            .field("n_ctx", &self.n_ctx)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
