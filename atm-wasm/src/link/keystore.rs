//! The terminal key as a non-extractable WebCrypto HMAC key kept in IndexedDB: the page can use
//! it for the handshake's one HMAC (PROTOCOL.md §6.8) while it runs, but no script can read it.
//!
//! One record per slot (the ATM's, the console's) in the database `secure-atm`, object store
//! `terminals`: `{terminal, bank, key}`, where `key` is the `CryptoKey` itself (IndexedDB keeps
//! it by structured clone, still non-extractable). The key's bytes exist in this page once,
//! when an enrollment derives them; [`import`] turns them into the key and the caller drops
//! (zeroizes) them.

use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use js_sys::{Array, Object, Reflect, Uint8Array};
use protocol::{BankPin, MasterInput, MasterSecret, Psk, TerminalId};

pub use super::enroll::Slot;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

const DATABASE: &str = "secure-atm";
const VERSION: u32 = 1;
const STORE: &str = "terminals";

/// Why the key store failed; the page shows a generic message and logs this.
#[derive(Debug)]
pub enum KeyStoreError {
    /// No `window.crypto.subtle` (an insecure context: neither https nor localhost).
    NoWebCrypto,
    /// WebCrypto refused to import the key or to compute the HMAC.
    Crypto(JsValue),
    /// IndexedDB failed (private mode, quota, a blocked upgrade).
    Storage(idb::Error),
    /// A stored record is not one this page wrote.
    Malformed,
}

impl core::fmt::Display for KeyStoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoWebCrypto => f.write_str("WebCrypto is not available on this page"),
            Self::Crypto(err) => write!(f, "WebCrypto failed: {err:?}"),
            Self::Storage(err) => write!(f, "IndexedDB failed: {err}"),
            Self::Malformed => f.write_str("a stored terminal record is malformed"),
        }
    }
}

impl std::error::Error for KeyStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Storage(err) => Some(err),
            _ => None,
        }
    }
}

impl From<idb::Error> for KeyStoreError {
    fn from(err: idb::Error) -> Self {
        Self::Storage(err)
    }
}

/// A terminal this browser is enrolled as: its id, its bank's pin and its key, usable only
/// through [`StoredTerminal::master_secret`].
#[derive(Clone)]
pub struct StoredTerminal {
    /// The terminal's id.
    pub terminal: TerminalId,
    /// The bank this terminal pinned at enrollment.
    pub bank: BankPin,
    key: CryptoKey,
}

impl StoredTerminal {
    /// HMAC-SHA256(terminal key, `input`), computed by WebCrypto: the handshake's master secret.
    /// WebCrypto copies `input` when this is called (the view into wasm memory is not kept),
    /// so the future borrows nothing.
    pub fn master_secret(
        &self,
        input: &MasterInput,
    ) -> impl std::future::Future<Output = Result<MasterSecret, KeyStoreError>> + 'static {
        let signing = subtle().and_then(|subtle| {
            subtle
                .sign_with_str_and_u8_array("HMAC", &self.key, input.bytes())
                .map_err(KeyStoreError::Crypto)
        });
        async move {
            let buffer = JsFuture::from(signing?)
                .await
                .map_err(KeyStoreError::Crypto)?;
            let view = Uint8Array::new(&buffer);
            if view.length() != 32 {
                return Err(KeyStoreError::Malformed);
            }
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            view.copy_to(bytes.as_mut());
            view.fill(0, 0, 32);
            Ok(MasterSecret::from_bytes(*bytes))
        }
    }

    /// Whether the key can be read back (it never can; for tests and the page's self-check).
    pub fn extractable(&self) -> bool {
        self.key.extractable()
    }
}

fn subtle() -> Result<SubtleCrypto, KeyStoreError> {
    let crypto = web_sys::window()
        .ok_or(KeyStoreError::NoWebCrypto)?
        .crypto()
        .map_err(|_| KeyStoreError::NoWebCrypto)?;
    Ok(crypto.subtle())
}

async fn open() -> Result<Database, KeyStoreError> {
    let mut request = Factory::new()?.open(DATABASE, Some(VERSION))?;
    request.on_upgrade_needed(|event| {
        if let Ok(database) = event.database() {
            if !database.store_names().iter().any(|name| name == STORE) {
                // An error here fails the open request itself, which the caller sees.
                let _ = database.create_object_store(STORE, ObjectStoreParams::new());
            }
        }
    });
    Ok(request.await?)
}

/// Imports `psk` as a non-extractable HMAC-SHA256 key (usage `sign` only), for this terminal
/// and bank. The JS copy of the key bytes is overwritten once imported; the caller drops `psk`
/// (zeroized). Usable at once; [`store`] keeps it across reloads.
pub async fn import(
    terminal: &TerminalId,
    psk: &Psk,
    bank: &BankPin,
) -> Result<StoredTerminal, KeyStoreError> {
    let raw = Uint8Array::new_with_length(32);
    raw.copy_from(psk.expose());
    let algorithm = Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&algorithm, &k.into(), v);
    set("name", &"HMAC".into()).map_err(KeyStoreError::Crypto)?;
    set("hash", &"SHA-256".into()).map_err(KeyStoreError::Crypto)?;
    let usages = Array::of1(&"sign".into());
    let imported = subtle()?.import_key_with_object("raw", &raw, &algorithm, false, &usages);
    raw.fill(0, 0, 32);
    let key = JsFuture::from(imported.map_err(KeyStoreError::Crypto)?)
        .await
        .map_err(KeyStoreError::Crypto)?
        .dyn_into::<CryptoKey>()
        .map_err(|_| KeyStoreError::Malformed)?;
    Ok(StoredTerminal {
        terminal: terminal.clone(),
        bank: bank.clone(),
        key,
    })
}

/// Keeps `stored` under `slot` (IndexedDB keeps the `CryptoKey` itself, non-extractable),
/// replacing what was there.
pub async fn store(slot: Slot, stored: &StoredTerminal) -> Result<(), KeyStoreError> {
    let record = Object::new();
    let put = |k: &str, v: &JsValue| Reflect::set(&record, &k.into(), v);
    put("terminal", &stored.terminal.as_str().into()).map_err(KeyStoreError::Crypto)?;
    put("bank", &stored.bank.to_text().into()).map_err(KeyStoreError::Crypto)?;
    put("key", &stored.key).map_err(KeyStoreError::Crypto)?;
    let database = open().await?;
    let transaction = database.transaction(&[STORE], TransactionMode::ReadWrite)?;
    transaction
        .object_store(STORE)?
        .put(&record, Some(&slot.name().into()))?
        .await?;
    transaction.commit()?.await?;
    database.close();
    Ok(())
}

/// [`import`], then [`store`].
pub async fn save(
    slot: Slot,
    terminal: &TerminalId,
    psk: &Psk,
    bank: &BankPin,
) -> Result<StoredTerminal, KeyStoreError> {
    let stored = import(terminal, psk, bank).await?;
    store(slot, &stored).await?;
    Ok(stored)
}

/// The terminal stored under `slot`, if any.
pub async fn load(slot: Slot) -> Result<Option<StoredTerminal>, KeyStoreError> {
    let database = open().await?;
    let transaction = database.transaction(&[STORE], TransactionMode::ReadOnly)?;
    let record = transaction
        .object_store(STORE)?
        .get(JsValue::from(slot.name()))?
        .await?;
    transaction.await?;
    database.close();
    let Some(record) = record else {
        return Ok(None);
    };
    let field = |k: &str| Reflect::get(&record, &k.into()).map_err(|_| KeyStoreError::Malformed);
    let terminal = field("terminal")?
        .as_string()
        .and_then(TerminalId::new)
        .ok_or(KeyStoreError::Malformed)?;
    let bank = field("bank")?
        .as_string()
        .and_then(|text| BankPin::parse(&text))
        .ok_or(KeyStoreError::Malformed)?;
    let key = field("key")?
        .dyn_into::<CryptoKey>()
        .map_err(|_| KeyStoreError::Malformed)?;
    Ok(Some(StoredTerminal {
        terminal,
        bank,
        key,
    }))
}

/// Deletes the terminal stored under `slot` (the key with it).
pub async fn forget(slot: Slot) -> Result<(), KeyStoreError> {
    let database = open().await?;
    let transaction = database.transaction(&[STORE], TransactionMode::ReadWrite)?;
    transaction
        .object_store(STORE)?
        .delete(JsValue::from(slot.name()))?
        .await?;
    transaction.commit()?.await?;
    database.close();
    Ok(())
}
