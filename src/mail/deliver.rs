//! Delivery of outbox messages: through SMTP with lettre's async transport when an SMTP URL is
//! configured (`TESSERA_SMTP_URL`, else the `smtp_url` setting), else as `.eml` files in the
//! data folder's `outbox/` so that nothing is lost on a machine without a mail server.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::settings::Settings;
use crate::store::mail::OutboxRow;

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Checks an SMTP URL the way delivery will read it.
pub fn check_smtp_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        return Err("must start with smtp:// or smtps://".into());
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|e| format!("is not a usable SMTP URL: {e}"))
}

/// Where mail goes, decided per message from the configuration and the settings.
pub struct Mailer {
    /// `TESSERA_SMTP_URL`: wins over the setting.
    configured_url: Option<String>,
    files: PathBuf,
    transport: Mutex<Option<(String, AsyncSmtpTransport<Tokio1Executor>)>>,
}

impl Mailer {
    pub fn new(configured_url: Option<String>, data_dir: &std::path::Path) -> Mailer {
        Mailer {
            configured_url: configured_url.filter(|u| !u.trim().is_empty()),
            files: data_dir.join("outbox"),
            transport: Mutex::new(None),
        }
    }

    /// The SMTP URL in force, if any.
    pub fn smtp_url(&self, settings: &Settings) -> Option<String> {
        self.configured_url.clone().or_else(|| settings.smtp_url())
    }

    /// Where messages go, for the start-up log.
    pub fn describe(&self, settings: &Settings) -> String {
        match self.smtp_url(settings) {
            Some(url) => format!("mail is sent through {}", without_password(&url)),
            None => format!(
                "no SMTP server is configured (TESSERA_SMTP_URL or the smtp_url setting): mail \
                 is written as .eml files to {}",
                self.files.display()
            ),
        }
    }

    fn transport(&self, url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut slot = self
            .transport
            .lock()
            .map_err(|_| "the mail transport is unavailable".to_owned())?;
        if let Some((cached_url, transport)) = slot.as_ref()
            && cached_url == url
        {
            return Ok(transport.clone());
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("the SMTP URL is not usable: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        *slot = Some((url.to_owned(), transport.clone()));
        Ok(transport)
    }

    /// Delivers one message; the error says why not (the outbox shows it).
    pub async fn deliver(&self, settings: &Settings, row: &OutboxRow) -> Result<(), String> {
        let message = build(row)?;
        match self.smtp_url(settings) {
            Some(url) => {
                let transport = self.transport(&url)?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("SMTP delivery failed: {e}"))
            }
            None => {
                tokio::fs::create_dir_all(&self.files)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", self.files.display()))?;
                let path = self.files.join(format!("{}.eml", row.id));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
        }
    }
}

fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The MIME message of an outbox row; its Message-ID is the row's id, so a receiver can tell
/// a repeated delivery.
fn build(row: &OutboxRow) -> Result<Message, String> {
    let from: Mailbox = row
        .sender
        .parse()
        .map_err(|e| format!("the sender '{}' is not a mailbox: {e}", row.sender))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(row.subject.clone())
        .message_id(Some(format!("<{}@tessera>", row.id)));
    for to in &row.recipients {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| format!("the recipient '{to}' is not a mailbox: {e}"))?;
        builder = builder.to(mailbox);
    }
    let built = match &row.html {
        Some(html) => builder.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(row.body.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
        ),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(row.body.clone()),
    };
    built.map_err(|e| format!("the message cannot be built: {e}"))
}
