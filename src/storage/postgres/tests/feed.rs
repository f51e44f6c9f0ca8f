//! The change feed: what reaches other instances, what is refused, and
//! subscribers that do not keep up.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls};

use super::super::feed::{
    LogLimiter, MAX_NOTIFY_PATH, SUBSCRIBER_QUEUE, Subscriber, is_node_id, notifiable_path,
    parse_payload, payload_preview,
};
use super::super::pool::lock;
use super::super::{Change, Storage};
use super::support::{TEST_URL, TestSchema, paths_seen, wait_until};

#[test]
fn notifications_reach_other_instances() {
    let schema = TestSchema::new();
    let a = schema.open();
    let b = schema.open();
    let changes = b.subscribe().unwrap();
    let changes_of_a = a.subscribe().unwrap();
    // B's own write is not reported to B.
    b.put("mine", b"x").unwrap();
    assert_eq!(
        changes_of_a.recv_timeout(Duration::from_secs(2)).unwrap(),
        Change::Path("mine".to_owned())
    );

    // Latency from the start of the write call (so including its round
    // trip and commit) and from its return.
    let mut from_call = Vec::new();
    let mut from_return = Vec::new();
    let mut expect = |what: &str, path: &str, write: &dyn Fn()| {
        let called = Instant::now();
        write();
        let returned = Instant::now();
        let got = changes.recv_timeout(Duration::from_millis(100));
        let (total, after) = (called.elapsed(), returned.elapsed());
        assert_eq!(
            got,
            Ok(Change::Path(path.to_owned())),
            "{what}: no notification within 100 ms"
        );
        assert!(after < Duration::from_millis(100), "{what}: {after:?}");
        from_call.push(total);
        from_return.push(after);
    };
    expect("put", "k/1", &|| a.put("k/1", b"v").unwrap());
    expect("put again", "k/1", &|| a.put("k/1", b"w").unwrap());
    expect("delete", "k/1", &|| a.delete("k/1").unwrap());
    expect("cas insert", "k/2", &|| {
        assert!(a.compare_and_swap("k/2", None, Some(b"1")).unwrap());
    });
    expect("cas update", "k/2", &|| {
        assert!(a.compare_and_swap("k/2", Some(b"1"), Some(b"2")).unwrap());
    });
    // Writes that changed nothing notify nobody: the next change seen is
    // the one after them.
    expect("failed cas, missing delete, then put", "k/3", &|| {
        assert!(!a.compare_and_swap("k/2", Some(b"1"), Some(b"3")).unwrap());
        assert!(!a.compare_and_swap("k/2", None, Some(b"3")).unwrap());
        a.delete("never").unwrap();
        a.put("k/3", b"x").unwrap();
    });
    expect("cas delete", "k/2", &|| {
        assert!(a.compare_and_swap("k/2", Some(b"2"), None).unwrap());
    });
    expect("path with spaces", "a path/with spaces", &|| {
        a.put("a path/with spaces", b"x").unwrap();
    });

    // Several subscribers each get every change.
    let second = b.subscribe().unwrap();
    a.put("k/4", b"x").unwrap();
    for rx in [&changes, &second] {
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(500)),
            Ok(Change::Path("k/4".to_owned()))
        );
    }
    // B wrote again meanwhile: still nothing of its own, and no Resync.
    b.put("mine", b"y").unwrap();
    b.delete("mine").unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(changes.try_recv(), Err(mpsc::TryRecvError::Empty));
    assert_eq!(second.try_recv(), Err(mpsc::TryRecvError::Empty));
    // A sees B's writes.
    let seen: Vec<Change> =
        std::iter::from_fn(|| changes_of_a.recv_timeout(Duration::from_millis(500)).ok())
            .take(2)
            .collect();
    assert_eq!(seen, vec![Change::Path("mine".to_owned()); 2]);

    for (name, mut l) in [
        ("from the write call", from_call),
        ("from its return", from_return),
    ] {
        l.sort();
        eprintln!(
            "notification latency {name}: min {:?}, median {:?}, max {:?} ({} writes)",
            l[0],
            l[l.len() / 2],
            l[l.len() - 1],
            l.len()
        );
    }
}

#[test]
fn dropped_subscribers_are_forgotten() {
    let schema = TestSchema::new();
    let a = schema.open();
    let b = schema.open();
    drop(b.subscribe().unwrap());
    let kept = b.subscribe().unwrap();
    a.put("x", b"1").unwrap();
    assert_eq!(
        kept.recv_timeout(Duration::from_secs(1)),
        Ok(Change::Path("x".to_owned()))
    );
    assert_eq!(lock(&b.feed.subscribers).len(), 1);
}

#[test]
fn notification_payloads() {
    let schema = TestSchema::new();
    let s = schema.open();
    let node = &s.settings.node_id;
    assert!(is_node_id(node), "{node}");
    assert_eq!(s.settings.payload("a b"), format!("{node} a b"));
    let longest = "x".repeat(MAX_NOTIFY_PATH);
    assert_eq!(s.settings.payload(&longest), format!("{node} {longest}"));
    // Paths that receivers would refuse are sent as "something changed".
    for refused in [
        &"x".repeat(MAX_NOTIFY_PATH + 1),
        "",
        "a\nb",
        "a\u{1b}b",
        "a\u{85}",
    ] {
        assert_eq!(s.settings.payload(refused), *node, "{refused:?}");
    }
    // Whatever is sent is accepted as sent.
    for path in ["a b", " lead", "é/ü", "trail ", &longest, "\u{1b}"] {
        let payload = s.settings.payload(path);
        let expected = notifiable_path(path).then_some(path);
        assert_eq!(
            parse_payload(&payload),
            Some((node.as_str(), expected)),
            "{path:?}"
        );
    }
    assert_eq!(s.settings.channel, format!("transitd_{}", schema.name));
}

#[test]
fn payload_shapes() {
    let id = "0123456789abcdef0123456789abcdef";
    assert_eq!(parse_payload(id), Some((id, None)));
    assert_eq!(
        parse_payload(&format!("{id} a/b c")),
        Some((id, Some("a/b c")))
    );
    for bad in [
        String::new(),
        " ".to_owned(),
        "nothex a".to_owned(),
        format!("{} a", &id[..31]),
        format!("{} a", id.to_uppercase()),
        format!("{id}0 a"),
        format!("{id} "),
        format!("{id}\ta"),
        format!(" {id} a"),
        format!("{id} a\rb"),
        format!("{id} {}", "x".repeat(MAX_NOTIFY_PATH + 1)),
    ] {
        assert_eq!(parse_payload(&bad), None, "{bad:?}");
    }
    // A log line shows at most 8 characters, letters and digits.
    assert_eq!(payload_preview("ab\u{1b}[2Jcdefgh"), "ab??2Jcd");
    assert_eq!(payload_preview("é\n"), "??");
}

#[test]
fn log_limiter_lets_one_line_through_per_period() {
    let mut l = LogLimiter::new(Duration::from_secs(5));
    let t = Instant::now();
    assert_eq!(l.allow(t), Some(0));
    assert_eq!(l.allow(t + Duration::from_secs(1)), None);
    assert_eq!(l.allow(t + Duration::from_secs(4)), None);
    assert_eq!(l.allow(t + Duration::from_secs(5)), Some(2));
    assert_eq!(l.allow(t + Duration::from_secs(6)), None);
}

#[test]
fn a_full_subscriber_queue_owes_one_resync() {
    let (tx, rx) = mpsc::sync_channel(2);
    let mut sub = Subscriber { tx, missed: false };
    let path = |p: &str| Change::Path(p.to_owned());
    for p in ["a", "b", "c", "d"] {
        assert!(sub.offer(&path(p)));
    }
    assert!(sub.missed);
    assert!(sub.catch_up());
    assert!(sub.missed, "no room yet");
    assert_eq!(rx.try_recv(), Ok(path("a")));
    // The owed Resync takes the room; "e" does not fit behind it, but
    // that Resync, still queued, covers it: nothing more owed.
    assert!(sub.offer(&path("e")));
    assert!(!sub.missed);
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        vec![path("b"), Change::Resync]
    );
    // A Resync offered while one is owed is delivered once.
    for p in ["f", "g", "h"] {
        assert!(sub.offer(&path(p)));
    }
    assert_eq!(rx.try_recv(), Ok(path("f")));
    assert!(sub.offer(&Change::Resync));
    assert!(!sub.missed);
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        vec![path("g"), Change::Resync]
    );
    // Owed, then delivered by catch_up alone once there is room.
    for p in ["i", "j", "k"] {
        assert!(sub.offer(&path(p)));
    }
    assert_eq!(rx.try_recv(), Ok(path("i")));
    assert!(sub.catch_up());
    assert!(!sub.missed);
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        vec![path("j"), Change::Resync]
    );
    drop(rx);
    assert!(!sub.offer(&path("l")));
}

#[test]
fn forged_notifications_are_dropped() {
    let schema = TestSchema::new();
    let a = schema.open();
    let b = schema.open();
    let changes = a.subscribe().unwrap();
    let other = "0123456789abcdef0123456789abcdef";
    let forged = [
        String::new(),
        "nothex some/path".to_owned(),
        format!("{} p", &other[..31]),
        format!("{} p", other.to_uppercase()),
        format!("{other}0 p"),
        format!("g{} p", &other[1..]),
        format!("{other} "),
        format!("{other}\tp"),
        format!(" {other} p"),
        format!("{other} a\nb"),
        format!("{other} a\u{1b}[2J"),
        format!("{other} a\u{7f}"),
        format!("{other} a\u{85}"),
        format!("{other} {}", "x".repeat(MAX_NOTIFY_PATH + 1)),
        format!("{other} {}", "x".repeat(7900)),
    ];
    let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "NOTIFY \"{}\", 'not from transitd'",
            a.settings.channel
        ))
        .unwrap();
    for payload in &forged {
        admin
            .execute("SELECT pg_notify($1, $2)", &[&a.settings.channel, payload])
            .unwrap();
    }
    // The shape transitd sends for a path too long for a payload.
    admin
        .execute("SELECT pg_notify($1, $2)", &[&a.settings.channel, &other])
        .unwrap();
    b.put("good", b"1").unwrap();
    let seen: Vec<String> = paths_seen(&changes, Duration::from_millis(500))
        .iter()
        .map(|c| format!("{c:?}").chars().take(40).collect())
        .collect();
    assert_eq!(seen, ["Resync", "Path(\"good\")"]);
    assert_eq!(
        a.feed.rejected.load(Ordering::Relaxed),
        forged.len() as u64 + 1
    );
}

#[test]
fn a_subscriber_that_does_not_read_gets_a_resync() {
    let schema = TestSchema::new();
    let a = schema.open();
    let b = schema.open();
    let changes = a.subscribe().unwrap();
    let flood = SUBSCRIBER_QUEUE + 1000;
    let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_notify($1, $2::text || g::text) FROM generate_series(1, $3::int) g",
            &[
                &a.settings.channel,
                &"0123456789abcdef0123456789abcdef flood/",
                &i32::try_from(flood).unwrap(),
            ],
        )
        .unwrap();
    wait_until("the subscriber's queue overflows", || {
        lock(&a.feed.subscribers).iter().all(|s| s.missed)
    });
    // Let the feed go through the rest of the flood.
    thread::sleep(Duration::from_millis(500));
    let mut queued = 0;
    loop {
        match changes.recv_timeout(Duration::from_secs(2)) {
            Ok(Change::Path(p)) => {
                assert!(p.starts_with("flood/"), "{p}");
                queued += 1;
            }
            Ok(Change::Resync) => break,
            Err(e) => panic!("no Resync after {queued} changes: {e:?}"),
        }
    }
    // The queue held its capacity, no more; the rest was dropped.
    assert_eq!(queued, SUBSCRIBER_QUEUE);
    b.put("after", b"1").unwrap();
    let rest = paths_seen(&changes, Duration::from_millis(500));
    assert_eq!(rest.last(), Some(&Change::Path("after".to_owned())));
    assert!(queued + rest.len() < flood, "{}", rest.len());
    assert!(!rest.contains(&Change::Resync));
}
