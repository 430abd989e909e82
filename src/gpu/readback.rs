//! Copying a buffer's contents back to the host.

use std::sync::mpsc;

use wgpu::{Buffer, BufferUsages, MapMode, PollType};

use super::Gpu;
use crate::{Error, Result};

impl Gpu {
    /// Reads the first `size` bytes of `buffer`, which needs `COPY_SRC` usage, through a staging
    /// buffer; `size` must be a multiple of 4 (wgpu's copy alignment). `label` names the buffer
    /// in errors. Blocks until all work submitted so far has finished.
    pub fn read_buffer(&self, label: &str, buffer: &Buffer, size: u64) -> Result<Vec<u8>> {
        let label = format!("{label} readback");
        let staging = self.create_buffer(
            &label,
            size,
            BufferUsages::COPY_DST | BufferUsages::MAP_READ,
        )?;
        self.checked(&format!("copying {label}"), |device| {
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(&label),
            });
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
            self.queue.submit([encoder.finish()]);
        })?;

        let (sender, receiver) = mpsc::channel();
        staging.map_async(MapMode::Read, .., move |result| {
            // A send fails only once the receiver is gone, and then nobody wants the result.
            let _ = sender.send(result);
        });
        let gpu_error = |message: String| Error::Gpu {
            what: format!("mapping {label}"),
            message,
        };
        self.device
            .poll(PollType::wait_indefinitely())
            .map_err(|error| gpu_error(error.to_string()))?;
        // Another thread's poll may be running our callback right now, so wait for it (bounded)
        // instead of expecting it to have run already.
        receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .map_err(|_| gpu_error("the map callback did not run within 60 s".to_owned()))?
            .map_err(|error| gpu_error(error.to_string()))?;
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|error| gpu_error(error.to_string()))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }

    /// Reads the first `len` f32 values of `buffer`.
    pub fn read_f32(&self, label: &str, buffer: &Buffer, len: usize) -> Result<Vec<f32>> {
        let bytes = self.read_buffer(label, buffer, (len * size_of::<f32>()) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
