//! Vendor staff's customer pages: the customer list (search, page size, "Zurück" / "Nächste")
//! and the customer import ("Kunden importieren"): the CSV file's text, checked by the same
//! parser as the API and the `portal customers import` command ([`crate::import`]) and shown
//! as a preview (every problem by line and column, or the rows it would import) before anything
//! is written. The core refuses everyone but active operators.

use super::audit_details::affiliation_name;
use super::ctx::Authed;
use super::error::PageError;
use super::form::Query;
use super::i18n;
use super::layout::{Errors, csrf_field, flash_notice, kept_notice};
use super::operator::policy_form;
use super::paging::{ListQuery, Pager};
use super::urls::{self, Notice};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::authz::{Acting, is_operator};
use portal_core::customer::{Affiliation, AffiliationKey, ServiceChannel};
use portal_core::service::NewCustomer;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The affiliations' names as the reader's language calls them (an unknown key as it is); a
/// customer without any accepts every affiliation.
fn affiliation_names(
    a: &Authed,
    configured: &[Affiliation],
    keys: &BTreeSet<AffiliationKey>,
) -> String {
    if keys.is_empty() {
        return a.t("customers-any-affiliation").into_owned();
    }
    keys.iter()
        .map(|k| {
            configured
                .iter()
                .find(|af| af.key == *k)
                .map_or_else(|| k.to_string(), |af| affiliation_name(a.lang, af))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn served_by(a: &Authed, channel: &ServiceChannel) -> Markup {
    html! {
        @match channel {
            ServiceChannel::Direct => (a.t("directly")),
            ServiceChannel::Partner { name } => { (a.t("customers-partner")) " " (name.as_str()) },
        }
    }
}

/// `GET /operator/customers`.
pub(crate) async fn customers(
    a: Authed,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let pager = Pager::new(&q, a.portal().config().default_page_size);
    let page = a
        .portal()
        .list_customers(&a.principal.actor(), Some(q.search()), &pager.request())
        .await?;
    let affiliations = &a.portal().config().affiliations;
    let title = a.t("customers");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            (kept_notice(&a))
            div.toolbar {
                a.button.primary href=(a.href(urls::OperatorNewCustomer)) { (a.t("create-customer")) }
                a.button.secondary href=(a.href(urls::OperatorImportCustomers)) { (a.t("import-customers")) }
                a.button.secondary href=(a.href(urls::OperatorAdminRequests)) { (a.t("admin-requests")) }
            }
            (pager.search_form_labelled(&a, urls::OperatorCustomers, &a.t("customers-search")))
            table.stack {
                thead { tr {
                    th scope="col" { (a.t("customer-number")) }
                    th scope="col" { (a.t("name")) }
                    th scope="col" { (a.t("affiliation-title")) }
                    th scope="col" { (a.t("served-by")) }
                    th scope="col" { (a.t("customers-created")) }
                    th scope="col" { (a.t("second-factor-policy")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if page.items.is_empty() {
                        tr { td colspan="7" { (a.t("no-entries-found")) } }
                    }
                    @for c in &page.items {
                        @let r = c.record();
                        tr {
                            td data-label=(a.t("customer-number")) { (c.number().printed()) }
                            td data-label=(a.t("name")) { (c.name().as_str()) }
                            td.wrap data-label=(a.t("affiliation-title")) { (affiliation_names(&a, affiliations, &r.affiliations)) }
                            td data-label=(a.t("served-by")) { (served_by(&a, &r.channel)) }
                            td data-label=(a.t("customers-created")) { (i18n::date(a.lang, r.created_at)) }
                            td data-label=(a.t("second-factor-policy")) { (policy_form(&a, c.number(), c.second_factor_policy())) }
                            td.actions data-label=(a.t("actions")) {
                                a href=(a.href(urls::Users { number: c.number().clone() })) { (a.t("user-management")) }
                                a href=(a.href(urls::CustomerAudit { number: c.number().clone() })) { (a.t("log")) }
                            }
                        }
                    }
                }
            }
            (pager.nav(&a, urls::OperatorCustomers, page.next.as_deref()))
        },
    ))
}

/// The import form: the file's text and the button pressed (`check`: the preview, `import`).
/// A chosen file (`csv_file`, a multipart form) takes the place of the text field's content.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ImportForm {
    csv: String,
    action: String,
}

impl ImportForm {
    /// The form of a request: multipart with a chosen file, or URL-encoded.
    async fn read(a: &Authed, req: axum::extract::Request) -> Result<Self, PageError> {
        let invalid = || PageError::code(crate::error::ErrorCode::InvalidRequest);
        let headers = req.headers().clone();
        let bytes = axum::body::to_bytes(req.into_body(), a.config().import_body_limit)
            .await
            .map_err(|_| PageError::code(crate::error::ErrorCode::PayloadTooLarge))?;
        let multipart = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            return serde_html_form::from_bytes(&bytes).map_err(|_| invalid());
        }
        let fields = super::form::multipart_fields(&headers, bytes)
            .await
            .ok_or_else(invalid)?;
        let field = |name: &str| {
            fields
                .iter()
                .find_map(|(n, v)| (n == name).then(|| v.clone()))
                .unwrap_or_default()
        };
        let file = field("csv_file");
        Ok(Self {
            csv: if file.trim().is_empty() {
                field("csv")
            } else {
                file
            },
            action: field("action"),
        })
    }
}

/// What the page shows under the form: the problems of the file, or the rows it would import.
enum Preview<'a> {
    None,
    Problems(&'a crate::import::ImportErrors),
    Rows(&'a [NewCustomer]),
}

fn import_page(a: &Authed, csv: &str, preview: &Preview<'_>, errors: &Errors) -> Markup {
    let affiliations = &a.portal().config().affiliations;
    html! {
        section.card {
            h1 { (a.t("import-customers")) }
            p { (a.t("import-intro")) }
            p.hint { (a.t("import-format")) }
            (errors.summary(a.lang))
            form method="post" enctype="multipart/form-data" action=(a.href(urls::OperatorImportCustomers)) {
                (csrf_field(a))
                div.field {
                    label for="f-csv-file" { (a.t("import-choose-file")) }
                    input #f-csv-file type="file" name="csv_file" accept=".csv,text/csv";
                }
                div.field {
                    label for="f-csv" { (a.t("import-file")) }
                    textarea #f-csv name="csv" rows="10" spellcheck="false" { (csv) }
                }
                div.actions {
                    a.button.secondary href=(a.href(urls::OperatorCustomers)) { (a.t("back")) }
                    button.secondary type="submit" name="action" value="check" { (a.t("import-check")) }
                    button.primary type="submit" name="action" value="import" { (a.t("import-submit")) }
                }
            }
        }
        @match preview {
            Preview::None => {},
            Preview::Problems(problems) => section.card {
                h2 { (a.t_with("import-problems", [("count", problems.0.len().into())])) }
                table.stack.import-problems {
                    thead { tr {
                        th scope="col" { (a.t("import-line")) }
                        th scope="col" { (a.t("import-column")) }
                        th scope="col" { (a.t("import-reason")) }
                    } }
                    tbody {
                        @for p in &problems.0 {
                            tr {
                                td data-label=(a.t("import-line")) { (p.line) }
                                td data-label=(a.t("import-column")) { (p.column.unwrap_or("–")) }
                                td.wrap data-label=(a.t("import-reason")) { (i18n::import_problem(a.lang, &p.problem)) }
                            }
                        }
                    }
                }
            },
            Preview::Rows(rows) => section.card {
                h2 { (a.t_with("import-preview", [("count", rows.len().into())])) }
                table.stack.import-preview {
                    thead { tr {
                        th scope="col" { (a.t("customer-number")) }
                        th scope="col" { (a.t("name")) }
                        th scope="col" { (a.t("affiliation-title")) }
                        th scope="col" { (a.t("served-by")) }
                    } }
                    tbody {
                        @for r in *rows {
                            tr {
                                td data-label=(a.t("customer-number")) { (r.number.printed()) }
                                td data-label=(a.t("name")) { (r.name.as_str()) }
                                td.wrap data-label=(a.t("affiliation-title")) { (affiliation_names(a, affiliations, &r.affiliations)) }
                                td data-label=(a.t("served-by")) { (served_by(a, &r.channel)) }
                            }
                        }
                    }
                }
            },
        }
    }
}

/// The import is for operators only (the core checks the import itself; the preview writes
/// nothing, but reads the configuration and is no one else's business).
fn operators_only(a: &Authed) -> Result<(), PageError> {
    if is_operator(&Acting::User(a.principal.user().clone())) {
        Ok(())
    } else {
        Err(PageError::forbidden())
    }
}

/// `GET /operator/customers/import`.
pub(crate) async fn import_form(a: Authed) -> Result<Response, PageError> {
    operators_only(&a)?;
    Ok(a.page(
        a.t("import-customers"),
        import_page(&a, "", &Preview::None, &Errors::new()),
    ))
}

/// `POST /operator/customers/import`: "Prüfen" shows the problems or the rows; "Importieren"
/// imports when every row is valid (nothing otherwise) and leads to the customer list.
pub(crate) async fn import(a: Authed, req: axum::extract::Request) -> Result<Response, PageError> {
    operators_only(&a)?;
    let form = ImportForm::read(&a, req).await?;
    let affiliations = &a.portal().config().affiliations;
    let parsed = crate::import::parse_customers(form.csv.as_bytes(), affiliations);
    let rows = match &parsed {
        Err(problems) => {
            let mut errors = Errors::new();
            errors.general(a.t("import-nothing-imported"));
            return Ok(a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("import-customers"),
                import_page(&a, &form.csv, &Preview::Problems(problems), &errors),
            ));
        }
        Ok(rows) => rows,
    };
    if form.action != "import" {
        return Ok(a.page(
            a.t("import-customers"),
            import_page(&a, &form.csv, &Preview::Rows(rows), &Errors::new()),
        ));
    }
    match a
        .portal()
        .import_customers(&a.principal.actor(), rows)
        .await
    {
        Ok(report) => {
            let summary = a
                .t_with(
                    "import-summary",
                    [
                        ("created", report.created.into()),
                        ("updated", report.updated.into()),
                        ("unchanged", report.unchanged.into()),
                    ],
                )
                .into_owned();
            Ok(a.redirect_about(Notice::CustomersImported, summary, urls::OperatorCustomers))
        }
        Err(e @ portal_core::service::CustomerError::InvalidRow { .. }) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(a.lang, crate::error::ApiError::from(e).code()));
            Ok(a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("import-customers"),
                import_page(&a, &form.csv, &Preview::Rows(rows), &errors),
            ))
        }
        Err(e) => Err(e.into()),
    }
}
