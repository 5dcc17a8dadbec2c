//! Z85 (RFC 32): binary data as printable text, four bytes to five characters. ZeroMQ prints
//! CURVE keys this way (40 characters for 32 bytes).
//!
//! ```
//! use ferromq::security::z85;
//!
//! let text = z85::encode(&[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]).unwrap();
//! assert_eq!(text, "HelloWorld");
//! assert_eq!(z85::decode(&text).unwrap(), [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]);
//! ```

/// The 85 characters, value 0 first (RFC 32 §"Formal Specification").
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Why a Z85 conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Z85Error {
    /// Binary input must be a whole number of 4-byte groups.
    #[error("Z85 encodes a multiple of 4 bytes, got {0}")]
    BinaryLength(usize),
    /// Text input must be a whole number of 5-character groups.
    #[error("Z85 text is a multiple of 5 characters, got {0}")]
    TextLength(usize),
    /// A character outside the Z85 alphabet.
    #[error("byte {byte:#04x} at offset {offset} is not a Z85 character")]
    BadCharacter {
        /// Where it is.
        offset: usize,
        /// What it is.
        byte: u8,
    },
    /// A group of five characters whose value does not fit 32 bits.
    #[error("Z85 group at offset {0} overflows 32 bits")]
    Overflow(usize),
}

/// Encodes `data` (a multiple of 4 bytes) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if !data.len().is_multiple_of(4) {
        return Err(Z85Error::BinaryLength(data.len()));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for group in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([group[0], group[1], group[2], group[3]]);
        let mut chars = [0u8; 5];
        for c in chars.iter_mut().rev() {
            *c = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        out.extend(chars.iter().map(|&c| char::from(c)));
    }
    Ok(out)
}

/// Decodes Z85 text (a multiple of 5 characters).
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(5) {
        return Err(Z85Error::TextLength(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / 5 * 4);
    for (g, group) in bytes.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (i, &byte) in group.iter().enumerate() {
            let digit = ALPHABET
                .iter()
                .position(|&c| c == byte)
                .ok_or(Z85Error::BadCharacter {
                    offset: g * 5 + i,
                    byte,
                })?;
            value = value * 85 + digit as u64;
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow(g * 5))?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_32_test_case() {
        let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&data).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), data);
    }

    #[test]
    fn every_byte_value_roundtrips() {
        let data: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decode(&encode(&data).unwrap()).unwrap(), data);
        assert_eq!(encode(&[0; 4]).unwrap(), "00000");
        assert_eq!(encode(&[0xFF; 4]).unwrap(), "%nSc0");
    }

    #[test]
    fn lengths_that_are_not_whole_groups_are_refused() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BinaryLength(3)));
        assert_eq!(decode("abcd"), Err(Z85Error::TextLength(4)));
    }

    #[test]
    fn characters_outside_the_alphabet_and_overflow_are_refused() {
        assert_eq!(
            decode("Hell\"World"),
            Err(Z85Error::BadCharacter {
                offset: 4,
                byte: b'"'
            })
        );
        assert_eq!(decode("#####"), Err(Z85Error::Overflow(0)));
    }
}
