//! Reading safetensors files strictly and within bounds, before the `safetensors` crate
//! sees them: the header is parsed by hand-written visitors that refuse duplicate keys
//! (serde's maps keep the last one silently, so two readers could disagree on a tensor)
//! and unknown fields, and the file is read only as far as its header says it reaches,
//! into a buffer that grows with the bytes actually read.

use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::error::{io_err, ModelError, Result};
use crate::excerpt::excerpt;

/// Headers larger than this are refused (the `safetensors` crate's own limit).
pub(crate) const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor entry of a header.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TensorEntry {
    pub(crate) dtype: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) data_offsets: [u64; 2],
}

/// A parsed header: tensors in file order and the `__metadata__` strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Header {
    pub(crate) tensors: Vec<(String, TensorEntry)>,
    pub(crate) metadata: Vec<(String, String)>,
}

impl Header {
    /// Where the data section ends, relative to its start.
    fn data_end(&self) -> u64 {
        self.tensors
            .iter()
            .map(|(_, t)| t.data_offsets[1])
            .max()
            .unwrap_or(0)
    }
}

/// A map whose keys must be unique, in file order.
struct Unique<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Unique<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Unique<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with unique keys")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Unique<V>, A::Error> {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!(
                            "duplicate key '{}'",
                            excerpt(&key)
                        )));
                    }
                    out.push((key, map.next_value()?));
                }
                Ok(Unique(out))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// One value of the top-level map: the metadata object or a tensor entry.
enum Item {
    Metadata(Vec<(String, String)>),
    Tensor(TensorEntry),
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a safetensors header object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Header, A::Error> {
                let mut seen = HashSet::new();
                let mut h = Header::default();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!(
                            "duplicate key '{}'",
                            excerpt(&key)
                        )));
                    }
                    let item = match key.as_str() {
                        "__metadata__" => Item::Metadata(map.next_value::<Unique<String>>()?.0),
                        _ => Item::Tensor(map.next_value()?),
                    };
                    match item {
                        Item::Metadata(m) => h.metadata = m,
                        Item::Tensor(t) => h.tensors.push((key, t)),
                    }
                }
                Ok(h)
            }
        }
        d.deserialize_map(HeaderVisitor)
    }
}

fn bad(path: &Path, reason: String) -> ModelError {
    ModelError::Safetensors {
        path: path.to_path_buf(),
        tensor: None,
        reason,
    }
}

/// Reads and parses the header of `path` (reading nothing else); returns it with the
/// header's length in bytes.
fn read_header(path: &Path, f: &mut std::fs::File) -> Result<(Header, u64)> {
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| bad(path, format!("no 8-byte header length ({e})")))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(bad(
            path,
            format!("header length {n} is above the {MAX_HEADER_BYTES}-byte limit"),
        ));
    }
    let mut bytes = Vec::new();
    f.take(n)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 != n {
        return Err(bad(
            path,
            format!(
                "header length {n} runs past the end of the file ({} header bytes)",
                bytes.len()
            ),
        ));
    }
    let header: Header = crate::input::parse_json(&bytes, path)
        .map_err(|e| bad(path, format!("header: {}", e.detail())))?;
    Ok((header, n))
}

/// The header of `path` only.
pub(crate) fn header(path: &Path) -> Result<Header> {
    crate::fsutil::require_regular_file(path).map_err(|e| io_err("read", path)(e.source))?;
    let mut f = std::fs::File::open(path).map_err(io_err("open", path))?;
    Ok(read_header(path, &mut f)?.0)
}

/// The whole file, read only as far as its header says it reaches (one byte more, to
/// refuse trailing bytes), after the header passed the strict parse. The buffer grows with
/// the bytes read, so a header that claims more than the file holds costs nothing.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    crate::fsutil::require_regular_file(path).map_err(|e| io_err("read", path)(e.source))?;
    let mut f = std::fs::File::open(path).map_err(io_err("open", path))?;
    let (header, n) = read_header(path, &mut f)?;
    let total = (8 + n).saturating_add(header.data_end());
    f.seek(SeekFrom::Start(0)).map_err(io_err("read", path))?;
    let mut bytes = Vec::new();
    f.take(total.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    match (bytes.len() as u64).cmp(&total) {
        std::cmp::Ordering::Equal => Ok(bytes),
        std::cmp::Ordering::Less => Err(bad(
            path,
            format!(
                "the header's tensors end at byte {total}, the file has {}",
                bytes.len()
            ),
        )),
        std::cmp::Ordering::Greater => Err(bad(
            path,
            format!("bytes after the last tensor's data (which ends at byte {total})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, header: &str, data: &[u8]) -> std::path::PathBuf {
        let p = dir.join("m.safetensors");
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        std::fs::write(&p, b).unwrap();
        p
    }

    #[test]
    fn a_good_file_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let h = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let p = file(dir.path(), h, &[0; 8]);
        assert_eq!(read_file(&p).unwrap().len(), 8 + h.len() + 8);
        let hd = header(&p).unwrap();
        assert_eq!(hd.metadata, vec![("format".to_string(), "pt".to_string())]);
        assert_eq!(hd.tensors[0].0, "a");
    }

    #[test]
    fn duplicate_keys_are_refused_at_both_levels() {
        let dir = tempfile::tempdir().unwrap();
        let t = r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#;
        let p = file(dir.path(), &format!(r#"{{"a":{t},"a":{t}}}"#), &[0; 8]);
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("duplicate key 'a'"), "{e}");
        let p = file(
            dir.path(),
            &format!(r#"{{"__metadata__":{{"k":"1","k":"2"}},"a":{t}}}"#),
            &[0; 8],
        );
        assert!(header(&p)
            .unwrap_err()
            .to_string()
            .contains("duplicate key 'k'"));
    }

    #[test]
    fn sizes_are_checked_against_the_bytes_present() {
        let dir = tempfile::tempdir().unwrap();
        let h = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8000000000000]}}"#;
        let e = read_file(&file(dir.path(), h, &[0; 8]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the file has"), "{e}");
        let h = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let e = read_file(&file(dir.path(), h, &[0; 9]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bytes after"), "{e}");
        let p = dir.path().join("big");
        std::fs::write(&p, u64::MAX.to_le_bytes()).unwrap();
        assert!(read_file(&p).unwrap_err().to_string().contains("limit"));
        assert!(read_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
    }

    #[test]
    fn trailing_json_and_unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#;
        assert!(header(&file(dir.path(), &format!(r#"{{"a":{t}}}{{}}"#), &[0; 8])).is_err());
        let u = r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}"#;
        assert!(header(&file(dir.path(), &format!(r#"{{"a":{u}}}"#), &[0; 8])).is_err());
    }
}
