//! `Matrix`: a weight matrix the CPU reference reads one row at a time, either straight from the
//! GGUF bytes (any quant type, dequantized per row on use, so memory stays at the file's size) or
//! from f32 values computed at load (MLA's k_b derived from a legacy kv_b).

use std::sync::Arc;

use lanternfish_quant::{GgmlType, dequantize_row};

use crate::gguf::{GgufModel, TensorInfo};
use crate::{Error, Result};

/// `n_rows` rows of `n_cols` values, row-major: `y = W x` means `y[i] = row_i · x`.
#[derive(Clone, Debug)]
pub struct Matrix<'a> {
    store: Store<'a>,
    n_rows: usize,
    n_cols: usize,
}

#[derive(Clone, Debug)]
enum Store<'a> {
    /// Encoded rows in the file's memory map; `bytes` holds exactly this matrix's rows.
    Encoded {
        ty: GgmlType,
        bytes: &'a [u8],
        row_bytes: usize,
    },
    /// f32 rows `values[offset ..][.. n_rows·n_cols]`.
    F32 { values: Arc<[f32]>, offset: usize },
}

impl<'a> Matrix<'a> {
    /// A tensor `{ne0, ne1, …}` as `Π ne[1..]` rows of `ne0` values. Errors if the type cannot be
    /// decoded or the bytes do not hold the shape.
    pub fn from_tensor(model: &'a GgufModel, info: &TensorInfo) -> Result<Matrix<'a>> {
        let fail = |what: String| Error::Tensor {
            name: info.name.clone(),
            what,
        };
        let ty = info.ggml_type;
        if !ty.is_supported() {
            return Err(fail(format!("type {ty} cannot be dequantized")));
        }
        let n_cols = usize::try_from(info.row_len()).map_err(|e| fail(e.to_string()))?;
        let n_rows = usize::try_from(info.n_rows()).map_err(|e| fail(e.to_string()))?;
        let row_bytes = ty
            .bytes_for(n_cols as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| fail(format!("rows of {n_cols} are not whole {ty} blocks")))?;
        let bytes = model.tensor_data(info);
        if Some(bytes.len()) != row_bytes.checked_mul(n_rows) {
            let what = format!(
                "{} data bytes, expected {n_rows} rows of {row_bytes}",
                bytes.len()
            );
            return Err(fail(what));
        }
        Ok(Matrix {
            store: Store::Encoded {
                ty,
                bytes,
                row_bytes,
            },
            n_rows,
            n_cols,
        })
    }

    /// A matrix of f32 values, row-major `[n_rows, n_cols]`.
    pub fn from_f32(values: Vec<f32>, n_rows: usize, n_cols: usize) -> Matrix<'static> {
        assert_eq!(
            values.len(),
            n_rows * n_cols,
            "f32 matrix of {n_rows}×{n_cols}"
        );
        Matrix {
            store: Store::F32 {
                values: values.into(),
                offset: 0,
            },
            n_rows,
            n_cols,
        }
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Rows `start .. start + n` as a matrix of their own (no copy). Slicing a 3-D tensor
    /// `{ne0, ne1, E}` by `ne1` rows gives slice e (spec §3.2, expert slicing).
    pub fn rows(&self, start: usize, n: usize) -> Matrix<'a> {
        assert!(
            start + n <= self.n_rows,
            "rows {start}..{} of {}",
            start + n,
            self.n_rows
        );
        let store = match &self.store {
            Store::Encoded {
                ty,
                bytes,
                row_bytes,
            } => Store::Encoded {
                ty: *ty,
                bytes: &bytes[start * row_bytes..(start + n) * row_bytes],
                row_bytes: *row_bytes,
            },
            Store::F32 { values, offset } => Store::F32 {
                values: Arc::clone(values),
                offset: offset + start * self.n_cols,
            },
        };
        Matrix {
            store,
            n_rows: n,
            n_cols: self.n_cols,
        }
    }

    /// Decodes row `i` into `out` (`out.len() == n_cols`).
    pub fn row(&self, i: usize, out: &mut [f32]) {
        assert!(i < self.n_rows && out.len() == self.n_cols);
        match &self.store {
            Store::Encoded {
                ty,
                bytes,
                row_bytes,
            } => {
                let decoded = dequantize_row(*ty, &bytes[i * row_bytes..(i + 1) * row_bytes], out);
                // The type was checked in `from_tensor`.
                debug_assert!(decoded.is_ok(), "{decoded:?}");
            }
            Store::F32 { values, offset } => {
                let start = offset + i * self.n_cols;
                out.copy_from_slice(&values[start..start + self.n_cols]);
            }
        }
    }

    /// The stored bytes and their type: the file's raw blocks (borrowed from the map), or the
    /// f32 values as little-endian bytes (copied; only derived tensors are stored as f32).
    pub fn raw(&self) -> (GgmlType, std::borrow::Cow<'a, [u8]>) {
        match &self.store {
            Store::Encoded { ty, bytes, .. } => (*ty, std::borrow::Cow::Borrowed(*bytes)),
            Store::F32 { values, offset } => {
                let values = &values[*offset..offset + self.n_rows * self.n_cols];
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (GgmlType::F32, std::borrow::Cow::Owned(bytes))
            }
        }
    }

    /// Every value, row-major `[n_rows, n_cols]` (for small tensors: norms, biases).
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.n_rows * self.n_cols];
        if self.n_cols > 0 {
            for (i, row) in out.chunks_exact_mut(self.n_cols).enumerate() {
                self.row(i, row);
            }
        }
        out
    }
}
