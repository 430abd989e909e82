//! Every compiled pipeline a model needs: the f32 kernels once, the dequantizing ones once per
//! weight type present in the file.

use std::collections::HashMap;

use lanternfish_quant::GgmlType;

use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::ops::argmax::Argmax;
use crate::gpu::ops::attention::Attention;
use crate::gpu::ops::bias_add::BiasAdd;
use crate::gpu::ops::elementwise::Elementwise;
use crate::gpu::ops::embed::Embed;
use crate::gpu::ops::kv_append::KvAppend;
use crate::gpu::ops::kv_store::KvStore;
use crate::gpu::ops::matmul::Matmul;
use crate::gpu::ops::matvec::Matvec;
use crate::gpu::ops::matvec_id::MatvecId;
use crate::gpu::ops::matvec_id_swiglu::MatvecIdSwiglu;
use crate::gpu::ops::matvec_swiglu::MatvecSwiglu;
use crate::gpu::ops::moe_combine::MoeCombine;
use crate::gpu::ops::moe_down::MoeDown;
use crate::gpu::ops::moe_router::MoeRouter;
use crate::gpu::ops::rmsnorm::RmsNorm;
use crate::gpu::ops::sample::GpuSampler;

/// The pipelines of one model.
pub struct Kernels {
    pub matvec: HashMap<GgmlType, Matvec>,
    pub matmul: HashMap<GgmlType, Matmul>,
    pub matvec_id: HashMap<GgmlType, MatvecId>,
    pub matvec_id_swiglu: HashMap<GgmlType, MatvecIdSwiglu>,
    pub matvec_swiglu: HashMap<GgmlType, MatvecSwiglu>,
    pub moe_down: HashMap<GgmlType, MoeDown>,
    pub embed: Embed,
    pub rmsnorm: RmsNorm,
    pub elementwise: Elementwise,
    pub kv_store: KvStore,
    pub attention: Attention,
    pub router: MoeRouter,
    pub combine: MoeCombine,
    pub argmax: Argmax,
    pub sampler: GpuSampler,
    pub kv_append: KvAppend,
    pub bias_add: BiasAdd,
}

impl Kernels {
    /// Compiles the f32 kernels, `embed` for the embedding type, and matvec, matmul and
    /// matvec_id for each of `types`.
    pub fn new(gpu: &Gpu, embd_type: GgmlType, types: &[GgmlType]) -> Result<Kernels> {
        let mut matvec = HashMap::new();
        let mut matmul = HashMap::new();
        let mut matvec_id = HashMap::new();
        let mut matvec_id_swiglu = HashMap::new();
        let mut matvec_swiglu = HashMap::new();
        let mut moe_down = HashMap::new();
        for &ty in types {
            if let std::collections::hash_map::Entry::Vacant(entry) = matvec.entry(ty) {
                entry.insert(Matvec::new(gpu, ty)?);
                matmul.insert(ty, Matmul::new(gpu, ty)?);
                matvec_id.insert(ty, MatvecId::new(gpu, ty)?);
                matvec_id_swiglu.insert(ty, MatvecIdSwiglu::new(gpu, ty)?);
                matvec_swiglu.insert(ty, MatvecSwiglu::new(gpu, ty)?);
                moe_down.insert(ty, MoeDown::new(gpu, ty)?);
            }
        }
        Ok(Kernels {
            matvec,
            matmul,
            matvec_id,
            matvec_id_swiglu,
            matvec_swiglu,
            moe_down,
            embed: Embed::new(gpu, embd_type)?,
            rmsnorm: RmsNorm::new(gpu)?,
            elementwise: Elementwise::new(gpu)?,
            kv_store: KvStore::new(gpu)?,
            attention: Attention::new(gpu)?,
            router: MoeRouter::new(gpu)?,
            combine: MoeCombine::new(gpu)?,
            argmax: Argmax::new(gpu)?,
            sampler: GpuSampler::new(gpu)?,
            kv_append: KvAppend::new(gpu)?,
            bias_add: BiasAdd::new(gpu)?,
        })
    }
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<&str> = self.matvec.keys().map(|t| t.name()).collect();
        f.debug_struct("Kernels")
            .field("weight_types", &types)
            .finish_non_exhaustive()
    }
}
