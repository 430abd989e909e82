// dequantize: out[e] = W[e] for e in 0..n, decoding raw GGUF blocks of one type to f32.
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS
// from lanternfish_quant::GgmlType), shaders/common/*.wgsl and shaders/quant/<type>.wgsl, the
// format's segment decoder (`segment_at`, `segment_quad`). The bytes are read as one row. This is
// the exactness test vehicle for the quant files: each output is one element through
// `dequantize_element`, which the tail columns and `embed` use.
//
// With `segments` = 1 the same values come from whole segments instead, one thread per
// 32-element segment s (n % 32 == 0) writing its 8 quads as the matrix kernels decode them: the
// test that both ways of addressing a segment agree.
//
// Dispatch: one thread per element (or segment), WORKGROUP_SIZE (64) per workgroup,
// ceil(threads / 64) workgroups laid out as (min(groups, max_per_dim), ceil(groups / that), 1).
// Threads past the end return.
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes, little-endian words, zero-padded to 4 bytes
//   1  out      array<f32>  [n]
//   2  params   Params      uniform { n, segments }
//
// Driven by src/gpu/ops/dequantize.rs, whose DequantizeParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n: u32,
    segments: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let e = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if params.segments != 0u {
        if e >= params.n / SEGMENT {
            return;
        }
        let seg = segment_at(0u, e);
        for (var q = 0u; q < SEGMENT / 4u; q++) {
            let quad = segment_quad(seg, q);
            let o = e * SEGMENT + 4u * q;
            out[o] = quad.x;
            out[o + 1u] = quad.y;
            out[o + 2u] = quad.z;
            out[o + 3u] = quad.w;
        }
        return;
    }
    if e >= params.n {
        return;
    }
    out[e] = dequantize_element(0u, e);
}
