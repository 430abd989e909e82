//! Routed experts paged into a GPU slot pool smaller than the model's experts: logits are
//! bit-identical to the fully resident run on the same device, for synth presets and quant types,
//! prefill (batches that route to more experts than a layer has slots) and decode, under budgets
//! down to exactly one token's experts per layer, with a prefetch that is right, off, or wrong
//! every time. Plus the budget errors, the placement plan and the expert trace through the CLI.
#![allow(clippy::unwrap_used)]

mod gpu_common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gpu_common::shared_gpu;
use lanternfish::gguf::GgufModel;
use lanternfish::gpu::engine::{GpuModel, GpuSession, PlacementOptions};
use lanternfish::gpu::paging::{Budget, MemoryPlan, Prefetch};
use lanternfish::model::DeepSeekConfig;
use lanternfish::synth::{Layout, Routing, SynthConfig, SynthOptions, WeightType, write_model};

/// A synth model with realistic (skewed, local) routing, written to `dir`.
fn synth_file(dir: &Path, preset: &str, weights: &str) -> PathBuf {
    let mut config = SynthConfig::preset(preset)
        .unwrap_or_else(|| panic!("no preset {preset:?} in {:?}", SynthConfig::PRESETS));
    config.routing = Routing::from_name("realistic").unwrap();
    let options = SynthOptions {
        config,
        weights: WeightType::from_name(weights).unwrap(),
        layout: Layout::Mla,
        seed: 3,
    };
    let path = dir.join(format!("{preset}-{weights}.gguf"));
    let file = std::fs::File::create(&path).unwrap();
    write_model(&options, std::io::BufWriter::new(file), &|_, _| {}).unwrap();
    path
}

fn load(path: &Path, budget: Option<Budget>, prefetch: Prefetch) -> Arc<GpuModel> {
    let file = Arc::new(GgufModel::open(path).unwrap());
    let placement = PlacementOptions {
        budget,
        prefetch,
        force_paging: false,
    };
    Arc::new(GpuModel::load_placed(shared_gpu().clone(), &file, &placement, None).unwrap())
}

fn plan(path: &Path, budget: Option<Budget>) -> MemoryPlan {
    let file = GgufModel::open(path).unwrap();
    let config = DeepSeekConfig::from_gguf(&file).unwrap();
    MemoryPlan::new(&file, &config, budget).unwrap()
}

/// A 40-token prompt in batches of 16 (all-position logits), then 6 greedy decode steps
/// (last-position logits each): every logit of the run, in order.
fn run(model: &Arc<GpuModel>) -> Vec<Vec<f32>> {
    let mut session = GpuSession::new(model.clone(), 128, 16).unwrap();
    let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 200 + 3).collect();
    let mut out = vec![session.forward_all(&prompt).unwrap()];
    let mut token = lanternfish::sampler::argmax(&out[0][out[0].len() - model.n_vocab..]);
    for _ in 0..6 {
        let logits = session.forward_last(&[token]).unwrap();
        token = lanternfish::sampler::argmax(&logits);
        out.push(logits);
    }
    out
}

fn assert_identical(what: &str, a: &[Vec<f32>], b: &[Vec<f32>]) {
    assert_eq!(a.len(), b.len());
    for (step, (x, y)) in a.iter().zip(b).enumerate() {
        let same = x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(
            same,
            "{what}: logits of step {step} differ from the resident run"
        );
    }
}

/// Budgets from generous to one token's experts per layer, each against the resident run.
fn check_budgets(preset: &str, weights: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(dir.path(), preset, weights);
    check_budgets_of(&path, &format!("{preset} {weights}"));
}

fn check_budgets_of(path: &Path, name: &str) {
    let path = path.to_path_buf();
    let resident = run(&load(&path, None, Prefetch::Router));
    let full = plan(&path, None);
    assert!(!full.paged);
    let k = u64::from(full.n_expert_used);
    let one_token: u64 = full.layers.iter().map(|l| l.expert_bytes * k).sum();
    for (what, budget) in [
        ("50% of the experts", Budget::ExpertShare(0.5)),
        ("25% of the experts", Budget::ExpertShare(0.25)),
        (
            "one token's experts",
            Budget::Bytes(full.resident_bytes + one_token),
        ),
    ] {
        let placed = plan(&path, Some(budget));
        assert!(placed.paged, "{what}: expected paging");
        if what == "one token's experts" {
            assert!(placed.layers.iter().all(|l| u64::from(l.slots) == k));
        }
        let model = load(&path, Some(budget), Prefetch::Router);
        let paged = run(&model);
        assert_identical(&format!("{name} {what}"), &resident, &paged);
        let stats = model.pager.as_ref().unwrap().lock().unwrap().stats;
        assert!(stats.misses > 0 && stats.syncs > 0, "{what}: {stats:?}");
        assert!(stats.passes >= stats.syncs);
        if what == "one token's experts" {
            // 16-token prompt batches route to more experts than k slots: several passes.
            assert!(stats.passes > stats.syncs, "{what}: {stats:?}");
        }
    }
}

#[test]
fn tiny_v2_f32_budgets_are_bit_identical() {
    check_budgets("tiny-v2", "f32");
}

#[test]
fn tiny_v3_q4_k_m_budgets_are_bit_identical() {
    check_budgets("tiny-v3", "q4_k_m");
}

/// The other labs' deepseek2 shapes (issue 18): Kimi-K2's 384 experts and top-8, GLM-4.7-Flash
/// with its MTP block after the trunk, Mistral Large 3's query temperature and group rule.
#[test]
fn other_labs_presets_budgets_are_bit_identical() {
    for preset in ["kimi-k2", "glm-4.7-flash", "mistral-large-3"] {
        check_budgets(preset, "q4_k_m");
    }
}

#[test]
fn tiny_v2_q8_0_budgets_are_bit_identical() {
    check_budgets("tiny-v2", "q8_0");
}

#[test]
fn tiny_v3_q4_0_budgets_are_bit_identical() {
    check_budgets("tiny-v3", "q4_0");
}

/// A prefetch that is wrong every time (or none at all) changes nothing but the statistics;
/// the router's prediction is right more often than the deliberately wrong one.
/// Routed gate and up of different types cannot share a slot: the engine keeps them in pools of
/// their own (matvec_id ×2 + silu_mul) and pages each; logits still match the CPU reference and
/// are bit-identical under every budget. (Every synth and llama.cpp mix gives gate and up one
/// type, so the file is rewritten with the up experts in F16.)
#[test]
fn gate_and_up_of_different_types_stay_apart() {
    use lanternfish::gguf::{GgufWriter, MetaValue};
    use lanternfish::quant::GgmlType;
    use lanternfish::quantize::convert_rows;

    let dir = tempfile::tempdir().unwrap();
    let source = synth_file(dir.path(), "tiny-v3", "f32");
    let model = GgufModel::open(&source).unwrap();
    let mut writer = GgufWriter::new();
    writer.set_alignment(model.metadata().alignment()).unwrap();
    for (key, value) in model.metadata().metadata() {
        writer.set(key, MetaValue::from(value));
    }
    for info in model.tensors() {
        let data = model.tensor_data(info);
        let (ty, bytes) = if info.name.ends_with("ffn_up_exps.weight") {
            let bytes = convert_rows(info.ggml_type, data, GgmlType::F16, info.row_len() as usize);
            (GgmlType::F16, bytes.unwrap())
        } else {
            (info.ggml_type, data.to_vec())
        };
        writer
            .add_tensor(&info.name, ty, &info.shape, bytes)
            .unwrap();
    }
    let path = dir.path().join("tiny-v3-up-f16.gguf");
    writer
        .write_to(std::io::BufWriter::new(
            std::fs::File::create(&path).unwrap(),
        ))
        .unwrap();

    let gguf = GgufModel::open(&path).unwrap();
    let gpu_model = load(&path, None, Prefetch::Router);
    // tiny-v3 decode with split gate/up: 16 dispatches per MoE layer (14 when fused). The exact
    // f32 cache: the CPU bound below is derived for it.
    let cache = lanternfish::gpu::ops::cache_type::CacheType::F32;
    let mut session = GpuSession::with_cache_type(gpu_model.clone(), 64, 8, cache).unwrap();
    let prompt: Vec<u32> = (0..12).map(|i| (i * 37 + 11) % 200 + 3).collect();
    let logits = session.forward_all(&prompt).unwrap();
    let before = session.stats.dispatches;
    session.forward_greedy(&[5]).unwrap();
    assert_eq!(session.stats.dispatches - before, 1 + 2 + 10 + 3 * 16);
    let cpu = lanternfish::cpu::CpuModel::load(&gguf).unwrap();
    let want = cpu.session().forward(&prompt).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = logits
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff <= 1e-4 * scale, "GPU vs CPU {diff:e} of {scale:e}");
    check_budgets_of(&path, "tiny-v3 f32 with F16 up experts");
}

#[test]
fn prefetch_off_or_wrong_changes_no_logit() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(dir.path(), "tiny-v3", "q4_k_m");
    let resident = run(&load(&path, None, Prefetch::Router));
    let mut accuracy = Vec::new();
    for prefetch in [Prefetch::Router, Prefetch::Off, Prefetch::Wrong] {
        let model = load(&path, Some(Budget::ExpertShare(0.5)), prefetch);
        let paged = run(&model);
        assert_identical(&format!("prefetch {prefetch:?}"), &resident, &paged);
        let stats = model.pager.as_ref().unwrap().lock().unwrap().stats;
        if prefetch == Prefetch::Off {
            assert_eq!(stats.prefetch_bytes, 0);
            assert_eq!(stats.predicted_total, 0);
        } else {
            assert!(stats.predicted_total > 0, "{prefetch:?}: {stats:?}");
        }
        accuracy.push(stats.prefetch_accuracy());
    }
    assert!(
        accuracy[0] > accuracy[2],
        "router prediction {} vs wrong {}",
        accuracy[0],
        accuracy[2]
    );
}

/// Under pressure (one token's experts per layer) every token evicts; a second session on the
/// same model starts from whatever the first left resident and still matches.
#[test]
fn eviction_under_pressure_across_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(dir.path(), "tiny-v2", "q4_0");
    let full = plan(&path, None);
    let k = u64::from(full.n_expert_used);
    let minimal = full.resident_bytes + full.layers.iter().map(|l| l.expert_bytes * k).sum::<u64>();
    let resident = run(&load(&path, None, Prefetch::Router));
    let model = load(&path, Some(Budget::Bytes(minimal)), Prefetch::Router);
    assert_identical("first session", &resident, &run(&model));
    assert_identical("second session", &resident, &run(&model));
    let stats = model.pager.as_ref().unwrap().lock().unwrap().stats;
    assert!(stats.hit_rate() < 1.0);
    assert!(stats.paged_bytes > 0);
}

#[test]
fn a_budget_below_the_resident_part_says_how_much_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(dir.path(), "tiny-v2", "q8_0");
    let full = plan(&path, None);
    let file = GgufModel::open(&path).unwrap();
    let config = DeepSeekConfig::from_gguf(&file).unwrap();
    let error = MemoryPlan::new(&file, &config, Some(Budget::Bytes(full.resident_bytes / 2)))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&full.min_bytes.to_string()),
        "the error names the bytes needed: {error}"
    );
    // A budget that holds everything pages nothing and has no overhead.
    let all = plan(
        &path,
        Some(Budget::Bytes(full.resident_bytes + full.expert_bytes)),
    );
    assert!(!all.paged);
    let model = load(
        &path,
        Some(Budget::Bytes(full.resident_bytes + full.expert_bytes)),
        Prefetch::Router,
    );
    assert!(model.pager.is_none());
}

/// `info --memory`, `run --gpu-budget --trace-experts` and `bench --expert-cache` through the
/// real binary.
#[test]
fn cli_memory_plan_trace_and_bench_keys() {
    gpu_common::test_gpu();
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(dir.path(), "tiny-v3", "q4_k_m");
    let bin = env!("CARGO_BIN_EXE_lanternfish");
    let out = std::process::Command::new(bin)
        .args(["info", "--memory"])
        .arg(&path)
        .args(["--expert-cache", "25%"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("resident") && text.contains("slots"),
        "{text}"
    );

    let trace = dir.path().join("trace.jsonl");
    let out = std::process::Command::new(bin)
        .args(["run", "--model"])
        .arg(&path)
        .args([
            "--prompt",
            "hello world",
            "-n",
            "4",
            "--expert-cache",
            "25%",
        ])
        .arg("--trace-experts")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(&trace).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["pos"], 0);
    let k = plan(&path, None).n_expert_used as usize;
    assert_eq!(first["experts"].as_array().unwrap().len(), k);
    assert!(lines.lines().count() >= 2, "{lines}");

    let out = std::process::Command::new(bin)
        .args(["bench", "--model"])
        .arg(&path)
        .args(["-p", "16", "-n", "8", "--json", "--expert-cache", "50%"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "expert_hit_rate",
        "prefetch_accuracy",
        "paged_bytes_per_token",
        "stall_ms_per_token",
        "gpu_budget_bytes",
    ] {
        assert!(json[key].is_number(), "bench --json lacks {key}: {json}");
    }
    let hit = json["expert_hit_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&hit));
}

#[test]
fn budget_flags_are_checked() {
    let bin = env!("CARGO_BIN_EXE_lanternfish");
    let out = std::process::Command::new(bin)
        .args([
            "run",
            "--model",
            "x.gguf",
            "--prompt",
            "a",
            "--gpu-budget",
            "lots",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("byte count"));
}

/// `chat --expert-cache 25%` (experts that do not fit, paged through the engine worker) answers
/// a two-turn conversation with exactly the text of the fully resident chat.
#[test]
fn chat_with_a_budget_answers_like_the_resident_chat() {
    use std::io::Write;
    use std::process::Stdio;
    gpu_common::test_gpu();
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(dir.path(), "tiny-v3", "q4_k_m");
    let chat = |extra: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lanternfish"))
            .args(["chat", "-n", "12", "--model"])
            .arg(&path)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Hello there\nAnd then?\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let resident = chat(&[]);
    assert!(resident.trim().len() > 4, "{resident}");
    assert_eq!(chat(&["--expert-cache", "25%"]), resident);
}
