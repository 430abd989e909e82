//! The GPU context: one wgpu device on the best adapter, with the adapter's real limits.

use wgpu::{Adapter, AdapterInfo, Backends, Device, Features, Instance, Limits, Queue};

use super::adapter::{self, ADAPTER_ENV};
use crate::{Error, Result};

/// Optional features the kernels can use when the adapter has them. None of them is required:
/// the baseline kernels run on core WGSL only.
const WANTED_FEATURES: Features = Features::SHADER_F16
    .union(Features::SUBGROUP)
    .union(Features::TIMESTAMP_QUERY)
    .union(Features::SHADER_INT64);

const MIB: u64 = 1 << 20;

/// A wgpu device and queue on the chosen adapter.
///
/// `limits` are the adapter's own limits, which the device was created with, so a load-time check
/// against them is a check against what the hardware allows rather than wgpu's portable defaults
/// (128 MiB bindings and 256 MiB buffers). `features` are the optional features that were both
/// wanted and present.
pub struct Gpu {
    pub device: Device,
    pub queue: Queue,
    pub adapter_info: AdapterInfo,
    pub limits: Limits,
    pub features: Features,
}

impl Gpu {
    /// How many compute units the adapter has, where that can be known: wgpu does not say for
    /// GPUs, but a CPU adapter (lavapipe, WARP) runs workgroups on the host's cores (lavapipe:
    /// one thread per core unless `LP_NUM_THREADS` says otherwise).
    pub fn compute_units(&self) -> Option<u32> {
        if self.adapter_info.device_type != wgpu::DeviceType::Cpu {
            return None;
        }
        let threads = std::env::var("LP_NUM_THREADS")
            .ok()
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&n| n > 0);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Some(threads.unwrap_or(cores))
    }

    /// Opens the best adapter, or the one `LANTERNFISH_ADAPTER` names by a case-insensitive
    /// substring. Blocks until the device is ready.
    pub fn new() -> Result<Gpu> {
        let filter = std::env::var(ADAPTER_ENV).ok();
        Gpu::with_adapter_filter(filter.as_deref().filter(|name| !name.is_empty()))
    }

    /// Like [`Gpu::new`], with the adapter filter given instead of read from the environment.
    /// `None` picks the best adapter.
    pub fn with_adapter_filter(filter: Option<&str>) -> Result<Gpu> {
        // `WGPU_BACKEND` and the other wgpu variables still narrow the instance down.
        let instance =
            Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let mut adapters =
            pollster::block_on(instance.enumerate_adapters(Backends::PRIMARY | Backends::GL));
        let infos: Vec<AdapterInfo> = adapters.iter().map(Adapter::get_info).collect();
        let idx = adapter::pick(&infos, filter)?;
        let adapter = adapters.swap_remove(idx);
        Gpu::open(&adapter)
    }

    /// Creates the device on `adapter`, asking for its full limits and the wanted features.
    fn open(adapter: &Adapter) -> Result<Gpu> {
        let adapter_info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features() & WANTED_FEATURES;
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("lanternfish"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&descriptor)).map_err(|error| {
                Error::Gpu {
                    what: format!("requesting a device on {}", adapter::label(&adapter_info)),
                    message: error.to_string(),
                }
            })?;
        device.set_device_lost_callback(|reason, message| {
            tracing::error!("GPU device lost ({reason:?}): {message}");
        });
        Ok(Gpu {
            device,
            queue,
            adapter_info,
            limits,
            features,
        })
    }

    /// One line for logs: adapter, backend, device type, driver, and the two size limits that
    /// decide how tensors are split into buffers and bindings.
    pub fn describe(&self) -> String {
        let info = &self.adapter_info;
        let driver = [info.driver.as_str(), info.driver_info.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "{} ({:?}, {:?}), driver {}, max storage binding {} MiB, max buffer {} MiB",
            info.name,
            info.backend,
            info.device_type,
            if driver.is_empty() {
                "unknown"
            } else {
                &driver
            },
            self.limits.max_storage_buffer_binding_size / MIB,
            self.limits.max_buffer_size / MIB,
        )
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.describe())
            .field("features", &self.features)
            .finish_non_exhaustive()
    }
}
