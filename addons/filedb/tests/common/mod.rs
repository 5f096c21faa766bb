//! Helpers shared by the file store's integration tests: records, and a
//! reader of the documented log format that does not use the crate's own
//! code.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use kinesis::persist::Record;
use serde_json::{json, Map};

/// Bytes of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 16;
/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 12;

/// A small record of `uri` at `version`.
pub(crate) fn record(uri: &str, version: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("n".into(), json!(version));
    Record::new(uri, "test::Probe", version, fields)
}

/// Runs `f` to completion on a fresh current-thread runtime.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// The log segment files (`filedb-*.log`) in `dir`, sorted.
pub(crate) fn log_segments(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".log")
}

/// The files in `dir` whose names end with `suffix` and start with
/// `filedb-`, sorted.
pub(crate) fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("filedb-") && name.ends_with(suffix)
        })
        .collect();
    out.sort();
    out
}

/// `(offset, total length)` of every frame in a segment file, read as
/// documented: a 16-byte header, then `"KFR1" | len u32 | crc u32 | body`
/// until zeros or the end.
pub(crate) fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&bytes[..14], b"kinesis-filedb", "segment header");
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at + FRAME_HEADER_LEN <= bytes.len() && &bytes[at..at + 4] == b"KFR1" {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let total = FRAME_HEADER_LEN + len;
        if at + total > bytes.len() {
            break;
        }
        out.push((at, total));
        at += total;
    }
    out
}

/// Where the frames of a segment file end.
pub(crate) fn frames_end(bytes: &[u8]) -> usize {
    frames(bytes).last().map_or(SEGMENT_HEADER_LEN, |(at, len)| at + len)
}

/// `(kind, version, uri)` of every entry of every frame of a segment file,
/// read as documented: `crc u32 | kind u8 | version u64 | uri_len u16 |
/// data_len u32 | uri | data`; kind 1 is a save, 2 a delete.
pub(crate) fn entries(bytes: &[u8]) -> Vec<(u8, u64, String)> {
    let mut out = Vec::new();
    for (at, len) in frames(bytes) {
        let body = &bytes[at + FRAME_HEADER_LEN..at + len];
        let mut i = 0;
        while i < body.len() {
            let kind = body[i + 4];
            let version = u64::from_le_bytes(body[i + 5..i + 13].try_into().unwrap());
            let uri_len = u16::from_le_bytes(body[i + 13..i + 15].try_into().unwrap()) as usize;
            let data_len = u32::from_le_bytes(body[i + 15..i + 19].try_into().unwrap()) as usize;
            let uri = String::from_utf8(body[i + 19..i + 19 + uri_len].to_vec()).unwrap();
            out.push((kind, version, uri));
            i += 19 + uri_len + data_len;
        }
    }
    out
}
