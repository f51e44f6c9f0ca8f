//! The capabilities a policy grants on a path: [`Capability`], what a
//! request needs, and the set of them a rule holds.

use std::fmt;

/// What a request needs on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    Create,
    Read,
    Update,
    Patch,
    Delete,
    List,
    Sudo,
    /// Only meaningful inside policies: [`Acl::allows`](super::Acl::allows) never allows it.
    Deny,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 8] = [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Patch,
        Capability::Delete,
        Capability::List,
        Capability::Sudo,
        Capability::Deny,
    ];

    /// The name used in policies and in `sys/capabilities-self`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Patch => "patch",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
        }
    }

    /// The capability with this policy name (`"read"`), if any.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub(super) fn bits(self) -> Bits {
        match self {
            Capability::Create => Bits::CREATE,
            Capability::Read => Bits::READ,
            Capability::Update => Bits::UPDATE,
            Capability::Patch => Bits::PATCH,
            Capability::Delete => Bits::DELETE,
            Capability::List => Bits::LIST,
            Capability::Sudo => Bits::SUDO,
            Capability::Deny => Bits::DENY,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Bits(u16);

impl Bits {
    pub(super) const NONE: Bits = Bits(0);
    pub(super) const DENY: Bits = Bits(1);
    pub(super) const CREATE: Bits = Bits(1 << 1);
    pub(super) const READ: Bits = Bits(1 << 2);
    pub(super) const UPDATE: Bits = Bits(1 << 3);
    pub(super) const DELETE: Bits = Bits(1 << 4);
    pub(super) const LIST: Bits = Bits(1 << 5);
    pub(super) const SUDO: Bits = Bits(1 << 6);
    pub(super) const PATCH: Bits = Bits(1 << 7);
    pub(super) const SCAN: Bits = Bits(1 << 8);

    pub(super) fn has(self, other: Bits) -> bool {
        self.0 & other.0 != 0
    }

    pub(super) fn union(self, other: Bits) -> Bits {
        Bits(self.0 | other.0)
    }

    /// Two rules for the same pattern: union, but deny absorbs everything.
    pub(super) fn merge(self, other: Bits) -> Bits {
        if self.has(Bits::DENY) || other.has(Bits::DENY) {
            Bits::DENY
        } else {
            self.union(other)
        }
    }
}

/// Capability names accepted in policies, sorted (the order of
/// [`Acl::capabilities`](super::Acl::capabilities)).
pub(super) const NAMES: [(&str, Bits); 9] = [
    ("create", Bits::CREATE),
    ("delete", Bits::DELETE),
    ("deny", Bits::DENY),
    ("list", Bits::LIST),
    ("patch", Bits::PATCH),
    ("read", Bits::READ),
    ("scan", Bits::SCAN),
    ("sudo", Bits::SUDO),
    ("update", Bits::UPDATE),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_capability_names() {
        for cap in Capability::ALL {
            assert_eq!(Capability::from_name(cap.as_str()), Some(cap));
            assert_eq!(cap.to_string(), cap.as_str());
            assert!(
                NAMES
                    .iter()
                    .any(|(n, b)| *n == cap.as_str() && *b == cap.bits())
            );
        }
        assert_eq!(Capability::from_name("scan"), None);
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
