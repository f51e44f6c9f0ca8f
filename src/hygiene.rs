//! Process memory hygiene for a server that holds key material in memory.
//!
//! transitd keeps unwrapped encryption keys (and, while unsealed, the barrier
//! key) in its address space. Two ways they can leak to disk without anyone
//! reading them through the API:
//!
//! * **Core dumps.** A crash (or `gcore`, or a misconfigured `kernel.core_pattern`
//!   piping to a crash collector) writes the whole heap to a file.
//!   [`disable_core_dumps`] sets `RLIMIT_CORE` to 0 (soft *and* hard, so the
//!   process cannot raise it again) and clears the "dumpable" flag with
//!   `prctl(PR_SET_DUMPABLE, 0)`. The latter also stops other processes of the
//!   same user from `ptrace`-attaching to the server or reading
//!   `/proc/PID/mem`; `/proc/PID/status` and `/proc/PID/limits` stay readable.
//! * **Swap.** Pages holding keys can be written to a swap device and survive
//!   there after the process exits. [`lock_memory`] calls
//!   `mlockall(MCL_CURRENT | MCL_FUTURE)`, as Vault and OpenBao do, so that no
//!   page of the process is ever swapped out (on Linux with `MCL_ONFAULT`:
//!   each page is locked when first touched). This needs `CAP_IPC_LOCK` or a
//!   large enough `RLIMIT_MEMLOCK`; where neither is available the operator
//!   must opt out explicitly with `disable_mlock = true` (acceptable when swap
//!   is disabled or encrypted).
//!
//! Everything here goes through nix's safe wrappers; the crate forbids
//! `unsafe`.

use nix::sys::mman::{MlockAllFlags, mlockall};
use nix::sys::resource::{Resource, setrlimit};

/// Disables core dumps for this process: `RLIMIT_CORE` soft and hard limits
/// to 0, and (on Linux) `PR_SET_DUMPABLE` to 0.
///
/// Call it early in `main`, before any key material is loaded.
pub fn disable_core_dumps() -> Result<(), String> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|errno| {
        format!("cannot disable core dumps: setrlimit(RLIMIT_CORE, 0) failed: {errno}")
    })?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_dumpable(false).map_err(|errno| {
        format!("cannot disable core dumps: prctl(PR_SET_DUMPABLE, 0) failed: {errno}")
    })?;
    Ok(())
}

/// Locks all current and future pages of the process into RAM
/// (`mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`), so key material is
/// never swapped to disk. A kernel without `MCL_ONFAULT` (before Linux 4.4)
/// refuses the flag with EINVAL; then every mapped page is locked and made
/// resident at once, which costs memory but protects the same, and the
/// returned warning says so.
///
/// On failure the error explains the cause and how to proceed, in the spirit
/// of Vault's message for the same situation.
pub fn lock_memory() -> Result<Option<String>, String> {
    let all = MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE;
    match mlockall(all | on_fault()) {
        Ok(()) => Ok(None),
        Err(nix::errno::Errno::EINVAL) if !on_fault().is_empty() => mlockall(all)
            .map(|()| {
                Some(
                    "mlockall: this kernel has no MCL_ONFAULT, so all reserved memory is \
                     locked and resident (about 1 GiB more)"
                        .to_owned(),
                )
            })
            .map_err(|errno| mlock_error_message(&errno)),
        Err(errno) => Err(mlock_error_message(&errno)),
    }
}

/// `MCL_ONFAULT` (Linux 4.4+): a locked page is made resident when first
/// touched instead of when mapped. Every page that ever holds data is still
/// locked, but address space the allocator only reserves (mimalloc maps a
/// 1 GiB arena up front) costs no RAM: without it the server would hold a
/// gigabyte resident from its first allocation.
#[cfg(target_os = "linux")]
fn on_fault() -> MlockAllFlags {
    MlockAllFlags::from_bits_retain(libc::MCL_ONFAULT)
}

#[cfg(not(target_os = "linux"))]
fn on_fault() -> MlockAllFlags {
    MlockAllFlags::empty()
}

/// The operator-facing explanation when `mlockall` fails.
fn mlock_error_message(cause: &dyn std::fmt::Display) -> String {
    format!(
        "failed to lock memory: mlockall: {cause}\n\n\
         This usually means that the process is not allowed to lock memory. \
         transitd uses mlock to prevent memory holding key material from \
         being swapped to disk. This requires the CAP_IPC_LOCK capability \
         (for example `setcap cap_ipc_lock=+ep` on the binary, or \
         `AmbientCapabilities=CAP_IPC_LOCK` in a systemd unit) or an \
         RLIMIT_MEMLOCK large enough for the whole process's address space, \
         reserved memory included (about 1.2 GiB: `ulimit -l unlimited`, \
         `LimitMEMLOCK=infinity`), on an OS that supports \
         mlockall. Please allow memory locking on your system, or, if the \
         OS does not allow it (and swap is disabled or encrypted), disable \
         it by setting `disable_mlock = true` in the configuration file."
    )
}

/// The amount of locked memory of this process in bytes (`VmLck` from
/// `/proc/self/status`), or `None` where that is not available (non-Linux,
/// `/proc` not mounted).
pub fn memory_locked_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vmlck(&status)
}

/// Extracts `VmLck` in bytes from the text of a `/proc/PID/status` file.
///
/// The kernel prints it as `VmLck:\t     123 kB` (kibibytes despite the unit
/// name). Returns `None` if the line is missing or malformed.
pub fn parse_vmlck(status: &str) -> Option<u64> {
    let rest = status
        .lines()
        .find_map(|line| line.strip_prefix("VmLck:"))?;
    let mut fields = rest.split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    // The kernel always prints "kB" here; anything else is not a status file
    // we understand.
    if fields.next()? != "kB" || fields.next().is_some() {
        return None;
    }
    value.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_STATUS: &str = "Name:\ttransitd\n\
        Umask:\t0022\n\
        State:\tS (sleeping)\n\
        Tgid:\t4242\n\
        VmPeak:\t  123456 kB\n\
        VmSize:\t  123400 kB\n\
        VmLck:\t   20480 kB\n\
        VmPin:\t       0 kB\n\
        VmHWM:\t   10240 kB\n\
        VmRSS:\t   10240 kB\n\
        Threads:\t5\n";

    #[test]
    fn hygiene_parse_vmlck_reads_kibibytes() {
        assert_eq!(parse_vmlck(SAMPLE_STATUS), Some(20480 * 1024));
    }

    #[test]
    fn hygiene_parse_vmlck_zero() {
        assert_eq!(parse_vmlck("VmPin:\t 5 kB\nVmLck:\t       0 kB\n"), Some(0));
    }

    #[test]
    fn hygiene_parse_vmlck_missing_or_malformed() {
        assert_eq!(parse_vmlck(""), None);
        assert_eq!(parse_vmlck("Name:\tx\nVmRSS:\t 10 kB\n"), None);
        assert_eq!(parse_vmlck("VmLck:\t lots kB\n"), None);
        assert_eq!(parse_vmlck("VmLck:\t 10 parsecs\n"), None);
        assert_eq!(parse_vmlck("VmLck:\t -1 kB\n"), None);
        assert_eq!(parse_vmlck("VmLck:\t 18446744073709551615 kB\n"), None);
        // Only a line that starts with the key counts.
        assert_eq!(parse_vmlck("NotVmLck:\t 10 kB\n"), None);
    }

    #[test]
    fn hygiene_memory_locked_bytes_reads_own_status() {
        // This test process never calls mlockall; on Linux the value is
        // readable (and most likely 0), elsewhere it is None.
        if cfg!(target_os = "linux") && std::path::Path::new("/proc/self/status").exists() {
            assert!(memory_locked_bytes().is_some());
        }
    }

    #[test]
    fn hygiene_lock_memory_error_mentions_the_way_out() {
        // mlockall itself is not called in the unit-test process (it would lock
        // the whole test harness into RAM); only the message is checked.
        let text = mlock_error_message(&nix::errno::Errno::EPERM);
        assert!(
            text.starts_with("failed to lock memory: mlockall: EPERM"),
            "{text}"
        );
        for needle in [
            "CAP_IPC_LOCK",
            "RLIMIT_MEMLOCK",
            "disable_mlock = true",
            "swap",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }
}
