//! Password hashing and checking with Argon2id behind a bounded pool, plus a dummy hash so an
//! unknown user costs exactly what a wrong password costs.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::Password;
use rand_core::OsRng;
use tokio::sync::Semaphore;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// OWASP's recommendation: m = 19 MiB, t = 2, p = 1.
    pub const OWASP: Self = Self {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };
}

/// Why hashing did not produce an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashError {
    /// Every worker stayed busy for the whole wait.
    Busy,
    /// Argon2 itself failed (bad parameters or a corrupt stored hash).
    Internal,
}

/// A bounded pool of Argon2id workers. Cloning shares the pool.
#[derive(Clone)]
pub struct PasswordPool {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    wait: Duration,
    dummy: Arc<str>,
}

impl PasswordPool {
    /// A pool of `workers` concurrent hashes; a request waits at most `wait` for a worker.
    /// Computes the dummy hash right away (one Argon2 run).
    pub fn new(params: Argon2Params, workers: usize, wait: Duration) -> Result<Self, HashError> {
        let params =
            Params::new(params.m_kib, params.t, params.p, None).map_err(|_| HashError::Internal)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
        let dummy = hash_with(&argon, &hex::encode(random))?;
        Ok(Self {
            argon,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            wait,
            dummy: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let argon = self.argon.clone();
        let result = tokio::task::spawn_blocking(move || {
            let out = job(argon);
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashError::Internal)?;
        Ok(result)
    }

    /// Hashes a new password (PHC string).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move |argon| hash_with(&argon, password.expose()))
            .await?
    }

    /// Checks `password` against `stored` (a PHC string), or against the dummy hash when there
    /// is none, so both cost the same; the dummy never matches.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let real = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.to_string());
        let ok = self
            .run(move |argon| match PasswordHash::new(&phc) {
                Ok(hash) => Ok(argon
                    .verify_password(password.expose().as_bytes(), &hash)
                    .is_ok()),
                Err(_) => Err(HashError::Internal),
            })
            .await??;
        Ok(ok && real)
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HashError::Internal)
}

/// Hashes a new password with `params` on this thread (for command-line tools; the server
/// uses [`PasswordPool::hash`]).
pub fn hash_password(params: Argon2Params, password: &Password) -> Result<String, HashError> {
    let params =
        Params::new(params.m_kib, params.t, params.p, None).map_err(|_| HashError::Internal)?;
    hash_with(
        &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        password.expose(),
    )
}
