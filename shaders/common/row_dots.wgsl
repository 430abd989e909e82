// The decode matvecs' inner loop (matvec, matvec_swiglu, matvec_id), shared so that all three
// sum in the same order: four weight rows dotted with one x, every weight decoded once, every x
// value loaded once per workgroup step and reused for the four rows.
//
// A row is cut into units of UNIT = 8 columns (two quads of one 32-element segment). Lane l of
// the WORKGROUP_SIZE lanes takes units l, l + WORKGROUP_SIZE, ...: consecutive lanes read
// consecutive words of a row and consecutive x values. Per unit and row the term is
// dot(quad 2m, x[8u .. 8u + 4]) + dot(quad 2m + 1, x[8u + 4 .. 8u + 8]) (m = u % 4), added into
// the lane's sum of that row. Columns past the last whole unit (float formats only: fewer than
// 8) are taken one per lane through dequantize_element. The caller reduces the lanes' sums with
// `workgroup_sum` (shaders/common/reduce_*.wgsl).
//
// RMSNorm folded in (`normed`): the dispatch reads the un-normalised x and the norm weight g and
// computes W · (g ⊙ x) here and the scale 1 / sqrt(mean(x²) + eps) from the same x loads (the
// lanes' x values cover the whole row once, so the sum of squares costs no extra memory traffic;
// each lane adds dot(xa, xa) + dot(xb, xb) per unit, the tail's x² after); the kernel multiplies
// the reduced dots by the scale, evaluated as shaders/kernels/rmsnorm.wgsl does. The decode step
// then needs no separate RMSNorm dispatch.
//
// Needs the kernel's `x: array<f32>`, `norm_w: array<f32>` (read only when normed) and
// WORKGROUP_SIZE.

const UNIT: u32 = 8u;

// The unit-u term of the row at byte row_base, for x values xa = x[8u .. 8u + 4], xb = the next 4.
fn unit_dot(row_base: u32, u: u32, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
    let s = segment_at(row_base, u / 4u);
    let q = 2u * (u % 4u);
    return dot(segment_quad(s, q), xa) + dot(segment_quad(s, q + 1u), xb);
}

// Lane `lane`'s share of the dot products of the rows at bytes rows.x .. rows.w with
// x[x_base .. x_base + n_cols] (times norm_w[0 .. n_cols] when `normed`), and of the sum of
// squares of that x (0 unless `normed`).
fn row_dots(rows: vec4<u32>, n_cols: u32, x_base: u32, lane: u32, normed: bool) -> LaneSums {
    let n_units = n_cols / UNIT;
    var sums = vec4<f32>(0.0);
    var squares = 0.0;
    for (var u = lane; u < n_units; u += WORKGROUP_SIZE) {
        let c = x_base + u * UNIT;
        var xa = vec4<f32>(x[c], x[c + 1u], x[c + 2u], x[c + 3u]);
        var xb = vec4<f32>(x[c + 4u], x[c + 5u], x[c + 6u], x[c + 7u]);
        if normed {
            squares += dot(xa, xa) + dot(xb, xb);
            let g = u * UNIT;
            xa *= vec4<f32>(norm_w[g], norm_w[g + 1u], norm_w[g + 2u], norm_w[g + 3u]);
            xb *= vec4<f32>(norm_w[g + 4u], norm_w[g + 5u], norm_w[g + 6u], norm_w[g + 7u]);
        }
        sums += vec4<f32>(
            unit_dot(rows.x, u, xa, xb),
            unit_dot(rows.y, u, xa, xb),
            unit_dot(rows.z, u, xa, xb),
            unit_dot(rows.w, u, xa, xb),
        );
    }
    let c = n_units * UNIT + lane;
    if c < n_cols {
        let w = vec4<f32>(
            dequantize_element(rows.x, c),
            dequantize_element(rows.y, c),
            dequantize_element(rows.z, c),
            dequantize_element(rows.w, c),
        );
        var xc = x[x_base + c];
        if normed {
            squares += xc * xc;
            xc *= norm_w[c];
        }
        sums += w * xc;
    }
    return LaneSums(sums, squares);
}

// The RMSNorm scale of a row of n_cols values whose squares sum to `squares`, evaluated as
// shaders/kernels/rmsnorm.wgsl does; 1 when not `normed` or for an empty row.
fn norm_scale(squares: f32, n_cols: u32, eps: f32, normed: bool) -> f32 {
    if !normed || n_cols == 0u {
        return 1.0;
    }
    return 1.0 / sqrt(squares / f32(n_cols) + eps);
}
