//! The runtime: the IR executed with libtorch on one device.
//!
//! - [`model`]: a compiled model ([`model::Compiled`]: encoders, generator, prior sampler);
//! - [`nets`]: layers as executable ops; [`init`]: their initial values (PyTorch's by default); [`tensor`]: shared tensor helpers (normalize, place, crop);
//! - [`sampler`]: built-in priors and prior programs; [`dist`]: the primitive distributions;
//! - [`objective`]: reconstruction costs, latent penalties, discriminators; [`ot`]: optimal
//!   transport (Sinkhorn, exact, sliced); [`optim`]: Adam;
//! - [`space`]: paths in the latent spaces; [`device`]: devices and memory estimates.

pub mod device;
pub mod dist;
pub mod gmm;
pub mod init;
pub mod model;
pub mod nets;
pub mod objective;
pub mod optim;
pub mod ot;
pub mod sampler;
pub mod space;
pub mod tensor;
