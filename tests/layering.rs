//! The floors of the house: no module of `src/` imports one that stands above it in the
//! data flow, so every arrow runs one way and no cycle crosses folders.
//!
//! fsutil/rng → model/tokenizer → transform/oracle/stats → claim → run → judge → report →
//! the drivers (plan, check) → cli. Test code is exempt (a tokenizer test may read an
//! oracle file to compare with).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module's floor; a module may import its own floor and those below.
const FLOORS: &[(&str, u8)] = &[
    ("fsutil", 0),
    ("rng", 0),
    ("jsonnum", 0),
    ("input", 0),
    ("memo", 0),
    ("project", 0),
    ("excerpt", 0),
    ("builtin", 0),
    ("chart", 0),
    ("gguf_guard", 1),
    ("device", 1),
    ("variant", 1),
    ("flipspec", 1),
    ("prompts", 1),
    ("model", 2),
    ("tokenizer", 2),
    ("runtime", 2),
    ("stored", 3),
    ("transform", 3),
    ("integrity", 3),
    ("oracle", 3),
    ("stats", 3),
    ("inspect", 3),
    ("train", 3),
    // Trace metrics (tags, records, SF/SC scores, bootstrap intervals) and the arithmetic
    // problems SFT learns from: below subject and train's SFT, above stats.
    ("metrics", 3),
    ("problems", 3),
    ("subject", 4),
    ("claim", 5),
    ("run", 6),
    ("sweep", 6),
    ("outcome", 7),
    ("judge", 8),
    ("report", 9),
    ("plan", 10),
    ("check", 10),
    ("cli", 11),
];

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // Test folders and fixtures are not part of the floors.
            if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("tests" | "testdata" | "snapshots")
            ) {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name()
                .is_some_and(|n| n != "tests.rs" && n != "testutil.rs")
        {
            out.push(p);
        }
    }
}

/// The text of a file without its top-level `#[cfg(test)]` items: a one-line item
/// (`mod runtime_tests;`) is that line; a braced one (`mod tests {`) ends at the first line
/// that is `}` alone, since rustfmt (`cargo fmt --check` in CI) indents everything inside
/// it. Code after a test item is scanned like any other.
fn production_code(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]\n";
    let mut out = String::new();
    let mut rest = text;
    loop {
        let at = if rest.starts_with(MARK) {
            Some(0)
        } else {
            rest.find(&format!("\n{MARK}")).map(|i| i + 1)
        };
        let Some(i) = at else { break };
        out.push_str(&rest[..i]);
        let item = &rest[i + MARK.len()..];
        let first = item.lines().next().unwrap_or("");
        let len = if first.trim_end().ends_with('{') {
            item.find("\n}\n").map_or(item.len(), |j| j + "\n}\n".len())
        } else {
            first.len()
        };
        rest = &item[len..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a piece of code names through `crate::`.
fn imports(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        // `crate::{a::{B, C}, d}`: the first name of each item at depth 0.
        let (mut depth, mut start) = (0usize, 0usize);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push(ident(&group[start..j]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(ident(&group[start..j]));
                    start = j + 1;
                }
                _ => {}
            }
        }
    }
    out.retain(|m| m.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(first.as_str(), "lib" | "main") {
            continue;
        }
        let Some(own) = floor(&first) else {
            unknown.push(first);
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for m in imports(&production_code(&text)) {
            match floor(&m) {
                Some(theirs) if theirs > own => upward
                    .entry(format!("{} ({own})", rel.display()))
                    .or_default()
                    .push(format!("{m} ({theirs})")),
                Some(_) => {}
                None => unknown.push(format!("{m} (named in {})", rel.display())),
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules without a floor in FLOORS: {unknown:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that run up the floors:\n{upward:#?}"
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_imports() {
    let code = "use crate::{claim::{Case, Kind}, report};\nfn f() { crate::judge::x(); }\n#[cfg(test)]\nmod tests { use crate::cli; }";
    assert_eq!(
        imports(&production_code(code)),
        ["claim", "report", "judge"]
    );
}

#[test]
fn code_after_a_test_item_is_still_scanned() {
    // An out-of-line test module declared before production code (src/train/mod.rs does).
    let code = "mod a;\n#[cfg(test)]\nmod runtime_tests;\npub use crate::report::X;\n";
    assert_eq!(imports(&production_code(code)), ["report"]);
    let code = "#[cfg(test)]\nmod tests {\n    use crate::cli;\n    fn f() {\n    }\n}\nuse crate::plan::P;\n";
    assert_eq!(imports(&production_code(code)), ["plan"]);
    // A test item inside a function is not top-level: nothing after it is skipped.
    let code = "fn f() {\n    #[cfg(test)]\n    g();\n}\nuse crate::judge::J;\n";
    assert_eq!(imports(&production_code(code)), ["judge"]);
}

/// The README's architecture section, from its heading to the next one.
fn architecture_section(readme: &str) -> &str {
    let start = readme
        .find("\n## Architecture\n")
        .expect("README.md has an '## Architecture' section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[test]
fn the_readme_architecture_lists_every_module_in_floor_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = architecture_section(&readme);
    // Every module of src/ (a folder or a file; lib, main and test-only files aside) has a
    // floor, and the README names each one, as `name`, in the order of the floors.
    let mut on_disk: Vec<String> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            match (p.is_dir(), name.strip_suffix(".rs")) {
                (true, _) => Some(name),
                (false, Some(stem)) => Some(stem.to_string()),
                (false, None) => None,
            }
        })
        .filter(|m| !matches!(m.as_str(), "lib" | "main" | "testutil"))
        .collect();
    on_disk.sort();
    on_disk.dedup();
    let mut floored: Vec<String> = FLOORS.iter().map(|(m, _)| m.to_string()).collect();
    floored.sort();
    assert_eq!(on_disk, floored, "src/ and FLOORS list different modules");
    let position = |m: &str| section.find(&format!("`{m}`"));
    let missing: Vec<&str> = FLOORS
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| position(m).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's architecture section does not name {missing:?}"
    );
    // A module named after one on a higher floor would tell the data flow backwards.
    for (a, fa) in FLOORS {
        for (b, fb) in FLOORS {
            if fa < fb {
                assert!(
                    position(a) < position(b),
                    "README.md names `{b}` (floor {fb}) before `{a}` (floor {fa})"
                );
            }
        }
    }
}
