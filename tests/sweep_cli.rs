//! `sweep corrupt` end to end on the embedded default (a small seeded sweep, seconds):
//! the CSV files and plots are written, every (class, rate) has its seeds, and the
//! classes order as the float format says they must.

use std::path::Path;
use std::process::Command;

#[test]
fn a_small_sweep_writes_its_tables_and_plots_and_orders_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let o = Command::new(env!("CARGO_BIN_EXE_groundtruth"))
        .arg("--root")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args([
            "sweep",
            "corrupt",
            "--model",
            "tiny_1m",
            "--rates",
            "1e7,1e6",
            "--bits",
            "exponent-msb,mantissa-low",
            "--seeds",
            "2",
            "--chunks",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    for f in ["points.csv", "summary.csv", "ppl_ratio.svg", "kl_mean.svg"] {
        assert!(out.join(f).is_file(), "{f} missing: {text}");
    }
    let read = |f: &str| std::fs::read_to_string(Path::new(&out).join(f)).unwrap();
    assert_eq!(read("points.csv").lines().count(), 1 + 2 * 2 * 2);
    assert!(read("kl_mean.svg").contains("exponent-msb"));
    // summary.csv: bits,rate,seeds,flips,ppl_ratio_{median,min,max},kl_mean_{median,min,max},…
    let rows: Vec<Vec<String>> = read("summary.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
            .collect::<Vec<_>>(),
        [
            ("exponent-msb", "1000000", "2"),
            ("exponent-msb", "10000000", "2"),
            ("mantissa-low", "1000000", "2"),
            ("mantissa-low", "10000000", "2")
        ],
        "rates ascending per class"
    );
    let kl_min = |r: &Vec<String>| r[8].parse::<f64>().unwrap();
    let kl_max = |r: &Vec<String>| r[9].parse::<f64>().unwrap();
    // An exponent-MSB flip scales a weight by 2^128; a low-mantissa flip by at most 1 + 2^-13.
    // Every seed of the first must do more damage than every seed of the second, by far.
    for (e, m) in [(&rows[0], &rows[2]), (&rows[1], &rows[3])] {
        assert!(
            kl_min(e) > 1e3 * kl_max(m),
            "exponent-msb {e:?} vs mantissa-low {m:?}"
        );
    }
}
