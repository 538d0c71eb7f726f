//! Permissions: the catalog of protected areas, groups of them ("Meine Daten"), and the rule that
//! decides access to an area (R1).
//!
//! The default catalog is the manual's ten permissions (section 3.3) with stable English keys and
//! German and English labels. Embedders supply their own with [`PermissionCatalog::new`].

use crate::values::Language;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

fn valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The stable key of a permission (`documents`, `support_requests`, …): 1–64 characters of
/// lower-case ASCII letters, digits, `_` and `-`, starting with a letter. Whether the key exists
/// is a question for the [`PermissionCatalog`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PermissionKey(String);

/// The text cannot be a permission or group key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed key (lower-case letters, digits, '_' and '-', starting with a letter)")]
pub struct MalformedKey;

impl PermissionKey {
    /// Parses a key.
    ///
    /// # Errors
    /// The text breaks the key syntax.
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        if valid_key(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(MalformedKey)
        }
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PermissionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PermissionKey {
    type Error = MalformedKey;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PermissionKey> for String {
    fn from(value: PermissionKey) -> Self {
        value.0
    }
}

/// The stable key of a permission group (`my_data`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupKey(String);

impl GroupKey {
    /// Parses a key.
    ///
    /// # Errors
    /// The text breaks the key syntax.
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        if valid_key(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(MalformedKey)
        }
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GroupKey {
    type Error = MalformedKey;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GroupKey> for String {
    fn from(value: GroupKey) -> Self {
        value.0
    }
}

/// A text in German and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedText {
    /// Deutsch.
    pub de: String,
    /// English.
    pub en: String,
}

impl LocalizedText {
    /// A text in both languages.
    #[must_use]
    pub fn new(de: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            de: de.into(),
            en: en.into(),
        }
    }

    /// The text in one language.
    #[must_use]
    pub fn get(&self, language: Language) -> &str {
        match language {
            Language::De => &self.de,
            Language::En => &self.en,
        }
    }
}

/// One protected area a user can be given access to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Stable key, used in the API and storage.
    pub key: PermissionKey,
    /// Shown in the permission table ("Meine Belege").
    pub label: LocalizedText,
    /// Shown beside it ("Rechnungen und Mahnungen einsehen").
    pub description: LocalizedText,
    /// The group it belongs to, if any.
    pub group: Option<GroupKey>,
}

/// A named set of permissions that an admin can grant or revoke at once ("Alle anhaken").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionGroup {
    /// Stable key.
    pub key: GroupKey,
    /// "Meine Daten".
    pub label: LocalizedText,
    /// "Alle Rechte im Bereich \"Meine Daten\" vergeben".
    pub description: LocalizedText,
}

/// Why a catalog cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Two permissions or two groups share a key.
    #[error("duplicate key {0}")]
    DuplicateKey(String),
    /// A permission names a group that is not in the catalog.
    #[error("permission {permission} names unknown group {group}")]
    UnknownGroup {
        /// The permission.
        permission: String,
        /// The group it names.
        group: String,
    },
    /// A group has no members.
    #[error("group {0} has no permissions")]
    EmptyGroup(String),
}

/// The permissions an installation knows, in display order, and their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionCatalog {
    permissions: Vec<Permission>,
    groups: Vec<PermissionGroup>,
    index: HashMap<PermissionKey, usize>,
}

/// A key that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0}")]
pub struct UnknownPermission(pub String);

impl PermissionCatalog {
    /// Builds a catalog.
    ///
    /// # Errors
    /// Duplicate keys, permissions naming unknown groups, or empty groups.
    pub fn new(
        permissions: Vec<Permission>,
        groups: Vec<PermissionGroup>,
    ) -> Result<Self, CatalogError> {
        let mut index = HashMap::new();
        for (i, p) in permissions.iter().enumerate() {
            if index.insert(p.key.clone(), i).is_some() {
                return Err(CatalogError::DuplicateKey(p.key.to_string()));
            }
        }
        let mut group_keys = BTreeSet::new();
        for g in &groups {
            if !group_keys.insert(g.key.clone()) {
                return Err(CatalogError::DuplicateKey(g.key.to_string()));
            }
        }
        for p in &permissions {
            if let Some(g) = &p.group
                && !group_keys.contains(g)
            {
                return Err(CatalogError::UnknownGroup {
                    permission: p.key.to_string(),
                    group: g.to_string(),
                });
            }
        }
        for g in &groups {
            if !permissions.iter().any(|p| p.group.as_ref() == Some(&g.key)) {
                return Err(CatalogError::EmptyGroup(g.key.to_string()));
            }
        }
        Ok(Self {
            permissions,
            groups,
            index,
        })
    }

    /// The manual's catalog (section 3.3): ten permissions, one group "Meine Daten".
    #[must_use]
    pub fn default_catalog() -> Self {
        let my_data = GroupKey::parse("my_data").expect("valid key");
        let p = |key: &str, de: &str, en: &str, dde: &str, den: &str, group: bool| Permission {
            key: PermissionKey::parse(key).expect("valid key"),
            label: LocalizedText::new(de, en),
            description: LocalizedText::new(dde, den),
            group: group.then(|| my_data.clone()),
        };
        let permissions = vec![
            p(
                "cloud_orders",
                "Bestell-Service Cloud",
                "Cloud ordering service",
                "Bestellungen für Cloud-Produkte aufgeben",
                "Place orders for cloud products",
                false,
            ),
            p(
                "cancellation",
                "Kündigen",
                "Cancellation",
                "Produkte und Verträge kündigen",
                "Cancel products and contracts",
                false,
            ),
            p(
                "payroll_service",
                "Mein HR Lohnabrechnung Service",
                "My HR payroll service",
                "Einsicht und Bearbeitung von BPO-Tickets (Payroll Service)",
                "View and edit BPO tickets (payroll service)",
                false,
            ),
            p(
                "documents",
                "Meine Belege",
                "My documents",
                "Rechnungen und Mahnungen einsehen",
                "View invoices and reminders",
                false,
            ),
            p(
                "licenses",
                "Meine Lizenzen",
                "My licences",
                "Einsicht in meine Lizenzen",
                "View my licences",
                true,
            ),
            p(
                "master_data",
                "Namens- und Adressänderung",
                "Name and address changes",
                "Stammdatenänderung (Name, Adresse, Lizenzen)",
                "Change master data (name, address, licences)",
                true,
            ),
            p(
                "shop",
                "Shop",
                "Shop",
                "Administration meines Shops",
                "Administer my shop",
                true,
            ),
            p(
                "payment_methods",
                "Zahlungsmethoden",
                "Payment methods",
                "Änderung der hinterlegten Zahlungsmethoden",
                "Change the stored payment methods",
                true,
            ),
            p(
                "support_requests",
                "Meine Supportanfragen",
                "My support requests",
                "Einsicht und Bearbeitung von Support-Tickets",
                "View and edit support tickets",
                false,
            ),
            p(
                "products_contracts",
                "Produkte und Verträge",
                "Products and contracts",
                "Anzeige meiner Produkte und Verträge",
                "Show my products and contracts",
                false,
            ),
        ];
        let groups = vec![PermissionGroup {
            key: my_data,
            label: LocalizedText::new("Meine Daten", "My data"),
            description: LocalizedText::new(
                "Alle Rechte im Bereich \"Meine Daten\" vergeben",
                "Grant all rights in the \"My data\" area",
            ),
        }];
        Self::new(permissions, groups).expect("the default catalog is consistent")
    }

    /// The permissions in display order.
    #[must_use]
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// The groups in display order.
    #[must_use]
    pub fn groups(&self) -> &[PermissionGroup] {
        &self.groups
    }

    /// Looks up a permission.
    #[must_use]
    pub fn get(&self, key: &PermissionKey) -> Option<&Permission> {
        self.index.get(key).map(|&i| &self.permissions[i])
    }

    /// Whether the key is in the catalog.
    #[must_use]
    pub fn contains(&self, key: &PermissionKey) -> bool {
        self.index.contains_key(key)
    }

    /// Looks up a group.
    #[must_use]
    pub fn group(&self, key: &GroupKey) -> Option<&PermissionGroup> {
        self.groups.iter().find(|g| &g.key == key)
    }

    /// The members of a group (empty for an unknown group).
    #[must_use]
    pub fn group_members(&self, key: &GroupKey) -> PermissionSet {
        self.permissions
            .iter()
            .filter(|p| p.group.as_ref() == Some(key))
            .map(|p| p.key.clone())
            .collect()
    }

    /// Every key in the catalog.
    #[must_use]
    pub fn all(&self) -> PermissionSet {
        self.permissions.iter().map(|p| p.key.clone()).collect()
    }

    /// Resolves a key given as text against the catalog.
    ///
    /// # Errors
    /// The key is malformed or not in the catalog.
    pub fn resolve(&self, raw: &str) -> Result<PermissionKey, UnknownPermission> {
        match PermissionKey::parse(raw) {
            Ok(k) if self.contains(&k) => Ok(k),
            _ => Err(UnknownPermission(raw.chars().take(64).collect())),
        }
    }
}

impl Default for PermissionCatalog {
    fn default() -> Self {
        Self::default_catalog()
    }
}

/// A set of permission keys, kept sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermissionSet(BTreeSet<PermissionKey>);

impl PermissionSet {
    /// The empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the key is in the set.
    #[must_use]
    pub fn contains(&self, key: &PermissionKey) -> bool {
        self.0.contains(key)
    }

    /// Adds a key; returns whether it was new.
    pub fn insert(&mut self, key: PermissionKey) -> bool {
        self.0.insert(key)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys in order.
    pub fn iter(&self) -> impl Iterator<Item = &PermissionKey> {
        self.0.iter()
    }

    /// Keys in both sets.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Keys in either set.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// Keys in `self` but not in `other`.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// Whether every key of `self` is in `other`.
    #[must_use]
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The keys joined by commas (for audit details and storage).
    #[must_use]
    pub fn joined(&self) -> String {
        self.0
            .iter()
            .map(PermissionKey::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromIterator<PermissionKey> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = PermissionKey>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a PermissionSet {
    type Item = &'a PermissionKey;
    type IntoIter = std::collections::btree_set::Iter<'a, PermissionKey>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> PermissionKey {
        PermissionKey::parse(s).unwrap()
    }

    #[test]
    fn default_catalog_is_the_manuals_ten_permissions() {
        let c = PermissionCatalog::default_catalog();
        assert_eq!(c.permissions().len(), 10);
        let labels: Vec<&str> = c
            .permissions()
            .iter()
            .map(|p| p.label.get(Language::De))
            .collect();
        for expected in [
            "Bestell-Service Cloud",
            "Kündigen",
            "Mein HR Lohnabrechnung Service",
            "Meine Belege",
            "Meine Lizenzen",
            "Namens- und Adressänderung",
            "Shop",
            "Zahlungsmethoden",
            "Meine Supportanfragen",
            "Produkte und Verträge",
        ] {
            assert!(labels.contains(&expected), "{expected} missing");
        }
        let my_data = c.group_members(&GroupKey::parse("my_data").unwrap());
        let expected: PermissionSet = ["licenses", "master_data", "shop", "payment_methods"]
            .into_iter()
            .map(key)
            .collect();
        assert_eq!(my_data, expected);
        assert_eq!(
            c.group(&GroupKey::parse("my_data").unwrap())
                .unwrap()
                .label
                .de,
            "Meine Daten"
        );
    }

    #[test]
    fn keys_have_a_strict_syntax() {
        assert!(PermissionKey::parse("documents").is_ok());
        for bad in ["", "Documents", "1abc", "a b", "ä", &"a".repeat(65)] {
            assert_eq!(PermissionKey::parse(bad), Err(MalformedKey), "{bad}");
        }
    }

    #[test]
    fn catalogs_refuse_duplicates_and_dangling_groups() {
        let perm = |k: &str, g: Option<&str>| Permission {
            key: key(k),
            label: LocalizedText::new(k, k),
            description: LocalizedText::new(k, k),
            group: g.map(|g| GroupKey::parse(g).unwrap()),
        };
        let group = |k: &str| PermissionGroup {
            key: GroupKey::parse(k).unwrap(),
            label: LocalizedText::new(k, k),
            description: LocalizedText::new(k, k),
        };
        assert!(matches!(
            PermissionCatalog::new(vec![perm("a", None), perm("a", None)], vec![]),
            Err(CatalogError::DuplicateKey(_))
        ));
        assert!(matches!(
            PermissionCatalog::new(vec![perm("a", Some("g"))], vec![]),
            Err(CatalogError::UnknownGroup { .. })
        ));
        assert!(matches!(
            PermissionCatalog::new(vec![perm("a", None)], vec![group("g")]),
            Err(CatalogError::EmptyGroup(_))
        ));
        assert!(PermissionCatalog::new(vec![perm("a", Some("g"))], vec![group("g")]).is_ok());
    }

    #[test]
    fn resolve_rejects_unknown_and_malformed_keys() {
        let c = PermissionCatalog::default_catalog();
        assert_eq!(c.resolve("documents"), Ok(key("documents")));
        assert!(c.resolve("root").is_err());
        assert!(c.resolve("DROP TABLE").is_err());
    }

    #[test]
    fn set_algebra() {
        let a: PermissionSet = ["a", "b"].into_iter().map(key).collect();
        let b: PermissionSet = ["b", "c"].into_iter().map(key).collect();
        assert_eq!(a.union(&b).joined(), "a,b,c");
        assert_eq!(a.intersection(&b).joined(), "b");
        assert_eq!(a.difference(&b).joined(), "a");
        assert!(a.intersection(&b).is_subset(&a));
    }
}
