//! `bank-server terminal`: add (an auth file or an enrollment link), list and revoke
//! terminals, on the stopped bank's database or through the running bank's admin socket.

use bank_server::admin::{self, AdminError, TerminalOp, TerminalReply};
use bank_server::ledger::TerminalRecord;
use bank_server::terminals::{auth_file_text, enrollment_link, write_new_secret_file};
use bank_server::StartError;
use protocol::{BankPin, Psk, TerminalId, TerminalRole};

use super::args::{ceilings, checkpoint_file, link_base, storage, Opts, TerminalCommand};

pub(crate) fn terminal(opts: &Opts, cmd: TerminalCommand) -> Result<(), StartError> {
    let op = match &cmd {
        TerminalCommand::Add {
            name, code: true, ..
        } => TerminalOp::AddCode {
            name: name.clone(),
            ceilings: Some(ceilings(opts)),
        },
        TerminalCommand::Add { name, .. } => TerminalOp::Add {
            name: name.clone(),
            ceilings: Some(ceilings(opts)),
        },
        TerminalCommand::List => TerminalOp::List,
        TerminalCommand::Revoke { id } => TerminalOp::Revoke { id: id.clone() },
    };
    let reply = admin::terminal_op(
        &opts.data_dir,
        &checkpoint_file(opts),
        &super::args::bank_key_file(opts),
        &storage(opts),
        &super::args::custody(opts),
        &super::args::node_name(opts),
        op,
    )?;
    match (cmd, reply) {
        (_, TerminalReply::Failed { error }) => return Err(AdminError::Refused(error).into()),
        (
            TerminalCommand::Add { name, web, out, .. },
            TerminalReply::Added {
                terminal_id,
                psk,
                bank,
            },
        ) => {
            let psk = zeroize::Zeroizing::new(psk);
            let bank = BankPin::parse(&bank).ok_or(AdminError::BadAnswerBankKey)?;
            let terminal = TerminalRecord {
                id: TerminalId::new(terminal_id).ok_or(AdminError::BadAnswerTerminalId)?,
                name,
                psk: Psk::from_hex(&psk).ok_or(AdminError::BadAnswerTerminalKey)?,
                revoked: false,
                created_ms: 0,
                role: TerminalRole::Atm,
                ceilings: ceilings(opts),
            };
            if web {
                let base = link_base(opts);
                println!("{}", enrollment_link(&base, &terminal, &bank).as_str());
                eprintln!(
                    "Open this link once in the browser that will be the ATM; it keeps the key."
                );
            } else if let Some(path) = out {
                write_new_secret_file(&path, &auth_file_text(&terminal, &bank)).map_err(
                    |source| StartError::File {
                        path: path.clone(),
                        source,
                    },
                )?;
                println!("{}", terminal.id);
            } else {
                print!("{}", auth_file_text(&terminal, &bank).as_str());
            }
        }
        (TerminalCommand::Add { .. }, TerminalReply::CodeIssued { code, expires_ms }) => {
            let code = zeroize::Zeroizing::new(code);
            println!("{}", code.as_str());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let minutes = expires_ms.saturating_sub(now).div_ceil(60_000);
            eprintln!(
                "Enroll the terminal with this code within {minutes} minutes (one try): \
                 `atm-enroll -s <auth-file> -c <code>` on the ATM, or the web ATM's \
                 \"Enroll with a code\"."
            );
        }
        (TerminalCommand::List, TerminalReply::Listed { terminals }) => {
            for t in terminals {
                let state = if t.revoked { "revoked" } else { "active" };
                let role = match t.role {
                    TerminalRole::Atm => "atm",
                    TerminalRole::Console => "console",
                };
                let show = |c: Option<protocol::Cents>| c.map_or("none".into(), |c| c.to_string());
                println!(
                    "{}\t{state}\t{role}\tmax-deposit={}\tmax-per-day={}\ttoday={}\t{}",
                    t.id,
                    show(t.ceilings.per_deposit),
                    show(t.ceilings.per_day),
                    t.deposited_today,
                    t.name
                );
            }
        }
        (TerminalCommand::Revoke { id }, TerminalReply::Revoked) => println!("revoked {id}"),
        _ => return Err(AdminError::UnexpectedAnswer.into()),
    }
    Ok(())
}
