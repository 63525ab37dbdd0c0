//! For the crate's unit tests: run an async test body against a scratch database on each
//! engine (`both_engines!`), PostgreSQL skipped with a printed reason where it is missing.

use std::future::Future;

pub(crate) use brevet_testkit::{DbEngine, ScratchDb};

/// Runs `body` on a new scratch database on `engine`, on a two-thread runtime.
pub(crate) fn on<F, Fut>(engine: DbEngine, test: &str, body: F)
where
    F: FnOnce(ScratchDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = ScratchDb::start(engine, test) else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body(db));
}

/// For each `async fn NAME(db: ScratchDb)` named, the tests `NAME::sqlite` and
/// `NAME::postgres`.
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                $crate::test_db::on(
                    $crate::test_db::DbEngine::Sqlite,
                    concat!(stringify!($name), "::sqlite"),
                    super::$name,
                );
            }
            #[test]
            fn postgres() {
                $crate::test_db::on(
                    $crate::test_db::DbEngine::Postgres,
                    concat!(stringify!($name), "::postgres"),
                    super::$name,
                );
            }
        }
    )*};
}
