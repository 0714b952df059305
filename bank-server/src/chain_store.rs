//! Appending to the audit chain inside an engine's transaction, alike for every engine: read
//! the head, begin an epoch when this writer holds none (its record stored in the same
//! commit), seal the entry, move the head. The evolving key stays in the caller's memory.

use rand_core::{OsRng, RngCore};

use crate::audit::{AuditEvent, AuditorPublicKey, ChainHead, ChainTip, Epoch};
use crate::ledger::{BankIdentity, LedgerError};
use crate::records::decode;

/// Why a store from before auditor keys cannot be appended to yet.
pub(crate) const NO_AUDITOR_KEY: &str = "the audit log is from before auditor keys and cannot \
be appended to until one is recorded: start the bank once (bank-server serve, with \
--auditor-public-key)";

/// What appending reads and writes, inside one transaction of an engine.
pub(crate) trait ChainRows {
    /// The engine's failure inside its transaction.
    type Error;
    /// A failure that aborts the transaction with `e`.
    fn fail(&self, e: LedgerError) -> Self::Error;
    /// The stored head ([`ChainHead::to_bytes`]), if the log exists.
    fn head_bytes(&self) -> Result<Option<Vec<u8>>, Self::Error>;
    /// The stored identity (JSON), if any.
    fn identity_bytes(&self) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Stores entry `seq`.
    fn put_entry(&self, seq: u64, entry: Vec<u8>) -> Result<(), Self::Error>;
    /// Replaces the head.
    fn put_head(&self, head: &ChainHead) -> Result<(), Self::Error>;
    /// Stores an epoch record.
    fn put_epoch(&self, epoch: &Epoch) -> Result<(), Self::Error>;
    /// The name of the chain appended to (see [`crate::audit::chain_label`]): `""`, the one
    /// chain of a single node's store, unless the engine keeps one per node.
    fn chain_name(&self) -> &str {
        ""
    }
}

/// What a writer does when the stored head is not where its tip says (another writer on the
/// same database appended meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Refuse: one writer per store (sled: the process holds the database's lock).
    Refuse,
    /// Begin a new epoch at the stored head (PostgreSQL: each node holds its own chain, so
    /// this is a commit whose outcome the writer never learned, and is safe either way).
    NewEpoch,
}

/// Appends `event` after `held` (this writer's tip, `None` before its first entry), returning
/// the tip after it; nothing is kept on failure.
pub(crate) fn append<R: ChainRows>(
    rows: &R,
    held: Option<ChainTip>,
    moved: Moved,
    event: &AuditEvent,
) -> Result<ChainTip, R::Error> {
    let Some(bytes) = rows.head_bytes()? else {
        return Err(rows.fail(LedgerError::Storage("audit log not initialised".into())));
    };
    if ChainHead::is_legacy_encoding(&bytes) {
        return Err(rows.fail(LedgerError::Storage(NO_AUDITOR_KEY.into())));
    }
    let Some(head) = ChainHead::from_bytes(&bytes) else {
        return Err(rows.fail(LedgerError::Storage("audit head corrupt".into())));
    };
    let tip = match (held, moved) {
        (Some(tip), _) if *tip.head() == head => tip,
        (Some(_), Moved::Refuse) => {
            return Err(rows.fail(LedgerError::Storage(
                "the audit log moved under its writer".into(),
            )))
        }
        (Some(_), Moved::NewEpoch) | (None, _) => begin_epoch(rows, head)?,
    };
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut iv);
    let (entry, next) = tip.append(event, iv);
    rows.put_entry(head.next_seq, entry)?;
    rows.put_head(next.head())?;
    Ok(next)
}

/// Begins an audit epoch at `head` for the auditor the identity names ([`ChainTip::begin`]):
/// the epoch record is written here, in the commit of the epoch's first entry.
fn begin_epoch<R: ChainRows>(rows: &R, head: ChainHead) -> Result<ChainTip, R::Error> {
    let Some(bytes) = rows.identity_bytes()? else {
        return Err(rows.fail(LedgerError::Storage("the store has no identity".into())));
    };
    let identity: BankIdentity = decode(&bytes).map_err(|e| rows.fail(e))?;
    let Some(auditor) = identity.auditor_key.as_deref() else {
        return Err(rows.fail(LedgerError::Storage(NO_AUDITOR_KEY.into())));
    };
    let Some(auditor) = AuditorPublicKey::from_hex(auditor) else {
        return Err(rows.fail(LedgerError::Storage(
            "the stored auditor key is corrupt".into(),
        )));
    };
    let label = crate::audit::chain_label(&identity.id, rows.chain_name());
    let (epoch, tip) = ChainTip::begin(&label, head, &auditor);
    rows.put_epoch(&epoch)?;
    Ok(tip)
}
