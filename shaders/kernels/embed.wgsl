// embed: embedding gather, out[t, c] = E[tokens[t], c] for t in 0..n_tok, c in 0..n_embd, with
// the table E [n_vocab, n_embd] in raw GGUF blocks of one type (row v at byte v * row_bytes,
// row_bytes = n_embd / BLOCK_ELEMS * BLOCK_BYTES) and out in f32. A token id >= n_vocab gives a
// row of zeros (the host validates ids; the kernel only never reads out of bounds).
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS),
// shaders/common/*.wgsl and shaders/quant/<type>.wgsl, read through `dequantize_element`; each
// value is decoded exactly as the dequantize kernel does it, so the result is bit-identical with
// `lanternfish_quant::dequantize_row` (up to the fused multiply-adds the README allows).
//
// A table larger than one storage binding is bound as several windows of whole rows, one
// dispatch each: this dispatch sees rows row0..row0 + n_rows, the first at byte base_byte of the
// window, and writes only the tokens whose id falls inside it. The dispatch with row0 = 0 also
// writes the zeros of ids >= n_vocab.
//
// Dispatch: one thread per output element i = t * n_embd + c, WORKGROUP_SIZE (64) per
// workgroup, ceil(n_tok * n_embd / 64) workgroups laid out as (min(groups, max_per_dim),
// ceil(groups / that), 1). Threads at i >= n_tok * n_embd return.
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of the window, little-endian, zero-padded
//   1  tokens   array<u32>  [n_tok]
//   2  out      array<f32>  [n_tok, n_embd]
//   3  params   Params      uniform { n_tok, n_embd, row_bytes, n_vocab, row0, n_rows, base_byte }
//
// Driven by src/gpu/ops/embed.rs, whose EmbedParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_tok: u32,
    n_embd: u32,
    row_bytes: u32,
    n_vocab: u32,
    // First row of the table in this dispatch's window, and the window's row count.
    row0: u32,
    n_rows: u32,
    // Byte offset of row row0 inside the bound window.
    base_byte: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if i >= params.n_tok * params.n_embd {
        return;
    }
    let t = i / params.n_embd;
    let c = i % params.n_embd;
    let id = tokens[t];
    if id >= params.n_vocab {
        if params.row0 == 0u {
            out[i] = 0.0;
        }
        return;
    }
    if id < params.row0 || id - params.row0 >= params.n_rows {
        return;
    }
    let row_base = params.base_byte + (id - params.row0) * params.row_bytes;
    out[i] = dequantize_element(row_base, c);
}
