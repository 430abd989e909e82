//! [`Sequence`]: one token sequence being decoded, on either backend. The generation loop, the
//! CLI, the app and the server drive models only through this trait.

use crate::Result;
use crate::cpu;
use crate::gpu::engine::{DeviceChoice, GpuSession, SessionStats};

/// A token sequence with its KV cache.
pub trait Sequence {
    /// Appends `tokens`; returns the logits of the last one `[V]`.
    fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>>;

    /// Appends `tokens`; returns the logits of every one `[n_tok, V]`.
    fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>>;

    /// Appends `tokens`; returns the argmax of the last one's logits.
    fn forward_greedy(&mut self, tokens: &[u32]) -> Result<u32> {
        Ok(crate::sampler::argmax(&self.forward_last(tokens)?))
    }

    /// Whether the backend chooses tokens itself, pipelined ([`Sequence::submit_choice`]).
    fn chooses_on_device(&self) -> bool {
        false
    }

    /// Appends `feed` (or, when empty, the token the previous step chose on the device) and
    /// starts the step that chooses the next token on the device, without waiting for it.
    fn submit_choice(&mut self, _feed: &[u32], _choice: &DeviceChoice) -> Result<()> {
        Err(no_device_choice())
    }

    /// The token chosen by the oldest step started with [`Sequence::submit_choice`].
    fn wait_choice(&mut self) -> Result<u32> {
        Err(no_device_choice())
    }

    /// Tokens in the sequence.
    fn n_past(&self) -> usize;

    /// The most tokens the sequence can hold.
    fn n_ctx(&self) -> usize;

    /// Keeps the first `n` tokens (and their cache), forgets the rest.
    fn truncate(&mut self, n: usize);

    /// Work counters, where the backend keeps them.
    fn stats(&self) -> SessionStats {
        SessionStats::default()
    }

    /// GPU time per kernel of one decode step (GPU only).
    fn profile_step(&mut self, _token: u32) -> Result<crate::gpu::engine::profile::Profile> {
        Err(crate::Error::Gpu {
            what: "profiling".to_owned(),
            message: "only the GPU backend has a kernel profile".to_owned(),
        })
    }

    /// The GPU cache's element type and bytes per token over all layers (None on the CPU,
    /// whose caches are f32).
    fn gpu_cache(&self) -> Option<(crate::gpu::ops::cache_type::CacheType, u64)> {
        None
    }

    /// GPU memory the sequence holds (cache and scratch; 0 on the CPU).
    fn gpu_bytes(&self) -> u64 {
        0
    }
}

fn no_device_choice() -> crate::Error {
    crate::Error::Gpu {
        what: "choosing a token on the device".to_owned(),
        message: "only the GPU backend chooses tokens on the device".to_owned(),
    }
}

impl Sequence for GpuSession {
    fn chooses_on_device(&self) -> bool {
        true
    }

    fn submit_choice(&mut self, feed: &[u32], choice: &DeviceChoice) -> Result<()> {
        GpuSession::submit_choice(self, feed, choice)
    }

    fn wait_choice(&mut self) -> Result<u32> {
        GpuSession::wait_choice(self)
    }

    fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        GpuSession::forward_last(self, tokens)
    }

    fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        GpuSession::forward_all(self, tokens)
    }

    fn forward_greedy(&mut self, tokens: &[u32]) -> Result<u32> {
        GpuSession::forward_greedy(self, tokens)
    }

    fn n_past(&self) -> usize {
        GpuSession::n_past(self)
    }

    fn n_ctx(&self) -> usize {
        GpuSession::n_ctx(self)
    }

    fn truncate(&mut self, n: usize) {
        GpuSession::truncate(self, n);
    }

    fn stats(&self) -> SessionStats {
        self.stats
    }

    fn gpu_bytes(&self) -> u64 {
        GpuSession::gpu_bytes(self)
    }

    fn gpu_cache(&self) -> Option<(crate::gpu::ops::cache_type::CacheType, u64)> {
        Some((self.cache_type(), self.kv_bytes_per_token()))
    }

    fn profile_step(&mut self, token: u32) -> Result<crate::gpu::engine::profile::Profile> {
        GpuSession::profile_step(self, token)
    }
}

/// The CPU reference as a sequence, with a context limit of its own choosing.
pub struct CpuSequence<'m, 'a> {
    pub session: cpu::Session<'m, 'a>,
    pub n_ctx: usize,
}

impl Sequence for CpuSequence<'_, '_> {
    fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        last_row(self.forward_all(tokens)?, tokens.len())
    }

    fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        check_context(self.session.n_past(), tokens.len(), self.n_ctx)?;
        self.session.forward(tokens)
    }

    fn n_past(&self) -> usize {
        self.session.n_past()
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn truncate(&mut self, n: usize) {
        self.session.truncate(n);
    }
}

/// The logits of the last of `n_tok` rows.
fn last_row(logits: Vec<f32>, n_tok: usize) -> Result<Vec<f32>> {
    let n_vocab = logits.len() / n_tok.max(1);
    Ok(logits[logits.len() - n_vocab..].to_vec())
}

/// A clear error when `n_new` more tokens do not fit the context.
fn check_context(n_past: usize, n_new: usize, n_ctx: usize) -> Result<()> {
    if n_past + n_new > n_ctx {
        return Err(crate::Error::ContextFull {
            what: format!(
                "{n_past} tokens in the sequence and {n_new} more do not fit the context of {n_ctx}"
            ),
        });
    }
    Ok(())
}

/// The dense (llama/qwen2) CPU reference as a sequence.
pub struct CpuDenseSequence<'m, 'a> {
    pub session: cpu::dense::DenseSession<'m, 'a>,
    pub n_ctx: usize,
}

impl Sequence for CpuDenseSequence<'_, '_> {
    fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        last_row(self.forward_all(tokens)?, tokens.len())
    }

    fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        check_context(self.session.n_past(), tokens.len(), self.n_ctx)?;
        self.session.forward(tokens)
    }

    fn n_past(&self) -> usize {
        self.session.n_past()
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn truncate(&mut self, n: usize) {
        self.session.truncate(n);
    }
}
