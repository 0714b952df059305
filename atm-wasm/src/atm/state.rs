//! The page's state and its reducer (an `Action` enum, as in yew's function_todomvc example):
//! every change to what the page shows goes through [`State::apply`].

use std::rc::Rc;

use protocol::{
    AccountNumber, BankPin, Cents, ErrorCode, FullName, HistoryEntry, Response, TerminalId,
    Username,
};

use crate::atm::driver::{Driver, Event, Op, OpKind, HISTORY_LIMIT};
use crate::link;
use crate::link::enroll::{EnrollError, Slot};
use crate::link::enroll_code::CodeFailure;
pub use crate::link::Link;

/// The logged-in account, as the bank last told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The user name.
    pub username: Username,
    /// Name to greet with.
    pub full_name: FullName,
    /// The account number.
    pub account: AccountNumber,
    /// The balance.
    pub balance: Cents,
}

/// Which form an error or pending mark belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    /// The enrollment by code: its field's error, and pending while the exchange runs.
    EnrollCode,
    /// The enrollment form as a whole, shown under its first field (the terminal id, or a
    /// pasted link): a link's errors, a bad terminal id.
    Enroll,
    /// The enrollment form's key field.
    EnrollKey,
    /// The enrollment form's bank key field.
    EnrollBank,
    /// The login form: the bank's refusals and a missing password, under the password field.
    Login,
    /// The login form's username field.
    LoginUsername,
    /// The registration form (general errors).
    Register,
    /// The registration form's user name field.
    RegisterUsername,
    /// The registration form's full name field.
    RegisterFullName,
    /// The registration form's password field.
    RegisterPassword,
    /// The registration form's confirmation field.
    RegisterConfirm,
    /// The deposit panel.
    Deposit,
    /// The withdraw panel.
    Withdraw,
    /// The logout button.
    Logout,
    /// The balance and mini statement refresh.
    Statement,
}

/// Everything the page shows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct State {
    /// The enrolled terminal's id, when this browser is enrolled.
    pub terminal: Option<String>,
    /// The link to the bank.
    pub link: Link,
    /// The logged-in account.
    pub account: Option<Account>,
    /// The mini statement, newest first.
    pub history: Vec<HistoryEntry>,
    /// Requests sent and not yet answered, by form.
    pub pending: Vec<Form>,
    /// Errors shown next to what caused them.
    pub errors: Vec<(Form, String)>,
    /// A message at the top of the page (a confirmation, or why the person was logged out).
    pub notice: Option<String>,
    /// Seconds before an idle logout, while the warning shows.
    pub idle_warning: Option<u64>,
    /// Bumped on each successful deposit or withdrawal, so the forms clear their fields.
    pub completed: u32,
}

/// Everything that can change the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// This browser is now enrolled as this terminal.
    Enrolled(String),
    /// Show a message at the top of the page (one that no answer from the bank brings, like
    /// "enroll again").
    Notice(String),
    /// An enrollment by code failed (nothing was stored).
    EnrollFailed(CodeFailure),
    /// The enrollment was forgotten.
    Forgotten,
    /// The link changed.
    Link(Link),
    /// A request was sent from this form.
    Pending(Form),
    /// A form's input was refused before sending.
    Invalid(Form, String),
    /// Clear the errors of these forms (the person is typing again).
    ClearErrors(Vec<Form>),
    /// Something from the bank (through the driver).
    Bank(Event),
    /// The idle warning: seconds left, or `None` to hide it.
    IdleWarning(Option<u64>),
    /// The session was logged out for inactivity.
    IdleLogout,
    /// Hide the notice.
    DismissNotice,
}

/// The enrollment screen's fields (the code, and the link or typed fields): one error among
/// them at a time.
const ENROLL_FORMS: [Form; 4] = [
    Form::EnrollCode,
    Form::Enroll,
    Form::EnrollKey,
    Form::EnrollBank,
];

/// Where an enrollment error shows: under the field typed by hand that caused it, or, for a
/// pasted or opened link (`typed` false), under the first field, where links are pasted.
pub fn enroll_form_of(err: EnrollError, typed: bool) -> Form {
    match err {
        EnrollError::BadKey if typed => Form::EnrollKey,
        EnrollError::BadBank if typed => Form::EnrollBank,
        _ => Form::Enroll,
    }
}

/// Plain words for a dropped connection.
pub const LOST: &str = "The connection to the bank was lost before it answered. Please try again.";

impl State {
    /// The error shown for a form, if any.
    pub fn error(&self, form: Form) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == form)
            .map(|(_, e)| e.as_str())
    }

    /// Whether a form's request is under way.
    pub fn is_pending(&self, form: Form) -> bool {
        self.pending.contains(&form)
    }

    fn set_error(&mut self, form: Form, message: impl Into<String>) {
        self.errors.retain(|(f, _)| *f != form);
        self.errors.push((form, message.into()));
    }

    fn done(&mut self, form: Form) {
        self.pending.retain(|f| *f != form);
    }

    fn logged_out(&mut self) {
        self.account = None;
        self.history.clear();
        self.idle_warning = None;
        self.pending
            .retain(|f| matches!(f, Form::Login | Form::Register | Form::Enroll));
        self.errors.retain(|(f, _)| {
            !matches!(
                f,
                Form::Deposit | Form::Withdraw | Form::Logout | Form::Statement
            )
        });
    }

    /// Applies one action.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Enrolled(terminal) => {
                self.terminal = Some(terminal);
                self.done(Form::EnrollCode);
                self.errors.retain(|(f, _)| !ENROLL_FORMS.contains(f));
                self.notice = None;
                self.link = Link::Connecting;
            }
            Action::Notice(text) => self.notice = Some(text),
            Action::EnrollFailed(failure) => {
                self.done(Form::EnrollCode);
                self.errors.retain(|(f, _)| !ENROLL_FORMS.contains(f));
                self.set_error(Form::EnrollCode, failure.message());
            }
            Action::Forgotten => *self = Self::default(),
            Action::Link(link) => {
                self.link = link;
            }
            Action::Pending(form) => {
                if !self.pending.contains(&form) {
                    self.pending.push(form);
                }
                self.errors.retain(|(f, _)| match form {
                    Form::Register => !matches!(
                        f,
                        Form::Register
                            | Form::RegisterUsername
                            | Form::RegisterFullName
                            | Form::RegisterPassword
                            | Form::RegisterConfirm
                    ),
                    Form::EnrollCode => !ENROLL_FORMS.contains(f),
                    Form::Login => !matches!(f, Form::Login | Form::LoginUsername),
                    other => *f != other,
                });
                // The statement's refresh is no reason to hide a confirmation.
                if form != Form::Statement {
                    self.notice = None;
                }
            }
            Action::Invalid(form, message) => {
                if ENROLL_FORMS.contains(&form) {
                    self.errors.retain(|(f, _)| !ENROLL_FORMS.contains(f));
                }
                self.set_error(form, message);
            }
            Action::ClearErrors(forms) => self.errors.retain(|(f, _)| !forms.contains(f)),
            Action::Bank(event) => self.bank(event),
            Action::IdleWarning(secs) => self.idle_warning = secs,
            Action::IdleLogout => {
                self.logged_out();
                self.notice = Some(
                    "You were logged out because the ATM was not used for 3 minutes.".to_owned(),
                );
            }
            Action::DismissNotice => self.notice = None,
        }
    }

    fn bank(&mut self, event: Event) {
        match event {
            Event::Connected => self.link = Link::Up,
            Event::SessionEnded => {
                if self.account.is_some() {
                    self.logged_out();
                    self.notice = Some("Your session ended. Please log in again.".to_owned());
                }
            }
            Event::Lost(kind) => {
                let form = form_of(kind);
                self.done(form);
                if kind == OpKind::Logout {
                    self.logged_out();
                } else {
                    self.set_error(form, LOST);
                }
            }
            Event::Reply(kind, response) => self.reply(kind, response),
            Event::Row(row) => {
                // A retried transaction id answers with its first result: one row for it.
                if self.account.is_some() && !self.history.iter().any(|e| e.txid == row.txid) {
                    self.history.insert(0, row);
                    self.history.truncate(HISTORY_LIMIT as usize);
                }
            }
        }
    }

    fn reply(&mut self, kind: OpKind, response: Response) {
        let form = form_of(kind);
        self.done(form);
        match response {
            Response::Welcome {
                username,
                full_name,
                account,
                balance_cents,
            } => {
                self.account = Some(Account {
                    username,
                    full_name,
                    account,
                    balance: balance_cents,
                });
                self.errors.clear();
                self.notice = None;
                // The driver fetches the mini statement right behind a welcome.
                if !self.pending.contains(&Form::Statement) {
                    self.pending.push(Form::Statement);
                }
            }
            Response::Deposited {
                amount_cents,
                balance_cents,
                ..
            }
            | Response::Withdrawn {
                amount_cents,
                balance_cents,
                ..
            } => {
                self.set_balance(balance_cents);
                self.completed = self.completed.wrapping_add(1);
                let done = if kind == OpKind::Deposit {
                    "Deposited"
                } else {
                    "Withdrew"
                };
                self.notice = Some(format!(
                    "{done} {amount_cents}. Your balance is now {balance_cents}."
                ));
            }
            Response::Balance { balance_cents } => self.set_balance(balance_cents),
            Response::History { entries } => {
                if let Some(newest) = entries.first() {
                    self.set_balance(newest.balance_cents);
                }
                self.history = entries;
            }
            Response::LoggedOut {} => {
                if self.account.is_some() {
                    self.logged_out();
                    self.notice = Some("You are logged out. Thank you.".to_owned());
                }
            }
            // Console answers never come to an ATM (the bank refuses console requests here).
            Response::AccountOpened { .. }
            | Response::OperatorWelcome { .. }
            | Response::Overview { .. }
            | Response::AuditEntries { .. }
            | Response::Terminals { .. }
            | Response::TerminalAdded { .. }
            | Response::TerminalRevoked { .. }
            | Response::Enrolled { .. }
            | Response::PasswordChanged {}
            | Response::CardReissued {} => {}
            Response::Error { code } => self.refused(kind, code),
        }
    }

    fn set_balance(&mut self, balance: Cents) {
        if let Some(account) = &mut self.account {
            account.balance = balance;
        }
    }

    fn refused(&mut self, kind: OpKind, code: ErrorCode) {
        let form = match (kind, code) {
            (OpKind::Register, ErrorCode::NameTaken) => Form::RegisterUsername,
            (OpKind::Register, ErrorCode::WeakPassword) => Form::RegisterPassword,
            (OpKind::Balance | OpKind::History, _) => return,
            (OpKind::Deposit | OpKind::Withdraw | OpKind::Logout, ErrorCode::NotLoggedIn) => {
                self.logged_out();
                self.notice = Some("Your session ended. Please log in again.".to_owned());
                return;
            }
            (kind, _) => form_of(kind),
        };
        self.set_error(form, code.message());
    }
}

/// The form an operation is sent from.
pub fn form_of(kind: OpKind) -> Form {
    match kind {
        OpKind::Login => Form::Login,
        OpKind::Register => Form::Register,
        OpKind::Deposit => Form::Deposit,
        OpKind::Withdraw => Form::Withdraw,
        OpKind::Logout => Form::Logout,
        OpKind::Balance | OpKind::History => Form::Statement,
    }
}

impl yew::Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        next.apply(action);
        Rc::new(next)
    }
}

impl link::Page for State {
    type Driver = Driver;
    type Action = Action;
    const SLOT: Slot = Slot::Atm;
    const NOT_STORED: &'static str = "This browser would not store the terminal key (private \
                                      mode?). The ATM works until the page is closed.";
    const NO_WEBCRYPTO: &'static str = "This browser cannot hold the terminal key safely \
                                        (WebCrypto is missing: open the ATM over https, or on \
                                        this computer). Nothing was kept.";

    fn enrolled(terminal: &TerminalId, _: &BankPin) -> Action {
        Action::Enrolled(terminal.to_string())
    }

    fn forgotten() -> Action {
        Action::Forgotten
    }

    fn notice(text: String) -> Action {
        Action::Notice(text)
    }

    fn link(link: Link) -> Action {
        Action::Link(link)
    }

    fn bank(event: Event) -> Action {
        Action::Bank(event)
    }

    fn pending(op: &Op) -> Option<Action> {
        Some(Action::Pending(form_of(op.kind())))
    }
}
