//! Synthetic deepseek2 models: random weights with the real shapes and metadata of a preset, the
//! real DeepSeek-V3 tokenizer and chat template, written as a GGUF. Tests and benchmarks use these
//! instead of downloaded weights. The dense R1 distills (`qwen3`, `llama`) have their own presets
//! in `dense.rs`.
//!
//! The same seed gives the same weights whatever the thread count, quant type or MLA layout (each
//! row has its own random stream), so files of one seed differ only by their encoding.
//!
//! # Routing
//!
//! Random weights route tokens uniformly over the experts, which no real model does, so expert
//! caches would see no skew. [`SynthConfig::routing`] = [`Routing::Skewed`] (CLI: `synth --routing
//! realistic [--zipf-s S] [--locality L]`) builds Zipf-like expert popularity and token-to-token
//! locality into the embeddings, routers and output head; see [`SkewedRouting`] for the
//! parameters, their defaults, the skew they aim at and what `tests/synth_routing.rs` measures.
//! Such files carry `lanternfish.synth.routing = "realistic"` and one
//! `lanternfish.synth.routing.<parameter>` key per parameter; the default
//! ([`Routing::Uniform`]) writes no key and the same bytes as before the option existed.

mod dense;
mod presets;
mod routing;
mod tensors;

pub use dense::{DenseRopeSpec, DenseSynthConfig, write_dense_model};
pub use presets::SynthConfig;
pub use routing::{Routing, SkewedRouting};
pub use tensors::{Init, Layout, TensorSpec, tensor_specs};

use std::io::Write;

use lanternfish_quant::{GgmlType, quantize_row};

use crate::gguf::{GgufFile, GgufWriter, MetaValue};
use crate::quantize::{QuantMix, target_type};
use crate::rng::Rng;
use crate::{Error, Result};
use routing::{LayerTables, Skew};

static TOKENIZER_FULL: &[u8] = include_bytes!("../../assets/tokenizers/deepseek-v3.gguf");
static TOKENIZER_MINI: &[u8] = include_bytes!("../../assets/tokenizers/deepseek-v3-mini.gguf");

/// How a synthetic model's weights are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightType {
    /// Every matrix in this float type (F32, F16 or BF16).
    Float(GgmlType),
    /// A quant type or mix, with llama.cpp's per-tensor rules.
    Quant(QuantMix),
}

impl WeightType {
    /// `f32`, `f16`, `bf16` or any name `QuantMix` accepts.
    pub fn from_name(name: &str) -> Option<WeightType> {
        match name.to_ascii_lowercase().as_str() {
            "f32" => Some(WeightType::Float(GgmlType::F32)),
            "f16" => Some(WeightType::Float(GgmlType::F16)),
            "bf16" => Some(WeightType::Float(GgmlType::Bf16)),
            other => QuantMix::from_name(other).map(WeightType::Quant),
        }
    }

    fn file_type(self) -> u32 {
        match self {
            WeightType::Float(GgmlType::F32) => 0,
            WeightType::Float(GgmlType::Bf16) => 32,
            WeightType::Float(_) => 1,
            WeightType::Quant(mix) => mix.file_type(),
        }
    }
}

/// Everything that determines a synthetic model file.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub config: SynthConfig,
    pub weights: WeightType,
    pub layout: Layout,
    pub seed: u64,
}

/// The bundled tokenizer a preset uses (a vocab-only GGUF).
pub fn tokenizer_gguf(config: &SynthConfig) -> Result<GgufFile> {
    bundled_tokenizer(config.full_vocab).map(|(tokenizer, _)| tokenizer)
}

/// The name and bytes of the full DeepSeek-V3 tokenizer or its 4096-row cut.
fn tokenizer_bytes(full_vocab: bool) -> (&'static str, &'static [u8]) {
    if full_vocab {
        ("deepseek-v3.gguf", TOKENIZER_FULL)
    } else {
        ("deepseek-v3-mini.gguf", TOKENIZER_MINI)
    }
}

/// The type each tensor is stored in: F32 where the mix rules never quantize, else the float
/// type or the mix's choice for a model of `n_layer` blocks.
fn tensor_type(weights: WeightType, n_layer: u64, spec: &TensorSpec) -> GgmlType {
    let name = spec.name.as_str();
    let quantizable = crate::quantize::mix::is_quantizable(name, &spec.shape);
    match weights {
        _ if !quantizable => GgmlType::F32,
        WeightType::Float(ty) => ty,
        WeightType::Quant(mix) => {
            target_type(mix, name, &spec.shape, n_layer, true).unwrap_or(GgmlType::F32)
        }
    }
}

/// The bundled tokenizer and its vocabulary size.
fn bundled_tokenizer(full_vocab: bool) -> Result<(GgufFile, u64)> {
    let (name, bytes) = tokenizer_bytes(full_vocab);
    let tokenizer = GgufFile::from_bytes(name.as_ref(), bytes.to_vec())?;
    let n_vocab = tokenizer
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len() as u64)
        .ok_or_else(|| Error::Metadata {
            key: "tokenizer.ggml.tokens".into(),
            what: "missing from the bundled tokenizer".into(),
        })?;
    Ok((tokenizer, n_vocab))
}

/// Copies the `tokenizer.*` keys, then writes every tensor of `specs` (its type from
/// [`tensor_type`], its bytes from `data`) to `sink`; `progress` gets (tensor index, count).
fn write_file<W: Write>(
    mut writer: GgufWriter,
    tokenizer: &GgufFile,
    specs: &[TensorSpec],
    (weights, n_layer): (WeightType, u64),
    sink: W,
    progress: &dyn Fn(usize, usize),
    data: &dyn Fn(&TensorSpec, GgmlType) -> Vec<u8>,
) -> Result<()> {
    for (key, value) in tokenizer.metadata() {
        if key.starts_with("tokenizer.") {
            writer.set(key, MetaValue::from(value));
        }
    }
    let types: Vec<GgmlType> = specs
        .iter()
        .map(|s| tensor_type(weights, n_layer, s))
        .collect();
    let invalid = |e: crate::gguf::WriteError| Error::Tensor {
        name: "synthetic model".into(),
        what: e.to_string(),
    };
    for (s, ty) in specs.iter().zip(&types) {
        writer
            .add_tensor_info(&s.name, *ty, &s.shape)
            .map_err(invalid)?;
    }
    let mut stream = writer.start(sink).map_err(invalid)?;
    for (i, (s, ty)) in specs.iter().zip(&types).enumerate() {
        progress(i, specs.len());
        stream.write_tensor(&data(s, *ty)).map_err(invalid)?;
    }
    stream.finish().map_err(invalid)?;
    progress(specs.len(), specs.len());
    Ok(())
}

/// Writes the model to `sink`; `progress` is called with (tensor index, tensor count).
pub fn write_model<W: Write>(
    options: &SynthOptions,
    sink: W,
    progress: &dyn Fn(usize, usize),
) -> Result<()> {
    let c = &options.config;
    let (tokenizer, n_vocab) = bundled_tokenizer(c.full_vocab)?;
    let mut writer = GgufWriter::new();
    write_metadata(&mut writer, options, n_vocab);
    let specs = tensor_specs(c, n_vocab, options.layout);
    let skew = match c.routing {
        Routing::Uniform => None,
        Routing::Skewed(params) => Some(Skew::new(
            params,
            options.seed,
            c.n_embd as usize,
            n_vocab,
            c.n_expert as usize,
            c.n_expert_used as usize,
        )),
    };
    let kinds = (options.weights, c.n_layer);
    write_file(
        writer,
        &tokenizer,
        &specs,
        kinds,
        sink,
        progress,
        &|s, ty| generate(options, s, ty, skew.as_ref()),
    )
}

fn write_metadata(w: &mut GgufWriter, o: &SynthOptions, n_vocab: u64) {
    let c = &o.config;
    let u32v = |v: u64| MetaValue::U32(v as u32);
    let name = if c.indexer.is_some() {
        "deepseek32"
    } else {
        "deepseek2"
    };
    let arch = |k: &str| format!("{name}.{k}");
    w.set("general.architecture", MetaValue::String(name.into()));
    w.set("general.type", MetaValue::String("model".into()));
    w.set(
        "general.name",
        MetaValue::String(format!("lanternfish synthetic {} seed {}", c.name, o.seed)),
    );
    w.set("general.file_type", MetaValue::U32(o.weights.file_type()));
    w.set("general.quantization_version", MetaValue::U32(2));
    w.set(&arch("block_count"), u32v(c.n_layer + c.n_nextn));
    w.set(&arch("context_length"), u32v(163_840));
    w.set(&arch("embedding_length"), u32v(c.n_embd));
    w.set(&arch("feed_forward_length"), u32v(c.n_ff));
    w.set(&arch("attention.head_count"), u32v(c.n_head));
    w.set(&arch("rope.scaling.type"), MetaValue::String("yarn".into()));
    w.set(&arch("rope.scaling.factor"), MetaValue::F32(40.0));
    w.set(&arch("rope.scaling.original_context_length"), u32v(4096));
    w.set(
        &arch("rope.scaling.yarn_log_multiplier"),
        MetaValue::F32(c.yarn_log_multiplier),
    );
    w.set(&arch("rope.scaling.yarn_beta_fast"), MetaValue::F32(32.0));
    w.set(&arch("rope.scaling.yarn_beta_slow"), MetaValue::F32(1.0));
    w.set(&arch("rope.freq_base"), MetaValue::F32(c.rope_base));
    w.set(&arch("rope.dimension_count"), u32v(c.qk_rope));
    w.set(
        &arch("attention.layer_norm_rms_epsilon"),
        MetaValue::F32(1e-6),
    );
    w.set(&arch("attention.q_lora_rank"), u32v(c.q_lora_rank));
    w.set(&arch("attention.kv_lora_rank"), u32v(c.kv_lora_rank));
    match o.layout {
        Layout::Mla => {
            w.set(&arch("attention.head_count_kv"), u32v(1));
            w.set(
                &arch("attention.key_length"),
                u32v(c.kv_lora_rank + c.qk_rope),
            );
            w.set(&arch("attention.value_length"), u32v(c.kv_lora_rank));
            w.set(
                &arch("attention.key_length_mla"),
                u32v(c.qk_nope + c.qk_rope),
            );
            w.set(&arch("attention.value_length_mla"), u32v(c.v_head));
        }
        Layout::Legacy => {
            w.set(&arch("attention.head_count_kv"), u32v(c.n_head));
            w.set(&arch("attention.key_length"), u32v(c.qk_nope + c.qk_rope));
            w.set(&arch("attention.value_length"), u32v(c.v_head));
        }
    }
    w.set(&arch("expert_count"), u32v(c.n_expert));
    w.set(&arch("expert_used_count"), u32v(c.n_expert_used));
    w.set(&arch("expert_shared_count"), u32v(c.n_expert_shared));
    w.set(&arch("expert_feed_forward_length"), u32v(c.expert_ff));
    w.set(&arch("expert_group_count"), u32v(c.n_group));
    w.set(&arch("expert_group_used_count"), u32v(c.n_group_used));
    w.set(&arch("expert_gating_func"), MetaValue::U32(c.gating));
    w.set(
        &arch("expert_weights_scale"),
        MetaValue::F32(c.weights_scale),
    );
    w.set(
        &arch("expert_weights_norm"),
        MetaValue::Bool(c.weights_norm),
    );
    w.set(&arch("leading_dense_block_count"), u32v(c.n_dense_lead));
    // Written only when present, so older presets keep their bytes.
    if c.n_nextn > 0 {
        w.set(&arch("nextn_predict_layers"), u32v(c.n_nextn));
    }
    if let Some((heads, key_length, top_k)) = c.indexer {
        w.set(&arch("attention.indexer.head_count"), u32v(heads));
        w.set(&arch("attention.indexer.key_length"), u32v(key_length));
        w.set(&arch("attention.indexer.top_k"), u32v(top_k));
    }
    if let Some((scale, length)) = c.temperature {
        w.set(&arch("attention.temperature_scale"), MetaValue::F32(scale));
        w.set(&arch("attention.temperature_length"), u32v(length));
    }
    w.set(&arch("vocab_size"), u32v(n_vocab));
    // Uniform routing writes no key, so those files stay byte-identical to older ones.
    if let Routing::Skewed(p) = c.routing {
        let key = "lanternfish.synth.routing";
        w.set(key, MetaValue::String(c.routing.name().into()));
        w.set(&format!("{key}.zipf_s"), MetaValue::F32(p.zipf_s));
        w.set(&format!("{key}.popularity"), MetaValue::F32(p.popularity));
        w.set(&format!("{key}.n_clusters"), MetaValue::U32(p.n_clusters));
        w.set(&format!("{key}.locality"), MetaValue::F32(p.locality));
        w.set(
            &format!("{key}.common_share"),
            MetaValue::F32(p.common_share),
        );
        w.set(
            &format!("{key}.cluster_share"),
            MetaValue::F32(p.cluster_share),
        );
        w.set(&format!("{key}.head"), MetaValue::F32(p.head));
    }
}

/// What skewed routing adds to the rows of one tensor.
enum RowSkew<'a> {
    Embedding(&'a Skew),
    Router(&'a Skew, LayerTables),
    Head(&'a Skew),
}

impl RowSkew<'_> {
    fn of<'a>(o: &SynthOptions, spec: &TensorSpec, skew: Option<&'a Skew>) -> Option<RowSkew<'a>> {
        let skew = skew?;
        let name = spec.name.as_str();
        if name == "token_embd.weight" {
            Some(RowSkew::Embedding(skew))
        } else if name == "output.weight" {
            Some(RowSkew::Head(skew))
        } else if name.ends_with(".ffn_gate_inp.weight") {
            let layer = crate::quantize::mix::layer_of(name)?;
            Some(RowSkew::Router(skew, skew.layer_tables(o.seed, layer)))
        } else {
            None
        }
    }

    fn apply(&self, row_idx: u64, row: &mut [f32]) {
        match self {
            RowSkew::Embedding(skew) => skew.embed_row(row_idx, row),
            RowSkew::Router(skew, tables) => skew.router_row(tables, row_idx as usize, row),
            RowSkew::Head(skew) => skew.head_row(row_idx, row),
        }
    }
}

/// The encoded bytes of one deepseek2 tensor: [`encode_rows`] with MLA's kv_b rows and the
/// routing skew applied to each row.
fn generate(o: &SynthOptions, spec: &TensorSpec, ty: GgmlType, skew: Option<&Skew>) -> Vec<u8> {
    let kv_b = (spec.init == Init::KvB).then(|| KvB::new(o, spec));
    let row_skew = RowSkew::of(o, spec, skew);
    encode_rows(o.seed, spec, ty, &|row_idx, row| {
        if let Some(kv_b) = &kv_b {
            kv_b.fill_row(&spec.name, row_idx, row);
        }
        if let Some(row_skew) = &row_skew {
            row_skew.apply(row_idx, row);
        }
    })
}

/// The encoded bytes of one tensor, generated row by row on all cores: each row drawn from its
/// own random stream (`spec.init`; zeros for [`Init::KvB`]), then passed through `edit`.
fn encode_rows(
    seed: u64,
    spec: &TensorSpec,
    ty: GgmlType,
    edit: &(dyn Fn(u64, &mut [f32]) + Sync),
) -> Vec<u8> {
    let row_len = spec.shape[0] as usize;
    let n_rows: u64 = spec.shape[1..].iter().product();
    let row_bytes = row_len / ty.block_elems() * ty.block_bytes();
    let mut out = vec![0u8; n_rows as usize * row_bytes];
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows_per_thread = (n_rows as usize).div_ceil(n_threads).max(1);
    std::thread::scope(|scope| {
        for (chunk_idx, chunk) in out
            .chunks_mut(rows_per_thread * row_bytes.max(1))
            .enumerate()
        {
            scope.spawn(move || {
                let mut row = vec![0f32; row_len];
                for (i, dst) in chunk.chunks_exact_mut(row_bytes.max(1)).enumerate() {
                    let row_idx = (chunk_idx * rows_per_thread + i) as u64;
                    match spec.init {
                        Init::NormWeight => {
                            let mut rng = Rng::stream_for(seed, &spec.name, row_idx);
                            row.iter_mut().for_each(|v| *v = 1.0 + 0.1 * rng.normal());
                        }
                        Init::Normal(std) => {
                            let mut rng = Rng::stream_for(seed, &spec.name, row_idx);
                            row.iter_mut().for_each(|v| *v = std * rng.normal());
                        }
                        Init::KvB | Init::Computed => row.fill(0.0),
                    }
                    edit(row_idx, &mut row);
                    // `ty` is F32/F16/BF16 or a type chosen by the mix rules, all of which the
                    // quant crate encodes; row lengths were fixed by the fallback rules.
                    let _ = quantize_row(ty, &row, dst);
                }
            });
        }
    });
    out
}

/// The HF `kv_b_proj` weight of one layer, `[H·(dn+dv), r]` with N(0, 1/r) entries, from which
/// `attn_kv_b` (legacy) or `attn_k_b`/`attn_v_b` (MLA) are cut as in spec §3.4.
struct KvB {
    dn: usize,
    dv: usize,
    r: usize,
    /// Row-major `[H·(dn+dv), r]`.
    weight: Vec<f32>,
}

impl KvB {
    fn new(o: &SynthOptions, spec: &TensorSpec) -> KvB {
        let c = &o.config;
        let (n_head, dn, dv, r) = (
            c.n_head as usize,
            c.qk_nope as usize,
            c.v_head as usize,
            c.kv_lora_rank as usize,
        );
        let layer = spec.name.split('.').nth(1).unwrap_or("0");
        let stream_name = format!("blk.{layer}.kv_b_proj");
        let std = 1.0 / (r as f32).sqrt();
        let mut weight = vec![0f32; n_head * (dn + dv) * r];
        for (o_row, out) in weight.chunks_exact_mut(r).enumerate() {
            let mut rng = Rng::stream_for(o.seed, &stream_name, o_row as u64);
            out.iter_mut().for_each(|v| *v = std * rng.normal());
        }
        KvB { dn, dv, r, weight }
    }

    fn at(&self, out_row: usize, c: usize) -> f32 {
        self.weight[out_row * self.r + c]
    }

    /// Row `row_idx` (over all dimensions but the first) of the named tensor.
    fn fill_row(&self, name: &str, row_idx: u64, row: &mut [f32]) {
        let row_idx = row_idx as usize;
        let per_head = self.dn + self.dv;
        if name.ends_with("attn_k_b.weight") {
            // {dn, r, H}: slice h, row c holds W_UK,h[:, c].
            let (h, c) = (row_idx / self.r, row_idx % self.r);
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.at(h * per_head + j, c);
            }
        } else if name.ends_with("attn_v_b.weight") {
            // {r, dv, H}: slice h, row j holds W_UV,h[j, :].
            let (h, j) = (row_idx / self.dv, row_idx % self.dv);
            let start = (h * per_head + self.dn + j) * self.r;
            row.copy_from_slice(&self.weight[start..start + self.r]);
        } else {
            // attn_kv_b {r, H·(dn+dv)}: row o is kv_b_proj row o.
            row.copy_from_slice(&self.weight[row_idx * self.r..(row_idx + 1) * self.r]);
        }
    }
}
