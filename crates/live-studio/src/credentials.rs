//! Where a seller's token is kept: the OS keyring (the desktop's Secret Service), never
//! a plain file. Without a Secret Service running, the token is kept for this run
//! only, and the seller is told so.

use std::sync::{Arc, Mutex};

/// The keyring's name for Feza Live's secrets.
const SERVICE: &str = "live.feza.studio";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// No keyring to keep it in: the token is kept for this run only.
    #[error(
        "this computer has no keyring running (a Secret Service such as GNOME Keyring or \
         KWallet), so the token is kept until the app closes only: you will be asked for \
         it again next time ({0})"
    )]
    NoKeyring(String),
    #[error("the keyring refused: {0}")]
    Keyring(String),
}

/// The secrets of one kind (a seller's token for a server, a destination's stream key),
/// by name, in the keyring; in memory where there is none. The keyring is asked off
/// the async runtime (its client waits on D-Bus).
#[derive(Clone)]
pub struct Secrets {
    kind: &'static str,
    /// What could not go into the keyring, for this run only.
    fallback: Arc<Mutex<Vec<(String, String)>>>,
}

impl Secrets {
    /// The seller tokens, by server address.
    pub fn seller_tokens() -> Self {
        Self::new("seller-token")
    }

    /// The stream keys of extra destinations, by destination address.
    pub fn destination_keys() -> Self {
        Self::new("destination-key")
    }

    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fallback: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, keyring::Error> {
        keyring::Entry::new(SERVICE, &format!("{}:{name}", self.kind))
    }

    /// Keeps `secret` under `name`. `Err(NoKeyring)` when it is kept for this run only.
    pub async fn save(&self, name: &str, secret: &str) -> Result<(), CredentialError> {
        let (me, name, secret) = (self.clone(), name.to_owned(), secret.to_owned());
        off_runtime(move || me.save_now(&name, &secret)).await
    }

    fn save_now(&self, name: &str, secret: &str) -> Result<(), CredentialError> {
        self.forget_in_memory(name);
        match self.entry(name).and_then(|e| e.set_password(secret)) {
            Ok(()) => Ok(()),
            Err(e) if no_keyring(&e) => {
                self.lock().push((name.to_owned(), secret.to_owned()));
                Err(CredentialError::NoKeyring(e.to_string()))
            }
            Err(e) => Err(CredentialError::Keyring(e.to_string())),
        }
    }

    /// The secret kept under `name`, if any.
    pub async fn load(&self, name: &str) -> Result<Option<String>, CredentialError> {
        let (me, name) = (self.clone(), name.to_owned());
        off_runtime(move || me.load_now(&name)).await
    }

    fn load_now(&self, name: &str) -> Result<Option<String>, CredentialError> {
        if let Some((_, secret)) = self.lock().iter().find(|(n, _)| n == name) {
            return Ok(Some(secret.clone()));
        }
        match self.entry(name).and_then(|e| e.get_password()) {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) if no_keyring(&e) => Err(CredentialError::NoKeyring(e.to_string())),
            Err(e) => Err(CredentialError::Keyring(e.to_string())),
        }
    }

    /// Forgets the secret kept under `name` (nothing kept is no error).
    pub async fn forget(&self, name: &str) -> Result<(), CredentialError> {
        let (me, name) = (self.clone(), name.to_owned());
        off_runtime(move || me.forget_now(&name)).await
    }

    fn forget_now(&self, name: &str) -> Result<(), CredentialError> {
        self.forget_in_memory(name);
        match self.entry(name).and_then(|e| e.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) if no_keyring(&e) => Ok(()),
            Err(e) => Err(CredentialError::Keyring(e.to_string())),
        }
    }

    fn forget_in_memory(&self, name: &str) {
        self.lock().retain(|(n, _)| n != name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.fallback.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `e` says there is no keyring to use at all (no Secret Service on the bus, no
/// session bus), rather than a refusal of the one there is.
fn no_keyring(e: &keyring::Error) -> bool {
    matches!(
        e,
        keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_)
    )
}

/// Runs a keyring call on a thread of its own.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CredentialError> + Send + 'static,
) -> Result<T, CredentialError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CredentialError::Keyring(format!("the keyring call failed: {e}")))?
}
