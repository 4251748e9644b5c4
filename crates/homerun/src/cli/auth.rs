//! `homerun auth print-identity-token | print-access-token`: gcloud's, for a service
//! account homerun signs for (IAM Credentials' `generateIdToken` and
//! `generateAccessToken`), the token alone on stdout, e.g. for
//! `curl -H "Authorization: Bearer $(homerun auth print-identity-token ...)"`.

use clap::Subcommand;

use super::client::ApiClient;

/// The scope gcloud asks an access token for.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Print an ID token (a JWT homerun signs) of a service account for an audience,
    /// such as a private service's URL.
    PrintIdentityToken {
        /// The service account (email) the token is for.
        #[arg(long)]
        impersonate_service_account: String,
        /// The token's audience: the URL of the service it is for (or one of its
        /// custom audiences).
        #[arg(long)]
        audiences: String,
    },
    /// Print an access token: a service account's, or (without
    /// --impersonate-service-account) the token this CLI uses.
    PrintAccessToken {
        /// The service account (email) the token is for.
        #[arg(long)]
        impersonate_service_account: Option<String>,
        /// SCOPE,...: the scopes asked for (cloud-platform by default).
        #[arg(long)]
        scopes: Option<String>,
    },
}

pub async fn run(client: &ApiClient, cmd: AuthCommand) -> anyhow::Result<()> {
    let token = match cmd {
        AuthCommand::PrintIdentityToken {
            impersonate_service_account,
            audiences,
        } => {
            client
                .generate_id_token(&impersonate_service_account, &audiences)
                .await?
        }
        AuthCommand::PrintAccessToken {
            impersonate_service_account: Some(email),
            scopes,
        } => {
            let scopes = match scopes {
                Some(s) => super::args::split_list(&s),
                None => vec![CLOUD_PLATFORM_SCOPE.to_string()],
            };
            client.generate_access_token(&email, &scopes).await?
        }
        AuthCommand::PrintAccessToken {
            impersonate_service_account: None,
            scopes: _,
        } => client.credentials.require()?.to_string(),
    };
    println!("{token}");
    Ok(())
}
