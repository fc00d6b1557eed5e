//! Unsubscribe links in campaign mail. A link carries the address and a signature made with a
//! server-wide secret, so nothing is stored per message and a link cannot be forged for
//! another address. Opening it shows a button; confirming records the address, and later
//! campaign mail skips it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;

use crate::auth::secrets::{new_token, token_hash};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::Executor;
use crate::store::templates as store;

const SECRET: &str = "unsubscribe";

/// Makes the signing secret on a first start.
pub async fn ensure_secret(ctx: &Context) -> Result<()> {
    if store::secret(&mut &ctx.db, SECRET).await?.is_some() {
        return Ok(());
    }
    let value = new_token("")?;
    let mut tx = ctx.db.begin().await?;
    store::put_secret_once(&mut tx, SECRET, &value).await?;
    tx.commit().await
}

async fn secret(ex: &mut impl Executor) -> Result<String> {
    store::secret(ex, SECRET)
        .await?
        .ok_or_else(|| Error::internal("the unsubscribe secret is missing"))
}

fn signature(secret: &str, email: &str) -> String {
    token_hash(&format!("{secret}:{email}"))[..32].to_owned()
}

/// The token of an address: `base64url(address).signature`.
pub fn token(secret: &str, email: &str) -> String {
    let email = email.trim().to_lowercase();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&email),
        signature(secret, &email)
    )
}

/// The address a token stands for, when its signature holds.
pub fn verify(secret: &str, token: &str) -> Option<String> {
    let (encoded, signed) = token.split_once('.')?;
    let email = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    (signature(secret, &email) == signed).then_some(email)
}

/// The link to put in a campaign mail to `email`.
pub async fn link(ex: &mut impl Executor, public_url: &str, email: &str) -> Result<String> {
    let secret = secret(ex).await?;
    Ok(format!(
        "{public_url}/unsubscribe?token={}",
        token(&secret, email)
    ))
}

/// The address behind a token (a 404 for a token that does not verify).
pub async fn address(ctx: &Context, token: &str) -> Result<String> {
    let secret = secret(&mut &ctx.db).await?;
    verify(&secret, token).ok_or_else(|| Error::not_found("this unsubscribe link is not valid"))
}

/// Records that the address behind `token` wants no more campaign mail.
pub async fn unsubscribe(ctx: &Context, token: &str) -> Result<String> {
    let email = address(ctx, token).await?;
    let (e, now) = (email.clone(), Utc::now());
    ctx.db
        .write(move |tx| Box::pin(async move { store::unsubscribe(tx, &e, None, now).await }))
        .await?;
    tracing::info!(%email, "unsubscribed from campaign mail");
    Ok(email)
}

/// The addresses among `emails` that unsubscribed.
pub async fn unsubscribed(ex: &mut impl Executor, emails: &[String]) -> Result<Vec<String>> {
    store::unsubscribed(ex, emails).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_address() {
        let t = token("s3cret", "Li.Lei@Example.com");
        assert_eq!(verify("s3cret", &t).as_deref(), Some("li.lei@example.com"));
        assert_eq!(verify("other", &t), None);
        let (_, signed) = t.split_once('.').unwrap();
        let forged = format!("{}.{signed}", URL_SAFE_NO_PAD.encode("boss@example.com"));
        assert_eq!(verify("s3cret", &forged), None);
        assert_eq!(verify("s3cret", "garbage"), None);
    }
}
