//! `bank-server audit verify|show`: check the audit log's chain and its checkpoint with the
//! auditor's key, and print its entries; a damaged store is reported, never a crash.

use std::process::ExitCode;

use bank_server::admin::{self, AuditCheckError};

use super::args::{checkpoint_file, storage, AuditCommand, Opts};

pub(crate) fn audit(opts: &Opts, cmd: AuditCommand) -> ExitCode {
    let (show, args) = match cmd {
        AuditCommand::Verify(args) => (false, args),
        AuditCommand::Show(args) => (true, args),
    };
    let checkpoint_file = args.checkpoints.unwrap_or_else(|| checkpoint_file(opts));
    // A damaged store must be reported, never crash the auditor's tool.
    let checked = std::panic::catch_unwind(|| {
        let ledger = bank_server::store::open_existing(&storage(opts), &opts.data_dir)
            .map_err(AuditCheckError::Store)?;
        let key = admin::read_audit_key(&opts.audit_key_file)?;
        let events = admin::verify_audit(&*ledger, &key)?;
        let checkpoint = bank_server::store::read_checkpoint(&checkpoint_file)
            .map_err(AuditCheckError::Checkpoint)?;
        admin::verify_checkpoint(&*ledger, &key, events.len() as u64, &checkpoint)?;
        Ok((events, checkpoint))
    })
    .unwrap_or(Err(AuditCheckError::Broken(
        bank_server::audit::VerifyError {
            entry: 0,
            problem: "the store cannot be read (damaged)",
        },
    )));
    match checked {
        Ok((events, checkpoint)) => {
            if show {
                for (seq, event) in events.iter().enumerate() {
                    println!("{}", admin::format_event(seq, event));
                }
            }
            eprintln!(
                "audit log OK: {} entries; it reaches the checkpoint of {} entries in {}",
                events.len(),
                checkpoint.next_seq,
                checkpoint_file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.is_broken() => {
            eprintln!("audit log BROKEN: {e}");
            ExitCode::FAILURE
        }
        // No verdict: the check could not be made (missing file, wrong path, bank running).
        Err(e) => {
            eprintln!("bank-server: {e}");
            ExitCode::from(2)
        }
    }
}
