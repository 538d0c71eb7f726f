//! `portal legacy import FILE`: the old system's ("Servicewelt") accounts, so users can link
//! their new account with their old username and password ("Jetzt verknüpfen", R8).
//!
//! The file is CSV (the `csv` crate), UTF-8 (a byte-order mark is skipped), comma-separated, with
//! a header row naming the three columns in any order and any case; fields may be quoted with
//! `"`, surrounding spaces are trimmed, blank lines skipped:
//!
//! | column | content | example |
//! | --- | --- | --- |
//! | `username` | the old login name, compared trimmed and case-insensitively, at most 256 characters | `mueller` |
//! | `customer_number` | the customer it belongs to, as `portal customers import` reads it; the customer must exist | `D123456789` |
//! | `password_hash` | the old hash as the old system stored it (forms: `portal_core::legacy_hash`) | `$2y$10$…` |
//!
//! Every row is checked before anything is written (the hash's form and cost, the username once,
//! the customer known); if any is wrong, every problem is listed by line, without the values,
//! and nothing is imported. Then the accounts are written in batches, with a progress bar on a
//! terminal, and a summary is printed. Importing the same file again changes nothing; an account
//! linked already keeps its hash deleted.

use crate::app::{self, Failure};
use crate::config::ServerConfig;
use portal_core::Actor;
use portal_core::config::PortalConfig;
use portal_core::legacy_hash::LegacyHash;
use portal_core::service::{LegacyImportReport, NewLegacyAccount};
use portal_core::values::CustomerNumber;
use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;

/// The columns of the file.
pub const COLUMNS: [&str; 3] = ["username", "customer_number", "password_hash"];

/// Reads and checks a file of old accounts: every problem as `line N: column: reason`.
///
/// # Errors
/// The problems (the file is then not imported at all).
pub fn parse(input: &[u8]) -> Result<Vec<NewLegacyAccount>, Vec<String>> {
    let text = match std::str::from_utf8(input) {
        Ok(t) => t.strip_prefix('\u{feff}').unwrap_or(t),
        Err(e) => {
            let line = 1 + input[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            return Err(vec![format!("line {line}: not UTF-8 text")]);
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => {
                return Err(vec![format!(
                    "line 1: the file is empty (expected a header row: {})",
                    COLUMNS.join(",")
                )]);
            }
            Some(Err(_)) => return Err(vec!["line 1: not valid CSV".into()]),
            Some(Ok(r)) if r.iter().all(str::is_empty) => {}
            Some(Ok(r)) => break r,
        }
    };
    let index = header_index(&header)?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                problems.push(format!("line {line}: not valid CSV (check the quotes)"));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != header.len() {
            problems.push(format!(
                "line {line}: {} fields, expected {}",
                record.len(),
                header.len()
            ));
            continue;
        }
        let username = record[index["username"]].to_owned();
        let number = CustomerNumber::parse(&record[index["customer_number"]])
            .map_err(|e| problems.push(format!("line {line}: customer_number: {e}")))
            .ok();
        let hash = LegacyHash::parse(&record[index["password_hash"]])
            .map_err(|e| problems.push(format!("line {line}: password_hash: {e}")))
            .ok();
        if let (Some(customer_number), Some(hash)) = (number, hash) {
            rows.push(NewLegacyAccount {
                line,
                username,
                customer_number,
                hash,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if rows.is_empty() {
        return Err(vec!["line 1: no account rows after the header".into()]);
    }
    Ok(rows)
}

fn header_index(header: &csv::StringRecord) -> Result<BTreeMap<&'static str, usize>, Vec<String>> {
    let mut index = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, field) in header.iter().enumerate() {
        let name = field.to_ascii_lowercase();
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if index.contains_key(c) => {
                problems.push(format!("line 1: column `{c}` appears twice"));
            }
            Some(c) => {
                index.insert(*c, i);
            }
            None => problems.push(format!(
                "line 1: unknown column `{}` (expected {})",
                field.chars().take(40).collect::<String>(),
                COLUMNS.join(", ")
            )),
        }
    }
    for c in COLUMNS {
        if !index.contains_key(c) {
            problems.push(format!("line 1: missing column `{c}`"));
        }
    }
    if problems.is_empty() {
        Ok(index)
    } else {
        Err(problems)
    }
}

/// The summary printed at the end.
#[must_use]
pub fn summary(file: &Path, rows: usize, r: &LegacyImportReport) -> String {
    let mut out = format!(
        "{}: {rows} accounts: {} created, {} updated, {} unchanged, {} linked already (left alone)\n",
        file.display(),
        r.created,
        r.updated,
        r.unchanged,
        r.linked
    );
    out.push_str("password hashes:\n");
    for (format, n) in &r.formats {
        out.push_str(&format!("  {format}: {n}\n"));
    }
    out
}

/// Runs `portal legacy import FILE`.
///
/// # Errors
/// An unreadable or invalid file (nothing imported), the database.
pub async fn import(config: &ServerConfig, file: &Path) -> Result<(), Failure> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| Failure::of(&name, e))?;
    let rows = parse(&bytes).map_err(|p| {
        Failure(format!(
            "{name}: {} problem(s) in the file, nothing imported:\n  {}",
            p.len(),
            p.join("\n  ")
        ))
    })?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let portal = app::portal(Arc::new(store), None, PortalConfig::default())?;
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} accounts ({eta} left)")
                .map_err(|e| Failure::of("progress bar", e))?,
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let progress = {
        let bar = bar.clone();
        move |done: usize| bar.set_position(done as u64)
    };
    let report = portal
        .import_legacy_accounts(&Actor::System, &rows, &progress)
        .await;
    bar.finish_and_clear();
    let report = report.map_err(|e| Failure::of(&name, e))?;
    print!("{}", summary(file, rows.len(), &report));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";

    #[test]
    fn a_good_file_in_any_column_order_is_read() {
        let csv = format!(
            "\u{feff}Password_Hash, username ,customer_number\n\"{BCRYPT}\",Mueller,D123456789\n\n"
        );
        let rows = parse(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].username, "Mueller");
        assert_eq!(rows[0].customer_number.as_str(), "123456789");
        assert_eq!(rows[0].hash.describe(), "bcrypt cost=10");
    }

    #[test]
    fn every_bad_row_is_reported_without_its_values() {
        let csv = format!(
            "username,customer_number,password_hash\n\
             anna,12,{BCRYPT}\n\
             bert,123456789,5f4dcc3b5aa765d61d8327deb882cf99\n\
             carl,123456789\n\
             dora,123456789,{BCRYPT}\n"
        );
        let problems = parse(csv.as_bytes()).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("line 2: customer_number:"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("line 3: password_hash: not a supported"),
            "{problems:?}"
        );
        assert_eq!(problems[2], "line 4: 2 fields, expected 3");
        assert!(!problems.concat().contains("5f4dcc3b"));
    }

    #[test]
    fn headers_and_empty_files_are_checked() {
        assert_eq!(
            parse(b"").unwrap_err(),
            [
                "line 1: the file is empty (expected a header row: username,customer_number,password_hash)"
            ]
        );
        let p = parse(b"username,kunde,password_hash,username\n").unwrap_err();
        assert!(
            p.iter().any(|p| p.contains("unknown column `kunde`")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("`username` appears twice")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.contains("missing column `customer_number`")),
            "{p:?}"
        );
        assert_eq!(
            parse(b"username,customer_number,password_hash\n").unwrap_err(),
            ["line 1: no account rows after the header"]
        );
        assert_eq!(parse(b"a\xff").unwrap_err(), ["line 1: not UTF-8 text"]);
    }
}
