//! `codec_roundtrip`: multipart messages through `WriteBuf` and back through `FrameDecoder`
//! under arbitrary chunking.

use super::*;

#[derive(Arbitrary, Debug)]
enum EncodeVia {
    PushMessage,
    PushFrames,
    Append,
}

#[derive(Arbitrary, Debug)]
struct CodecInput {
    max: Option<MaxSize>,
    messages: Vec<(EncodeVia, Vec<(Size, u8)>)>,
    iovecs: u8,
    drain: Vec<u16>,
    chunks: Vec<u16>,
}

/// `codec_roundtrip` target: multipart messages of arbitrary frame sizes (short, long, past
/// 1 MiB) encoded with `WriteBuf` (`push_message`, `push_frame`, `append`) give exactly the
/// reference bytes, drain exactly through `chunks_vectored`/`advance` in arbitrary steps, and
/// decode with `FrameDecoder` under arbitrary chunking back to the same frames; with a
/// maximum, the first frame over it is refused with `MessageTooLarge` from its header, after
/// every earlier frame was delivered, and no pending body is ever over the maximum.
pub fn codec_roundtrip(data: &[u8]) {
    codec_roundtrip_report(data);
}

/// What a `codec_roundtrip` run reached, for coverage statistics.
#[derive(Debug, Default, Clone)]
pub struct CodecReport {
    /// Frames encoded.
    pub frames: usize,
    /// Largest frame body encoded.
    pub largest_frame: usize,
    /// Frames decoded.
    pub decoded: usize,
    /// Whether a frame over the maximum was refused.
    pub refused: bool,
}

/// `codec_roundtrip` with a report of what it reached; `None` for undecodable input.
pub fn codec_roundtrip_report(data: &[u8]) -> Option<CodecReport> {
    let input = structured::<CodecInput>(data)?;
    let max = input.max.as_ref().map(|m| match *m {
        MaxSize::Pow(p) => 1u64 << (p % 24),
        MaxSize::Exact(n) => u64::from(n),
    });

    // Encode, and build the reference bytes and the frames expected.
    let mut out = WriteBuf::new();
    let mut reference = Vec::new();
    let mut frames: Vec<(bool, Bytes)> = Vec::new();
    for (via, specs) in &input.messages {
        if reference.len() > MAX_SCRIPT_STREAM_BYTES {
            break;
        }
        let bodies: Vec<Bytes> = specs
            .iter()
            .map(|(size, seed)| pattern_body(size.len(), *seed))
            .collect();
        let message: Message = bodies.iter().cloned().collect();
        assert_eq!(message.len(), bodies.len());
        for (i, body) in bodies.iter().enumerate() {
            let more = i + 1 < bodies.len();
            let flags = if more { FLAG_MORE } else { 0 };
            if body.len() <= 255 {
                reference.extend_from_slice(&[flags, body.len() as u8]);
            } else {
                reference.push(flags | FLAG_LONG);
                reference.extend_from_slice(&(body.len() as u64).to_be_bytes());
            }
            reference.extend_from_slice(body);
            frames.push((more, body.clone()));
        }
        match via {
            EncodeVia::PushMessage => out.push_message(&message),
            EncodeVia::PushFrames => {
                for (i, body) in message.frames().iter().enumerate() {
                    let flags = if i + 1 < message.len() { FLAG_MORE } else { 0 };
                    out.push_frame(flags, body);
                }
            }
            EncodeVia::Append => {
                let mut other = WriteBuf::new();
                other.push_message(&message);
                out.append(&mut other);
                assert!(other.is_empty(), "append left bytes behind");
            }
        }
        assert_eq!(out.len(), reference.len(), "WriteBuf::len");
    }
    assert_eq!(out.is_empty(), reference.is_empty());
    assert_eq!(
        &out.to_bytes()[..],
        &reference[..],
        "encoding differs from the reference"
    );

    // Drain as the engine does: vectored slices, then advance by what a write accepted.
    let iovecs = usize::from(input.iovecs % 8) + 1;
    let mut drained = Vec::with_capacity(reference.len());
    let mut steps = Chunker::new(input.drain.clone(), reference.len());
    while !out.is_empty() {
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        let n = out.chunks_vectored(&mut slices[..iovecs]);
        assert!(n > 0, "non-empty WriteBuf gave no slices");
        let mut want = steps.next();
        let mut taken = 0;
        for slice in &slices[..n] {
            let k = slice.len().min(want);
            drained.extend_from_slice(&slice[..k]);
            want -= k;
            taken += k;
            if want == 0 {
                break;
            }
        }
        let before = out.len();
        out.advance(taken);
        assert_eq!(out.len(), before - taken);
    }
    out.shrink_if_empty();
    assert_eq!(
        &drained[..],
        &reference[..],
        "drained bytes differ from the encoding"
    );

    // Decode in chunks.
    let mut decoder = FrameDecoder::new(max);
    let mut chunker = Chunker::new(input.chunks.clone(), reference.len());
    let mut buf = BytesMut::new();
    let mut got = 0;
    let mut fed = 0;
    let refused_at = max.and_then(|m| frames.iter().position(|(_, b)| b.len() as u64 > m));
    'feed: while fed < reference.len() {
        let n = chunker.next().min(reference.len() - fed);
        buf.extend_from_slice(&reference[fed..fed + n]);
        fed += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let (more, body) = &frames[got];
                    assert_ne!(Some(got), refused_at, "oversize frame {got} decoded");
                    assert_eq!(
                        (frame.more, frame.command),
                        (*more, false),
                        "frame {got} flags"
                    );
                    assert!(frame.body == body, "frame {got} body differs");
                    got += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(Some(got), refused_at, "refused frame {got}: {e}");
                    let len = frames[got].1.len() as u64;
                    assert_eq!(
                        e,
                        ProtocolError::MessageTooLarge {
                            len,
                            max: max.expect("refused only with a maximum")
                        }
                    );
                    break 'feed;
                }
            }
        }
        if let Some(pending) = decoder.pending_body_len() {
            assert!(
                max.is_none_or(|m| pending as u64 <= m),
                "pending body past max"
            );
            assert!(buf.len() < pending, "whole pending body left in the buffer");
        } else {
            assert!(
                buf.len() < MAX_HEADER_BYTES,
                "whole header left in the buffer"
            );
        }
    }
    match refused_at {
        Some(at) => assert_eq!(got, at, "frames before the refused one"),
        None => {
            assert_eq!(got, frames.len(), "not every frame decoded");
            assert!(
                decoder.is_idle() && buf.is_empty(),
                "decoder not idle at the end"
            );
        }
    }
    Some(CodecReport {
        frames: frames.len(),
        largest_frame: frames.iter().map(|(_, b)| b.len()).max().unwrap_or(0),
        decoded: got,
        refused: refused_at.is_some(),
    })
}
