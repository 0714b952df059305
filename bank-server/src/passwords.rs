//! Password hashing and checking with Argon2id behind a bounded pool, plus a dummy hash so an
//! unknown user costs exactly what a wrong password costs.
//!
//! With a pepper (a 32-byte key derived from the bank's key file, outside the data directory:
//! [`crate::secrets::StorageKeys::pepper`]), hashes are keyed: Argon2's own secret input, and
//! the PHC string says `keyid=p1`, so a copy of the database alone cannot test guesses. Hashes
//! without a key id (made before peppers) still verify, unkeyed.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::Password;
use rand_core::OsRng;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

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

    /// For operators, whose password opens the console: RFC 9106's second recommended option,
    /// m = 64 MiB, t = 3, p = 1: 5 times OWASP's memory × passes; measured, one verify took
    /// 174 ms against OWASP's 15.6 ms in the same criterion run (11 times the cost per guess).
    pub const OPERATOR: Self = Self {
        m_kib: 65_536,
        t: 3,
        p: 1,
    };

    fn params(self, keyed: bool) -> Result<Params, HashError> {
        let mut builder = argon2::ParamsBuilder::new();
        builder.m_cost(self.m_kib).t_cost(self.t).p_cost(self.p);
        if keyed {
            builder.keyid(argon2::KeyId::new(PEPPER_KEY_ID).map_err(|_| HashError::Internal)?);
        }
        builder.build().map_err(|_| HashError::Internal)
    }
}

/// The key id a peppered hash carries in its PHC string (`keyid=p1`, base64 `cDE`).
const PEPPER_KEY_ID: &[u8] = b"p1";

/// A pepper: the secret key Argon2 mixes into every new hash. No `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct Pepper(Arc<Zeroizing<[u8; 32]>>);

impl Pepper {
    /// Wraps 32 key bytes.
    pub fn new(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(Arc::new(bytes))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

/// The Argon2id instance for `params`, keyed with `pepper` when there is one.
fn argon<'k>(params: Params, pepper: Option<&'k Pepper>) -> Result<Argon2<'k>, HashError> {
    match pepper {
        Some(pepper) => {
            Argon2::new_with_secret(pepper.bytes(), Algorithm::Argon2id, Version::V0x13, params)
                .map_err(|_| HashError::Internal)
        }
        None => Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
    }
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
    params: Argon2Params,
    pepper: Option<Pepper>,
    permits: Arc<Semaphore>,
    wait: Duration,
    dummy: Arc<str>,
}

impl PasswordPool {
    /// A pool of `workers` concurrent hashes; a request waits at most `wait` for a worker.
    /// New hashes are keyed with `pepper` when given. Computes the dummy hash right away (one
    /// Argon2 run).
    pub fn new(
        params: Argon2Params,
        workers: usize,
        wait: Duration,
        pepper: Option<Pepper>,
    ) -> Result<Self, HashError> {
        let mut random = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
        let dummy = hash_password_keyed(params, &hex::encode(random), pepper.as_ref())?;
        Ok(Self {
            params,
            pepper,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            wait,
            dummy: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2Params, Option<Pepper>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let (params, pepper) = (self.params, self.pepper.clone());
        let result = tokio::task::spawn_blocking(move || {
            let out = job(params, pepper);
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashError::Internal)?;
        Ok(result)
    }

    /// Hashes a new password (PHC string), keyed with the pool's pepper.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.hash_with(self.params, password).await
    }

    /// Hashes a new password with `params` instead of the pool's (an operator's:
    /// [`Argon2Params::OPERATOR`]), keyed with the pool's pepper.
    pub async fn hash_with(
        &self,
        params: Argon2Params,
        password: Password,
    ) -> Result<String, HashError> {
        self.run(move |_, pepper| hash_password_keyed(params, password.expose(), pepper.as_ref()))
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
            .run(move |_, pepper| verify_keyed(password.expose(), &phc, pepper.as_ref()))
            .await??;
        Ok(ok && real)
    }
}

/// Checks `password` against the PHC string `phc`: keyed with `pepper` when the hash says it
/// was (`keyid`), unkeyed otherwise. A keyed hash and no pepper never match.
fn verify_keyed(password: &str, phc: &str, pepper: Option<&Pepper>) -> Result<bool, HashError> {
    let hash = PasswordHash::new(phc).map_err(|_| HashError::Internal)?;
    let keyed = hash.params.get("keyid").is_some();
    let pepper = match (keyed, pepper) {
        (true, None) => return Ok(false),
        (true, Some(pepper)) => Some(pepper),
        (false, _) => None,
    };
    // The parameters come from the hash itself; only the key is ours.
    let argon = argon(Params::default(), pepper)?;
    Ok(argon.verify_password(password.as_bytes(), &hash).is_ok())
}

/// Hashes `password` with `params`, keyed with `pepper` when there is one.
fn hash_password_keyed(
    params: Argon2Params,
    password: &str,
    pepper: Option<&Pepper>,
) -> Result<String, HashError> {
    let argon = argon(params.params(pepper.is_some())?, pepper)?;
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HashError::Internal)
}

/// Hashes a new password with `params` on this thread, keyed with `pepper` when given (for
/// command-line tools; the server uses [`PasswordPool::hash`]).
pub fn hash_password(
    params: Argon2Params,
    password: &Password,
    pepper: Option<&Pepper>,
) -> Result<String, HashError> {
    hash_password_keyed(params, password.expose(), pepper)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn peppered_hashes_need_the_pepper_and_old_ones_still_verify() {
        let pepper = Pepper::new(Zeroizing::new([7; 32]));
        let other = Pepper::new(Zeroizing::new([8; 32]));
        let keyed = hash_password_keyed(FAST, "hunter22", Some(&pepper)).unwrap();
        assert!(keyed.contains("keyid="), "{keyed}");
        assert!(verify_keyed("hunter22", &keyed, Some(&pepper)).unwrap());
        assert!(!verify_keyed("hunter23", &keyed, Some(&pepper)).unwrap());
        assert!(!verify_keyed("hunter22", &keyed, Some(&other)).unwrap());
        assert!(!verify_keyed("hunter22", &keyed, None).unwrap());
        let plain = hash_password_keyed(FAST, "hunter22", None).unwrap();
        assert!(!plain.contains("keyid="));
        assert!(verify_keyed("hunter22", &plain, Some(&pepper)).unwrap());
        assert!(verify_keyed("hunter22", &plain, None).unwrap());
        assert!(!verify_keyed("hunter23", &plain, Some(&pepper)).unwrap());
    }
}
