//! Split GGUF models (`name-00001-of-00003.gguf`, spec §1.6) open as one tensor map from any
//! part's path and match the unsplit model; a missing part, mismatched `split.no` /
//! `split.count`, a tensor in two parts, a wrong `split.tensors.count` or a badly named file is
//! a clear error.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{to_bytes, writer_with};
use lanternfish::gguf::{
    GgufFile, GgufModel, GgufWriter, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT,
    MetaValue, split_file_name, split_paths,
};
use lanternfish::quant::GgmlType;

fn model_writer() -> GgufWriter {
    writer_with(&common::all_types_metadata(), &common::mixed_tensors(), 64)
}

/// Writes `parts` as `<dir>/model-0000i-of-0000n.gguf`; returns their paths.
fn save_parts(dir: &Path, parts: Vec<GgufWriter>) -> Vec<PathBuf> {
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let path = dir.join(split_file_name("model", i, n));
            std::fs::write(&path, to_bytes(part)).unwrap();
            path
        })
        .collect()
}

/// Asserts that `split` holds the same metadata (other than `split.*`) and the same tensors,
/// with the same bytes, as `whole`.
fn assert_same_model(split: &GgufModel, whole: &GgufModel) {
    let names = |m: &GgufModel| m.tensors().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(split), names(whole));
    for t in whole.tensors() {
        let s = split.tensor(&t.name).unwrap();
        assert_eq!(
            (s.ggml_type, &s.shape, s.n_bytes),
            (t.ggml_type, &t.shape, t.n_bytes)
        );
        assert_eq!(
            split.tensor_data(s),
            whole.tensor_data(t),
            "data of {}",
            t.name
        );
        assert!(s.offset.is_multiple_of(split.parts()[s.part].alignment()));
    }
    for (key, value) in whole.metadata().metadata() {
        assert!(
            common::same_value(&MetaValue::from(value), &split.get(key).unwrap()),
            "{key}"
        );
    }
    let split_keys: Vec<&str> = split
        .metadata()
        .keys()
        .filter(|k| !k.starts_with("split."))
        .collect();
    assert_eq!(split_keys, whole.metadata().keys().collect::<Vec<_>>());
}

#[test]
fn split_model_opens_from_any_part() {
    let dir = tempfile::tempdir().unwrap();
    let whole_path = dir.path().join("whole.gguf");
    std::fs::write(&whole_path, to_bytes(model_writer())).unwrap();
    let whole = GgufModel::open(&whole_path).unwrap();
    assert_eq!(whole.parts().len(), 1);

    let n_tensors = common::mixed_tensors().len();
    let paths = save_parts(dir.path(), model_writer().into_split(3));
    assert_eq!(paths.len(), n_tensors.div_ceil(3));
    assert!(paths[0].ends_with("model-00001-of-00003.gguf"));
    assert_eq!(split_paths(&paths[2], 3).unwrap(), paths);

    for given in &paths {
        let model = GgufModel::open(given).unwrap();
        assert_eq!(model.parts().len(), 3);
        for (part, path) in model.parts().iter().zip(&paths) {
            assert_eq!(part.path(), path);
        }
        assert_same_model(&model, &whole);
        // Tensors are distributed in order, three per part, and know their part.
        for (i, t) in model.tensors().enumerate() {
            assert_eq!(t.part, i / 3, "{}", t.name);
        }
        // Only part 0 carries the model metadata; every part has its alignment and split keys.
        for (i, part) in model.parts().iter().enumerate() {
            assert_eq!(part.get(KEY_SPLIT_NO).unwrap().as_u64(), Some(i as u64));
            assert_eq!(part.get(KEY_SPLIT_COUNT).unwrap().as_u64(), Some(3));
            assert_eq!(
                part.get(KEY_SPLIT_TENSORS_COUNT).unwrap().as_u64(),
                Some(n_tensors as u64)
            );
            assert_eq!(part.alignment(), 64);
            assert_eq!(part.get("general.architecture").is_some(), i == 0);
        }
    }
}

#[test]
fn split_keys_have_llama_cpp_types() {
    let parts = model_writer().into_split(4);
    let bytes = to_bytes(parts.into_iter().nth(1).unwrap());
    let file = GgufFile::from_bytes(Path::new("p.gguf"), bytes).unwrap();
    use lanternfish::gguf::Value;
    assert!(matches!(file.get(KEY_SPLIT_NO), Some(Value::U16(1))));
    assert!(matches!(file.get(KEY_SPLIT_COUNT), Some(Value::U16(2))));
    assert!(matches!(
        file.get(KEY_SPLIT_TENSORS_COUNT),
        Some(Value::I32(7))
    ));
}

#[test]
fn one_part_split_and_empty_model() {
    let dir = tempfile::tempdir().unwrap();
    // Everything fits in one part: split.count = 1 opens as a plain file.
    let paths = save_parts(dir.path(), model_writer().into_split(100));
    assert_eq!(paths.len(), 1);
    let model = GgufModel::open(&paths[0]).unwrap();
    assert_eq!(model.tensors().count(), common::mixed_tensors().len());
    // No tensors at all still makes one (empty) part.
    let parts = GgufWriter::new().into_split(2);
    assert_eq!(parts.len(), 1);
    let file = GgufFile::from_bytes(
        Path::new("e.gguf"),
        to_bytes(parts.into_iter().next().unwrap()),
    )
    .unwrap();
    assert!(file.tensors().is_empty());
    // One tensor per part.
    let dir2 = tempfile::tempdir().unwrap();
    let paths = save_parts(dir2.path(), model_writer().into_split(1));
    assert_eq!(paths.len(), common::mixed_tensors().len());
    let model = GgufModel::open(paths.last().unwrap()).unwrap();
    assert_eq!(model.parts().len(), paths.len());
}

/// Opens `path`, expecting an error whose message contains every one of `expect`.
fn expect_error(path: &Path, expect: &[&str]) -> String {
    let msg = GgufModel::open(path).unwrap_err().to_string();
    for s in expect {
        assert!(msg.contains(s), "{msg:?} does not contain {s:?}");
    }
    msg
}

#[test]
fn missing_part_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let paths = save_parts(dir.path(), model_writer().into_split(3));
    std::fs::remove_file(&paths[1]).unwrap();
    for given in [&paths[0], &paths[2]] {
        expect_error(given, &["model-00002-of-00003.gguf"]);
    }
}

#[test]
fn mismatched_split_no_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = model_writer().into_split(3);
    parts[1].set(KEY_SPLIT_NO, MetaValue::U16(2));
    let paths = save_parts(dir.path(), parts);
    for given in &paths {
        expect_error(
            given,
            &[
                "model-00002-of-00003.gguf",
                "expected part 1 of 3",
                "split.no = Some(2)",
            ],
        );
    }
    // The first part must be part 0: a file saying it is part 1 under the first part's name.
    let mut parts = model_writer().into_split(3);
    parts[0].set(KEY_SPLIT_NO, MetaValue::U16(1));
    let dir = tempfile::tempdir().unwrap();
    let paths = save_parts(dir.path(), parts);
    expect_error(&paths[0], &["expected part"]);
    // Parts swapped on disk.
    let dir = tempfile::tempdir().unwrap();
    let paths = save_parts(dir.path(), model_writer().into_split(3));
    let tmp = dir.path().join("tmp");
    std::fs::rename(&paths[1], &tmp).unwrap();
    std::fs::rename(&paths[2], &paths[1]).unwrap();
    std::fs::rename(&tmp, &paths[2]).unwrap();
    for given in &paths {
        expect_error(given, &["expected part"]);
    }
}

#[test]
fn mismatched_split_count_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = model_writer().into_split(3);
    parts[2].set(KEY_SPLIT_COUNT, MetaValue::U16(4));
    let paths = save_parts(dir.path(), parts);
    expect_error(
        &paths[0],
        &["model-00003-of-00003.gguf", "split.count = Some(4)"],
    );
    // Opening the odd part itself looks for a 4-part set, whose names do not match its own.
    expect_error(&paths[2], &["-of-00004.gguf"]);

    // A part that lacks split keys altogether.
    let dir = tempfile::tempdir().unwrap();
    let mut parts = model_writer().into_split(3);
    parts[1].remove(KEY_SPLIT_NO);
    parts[1].remove(KEY_SPLIT_COUNT);
    let paths = save_parts(dir.path(), parts);
    expect_error(&paths[0], &["model-00002-of-00003.gguf", "split.no = None"]);
}

#[test]
fn duplicate_tensor_across_parts_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = model_writer().into_split(3);
    parts[1]
        .add_tensor("token_embd.weight", GgmlType::F32, &[2], vec![0; 8])
        .unwrap();
    let paths = save_parts(dir.path(), parts);
    for given in &paths {
        expect_error(
            given,
            &[
                "model-00002-of-00003.gguf",
                "tensor token_embd.weight appears in more than one part",
            ],
        );
    }
}

#[test]
fn wrong_split_tensors_count_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = model_writer().into_split(3);
    parts[0].set(KEY_SPLIT_TENSORS_COUNT, MetaValue::I32(6));
    let paths = save_parts(dir.path(), parts);
    expect_error(
        &paths[2],
        &[
            "model-00001-of-00003.gguf",
            "split.tensors.count is 6",
            "hold 7 tensors",
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let mut parts = model_writer().into_split(3);
    parts[0].set(KEY_SPLIT_TENSORS_COUNT, MetaValue::I32(-1));
    let paths = save_parts(dir.path(), parts);
    expect_error(
        &paths[0],
        &["split.tensors.count = -1 is not a valid split number"],
    );
}

#[test]
fn bad_split_values_are_errors() {
    for (key, value, expect) in [
        (
            KEY_SPLIT_COUNT,
            MetaValue::String("3".into()),
            "split.count = \"3\" is not a valid split number",
        ),
        (KEY_SPLIT_COUNT, MetaValue::I32(-3), "split.count = -3"),
        (
            KEY_SPLIT_COUNT,
            MetaValue::U32(1_000_000),
            "split.count = 1000000",
        ),
        (
            KEY_SPLIT_NO,
            MetaValue::F32(0.0),
            "split.no = 0 is not a valid split number",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut parts = model_writer().into_split(3);
        parts[0].set(key, value);
        let paths = save_parts(dir.path(), parts);
        expect_error(&paths[0], &["model-00001-of-00003.gguf", expect]);
    }
}

#[test]
fn split_file_with_a_foreign_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let parts = model_writer().into_split(3);
    let first = parts.into_iter().next().unwrap();
    for name in [
        "model.gguf",
        "model-00001-of-00002.gguf",
        "model-1-of-00003.gguf",
        "model-0000x-of-00003.gguf",
        "-00001-of-00003.bin",
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, to_bytes(first.clone())).unwrap();
        expect_error(&path, &[name, "3-part split model", "-NNNNN-of-00003.gguf"]);
    }
    // A name with non-ASCII characters before the number is fine.
    let path = dir.path().join("模型-00001-of-00003.gguf");
    std::fs::write(&path, to_bytes(first)).unwrap();
    expect_error(&path, &["模型-00002-of-00003.gguf"]);
}

#[test]
fn split_file_names() {
    assert_eq!(
        split_file_name("DeepSeek-R1-Q4_K_M", 0, 9),
        "DeepSeek-R1-Q4_K_M-00001-of-00009.gguf"
    );
    assert_eq!(split_file_name("m", 11, 12), "m-00012-of-00012.gguf");
    let paths = split_paths(Path::new("/x/y/m-00002-of-00003.gguf"), 3).unwrap();
    assert_eq!(
        paths,
        [
            "/x/y/m-00001-of-00003.gguf",
            "/x/y/m-00002-of-00003.gguf",
            "/x/y/m-00003-of-00003.gguf"
        ]
        .map(PathBuf::from)
    );
}

#[test]
fn from_parts_needs_a_part() {
    let msg = GgufModel::from_parts(Vec::new()).unwrap_err().to_string();
    assert!(msg.contains("at least one"), "{msg}");
}

#[test]
fn cli_info_opens_split_models() {
    let dir = tempfile::tempdir().unwrap();
    let paths = save_parts(dir.path(), model_writer().into_split(3));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .args(["info", "--json", "--tensors"])
        .arg(&paths[2])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["parts"].as_array().unwrap().len(), 3);
    assert_eq!(json["tensor_count"], 7);

    std::fs::remove_file(&paths[1]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .arg("info")
        .arg(&paths[0])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error") && stderr.contains("model-00002-of-00003.gguf"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
