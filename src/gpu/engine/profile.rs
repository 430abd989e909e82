//! GPU time per kernel of one forward pass, from timestamp queries written at the start and end
//! of a compute pass around each dispatch (`bench --profile`). Recording every dispatch in its
//! own pass changes the scheduling a little, so the sum is a profile, not the step time.

use std::collections::BTreeMap;

use wgpu::{BufferUsages, Features, QuerySetDescriptor, QueryType};

use super::plan::Step;
use crate::gpu::Gpu;
use crate::{Error, Result};

/// Nanoseconds per kernel label (summed over its dispatches) and dispatch counts.
pub type Profile = BTreeMap<String, (f64, usize)>;

/// Runs `steps` once with a timestamp pair around every dispatch; returns the time per label.
pub fn profile(gpu: &Gpu, steps: &[Step]) -> Result<Profile> {
    if !gpu.features.contains(Features::TIMESTAMP_QUERY) {
        return Err(Error::Gpu {
            what: "profiling".to_owned(),
            message: "the adapter has no timestamp queries".to_owned(),
        });
    }
    let dispatches: Vec<_> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Dispatch(d) => Some(d),
            Step::Copy { .. } | Step::PageIn { .. } | Step::ExpertsEnd => None,
        })
        .collect();
    let n = dispatches.len() as u32 * 2;
    if n == 0 {
        return Ok(Profile::new());
    }
    let queries = gpu.checked("creating timestamp queries", |device| {
        device.create_query_set(&QuerySetDescriptor {
            label: Some("profile"),
            ty: QueryType::Timestamp,
            count: n,
        })
    })?;
    let bytes = u64::from(n) * 8;
    let resolved = gpu.create_buffer(
        "profile timestamps",
        bytes,
        BufferUsages::QUERY_RESOLVE | BufferUsages::COPY_SRC,
    )?;
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("profile"),
        });
    let mut i = 0;
    for step in steps {
        match step {
            Step::Copy {
                src,
                src_offset,
                dst,
                size,
            } => encoder.copy_buffer_to_buffer(src, *src_offset, dst, 0, *size),
            Step::PageIn { .. } | Step::ExpertsEnd => {}
            Step::Dispatch(d) => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(d.label()),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &queries,
                        beginning_of_pass_write_index: Some(2 * i),
                        end_of_pass_write_index: Some(2 * i + 1),
                    }),
                });
                d.record(&mut pass);
                i += 1;
            }
        }
    }
    encoder.resolve_query_set(&queries, 0..n, &resolved, 0);
    gpu.checked("submitting the profile", |_| {
        gpu.queue.submit([encoder.finish()]);
    })?;
    let raw = gpu.read_buffer("profile timestamps", &resolved, bytes)?;
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
    let period = f64::from(gpu.queue.get_timestamp_period());
    let mut out = Profile::new();
    for (d, pair) in dispatches.iter().zip(ticks.chunks_exact(2)) {
        let ns = pair[1].saturating_sub(pair[0]) as f64 * period;
        let entry = out.entry(d.label().to_owned()).or_default();
        entry.0 += ns;
        entry.1 += 1;
    }
    Ok(out)
}
