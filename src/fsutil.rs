//! File helpers shared by every reader and writer: reads bounded by the bytes actually
//! read (never by what the file system reports, which is 0 for `/dev/zero` or a FIFO),
//! atomic writes, stale-temporary clean-up and content hashes.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// An I/O failure, with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FsError {
    /// The file or folder involved.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FsError + '_ {
    move |source| FsError {
        path: path.to_path_buf(),
        source,
    }
}

/// The folder `path` lives in (`.` for a bare file name) and its file name.
fn split(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// A fresh temporary path beside `name` in `dir`: `.NAME.tmp.PID.N`. Process id and a
/// counter, because threads of one process may write the same file at once; the process
/// id also lets a later run tell a dead writer's leftovers from a live writer's work.
fn temporary(dir: &Path, name: &str) -> PathBuf {
    sibling(dir, name, "tmp")
}

/// `.NAME.KIND.PID.N` in `dir`, N unique within the process.
fn sibling(dir: &Path, name: &str, kind: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".{name}.{kind}.{}.{n}", std::process::id()))
}

/// Removes the temporaries a killed writer of `dir/name` left (`.NAME.tmp.PID.N` and
/// `.NAME.old.PID.N`, files or folders) whose process is gone. Liveness is read from
/// `/proc`; where there is none (not Linux), nothing is removed rather than risk a live
/// writer's file.
pub fn remove_stale_temporaries(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id().to_string();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = [".tmp.", ".old."]
            .iter()
            .find_map(|k| file.strip_prefix(&format!(".{name}{k}")))
        else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('.') else {
            continue;
        };
        let ours = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit());
        if ours && pid != me && !Path::new("/proc").join(pid).exists() {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Creates the missing ancestors of `dir`; returns the ones it created, outermost first,
/// so that a failed command can remove them again.
fn create_missing(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    Ok(missing)
}

/// Removes folders [`create_missing`] made, innermost first, where they are still empty.
fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// so a reader (or a crash) never sees a half-written file. A failed write leaves nothing
/// behind (not even the folders it created); a killed writer's temporary is removed by
/// the next write of the same path.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let (dir, name) = split(path);
    let created = create_missing(&dir)?;
    remove_stale_temporaries(&dir, &name);
    let tmp = temporary(&dir, &name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename survives a crash only once the folder is synced; some filesystems
        // refuse fsync on folders, and the data itself is already safe, so best effort.
        let _ = std::fs::File::open(&dir).and_then(|d| d.sync_all());
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        remove_created(&created);
    }
    result.map_err(at(path))
}

/// Writes the folder `dir` whole: `fill` writes into a temporary sibling folder, which
/// then replaces `dir` by renames (an older `dir` is moved aside first, then removed).
/// An existing `dir` is replaced only when every entry in it is one `fill` wrote again
/// (an older version of the same output): a folder holding anything else (a mistyped
/// `--out ~`) is refused, never deleted. When `fill` or a rename fails, the temporary
/// folder, and any folder created for it, are removed and `dir` is left as it was.
pub fn write_dir_atomic<E: From<FsError>>(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let (parent, name) = split(dir);
    if dir.exists() && !dir.is_dir() {
        let source = std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists and is not a folder",
        );
        return Err(FsError {
            path: dir.to_path_buf(),
            source,
        }
        .into());
    }
    let created = create_missing(&parent)?;
    remove_stale_temporaries(&parent, &name);
    let tmp = temporary(&parent, &name);
    let result = std::fs::create_dir(&tmp)
        .map_err(|e| E::from(at(&tmp)(e)))
        .and_then(|_| fill(&tmp))
        .and_then(|_| replace_dir(&tmp, dir).map_err(E::from));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        remove_created(&created);
    }
    result
}

/// The names of a folder's entries.
fn entries(dir: &Path) -> Result<std::collections::BTreeSet<std::ffi::OsString>, FsError> {
    let list = std::fs::read_dir(dir).map_err(at(dir))?;
    list.map(|e| e.map(|e| e.file_name()).map_err(at(dir)))
        .collect()
}

/// Moves the finished folder `tmp` to `dir`, replacing an older `dir` that holds nothing
/// but what `tmp` holds.
fn replace_dir(tmp: &Path, dir: &Path) -> Result<(), FsError> {
    let (parent, name) = split(dir);
    if dir.exists() {
        let new = entries(tmp)?;
        let foreign: Vec<String> = entries(dir)?
            .difference(&new)
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        if !foreign.is_empty() {
            let msg = format!(
                "exists and holds files this command does not write ({}): refusing to replace it",
                crate::excerpt::excerpt(foreign.join(", "))
            );
            return Err(FsError {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, msg),
            });
        }
        let old = sibling(&parent, &name, "old");
        std::fs::rename(dir, &old).map_err(at(dir))?;
        if let Err(e) = std::fs::rename(tmp, dir) {
            let _ = std::fs::rename(&old, dir);
            return Err(at(dir)(e));
        }
        std::fs::remove_dir_all(&old).map_err(at(&old))?;
    } else {
        std::fs::rename(tmp, dir).map_err(at(dir))?;
    }
    // The renames survive a crash once the parent folder is synced (best effort).
    let _ = std::fs::File::open(&parent).and_then(|d| d.sync_all());
    Ok(())
}

/// Lowercase hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A file a result depends on, with its hash: what reports and tickets cite.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileHash {
    /// Path as given (relative to the project root when inside it).
    pub path: String,
    /// SHA-256, or a note when the file is generated in memory.
    pub sha256: String,
}

/// Lowercase hex SHA-256 of a file, streamed so large models are not read into memory.
pub fn sha256_file(path: &Path) -> Result<String, FsError> {
    let mut f = std::fs::File::open(path).map_err(at(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(at(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Configuration text (claims, suites, prompts, the registry, `config.json`,
/// `tokenizer.json`, …) larger than this is refused: the largest real one, a Llama 3
/// `tokenizer.json`, is 9 MB.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Corpora (training corpora, the evaluation slice's corpus) larger than this are refused
/// (tinyshakespeare is 1.1 MB).
pub const MAX_CORPUS_BYTES: u64 = 256 << 20;

/// Reads at most `limit` bytes of `path`; a file that holds more is refused once byte
/// `limit + 1` arrives, whatever its metadata says (devices and FIFOs report size 0).
/// The buffer grows with the bytes read and never past `limit + 1`, so memory stays
/// within twice what was actually read, and within twice `limit`.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FsError> {
    let mut f = std::fs::File::open(path).map_err(at(path))?;
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    // A regular file's size is only a hint for the first allocation, never a bound.
    let hint = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf: Vec<u8> = Vec::with_capacity(
        usize::try_from(hint.saturating_add(1))
            .unwrap_or(cap)
            .clamp(8192.min(cap), cap),
    );
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= cap {
                break;
            }
            let grow = buf.capacity().min(cap - buf.len());
            buf.reserve_exact(grow);
        }
        let len = buf.len();
        let room = buf.capacity().min(cap) - len;
        buf.resize(len + room, 0);
        let n = loop {
            match f.read(&mut buf[len..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = n.map_err(|e| {
            buf.truncate(len);
            at(path)(e)
        })?;
        buf.truncate(len + n);
        if n == 0 {
            break;
        }
    }
    if buf.len() as u64 > limit {
        let msg = format!("more than {limit} bytes (the limit for this kind of file)");
        return Err(FsError {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::FileTooLarge, msg),
        });
    }
    Ok(buf)
}

/// The `*.toml` files of `dir`, sorted by name (entries that cannot be read are passed
/// over, as a file that is not there).
pub fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FsError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a UTF-8 text file of at most [`MAX_TEXT_BYTES`], naming the file on failure.
pub fn read_text(path: &Path) -> Result<String, FsError> {
    read_text_bounded(path, MAX_TEXT_BYTES)
}

/// Reads a UTF-8 text file of at most `limit` bytes.
pub fn read_text_bounded(path: &Path, limit: u64) -> Result<String, FsError> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        let msg = format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        );
        FsError {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
        }
    })
}

/// Whether `path` (links followed) is a regular file: formats read by seeking (GGUF,
/// safetensors) refuse devices and FIFOs outright.
pub fn require_regular_file(path: &Path) -> Result<(), FsError> {
    let meta = std::fs::metadata(path).map_err(at(path))?;
    if meta.is_file() {
        return Ok(());
    }
    let what = if meta.is_dir() {
        "a folder"
    } else {
        "not a regular file (a device, FIFO or socket)"
    };
    Err(FsError {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("is {what}")),
    })
}

/// 1-based line number of a byte offset in `text`, for error messages.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/out.json");
        atomic_write(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn reads_are_bounded_by_bytes_read_not_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 100_000]).unwrap();
        assert_eq!(read_bounded(&p, 100_000).unwrap().len(), 100_000);
        let e = read_bounded(&p, 99_999).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::FileTooLarge);
        // /dev/zero reports size 0 and never ends.
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/dev/zero: more than 1048576 bytes"), "{e}");
        std::fs::write(&p, b"ok\xff").unwrap();
        assert!(read_text(&p).unwrap_err().to_string().contains("not UTF-8"));
        assert!(require_regular_file(Path::new("/dev/null")).is_err());
        assert!(require_regular_file(dir.path())
            .unwrap_err()
            .to_string()
            .contains("folder"));
    }

    #[test]
    fn stale_temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = u32::MAX; // above any pid_max
        let names = [
            format!(".x.gguf.tmp.{dead}.0"),
            format!(".x.gguf.old.{dead}.3"),
            format!(".x.gguf.tmp.{}.9", std::process::id()),
            ".x.gguf.tmp.abc.0".into(),
            format!(".y.gguf.tmp.{dead}.0"),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), b"partial").unwrap();
        }
        std::fs::create_dir(dir.path().join(format!(".x.gguf.tmp.{dead}.1"))).unwrap();
        atomic_write(&dir.path().join("x.gguf"), b"whole").unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // Ours (alive), not of our naming, another file's, and the file itself remain.
        let mut want = vec![
            names[2].clone(),
            names[3].clone(),
            names[4].clone(),
            "x.gguf".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is an existing folder: the rename fails after the data was written.
        let target = dir.path().join("new/sub/out");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("keep"), b"").unwrap();
        assert!(atomic_write(&target, b"x").is_err());
        assert_eq!(
            std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
            1
        );
        let nested = dir.path().join("q/r/s");
        let r: Result<(), FsError> = write_dir_atomic(&nested, |tmp| {
            std::fs::write(tmp.join("half"), b"1").unwrap();
            Err(FsError {
                path: tmp.to_path_buf(),
                source: std::io::Error::other("disk full"),
            })
        });
        assert!(r.is_err());
        assert!(
            !dir.path().join("q").exists(),
            "created parents are removed again"
        );
    }

    #[test]
    fn folders_are_replaced_whole_but_only_older_versions_of_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("config.json"), b"old").unwrap();
        let fill = |tmp: &Path| std::fs::write(tmp.join("config.json"), b"{}").map_err(at(tmp));
        write_dir_atomic::<FsError>(&target, fill).unwrap();
        let names: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"]);
        assert_eq!(std::fs::read(target.join("config.json")).unwrap(), b"{}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary or old folder left"
        );
        // A folder with anything else in it is not ours to replace.
        std::fs::write(target.join("notes.txt"), b"mine").unwrap();
        let e = write_dir_atomic::<FsError>(&target, fill)
            .unwrap_err()
            .to_string();
        assert!(e.contains("notes.txt") && e.contains("refusing"), "{e}");
        assert_eq!(std::fs::read(target.join("notes.txt")).unwrap(), b"mine");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the temporary is gone"
        );
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert!(write_dir_atomic::<FsError>(&dir.path().join("file"), |_| Ok(())).is_err());
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
