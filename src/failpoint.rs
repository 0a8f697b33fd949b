//! Crash points for the crash-safety tests: when `CDS_REDIS_CRASH_AT` names a point, the process
//! aborts there, exactly as a SIGKILL at that moment would leave things. Unset in production.

/// Aborts the process if `CDS_REDIS_CRASH_AT` is `name`.
pub fn hit(name: &str) {
    if std::env::var("CDS_REDIS_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("crash point {name}: aborting as requested by CDS_REDIS_CRASH_AT");
        // An abort, not an exit: no destructor, no flush, no graceful shutdown, like a kill.
        std::process::abort();
    }
}
