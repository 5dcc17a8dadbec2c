//! Messages as lines of text: one message per line, frames separated by a delimiter, and
//! frames that are not printable text written as hex.

use bytes::Bytes;
use ferromq::Message;

/// Turns input lines into messages and received messages into output lines.
#[derive(Debug, Clone)]
pub struct LineCodec {
    delimiter: Vec<u8>,
    hex: bool,
}

impl LineCodec {
    /// A codec splitting on `delimiter` (never empty); with `hex`, every frame is hex both
    /// ways.
    pub fn new(delimiter: Vec<u8>, hex: bool) -> Self {
        debug_assert!(!delimiter.is_empty());
        LineCodec { delimiter, hex }
    }

    /// The message one input line (without its line ending) stands for: one frame per field.
    pub fn parse_line(&self, line: &[u8]) -> Result<Message, String> {
        split(line, &self.delimiter)
            .map(|field| self.parse_field(field))
            .collect()
    }

    /// The bytes one field stands for. Text mode: the field itself, or the bytes it spells
    /// when it is `0x` and an even, non-zero number of hex digits. Hex mode: the hex digits
    /// (an optional `0x` in front), or an error naming the field.
    pub fn parse_field(&self, field: &[u8]) -> Result<Bytes, String> {
        if self.hex {
            let digits = field.strip_prefix(b"0x").unwrap_or(field);
            return decode_hex(digits).map(Bytes::from).ok_or_else(|| {
                format!(
                    "{:?} is not hex (an even number of 0-9a-f digits)",
                    String::from_utf8_lossy(field)
                )
            });
        }
        match hex_field_bytes(field) {
            Some(bytes) => Ok(Bytes::from(bytes)),
            None => Ok(Bytes::copy_from_slice(field)),
        }
    }

    /// The output line for a received message, ending in a newline.
    pub fn format_message(&self, message: &Message) -> Vec<u8> {
        let mut line = Vec::with_capacity(message.byte_len() + message.len() + 1);
        for (i, frame) in message.iter().enumerate() {
            if i > 0 {
                line.extend_from_slice(&self.delimiter);
            }
            if self.hex {
                push_hex(&mut line, frame);
            } else if self.prints_as_text(frame) {
                line.extend_from_slice(frame);
            } else {
                line.extend_from_slice(b"0x");
                push_hex(&mut line, frame);
            }
        }
        line.push(b'\n');
        line
    }

    /// A frame is printed as itself when reading the printed text back gives the same
    /// frame: printable UTF-8, free of the delimiter, and not mistakable for a `0x` field.
    fn prints_as_text(&self, frame: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(frame) else {
            return false;
        };
        !text.chars().any(char::is_control)
            && split(frame, &self.delimiter).nth(1).is_none()
            && hex_field_bytes(frame).is_none()
    }
}

/// The bytes of a text-mode `0x…` field, `None` when the field is ordinary text.
fn hex_field_bytes(field: &[u8]) -> Option<Vec<u8>> {
    let digits = field.strip_prefix(b"0x")?;
    if digits.is_empty() {
        return None;
    }
    decode_hex(digits)
}

/// Pairs of hex digits to bytes; `None` for an odd count or a non-hex character.
fn decode_hex(digits: &[u8]) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
        .collect()
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// Splits `line` at every occurrence of `delimiter` (not empty); always yields at least one
/// field.
fn split<'a>(line: &'a [u8], delimiter: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(delimiter.len())
            .position(|window| window == delimiter)
        {
            Some(at) => {
                rest = Some(&current[at + delimiter.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> LineCodec {
        LineCodec::new(b"\t".to_vec(), false)
    }

    fn frames(message: &Message) -> Vec<&[u8]> {
        message.iter().map(|f| &f[..]).collect()
    }

    #[test]
    fn tab_separates_frames_and_empty_fields_are_empty_frames() {
        let message = text().parse_line(b"id\t\thello").unwrap();
        assert_eq!(frames(&message), [&b"id"[..], b"", b"hello"]);
        assert_eq!(frames(&text().parse_line(b"").unwrap()), [&b""[..]]);
    }

    #[test]
    fn multi_byte_delimiter_splits_fields() {
        let codec = LineCodec::new(b"::".to_vec(), false);
        let message = codec.parse_line(b"a::b:c::").unwrap();
        assert_eq!(frames(&message), [&b"a"[..], b"b:c", b""]);
        assert_eq!(codec.format_message(&message), b"a::b:c::\n");
    }

    #[test]
    fn text_field_with_even_hex_after_0x_is_bytes() {
        let codec = text();
        assert_eq!(
            codec.parse_field(b"0x00ff10").unwrap(),
            &[0u8, 0xff, 0x10][..]
        );
        assert_eq!(codec.parse_field(b"0xABcd").unwrap(), &[0xabu8, 0xcd][..]);
        // Odd digit count, non-hex characters and a bare 0x stay text.
        assert_eq!(codec.parse_field(b"0x123").unwrap(), "0x123");
        assert_eq!(codec.parse_field(b"0xzz").unwrap(), "0xzz");
        assert_eq!(codec.parse_field(b"0x").unwrap(), "0x");
    }

    #[test]
    fn unprintable_frames_print_as_hex_and_read_back_unchanged() {
        let codec = text();
        let message: Message = [
            &b"\x00\x6b\x8b\x45\x67"[..],
            b"caf\xc3\xa9",
            b"tab\there",
            b"0x41",
            b"bell\x07",
            b"",
        ]
        .into_iter()
        .map(Bytes::copy_from_slice)
        .collect();
        let line = codec.format_message(&message);
        assert_eq!(
            line,
            b"0x006b8b4567\tcaf\xc3\xa9\t0x7461620968657265\t0x30783431\t0x62656c6c07\t\n"
        );
        let back = codec.parse_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn hex_mode_reads_and_prints_every_frame_as_hex() {
        let codec = LineCodec::new(b"\t".to_vec(), true);
        let message = codec.parse_line(b"68690a\t0x00\t").unwrap();
        assert_eq!(frames(&message), [&b"hi\n"[..], b"\x00", b""]);
        assert_eq!(codec.format_message(&message), b"68690a\t00\t\n");
    }

    #[test]
    fn hex_mode_rejects_non_hex_field_naming_it() {
        let codec = LineCodec::new(b"\t".to_vec(), true);
        let error = codec.parse_line(b"00\thello").unwrap_err();
        assert!(error.contains("\"hello\""), "{error}");
        assert!(codec.parse_field(b"abc").is_err());
    }
}
