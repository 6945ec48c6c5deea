//! JUnit XML of a run (`groundtruth run --junit FILE`), the format CI systems read: one
//! `<testcase>` per case, a falsified case a `<failure>`, an error an `<error>`, a skip
//! `<skipped>` with its reason (never a pass).

use super::record::Report;
use super::ticket::{fingerprint, ticket_file_name};
use crate::outcome::Outcome;
use std::fmt::Write;

/// Escapes text for an XML attribute or element (control characters other than tab and
/// newline are not allowed in XML 1.0, so they become U+FFFD).
pub(super) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The run as JUnit XML: one `<testsuite>` named after the suite, cases in report order,
/// class name = claim kind.
pub fn junit_xml(report: &Report) -> String {
    let (p, f, s, e) = report.counts();
    let total: f64 = report.cases.iter().map(|c| c.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let name = xml_escape(&format!("groundtruth.{}", report.suite));
    let _ = writeln!(x, "<testsuites name=\"{name}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{total:.3}\">", p + f + s + e);
    let _ = writeln!(x, "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{total:.3}\">", p + f + s + e);
    for c in &report.cases {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(&c.kind),
            xml_escape(&c.name),
            c.seconds
        );
        match &c.outcome {
            Outcome::Pass(_) => x.push_str("/>\n"),
            Outcome::Fail(ev) => {
                let body = format!(
                    "{}\ncriterion: {}\nfingerprint: {}\nticket: tickets/{}\nreproduce: {}",
                    c.statement,
                    c.criterion,
                    fingerprint(c).unwrap_or_default(),
                    ticket_file_name(&c.name),
                    c.reproduce
                );
                let _ = write!(x, ">\n      <failure type=\"falsified\" message=\"{}\">{}</failure>\n    </testcase>\n", xml_escape(&ev.summary()), xml_escape(&body));
            }
            Outcome::Skip(r) => {
                let _ = write!(
                    x,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(&r.to_string())
                );
            }
            Outcome::Error { message } => {
                let _ = write!(
                    x,
                    ">\n      <error type=\"error\" message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(message)
                );
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_xml_forbids() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}\n"
        );
    }

    #[test]
    fn a_failed_case_is_a_failure_with_its_evidence_and_the_counts_add_up() {
        let report = crate::report::html::tests::sample_report();
        let x = junit_xml(&report);
        let (p, f, s, e) = report.counts();
        assert!(
            f == 1 && s == 1 && p >= 1 && e == 0,
            "{:?}",
            report.counts()
        );
        assert!(
            x.contains(&format!(
                "tests=\"{}\" failures=\"1\" errors=\"0\" skipped=\"1\"",
                p + f + s + e
            )),
            "{x}"
        );
        assert_eq!(x.matches("<testcase ").count(), report.cases.len());
        assert_eq!(x.matches("<failure ").count(), 1);
        assert!(
            x.contains("classname=\"greedy_parity\"") && x.contains("fingerprint: gt-"),
            "{x}"
        );
        assert!(x.contains("<skipped message="), "{x}");
    }
}
