//! The bytes of the log: segment headers, commit frames and entries.
//!
//! ```text
//! segment   = HEADER (16 bytes: "kinesis-filedb", 0, format 1) frame* zero*
//! frame     = "KFR1" | len: u32 | crc: u32 | body (len bytes)
//!             crc = CRC-32 of len (4 bytes, little endian) followed by body
//! body      = entry+
//! entry     = crc: u32 | kind: u8 | version: u64 | uri_len: u16 | data_len: u32
//!             | uri (UTF-8) | data
//!             crc = CRC-32 of everything in the entry after the crc itself
//! ```
//!
//! Integers are little endian. `kind` is [`PUT`] (data is the record as
//! compact JSON) or [`DELETE`] (a tombstone: no data, `version` is the
//! version that was deleted). One frame holds the entries of one group
//! commit and is written with one `write` and made durable with one
//! `fdatasync`, so a commit is all or nothing: a frame torn by a crash fails
//! its checksum as a whole. Each entry carries its own checksum too, so a
//! load that reads one entry back checks it without reading the frame.
//!
//! A zero byte can never start a frame, so the zeros of a preallocated
//! segment tail read as "end of log".

/// The first bytes of every segment file.
pub(crate) const SEGMENT_HEADER: [u8; 16] = *b"kinesis-filedb\x00\x01";
/// Length of [`SEGMENT_HEADER`]: where the first frame starts.
pub(crate) const SEGMENT_HEADER_LEN: u64 = SEGMENT_HEADER.len() as u64;

/// The bytes that open every frame.
pub(crate) const FRAME_MAGIC: [u8; 4] = *b"KFR1";
/// Bytes of a frame header: magic, length, checksum.
pub(crate) const FRAME_HEADER_LEN: usize = 12;
/// Bytes of an entry header: checksum, kind, version, URI length, data length.
pub(crate) const ENTRY_HEADER_LEN: usize = 19;

/// Entry kind: the record's new value.
pub(crate) const PUT: u8 = 1;
/// Entry kind: the record was deleted.
pub(crate) const DELETE: u8 = 2;

/// One entry, as read from a frame body or a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    /// [`PUT`] or [`DELETE`].
    pub(crate) kind: u8,
    /// The record's version (for a tombstone: the version deleted).
    pub(crate) version: u64,
    /// The record's URI.
    pub(crate) uri: &'a str,
    /// The record as JSON (empty for a tombstone).
    pub(crate) data: &'a [u8],
}

/// Appends one entry to `out`; returns its length in bytes.
pub(crate) fn encode_entry(
    out: &mut Vec<u8>,
    kind: u8,
    version: u64,
    uri: &str,
    data: &[u8],
) -> u32 {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&version.to_le_bytes());
    // Callers check the bounds first (`name::check` and the record size limit).
    out.extend_from_slice(&(uri.len() as u16).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(uri.as_bytes());
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    (out.len() - start) as u32
}

/// Decodes the entry at the start of `bytes`; returns it and its length.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<(Entry<'_>, usize), String> {
    if bytes.len() < ENTRY_HEADER_LEN {
        return Err(format!(
            "an entry header needs {ENTRY_HEADER_LEN} bytes, {} left",
            bytes.len()
        ));
    }
    let crc = u32_at(bytes, 0);
    let kind = bytes[4];
    let version = u64::from(u32_at(bytes, 5)) | (u64::from(u32_at(bytes, 9)) << 32);
    let uri_len = usize::from(u16::from_le_bytes([bytes[13], bytes[14]]));
    let data_len = u32_at(bytes, 15) as usize;
    let len = ENTRY_HEADER_LEN + uri_len + data_len;
    if bytes.len() < len {
        return Err(format!("an entry of {len} bytes, only {} left", bytes.len()));
    }
    if crc32fast::hash(&bytes[4..len]) != crc {
        return Err("entry checksum mismatch".into());
    }
    if kind != PUT && kind != DELETE {
        return Err(format!("unknown entry kind {kind}"));
    }
    let uri_end = ENTRY_HEADER_LEN + uri_len;
    let uri = std::str::from_utf8(&bytes[ENTRY_HEADER_LEN..uri_end])
        .map_err(|_| "the entry's URI is not UTF-8".to_owned())?;
    Ok((Entry { kind, version, uri, data: &bytes[uri_end..len] }, len))
}

/// Reserves room for a frame header at the end of `out`; returns where the
/// frame starts, for [`finish_frame`].
pub(crate) fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    start
}

/// Fills in the header of the frame begun at `start`, whose body is the rest
/// of `out`.
pub(crate) fn finish_frame(out: &mut [u8], start: usize) {
    let body_len = (out.len() - start - FRAME_HEADER_LEN) as u32;
    let len = body_len.to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(&out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&FRAME_MAGIC);
    out[start + 4..start + 8].copy_from_slice(&len);
    out[start + 8..start + 12].copy_from_slice(&hasher.finalize().to_le_bytes());
}

/// What is found at one position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// A whole frame with a good checksum: its body is
    /// `bytes[body_start..next]`.
    Frame {
        /// Where the body starts.
        body_start: usize,
        /// Where the next frame would start.
        next: usize,
    },
    /// Zeros (or nothing): the end of the log in this segment.
    End,
    /// Not a whole, valid frame.
    Bad(String),
}

/// Reads the frame header at `at` and checks the frame.
pub(crate) fn frame_at(bytes: &[u8], at: usize) -> Found {
    let rest = &bytes[at.min(bytes.len())..];
    if rest.len() < FRAME_HEADER_LEN {
        return if rest.iter().all(|&b| b == 0) {
            Found::End
        } else {
            Found::Bad(format!("{} bytes, too few for a frame header", rest.len()))
        };
    }
    if rest[..FRAME_HEADER_LEN].iter().all(|&b| b == 0) {
        return Found::End;
    }
    if rest[..4] != FRAME_MAGIC {
        return Found::Bad("no frame starts here".into());
    }
    let len = u32_at(rest, 4) as usize;
    let crc = u32_at(rest, 8);
    if rest.len() - FRAME_HEADER_LEN < len {
        return Found::Bad(format!(
            "a frame of {len} bytes, only {} left in the file",
            rest.len() - FRAME_HEADER_LEN
        ));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rest[4..8]);
    hasher.update(&rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len]);
    if hasher.finalize() != crc {
        return Found::Bad("frame checksum mismatch".into());
    }
    if len == 0 {
        return Found::Bad("an empty frame".into());
    }
    Found::Frame { body_start: at + FRAME_HEADER_LEN, next: at + FRAME_HEADER_LEN + len }
}

/// The first position after `from` where a valid frame starts, if any:
/// tells a torn tail (nothing valid after it) from damage in the middle.
pub(crate) fn next_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + FRAME_HEADER_LEN <= bytes.len() {
        let window = &bytes[at..];
        let found = window.windows(4).position(|w| w == FRAME_MAGIC)?;
        at += found;
        if matches!(frame_at(bytes, at), Found::Frame { .. }) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Every entry of a frame body, with its offset in the body and its length.
pub(crate) fn entries(
    body: &[u8],
) -> impl Iterator<Item = Result<(usize, Entry<'_>, usize), String>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        match decode_entry(&body[at..]) {
            Ok((entry, len)) => {
                let item = (at, entry, len);
                at += len;
                Some(Ok(item))
            }
            Err(e) => {
                at = body.len();
                Some(Err(e))
            }
        }
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(entries: &[(u8, u64, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_frame(&mut out);
        for (kind, version, uri, data) in entries {
            encode_entry(&mut out, *kind, *version, uri, data);
        }
        finish_frame(&mut out, start);
        out
    }

    #[test]
    fn a_frame_round_trips() {
        let bytes = frame_of(&[(PUT, 3, "/a", b"{}"), (DELETE, 7, "/b", b"")]);
        let Found::Frame { body_start, next } = frame_at(&bytes, 0) else { panic!() };
        assert_eq!(next, bytes.len());
        let got: Vec<_> = entries(&bytes[body_start..next]).map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, Entry { kind: PUT, version: 3, uri: "/a", data: b"{}" });
        assert_eq!(got[1].1, Entry { kind: DELETE, version: 7, uri: "/b", data: b"" });
        assert_eq!(got[1].0, got[0].2);
    }

    #[test]
    fn zeros_end_the_log_and_any_flipped_bit_is_bad() {
        assert_eq!(frame_at(&[0; 40], 0), Found::End);
        assert_eq!(frame_at(&[0; 5], 0), Found::End);
        assert_eq!(frame_at(&[], 0), Found::End);
        let good = frame_of(&[(PUT, 1, "/x", b"{\"a\":1}")]);
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(frame_at(&bad, 0), Found::Bad(_)), "bit {bit} went unnoticed");
        }
        assert!(matches!(frame_at(&good[..good.len() - 1], 0), Found::Bad(_)));
    }

    #[test]
    fn a_valid_frame_is_found_after_garbage() {
        let mut bytes = b"garbage KFR1 more garbage".to_vec();
        let at = bytes.len();
        bytes.extend(frame_of(&[(PUT, 1, "/x", b"{}")]));
        assert_eq!(next_valid_frame(&bytes, 0), Some(at));
        assert_eq!(next_valid_frame(&bytes, at + 1), None);
    }

    #[test]
    fn a_damaged_entry_is_refused() {
        let mut out = Vec::new();
        encode_entry(&mut out, PUT, 1, "/x", b"{}");
        assert!(decode_entry(&out).is_ok());
        out[20] ^= 4;
        assert!(decode_entry(&out).unwrap_err().contains("checksum"));
    }
}
