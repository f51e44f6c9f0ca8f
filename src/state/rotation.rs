//! Automatic rotation: a key whose `auto_rotate_period` has passed since its
//! latest version was created gets a new version.
//!
//! The schedule is the stored creation time of the latest version, so it
//! survives restarts, and a node that was down for many periods rotates
//! once, not once per missed period (the new version restarts the clock).
//! Each rotation is decided again on the stored keyring inside the same
//! compare-and-swap as a manual rotate (`Mount::rotate_if_due`): nodes
//! sharing a PostgreSQL database that all find a key due add one version
//! between them. The check reads the cache first and runs on the blocking
//! pool, taking only a mount's writer lock: encrypts never wait for it, and
//! no lock is held while another is taken (no deadlock with key reads).

use std::sync::atomic::Ordering;

use time::OffsetDateTime;

use super::Unsealed;

/// One automatic rotation, for the log and the counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    pub mount: String,
    pub key: String,
    pub version: u32,
}

impl Unsealed {
    /// Rotate every key, in every mount, whose period has passed at `now`.
    /// Blocking (storage writes). A key that cannot rotate (an imported key
    /// without `allow_rotation`) or whose write fails is logged and skipped:
    /// one key never stops the others.
    pub fn rotate_due_keys(&self, now: OffsetDateTime) -> Vec<Rotated> {
        let mut rotated = Vec::new();
        let Ok(mounts) = self.mounts() else {
            return rotated;
        };
        for mount in mounts {
            let Ok(names) = mount.key_names() else {
                continue;
            };
            for name in names {
                // The cached copy first: most keys are not due, and this costs
                // no storage read.
                let due = mount
                    .key(&name)
                    .ok()
                    .flatten()
                    .is_some_and(|ring| ring.rotation_due(now));
                if !due {
                    continue;
                }
                match mount.rotate_if_due(&name, now) {
                    Ok(Some(version)) => {
                        self.auto_rotations.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(mount = %mount.path, key = %name, version, "key rotated automatically");
                        rotated.push(Rotated {
                            mount: mount.path.clone(),
                            key: name,
                            version,
                        });
                    }
                    // Rotated by another node meanwhile, or deleted.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(mount = %mount.path, key = %name, error = %e, "automatic rotation failed");
                    }
                }
            }
        }
        rotated
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use transit_keys::{ConfigChange, CreateOptions, KeyType, Keyring};

    use super::*;
    use crate::seal::SealKind;
    use crate::state::{AppState, Limits};
    use crate::storage::{MemoryStorage, Storage, StoreError, TestSchema};

    const HOUR: i64 = 3600;

    /// A fixed start; the tests move time by passing later instants. Far in
    /// the future (2096), so the real clock, which unsealing uses to catch
    /// up, never finds these keys due.
    fn t(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(4_000_000_000 + seconds).unwrap()
    }

    /// Nodes over one shared storage, unsealed with its one share.
    struct Site {
        storage: Box<dyn Fn() -> Arc<dyn Storage>>,
        share: String,
    }

    impl Site {
        /// Over the memory backend (shared, as several nodes would see it).
        fn new() -> (Self, AppState) {
            let memory = Arc::new(MemoryStorage::shared());
            Self::over(Box::new(move || Arc::clone(&memory) as Arc<dyn Storage>))
        }

        /// `storage` opens the one storage every node shares.
        fn over(storage: Box<dyn Fn() -> Arc<dyn Storage>>) -> (Self, AppState) {
            let first = Self::state(storage());
            let init = first
                .initialize(crate::seal::InitParams::shares(1, 1), Some("root"))
                .unwrap();
            let site = Self {
                storage,
                share: hex::encode(init.shares[0].as_slice()),
            };
            assert!(first.unseal(&site.share).unwrap());
            (site, first)
        }

        fn state(storage: Arc<dyn Storage>) -> AppState {
            AppState::new(storage, SealKind::Shamir, Limits::default(), "c".to_owned())
        }

        /// Another node (or the same one restarted), unsealed.
        fn node(&self) -> AppState {
            let state = Self::state((self.storage)());
            assert!(state.unseal(&self.share).unwrap());
            state
        }
    }

    fn mount_of(unsealed: &Unsealed, mount: &str) -> Arc<crate::state::Mount> {
        unsealed
            .resolve(&format!("{mount}/keys"))
            .unwrap()
            .unwrap()
            .0
    }

    fn create(unsealed: &Unsealed, mount: &str, name: &str, period: i64, now: OffsetDateTime) {
        let opts = CreateOptions {
            auto_rotate_period_secs: period as u64,
            ..CreateOptions::default()
        };
        mount_of(unsealed, mount)
            .update(name, |_| {
                let ring = Keyring::create(name, KeyType::Aes256Gcm96, &opts, now)?;
                Ok::<_, StoreError>((Some(ring), ()))
            })
            .unwrap();
    }

    /// The stored (not cached) latest version.
    fn stored_latest(unsealed: &Unsealed, mount: &str, name: &str) -> u32 {
        mount_of(unsealed, mount)
            .update(name, |ring| {
                let v = ring.unwrap().latest_version();
                Ok::<_, StoreError>((ring.cloned(), v))
            })
            .unwrap()
    }

    fn rotated(unsealed: &Unsealed, now: OffsetDateTime) -> Vec<(String, u32)> {
        unsealed
            .rotate_due_keys(now)
            .into_iter()
            .map(|r| (format!("{}/{}", r.mount, r.key), r.version))
            .collect()
    }

    fn one(key: &str, version: u32) -> Vec<(String, u32)> {
        vec![(key.to_owned(), version)]
    }

    #[test]
    fn a_due_key_rotates_once_and_a_restart_catches_up_once() {
        let (site, node) = Site::new();
        let unsealed = node.unsealed().unwrap();
        create(&unsealed, "transit", "k", HOUR, t(0));
        assert!(rotated(&unsealed, t(HOUR - 1)).is_empty());
        assert_eq!(rotated(&unsealed, t(HOUR)), one("transit/k", 2));
        assert!(rotated(&unsealed, t(HOUR + 1)).is_empty());
        assert_eq!(unsealed.auto_rotations.load(Ordering::Relaxed), 1);
        drop((unsealed, node));

        // Down for ten periods: one rotation on the way back, not ten; the
        // schedule then runs from that rotation.
        let restarted = site.node().unsealed().unwrap();
        assert_eq!(rotated(&restarted, t(11 * HOUR)), one("transit/k", 3));
        assert!(rotated(&restarted, t(11 * HOUR + 60)).is_empty());
        assert!(rotated(&restarted, t(12 * HOUR - 1)).is_empty());
        assert_eq!(rotated(&restarted, t(12 * HOUR)), one("transit/k", 4));
        assert_eq!(stored_latest(&restarted, "transit", "k"), 4);
    }

    #[test]
    fn unsealing_rotates_what_fell_due_while_sealed() {
        let (site, node) = Site::new();
        let two_hours_ago = OffsetDateTime::now_utc() - time::Duration::hours(2);
        create(
            &node.unsealed().unwrap(),
            "transit",
            "k",
            HOUR,
            two_hours_ago,
        );
        create(&node.unsealed().unwrap(), "transit", "later", HOUR, t(0));
        drop(node);
        // No upkeep runs here: the rotation is the unseal's own.
        let restarted = site.node().unsealed().unwrap();
        assert_eq!(stored_latest(&restarted, "transit", "k"), 2);
        assert_eq!(stored_latest(&restarted, "transit", "later"), 1);
        assert_eq!(restarted.auto_rotations.load(Ordering::Relaxed), 1);
    }

    /// Three nodes race for each period's rotation; exactly one version is
    /// added per period. `notified`: the nodes learn of the key by their
    /// change feed (PostgreSQL), not by being told here.
    fn three_nodes_race((site, first): (Site, AppState), notified: bool) {
        let nodes = [first, site.node(), site.node()];
        create(
            &nodes[0].unsealed().unwrap(),
            "transit",
            "shared",
            HOUR,
            t(0),
        );
        // Every node has the key cached, so each finds it due and races the
        // others for it.
        let path = mount_of(&nodes[0].unsealed().unwrap(), "transit").key_path("shared");
        for node in &nodes[1..] {
            let unsealed = node.unsealed().unwrap();
            let mount = mount_of(&unsealed, "transit");
            if notified {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while mount.key("shared").unwrap().is_none() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no notification of the key"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            } else {
                unsealed.apply_change(&path).unwrap();
            }
            assert!(mount.key("shared").unwrap().is_some());
        }
        for period in 1..=5 {
            let now = t(period * HOUR + 7);
            let start = Arc::new(Barrier::new(nodes.len()));
            let made: usize = std::thread::scope(|s| {
                let racers: Vec<_> = nodes
                    .iter()
                    .map(|node| {
                        let start = Arc::clone(&start);
                        s.spawn(move || {
                            let unsealed = node.unsealed().unwrap();
                            start.wait();
                            unsealed.rotate_due_keys(now).len()
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).sum()
            });
            assert_eq!(made, 1, "period {period}");
            let latest = stored_latest(&nodes[0].unsealed().unwrap(), "transit", "shared");
            assert_eq!(latest, period as u32 + 1, "period {period}");
        }
    }

    #[test]
    fn three_nodes_add_exactly_one_version_per_period() {
        three_nodes_race(Site::new(), false);
    }

    /// The same over a real PostgreSQL database (a fresh schema), the nodes
    /// following each other's writes by notification.
    #[test]
    fn three_nodes_on_postgresql_add_exactly_one_version_per_period() {
        let schema = Arc::new(TestSchema::new());
        let opened = Arc::clone(&schema);
        let site = Site::over(Box::new(move || {
            Arc::new(opened.open()) as Arc<dyn Storage>
        }));
        three_nodes_race(site, true);
        drop(schema);
    }

    #[test]
    fn a_config_change_moves_the_schedule_and_zero_turns_it_off() {
        let (_site, node) = Site::new();
        let unsealed = node.unsealed().unwrap();
        create(&unsealed, "transit", "k", HOUR, t(0));
        let configure = |period: u64| {
            mount_of(&unsealed, "transit")
                .update("k", |ring| {
                    let mut next = ring.unwrap().clone();
                    next.configure(&ConfigChange {
                        auto_rotate_period_secs: Some(period),
                        ..ConfigChange::default()
                    })?;
                    Ok::<_, StoreError>((Some(next), ()))
                })
                .unwrap();
        };
        // Mid-period, the period doubles: not due at the old time.
        configure(2 * HOUR as u64);
        assert!(rotated(&unsealed, t(HOUR)).is_empty());
        assert_eq!(rotated(&unsealed, t(2 * HOUR)), one("transit/k", 2));
        configure(0);
        assert!(rotated(&unsealed, t(100 * HOUR)).is_empty());
        assert_eq!(stored_latest(&unsealed, "transit", "k"), 2);
    }

    #[test]
    fn keys_in_every_mount_rotate_on_their_own_schedules() {
        let (_site, node) = Site::new();
        let unsealed = node.unsealed().unwrap();
        unsealed.enable_mount("team/transit", "").unwrap();
        create(&unsealed, "transit", "a", HOUR, t(0));
        create(&unsealed, "team/transit", "b", 2 * HOUR, t(0));
        create(&unsealed, "team/transit", "never", 0, t(0));
        assert_eq!(rotated(&unsealed, t(HOUR)), one("transit/a", 2));
        let mut both = rotated(&unsealed, t(2 * HOUR));
        both.sort();
        assert_eq!(
            both,
            [
                ("team/transit/b".to_owned(), 2),
                ("transit/a".to_owned(), 3)
            ]
        );
        assert_eq!(stored_latest(&unsealed, "team/transit", "never"), 1);
    }
}
