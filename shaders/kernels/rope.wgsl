// rope: rotary embedding, in place, on the rope sub-vector of every head of every token
// (spec §4.3), in one of two pairings chosen by params.neox. With θ_i = pos[t] · ω_i:
// "normal" (GPT-J, adjacent pairs; DeepSeek, llama), as src/cpu/ops.rs `rope`, neox = 0:
//   x'[2i]   = x[2i]·cos θ_i − x[2i+1]·sin θ_i
//   x'[2i+1] = x[2i]·sin θ_i + x[2i+1]·cos θ_i
// "NeoX" (halves; qwen2), neox = 1, with n = n_pairs:
//   x'[i]     = x[i]·cos θ_i − x[i+n]·sin θ_i
//   x'[i+n]   = x[i]·sin θ_i + x[i+n]·cos θ_i
// where x is the n_pairs·2 values starting at t·token_stride + h·head_stride + offset
// (q_pe: head_stride = dn + dr, offset = dn; k_pe: one head at offset r inside [c_kv ‖ k_pe];
// dense q [n_tok, H, hd]: head_stride = hd, offset = 0, token_stride = H·hd).
//
// Angle precision. θ reaches pos·ω ≈ 5000 rad and more; forming it in f32 would cost ~3e-4 rad
// (one f32 rounding of θ), and GPU sin/cos are only accurate on [−π, π]. So the host stores each
// frequency in turns, τ_i = ω_i / 2π (computed in f64 from the CPU's own ω_i), split into three
// f32 parts τ = τ1 + τ2 + τ3 where τ1 and τ2 have at most 12 significant bits. The position
// (< 2^24) is split as pos = ph·4096 + pl with ph, pl < 4096, so ph·τ1, pl·τ1, ph·τ2, pl·τ2 are
// exact f32 products (12 × 12 bits), their fractional parts are exact, and only pos·τ3 (at most
// ~2^-22 of the total) and the final sum of five reduced terms round. The reduced angle
// 2π·(turns − round(turns)) ∈ [−π, π] is off by a few 1e-6 rad at most, whatever the position.
// (shaders/common/rope_angle.wgsl, composed in front of this file, computes it.)
//
// Dispatch: one thread per (token, head, pair), n_tok·n_head·n_pairs threads, WORKGROUP_SIZE
// (64) per workgroup, ceil(threads / 64) workgroups laid out as
// (min(groups, max_per_dim), ceil(groups / that), 1); thread index = pair fastest, then head,
// then token. Pairs never overlap, so the in-place update needs no synchronisation.
//
// Bindings, group 0:
//   0  turns      array<vec4<f32>>  [n_pairs]  (τ1, τ2, τ3, magnitude) per pair, read-only
//   1  positions  array<u32>        [n_tok]    absolute position of each token (< 2^24)
//   2  x          array<f32>        [n_tok · token_stride]  rotated in place
//   3  params     Params            uniform { n_tok, n_head, n_pairs, token_stride, head_stride, offset,
//                                             neox (0: adjacent pairs, 1: halves) }
//
// Driven by src/gpu/ops/rope.rs, whose RopeParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_tok: u32,
    n_head: u32,
    n_pairs: u32,
    token_stride: u32,
    head_stride: u32,
    offset: u32,
    neox: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> turns: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;


@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if index >= params.n_tok * params.n_head * params.n_pairs {
        return;
    }
    let pair = index % params.n_pairs;
    let head = (index / params.n_pairs) % params.n_head;
    let tok = index / (params.n_pairs * params.n_head);

    let cs = rope_cos_sin(turns[pair], positions[tok]);
    let c = cs.x;
    let s = cs.y;

    let base = tok * params.token_stride + head * params.head_stride + params.offset;
    var i0 = base + 2u * pair;
    var i1 = i0 + 1u;
    if params.neox != 0u {
        i0 = base + pair;
        i1 = i0 + params.n_pairs;
    }
    let x0 = x[i0];
    let x1 = x[i1];
    x[i0] = x0 * c - x1 * s;
    x[i1] = x0 * s + x1 * c;
}
