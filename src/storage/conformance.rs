//! The contract every `Storage` backend keeps, as test functions each
//! backend's tests call with a fresh, empty instance: one definition of what
//! get/put/delete/list/compare-and-swap mean, not one per backend.

use super::{Storage, prefix_successor};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Values are opaque bytes (empty and non-UTF-8 included); deleting a
/// missing path is not an error.
pub fn put_get_delete(s: &dyn Storage) {
    assert_eq!(s.get("a").unwrap(), None);
    s.put("a", b"one").unwrap();
    assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"one"[..]));
    s.put("a", b"two").unwrap();
    assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"two"[..]));
    s.put("empty", b"").unwrap();
    assert_eq!(s.get("empty").unwrap(), Some(vec![]));
    let binary: Vec<u8> = (0..=255).collect();
    s.put("bin", &binary).unwrap();
    assert_eq!(s.get("bin").unwrap(), Some(binary));
    s.delete("a").unwrap();
    assert_eq!(s.get("a").unwrap(), None);
    s.delete("a").unwrap();
    s.delete("never").unwrap();
    assert_eq!(s.list("").unwrap(), strings(&["bin", "empty"]));
}

/// `list` is an exact, case-sensitive prefix match, sorted as Rust strings,
/// with no wildcard characters, correct at the edges of Unicode.
pub fn list_is_a_true_prefix_match(s: &dyn Storage) {
    let paths = [
        "keys/a",
        "keys/ab",
        "keys",
        "keysx/c",
        "p%/1",
        "pX/2",
        "p_/3",
        "pY/4",
        "P%/5",
        "p\\/6",
        "z\u{10FFFF}",
        "z\u{10FFFF}\u{10FFFF}/x",
        "\u{D7FF}a",
        "\u{E000}b",
        "é/1",
        "e/2",
    ];
    for p in paths {
        s.put(p, p.as_bytes()).unwrap();
    }
    let all = s.list("").unwrap();
    assert_eq!(all.len(), paths.len());
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "list must be sorted like Rust strings");
    assert_eq!(s.list("keys/a").unwrap(), strings(&["keys/a", "keys/ab"]));
    assert_eq!(s.list("keys/").unwrap(), strings(&["keys/a", "keys/ab"]));
    assert_eq!(
        s.list("key").unwrap(),
        strings(&["keys", "keys/a", "keys/ab", "keysx/c"])
    );
    assert_eq!(s.list("p%").unwrap(), strings(&["p%/1"]));
    assert_eq!(s.list("p_").unwrap(), strings(&["p_/3"]));
    assert_eq!(s.list("p\\").unwrap(), strings(&["p\\/6"]));
    assert_eq!(s.list("P").unwrap(), strings(&["P%/5"]));
    assert_eq!(s.list("%").unwrap(), Vec::<String>::new());
    assert_eq!(s.list("_").unwrap(), Vec::<String>::new());
    assert_eq!(s.list("e").unwrap(), strings(&["e/2"]));
    assert_eq!(s.list("é").unwrap(), strings(&["é/1"]));
    assert_eq!(
        s.list("z\u{10FFFF}").unwrap(),
        strings(&["z\u{10FFFF}", "z\u{10FFFF}\u{10FFFF}/x"])
    );
    assert_eq!(
        s.list("z\u{10FFFF}\u{10FFFF}").unwrap(),
        strings(&["z\u{10FFFF}\u{10FFFF}/x"])
    );
    assert_eq!(s.list("\u{D7FF}").unwrap(), strings(&["\u{D7FF}a"]));
    assert_eq!(s.list("nothing").unwrap(), Vec::<String>::new());
}

/// Compare-and-swap changes exactly what it was asked to, or nothing.
pub fn compare_and_swap(s: &dyn Storage) {
    assert!(s.compare_and_swap("k", None, Some(b"v1")).unwrap());
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    // Expected absent, but present: refused.
    assert!(!s.compare_and_swap("k", None, Some(b"x")).unwrap());
    assert!(!s.compare_and_swap("k", None, None).unwrap());
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(s.compare_and_swap("k", Some(b"v1"), Some(b"v2")).unwrap());
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    // Wrong expected value: refused, nothing changed.
    assert!(!s.compare_and_swap("k", Some(b"v1"), Some(b"v3")).unwrap());
    assert!(!s.compare_and_swap("k", Some(b"v1"), None).unwrap());
    assert!(!s.compare_and_swap("k", Some(b""), Some(b"v3")).unwrap());
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    // Expected present, but absent: refused, nothing created.
    assert!(
        !s.compare_and_swap("other", Some(b"v2"), Some(b"x"))
            .unwrap()
    );
    assert!(!s.compare_and_swap("other", Some(b"v2"), None).unwrap());
    assert_eq!(s.get("other").unwrap(), None);
    // Delete through compare-and-swap.
    assert!(s.compare_and_swap("k", Some(b"v2"), None).unwrap());
    assert_eq!(s.get("k").unwrap(), None);
    assert_eq!(s.list("").unwrap(), Vec::<String>::new());
    // Absent -> absent succeeds and changes nothing.
    assert!(s.compare_and_swap("k", None, None).unwrap());
    assert_eq!(s.get("k").unwrap(), None);
    // An empty value is a value, not absence.
    assert!(s.compare_and_swap("e", None, Some(b"")).unwrap());
    assert!(!s.compare_and_swap("e", None, Some(b"x")).unwrap());
    assert!(s.compare_and_swap("e", Some(b""), Some(b"x")).unwrap());
}

#[test]
fn prefix_successor_edges() {
    assert_eq!(prefix_successor(""), None);
    assert_eq!(prefix_successor("a").as_deref(), Some("b"));
    assert_eq!(prefix_successor("keys/").as_deref(), Some("keys0"));
    assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
    assert_eq!(prefix_successor("x\u{D7FF}").as_deref(), Some("x\u{E000}"));
}

#[test]
fn memory_storage_keeps_the_contract() {
    use super::MemoryStorage;
    put_get_delete(&MemoryStorage::new());
    list_is_a_true_prefix_match(&MemoryStorage::new());
    compare_and_swap(&MemoryStorage::new());
}
