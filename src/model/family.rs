//! Which model family a file holds, for `info` ("DeepSeek-V3.2 (deepseek32), DSA top-k 2048, MTP 1
//! layer"): the architecture name with what people call the model. The name comes from
//! `general.name`/`general.basename` when they say it, else from what only that family has (Kimi's
//! 384 experts, Mistral's Tekken tokenizer or query temperature, GLM-4.7's 154,880-row vocabulary,
//! the DeepSeek layer counts). It is a label, never a switch: the forward pass reads the keys.

use crate::gguf::Value;

/// A one-line description of the file's family, or `None` without `general.architecture`.
pub fn describe<'a>(
    get: &dyn Fn(&str) -> Option<Value<'a>>,
    has_tensor: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let arch = get("general.architecture")?.as_str()?.to_owned();
    let text = |k: &str| get(k).and_then(|v| v.as_str().map(str::to_ascii_lowercase));
    let name = [text("general.name"), text("general.basename")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let named = |needle: &str| name.contains(needle);
    let num = |k: &str| get(&format!("{arch}.{k}")).and_then(|v| v.as_u64());
    let pre = text("tokenizer.ggml.pre").unwrap_or_default();
    let n_vocab = num("vocab_size").or_else(|| {
        get("tokenizer.ggml.tokens").and_then(|v| v.as_array().map(|a| a.len() as u64))
    });
    let mut notes = Vec::new();
    let family = match arch.as_str() {
        "qwen3" if named("deepseek") || named("r1") || pre == "deepseek-v3" => {
            "DeepSeek-R1-0528-Qwen3"
        }
        "qwen3" => "Qwen3",
        "qwen2" if named("distill") || named("deepseek") => "DeepSeek-R1-Distill-Qwen",
        "qwen2" => "Qwen2",
        "llama" => {
            if has_tensor("rope_freqs.weight") {
                notes.push("llama3 RoPE".to_owned());
            }
            if named("distill") || named("deepseek") || named("r1-llama") {
                "DeepSeek-R1-Distill-Llama"
            } else {
                "Llama"
            }
        }
        "deepseek2" => {
            let layers = num("block_count")
                .unwrap_or(0)
                .saturating_sub(num("nextn_predict_layers").unwrap_or(0));
            let experts = num("expert_count").unwrap_or(0);
            let sigmoid = num("expert_gating_func") == Some(2);
            if named("mistral")
                || pre == "tekken"
                || get(&format!("{arch}.attention.temperature_scale")).is_some()
            {
                "Mistral Large 3"
            } else if named("kimi") || pre == "kimi-k2" || experts == 384 {
                "Kimi-K2"
            } else if named("glm") || pre == "glm4" || n_vocab == Some(154_880) {
                "GLM-4.7-Flash"
            } else if named("moonlight") {
                "Moonlight"
            } else if sigmoid && layers == 61 {
                "DeepSeek-V3/R1"
            } else if sigmoid {
                "DeepSeek-V3-style"
            } else if layers == 27 {
                "DeepSeek-V2-Lite"
            } else if layers == 60 {
                "DeepSeek-V2/V2.5"
            } else {
                "DeepSeek-V2-style"
            }
        }
        "deepseek32" => {
            if let Some(k) = num("attention.indexer.top_k") {
                notes.push(format!("DSA top-k {k}"));
            }
            "DeepSeek-V3.2"
        }
        _ => return Some(arch),
    };
    if let Some(n) = num("nextn_predict_layers").filter(|&n| n > 0) {
        notes.push(format!("MTP {n} layer{}", if n == 1 { "" } else { "s" }));
    }
    if arch != "deepseek2" && arch != "deepseek32" {
        let scaling = text(&format!("{arch}.rope.scaling.type"));
        let factor = get(&format!("{arch}.rope.scaling.factor")).and_then(|v| v.as_f64());
        if let (Some("yarn"), Some(f)) = (scaling.as_deref(), factor) {
            notes.push(format!("YaRN ×{f}"));
        }
    }
    let mut line = format!("{family} ({arch})");
    for note in notes {
        line.push_str(", ");
        line.push_str(&note);
    }
    Some(line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn describe_keys(keys: &[(&str, Value<'static>)], tensors: &[&str]) -> String {
        let get = |k: &str| keys.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        describe(&get, &|t| tensors.contains(&t)).unwrap()
    }

    #[test]
    fn families_are_named() {
        let s = Value::String;
        assert_eq!(
            describe_keys(
                &[
                    ("general.architecture", s("deepseek32")),
                    ("deepseek32.attention.indexer.top_k", Value::U32(2048)),
                    ("deepseek32.nextn_predict_layers", Value::U32(1)),
                ],
                &[]
            ),
            "DeepSeek-V3.2 (deepseek32), DSA top-k 2048, MTP 1 layer"
        );
        assert_eq!(
            describe_keys(
                &[
                    ("general.architecture", s("deepseek2")),
                    ("deepseek2.block_count", Value::U32(61)),
                    ("deepseek2.expert_count", Value::U32(384)),
                ],
                &[]
            ),
            "Kimi-K2 (deepseek2)"
        );
        assert_eq!(
            describe_keys(
                &[
                    ("general.architecture", s("deepseek2")),
                    ("deepseek2.block_count", Value::U32(27)),
                ],
                &[]
            ),
            "DeepSeek-V2-Lite (deepseek2)"
        );
        assert_eq!(
            describe_keys(
                &[
                    ("general.architecture", s("llama")),
                    ("general.name", s("DeepSeek R1 Distill Llama 8B")),
                ],
                &["rope_freqs.weight"]
            ),
            "DeepSeek-R1-Distill-Llama (llama), llama3 RoPE"
        );
        assert_eq!(
            describe_keys(
                &[
                    ("general.architecture", s("qwen3")),
                    ("tokenizer.ggml.pre", s("deepseek-v3")),
                    ("qwen3.rope.scaling.type", s("yarn")),
                    ("qwen3.rope.scaling.factor", Value::F32(4.0)),
                ],
                &[]
            ),
            "DeepSeek-R1-0528-Qwen3 (qwen3), YaRN ×4"
        );
        assert_eq!(
            describe_keys(&[("general.architecture", s("gemma3"))], &[]),
            "gemma3"
        );
    }
}
