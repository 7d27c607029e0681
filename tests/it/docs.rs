//! The docs are tested: every ```console block of README.md and docs/*.md runs against the real binary
//! and a private database, and its output must be what the page shows, so the examples cannot rot.
//!
//! The convention (docs/commands.md, "The examples are tested", says it for readers):
//!
//! - ```` ```console ```` blocks run. A line starting with `$ ` is a command; lines starting with `> `
//!   right after it continue it (a heredoc, a long command); the lines up to the next `$ ` are what it
//!   prints, stdout and stderr together, in order. A last line `[exit N]` says it exits N; without one
//!   it must exit 0. Blank lines at the end of an output are not compared.
//! - In expected output, a line `...` stands for any number of lines, and `<TIME>` (a date and time),
//!   `<DURATION>` (`0s`, `1h39m`, `24m 12s`), `<NUMBER>`, `<VERSION>` and `<ANY>` (any text) stand for
//!   what changes between runs; the directory a group runs in prints as `<TMP>`. Runs of spaces compare
//!   as one space after the indentation, so a masked value of another width does not break a table.
//! - The blocks of one file run in order in one bash session, in a fresh temporary directory holding
//!   copies of `nodes.yaml.example` and of `docs/examples/*`, with the binary under test first on PATH
//!   as `molteniron` and `MOLTENIRON_DATABASE_URL` naming a fresh migrated database of their own
//!   (`MOLTENIRON_CONFIG=/dev/null`). ```` ```console session=NAME ```` puts a block in another group,
//!   with its own session, directory and database; `db=empty` on a group's first block makes that
//!   database an empty one with no schema (for `migrate`).
//! - Every other block is never run. A ```` ```sh ````/```` ```bash ```` block that runs `molteniron`,
//!   and any block outside ```` ```console ```` with a `$ ` prompt line, must say so with `illustration`
//!   after its language (```` ```sh illustration ````): it needs what a test cannot have (Jenkins, a
//!   BMC, a production server, /etc). A ```` ```console ```` block is always run: one that cannot be is
//!   a failure, never skipped.
//!
//! And every test the docs cite must exist: each `module::test_name` and `module::prefix*` whose module is
//! a file of tests/it (or, for `queue::plan` and the like, a function of that name in the code), and each
//! bare name of five words or more in a paragraph or table row that says "Test" or names a tests/it file
//! (unless the code holds that word: an index, a SQL function).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestDb;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// A group of blocks that takes longer than this has hung (a command waiting for input, say).
const GROUP_TIMEOUT: Duration = Duration::from_secs(120);
/// The separator between the commands' outputs in a group's combined output (ASCII RS).
const MARK: char = '\u{1e}';

/// One fenced block of a Markdown file.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The language, the first word of the info string (`console`, `sh`, ...); empty when none.
    lang: String,
    /// The rest of the info string, split at spaces (`session=NAME`, `db=empty`, `illustration`).
    attrs: Vec<String>,
    /// (1-based line, text) of each line between the fences.
    body: Vec<(usize, String)>,
}

/// The fenced blocks of `text`, in order.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let indent = raw.len() - raw.trim_start().len();
        let trimmed = raw.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let fence = "`".repeat(3 + info.len() - info.trim_start_matches('`').len());
                    let mut words = info.trim_start_matches('`').split_whitespace();
                    let lang = words.next().unwrap_or_default().to_owned();
                    let attrs = words.map(str::to_owned).collect();
                    let block = Block {
                        line,
                        lang,
                        attrs,
                        body: Vec::new(),
                    };
                    open = Some((block, fence, indent));
                }
            }
            Some((mut block, fence, fence_indent)) => {
                if trimmed.trim_end() == fence {
                    out.push(block);
                } else {
                    let body = raw.get(fence_indent.min(indent)..).unwrap_or_default();
                    block.body.push((line, body.to_owned()));
                    open = Some((block, fence, fence_indent));
                }
            }
        }
    }
    if let Some((block, _, _)) = open {
        out.push(block);
    }
    out
}

/// One `$ ` command of a console block and what it must print.
struct Step {
    file: String,
    line: usize,
    command: String,
    expected: Vec<String>,
    exit: i32,
}

/// The steps of a console block, or why it is not a runnable one.
fn steps(file: &str, block: &Block) -> Result<Vec<Step>, String> {
    let mut out: Vec<Step> = Vec::new();
    let mut continuing = false;
    for (line, text) in &block.body {
        if let Some(command) = text.strip_prefix("$ ") {
            out.push(Step {
                file: file.to_owned(),
                line: *line,
                command: command.to_owned(),
                expected: Vec::new(),
                exit: 0,
            });
            continuing = true;
        } else if let Some(step) = out.last_mut() {
            let continuation = text.strip_prefix("> ").or((text == ">").then_some(""));
            match continuation {
                Some(rest) if continuing => {
                    step.command.push('\n');
                    step.command.push_str(rest);
                }
                _ => {
                    continuing = false;
                    step.expected.push(text.clone());
                }
            }
        } else if !text.trim().is_empty() {
            return Err(format!(
                "{file}:{line}: a console block must start with a `$ ` command line (use ```text for \
                 output that is not run), found {text:?}"
            ));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{file}:{}: a console block without a `$ ` command",
            block.line
        ));
    }
    for step in &mut out {
        while step.expected.last().is_some_and(|l| l.trim().is_empty()) {
            step.expected.pop();
        }
        if let Some(last) = step.expected.last() {
            if let Some(code) = last
                .strip_prefix("[exit ")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                step.exit = code
                    .parse()
                    .map_err(|_| format!("{file}:{}: a bad exit line {last:?}", step.line))?;
                step.expected.pop();
            }
        }
        if let Some(bad) = step.expected.iter().find(|l| l.starts_with("[exit ")) {
            return Err(format!(
                "{file}:{}: {bad:?} must be the last line of the command's output",
                step.line
            ));
        }
    }
    Ok(out)
}

/// Where a console block runs: its group (`session=NAME`, else the file's main one) and whether the
/// group's database starts empty (`db=empty`).
fn placement(file: &str, block: &Block) -> Result<(String, bool), String> {
    let mut session = String::from("main");
    let mut empty = false;
    for attr in &block.attrs {
        if let Some(name) = attr.strip_prefix("session=") {
            session = name.to_owned();
        } else if attr == "db=empty" {
            empty = true;
        } else {
            return Err(format!(
                "{file}:{}: unknown console block option {attr:?} (session=NAME, db=empty)",
                block.line
            ));
        }
    }
    Ok((session, empty))
}

/// The Markdown files whose examples are checked: README.md and docs/*.md, as repo-relative paths.
fn doc_files() -> Vec<String> {
    let mut files = vec![String::from("README.md")];
    let mut docs: Vec<String> = std::fs::read_dir(Path::new(REPO).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(file))
        .unwrap_or_else(|e| panic!("reading {file}: {e}"))
}

/// Whether shell text runs the `molteniron` command (not a path or a user named molteniron).
fn runs_molteniron(text: &str) -> bool {
    text.lines().any(|line| {
        let code = line.split('#').next().unwrap_or_default();
        code.match_indices("molteniron").any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let after = code[at + "molteniron".len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || "/_-.$".contains(c))
                && after.is_none_or(|c| c == ' ')
                && !code[..at].trim_end().ends_with("-u")
        })
    })
}

/// What is wrong with the blocks of `file` as the convention sees them (nothing is run).
fn lint(file: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for block in blocks(&read(file)) {
        let illustration = block.attrs.iter().any(|a| a == "illustration");
        let text: String = block.body.iter().map(|(_, l)| format!("{l}\n")).collect();
        match block.lang.as_str() {
            "console" => {
                if illustration {
                    problems.push(format!(
                        "{file}:{}: a console block is always run; an illustration is ```text illustration",
                        block.line
                    ));
                }
                if let Err(e) = steps(file, &block).and_then(|_| placement(file, &block)) {
                    problems.push(e);
                }
            }
            "sh" | "bash" | "shell" | "zsh" if runs_molteniron(&text) && !illustration => {
                problems.push(format!(
                    "{file}:{}: a ```{} block runs molteniron but is neither run (```console) nor \
                     marked ```{} illustration",
                    block.line, block.lang, block.lang
                ));
            }
            _ => {
                if let Some((line, _)) = block.body.iter().find(|(_, l)| l.starts_with("$ "))
                    && !illustration
                {
                    problems.push(format!(
                        "{file}:{line}: a transcript (a `$ ` line) in a ```{} block: make it ```console \
                         so that it runs, or mark it ```{} illustration",
                        block.lang, block.lang
                    ));
                }
            }
        }
    }
    problems
}

/// The run groups of `file`: (session name, empty database?) to its steps, in document order.
fn groups(file: &str) -> Vec<(String, bool, Vec<Step>)> {
    let mut out: Vec<(String, bool, Vec<Step>)> = Vec::new();
    for block in blocks(&read(file)) {
        if block.lang != "console" {
            continue;
        }
        let (session, empty) = placement(file, &block).unwrap_or_else(|e| panic!("{e}"));
        let steps = steps(file, &block).unwrap_or_else(|e| panic!("{e}"));
        match out.iter_mut().find(|(name, _, _)| *name == session) {
            Some((_, _, group)) => {
                assert!(
                    !empty,
                    "{file}:{}: db=empty belongs on the first block of session {session}",
                    block.line
                );
                group.extend(steps);
            }
            None => out.push((session, empty, steps)),
        }
    }
    out
}

// ---- matching expected output --------------------------------------------------------------------

/// Runs of spaces after the indentation become one, and trailing spaces go.
fn normalize(line: &str) -> String {
    let body = line.trim_start();
    let mut out = line[..line.len() - body.len()].to_owned();
    let mut space = false;
    for c in body.trim_end().chars() {
        if c == ' ' {
            space = true;
        } else {
            if space {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

const PLACEHOLDERS: [&str; 5] = ["<TIME>", "<DURATION>", "<NUMBER>", "<VERSION>", "<ANY>"];

fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// The lengths of the prefixes of `s` that `placeholder` may stand for.
fn candidates(placeholder: &str, s: &str) -> Vec<usize> {
    let b = s.as_bytes();
    let fixed = |pattern: &str| -> bool {
        pattern.len() <= b.len()
            && pattern.bytes().zip(b).all(|(p, c)| match p {
                b'9' => c.is_ascii_digit(),
                b'T' => *c == b'T' || *c == b' ',
                other => other == *c,
            })
    };
    match placeholder {
        "<ANY>" => (0..=s.len())
            .rev()
            .filter(|&i| s.is_char_boundary(i))
            .collect(),
        "<NUMBER>" => {
            let mut n = usize::from(b.first() == Some(&b'-'));
            let whole = digits(&s[n..]);
            if whole == 0 {
                return Vec::new();
            }
            n += whole;
            if b.get(n) == Some(&b'.') && digits(&s[n + 1..]) > 0 {
                n += 1 + digits(&s[n + 1..]);
            }
            vec![n]
        }
        "<VERSION>" => {
            let mut n = 0;
            for part in 0..3 {
                let d = digits(&s[n..]);
                if d == 0 {
                    return Vec::new();
                }
                n += d;
                if part < 2 {
                    if b.get(n) != Some(&b'.') {
                        return Vec::new();
                    }
                    n += 1;
                }
            }
            while b
                .get(n)
                .is_some_and(|c| c.is_ascii_alphanumeric() || b"-.+".contains(c))
            {
                n += 1;
            }
            vec![n]
        }
        "<TIME>" => {
            if !fixed("9999-99-99T99:99:99") {
                return Vec::new();
            }
            let mut n = 19;
            if b.get(n) == Some(&b'.') && digits(&s[n + 1..]) > 0 {
                n += 1 + digits(&s[n + 1..]);
            }
            if b.get(n) == Some(&b'Z') {
                n += 1;
            } else if matches!(b.get(n), Some(b'+' | b'-')) && digits(&s[n + 1..]) >= 2 {
                n += 3;
                if b.get(n) == Some(&b':') && digits(&s[n + 1..]) >= 2 {
                    n += 3;
                }
            }
            vec![n]
        }
        "<DURATION>" => {
            if s.starts_with("expired") {
                return vec![7];
            }
            // One or more NUMBER UNIT parts, optionally one space apart: 0s, 1h39m, 24m 12s, 1.5s.
            let mut ends = Vec::new();
            let mut n = 0;
            loop {
                let start = n + usize::from(n > 0 && b.get(n) == Some(&b' '));
                let mut m = start + digits(&s[start..]);
                if m == start {
                    break;
                }
                if b.get(m) == Some(&b'.') && digits(&s[m + 1..]) > 0 {
                    m += 1 + digits(&s[m + 1..]);
                }
                let unit = s[m..].bytes().take_while(u8::is_ascii_alphabetic).count();
                if unit == 0 {
                    break;
                }
                n = m + unit;
                ends.push(n);
            }
            ends.reverse();
            ends
        }
        _ => Vec::new(),
    }
}

/// Whether the (normalized) expected line matches the actual one.
fn line_matches(expected: &str, actual: &str) -> bool {
    let next = PLACEHOLDERS
        .iter()
        .filter_map(|p| expected.find(p).map(|at| (at, *p)))
        .min();
    match next {
        None => expected == actual,
        Some((at, placeholder)) => {
            let (literal, rest) = (&expected[..at], &expected[at + placeholder.len()..]);
            let Some(actual) = actual.strip_prefix(literal) else {
                return false;
            };
            candidates(placeholder, actual)
                .into_iter()
                .any(|n| line_matches(rest, &actual[n..]))
        }
    }
}

/// Whether the expected lines (with `...` for any lines) match the actual ones.
fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(first, a) && lines_match(rest, more)),
    }
}

/// A line diff of expected (`-`) against actual (`+`), lines that match shown with two spaces.
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if line_matches(&expected[i], &actual[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && line_matches(&expected[i], &actual[j]) {
            let _ = writeln!(out, "    {}", actual[j]);
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "  + {}", actual[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "  - {}", expected[i]);
            i += 1;
        }
    }
    out
}

// ---- running a group -----------------------------------------------------------------------------

/// A fresh directory with the files examples may use: nodes.yaml.example and docs/examples/*.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(REPO).join("nodes.yaml.example"),
        dir.path().join("nodes.yaml.example"),
    )
    .unwrap();
    if let Ok(entries) = std::fs::read_dir(Path::new(REPO).join("docs/examples")) {
        for entry in entries {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// The bash script of a group: each command between markers that carry its index and exit status, `$?`
/// carried from one command to the next as a shell user sees it.
fn script(steps: &[Step]) -> String {
    let mut out = String::from("exec 2>&1 </dev/null\n__rc=0\n__set_rc() { return \"$1\"; }\n");
    for (i, step) in steps.iter().enumerate() {
        let _ = write!(
            out,
            "printf '{MARK}S{i}{MARK}'; __set_rc \"$__rc\"\n{}\n__rc=$?; printf '{MARK}E{i} %d{MARK}' \"$__rc\"\n",
            step.command
        );
    }
    out
}

/// Runs a group's steps in one bash session; returns each step's (output, exit status) as far as it got.
fn run_group(steps: &[Step], empty: bool) -> Vec<Option<(String, i32)>> {
    let db = if empty {
        TestDb::unmigrated()
    } else {
        TestDb::new()
    };
    let dir = workdir();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_molteniron"),
        bin.path().join("molteniron"),
    )
    .unwrap();
    let mut path = vec![bin.path().to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let mut child = Command::new("bash")
        .arg("--noprofile")
        .arg("--norc")
        .arg("-c")
        .arg(script(steps))
        .current_dir(dir.path())
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("MOLTENIRON_DATABASE_URL", db.url())
        .env("MOLTENIRON_CONFIG", "/dev/null")
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .env_remove("DATABASE_URL")
        .env_remove("PGAPPNAME")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let deadline = Instant::now() + GROUP_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    let output = reader
        .join()
        .unwrap()
        .replace(&dir.path().display().to_string(), "<TMP>");
    let mut results: Vec<Option<(String, i32)>> = steps.iter().map(|_| None).collect();
    let mut current: Option<(usize, String)> = None;
    for (k, part) in output.split(MARK).enumerate() {
        if k % 2 == 0 {
            if let Some((_, text)) = current.as_mut() {
                text.push_str(part);
            }
        } else if let Some(i) = part.strip_prefix('S').and_then(|i| i.parse().ok()) {
            current = Some((i, String::new()));
        } else if let Some((i, rc)) = part.strip_prefix('E').and_then(|rest| rest.split_once(' ')) {
            if let (Some((started, text)), Ok(i), Ok(rc)) =
                (current.take(), i.parse::<usize>(), rc.parse())
                && started == i
            {
                results[i] = Some((text, rc));
            }
        }
    }
    results
}

/// Runs every console block of `file` and panics with every difference, each at its file and line.
fn check_examples(file: &str) {
    let groups = groups(file);
    assert!(!groups.is_empty(), "{file} has no ```console block to run");
    let mut failures = Vec::new();
    let mut commands = 0;
    for (session, empty, steps) in &groups {
        commands += steps.len();
        let results = run_group(steps, *empty);
        for (step, result) in steps.iter().zip(results) {
            let Some((output, code)) = result else {
                failures.push(format!(
                    "{}:{}: `{}` (session {session}) did not finish: an earlier command ended the \
                     shell, or the group ran past {GROUP_TIMEOUT:?}",
                    step.file, step.line, step.command
                ));
                break;
            };
            let mut actual: Vec<String> = output.lines().map(normalize).collect();
            while actual.last().is_some_and(String::is_empty) {
                actual.pop();
            }
            let expected: Vec<String> = step.expected.iter().map(|l| normalize(l)).collect();
            if code != step.exit || !lines_match(&expected, &actual) {
                failures.push(format!(
                    "{}:{}: `{}` (session {session}): expected exit {}, got {code}; output \
                     (- expected, + actual):\n{}",
                    step.file,
                    step.line,
                    step.command,
                    step.exit,
                    diff(&expected, &actual)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {commands} documented commands in {file} did not do what the page shows:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{file}: {commands} commands in {} group(s) ran as shown",
        groups.len()
    );
}

/// The files whose examples the tests below run; any other doc may not hold a console block.
const RUN: [&str; 4] = [
    "README.md",
    "docs/commands.md",
    "docs/ci.md",
    "docs/operations.md",
];

#[test]
fn the_readme_examples_run_as_shown() {
    check_examples("README.md");
}

#[test]
fn the_command_reference_examples_run_as_shown() {
    check_examples("docs/commands.md");
}

#[test]
fn the_ci_examples_run_as_shown() {
    check_examples("docs/ci.md");
}

#[test]
fn the_operations_examples_run_as_shown() {
    check_examples("docs/operations.md");
}

#[test]
fn every_doc_block_is_run_or_marked_as_an_illustration() {
    let mut problems = Vec::new();
    for file in doc_files() {
        problems.extend(lint(&file));
        let runnable = blocks(&read(&file)).iter().any(|b| b.lang == "console");
        if runnable && !RUN.contains(&file.as_str()) {
            problems.push(format!(
                "{file} has ```console blocks but no test runs them: add it to docs::RUN and a test"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- cited tests ---------------------------------------------------------------------------------

/// The test functions of each tests/it module: module name to function names.
fn tests_by_module() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(Path::new(REPO).join("tests/it")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut names = BTreeSet::new();
        let mut after_test = false;
        for line in text.lines().map(str::trim) {
            if line == "#[test]" {
                after_test = true;
            } else if after_test && (line.starts_with("#[") || line.starts_with("//")) {
            } else if after_test {
                if let Some(rest) = line.strip_prefix("fn ") {
                    names.insert(rest.split('(').next().unwrap_or_default().to_owned());
                }
                after_test = false;
            }
        }
        out.insert(module, names);
    }
    out
}

/// Every file of the code (not the docs), for names the docs cite that are not tests.
fn code_text() -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_none_or(|e| e != "md")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                out.push_str(&text);
            }
        }
    }
    let mut out = String::new();
    for dir in [
        "src",
        "migrations",
        "tests",
        "contrib",
        "roles",
        "playbooks",
        "devstack",
        "scripts",
    ] {
        walk(&Path::new(REPO).join(dir), &mut out);
    }
    out
}

/// The inline code spans of a paragraph or table row.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

#[test]
fn every_test_the_docs_cite_exists() {
    let tests = tests_by_module();
    let all: BTreeSet<&String> = tests.values().flatten().collect();
    let code = code_text();
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in doc_files() {
        let text = read(&file);
        // Paragraphs and table rows outside fenced blocks, with the line each starts on.
        let mut paragraphs: Vec<(usize, String)> = Vec::new();
        let mut fenced = false;
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced || line.trim().is_empty() {
                paragraphs.push((i + 1, String::new()));
            } else if line.starts_with('|') || line.starts_with("- ") || line.starts_with('#') {
                paragraphs.push((i + 1, line.to_owned()));
                paragraphs.push((i + 1, String::new()));
            } else {
                match paragraphs.last_mut() {
                    Some((_, p)) if !p.is_empty() => {
                        p.push(' ');
                        p.push_str(line);
                    }
                    _ => paragraphs.push((i + 1, line.to_owned())),
                }
            }
        }
        for (line, paragraph) in &paragraphs {
            let cites_tests = paragraph.contains("Test")
                || paragraph.contains("tests/it")
                || code_spans(paragraph)
                    .iter()
                    .any(|s| s.strip_suffix(".rs").is_some_and(|m| tests.contains_key(m)));
            for span in code_spans(paragraph) {
                if let Some((module, name)) = span.split_once("::")
                    && let Some(names) = tests.get(module)
                    && (is_identifier(name.trim_end_matches('*')))
                {
                    checked += 1;
                    let found = match name.strip_suffix('*') {
                        Some(prefix) => names.iter().any(|n| n.starts_with(prefix)),
                        // `queue::plan`, `store::allocate`: a function of src/ of that name.
                        None => {
                            names.contains(name)
                                || code.contains(&format!("fn {name}("))
                                || code.contains(&format!("fn {name}<"))
                        }
                    };
                    if !found {
                        missing.push(format!("{file}:{line}: `{span}`"));
                    }
                } else if cites_tests && is_identifier(span) && span.matches('_').count() >= 4 {
                    checked += 1;
                    if !all.contains(&span.to_owned()) && !code.contains(span) {
                        missing.push(format!("{file}:{line}: `{span}`"));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} cited tests found: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "the docs cite tests that do not exist:\n{}",
        missing.join("\n")
    );
}

// ---- the harness itself --------------------------------------------------------------------------

#[test]
fn masks_stand_for_what_changes_and_nothing_else() {
    let ok = [
        ("lease <TIME>", "lease 2026-12-01T19:50:13Z"),
        ("at <TIME>", "at 2026-11-21T09:13:22.006275+00:00"),
        ("at <TIME> x", "at 2026-11-21 09:13:23.130249+00 x"),
        ("held <DURATION> left <DURATION>", "held 0s left 1h39m"),
        ("in <DURATION>.", "in 24m 12s."),
        ("v<VERSION>\"", "v0.1.0\""),
        ("<NUMBER> s", "1.2 s"),
        ("a <ANY> b", "a anything at all b"),
        (" 1 n1 ready", " 1   n1    ready  "),
    ];
    for (expected, actual) in ok {
        assert!(
            line_matches(&normalize(expected), &normalize(actual)),
            "{expected:?} should match {actual:?}"
        );
    }
    let bad = [
        ("lease <TIME>", "lease soon"),
        ("held <DURATION>", "held 0"),
        ("<NUMBER> s", "x s"),
        ("a b", "a c"),
        ("  indented", "indented"),
    ];
    for (expected, actual) in bad {
        assert!(
            !line_matches(&normalize(expected), &normalize(actual)),
            "{expected:?} should not match {actual:?}"
        );
    }
    let lines = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(lines_match(
        &lines(&["a", "...", "z"]),
        &lines(&["a", "b", "c", "z"])
    ));
    assert!(lines_match(&lines(&["a", "...", "z"]), &lines(&["a", "z"])));
    assert!(!lines_match(
        &lines(&["a", "...", "z"]),
        &lines(&["a", "b"])
    ));
}

#[test]
fn console_blocks_parse_into_commands_outputs_and_exit_codes() {
    let text = "x\n```console\n$ cat > f <<'EOF'\n> a: 1\n> EOF\n\n$ false\n[exit 1]\n\n$ echo hi\nhi\n```\n";
    let parsed = blocks(text);
    assert_eq!(parsed.len(), 1);
    let cmds = steps("t.md", &parsed[0]).unwrap();
    assert_eq!(cmds.len(), 3);
    assert_eq!(cmds[0].command, "cat > f <<'EOF'\na: 1\nEOF");
    assert!(cmds[0].expected.is_empty());
    assert_eq!((cmds[1].exit, cmds[1].line), (1, 7));
    assert_eq!(cmds[2].expected, ["hi"]);
    let results = run_group(&cmds, false);
    assert_eq!(results[0], Some((String::new(), 0)));
    assert_eq!(results[1], Some((String::new(), 1)));
    assert_eq!(results[2], Some(("hi\n".to_owned(), 0)));
    let output_first = blocks("```console\nhello\n$ echo\n```\n");
    assert!(steps("t.md", &output_first[0]).is_err());
    assert!(lint_text("```sh\nmolteniron status\n```\n").len() == 1);
    assert!(lint_text("```sh illustration\nmolteniron status\n```\n").is_empty());
    assert!(lint_text("```sh\nsudo -u molteniron true; ls /etc/molteniron/\n```\n").is_empty());
    assert!(lint_text("```text\n$ molteniron status\n```\n").len() == 1);
}

/// [`lint`] of text rather than a file, for the test above.
fn lint_text(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.md");
    std::fs::write(&path, text).unwrap();
    lint(path.to_str().unwrap())
}
