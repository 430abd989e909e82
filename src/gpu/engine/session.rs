//! One token sequence on the GPU: the latent KV cache (one buffer per layer, `n_ctx` rows of
//! `r + dr` f32), scratch buffers, and the plans built for the batch sizes used so far.
//!
//! Every call is one queue submission: the token ids and positions are written into their
//! buffers, the plan's dispatches recorded into one command buffer, and the logits (or the
//! greedy token id) copied into a mappable buffer that is read back once the GPU is done.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

use wgpu::{Buffer, BufferUsages, MapMode, PollType};

use super::model::{GpuArch, GpuModel};
use super::plan::{self, Output, Scratch, Step};
use crate::{Error, Result};

/// Default prompt batch (tokens per prefill submission).
pub const DEFAULT_BATCH: usize = 64;

/// Counters of the work a session has done, for `bench`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SessionStats {
    pub submits: u64,
    pub readbacks: u64,
    pub dispatches: u64,
    /// Tokens processed.
    pub tokens: u64,
    /// Host time spent building command buffers (encoding, not waiting), in microseconds.
    pub encode_us: u64,
}

/// A sequence being decoded on the GPU.
pub struct GpuSession {
    model: Arc<GpuModel>,
    cache: Vec<Buffer>,
    n_ctx: usize,
    scratch: Scratch,
    plans: HashMap<(usize, Output), Vec<Step>>,
    all_logits: Option<(usize, Buffer)>,
    readback: Buffer,
    n_past: usize,
    pub stats: SessionStats,
}

impl GpuSession {
    /// An empty sequence of at most `n_ctx` tokens, prefilling `max_batch` tokens per submit.
    pub fn new(model: Arc<GpuModel>, n_ctx: usize, max_batch: usize) -> Result<GpuSession> {
        let gpu = &model.gpu;
        if n_ctx == 0 || n_ctx > crate::gpu::ops::rope::MAX_POSITION as usize {
            return Err(Error::ContextFull {
                what: format!("a context of {n_ctx} tokens is not supported"),
            });
        }
        // deepseek2: the latent rows `[n_ctx, r + dr]` per layer; dense: K and V
        // `[n_ctx, H_kv·hd]` per layer.
        let caches: Vec<(String, u64)> = match &model.arch {
            GpuArch::DeepSeek { config: c, .. } => (0..c.n_layer)
                .map(|il| {
                    (
                        format!("latent cache of layer {il}"),
                        ((c.n_lora_kv + c.n_rot) * 4) as u64,
                    )
                })
                .collect(),
            GpuArch::Dense { config: c, .. } => (0..c.n_layer)
                .flat_map(|il| {
                    let row = (c.kv_width() * 4) as u64;
                    [
                        (format!("K cache of layer {il}"), row),
                        (format!("V cache of layer {il}"), row),
                    ]
                })
                .collect(),
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
            .collect::<Result<Vec<_>>>()?;
        let scratch = Scratch::new(&model, max_batch.clamp(1, n_ctx))?;
        let readback = gpu.create_buffer(
            "logits readback",
            (model.n_vocab.max(1) * 4) as u64,
            BufferUsages::COPY_DST | BufferUsages::MAP_READ,
        )?;
        Ok(GpuSession {
            model,
            cache,
            n_ctx,
            scratch,
            plans: HashMap::new(),
            all_logits: None,
            readback,
            n_past: 0,
            stats: SessionStats::default(),
        })
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
    /// shared prefix of a new prompt is kept.
    pub fn truncate(&mut self, n: usize) {
        self.n_past = self.n_past.min(n);
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
                self.plans.retain(|(_, output), _| *output != Output::All);
            }
            self.submit(chunk, Output::All)?;
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
        if self.n_past + tokens.len() > self.n_ctx {
            return Err(Error::ContextFull {
                what: format!(
                    "{} tokens in the sequence and {} more do not fit the context of {}",
                    self.n_past,
                    tokens.len(),
                    self.n_ctx
                ),
            });
        }
        Ok(())
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
            self.submit(chunk, if last { output } else { Output::Nothing })?;
        }
        let size = match output {
            Output::Greedy => 4,
            _ => (self.model.n_vocab * 4) as u64,
        };
        self.read_back(size)
    }

    /// Writes ids and positions, records the plan for `(tokens.len(), output)` and submits.
    fn submit(&mut self, tokens: &[u32], output: Output) -> Result<()> {
        let start = std::time::Instant::now();
        let n = tokens.len();
        let key = (n, output);
        if !self.plans.contains_key(&key) {
            let all = self.all_logits.as_ref().map(|(_, b)| b);
            let steps = plan::build(
                &self.model,
                &self.scratch,
                &self.cache,
                self.n_ctx,
                n,
                output,
                all,
            )?;
            // Keep the decode plans and a few prompt plans.
            if self.plans.len() >= 8 {
                self.plans.retain(|(len, _), _| *len == 1);
            }
            self.plans.insert(key, steps);
        }
        let steps = &self.plans[&key];
        let gpu = &self.model.gpu;
        let positions: Vec<u32> = (self.n_past..self.n_past + n).map(|p| p as u32).collect();
        gpu.queue
            .write_buffer(&self.scratch.tokens, 0, bytemuck::cast_slice(tokens));
        gpu.queue
            .write_buffer(&self.scratch.positions, 0, bytemuck::cast_slice(&positions));
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("forward"),
            });
        plan::record(&mut encoder, steps);
        match output {
            Output::Last => encoder.copy_buffer_to_buffer(
                &self.scratch.logits,
                0,
                &self.readback,
                0,
                (self.model.n_vocab * 4) as u64,
            ),
            Output::Greedy => {
                encoder.copy_buffer_to_buffer(&self.scratch.argmax, 0, &self.readback, 0, 4)
            }
            Output::All | Output::Nothing => {}
        }
        let dispatches = plan::dispatch_count(steps) as u64;
        gpu.checked("submitting a forward pass", |_| {
            gpu.queue.submit([encoder.finish()]);
        })?;
        self.n_past += n;
        self.stats.submits += 1;
        self.stats.dispatches += dispatches;
        self.stats.tokens += n as u64;
        self.stats.encode_us += start.elapsed().as_micros() as u64;
        Ok(())
    }

    /// GPU time per kernel of one decode step of `token` (the step is taken: the token is
    /// appended).
    pub fn profile_step(&mut self, token: u32) -> Result<super::profile::Profile> {
        self.check_tokens(&[token])?;
        let key = (1, Output::Greedy);
        if !self.plans.contains_key(&key) {
            let steps = plan::build(
                &self.model,
                &self.scratch,
                &self.cache,
                self.n_ctx,
                1,
                Output::Greedy,
                None,
            )?;
            self.plans.insert(key, steps);
        }
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
        let gpu = &self.model.gpu;
        let (sender, receiver) = mpsc::channel();
        self.readback
            .map_async(MapMode::Read, 0..size, move |result| {
                let _ = sender.send(result);
            });
        let fail = |message: String| Error::Gpu {
            what: "reading the logits back".to_owned(),
            message,
        };
        gpu.device
            .poll(PollType::wait_indefinitely())
            .map_err(|e| fail(e.to_string()))?;
        receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .map_err(|_| fail("the map callback did not run within 60 s".to_owned()))?
            .map_err(|e| fail(e.to_string()))?;
        let bytes = self
            .readback
            .get_mapped_range(0..size)
            .map_err(|e| fail(e.to_string()))?
            .to_vec();
        self.readback.unmap();
        self.stats.readbacks += 1;
        Ok(bytes)
    }
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
