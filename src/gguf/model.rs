//! A model as one or more GGUF files: split files (`name-00001-of-00005.gguf` with `split.*` keys,
//! spec §1.6) opened together as one tensor map.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::GgufFile;
use super::header::TensorInfo;
use super::value::Value;
use crate::{Error, Result};

pub const KEY_SPLIT_NO: &str = "split.no";
pub const KEY_SPLIT_COUNT: &str = "split.count";
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// A GGUF model: the first (or only) file's metadata and the tensors of all its parts.
#[derive(Debug)]
pub struct GgufModel {
    parts: Vec<GgufFile>,
    /// Tensor name → (part, index in that part), in file order via `order`.
    index: HashMap<String, (usize, usize)>,
    order: Vec<(usize, usize)>,
}

impl GgufModel {
    /// Opens a GGUF file. If it is one part of a split model, every part is opened (whichever
    /// part was named) and the tensors of all parts form one map.
    pub fn open(path: &Path) -> Result<GgufModel> {
        let first = GgufFile::open(path)?;
        let count = split_value(&first, KEY_SPLIT_COUNT)?.unwrap_or(0);
        if count <= 1 {
            return Self::from_parts(vec![first]);
        }
        let no = split_value(&first, KEY_SPLIT_NO)?.unwrap_or(0);
        let paths = split_paths(path, count)?;
        let mut parts = Vec::with_capacity(paths.len());
        let mut given = Some(first);
        for (i, part_path) in paths.iter().enumerate() {
            let file = match given.take_if(|_| i as u64 == no) {
                Some(file) => file,
                None => GgufFile::open(part_path)?,
            };
            let part_no = split_value(&file, KEY_SPLIT_NO)?;
            let part_count = split_value(&file, KEY_SPLIT_COUNT)?;
            if part_no != Some(i as u64) || part_count != Some(count) {
                return Err(Error::Split {
                    path: part_path.clone(),
                    what: format!(
                        "expected part {} of {count}, file says split.no = {part_no:?}, split.count = {part_count:?}",
                        i
                    ),
                });
            }
            parts.push(file);
        }
        Self::from_parts(parts)
    }

    /// Opens only the metadata of one GGUF file whose tensor data may be cut short (a partial
    /// download): enough for the tokenizer and chat template; tensors past the end of the file
    /// are left out, so no model can be loaded from it.
    pub fn open_metadata(path: &Path) -> Result<GgufModel> {
        Self::from_parts(vec![GgufFile::open_metadata(path)?])
    }

    /// Builds a model from already opened files (part 0 first).
    pub fn from_parts(mut parts: Vec<GgufFile>) -> Result<GgufModel> {
        if parts.is_empty() {
            // `metadata` and `get` index part 0, so a model always has one.
            return Err(Error::Split {
                path: PathBuf::new(),
                what: "a model needs at least one GGUF file".into(),
            });
        }
        let mut index = HashMap::new();
        let mut order = Vec::new();
        for (p, part) in parts.iter_mut().enumerate() {
            part.set_part(p);
            for (t, info) in part.tensors().iter().enumerate() {
                if index.insert(info.name.clone(), (p, t)).is_some() {
                    return Err(Error::Split {
                        path: part.path().to_owned(),
                        what: format!("tensor {} appears in more than one part", info.name),
                    });
                }
                order.push((p, t));
            }
        }
        if parts.len() > 1 {
            let first = &parts[0];
            if let Some(total) = split_value(first, KEY_SPLIT_TENSORS_COUNT)?
                && total != order.len() as u64
            {
                return Err(Error::Split {
                    path: first.path().to_owned(),
                    what: format!(
                        "{KEY_SPLIT_TENSORS_COUNT} is {total} but the parts hold {} tensors",
                        order.len()
                    ),
                });
            }
        }
        Ok(GgufModel {
            parts,
            index,
            order,
        })
    }

    /// The files, part 0 first.
    pub fn parts(&self) -> &[GgufFile] {
        &self.parts
    }

    /// The file holding the model metadata (part 0).
    pub fn metadata(&self) -> &GgufFile {
        &self.parts[0]
    }

    /// A metadata key of the model.
    pub fn get(&self, key: &str) -> Option<Value<'_>> {
        self.parts[0].get(key)
    }

    /// All tensors, part by part in file order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.order.iter().map(|&(p, t)| &self.parts[p].tensors()[t])
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let &(p, t) = self.index.get(name)?;
        Some(&self.parts[p].tensors()[t])
    }

    /// The bytes of a tensor (a slice of its file's memory map).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        self.parts
            .get(info.part)
            .map(|part| part.data(info))
            .unwrap_or(&[])
    }

    /// Read-ahead hint for `len` bytes of `info`'s data from `offset` (see
    /// [`GgufFile::advise_will_need`]).
    pub fn advise_will_need(&self, info: &TensorInfo, offset: usize, len: usize) {
        if let Some(part) = self.parts.get(info.part) {
            part.advise_will_need(info, offset, len);
        }
    }
}

fn split_value(file: &GgufFile, key: &str) -> Result<Option<u64>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= 99_999 => Ok(Some(n)),
            _ => Err(Error::Split {
                path: file.path().to_owned(),
                what: format!("{key} = {v} is not a valid split number"),
            }),
        },
    }
}

/// The paths of all parts of a split model, from the name of any one of them
/// (`<prefix>-%05d-of-%05d.gguf`, 1-based; `llama_split_path` in llama.cpp's `src/llama.cpp`).
pub fn split_paths(path: &Path, count: u64) -> Result<Vec<PathBuf>> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let bad = || Error::Split {
        path: path.to_owned(),
        what: format!(
            "file is part of a {count}-part split model but its name does not end in -NNNNN-of-{count:05}.gguf"
        ),
    };
    let stem = name.strip_suffix(".gguf").ok_or_else(bad)?;
    let suffix = format!("-of-{count:05}");
    let stem = stem.strip_suffix(&suffix).ok_or_else(bad)?;
    if stem.len() < 6 || !stem.is_char_boundary(stem.len() - 6) {
        return Err(bad());
    }
    let (prefix, number) = stem.split_at(stem.len() - 6);
    if !number.starts_with('-') || !number[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok((1..=count)
        .map(|i| path.with_file_name(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
        .collect())
}

/// The file name of part `index` (0-based) of `count` for a split model named `prefix`.
pub fn split_file_name(prefix: &str, index: usize, count: usize) -> String {
    format!("{prefix}-{:05}-of-{count:05}.gguf", index + 1)
}
