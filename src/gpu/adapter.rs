//! Adapter selection: which of the adapters wgpu enumerates the engine runs on.
//!
//! Vulkan, Metal and DX12 adapters always come before GL ones, because the GL backend lacks
//! f16, subgroups and 64-bit integers. Within a backend group a discrete GPU beats an integrated
//! one, which beats a virtual one, which beats a software (CPU) rasterizer such as lavapipe.

use wgpu::{AdapterInfo, Backend, DeviceType};

use crate::{Error, Result};

/// The environment variable that picks an adapter by a case-insensitive substring of its name.
pub const ADAPTER_ENV: &str = "LANTERNFISH_ADAPTER";

/// The hint every "no adapter" error ends with, so a user knows what to install.
pub const INSTALL_HINT: &str = "install a GPU driver, or the software Vulkan driver lavapipe \
     (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1)";

/// Returns the index in `infos` of the adapter to use.
///
/// With a `filter`, only adapters whose name contains it (ignoring case) are candidates, and no
/// match is an error that lists every adapter. Without one, all adapters are candidates. Among
/// candidates the best by [`preference`] wins; ties keep enumeration order.
pub fn pick(infos: &[AdapterInfo], filter: Option<&str>) -> Result<usize> {
    if infos.is_empty() {
        return Err(Error::NoAdapter(format!(
            "wgpu found no Vulkan, Metal, DX12 or GL adapter; {INSTALL_HINT}"
        )));
    }
    let needle = filter.map(str::to_lowercase);
    let matches = |info: &AdapterInfo| match &needle {
        Some(needle) => info.name.to_lowercase().contains(needle.as_str()),
        None => true,
    };
    infos
        .iter()
        .enumerate()
        .filter(|(_, info)| matches(info))
        .min_by_key(|(idx, info)| (preference(info), *idx))
        .map(|(idx, _)| idx)
        .ok_or_else(|| {
            Error::NoAdapter(format!(
                "{ADAPTER_ENV}={:?} matches none of the available adapters: {}",
                filter.unwrap_or_default(),
                list(infos)
            ))
        })
}

/// A sort key: smaller is better. GL comes last whatever its device type.
pub fn preference(info: &AdapterInfo) -> (u8, u8) {
    let backend = match info.backend {
        Backend::Gl => 1,
        _ => 0,
    };
    let device = match info.device_type {
        DeviceType::DiscreteGpu => 0,
        DeviceType::IntegratedGpu => 1,
        DeviceType::VirtualGpu => 2,
        DeviceType::Cpu => 3,
        DeviceType::Other => 4,
    };
    (backend, device)
}

/// One adapter as the error messages show it: `"llvmpipe (LLVM 15.0.6, 256 bits)" (Vulkan, Cpu)`.
pub fn label(info: &AdapterInfo) -> String {
    format!(
        "{:?} ({:?}, {:?})",
        info.name, info.backend, info.device_type
    )
}

/// Every adapter's label, separated by semicolons.
fn list(infos: &[AdapterInfo]) -> String {
    infos.iter().map(label).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, backend: Backend, device_type: DeviceType) -> AdapterInfo {
        AdapterInfo {
            name: name.to_owned(),
            ..AdapterInfo::new(device_type, backend)
        }
    }

    fn sample() -> Vec<AdapterInfo> {
        vec![
            info(
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                Backend::Gl,
                DeviceType::Other,
            ),
            info(
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                Backend::Vulkan,
                DeviceType::Cpu,
            ),
            info(
                "Intel(R) UHD Graphics 620",
                Backend::Vulkan,
                DeviceType::IntegratedGpu,
            ),
            info(
                "NVIDIA GeForce RTX 4090",
                Backend::Vulkan,
                DeviceType::DiscreteGpu,
            ),
        ]
    }

    #[test]
    fn prefers_discrete_then_integrated_then_software() {
        let mut infos = sample();
        assert_eq!(pick(&infos, None).ok(), Some(3));
        infos.pop();
        assert_eq!(pick(&infos, None).ok(), Some(2));
        infos.pop();
        assert_eq!(pick(&infos, None).ok(), Some(1));
    }

    #[test]
    fn gl_is_only_a_fallback() {
        let infos = vec![
            info(
                "AMD Radeon (radeonsi)",
                Backend::Gl,
                DeviceType::DiscreteGpu,
            ),
            info("llvmpipe", Backend::Vulkan, DeviceType::Cpu),
        ];
        assert_eq!(pick(&infos, None).ok(), Some(1));
        assert_eq!(pick(&infos[..1], None).ok(), Some(0));
    }

    #[test]
    fn filter_ignores_case_and_still_ranks() {
        let infos = sample();
        assert_eq!(pick(&infos, Some("LLVMPIPE")).ok(), Some(1));
        assert_eq!(pick(&infos, Some("uhd")).ok(), Some(2));
    }

    #[test]
    fn unmatched_filter_lists_every_adapter() {
        let message = match pick(&sample(), Some("radeon")) {
            Err(Error::NoAdapter(message)) => message,
            other => panic!("expected NoAdapter, got {other:?}"),
        };
        assert!(
            message.contains("LANTERNFISH_ADAPTER=\"radeon\""),
            "{message}"
        );
        assert!(message.contains("NVIDIA GeForce RTX 4090"), "{message}");
        assert!(message.contains("(Gl, Other)"), "{message}");
    }

    #[test]
    fn no_adapters_names_the_packages() {
        let message = match pick(&[], None) {
            Err(error) => error.to_string(),
            Ok(idx) => panic!("picked {idx} from nothing"),
        };
        assert!(
            message.contains("mesa-vulkan-drivers libvulkan1"),
            "{message}"
        );
    }
}
