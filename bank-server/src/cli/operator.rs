//! `bank-server operator add`: read the new operator's password, hash it here, add the
//! operator and their console terminal, and print the console's enrollment link.

use bank_server::admin::{self, AdminError, TerminalOp, TerminalReply};
use bank_server::ledger::{DepositCeilings, TerminalRecord};
use bank_server::terminals::console_link;
use bank_server::StartError;
use protocol::{Psk, TerminalId, TerminalRole};

use super::args::{checkpoint_file, console_link_base, storage, OperatorCommand, Opts};

/// The new operator's password: typed twice without echo on a terminal, else one line of
/// standard input (for scripts: `printf '%s\n' "$PASSWORD" | bank-server operator add ops`).
fn read_operator_password(name: &str) -> Result<zeroize::Zeroizing<String>, StartError> {
    use std::io::IsTerminal as _;
    let io = AdminError::ReadPassword;
    if std::io::stdin().is_terminal() {
        let first = zeroize::Zeroizing::new(
            rpassword::prompt_password(format!("Password for operator {name}: ")).map_err(io)?,
        );
        let again = zeroize::Zeroizing::new(rpassword::prompt_password("Again: ").map_err(io)?);
        if first != again {
            return Err(AdminError::PasswordsDiffer.into());
        }
        Ok(first)
    } else {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line).map_err(io)?;
        let trimmed = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(trimmed);
        Ok(line)
    }
}

/// The bank's password pepper, from its key file.
fn pepper(opts: &Opts) -> Result<bank_server::passwords::Pepper, StartError> {
    let path = super::args::bank_key_file(opts);
    bank_server::bank_key::pepper_from(&path)
        .map_err(|e| StartError::Store(bank_server::store::StoreError::BankKey(e)))
}

pub(crate) fn operator(opts: &Opts, cmd: OperatorCommand) -> Result<(), StartError> {
    let OperatorCommand::Add { name } = cmd;
    let password = read_operator_password(&name)?;
    // Hashed here: the password itself never reaches the running bank.
    let (username, password_hash) = admin::operator_credentials(
        bank_server::Argon2Params::OPERATOR,
        &name,
        &password,
        Some(&pepper(opts)?),
    )?;
    drop(password);
    let op = TerminalOp::AddOperator {
        username: username.to_string(),
        password_hash,
    };
    match admin::terminal_op(
        &opts.data_dir,
        &checkpoint_file(opts),
        &super::args::bank_key_file(opts),
        &storage(opts),
        &super::args::custody(opts),
        &super::args::node_name(opts),
        op,
    )? {
        TerminalReply::Added {
            terminal_id,
            psk,
            bank,
        } => {
            let psk = zeroize::Zeroizing::new(psk);
            let bank = protocol::BankPin::parse(&bank).ok_or(AdminError::BadAnswerBankKey)?;
            let terminal = TerminalRecord {
                id: TerminalId::new(terminal_id).ok_or(AdminError::BadAnswerTerminalId)?,
                name: String::new(),
                psk: Psk::from_hex(&psk).ok_or(AdminError::BadAnswerTerminalKey)?,
                revoked: false,
                created_ms: 0,
                role: TerminalRole::Console,
                ceilings: DepositCeilings::NONE,
            };
            let base = console_link_base(opts);
            println!("{}", console_link(&base, &terminal, &bank).as_str());
            eprintln!(
                "Operator {username} added. Open this link once in the operator's browser (it keeps the console's key), then log in as {username}."
            );
            Ok(())
        }
        TerminalReply::Failed { error } => Err(AdminError::Refused(error).into()),
        _ => Err(AdminError::UnexpectedAnswer.into()),
    }
}
