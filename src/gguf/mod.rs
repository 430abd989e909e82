//! The GGUF container (spec §1): a zero-copy, validating reader over memory-mapped files, split
//! models as one tensor map, and a writer. Knows bytes and metadata, nothing about DeepSeek.

mod cursor;
mod file;
mod header;
mod model;
mod value;
mod writer;

pub use cursor::ParseError;
pub use file::GgufFile;
pub use header::{DEFAULT_ALIGNMENT, GGUF_MAGIC, Header, MAX_DIMS, TensorInfo, align_up, parse};
pub use model::{
    GgufModel, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT, split_file_name, split_paths,
};
pub use value::{ArrayIter, ArrayRef, Value, ValueType};
pub use writer::{GgufWriter, MetaValue, TensorStream, WriteError};
