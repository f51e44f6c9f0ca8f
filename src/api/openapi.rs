//! `sys/internal/specs/openapi`: an OpenAPI 3 document of the paths this
//! server serves, built from the route table's declarations.
//!
//! Each group of paths declares its paths next to the code that parses
//! them (`SysPath::DOCS`, `token::DOCS`, `endpoint::DOCS`, each login
//! method's `DOCS`); this module only turns those declarations into the
//! document. The route tests (`api/route.rs`) prove that each declared path
//! parses to the endpoint it names with exactly the declared operations,
//! that every endpoint is declared, and that each handler reads exactly the
//! fields its operation declares, so the document cannot drift from what
//! is served.
//!
//! As in Vault, a caller sees `sys/`, `auth/token/` and the mounts and login
//! methods its policies grant anything under; without a token, nothing.

use serde_json::{Map, Value, json};

use super::Op;
use super::sys::COMPAT_VERSION;
use crate::auth::methods::Backend;
use crate::auth::policy::Acl;
use crate::error::ApiResult;
use crate::state::Unsealed;

/// One path of a group, relative to the group's prefix (`encrypt/{name}`).
#[derive(Debug)]
pub(crate) struct PathDoc {
    pub path: &'static str,
    /// Path parameters whose values are a fixed set (`{kind}` of a
    /// datakey); every other `{param}` is a string.
    pub params: &'static [Field],
    pub ops: &'static [OpDoc],
}

/// A path whose parameters are all strings.
pub(crate) const fn plain_path(path: &'static str, ops: &'static [OpDoc]) -> PathDoc {
    PathDoc {
        path,
        params: &[],
        ops,
    }
}

/// One operation on a path: what it is called, what it reads, what it answers.
#[derive(Debug)]
pub(crate) struct OpDoc {
    pub op: Op,
    /// Unique within its group (`encrypt`); the document prefixes the group.
    pub id: &'static str,
    /// The body fields of a write, the query fields of a read or list.
    pub fields: &'static [Field],
    /// More of them, shared with other operations (a login method's token
    /// settings).
    pub shared: &'static [Field],
    pub answer: Answer,
}

/// A request field.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// The only values taken, where they are a fixed set (empty: any).
    pub one_of: &'static [&'static str],
    /// Read only by a request that gets past earlier checks (a key that
    /// exists, a valid signature) or in another server state (sealed): the
    /// route tests' sample requests do not reach it, so they check only
    /// that nothing undeclared is read.
    pub later: bool,
}

/// A field's JSON type, as clients send it (Vault also takes numbers and
/// booleans as strings; the document names the proper type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    /// Standard base64 text.
    Base64,
    Int,
    Bool,
    /// Seconds, or a Go duration string (`24h`).
    Duration,
    /// A list of strings (or one comma-separated string).
    Strings,
    /// A JSON object.
    Object,
    /// A list of objects (`batch_input`).
    Objects,
}

/// The shape of a successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 200 with Vault's envelope, `data` an object.
    Data,
    /// 204, no body.
    Empty,
    /// 200 with the envelope, or 204 (nothing to say).
    DataOrEmpty,
    /// 200 with Vault's envelope carrying `auth` (a login, a new token).
    Auth,
    /// 200 with a bare JSON object (health, seal status, init).
    Bare,
    /// 200 with a bare object or Prometheus text (`sys/metrics`).
    Metrics,
    /// A bare object with the status the query asks for (`sys/health`'s
    /// `activecode` and the like), 200 by default.
    Health,
}

impl Field {
    pub(crate) const fn new(name: &'static str, ty: Ty) -> Self {
        Self {
            name,
            ty,
            required: false,
            one_of: &[],
            later: false,
        }
    }

    pub(crate) const fn later(mut self) -> Self {
        self.later = true;
        self
    }

    pub(crate) const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub(crate) const fn one_of(mut self, values: &'static [&'static str]) -> Self {
        self.one_of = values;
        self
    }
}

/// Shorthand for the tables: an optional field.
pub(crate) const fn f(name: &'static str, ty: Ty) -> Field {
    Field::new(name, ty)
}

impl OpDoc {
    pub(crate) const fn new(op: Op, id: &'static str, answer: Answer) -> Self {
        Self {
            op,
            id,
            fields: &[],
            shared: &[],
            answer,
        }
    }

    pub(crate) const fn with(mut self, fields: &'static [Field]) -> Self {
        self.fields = fields;
        self
    }

    pub(crate) const fn and(mut self, shared: &'static [Field]) -> Self {
        self.shared = shared;
        self
    }

    /// Every field it reads.
    pub(crate) fn all_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().chain(self.shared)
    }
}

/// Every login method's declared paths.
pub(crate) fn method_docs(backend: &Backend) -> &'static [PathDoc] {
    super::login::docs(backend)
}

/// The document for a caller with `acl` (`None`: no token, so no paths).
pub(crate) fn document(unsealed: &Unsealed, acl: Option<&Acl>) -> ApiResult<Value> {
    let mut paths = Map::new();
    if let Some(acl) = acl {
        add_group(&mut paths, "sys", "sys", super::sys::DOCS);
        add_group(&mut paths, "auth/token", "token", super::token::DOCS);
        for method in unsealed.methods.all()? {
            let prefix = format!("auth/{}", method.entry.path);
            if acl.grants_under(&format!("{prefix}/")) {
                let group = format!("auth-{}", slug(&method.entry.path));
                add_group(&mut paths, &prefix, &group, method_docs(&method.backend));
            }
        }
        for mount in unsealed.mounts()? {
            if acl.grants_under(&format!("{}/", mount.path)) {
                add_group(
                    &mut paths,
                    &mount.path,
                    &slug(&mount.path),
                    super::endpoint::DOCS,
                );
            }
        }
    }
    Ok(json!({
        "openapi": "3.0.2",
        "info": {
            "title": "transitd API",
            "description": "The transit engine's HTTP API, as OpenBao's. All API routes are prefixed with `/v1/`.",
            "version": COMPAT_VERSION,
            "license": {"name": "Mozilla Public License 2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0"},
        },
        "paths": paths,
        "components": {"schemas": {"Error": error_schema()}},
    }))
}

/// A mount path as an operation id prefix (`team/transit` -> `team-transit`):
/// ids must be unique across mounts.
fn slug(path: &str) -> String {
    path.replace(['/', '_', '.'], "-")
}

fn add_group(paths: &mut Map<String, Value>, prefix: &str, group: &str, docs: &[PathDoc]) {
    for doc in docs {
        let mut item = Map::new();
        let params: Vec<Value> = path_params(doc.path)
            .map(|name| {
                let declared = doc.params.iter().find(|p| p.name == name);
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": declared.map_or_else(
                        || json!({"type": "string", "minLength": 1}),
                        field_schema,
                    ),
                })
            })
            .collect();
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        // LIST is GET with `list=true`; a path with both has one GET: the
        // read (paths here never take both).
        for op in doc.ops {
            let (method, operation) = operation(group, op);
            item.insert(method.into(), operation);
        }
        paths.insert(format!("/{prefix}/{}", doc.path), Value::Object(item));
    }
}

/// The `{name}`s of a path template, in order.
pub(crate) fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn operation(group: &str, op: &OpDoc) -> (&'static str, Value) {
    let mut operation = Map::new();
    operation.insert("operationId".into(), json!(format!("{group}-{}", op.id)));
    let method = match op.op {
        Op::Read | Op::List => "get",
        Op::Update => "post",
        Op::Delete => "delete",
    };
    let mut query: Vec<Value> = Vec::new();
    if op.op == Op::List {
        query.push(json!({
            "name": "list", "in": "query", "required": true,
            "schema": {"type": "string", "enum": ["true"]},
        }));
    }
    match op.op {
        Op::Update => {
            operation.insert(
                "requestBody".into(),
                json!({
                    "required": false,
                    "content": {"application/json": {"schema": object_schema(op)}},
                }),
            );
        }
        _ => query.extend(op.all_fields().map(|field| {
            json!({
                "name": field.name, "in": "query", "required": field.required,
                "schema": field_schema(field),
            })
        })),
    }
    if !query.is_empty() {
        operation.insert("parameters".into(), Value::Array(query));
    }
    operation.insert("responses".into(), responses(op.answer));
    (method, Value::Object(operation))
}

fn object_schema(op: &OpDoc) -> Value {
    let properties: Map<String, Value> = op
        .all_fields()
        .map(|field| (field.name.to_owned(), field_schema(field)))
        .collect();
    let required: Vec<&str> = op
        .all_fields()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn field_schema(field: &Field) -> Value {
    let mut schema = match field.ty {
        Ty::Str => json!({"type": "string"}),
        Ty::Base64 => json!({"type": "string", "format": "byte"}),
        Ty::Int => json!({"type": "integer"}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Duration => json!({"oneOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^[0-9]+$"},
        ]}),
        Ty::Strings => json!({"type": "array", "items": {"type": "string"}}),
        Ty::Object => json!({"type": "object"}),
        Ty::Objects => json!({"type": "array", "items": {"type": "object"}}),
    };
    if !field.one_of.is_empty() {
        schema["enum"] = json!(field.one_of);
    }
    schema
}

/// Vault's `{"errors": [...]}`, for every refusal this pipeline gives.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
    })
}

/// Vault's reply envelope; `required`: the members a success carries.
fn envelope_schema(required: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": {
            "request_id": {"type": "string"},
            "lease_id": {"type": "string"},
            "renewable": {"type": "boolean"},
            "lease_duration": {"type": "integer"},
            "data": {"type": "object", "nullable": true},
            "wrap_info": {"type": "object", "nullable": true},
            "warnings": {"type": "array", "nullable": true, "items": {"type": "string"}},
            "auth": {"type": "object", "nullable": true},
        },
    })
}

fn responses(answer: Answer) -> Value {
    let json_body = |schema: Value| json!({"description": "OK", "content": {"application/json": {"schema": schema}}});
    let empty = json!({"description": "no content"});
    let mut all = Map::new();
    match answer {
        Answer::Data => {
            all.insert("200".into(), json_body(envelope_schema(&["data"])));
        }
        Answer::Auth => {
            all.insert("200".into(), json_body(envelope_schema(&["auth"])));
        }
        Answer::Empty => {
            all.insert("204".into(), empty);
        }
        Answer::DataOrEmpty => {
            all.insert("200".into(), json_body(envelope_schema(&[])));
            all.insert("204".into(), empty);
        }
        Answer::Bare => {
            all.insert("200".into(), json_body(json!({"type": "object"})));
        }
        Answer::Health => {
            all.insert("200".into(), json_body(json!({"type": "object"})));
            let mut chosen = json_body(json!({"type": "object"}));
            chosen["description"] = json!("the status the query asked for");
            all.insert("default".into(), chosen);
        }
        Answer::Metrics => {
            let mut both = json_body(json!({"type": "object"}));
            both["content"]["text/plain"] = json!({"schema": {"type": "string"}});
            all.insert("200".into(), both);
        }
    }
    let error = json!({"$ref": "#/components/schemas/Error"});
    // Every refusal of the pipeline: bad input, denied, no such path or
    // operation, too large, sealed or unavailable. A batch whose items all
    // failed is a 400 with the envelope (its `batch_results`), and
    // `sys/metrics` refuses in plain text, as Vault does.
    for (status, why) in [
        ("400", "invalid request"),
        ("403", "permission denied"),
        ("404", "no such path"),
        ("405", "unsupported operation"),
        ("413", "request too large"),
        ("503", "sealed or unavailable"),
    ] {
        let schema = if status == "400" {
            json!({"anyOf": [error, envelope_schema(&["data"])]})
        } else {
            error.clone()
        };
        let mut refusal = json!({
            "description": why,
            "content": {"application/json": {"schema": schema}},
        });
        if status == "400" && answer == Answer::Metrics {
            refusal["content"]["text/plain"] = json!({"schema": {"type": "string"}});
        }
        all.insert(status.into(), refusal);
    }
    Value::Object(all)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::route::tests::{server, variant};
    use crate::api::route::{Route, Routed};
    use crate::api::sys::SysPath;
    use crate::api::{Ctx, generate_root, rekey, serve_login, sys, token, wrapping};
    use crate::auth::Caller;
    use crate::request::Params;
    use crate::serve::ClientTls;
    use crate::state::AppState;

    const OPS: [Op; 4] = [Op::Read, Op::Update, Op::Delete, Op::List];

    /// Every declared group with its prefix on the test server
    /// (`route::tests::server`: one mount or method of each kind).
    fn groups() -> Vec<(&'static str, &'static [PathDoc])> {
        vec![
            ("sys", sys::DOCS),
            ("auth/token", token::DOCS),
            ("auth/userpass", crate::api::login::docs_of("userpass")),
            ("auth/approle", crate::api::login::docs_of("approle")),
            ("auth/jwt", crate::api::login::docs_of("jwt")),
            ("auth/kubernetes", crate::api::login::docs_of("kubernetes")),
            ("auth/cert", crate::api::login::docs_of("cert")),
            ("transit", crate::api::endpoint::DOCS),
        ]
    }

    /// A concrete path for a template: each parameter a value it takes.
    fn concrete(prefix: &str, doc: &PathDoc) -> String {
        let segments: Vec<String> = doc
            .path
            .split('/')
            .map(|segment| {
                let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                    return segment.to_owned();
                };
                if let Some(declared) = doc.params.iter().find(|p| p.name == name) {
                    return declared.one_of[0].to_owned();
                }
                match name {
                    "version" => "1",
                    "urlalgorithm" => "sha2-256",
                    "urlbytes" => "32",
                    "prefix" => "auth/userpass",
                    "username" => "u",
                    "role_name" => "r",
                    _ => "k",
                }
                .to_owned()
            })
            .collect();
        format!("{prefix}/{}", segments.join("/"))
    }

    /// Each declared path parses, for each of the four operations, to an
    /// endpoint that takes exactly the declared ones; every endpoint the
    /// router knows is declared; operation ids are unique.
    #[test]
    fn the_document_declares_exactly_what_is_routed() {
        let state = server();
        let mut seen = BTreeSet::new();
        for (prefix, docs) in groups() {
            let mut ids = BTreeSet::new();
            for doc in docs {
                let path = concrete(prefix, doc);
                let declared: BTreeSet<Op> = doc.ops.iter().map(|o| o.op).collect();
                for op in OPS {
                    let routed = Routed::parse(op, path.clone(), &state)
                        .unwrap_or_else(|e| panic!("{path}: {e}"));
                    let served = routed.refusal().is_none();
                    assert_eq!(served, declared.contains(&op), "{op:?} {path}");
                    if served {
                        seen.insert(variant(&routed.route));
                    }
                }
                for op in doc.ops {
                    assert!(ids.insert(op.id), "{prefix}: operation id {} twice", op.id);
                }
            }
        }
        // Endpoints: every variant but the refusals.
        let refusals = ["unknown", "nowhere", "wrong operation", "no login"];
        let mut missing = Vec::new();
        for name in crate::api::route::tests::ALL_VARIANTS {
            if !refusals.iter().any(|r| name.ends_with(r)) && !seen.contains(name) {
                missing.push(*name);
            }
        }
        assert!(
            missing.is_empty(),
            "endpoints the document lacks: {missing:?}"
        );
    }

    /// Without a token, no paths (as Vault); with the root ACL, `sys/`,
    /// `auth/token/`, each login method and each mount at its own path,
    /// with unique operation ids.
    #[test]
    fn the_document_lists_what_the_caller_may_reach() {
        let state = server();
        let unsealed = state.unsealed().unwrap();
        unsealed.enable_mount("team/transit", "").unwrap();
        let none = document(&unsealed, None).unwrap();
        assert_eq!(none["paths"], json!({}));
        let all = document(&unsealed, Some(&Acl::root())).unwrap();
        let paths = all["paths"].as_object().unwrap();
        for path in [
            "/sys/health",
            "/auth/token/create",
            "/auth/userpass/login/{username}",
            "/transit/encrypt/{name}",
            "/team/transit/encrypt/{name}",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        assert_eq!(
            paths["/team/transit/encrypt/{name}"]["post"]["operationId"],
            "team-transit-encrypt"
        );
        let mut ids = BTreeSet::new();
        for item in paths.values() {
            for (method, operation) in item.as_object().unwrap() {
                if method != "parameters" {
                    let id = operation["operationId"].as_str().unwrap();
                    assert!(ids.insert(id.to_owned()), "{id} twice");
                }
            }
        }
        assert!(!Acl::default().grants_under("transit/"));
    }

    fn sample(field: &Field) -> Value {
        if let Some(first) = field.one_of.first() {
            return json!(first);
        }
        match field.ty {
            Ty::Str => json!("x"),
            Ty::Base64 => json!("aGk="),
            // Defaults where a type has one: fields refused unless default
            // must not stop the sample before the rest is read.
            Ty::Int => json!(0),
            Ty::Bool => json!(false),
            Ty::Duration => json!("0s"),
            Ty::Strings => json!([]),
            Ty::Object => json!({}),
            Ty::Objects => json!([]),
        }
    }

    /// Serves a parsed request as the root token, as `api::authorized`
    /// and `api::serve_public` do, reading its fields from `p`.
    fn serve(state: &AppState, routed: &Routed, p: &Params) {
        let unsealed = state.unsealed().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (id, entry) = unsealed.tokens.lookup("root", now).unwrap().unwrap();
        let caller = Caller { id, entry };
        let op = routed.op;
        let _ = match &routed.route {
            Route::Sys(SysPath::Wrapping(path)) => {
                wrapping::serve(&unsealed, "root", *path, p, false, now)
            }
            Route::Sys(path @ SysPath::GenerateRoot { .. }) => {
                generate_root::serve(&unsealed, op, path, p)
            }
            Route::Sys(SysPath::Rekey { target, step }) => {
                rekey::serve(&unsealed, op, *target, *step, p)
            }
            Route::Sys(path) => sys::serve(state, op, path, p, Some(&caller)),
            Route::Token(path) => token::serve(&unsealed, &caller, "root", *path, p, now),
            Route::Login { .. } => serve_login(&unsealed, routed, p, &ClientTls::Plain, now),
            Route::Transit {
                mount,
                endpoint: Ok(endpoint),
            } => {
                let ctx = Ctx {
                    state,
                    mount,
                    now: time::OffsetDateTime::now_utc(),
                };
                endpoint.serve(&ctx, op, p)
            }
            other => panic!("not an endpoint: {other:?}"),
        };
    }

    /// Each operation's handler, served with no fields and with every
    /// declared field, asks for the declared fields and for no other: a
    /// handler that starts reading a field (or stops) fails here until its
    /// declaration says so.
    #[test]
    fn each_handler_reads_exactly_its_declared_fields() {
        let mut wrong = Vec::new();
        for (prefix, docs) in groups() {
            for doc in docs {
                let path = concrete(prefix, doc);
                for op_doc in doc.ops {
                    let declared: BTreeSet<String> =
                        op_doc.all_fields().map(|f| f.name.to_owned()).collect();
                    let reached: BTreeSet<String> = op_doc
                        .all_fields()
                        .filter(|f| !f.later)
                        .map(|f| f.name.to_owned())
                        .collect();
                    let full: Map<String, Value> = op_doc
                        .all_fields()
                        .map(|f| (f.name.to_owned(), sample(f)))
                        .collect();
                    let mut asked = BTreeSet::new();
                    for fields in [Map::new(), full] {
                        let state = server();
                        let routed = Routed::parse(op_doc.op, path.clone(), &state).unwrap();
                        let p = Params::from_map(fields);
                        serve(&state, &routed, &p);
                        asked.extend(p.asked());
                    }
                    // `list` selects the operation; it is no field.
                    asked.remove("list");
                    let undeclared: Vec<_> = asked.difference(&declared).collect();
                    let unread: Vec<_> = reached.difference(&asked).collect();
                    if !undeclared.is_empty() || !unread.is_empty() {
                        wrong.push(format!(
                            "{:?} {path}: read, undeclared {undeclared:?}; declared, unread {unread:?}",
                            op_doc.op
                        ));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
