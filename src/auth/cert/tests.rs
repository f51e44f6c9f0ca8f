use super::*;

fn entry() -> CertEntry {
    CertSpec::blank_role("e")
}

#[test]
fn extension_values_are_read_as_go_reads_strings() {
    assert_eq!(extension_text(b"\x0c\x03abc"), "abc"); // UTF8String
    assert_eq!(extension_text(b"\x13\x02ok"), "ok"); // PrintableString
    assert_eq!(extension_text(b"\x16\x01x"), "x"); // IA5String
    assert_eq!(extension_text(b"\x04\x02ab"), ""); // OCTET STRING: not a string
    assert_eq!(extension_text(b"\x0c\x09ab"), ""); // truncated
    assert_eq!(extension_text(b""), "");
}

#[test]
fn key_ids_are_colon_separated_lowercase_hex() {
    assert_eq!(hex_colons(&[0x0a, 0xff, 0x00]), "0a:ff:00");
    assert_eq!(hex_colons(&[]), "");
}

#[test]
fn every_list_must_match_and_empty_lists_allow_any() {
    let leaf = Leaf {
        common_name: "web-1".into(),
        dns: vec!["a.example".into()],
        emails: vec!["x@example.com".into()],
        uris: vec!["spiffe://t/a".into()],
        ous: vec!["ops".into()],
        extensions: BTreeMap::from([("1.2.3".to_owned(), "prod".to_owned())]),
        ..Leaf::default()
    };
    assert!(leaf.matches(&entry()));
    let with = |edit: fn(&mut CertEntry)| {
        let mut e = entry();
        edit(&mut e);
        leaf.matches(&e)
    };
    // `allowed_names` looks at the CN, DNS and email SANs.
    assert!(with(|e| e.allowed_names = vec!["*.example".into()]));
    assert!(with(|e| e.allowed_names = vec!["x@*".into()]));
    assert!(with(|e| e.allowed_names = vec!["web-*".into()]));
    assert!(!with(|e| e.allowed_names = vec!["spiffe*".into()]));
    assert!(!with(|e| e.allowed_common_names = vec!["db-*".into()]));
    assert!(with(
        |e| e.allowed_common_names = vec!["db-*".into(), "web-?".into(), "web-*".into()]
    ));
    assert!(!with(|e| e.allowed_dns_sans = vec!["b.*".into()]));
    assert!(!with(|e| e.allowed_email_sans = vec!["*@other".into()]));
    assert!(!with(|e| e.allowed_uri_sans = vec!["spiffe://u/*".into()]));
    assert!(!with(
        |e| e.allowed_organizational_units = vec!["dev".into()]
    ));
    assert!(with(|e| e.required_extensions = vec!["1.2.3:pr*".into()]));
    assert!(!with(|e| e.required_extensions = vec!["1.2.3:dev".into()]));
    assert!(!with(|e| e.required_extensions = vec!["1.2.4:*".into()]));
}

#[test]
fn entry_checks() {
    let mut e = entry();
    assert_eq!(
        e.validate().unwrap_err().to_string(),
        "failed to parse certificate"
    );
    e.certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
    assert_eq!(
        e.validate().unwrap_err().to_string(),
        "failed to parse certificate"
    );
    e.token.token_ttl = 10;
    e.token.token_max_ttl = 5;
    assert_eq!(
        e.validate().unwrap_err().to_string(),
        "'token_ttl' cannot be greater than 'token_max_ttl'"
    );
}
