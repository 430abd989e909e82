// The decode matvecs' inner loop (matvec, matvec_swiglu, matvec_id), shared so that all three
// sum in the same order: four weight rows dotted with one x, every weight decoded once, every x
// value loaded once per workgroup step and reused for the four rows.
//
// A row is cut into units of UNIT = 8 columns (two quads of one 32-element segment). Lane l of
// the WORKGROUP_SIZE lanes takes units l, l + WORKGROUP_SIZE, ...: consecutive lanes read
// consecutive words of a row and consecutive x values. Per unit and row the term is
// dot(quad 2m, x[8u .. 8u + 4]) + dot(quad 2m + 1, x[8u + 4 .. 8u + 8]) (m = u % 4), added into
// the lane's sum of that row. Columns past the last whole unit (float formats only: fewer than
// 8) are taken one per lane through dequantize_element. The caller reduces the lanes' vec4 of
// sums with workgroup_sum4 (shaders/common/reduce_*.wgsl).
//
// Needs the kernel's `x: array<f32>` and WORKGROUP_SIZE.

const UNIT: u32 = 8u;

// The unit-u term of the row at byte row_base, for x values xa = x[8u .. 8u + 4], xb = the next 4.
fn unit_dot(row_base: u32, u: u32, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
    let s = segment_at(row_base, u / 4u);
    let q = 2u * (u % 4u);
    return dot(segment_quad(s, q), xa) + dot(segment_quad(s, q + 1u), xb);
}

// Lane `lane`'s share of the dot products of the rows at bytes rows.x .. rows.w with
// x[x_base .. x_base + n_cols].
fn row_dots(rows: vec4<u32>, n_cols: u32, x_base: u32, lane: u32) -> vec4<f32> {
    let n_units = n_cols / UNIT;
    var sums = vec4<f32>(0.0);
    for (var u = lane; u < n_units; u += WORKGROUP_SIZE) {
        let c = x_base + u * UNIT;
        let xa = vec4<f32>(x[c], x[c + 1u], x[c + 2u], x[c + 3u]);
        let xb = vec4<f32>(x[c + 4u], x[c + 5u], x[c + 6u], x[c + 7u]);
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
        sums += w * x[x_base + c];
    }
    return sums;
}
