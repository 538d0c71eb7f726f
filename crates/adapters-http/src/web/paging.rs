//! Lists with a search field and cursor paging ("10 Einträge anzeigen", "Suchen", "Zurück",
//! "Nächste"): the user table, the logs and the operator's customer list.

use super::ctx::Shell;
use super::urls::with_query;
use maud::{Markup, html};
use portal_core::service::PageRequest;
use serde::{Deserialize, Serialize};
use std::fmt::Display;

/// The query of a list page: `?q=&per_page=&cursor=&trail=`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    /// The search text.
    pub(crate) q: String,
    per_page: String,
    cursor: String,
    trail: String,
}

impl ListQuery {
    /// The search text, trimmed.
    pub(crate) fn search(&self) -> &str {
        self.q.trim()
    }
}

/// The query of a link to another page of a list (`per_page` first, as the links always were).
#[derive(Serialize)]
struct LinkQuery<'a> {
    per_page: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    q: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    trail: String,
}

/// Cursor paging with "Zurück": the cursors of the pages before travel in `trail`.
pub(crate) struct Pager {
    /// This page's cursor (none: the first page).
    cursor: Option<String>,
    /// The cursors of the pages before (`~` for the first page).
    trail: Vec<String>,
    /// Rows per page.
    pub(crate) per_page: u32,
    /// The search text.
    search: String,
}

impl Pager {
    /// From the list's query; `default` rows per page unless it asks for 1 to 100.
    pub(crate) fn new(q: &ListQuery, default: u32) -> Self {
        Self {
            cursor: Some(q.cursor.clone()).filter(|c| !c.is_empty()),
            trail: q
                .trail
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            per_page: q
                .per_page
                .parse()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .unwrap_or(default),
            search: q.search().to_owned(),
        }
    }

    /// The core's page request.
    pub(crate) fn request(&self) -> PageRequest {
        PageRequest {
            size: Some(self.per_page),
            page: None,
            cursor: self.cursor.clone(),
        }
    }

    /// Rows before this page.
    pub(crate) fn offset(&self) -> u64 {
        self.trail.len() as u64 * u64::from(self.per_page)
    }

    fn link(
        &self,
        shell: &Shell,
        path: &impl Display,
        cursor: Option<&str>,
        trail: &[String],
    ) -> String {
        shell.href(with_query(
            path,
            &LinkQuery {
                per_page: self.per_page,
                q: &self.search,
                cursor,
                trail: trail.join("."),
            },
        ))
    }

    /// "Zurück" and "Nächste" under the list at `path`.
    pub(crate) fn nav(&self, shell: &Shell, path: impl Display, next: Option<&str>) -> Markup {
        let prev = self.trail.split_last().map(|(last, before)| {
            let cursor = (last != "~").then_some(last.as_str());
            self.link(shell, &path, cursor, before)
        });
        let next = next.map(|n| {
            let mut trail = self.trail.clone();
            trail.push(self.cursor.clone().unwrap_or_else(|| "~".into()));
            self.link(shell, &path, Some(n), &trail)
        });
        let page = self.trail.len() + 1;
        html! {
            nav.pager aria-label=(shell.t("pager-pages")) {
                @match prev {
                    Some(href) => a rel="prev" href=(href) { (shell.t("pager-previous")) },
                    None => span.disabled { (shell.t("pager-previous")) },
                }
                " " strong aria-current="page" { (page) } " "
                @match next {
                    Some(href) => a rel="next" href=(href) { (shell.t("pager-next")) },
                    None => span.disabled { (shell.t("pager-next")) },
                }
            }
        }
    }

    /// "10 Einträge anzeigen" and "Suchen" above the list at `path`.
    pub(crate) fn search_form(&self, shell: &Shell, path: impl Display) -> Markup {
        html! {
            form.search method="get" action=(shell.href(path)) role="search" {
                label for="f-per-page" {
                    select #f-per-page name="per_page" {
                        @for n in [10u32, 25, 50, 100] {
                            option value=(n) selected[n == self.per_page] { (n) }
                        }
                    }
                    " " (shell.t("list-entries-per-page"))
                }
                label for="f-q" { (shell.t("search")) }
                input #f-q type="search" name="q" value=(self.search);
                button.secondary type="submit" { (shell.t("search")) }
            }
        }
    }
}
