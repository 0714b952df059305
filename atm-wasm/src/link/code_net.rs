//! Enrollment by a one-time code in the browser: an [`Enroller`]'s frames over one WebSocket
//! to the bank's `/ws`, one attempt at a time, with a deadline. Nothing here stores or logs
//! the code or the credentials: the caller gets them once, in its callback.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use protocol::enrollment::EnrollmentCode;
use protocol::Config;
use rand_core::OsRng;
use wasm_bindgen_futures::spawn_local;

use crate::link::connection::Broken;
use crate::link::controller::now_ms;
use crate::link::enroll::Enrollment;
use crate::link::enroll_code::{CodeFailure, Enroller, Progress};
use crate::link::socket::Socket;

/// How long an attempt may take, in milliseconds: the bank gives each of its two steps 10 s.
const DEADLINE_MS: u32 = 30_000;

/// What an attempt ends with: the credentials, or why there are none.
pub(crate) type Outcome = Result<Enrollment, CodeFailure>;

/// One attempt: its enroller, its socket, and where its outcome goes (taken when reported).
struct Attempt {
    enroller: Enroller,
    socket: Socket,
    done: Option<Box<dyn FnOnce(Outcome)>>,
}

impl Attempt {
    /// Reports `outcome` (once: later calls do nothing) after closing the socket.
    fn finish(this: &RefCell<Self>, outcome: Outcome) {
        let done = {
            let mut attempt = this.borrow_mut();
            attempt.socket.close();
            attempt.done.take()
        };
        if let Some(done) = done {
            done(outcome);
        }
    }

    /// One frame from the bank: answer it, or finish.
    fn frame(this: &RefCell<Self>, frame: &[u8]) -> Result<(), Broken> {
        let progress = this
            .borrow_mut()
            .enroller
            .receive(frame, &mut OsRng, now_ms());
        match progress {
            Ok(Progress::Send(frames)) => {
                this.borrow().socket.send(frames);
                Ok(())
            }
            Ok(Progress::Enrolled(enrollment)) => {
                Self::finish(this, Ok(enrollment));
                Ok(())
            }
            Err(failure) => {
                Self::finish(this, Err(failure));
                Err(Broken::Handshake)
            }
        }
    }

    /// The socket closed, or the deadline passed: a failure unless the enrollment is over.
    fn closed(this: &RefCell<Self>) {
        let failure = this.borrow_mut().enroller.closed();
        if let Some(failure) = failure {
            Self::finish(this, Err(failure));
        }
    }
}

/// The page's enrollments by code: at most one under way.
#[derive(Default)]
pub(crate) struct CodeEnrollment {
    busy: Rc<Cell<bool>>,
}

impl CodeEnrollment {
    /// Whether an attempt is under way.
    pub(crate) fn busy(&self) -> bool {
        self.busy.get()
    }

    /// Enrolls with `code` over a new socket to the bank; `done` gets the outcome, once (it
    /// may be called before this returns, when no socket can be opened). Returns `false`, and
    /// does nothing, while another attempt is under way.
    pub(crate) fn start(
        &self,
        code: &EnrollmentCode,
        done: impl FnOnce(Outcome) + 'static,
    ) -> bool {
        if self.busy.replace(true) {
            return false;
        }
        let busy = Rc::clone(&self.busy);
        let done = move |outcome| {
            busy.set(false);
            done(outcome);
        };
        let (enroller, hello) = Enroller::start(&Config::default(), code, &mut OsRng, now_ms());
        let attempt = Rc::new(RefCell::new(Attempt {
            enroller,
            socket: Socket::default(),
            done: Some(Box::new(done)),
        }));
        let (on_frame, on_close) = (Rc::clone(&attempt), Rc::clone(&attempt));
        let mut socket = Socket::default();
        let opened = socket.open(
            hello,
            move |frame| Attempt::frame(&on_frame, frame),
            move |_| Attempt::closed(&on_close),
        );
        attempt.borrow_mut().socket = socket;
        if !opened {
            Attempt::closed(&attempt);
            return true;
        }
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(DEADLINE_MS).await;
            Attempt::closed(&attempt);
        });
        true
    }
}
