//! `groundtruth ticket --gh`: files each ticket of a report as a GitHub issue with the
//! `gh` CLI, once. A ticket whose fingerprint an open issue labelled `groundtruth` already
//! carries is skipped, so a weekly run files a bug the first week and stays quiet while it
//! is open.

use crate::plan::EXIT_HOLDS;
use crate::report::{dedup_tickets, Report, Ticket};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The label every filed issue carries, next to its claim kind.
const LABEL: &str = "groundtruth";

/// The `gh` program: `$GROUNDTRUTH_GH`, else `gh` on PATH.
fn gh_program() -> String {
    std::env::var("GROUNDTRUTH_GH")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "gh".into())
}

/// Runs a read-only or filing `gh` command and returns its stdout.
fn gh(args: &[String]) -> Result<String> {
    let program = gh_program();
    let out = Command::new(&program).args(args).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "{program}: not found on PATH; install GitHub's CLI (https://cli.github.com) and run `gh auth login`, or leave out --gh to print the tickets"
        ),
        _ => anyhow::anyhow!("{program}: {e}"),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{}` failed ({}): {}",
            shell_line(&program, args),
            out.status,
            err.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
        );
    }
    String::from_utf8(out.stdout)
        .with_context(|| format!("`{}` printed non-UTF-8", shell_line(&program, args)))
}

/// A command line as a shell would need it typed.
fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn with_repo(mut args: Vec<String>, repo: Option<&str>) -> Vec<String> {
    if let Some(r) = repo {
        args.extend(["--repo".into(), r.into()]);
    }
    args
}

/// The open `groundtruth` issues' `(number, body)`. A label filter, not a search: GitHub's
/// search index lags behind issue creation, so a search could miss an issue filed a
/// moment ago (by the previous shard's call) and file it twice.
fn open_issues(repo: Option<&str>) -> Result<Vec<(u64, String)>> {
    let args: Vec<String> = [
        "issue",
        "list",
        "--state",
        "open",
        "--label",
        LABEL,
        "--limit",
        "1000",
        "--json",
        "number,body",
    ]
    .map(String::from)
    .to_vec();
    let text = gh(&with_repo(args, repo))?;
    #[derive(serde::Deserialize)]
    struct Issue {
        number: u64,
        body: String,
    }
    let issues: Vec<Issue> = serde_json::from_str(&text).with_context(|| {
        "`gh issue list --json number,body` printed something that is not a list of issues"
    })?;
    Ok(issues.into_iter().map(|i| (i.number, i.body)).collect())
}

fn existing_labels(repo: Option<&str>) -> Result<Vec<String>> {
    let args: Vec<String> = ["label", "list", "--limit", "1000", "--json", "name"]
        .map(String::from)
        .to_vec();
    let text = gh(&with_repo(args, repo))?;
    #[derive(serde::Deserialize)]
    struct Label {
        name: String,
    }
    let labels: Vec<Label> = serde_json::from_str(&text).with_context(|| {
        "`gh label list --json name` printed something that is not a list of labels"
    })?;
    Ok(labels.into_iter().map(|l| l.name).collect())
}

/// Files the report's new tickets (bodies written to `dir/<fingerprint>.md`); with
/// `dry_run`, reads the open issues and labels but only prints the commands that would
/// create anything.
pub(super) fn file_tickets(
    report: &Report,
    dir: &Path,
    repo: Option<&str>,
    dry_run: bool,
) -> Result<u8> {
    let tickets = dedup_tickets(report);
    if tickets.is_empty() {
        errln!("no falsified case in the report: nothing to file");
        return Ok(EXIT_HOLDS);
    }
    let open = open_issues(repo)?;
    let mut fresh: Vec<&Ticket> = Vec::new();
    for t in &tickets {
        match open.iter().find(|(_, body)| body.contains(&t.fingerprint)) {
            Some((n, _)) => outln!("skip  {}  already open as #{n}: {}", t.fingerprint, t.title),
            None => fresh.push(t),
        }
    }
    create_labels(&fresh, repo, dry_run)?;
    for t in &fresh {
        file_one(t, dir, repo, dry_run)?;
    }
    errln!(
        "{} ticket(s): {} {}, {} already open",
        tickets.len(),
        fresh.len(),
        if dry_run {
            "would be filed (dry run)"
        } else {
            "filed"
        },
        tickets.len() - fresh.len()
    );
    Ok(EXIT_HOLDS)
}

/// Creates the labels the fresh tickets use (groundtruth and each claim kind) that the
/// repository lacks.
fn create_labels(fresh: &[&Ticket], repo: Option<&str>, dry_run: bool) -> Result<()> {
    let mut labels: Vec<&str> = std::iter::once(LABEL)
        .chain(fresh.iter().map(|t| t.kind.as_str()))
        .collect();
    labels.sort();
    labels.dedup();
    if !fresh.is_empty() {
        let have = existing_labels(repo)?;
        for l in labels.iter().filter(|l| !have.iter().any(|h| h == *l)) {
            let description = match *l {
                LABEL => "Filed by groundtruth: a pre-registered claim was falsified".to_string(),
                kind => format!("groundtruth claim kind {kind}"),
            };
            let args = with_repo(
                [
                    "label",
                    "create",
                    l,
                    "--color",
                    "B60205",
                    "--description",
                    &description,
                ]
                .map(String::from)
                .to_vec(),
                repo,
            );
            run_or_print(&args, dry_run)?;
        }
    }
    Ok(())
}

/// Writes one ticket's body beside the report and files it as an issue.
fn file_one(t: &Ticket, dir: &Path, repo: Option<&str>, dry_run: bool) -> Result<()> {
    let body = dir.join(format!("{}.md", t.fingerprint));
    crate::fsutil::atomic_write(&body, t.markdown.as_bytes())?;
    let args = with_repo(
        [
            "issue",
            "create",
            "--title",
            &t.title,
            "--body-file",
            &body.display().to_string(),
            "--label",
            LABEL,
            "--label",
            &t.kind,
        ]
        .map(String::from)
        .to_vec(),
        repo,
    );
    let url = run_or_print(&args, dry_run)?;
    if !dry_run {
        outln!("filed {}  {}", t.fingerprint, url.trim());
    }
    Ok(())
}

fn run_or_print(args: &[String], dry_run: bool) -> Result<String> {
    if dry_run {
        outln!("{}", shell_line(&gh_program(), args));
        return Ok(String::new());
    }
    gh(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_print_as_a_shell_reads_them() {
        let args: Vec<String> = [
            "issue",
            "create",
            "--title",
            "quant_drift: claim QD-1 falsified on m/q8_0",
            "--body-file",
            "it's.md",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(shell_line("gh", &args), "gh issue create --title 'quant_drift: claim QD-1 falsified on m/q8_0' --body-file 'it'\\''s.md'");
        assert_eq!(quote(""), "''");
    }
}
