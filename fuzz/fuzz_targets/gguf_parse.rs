//! Fuzz target for the GGUF reader: any bytes must give `Ok` or `Err`, never a panic, an
//! out-of-bounds read or an allocation sized by an unchecked count. On success everything the
//! file exposes is read: every key and value (arrays iterated fully and indexed), every tensor's
//! bytes, and the file as a one-part model.

#![no_main]

use std::path::Path;

use lanternfish::gguf::{GgufFile, GgufModel, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(Path::new("fuzz.gguf"), data.to_vec()) else {
        return;
    };
    let mut sum = 0usize;
    for (key, value) in file.metadata() {
        sum = sum.wrapping_add(key.len());
        assert!(file.get(key).is_some());
        // Display walks strings and the first array elements.
        sum = sum.wrapping_add(value.to_string().len());
        if let Value::Array(array) = value {
            let mut n = 0;
            for (i, item) in array.iter().enumerate() {
                assert_eq!(item.value_type(), array.elem_type());
                assert!(array.get(i).is_some());
                sum = sum.wrapping_add(item.as_str().map_or(0, str::len));
                n += 1;
            }
            assert_eq!(n, array.len());
            sum = sum.wrapping_add(array.strings().count());
        }
    }
    for info in file.tensors() {
        let bytes = file.data(info);
        assert_eq!(bytes.len() as u64, info.n_bytes);
        assert!(info.offset.is_multiple_of(file.alignment()));
        sum = sum.wrapping_add(bytes.iter().map(|&b| usize::from(b)).sum::<usize>());
        sum = sum.wrapping_add(info.n_elements() as usize ^ info.n_rows() as usize);
    }
    let Ok(model) = GgufModel::from_parts(vec![file]) else {
        return;
    };
    for info in model.tensors() {
        assert_eq!(model.tensor(&info.name), Some(info));
        assert_eq!(model.tensor_data(info).len() as u64, info.n_bytes);
    }
    std::hint::black_box(sum);
});
