//! Named points inside multi-step barrier operations (rotate, rekey, root
//! generation) where the crash tests kill the server with SIGKILL, exactly as
//! `kill -9` would, to prove each point leaves the old or the new state.
//! Armed only by `TRANSITD_CRASH_AT=<point>` in the server's environment;
//! without it every point is a no-op.

use std::sync::OnceLock;

/// The variable that arms one point.
pub const ENV: &str = "TRANSITD_CRASH_AT";

/// Die here, now, if the environment names this point.
pub fn here(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok().filter(|p| !p.is_empty()));
    if armed.as_deref() == Some(point) {
        tracing::warn!(point, "crash point reached: killing the process");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
