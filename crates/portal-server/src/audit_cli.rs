//! `portal audit export|verify`: the change log as a file that leaves Portal and is checked
//! offline (the format: `portal_core::audit_export`, docs/api.md *Change-log export*).

use crate::app::{self, Failure};
use crate::cli::AuditCommand;
use crate::config::ServerConfig;
use crate::secrets::ServerSecret;
use portal_core::Actor;
use portal_core::audit_export::{JwkSet, Keys, verify_export};
use portal_core::config::PortalConfig;
use portal_core::values::CustomerNumber;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

/// Runs a `portal audit` command.
///
/// # Errors
/// Invalid arguments, unknown customer, a broken chain, storage, unreadable files; for `verify`
/// the first entry that does not fit.
pub async fn audit(config: &ServerConfig, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Export { customer, output } => {
            export(config, &customer, output.as_deref()).await
        }
        AuditCommand::Verify { file, jwks } => verify(&file, jwks.as_deref()),
    }
}

async fn export(
    config: &ServerConfig,
    customer: &str,
    output: Option<&Path>,
) -> Result<(), Failure> {
    let number = CustomerNumber::parse(customer).map_err(|e| Failure::of("--customer", e))?;
    // The head is signed with the OpenID Connect signing key, sealed with the server secret.
    let source = config.secret_source().map_err(|e| Failure(e.to_string()))?;
    let (secret, _) = ServerSecret::obtain(source).map_err(|e| Failure::of("server secret", e))?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let store = Arc::new(store);
    let portal = app::portal(
        store.clone(),
        None,
        PortalConfig {
            mfa_key: Some(secret.mfa_key()),
            oidc_issuer: config.public_url().trim_end_matches('/').to_owned(),
            ..PortalConfig::default()
        },
    )?;
    drop(secret);
    let result = portal
        .export_customer_audit(&Actor::System, &number)
        .await
        .map_err(|e| Failure::of(&format!("customer {}", number.as_str()), e));
    app::close_store(&store).await?;
    let text = result?;
    match output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| Failure::of(&path.display().to_string(), e))?;
            let entries = text.lines().count().saturating_sub(2);
            eprintln!(
                "{}: {entries} entries of customer {} with the signed head",
                path.display(),
                number.as_str()
            );
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::of("standard output", e))?,
    }
    Ok(())
}

fn verify(file: &Path, jwks: Option<&Path>) -> Result<(), Failure> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| Failure::of(&name, e))?;
    let given = match jwks {
        Some(path) => {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| Failure::of(&path.display().to_string(), e))?;
            Some(
                serde_json::from_str::<JwkSet>(&raw)
                    .map_err(|e| Failure::of(&format!("{}: not a JWK set", path.display()), e))?,
            )
        }
        None => None,
    };
    let keys = given.as_ref().map_or(Keys::FromHeader, Keys::Given);
    let ok = verify_export(&text, keys).map_err(|p| Failure::of(&name, p))?;
    println!(
        "{name}: valid: {} entries of customer {}, head {} signed by key {} of {}{}",
        ok.entries,
        ok.customer,
        ok.head,
        ok.kid,
        ok.issuer,
        if given.is_some() {
            ""
        } else {
            " (keys from the file's header: compare them with the server's JWKS, or pass --jwks)"
        }
    );
    Ok(())
}
