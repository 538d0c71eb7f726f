//! The customer import format, read by one parser on the `csv` crate: the API
//! (`POST /api/v1/operator/customers/import`), the `portal customers import` command (which
//! reaches it through `portal-server`'s dependency on this crate) and the operators' web page
//! "Kunden importieren" (`/operator/customers/import`, with a preview). It lives in the HTTP adapter because it is an inbound format, like a JSON body: text
//! at the boundary becomes the core's [`NewCustomer`]s; the core keeps the rules, and no adapter
//! needs another to read the format.
//!
//! The file is UTF-8 (a byte-order mark is skipped), comma-separated, one customer per row;
//! fields may be quoted with `"` (a quote inside is doubled), surrounding spaces are trimmed and
//! blank lines skipped:
//!
//! | column | content | example |
//! | --- | --- | --- |
//! | `number` | customer number: nine digits, `D` prefix and spaces allowed | `D123456789` |
//! | `name` | company name, 1–200 characters | `"Huber, Söhne & Co"` |
//! | `products` | product affiliation keys of the configured ones, separated by `;` (or `\|`); empty: any affiliation may link | `de-business;at` |
//! | `channel` | `direct`, or `partner:<name>` for a reseller | `partner:Systemhaus Nord` |
//!
//! A header row naming the columns is recommended; with it the columns may come in any order and
//! any case. Without one, the columns are `number,name,products,channel` in this order. (The first
//! row is a header when one of its fields is a column name and its first field is not a customer
//! number.)
//!
//! Every row is checked before anything is written; if any row is invalid, every invalid row is
//! reported by line and column, with the reason but without the row's values, and nothing is
//! imported. Existing numbers are updated, new ones created (see `Portal::import_customers`).
//!
//! ```
//! use adapters_http::import::parse_customers;
//! use portal_core::customer::Affiliation;
//!
//! let csv = "number,name,products,channel\nD123456789,Musterbau GmbH,de-business,direct\n";
//! let rows = parse_customers(csv.as_bytes(), &Affiliation::defaults()).unwrap();
//! assert_eq!(rows[0].number.as_str(), "123456789");
//! ```

use portal_core::customer::{Affiliation, AffiliationKey, ServiceChannel};
use portal_core::service::NewCustomer;
use portal_core::values::{CompanyName, CustomerNumber};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The columns, in the order of a file without a header.
pub const COLUMNS: [&str; 4] = ["number", "name", "products", "channel"];

/// What separates several products in the `products` column.
pub const PRODUCT_SEPARATORS: [char; 2] = [';', '|'];

/// One problem in the file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file, from 1 (a header is line 1).
    pub line: u64,
    /// The column, when the problem is in one.
    pub column: Option<&'static str>,
    /// What is wrong, in English (the value itself is not repeated): the CLI's and the API's
    /// text.
    pub reason: String,
    /// What is wrong, for a text in the reader's language (the operator page's table).
    pub problem: Problem,
}

impl RowError {
    fn new(line: u64, column: Option<&'static str>, problem: Problem) -> Self {
        Self {
            line,
            column,
            reason: problem.to_string(),
            problem,
        }
    }
}

/// What is wrong with a file or a row; its `Display` is the English reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    /// The file is not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// Nothing in the file.
    #[error("the file is empty (expected a header row: number,name,products,channel)")]
    Empty,
    /// The first row is broken CSV.
    #[error("the first row is not valid CSV")]
    FirstRowNotCsv,
    /// A row is broken CSV.
    #[error("not valid CSV (check the quotes)")]
    NotCsv,
    /// A header and no customer.
    #[error("no customer rows after the header")]
    NoRows,
    /// A column named twice in the header.
    #[error("column `{0}` appears twice")]
    ColumnTwice(&'static str),
    /// A header field that names no column (its first 40 characters).
    #[error("unknown column `{0}` (expected number, name, products, channel)")]
    UnknownColumn(String),
    /// A column the header lacks.
    #[error("missing column `{0}`")]
    MissingColumn(&'static str),
    /// A row with too few or too many fields.
    #[error("{found} fields, expected {expected}")]
    FieldCount {
        /// Fields in the row.
        found: usize,
        /// Fields in the header (or 4).
        expected: usize,
    },
    /// A customer number seen on an earlier line.
    #[error("customer number already on line {first_line}")]
    DuplicateNumber {
        /// Where it was first.
        first_line: u64,
    },
    /// No customer number.
    #[error("{0}")]
    Number(portal_core::values::CustomerNumberError),
    /// No company name.
    #[error("{0}")]
    Name(portal_core::values::NameError),
    /// A product affiliation that is not configured.
    #[error("unknown product affiliation `{key}` (configured: {configured})")]
    UnknownProduct {
        /// The key.
        key: String,
        /// The configured keys, comma-separated.
        configured: String,
    },
    /// No affiliation key at all.
    #[error(
        "malformed affiliation key (lower-case letters, digits, `-` and `_`; separate several with `;`)"
    )]
    MalformedProduct,
    /// Neither `direct` nor `partner:<name>`.
    #[error("expected `direct` or `partner:<name>`")]
    Channel,
    /// `partner:` with no valid name.
    #[error("partner name: {0}")]
    PartnerName(portal_core::values::NameError),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}: {c}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// Why a file cannot be imported: every invalid row, or a file-level problem (line 1 for the
/// header). Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the file, nothing imported:\n{}", .0.len(), list(.0))]
pub struct ImportErrors(pub Vec<RowError>);

/// The API's answer: 422 `invalid_row` with the first problem's `row` (its line) and `reason`,
/// and every problem in `problems`.
impl From<ImportErrors> for crate::error::ApiError {
    fn from(e: ImportErrors) -> Self {
        let reason = |p: &RowError| match p.column {
            Some(c) => format!("{c}: {}", p.reason),
            None => p.reason.clone(),
        };
        let problems: Vec<serde_json::Value> = e
            .0
            .iter()
            .map(|p| serde_json::json!({ "row": p.line, "column": p.column, "reason": p.reason }))
            .collect();
        let first = e.0.first();
        Self::with_message(crate::error::ErrorCode::InvalidRow, e.to_string()).details(
            serde_json::json!({
                "row": first.map(|p| p.line),
                "reason": first.map(reason),
                "problems": problems,
            }),
        )
    }
}

fn list(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses and checks a customer file against the configured affiliations.
///
/// # Errors
/// Every invalid row (see the [module docs](self)); an empty file or a bad header.
pub fn parse_customers(
    input: impl std::io::Read,
    affiliations: &[Affiliation],
) -> Result<Vec<NewCustomer>, ImportErrors> {
    let mut input = input;
    let mut bytes = Vec::new();
    if let Err(e) = input.read_to_end(&mut bytes) {
        return Err(one(1, Problem::Unreadable(e.to_string())));
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t.strip_prefix('\u{feff}').unwrap_or(t),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            return Err(one(line as u64, Problem::NotUtf8));
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    // The first row that is not blank: a header, or the first customer.
    let first = loop {
        match records.next() {
            None => {
                return Err(one(1, Problem::Empty));
            }
            Some(Err(_)) => return Err(one(1, Problem::FirstRowNotCsv)),
            Some(Ok(r)) if blank(&r) => {}
            Some(Ok(r)) => break r,
        }
    };
    let (index, first_row) = if is_header(&first) {
        (header_index(&first)?, None)
    } else {
        (Index::default_order(), Some(first))
    };
    let known: BTreeSet<&str> = affiliations.iter().map(|a| a.key.as_str()).collect();
    let mut check = Check {
        index,
        known,
        rows: Vec::new(),
        errors: Vec::new(),
        first_line: BTreeMap::new(),
    };
    for record in first_row.into_iter().map(Ok).chain(records) {
        match record {
            Ok(r) => check.row(&r),
            Err(e) => check.errors.push(RowError::new(
                e.position().map_or(0, csv::Position::line),
                None,
                Problem::NotCsv,
            )),
        }
    }
    if !check.errors.is_empty() {
        return Err(ImportErrors(check.errors));
    }
    if check.rows.is_empty() {
        return Err(one(1, Problem::NoRows));
    }
    Ok(check.rows)
}

fn one(line: u64, problem: Problem) -> ImportErrors {
    ImportErrors(vec![RowError::new(line, None, problem)])
}

fn blank(record: &csv::StringRecord) -> bool {
    record.iter().all(str::is_empty)
}

fn column_name(field: &str) -> Option<&'static str> {
    let name = field.to_ascii_lowercase();
    COLUMNS.iter().copied().find(|c| *c == name)
}

/// A header names at least one column and does not start with a customer number.
fn is_header(record: &csv::StringRecord) -> bool {
    record.iter().any(|f| column_name(f).is_some())
        && record
            .get(0)
            .is_none_or(|f| CustomerNumber::parse(f).is_err())
}

/// Where each column is.
struct Index {
    number: usize,
    name: usize,
    products: usize,
    channel: usize,
    len: usize,
}

impl Index {
    const fn default_order() -> Self {
        Self {
            number: 0,
            name: 1,
            products: 2,
            channel: 3,
            len: 4,
        }
    }
}

fn header_index(header: &csv::StringRecord) -> Result<Index, ImportErrors> {
    let mut positions: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, field) in header.iter().enumerate() {
        match column_name(field) {
            Some(c) if positions.contains_key(c) => {
                problems.push(Problem::ColumnTwice(c));
            }
            Some(c) => {
                positions.insert(c, i);
            }
            None => problems.push(Problem::UnknownColumn(
                field.chars().take(40).collect::<String>(),
            )),
        }
    }
    for c in COLUMNS {
        if !positions.contains_key(c) {
            problems.push(Problem::MissingColumn(c));
        }
    }
    if !problems.is_empty() {
        return Err(ImportErrors(
            problems
                .into_iter()
                .map(|problem| RowError::new(1, None, problem))
                .collect(),
        ));
    }
    Ok(Index {
        number: positions["number"],
        name: positions["name"],
        products: positions["products"],
        channel: positions["channel"],
        len: header.len(),
    })
}

/// The rows read so far and the problems found.
struct Check<'a> {
    index: Index,
    known: BTreeSet<&'a str>,
    rows: Vec<NewCustomer>,
    errors: Vec<RowError>,
    /// The line each customer number was first seen on.
    first_line: BTreeMap<String, u64>,
}

impl Check<'_> {
    fn row(&mut self, record: &csv::StringRecord) {
        let line = record.position().map_or(0, csv::Position::line);
        if blank(record) {
            return;
        }
        if record.len() != self.index.len {
            self.errors.push(RowError::new(
                line,
                None,
                Problem::FieldCount {
                    found: record.len(),
                    expected: self.index.len,
                },
            ));
            return;
        }
        // Duplicates are found by number alone, also when another column of the row is bad.
        if let Ok(n) = CustomerNumber::parse(&record[self.index.number]) {
            if let Some(first) = self.first_line.get(n.as_str()) {
                self.errors.push(RowError::new(
                    line,
                    Some("number"),
                    Problem::DuplicateNumber { first_line: *first },
                ));
            } else {
                self.first_line.insert(n.as_str().to_owned(), line);
            }
        }
        match parse_row(record, &self.index, line, &self.known) {
            Ok(row) => self.rows.push(row),
            Err(mut e) => self.errors.append(&mut e),
        }
    }
}

fn parse_row(
    record: &csv::StringRecord,
    index: &Index,
    line: u64,
    known: &BTreeSet<&str>,
) -> Result<NewCustomer, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut err = |column: &'static str, problem: Problem| {
        errors.push(RowError::new(line, Some(column), problem));
    };
    let number = CustomerNumber::parse(&record[index.number])
        .map_err(|e| err("number", Problem::Number(e)))
        .ok();
    let name = CompanyName::parse(&record[index.name])
        .map_err(|e| err("name", Problem::Name(e)))
        .ok();
    let mut affiliations = BTreeSet::new();
    for raw in record[index.products]
        .split(PRODUCT_SEPARATORS)
        .map(str::trim)
    {
        if raw.is_empty() {
            continue;
        }
        match AffiliationKey::parse(raw) {
            Ok(k) if known.contains(k.as_str()) => {
                affiliations.insert(k);
            }
            Ok(k) => err(
                "products",
                Problem::UnknownProduct {
                    key: k.as_str().to_owned(),
                    configured: known.iter().copied().collect::<Vec<_>>().join(", "),
                },
            ),
            Err(_) => err("products", Problem::MalformedProduct),
        }
    }
    let channel = channel(&record[index.channel])
        .map_err(|p| err("channel", p))
        .ok();
    match (number, name, channel) {
        (Some(number), Some(name), Some(channel)) if errors.is_empty() => Ok(NewCustomer {
            number,
            name,
            affiliations,
            channel,
            entitlements: None,
            default_permissions: None,
        }),
        _ => Err(errors),
    }
}

/// Parses the `channel` column: `direct` or `partner:<name>`.
///
/// # Errors
/// Anything else, or an invalid partner name.
pub fn parse_channel(raw: &str) -> Result<ServiceChannel, String> {
    channel(raw).map_err(|p| p.to_string())
}

fn channel(raw: &str) -> Result<ServiceChannel, Problem> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("direct") {
        return Ok(ServiceChannel::Direct);
    }
    match raw.split_once(':') {
        Some((kind, name)) if kind.trim().eq_ignore_ascii_case("partner") => {
            let name = CompanyName::parse(name).map_err(Problem::PartnerName)?;
            Ok(ServiceChannel::Partner { name })
        }
        _ => Err(Problem::Channel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<NewCustomer>, ImportErrors> {
        parse_customers(text.as_bytes(), &Affiliation::defaults())
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn good_rows_become_customers() {
        let rows = parse(
            "\u{feff}number,name,products,channel\n\
             D123456789,Musterbau GmbH,de-business,direct\n\
             \n\
             \" 987654321 \",\"Huber, Söhne & Co\", de-business ; at ,partner:Systemhaus Nord\n\
             111111111,Leer AG,,DIRECT\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].number.as_str(), "123456789");
        assert_eq!(rows[0].name.as_str(), "Musterbau GmbH");
        assert_eq!(rows[0].channel, ServiceChannel::Direct);
        assert_eq!(rows[1].name.as_str(), "Huber, Söhne & Co");
        let keys: Vec<&str> = rows[1]
            .affiliations
            .iter()
            .map(AffiliationKey::as_str)
            .collect();
        assert_eq!(keys, ["at", "de-business"]);
        assert!(matches!(
            &rows[1].channel,
            ServiceChannel::Partner { name } if name.as_str() == "Systemhaus Nord"
        ));
        assert!(
            rows[2].affiliations.is_empty(),
            "empty products: any affiliation"
        );
        assert!(
            rows.iter()
                .all(|r| r.entitlements.is_none() && r.default_permissions.is_none())
        );
    }

    #[test]
    fn columns_may_come_in_any_order_and_any_case() {
        let rows = parse("Channel,Products,NAME,Number\ndirect,at,Wien GmbH,D222222222\n").unwrap();
        assert_eq!(rows[0].number.as_str(), "222222222");
        assert_eq!(rows[0].name.as_str(), "Wien GmbH");
    }

    #[test]
    fn without_a_header_the_columns_are_number_name_products_channel() {
        let rows = parse(
            "D123456789,\"Muster, GmbH\",de-business;at,direct\n\
             \n\
             987654321,Partnerkunde,de-business|de-enterprise,\"partner:Fach \"\"Handel\"\"\"\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number.as_str(), "123456789");
        assert_eq!(rows[0].name.as_str(), "Muster, GmbH");
        assert_eq!(rows[0].affiliations.len(), 2);
        assert_eq!(rows[0].channel, ServiceChannel::Direct);
        assert_eq!(rows[1].affiliations.len(), 2, "`|` separates products too");
        match &rows[1].channel {
            ServiceChannel::Partner { name } => assert_eq!(name.as_str(), "Fach \"Handel\""),
            other => panic!("{other:?}"),
        }
        // A company called "Name" is a customer, not a header: its row starts with a number.
        let rows = parse("123456789,Name,at,direct\n").unwrap();
        assert_eq!(rows[0].name.as_str(), "Name");
    }

    #[test]
    fn bad_rows_name_their_line_without_a_header_too() {
        let e = parse("123456789,A,de-business,direct\n12,B,de-business,direct").unwrap_err();
        assert_eq!(e.0[0].line, 2);
        assert_eq!(
            errors("123456789,A,de-business"),
            ["line 1: 3 fields, expected 4"]
        );
        assert_eq!(
            errors("123456789,A,de-business,carrier pigeon"),
            ["line 1: channel: expected `direct` or `partner:<name>`"]
        );
        assert!(parse("123456789,\"A,de-business,direct").is_err());
    }

    #[test]
    fn every_bad_row_is_reported_with_line_and_column() {
        let e = errors(
            "number,name,products,channel\n\
             12345,Kurz GmbH,at,direct\n\
             123456789,,at,direct\n\
             223456789,Gut GmbH,AT!,direct\n\
             323456789,Gut GmbH,mars,direct\n\
             423456789,Gut GmbH,at,reseller\n\
             523456789,Gut GmbH,at,partner:\n\
             623456789,Gut GmbH,at\n\
             D123456789,Doppelt GmbH,at,direct\n\
             x,,zz,\n",
        );
        assert_eq!(
            e,
            [
                "line 2: number: customer number must have exactly nine digits",
                "line 3: name: name is empty",
                "line 4: products: malformed affiliation key (lower-case letters, digits, `-` and `_`; separate several with `;`)",
                "line 5: products: unknown product affiliation `mars` (configured: at, de-business, de-enterprise)",
                "line 6: channel: expected `direct` or `partner:<name>`",
                "line 7: channel: partner name: name is empty",
                "line 8: 3 fields, expected 4",
                "line 9: number: customer number already on line 3",
                "line 10: number: customer number may contain only digits after an optional leading D",
                "line 10: name: name is empty",
                "line 10: products: unknown product affiliation `zz` (configured: at, de-business, de-enterprise)",
                "line 10: channel: expected `direct` or `partner:<name>`",
            ],
            "{e:#?}"
        );
    }

    #[test]
    fn header_problems_are_reported_on_line_one() {
        assert_eq!(
            errors(""),
            ["line 1: the file is empty (expected a header row: number,name,products,channel)"]
        );
        assert_eq!(
            errors("number,name,product,channel\n"),
            [
                "line 1: unknown column `product` (expected number, name, products, channel)",
                "line 1: missing column `products`"
            ]
        );
        assert_eq!(
            errors("number,name,products,channel,number\n"),
            ["line 1: column `number` appears twice"]
        );
        assert_eq!(
            errors("number,name,products,channel\n"),
            ["line 1: no customer rows after the header"]
        );
    }

    #[test]
    fn broken_csv_and_encoding_are_reported() {
        let e = parse_customers(
            &b"number,name,products,channel\n123456789,M\xfcller,at,direct\n"[..],
            &Affiliation::defaults(),
        )
        .unwrap_err();
        assert_eq!(e.0[0].to_string(), "line 2: not UTF-8 text");
        let e = errors("number,name,products,channel\n123456789,\"open,at,direct\n");
        assert!(e[0].starts_with("line 2:"), "{e:?}");
    }

    #[test]
    fn the_error_text_lists_every_problem_and_no_values() {
        let e = parse("number,name,products,channel\n1,Geheim GmbH,at,direct\n2,B,at,direct\n")
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("2 problem(s) in the file, nothing imported:"),
            "{text}"
        );
        assert!(
            text.contains("\n  line 2: number:") && text.contains("\n  line 3: number:"),
            "{text}"
        );
        assert!(!text.contains("Geheim"), "{text}");
    }
}
