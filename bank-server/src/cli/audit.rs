//! `bank-server audit verify|show|keygen`: check every audit chain of the store (one, or one
//! per node on a shared database) and the checkpoint of one with the auditor's key file, and
//! print their entries (a damaged store is reported, never a crash); or make the auditor's key
//! pair.

use std::path::Path;
use std::process::ExitCode;

use bank_server::admin::{self, AuditCheckError};
use bank_server::audit::AuditorSecret;
use bank_server::terminals::write_new_secret_file;

use super::args::{checkpoint_file, storage, AuditCommand, Opts};

pub(crate) fn audit(opts: &Opts, cmd: AuditCommand) -> ExitCode {
    let (show, args) = match cmd {
        AuditCommand::Verify(args) => (false, args),
        AuditCommand::Show(args) => (true, args),
        AuditCommand::Keygen(args) => return keygen(&args.out),
    };
    let checkpoint_file = args.checkpoints.unwrap_or_else(|| checkpoint_file(opts));
    // A damaged store must be reported, never crash the auditor's tool.
    let checked = std::panic::catch_unwind(|| {
        let ledger = bank_server::store::open_existing(&storage(opts), &opts.data_dir)
            .map_err(AuditCheckError::Store)?;
        let keys = admin::read_audit_keys(&opts.audit_key_file)?;
        let chains = admin::verify_chains(&*ledger, &keys)?;
        let checkpoint = bank_server::store::read_checkpoint(&checkpoint_file)
            .map_err(AuditCheckError::Checkpoint)?;
        admin::verify_checkpoint(&*ledger, &keys, &chains, &checkpoint)?;
        Ok((chains, checkpoint))
    })
    .unwrap_or(Err(AuditCheckError::Broken(
        bank_server::audit::VerifyError {
            entry: 0,
            problem: "the store cannot be read (damaged)",
        },
    )));
    match checked {
        Ok((chains, checkpoint)) => {
            // One chain named "" is a single node's store: told as it always was.
            let named = chains.len() > 1 || chains.iter().any(|c| !c.log.chain.is_empty());
            for chain in &chains {
                if show {
                    if named {
                        println!("== {}", admin::chain_title(&chain.log.chain));
                    }
                    for (seq, event) in chain.events.iter().enumerate() {
                        println!("{}", admin::format_event(seq, event));
                    }
                }
                if named {
                    eprintln!(
                        "{}: OK, {} entries in {} epochs",
                        admin::chain_title(&chain.log.chain),
                        chain.events.len(),
                        chain.log.epochs.len()
                    );
                }
            }
            let entries: usize = chains.iter().map(|c| c.events.len()).sum();
            if named {
                eprintln!(
                    "audit log OK: {} chains, {entries} entries; {} reaches the checkpoint of {} \
                     entries in {}",
                    chains.len(),
                    admin::chain_title(&checkpoint.chain),
                    checkpoint.next_seq,
                    checkpoint_file.display()
                );
            } else {
                eprintln!(
                    "audit log OK: {entries} entries; it reaches the checkpoint of {} entries in {}",
                    checkpoint.next_seq,
                    checkpoint_file.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.is_broken() => {
            eprintln!("audit log BROKEN: {e}");
            ExitCode::FAILURE
        }
        // No verdict: the check could not be made (missing file, wrong path, bank running).
        Err(e) => {
            eprintln!("bank-server: cannot check the audit log: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes a fresh auditor private key to `out` and prints its public key.
fn keygen(out: &Path) -> ExitCode {
    let secret = AuditorSecret::random();
    if let Err(e) = write_new_secret_file(out, &secret.to_line()) {
        eprintln!("bank-server: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("{}", secret.public());
    eprintln!(
        "wrote the auditor's private key to {} (keep it here, off the bank); give the bank \
         the public key above: bank-server --auditor-public-key <it>",
        out.display()
    );
    ExitCode::SUCCESS
}
