//! Password hashing on a fixed set of threads, so logins cannot take the server's memory.
//!
//! An Argon2id check allocates 19 MiB. On Tokio's blocking pool (up to 512 threads) 64
//! parallel logins took `brevetd` to 1.26 GiB, and the allocator kept it. Here at most
//! `available_parallelism` checks run at once (about the core count), each on a long-lived
//! thread that keeps one Argon2 memory area and reuses it for every check ([`verify_reusing`]):
//! allocating and freeing 19 MiB per check would make glibc raise its mmap threshold and keep
//! the freed blocks in its arenas. At most [`QUEUE`] more checks wait, and a login beyond that
//! is refused at once with `throttled` instead of queueing without bound. One pool per process,
//! shared by every server in it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use brevet_identity::password;
use tokio::sync::oneshot;

use crate::Error;

/// Checks that may wait for a thread.
pub(crate) const QUEUE: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Hashing {
    jobs: SyncSender<Job>,
    workers: usize,
    running: Arc<AtomicI64>,
    peak: Arc<AtomicI64>,
    refused: AtomicU64,
}

/// The process's pool, started at first use.
pub(crate) static POOL: LazyLock<Hashing> = LazyLock::new(Hashing::start);

/// A hash to verify against when the user does not exist, so timing does not reveal which
/// accounts exist. Made on a hashing thread at first use.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| password::hash_password("brevet-dummy-password").unwrap_or_default());

impl Hashing {
    fn start() -> Hashing {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 64);
        let (jobs, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("brevet-hash-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hashing {
            jobs,
            workers,
            running: Arc::default(),
            peak: Arc::default(),
            refused: AtomicU64::new(0),
        }
    }

    /// How many checks may run at once.
    #[cfg(test)]
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// Whether `pw` matches `hash` (the dummy hash when `None`), checked on a hashing thread.
    pub(crate) async fn verify(&self, pw: String, hash: Option<String>) -> Result<bool, Error> {
        self.run(move || match hash {
            Some(h) => verify_reusing(&pw, &h),
            None => {
                let _ = verify_reusing(&pw, &DUMMY_HASH);
                false
            }
        })
        .await
    }

    /// A new Argon2id hash of `pw` (the identity crate's parameters), in the thread's memory.
    pub(crate) async fn hash(&self, pw: String) -> Result<String, Error> {
        self.run(move || hash_reusing(&pw)).await?
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let (running, peak) = (self.running.clone(), self.peak.clone());
        let job: Job = Box::new(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = f();
            running.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(out);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Throttled {
                    message: "too many logins at once: try again in a few seconds".into(),
                    retry_after: 2,
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Internal(
                    "the password hashing threads are gone".into(),
                ));
            }
        }
        rx.await
            .map_err(|_| Error::Internal("a password hashing thread failed".into()))
    }

    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP brevet_password_hashes_running Argon2 checks running now.\n# TYPE brevet_password_hashes_running gauge\nbrevet_password_hashes_running {}\n# HELP brevet_password_hashes_peak Most Argon2 checks that ran at once since start.\n# TYPE brevet_password_hashes_peak gauge\nbrevet_password_hashes_peak {}\n# HELP brevet_password_hash_threads Argon2 checks that may run at once.\n# TYPE brevet_password_hash_threads gauge\nbrevet_password_hash_threads {}\n# HELP brevet_password_hashes_refused_total Logins refused because too many waited for a check.\n# TYPE brevet_password_hashes_refused_total counter\nbrevet_password_hashes_refused_total {}",
            self.running.load(Ordering::SeqCst),
            self.peak.load(Ordering::SeqCst),
            self.workers,
            self.refused.load(Ordering::Relaxed),
        );
    }
}

/// The most Argon2 memory a stored hash may ask for (64 MiB, in 1 KiB blocks); a hash asking
/// for more never matches.
const MAX_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// This thread's Argon2 memory, kept from check to check.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `pw` matches the PHC string `phc` (Argon2id only; malformed never matches), computed
/// in this thread's kept memory. The final comparison is constant-time (`Output`'s equality).
fn verify_reusing(pw: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let need = params.block_count();
    if need > MAX_BLOCKS {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(Algorithm::Argon2id, version, params);
    let computed = MEMORY.with_borrow_mut(|memory| {
        if memory.len() < need {
            memory.resize(need, Block::default());
        }
        argon
            .hash_password_into_with_memory(pw.as_bytes(), salt, &mut out, &mut memory[..need])
            .is_ok()
    });
    computed && Output::new(&out).is_ok_and(|o| o == expected)
}

/// An Argon2id PHC string for `pw` with a fresh salt and the default (OWASP) parameters, as
/// `brevet_identity::password::hash_password` makes it, computed in this thread's kept memory.
fn hash_reusing(pw: &str) -> Result<String, Error> {
    use argon2::password_hash::{ParamsString, SaltString};
    let fail = |e: String| Error::Internal(format!("password hashing: {e}"));
    let mut salt_bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt_bytes)
        .map_err(|_| fail("no randomness from the system".into()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| fail(e.to_string()))?;
    let params = Params::default();
    let need = params.block_count();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    MEMORY
        .with_borrow_mut(|memory| {
            if memory.len() < need {
                memory.resize(need, Block::default());
            }
            argon.hash_password_into_with_memory(
                pw.as_bytes(),
                &salt_bytes,
                &mut out,
                &mut memory[..need],
            )
        })
        .map_err(|e| fail(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(e.to_string()))?),
    };
    Ok(phc.to_string())
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
            rx.recv()
        };
        match job {
            // A panic in one check must not end the thread (the others would then wait).
            Ok(job) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a password hashing job panicked");
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_in_kept_memory_makes_what_the_identity_crate_makes() {
        let ours = hash_reusing("correct horse").unwrap();
        let theirs = password::hash_password("correct horse").unwrap();
        let shape = |h: &str| h.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(shape(&ours), shape(&theirs), "{ours} vs {theirs}");
        assert!(password::verify_password("correct horse", &ours));
        assert!(!password::verify_password("correct horsf", &ours));
        assert!(verify_reusing("correct horse", &ours));
        assert_ne!(ours, hash_reusing("correct horse").unwrap(), "fresh salt");
    }

    #[test]
    fn reusing_memory_verifies_like_the_identity_crate() {
        let phc = password::hash_password("correct horse").unwrap();
        for _ in 0..2 {
            assert!(verify_reusing("correct horse", &phc));
            assert!(!verify_reusing("correct horsf", &phc));
            assert!(!verify_reusing("", &phc));
        }
        assert!(!verify_reusing("correct horse", "not a hash"));
        let argon2i = phc.replace("$argon2id$", "$argon2i$");
        assert!(!verify_reusing("correct horse", &argon2i));
        // A stored hash asking for 4 GiB of memory is refused, not computed.
        let huge = phc.replace("m=19456", "m=4194304");
        assert!(!verify_reusing("correct horse", &huge));
        assert_eq!(
            password::verify_password("correct horse", &phc),
            verify_reusing("correct horse", &phc)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_more_than_the_workers_at_once() {
        let hash = POOL.hash("pw".into()).await.unwrap();
        let checks: Vec<_> = (0..16)
            .map(|i| {
                let h = hash.clone();
                tokio::spawn(async move { POOL.verify(format!("pw{}", i % 2), Some(h)).await })
            })
            .collect();
        let mut ok = 0;
        for c in checks {
            ok += usize::from(c.await.unwrap().unwrap());
        }
        assert_eq!(ok, 0, "pw0/pw1 are not pw");
        assert!(POOL.verify("pw".into(), Some(hash)).await.unwrap());
        assert!(!POOL.verify("pw".into(), None).await.unwrap());
        let peak = POOL.peak.load(Ordering::SeqCst);
        assert!(peak >= 1 && peak as usize <= POOL.workers(), "peak {peak}");
    }
}
