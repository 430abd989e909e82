//! wgpu device selection and compute kernels.
