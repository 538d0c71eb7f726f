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
    page: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u64>,
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
    /// The page number asked for (`?page=`, without a cursor).
    page: Option<u64>,
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
            page: q.page.parse().ok().filter(|p| *p >= 1),
        }
    }

    /// The number of this page: `?page=`, else counted from the trail.
    pub(crate) fn current(&self) -> u64 {
        match (&self.cursor, self.page) {
            (None, Some(p)) => p,
            _ => self.trail.len() as u64 + 1,
        }
    }

    /// A link to page `page` by its number (lists that accept page numbers).
    pub(crate) fn page_link(&self, shell: &Shell, path: &impl Display, page: u64) -> String {
        shell.href(with_query(
            path,
            &LinkQuery {
                per_page: self.per_page,
                q: &self.search,
                cursor: None,
                trail: String::new(),
                page: (page > 1).then_some(page),
            },
        ))
    }

    /// A link to a page by its cursor (`None`: the first page).
    pub(crate) fn cursor_link(
        &self,
        shell: &Shell,
        path: &impl Display,
        cursor: Option<&str>,
    ) -> String {
        self.link(shell, path, cursor, &[])
    }

    /// The core's page request.
    pub(crate) fn request(&self) -> PageRequest {
        PageRequest {
            size: Some(self.per_page),
            page: match (&self.cursor, self.page) {
                (None, Some(p)) => Some(u32::try_from(p).unwrap_or(u32::MAX)),
                _ => None,
            },
            cursor: self.cursor.clone(),
        }
    }

    /// Rows before this page.
    pub(crate) fn offset(&self) -> u64 {
        (self.current() - 1) * u64::from(self.per_page)
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
                page: None,
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

    /// "Zurück", the first, nearby and last page numbers and "Nächste" under a list of `pages`
    /// pages at `path`, this page being `current`; `jump` gives the link to a page by its number
    /// (none: that page is reached with "Nächste" only), `next` the cursor after this page.
    pub(crate) fn numbered(
        &self,
        shell: &Shell,
        path: impl Display,
        current: u64,
        pages: u64,
        next: Option<&str>,
        jump: impl Fn(u64) -> Option<String>,
    ) -> Markup {
        let prev = (current > 1)
            .then(|| jump(current - 1))
            .flatten()
            .or_else(|| {
                self.trail.split_last().map(|(last, before)| {
                    let cursor = (last != "~").then_some(last.as_str());
                    self.link(shell, &path, cursor, before)
                })
            });
        let next = next.map(|n| {
            jump(current + 1).unwrap_or_else(|| {
                let mut trail = self.trail.clone();
                trail.push(self.cursor.clone().unwrap_or_else(|| "~".into()));
                self.link(shell, &path, Some(n), &trail)
            })
        });
        let pages = pages.max(current);
        let mut shown: Vec<u64> = [1, current.saturating_sub(1), current, current + 1, pages]
            .into_iter()
            .filter(|p| (1..=pages).contains(p))
            .collect();
        shown.sort_unstable();
        shown.dedup();
        html! {
            nav.pager aria-label=(shell.t("pager-pages")) {
                @match prev {
                    Some(href) => a rel="prev" href=(href) { (shell.t("pager-previous")) },
                    None => span.disabled { (shell.t("pager-previous")) },
                }
                @for (i, p) in shown.iter().enumerate() {
                    @if i > 0 && shown[i - 1] + 1 < *p { span.gap aria-hidden="true" { "…" } }
                    @if *p == current {
                        strong aria-current="page" { (p) }
                    } @else if let Some(href) = jump(*p) {
                        a href=(href) aria-label=(shell.t_with("pager-page", [("page", (*p).into())])) { (p) }
                    } @else {
                        span.disabled { (p) }
                    }
                }
                @match next {
                    Some(href) => a rel="next" href=(href) { (shell.t("pager-next")) },
                    None => span.disabled { (shell.t("pager-next")) },
                }
            }
        }
    }

    /// The page sizes offered: the usual ones, and this page's own when it is another
    /// (`?per_page=2`), so the list always shows which one applies.
    fn sizes(&self) -> Vec<u32> {
        let mut sizes = PAGE_SIZES.to_vec();
        if !sizes.contains(&self.per_page) {
            sizes.push(self.per_page);
            sizes.sort_unstable();
        }
        sizes
    }

    /// "10 Einträge anzeigen" and "Suchen" above the list at `path`. The page sizes are links
    /// (no script runs on the pages, so a choice box would apply only with "Suchen"): one
    /// click shows the first page in that size with the same search, and "Suchen" keeps the
    /// size.
    pub(crate) fn search_form(&self, shell: &Shell, path: impl Display) -> Markup {
        self.search_form_labelled(shell, path, &shell.t("search"))
    }

    /// [`Self::search_form`] with the search field labelled `label` (what it searches).
    pub(crate) fn search_form_labelled(
        &self,
        shell: &Shell,
        path: impl Display,
        label: &str,
    ) -> Markup {
        html! {
            div.list-controls {
                nav.per-page aria-label=(shell.t("list-page-size")) {
                    @for n in self.sizes() {
                        @if n == self.per_page {
                            strong aria-current="true" { (n) }
                        } @else {
                            a href=(shell.href(with_query(&path, &LinkQuery {
                                per_page: n,
                                q: &self.search,
                                cursor: None,
                                trail: String::new(),
                                page: None,
                            }))) { (n) }
                        }
                        " "
                    }
                    (shell.t("list-entries-per-page"))
                }
                form.search method="get" action=(shell.href(&path)) role="search" {
                    input type="hidden" name="per_page" value=(self.per_page);
                    label for="f-q" { (label) }
                    input #f-q type="search" name="q" value=(self.search);
                    button.secondary type="submit" { (shell.t("search")) }
                }
            }
        }
    }
}

/// The page sizes offered above a list.
const PAGE_SIZES: [u32; 4] = [10, 25, 50, 100];
