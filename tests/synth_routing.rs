//! `synth --routing realistic`: the CPU reference routes a skewed model's tokens to a few popular
//! experts and consecutive tokens to overlapping experts, while the default (uniform) model stays
//! near the uniform expectation; the option round-trips through the CLI into the metadata.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use lanternfish::cpu::{CpuModel, Trace};
use lanternfish::gguf::{GgufFile, GgufModel};
use lanternfish::quant::GgmlType;
use lanternfish::synth::{
    Layout, Routing, SkewedRouting, SynthConfig, SynthOptions, WeightType, write_model,
};

fn synth(preset: &str, routing: Routing) -> GgufModel {
    let mut config = SynthConfig::preset(preset).unwrap();
    config.routing = routing;
    let options = SynthOptions {
        config,
        weights: WeightType::Float(GgmlType::F32),
        layout: Layout::Mla,
        seed: 11,
    };
    let mut bytes = Vec::new();
    write_model(&options, &mut bytes, &|_, _| {}).unwrap();
    let file = GgufFile::from_bytes(format!("{preset}.gguf").as_ref(), bytes).unwrap();
    GgufModel::from_parts(vec![file]).unwrap()
}

/// Routing statistics averaged over the MoE layers.
#[derive(Debug)]
struct Stats {
    /// Share of all top-k picks that go to the most popular 25 % of experts.
    top_quarter_share: f64,
    /// Mean |S_t ∩ S_{t+1}| / k over consecutive tokens.
    consecutive_overlap: f64,
}

fn measure(model: &GgufModel, tokens: &[u32]) -> Stats {
    let cpu = CpuModel::load(model).unwrap();
    let (n_expert, k) = (cpu.config.n_expert, cpu.config.n_expert_used);
    let mut trace = Trace::default();
    cpu.session().forward_traced(tokens, &mut trace).unwrap();
    let (mut share, mut overlap, mut n_layers) = (0.0, 0.0, 0);
    for routing in trace.routing.iter().flatten() {
        let mut counts = vec![0usize; n_expert];
        for r in routing {
            r.experts.iter().for_each(|&e| counts[e] += 1);
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let total: usize = counts.iter().sum();
        share += counts[..n_expert / 4].iter().sum::<usize>() as f64 / total as f64;
        let shared: usize = routing
            .windows(2)
            .map(|w| {
                w[0].experts
                    .iter()
                    .filter(|e| w[1].experts.contains(e))
                    .count()
            })
            .sum();
        overlap += shared as f64 / ((routing.len() - 1) * k) as f64;
        n_layers += 1;
    }
    Stats {
        top_quarter_share: share / n_layers as f64,
        consecutive_overlap: overlap / n_layers as f64,
    }
}

/// `n` pseudo-random token ids below `n_vocab` (a fixed LCG, so the test is deterministic).
fn random_ids(n: usize, n_vocab: u32) -> Vec<u32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % u64::from(n_vocab)) as u32
        })
        .collect()
}

fn vocab(model: &GgufModel) -> u32 {
    CpuModel::load(model).unwrap().config.n_vocab as u32
}

const N_TOKENS: usize = 256;

fn check(preset: &str) {
    let uniform = synth(preset, Routing::Uniform);
    let skewed = synth(preset, Routing::Skewed(SkewedRouting::default()));
    let tokens = random_ids(N_TOKENS, vocab(&uniform));
    let u = measure(&uniform, &tokens);
    let s = measure(&skewed, &tokens);
    eprintln!("{preset} random ids: uniform {u:?}\n{preset} random ids: skewed  {s:?}");
    // Uniform tiny-v2 (softmax, no bias): 256 tokens × 4 picks over 16 experts per layer. The top
    // quarter of an even split holds 25 %; sampling noise on 64 expected picks per expert lifts the
    // 4 largest counts to ≈ 30 % (measured 0.32), so allow up to 0.40. Consecutive tokens share
    // k/E = 25 % by chance (measured 0.26; allow 0.15–0.35).
    // Uniform tiny-v3 is not uniform: its selection bias `exp_probs_b` ~ N(0, 0.25²) is large
    // against the spread of sigmoid scores, so a fixed per-expert bias already skews it (measured
    // 0.54 and 0.42 on this seed); only bound it from above.
    let (max_share, overlap_range) = match preset {
        "tiny-v2" => (0.40, 0.15..0.35),
        _ => (0.65, 0.15..0.55),
    };
    assert!(
        u.top_quarter_share < max_share,
        "{preset}: uniform routing is skewed: {u:?}"
    );
    assert!(
        overlap_range.contains(&u.consecutive_overlap),
        "{preset}: uniform overlap off the expectation: {u:?}"
    );
    // Skewed: the target is a top quarter holding well over half the picks and consecutive tokens
    // sharing well over half their experts, even for random ids (the common direction alone does
    // that), both at least 0.15 above the uniform model: far beyond its sampling noise (measured
    // 0.72 / 0.59 on tiny-v2 and 0.79 / 0.70 on tiny-v3).
    assert!(
        s.top_quarter_share > 0.60 && s.top_quarter_share > u.top_quarter_share + 0.15,
        "{preset}: skewed routing is not skewed enough: {s:?} vs {u:?}"
    );
    assert!(
        s.consecutive_overlap > 0.50 && s.consecutive_overlap > u.consecutive_overlap + 0.15,
        "{preset}: skewed routing has no locality: {s:?} vs {u:?}"
    );

    // Runs of 32 tokens inside one cluster (block of ids): locality is higher still.
    let n_vocab = vocab(&skewed);
    let block = n_vocab / SkewedRouting::default().n_clusters;
    let runs: Vec<u32> = random_ids(N_TOKENS, block)
        .iter()
        .enumerate()
        .map(|(i, id)| ((i / 32) as u32 * 3 % 8) * block + id)
        .collect();
    let u_runs = measure(&uniform, &runs);
    let s_runs = measure(&skewed, &runs);
    eprintln!(
        "{preset} cluster runs: uniform {u_runs:?}\n{preset} cluster runs: skewed  {s_runs:?}"
    );
    // The cluster component adds to the common one: runs never lower the overlap (measured
    // +0.13 on tiny-v2, +0.03 on tiny-v3 where popularity already dominates) and stay far above
    // the uniform model on the same sequence (measured +0.45 and +0.33).
    assert!(
        s_runs.consecutive_overlap >= s.consecutive_overlap
            && s_runs.consecutive_overlap > u_runs.consecutive_overlap + 0.25,
        "{preset}: runs within a cluster do not keep locality: {s_runs:?} vs {s:?}, {u_runs:?}"
    );
    assert!(
        u_runs.consecutive_overlap < overlap_range.end,
        "{preset}: uniform model has locality: {u_runs:?}"
    );
}

#[test]
fn tiny_v2_realistic_routing_is_skewed_and_local() {
    check("tiny-v2");
}

#[test]
fn tiny_v3_realistic_routing_is_skewed_and_local() {
    check("tiny-v3");
}

#[test]
fn routing_option_round_trips_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lanternfish"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let skewed = dir.path().join("skewed.gguf");
    let plain = dir.path().join("plain.gguf");
    let skewed_s = skewed.to_str().unwrap();
    let plain_s = plain.to_str().unwrap();
    run(&[
        "synth",
        "--preset",
        "tiny-v3",
        "--routing",
        "realistic",
        "--zipf-s",
        "1.2",
        "--out",
        skewed_s,
    ]);
    run(&["synth", "--preset", "tiny-v3", "--out", plain_s]);
    let info = run(&["info", "--metadata", skewed_s]);
    let line = |key: &str| {
        info.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("{key} missing from:\n{info}"))
            .to_string()
    };
    assert!(line("lanternfish.synth.routing").contains("\"realistic\""));
    assert!(line("lanternfish.synth.routing.zipf_s").contains("1.2"));
    // The default writes no routing key (files stay byte-identical to older versions).
    let info = run(&["info", "--metadata", plain_s]);
    assert!(!info.contains("lanternfish.synth.routing"), "{info}");
    // Unknown values and parameters without `realistic` are errors.
    for args in [
        &["--routing", "zipfy"][..],
        &["--zipf-s", "1.0"][..],
        &["--routing", "realistic", "--zipf-s", "-1"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lanternfish"))
            .args(["synth", "--preset", "tiny-v2", "--out", plain_s])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
    }
}
