//! The customer import format (`POST /api/v1/operator/customers/import`, and usable by the
//! `portal customers import` command): CSV, UTF-8, one customer per row, columns
//! `number,name,products,channel`:
//!
//! - `number`: the customer number (`123456789` or `D123456789`);
//! - `name`: the company name;
//! - `products`: affiliation keys separated by `;` or `|` (e.g. `de-business;de-accounting`);
//! - `channel`: `direct`, or `partner:<partner name>`.
//!
//! A first row whose first field is `number` is a header and skipped. Fields may be quoted with
//! `"` (a quote inside is doubled). Empty lines are ignored.

use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::service::NewCustomer;
use portal_core::values::{CompanyName, CustomerNumber};
use std::collections::BTreeSet;

/// A row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {reason}")]
pub struct CsvError {
    /// Row number, from 1 (the header counts).
    pub row: usize,
    /// Why.
    pub reason: String,
}

fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() && !was_quoted => {
                cur.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur).trim().to_owned());
                was_quoted = false;
            }
            (false, '"') => return Err("stray quote".into()),
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur.trim().to_owned());
    Ok(out)
}

/// Parses the import CSV.
///
/// # Errors
/// The first row that cannot be read (nothing is returned then).
pub fn parse_customers(text: &str) -> Result<Vec<NewCustomer>, CsvError> {
    let mut rows = Vec::new();
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let row = i + 1;
        let err = |reason: String| CsvError { row, reason };
        if line.trim().is_empty() {
            continue;
        }
        let f = fields(line).map_err(err)?;
        if row == 1 && f.first().is_some_and(|x| x.eq_ignore_ascii_case("number")) {
            continue;
        }
        if f.len() != 4 {
            return Err(err(format!(
                "expected 4 columns (number,name,products,channel), found {}",
                f.len()
            )));
        }
        let number = CustomerNumber::parse(&f[0]).map_err(|e| err(format!("number: {e}")))?;
        let name = CompanyName::parse(&f[1]).map_err(|e| err(format!("name: {e}")))?;
        let affiliations = f[2]
            .split([';', '|'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                AffiliationKey::parse(s).map_err(|_| err(format!("products: {s:?} is not a key")))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let channel = match f[3].split_once(':') {
            None if f[3].eq_ignore_ascii_case("direct") || f[3].is_empty() => {
                ServiceChannel::Direct
            }
            Some((kind, partner)) if kind.trim().eq_ignore_ascii_case("partner") => {
                ServiceChannel::Partner {
                    name: CompanyName::parse(partner).map_err(|e| err(format!("partner: {e}")))?,
                }
            }
            _ => return Err(err("channel must be `direct` or `partner:<name>`".into())),
        };
        rows.push(NewCustomer {
            number,
            name,
            affiliations,
            channel,
            entitlements: None,
            default_permissions: None,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_with_quotes_header_and_channels() {
        let csv = "number,name,products,channel\n\
                   D123456789,\"Muster, GmbH\",de-business;de-accounting,direct\n\
                   \n\
                   987654321,Partnerkunde,de-business,\"partner:Fach \"\"Handel\"\"\"\n";
        let rows = parse_customers(csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number.as_str(), "123456789");
        assert_eq!(rows[0].name.as_str(), "Muster, GmbH");
        assert_eq!(rows[0].affiliations.len(), 2);
        assert_eq!(rows[0].channel, ServiceChannel::Direct);
        match &rows[1].channel {
            ServiceChannel::Partner { name } => assert_eq!(name.as_str(), "Fach \"Handel\""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_rows_name_their_number() {
        let e =
            parse_customers("123456789,A,de-business,direct\n12,B,de-business,direct").unwrap_err();
        assert_eq!(e.row, 2);
        assert!(parse_customers("123456789,A,de-business").is_err());
        assert!(parse_customers("123456789,A,de-business,carrier pigeon").is_err());
        assert!(parse_customers("123456789,\"A,de-business,direct").is_err());
    }
}
