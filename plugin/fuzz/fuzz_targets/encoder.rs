//! Compressing the way clients do, for the fuzz targets that send encoded
//! bodies: miniz_oxide's encoder, another implementation than the decoder
//! under test uses for its framing.

/// `data` as one gzip member, with no optional header fields.
pub fn gzip(data: &[u8], level: u8) -> Vec<u8> {
    let mut out = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, level));
    out.extend(crc32fast::hash(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// `data` in the zlib format (HTTP's `deflate`).
pub fn zlib(data: &[u8], level: u8) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, level)
}
