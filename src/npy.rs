//! Writing numpy `.npy` files (format version 1.0) of little-endian f32, streamed row by row.
//!
//! Layout (numpy `lib/format.py`): magic `\x93NUMPY`, version `1 0`, a u16 header length, then an
//! ASCII dict `{'descr': '<f4', 'fortran_order': False, 'shape': (…), }` padded with spaces and a
//! final newline so the data starts at a multiple of 64 bytes.

use std::io::Write;

/// Writes the `.npy` header for a C-order f32 array of `shape` (outermost first).
pub fn write_header<W: Write>(out: &mut W, shape: &[u64]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = 6 + 2 + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    out.write_all(b"\x93NUMPY\x01\x00")?;
    let len = u16::try_from(dict.len())
        .map_err(|_| std::io::Error::other("npy header longer than 65535 bytes"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(dict.as_bytes())
}

/// Appends f32 values in little-endian order.
pub fn write_values<W: Write>(out: &mut W, values: &[f32]) -> std::io::Result<()> {
    for chunk in values.chunks(4096) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.write_all(&bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_64_byte_aligned() {
        for shape in [vec![64u64, 4], vec![7], vec![2, 3, 4, 5]] {
            let mut out = Vec::new();
            write_header(&mut out, &shape).expect("write to Vec");
            assert_eq!(out.len() % 64, 0);
            assert_eq!(out.last(), Some(&b'\n'));
        }
        let mut out = Vec::new();
        write_header(&mut out, &[4, 64]).expect("write to Vec");
        let text = String::from_utf8_lossy(&out[10..]);
        assert!(text.contains("'shape': (4, 64)"), "{text}");
    }
}
