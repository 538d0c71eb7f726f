//! An operator's changes to a registered client (operator API and pages): its name, URIs,
//! required permission, second factor, first-party flag and access-token format. The kind
//! (public or confidential) and the secret are not changed here: a new secret comes from
//! [`Portal::rotate_client_secret`], a client is switched off by [`Portal::disable_client`].

use super::{NewClient, OidcAdminError};
use crate::oidc::{AccessTokenFormat, Client};
use crate::service::{Actor, Portal};

/// The fields of a client an operator may change; every one is given (the whole new state).
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    /// Shown to users.
    pub name: String,
    /// Accepted redirect URIs (exact match); at least one.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// No consent page.
    pub first_party: bool,
    /// The permission users need (a catalog key).
    pub required_permission: Option<String>,
    /// Users must sign in with a second factor.
    pub require_second_factor: bool,
    /// Opaque or JWT access tokens.
    pub access_tokens: AccessTokenFormat,
}

impl ClientChanges {
    /// The changes that keep `client` as it is (a form's starting values).
    #[must_use]
    pub fn of(client: &Client) -> Self {
        Self {
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: client.backchannel_logout_uri.clone(),
            first_party: client.first_party,
            required_permission: client.required_permission.clone(),
            require_second_factor: client.require_second_factor,
            access_tokens: client.access_tokens,
        }
    }

    fn as_new(&self, public: bool) -> NewClient {
        NewClient {
            name: self.name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            public,
            first_party: self.first_party,
            required_permission: self.required_permission.clone(),
            require_second_factor: self.require_second_factor,
            access_tokens: self.access_tokens,
        }
    }
}

/// The names of the fields `changes` would change, in a fixed order.
fn changed_fields(c: &Client, changes: &ClientChanges) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut note = |differs: bool, name| {
        if differs {
            fields.push(name);
        }
    };
    note(c.name != changes.name.trim(), "name");
    note(c.redirect_uris != changes.redirect_uris, "redirect_uris");
    note(
        c.post_logout_redirect_uris != changes.post_logout_redirect_uris,
        "post_logout_redirect_uris",
    );
    note(
        c.backchannel_logout_uri != changes.backchannel_logout_uri,
        "backchannel_logout_uri",
    );
    note(c.first_party != changes.first_party, "first_party");
    note(
        c.required_permission != changes.required_permission,
        "required_permission",
    );
    note(
        c.require_second_factor != changes.require_second_factor,
        "require_second_factor",
    );
    note(c.access_tokens != changes.access_tokens, "access_tokens");
    fields
}

impl Portal {
    /// Changes a registered client (operators and the system), audited as
    /// `oidc.client_changed` with the names of the changed fields (never a secret). The same
    /// rules as at registration apply; a refused change changes nothing. A permission now
    /// required takes effect at the next use of every token of the client (each use checks it).
    ///
    /// # Errors
    /// Not an operator, unknown client, invalid fields, infrastructure.
    pub async fn update_client(
        &self,
        actor: &Actor,
        id: &str,
        changes: &ClientChanges,
    ) -> Result<Client, OidcAdminError> {
        self.change_client(actor, id, |c, _| {
            self.validate_new_client(&changes.as_new(c.public))?;
            let fields = changed_fields(c, changes).join(",");
            c.name = changes.name.trim().to_owned();
            c.redirect_uris.clone_from(&changes.redirect_uris);
            c.post_logout_redirect_uris
                .clone_from(&changes.post_logout_redirect_uris);
            c.backchannel_logout_uri
                .clone_from(&changes.backchannel_logout_uri);
            c.first_party = changes.first_party;
            c.required_permission
                .clone_from(&changes.required_permission);
            c.require_second_factor = changes.require_second_factor;
            c.access_tokens = changes.access_tokens;
            Ok(format!("fields={fields}"))
        })
        .await
    }
}
