//! Serde helpers for JSON output: raw bytes as hex.

use bytes::Bytes;
use serde::Serializer;

/// Bytes as a lowercase hex string.
pub fn hex<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex_string(b))
}

/// Bytes as a lowercase hex string.
pub fn hex_string(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for &x in b {
        out.push(char::from(DIGITS[usize::from(x >> 4)]));
        out.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    out
}
