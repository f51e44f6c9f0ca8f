//! Who may do what: tokens, policies, login methods.

pub mod approle;
pub mod cert;
pub mod glob;
pub mod jwt;
pub mod jwt_verify;
pub mod kubernetes;
pub mod method_store;
pub mod methods;
pub mod policy;
pub mod policy_store;
pub mod token;
pub mod userpass;
pub mod wrapping;

use std::sync::Arc;

use token::{TokenEntry, TokenId};

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: TokenId,
    pub entry: Arc<TokenEntry>,
}
