//! `docs/embedding.md`, followed as a newcomer would: its files (every block after a
//! ``File `PATH`:`` line) are extracted from the Markdown into a fresh cargo project outside
//! the workspace, with path dependencies to this checkout, and built offline with the
//! workspace's target directory (and its `Cargo.lock`, so the same versions are used and what
//! the workspace built is reused). Its tests must pass — the guarded route's 401/200/403 on
//! memory and SQLite, a true property — and its broken rule must fail with the minimal
//! counterexample the guide shows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GUIDE: &str = include_str!("../../docs/embedding.md");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the examples")
        .to_owned()
}

/// The guide's files: (path, contents) of every fenced block right after a ``File `PATH`:``
/// line.
fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = GUIDE.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("File `")
            .and_then(|l| l.strip_suffix("`:"))
        else {
            continue;
        };
        let fence = lines.next().expect("a block after the marker");
        assert!(fence.starts_with("```"), "{path}: a fenced block follows");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        out.push((path.to_owned(), body.join("\n") + "\n"));
    }
    out
}

/// The lines of the guide's `text` block after `heading`.
fn text_block_after(heading: &str) -> Vec<String> {
    let rest = &GUIDE[GUIDE.find(heading).expect("the heading")..];
    let start = rest.find("```text\n").expect("a text block") + "```text\n".len();
    rest[start..start + rest[start..].find("```").expect("its end")]
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_rust_block_of_the_guide_is_a_file_the_project_compiles() {
    let files = files();
    let rust = files.iter().filter(|(p, _)| p.ends_with(".rs")).count();
    assert_eq!(
        GUIDE.matches("```rust").count(),
        rust,
        "a Rust block without a file marker would not be compiled"
    );
    for (path, body) in files.iter().filter(|(p, _)| p.ends_with(".rs")) {
        assert!(
            !body.lines().any(|l| l.trim_start().starts_with("# ")),
            "{path}: no rustdoc-hidden lines, the blocks are pasted as they are"
        );
    }
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for needed in [
        "Cargo.toml",
        "src/lib.rs",
        "src/main.rs",
        "tests/support.rs",
    ] {
        assert!(paths.contains(&needed), "{needed} in {paths:?}");
    }
}

fn cargo(project: &Path, args: &[&str]) -> (Output, String) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env_remove("PROPTEST_CASES")
        .env_remove("PROPTEST_MAX_SHRINK_ITERS")
        .output()
        .expect("run cargo");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn the_guide_alone_builds_a_service_with_a_guarded_route_and_a_kit_that_shrinks() {
    let project = std::env::temp_dir().join(format!("portal-guide-{}", std::process::id()));
    std::fs::remove_dir_all(&project).ok();
    let root = workspace();
    for (path, body) in files() {
        let file = project.join(&path);
        std::fs::create_dir_all(file.parent().expect("a directory")).expect("mkdir");
        let body = if path == "Cargo.toml" {
            body.replace("\"../portal/", &format!("\"{}/", root.display()))
        } else {
            body
        };
        std::fs::write(file, body).expect("write a file of the guide");
    }
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy the lock");

    let (run, out) = cargo(
        &project,
        &["test", "--offline", "--test", "support", "--test", "rules"],
    );
    assert!(run.status.success(), "the guide's tests pass:\n{out}");
    for test in [
        "the_guard_on_memory ... ok",
        "the_guard_on_sqlite ... ok",
        "locked_users_enter_nothing ... ok",
    ] {
        assert!(out.contains(test), "{test}:\n{out}");
    }

    let (run, out) = cargo(&project, &["test", "--offline", "--test", "broken_rule"]);
    assert!(!run.status.success(), "the broken rule fails:\n{out}");
    for line in text_block_after("### A rule broken on purpose") {
        assert!(
            out.contains(line.trim()),
            "the guide's output line `{line}` is what the kit reports:\n{out}"
        );
    }
    assert!(
        !out.contains("u2:") && out.contains("Scenario of 1 step(s)"),
        "minimal: one step, two users:\n{out}"
    );
    std::fs::remove_dir_all(&project).ok();
}
