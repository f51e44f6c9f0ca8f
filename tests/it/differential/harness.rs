//! Running the same script against transitd and OpenBao: the servers, the
//! `Script` of steps (each sent to both), the comparison of each exchange
//! with the deviation tables, and the report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use transitd_test_support::{Auth, DevServer, INSTALL_HINT, ROOT_TOKEN, Reply};

use super::deviations::{DELIBERATE, Deviation, KNOWN_INCOMPATIBILITIES, Side};
use super::normalise::{Norm, normalise};

pub(super) fn transitd() -> DevServer {
    DevServer::start("transitd", Path::new(env!("CARGO_BIN_EXE_transitd")), &[])
}

pub(super) fn openbao() -> DevServer {
    let server = DevServer::openbao();
    let r = server
        .client()
        .send("GET", "/v1/sys/health", None, None, None)
        .unwrap_or_else(|e| panic!("OpenBao health: {e}"));
    assert_eq!(
        r.body["version"], "2.7.2",
        "the differential test is pinned to OpenBao 2.7.2; {INSTALL_HINT}"
    );
    server
}

pub(super) type Vars = BTreeMap<String, Value>;

/// `*` in a table label matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[derive(Debug)]
enum Verdict {
    Same,
    Deliberate(&'static Deviation),
    Known(&'static Deviation),
    Mismatch(String),
}

#[derive(Debug)]
struct Outcome {
    section: &'static str,
    verdict: Verdict,
}

pub(super) struct Script<'a> {
    /// `[transitd, openbao]`
    servers: [&'a DevServer; 2],
    vars: [Vars; 2],
    section: &'static str,
    labels: BTreeSet<String>,
    outcomes: Vec<Outcome>,
}

#[must_use = "call .go() to send the request"]
pub(super) struct Step<'s, 'a> {
    script: &'s mut Script<'a>,
    label: String,
    method: &'static str,
    path: String,
    body: Option<Value>,
    raw: Option<(Vec<u8>, &'static str)>,
    /// `${var}` in it is the variable's value on each server.
    token: Option<&'static str>,
    bearer: bool,
    headers: Vec<(&'static str, &'static str)>,
    saves: Vec<(String, String)>,
    shares: Vec<(String, String, usize)>,
    norms: Vec<(String, Norm)>,
}

impl Step<'_, '_> {
    /// Save the value at `pointer` of each server's answer as `${var}` for later steps.
    pub(super) fn save(mut self, var: &str, pointer: &str) -> Self {
        self.saves.push((var.to_owned(), pointer.to_owned()));
        self
    }

    /// Save the value at `pointer` of one server's answer (`TRANSITD` or
    /// `OPENBAO`) as `${var}` for BOTH servers.
    pub(super) fn share(mut self, var: &str, pointer: &str, from: usize) -> Self {
        self.shares.push((var.to_owned(), pointer.to_owned(), from));
        self
    }

    pub(super) fn norm(mut self, pattern: &str, norm: Norm) -> Self {
        self.norms.push((pattern.to_owned(), norm));
        self
    }

    pub(super) fn token(mut self, token: Option<&'static str>) -> Self {
        self.token = token;
        self
    }

    /// Send `name: value` too (`X-Vault-Wrap-TTL`, ...).
    pub(super) fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Send the token as `Authorization: Bearer` instead of `X-Vault-Token`.
    pub(super) fn bearer(mut self) -> Self {
        self.bearer = true;
        self
    }

    pub(super) fn raw(mut self, bytes: &[u8], content_type: &'static str) -> Self {
        self.raw = Some((bytes.to_vec(), content_type));
        self
    }

    pub(super) fn go(self) {
        let Step {
            script,
            label,
            method,
            path,
            body,
            raw,
            token,
            bearer,
            headers,
            saves,
            shares,
            norms,
        } = self;
        let mut replies = Vec::new();
        for (i, server) in script.servers.iter().enumerate() {
            let vars = &script.vars[i];
            let path = substitute_str(&path, vars, &label);
            let (bytes, ct) = match (&raw, &body) {
                (Some((b, ct)), _) => (Some(b.clone()), Some(*ct)),
                (None, Some(b)) => (
                    Some(serde_json::to_vec(&substitute(b, vars, &label)).unwrap()),
                    Some("application/json"),
                ),
                (None, None) => (None, None),
            };
            let token = token.map(|t| substitute_str(t, vars, &label));
            let auth = token.as_deref().map(|t| {
                if bearer {
                    Auth::Bearer(t)
                } else {
                    Auth::Vault(t)
                }
            });
            let client = headers
                .iter()
                .fold(server.client().clone(), |c, (name, value)| {
                    c.with_header(name, value)
                });
            let reply = client
                .send(method, &format!("/v1/{path}"), bytes, auth, ct)
                .unwrap_or_else(|e| panic!("[{label}] {}: {e}", server.name()));
            replies.push(reply);
        }
        for (i, reply) in replies.iter().enumerate() {
            for (var, pointer) in &saves {
                // A failed step clears the variable rather than leave a stale value.
                match reply.body.pointer(pointer) {
                    Some(v) => script.vars[i].insert(var.clone(), v.clone()),
                    None => script.vars[i].remove(var),
                };
            }
        }
        for (var, pointer, from) in &shares {
            if let Some(v) = replies[*from].body.pointer(pointer) {
                for vars in &mut script.vars {
                    vars.insert(var.clone(), v.clone());
                }
            }
        }
        let request = format!(
            "{method} /v1/{path}{}",
            match (&raw, &body) {
                (Some((b, _)), _) => format!(" {}", String::from_utf8_lossy(b)),
                (None, Some(b)) => format!(" {}", short(b)),
                (None, None) => String::new(),
            }
        );
        script.judge(label, &request, &replies[0], &replies[1], &norms);
    }
}

fn substitute_str(s: &str, vars: &Vars, label: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("[{label}] unterminated ${{ in {s:?}"));
        let name = &rest[start + 2..start + end];
        // A variable an earlier (failed) step did not save is sent as "": the
        // comparison then shows what each server makes of that.
        match vars.get(name) {
            Some(Value::String(v)) => out.push_str(v),
            Some(other) => out.push_str(&other.to_string()),
            None => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Replace `${var}` in every string of `v`; a string that is exactly `${var}`
/// becomes the saved JSON value itself (any type).
fn substitute(v: &Value, vars: &Vars, label: &str) -> Value {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                && !name.contains('}')
            {
                // Unsaved (an earlier step failed): sent as null.
                return vars.get(name).cloned().unwrap_or(Value::Null);
            }
            Value::String(substitute_str(s, vars, label))
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, vars, label)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars, label)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

impl<'a> Script<'a> {
    pub(super) fn new(transitd: &'a DevServer, openbao: &'a DevServer) -> Self {
        Self {
            servers: [transitd, openbao],
            vars: [Vars::new(), Vars::new()],
            section: "",
            labels: BTreeSet::new(),
            outcomes: Vec::new(),
        }
    }

    pub(super) fn section(&mut self, name: &'static str) {
        self.section = name;
    }

    pub(super) fn step(
        &mut self,
        label: &str,
        method: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Step<'_, 'a> {
        let label = format!("{}/{label}", self.section);
        assert!(
            self.labels.insert(label.clone()),
            "duplicate step label {label:?}"
        );
        Step {
            script: self,
            label,
            method,
            path: path.to_owned(),
            body,
            raw: None,
            token: Some(ROOT_TOKEN),
            bearer: false,
            headers: Vec::new(),
            saves: Vec::new(),
            shares: Vec::new(),
            norms: Vec::new(),
        }
    }

    pub(super) fn post(&mut self, label: &str, path: &str, body: Value) -> Step<'_, 'a> {
        self.step(label, "POST", path, Some(body))
    }

    pub(super) fn get(&mut self, label: &str, path: &str) -> Step<'_, 'a> {
        self.step(label, "GET", path, None)
    }

    pub(super) fn list(&mut self, label: &str, path: &str) -> Step<'_, 'a> {
        self.step(label, "LIST", path, None)
    }

    pub(super) fn delete(&mut self, label: &str, path: &str) -> Step<'_, 'a> {
        self.step(label, "DELETE", path, None)
    }

    /// A relation inside each server: `f` computes a value from that server's
    /// saved variables; the two values must be equal (the check is an exchange
    /// with status 200 for the tables).
    pub(super) fn check(&mut self, label: &str, f: impl Fn(&Vars) -> Value) {
        let label = format!("{}/{label}", self.section);
        assert!(
            self.labels.insert(label.clone()),
            "duplicate step label {label:?}"
        );
        let td = Reply {
            status: 200,
            body: f(&self.vars[0]),
        };
        let bao = Reply {
            status: 200,
            body: f(&self.vars[1]),
        };
        self.judge(label, "(relation check)", &td, &bao, &[]);
    }

    /// Derive a per-server variable from that server's variables.
    pub(super) fn set(&mut self, var: &str, f: impl Fn(&Vars) -> Value) {
        for vars in &mut self.vars {
            let v = f(vars);
            vars.insert(var.to_owned(), v);
        }
    }

    fn judge(
        &mut self,
        label: String,
        request: &str,
        td: &Reply,
        bao: &Reply,
        norms: &[(String, Norm)],
    ) {
        let a = json!({"status": td.status, "body": normalise(&td.body, &mut Vec::new(), norms)});
        let b = json!({"status": bao.status, "body": normalise(&bao.body, &mut Vec::new(), norms)});
        let mut differences = Vec::new();
        diff(&a, &b, "", &mut differences, 12);
        let details = || {
            format!(
                "{request}\n      transitd {}: {}\n      openbao  {}: {}",
                td.status,
                short(&td.body),
                bao.status,
                short(&bao.body)
            )
        };
        let listed = DELIBERATE
            .iter()
            .map(|d| (d, false))
            .chain(KNOWN_INCOMPATIBILITIES.iter().map(|d| (d, true)))
            .find(|(d, _)| glob(d.label, &label));
        let verdict = match listed {
            Some((d, known)) => {
                let td_ok = side_holds(d.transitd, td);
                let bao_ok = side_holds(d.openbao, bao);
                if td_ok && bao_ok && !differences.is_empty() {
                    if known {
                        Verdict::Known(d)
                    } else {
                        Verdict::Deliberate(d)
                    }
                } else if differences.is_empty() {
                    Verdict::Mismatch(format!(
                        "[{label}] listed as a difference but both servers now answer alike: delete its entry\n      {}",
                        details()
                    ))
                } else {
                    Verdict::Mismatch(format!(
                        "[{label}] listed difference not as described (transitd {} {:?}: {}, openbao {} {:?}: {})\n      {}\n      {}",
                        d.transitd.0,
                        d.transitd.1,
                        if td_ok { "ok" } else { "NOT SEEN" },
                        d.openbao.0,
                        d.openbao.1,
                        if bao_ok { "ok" } else { "NOT SEEN" },
                        details(),
                        differences.join("\n      ")
                    ))
                }
            }
            None if differences.is_empty() => Verdict::Same,
            None => Verdict::Mismatch(format!(
                "[{label}] {}\n      {}",
                details(),
                differences.join("\n      ")
            )),
        };
        self.outcomes.push(Outcome {
            section: self.section,
            verdict,
        });
    }

    /// The compact report; returns the failures.
    pub(super) fn report(&self) -> Vec<String> {
        let mut failures: Vec<String> = Vec::new();
        let mut table: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        let mut deliberate: Vec<&Deviation> = Vec::new();
        let mut known: Vec<&Deviation> = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &self.outcomes {
            if !order.contains(&o.section) {
                order.push(o.section);
            }
            let row = table.entry(o.section).or_default();
            match &o.verdict {
                Verdict::Same => row[0] += 1,
                Verdict::Deliberate(d) => {
                    row[1] += 1;
                    if *seen.entry(d.label).and_modify(|n| *n += 1).or_default() == 0 {
                        deliberate.push(d);
                    }
                }
                Verdict::Known(d) => {
                    row[2] += 1;
                    if *seen.entry(d.label).and_modify(|n| *n += 1).or_default() == 0 {
                        known.push(d);
                    }
                }
                Verdict::Mismatch(m) => {
                    row[3] += 1;
                    failures.push(m.clone());
                }
            }
        }
        for d in DELIBERATE.iter().chain(KNOWN_INCOMPATIBILITIES) {
            if !self.labels.iter().any(|l| glob(d.label, l)) {
                failures.push(format!(
                    "[{}] is listed in a deviation table but no step has that label: fix or delete the entry",
                    d.label
                ));
            }
        }
        let mut out = String::new();
        let sum = |i: usize| table.values().map(|r| r[i]).sum::<usize>();
        out.push_str(&format!(
            "\ndifferential transitd vs OpenBao 2.7.2: {} exchanges: {} same, {} deliberate, {} known incompatibilities, {} MISMATCHES\n  {:<8} {:>5} {:>10} {:>5} {:>8}\n",
            self.outcomes.len(),
            sum(0),
            sum(1),
            sum(2),
            failures.len(),
            "section",
            "same",
            "deliberate",
            "known",
            "MISMATCH"
        ));
        for s in &order {
            let r = table[s];
            out.push_str(&format!(
                "  {s:<8} {:>5} {:>10} {:>5} {:>8}\n",
                r[0], r[1], r[2], r[3]
            ));
        }
        // Deliberate differences grouped by reason, one line each.
        let mut reasons: Vec<(&str, Vec<String>)> = Vec::new();
        for d in &deliberate {
            let entry = format!("{}{}", d.label, times(seen[d.label]));
            match reasons.iter_mut().find(|(why, _)| *why == d.why) {
                Some((_, labels)) => labels.push(entry),
                None => reasons.push((d.why, vec![entry])),
            }
        }
        if !reasons.is_empty() {
            out.push_str("  deliberate differences:\n");
            for (why, labels) in &reasons {
                out.push_str(&format!("    - {why}:\n        {}\n", labels.join("; ")));
            }
        }
        if !known.is_empty() {
            out.push_str("  known incompatibilities (transitd bugs to fix):\n");
            for d in &known {
                out.push_str(&format!(
                    "    - {}{}: transitd {} / OpenBao {}: {}\n",
                    d.label,
                    times(seen[d.label]),
                    d.transitd.0,
                    d.openbao.0,
                    d.why
                ));
            }
        }
        // Written to the real stderr so the report shows even when the test passes.
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
        failures
    }
}

/// Every differing JSON path, `path: transitd=… openbao=…` (at most `limit`).
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => diff(l, r, &p, out, limit),
                    (Some(l), None) => out.push(format!("{p}: only transitd has it ({l})")),
                    (None, Some(r)) => out.push(format!("{p}: only OpenBao has it ({r})")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                diff(l, r, &format!("{path}/{i}"), out, limit);
            }
        }
        _ if a != b => out.push(format!(
            "{}: transitd={} openbao={}",
            if path.is_empty() { "/" } else { path },
            short(a),
            short(b)
        )),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// Does one side's answer show the listed behaviour?
fn side_holds(side: Side, r: &Reply) -> bool {
    fn any_string_contains(v: &Value, needle: &str) -> bool {
        match v {
            Value::String(s) => s.contains(needle),
            Value::Array(a) => a.iter().any(|v| any_string_contains(v, needle)),
            Value::Object(m) => m.values().any(|v| any_string_contains(v, needle)),
            _ => false,
        }
    }
    let Side(status, text) = side;
    if r.status != status {
        return false;
    }
    if text.is_empty() {
        return true;
    }
    if text.starts_with('/')
        && let Some((pointer, want)) = text.split_once('=')
    {
        let want: Value = serde_json::from_str(want).unwrap_or_else(|e| {
            panic!("bad expected value in a deviation table entry {text:?}: {e}")
        });
        return r.body.pointer(pointer) == Some(&want);
    }
    any_string_contains(&r.body, text)
}

/// ` (×N)` for a table entry that matched several exchanges.
fn times(n: usize) -> String {
    if n > 0 {
        format!(" (×{})", n + 1)
    } else {
        String::new()
    }
}
