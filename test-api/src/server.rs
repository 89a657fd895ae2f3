//! HTTPS server, routing and the request handlers.

use crate::RequestRecord;
use crate::auth::{self, Rules};
use crate::controller;
use crate::fixtures::{self, all_types};
use crate::loopback::Shared;
use crate::resources::{self, ResKey, ResourceType};
use crate::selector::{self, FieldSelector, MatchesObject};
use crate::status::ApiError;
use crate::table;
use crate::util::{self, meta_str};
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use label_selector::Selector as LabelSelector;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Accept TLS connections until shutdown.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut shutdown = shared.shutdown.subscribe();
    tokio::spawn(timer_loop(shared.clone()));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => break,
        };
        let Ok((tcp, _peer)) = accepted else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
    drop(listener);
}

/// Wakes the controller when a pod's delayed readiness is due.
async fn timer_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let next = {
            let st = shared.lock();
            st.ctl.deadlines.values().min().copied()
        };
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let rv = {
                    let mut guard = shared.lock();
                    let st = &mut *guard;
                    controller::tick(&mut st.store, &mut st.ctl, Instant::now());
                    st.store.rv()
                };
                shared.changed(rv);
            }
            _ = shared.timer.notified() => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}

/// A response to build.
enum Reply {
    Json(u16, Value),
    Raw(u16, Vec<u8>),
    Watch(Box<WatchParams>),
    /// A pod's own answer through a proxy subresource.
    Pod(crate::pod_http::HttpReply),
}

struct Ctx {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    user: String,
    rules: Rules,
    body: Bytes,
    content_type: String,
    dry_run: bool,
    port: u16,
}

impl Ctx {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(qk, _)| qk == k).map(|(_, v)| v.as_str())
    }
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    raw_response(code, v.to_string().into_bytes())
}

fn raw_response(code: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, private"));
    r
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    let started = Instant::now();
    let received = std::time::SystemTime::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = util::parse_query(req.uri().query());
    let hdr = |h: header::HeaderName| req.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
    let authz = hdr(header::AUTHORIZATION);
    let content_type = hdr(header::CONTENT_TYPE).unwrap_or_default();
    let user_agent = hdr(header::USER_AGENT);
    let impersonate = hdr(header::HeaderName::from_static("impersonate-user"));
    let accept = hdr(header::ACCEPT).unwrap_or_default();
    let body = match axum::body::to_bytes(Body::new(req.into_body()), 256 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => Bytes::new(),
    };
    let dry_run = query.iter().any(|(k, v)| k == "dryRun" && v == "All");
    let watch = query.iter().any(|(k, v)| k == "watch" && (v == "true" || v == "1"));

    let token = authz.as_deref().and_then(|a| a.strip_prefix("Bearer ")).map(str::trim).map(str::to_string);
    let (user, port) = {
        let st = shared.lock();
        let user = token.as_ref().and_then(|t| st.users.iter().find(|u| u.token == *t).cloned());
        (user, st.port)
    };
    let rec = RequestRecord {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        user: user.as_ref().map(|u| u.name.clone()),
        credential: token.as_deref().map(auth::fingerprint),
        status: 0,
        verb: None,
        dry_run,
        watch,
        fault: false,
        dropped: false,
        content_type: (!content_type.is_empty()).then(|| content_type.clone()),
        body: if body.is_empty() {
            None
        } else {
            serde_json::from_slice(&body)
                .ok()
                .or_else(|| Some(Value::String(String::from_utf8_lossy(&body).into_owned())))
        },
        user_agent,
        duration: Duration::ZERO,
        received,
    };
    let mut rec = rec;
    let Some(mut user) = user else {
        rec.status = 401;
        shared.record(rec, started);
        return Ok(json_response(401, &ApiError::unauthorized().to_json()));
    };
    // Impersonation (`--as`): allowed to users who may `impersonate` `users`; the request then runs with
    // the impersonated user's rules (none for a user the server does not know).
    if let Some(target) = impersonate {
        if !user.rules.allows("impersonate", "users", None) {
            let message = format!(
                "users \"{target}\" is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
                user.name
            );
            rec.status = 403;
            shared.record(rec, started);
            return Ok(json_response(403, &ApiError::new(403, message).to_json()));
        }
        let known = shared.lock().users.iter().find(|u| u.name == target).cloned();
        user = known.unwrap_or(auth::User { name: target, token: String::new(), rules: auth::Rules::none() });
        rec.user = Some(user.name.clone());
    }
    let ctx = Ctx {
        method,
        path,
        query,
        user: user.name.clone(),
        rules: user.rules.clone(),
        body,
        content_type,
        dry_run,
        port,
    };
    let (verb, result) = route(&shared, &ctx, &accept);
    rec.verb = verb;
    match result {
        Ok(Reply::Json(code, v)) => {
            rec.status = code;
            shared.record(rec, started);
            Ok(json_response(code, &v))
        }
        Ok(Reply::Raw(code, b)) => {
            rec.status = code;
            shared.record(rec, started);
            Ok(raw_response(code, b))
        }
        Ok(Reply::Pod(reply)) => {
            rec.status = reply.status;
            shared.record(rec, started);
            let mut r = raw_response(reply.status, reply.body);
            r.headers_mut().remove(header::CACHE_CONTROL);
            match header::HeaderValue::from_str(&reply.content_type) {
                Ok(v) => r.headers_mut().insert(header::CONTENT_TYPE, v),
                Err(_) => r.headers_mut().remove(header::CONTENT_TYPE),
            };
            Ok(r)
        }
        Ok(Reply::Watch(params)) => {
            rec.status = 200;
            shared.record(rec, started);
            Ok(start_watch(shared, *params))
        }
        Err(e) if e.is_plain() => {
            rec.status = e.code;
            shared.record(rec, started);
            let mut r = raw_response(e.code, e.message.into_bytes());
            r.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
            Ok(r)
        }
        Err(e) => {
            rec.status = e.code;
            shared.record(rec, started);
            Ok(json_response(e.code, &e.to_json()))
        }
    }
}

/// Parsed request target.
enum Target {
    Version,
    Health,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    Resource {
        group: String,
        version: String,
        plural: String,
        ns: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
    Unknown,
}

fn parse_target(path: &str) -> Target {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let rest = |group: &str, version: &str, r: &[&str]| -> Target {
        let res = |ns: Option<&str>, r: &[&str]| -> Target {
            if r.is_empty() || r.len() > 3 {
                return Target::Unknown;
            }
            Target::Resource {
                group: group.to_string(),
                version: version.to_string(),
                plural: r[0].to_string(),
                ns: ns.map(str::to_string),
                name: r.get(1).map(|s| s.to_string()),
                sub: r.get(2).map(|s| s.to_string()),
            }
        };
        if r.len() >= 3 && r[0] == "namespaces" && !matches!(r[2], "status" | "finalize") {
            res(Some(r[1]), &r[2..])
        } else {
            res(None, r)
        }
    };
    match segs.as_slice() {
        ["version"] => Target::Version,
        ["healthz" | "livez" | "readyz"] => Target::Health,
        ["api"] => Target::Api,
        ["api", v] => Target::GroupVersion(String::new(), v.to_string()),
        ["api", v, r @ ..] => rest("", v, r),
        ["apis"] => Target::Apis,
        ["apis", g] => Target::Group(g.to_string()),
        ["apis", g, v] => Target::GroupVersion(g.to_string(), v.to_string()),
        ["apis", g, v, r @ ..] => rest(g, v, r),
        _ => Target::Unknown,
    }
}

fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types {
        if t.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                for v in &t.versions {
                    if !vs.contains(v) {
                        vs.push(v.clone());
                    }
                }
            }
            None => out.push((t.group.clone(), t.versions.clone())),
        }
    }
    out
}

fn api_group_json(g: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
    json!({"name": g, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// A proxy subresource request (`pods/…/proxy/…`, `services/…/proxy/…`), if it is one.
fn proxy_request(shared: &Arc<Shared>, ctx: &Ctx) -> Option<(Option<String>, Result<Reply, ApiError>)> {
    let parsed = crate::pod_proxy::parse(&ctx.path)?;
    let verb = match ctx.method.as_str() {
        "GET" | "HEAD" | "OPTIONS" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => return Some((None, Err(ApiError::method_not_allowed()))),
    };
    let st = shared.lock();
    let types = all_types(&st.store);
    let (ns, kind, id, _) = &parsed;
    let rt = types.iter().find(|t| t.group.is_empty() && t.plural == *kind)?;
    if !ctx.rules.allows(verb, &format!("{kind}/proxy"), Some(ns)) {
        let name = id.split(':').nth(usize::from(id.split(':').count() == 3)).unwrap_or(id);
        return Some((
            Some(verb.into()),
            Err(ApiError::forbidden(rt, Some("proxy"), Some(name), &ctx.user, verb, Some(ns))),
        ));
    }
    let req = crate::pod_http::PodRequest {
        method: &ctx.method,
        path: "",
        query: &ctx.query,
        content_type: &ctx.content_type,
        body: &ctx.body,
    };
    let result = crate::pod_proxy::answer(&st.http, &st.store, &types, parsed, &req);
    Some((Some(verb.into()), result.map(Reply::Pod)))
}

fn route(shared: &Arc<Shared>, ctx: &Ctx, accept: &str) -> (Option<String>, Result<Reply, ApiError>) {
    if let Some(r) = proxy_request(shared, ctx) {
        return r;
    }
    let target = parse_target(&ctx.path);
    let get_only = |r: Result<Reply, ApiError>| {
        if ctx.method == "GET" { r } else { Err(ApiError::method_not_allowed()) }
    };
    match target {
        Target::Version => {
            let v = shared.lock().git_version.clone();
            let mut parts = v.trim_start_matches('v').split('.');
            let major = parts.next().unwrap_or("1").to_string();
            let minor = parts.next().unwrap_or("33").to_string();
            (
                None,
                get_only(Ok(Reply::Json(
                    200,
                    json!({
                        "major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                        "minCompatibilityMajor": major, "minCompatibilityMinor": minor,
                        "gitVersion": v, "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                        "buildDate": "2025-04-22T16:03:22Z", "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64",
                    }),
                ))),
            )
        }
        Target::Health => (None, get_only(Ok(Reply::Raw(200, b"ok".to_vec())))),
        Target::Api => (
            None,
            get_only(Ok(Reply::Json(
                200,
                json!({
                    "kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", ctx.port)}],
                }),
            ))),
        ),
        Target::Apis => {
            let types = all_types(&shared.lock().store);
            let gs: Vec<Value> = groups(&types).iter().map(|(g, vs)| api_group_json(g, vs)).collect();
            (
                None,
                get_only(Ok(Reply::Json(
                    200,
                    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}),
                ))),
            )
        }
        Target::Group(g) => {
            let types = all_types(&shared.lock().store);
            let r = match groups(&types).iter().find(|(n, _)| *n == g) {
                Some((n, vs)) => {
                    let mut v = api_group_json(n, vs);
                    v["kind"] = json!("APIGroup");
                    v["apiVersion"] = json!("v1");
                    Ok(Reply::Json(200, v))
                }
                None => Err(ApiError::page_not_found()),
            };
            (None, get_only(r))
        }
        Target::GroupVersion(g, v) => {
            let types = all_types(&shared.lock().store);
            let matching: Vec<&ResourceType> =
                types.iter().filter(|t| t.group == g && t.versions.contains(&v)).collect();
            let r = if matching.is_empty() && !types.iter().any(|t| t.group == g) {
                Err(ApiError::page_not_found())
            } else if matching.is_empty() {
                Err(ApiError::path_not_found())
            } else {
                let gv = if g.is_empty() { v.clone() } else { format!("{g}/{v}") };
                let res: Vec<Value> = matching.iter().flat_map(|t| resources::api_resources(t)).collect();
                Ok(Reply::Json(
                    200,
                    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}),
                ))
            };
            (None, get_only(r))
        }
        Target::Unknown => (None, Err(ApiError::path_not_found())),
        Target::Resource { group, version, plural, ns, name, sub } => {
            resource_request(shared, ctx, accept, &group, &version, &plural, ns, name, sub)
        }
    }
}

/// Object in the requested version.
fn to_version<'a>(rt: &ResourceType, version: &str, obj: &'a Value) -> Cow<'a, Value> {
    if rt.group == "autoscaling" && rt.plural == "horizontalpodautoscalers" && version == "v1" {
        return Cow::Owned(fixtures::hpa_v2_to_v1(obj));
    }
    let want = rt.api_version(version);
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        Cow::Borrowed(obj)
    } else {
        let mut o = obj.clone();
        o["apiVersion"] = json!(want);
        Cow::Owned(o)
    }
}

/// Body in the storage version.
fn from_version(rt: &ResourceType, version: &str, obj: Value) -> Value {
    if rt.group == "autoscaling" && rt.plural == "horizontalpodautoscalers" && version == "v1" {
        return fixtures::hpa_v1_to_v2(&obj);
    }
    obj
}

#[allow(clippy::too_many_arguments)]
fn resource_request(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    accept: &str,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
) -> (Option<String>, Result<Reply, ApiError>) {
    let types = all_types(&shared.lock().store);
    let Some(rt) = types
        .iter()
        .find(|t| t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version))
        .cloned()
    else {
        if !group.is_empty() && !types.iter().any(|t| t.group == group) {
            return (None, Err(ApiError::page_not_found()));
        }
        return (None, Err(ApiError::path_not_found()));
    };
    if (!rt.namespaced && ns.is_some()) || (rt.namespaced && ns.is_none() && name.is_some()) {
        return (None, Err(ApiError::path_not_found()));
    }
    if let Some(s) = &sub
        && !rt.subresources.contains(&s.as_str())
    {
        return (None, Err(ApiError::path_not_found()));
    }
    let watch = ctx.q("watch").is_some_and(|v| v == "true" || v == "1");
    let verb = match (ctx.method.as_str(), name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) if watch => "watch",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return (None, Err(ApiError::method_not_allowed())),
    };
    let resource = match &sub {
        Some(s) => format!("{}/{}", rt.plural, s),
        None => rt.plural.clone(),
    };
    if !ctx.rules.allows(verb, &resource, ns.as_deref()) {
        return (
            Some(verb.into()),
            Err(ApiError::forbidden(&rt, sub.as_deref(), name.as_deref(), &ctx.user, verb, ns.as_deref())),
        );
    }
    let ns_key = ns.clone().unwrap_or_default();
    let result = match verb {
        "list" => list(shared, ctx, accept, &rt, version, ns.as_deref()),
        "watch" => watch_params(shared, ctx, accept, &rt, version, ns.as_deref(), name.as_deref())
            .map(|p| Reply::Watch(Box::new(p))),
        "get" => {
            get(shared, accept, &rt, version, &ns_key, name.as_deref().unwrap_or_default(), sub.as_deref())
        }
        "create" => create(shared, ctx, &rt, version, &ns_key),
        "update" | "patch" => update(
            shared,
            ctx,
            &rt,
            version,
            &ns_key,
            name.as_deref().unwrap_or_default(),
            sub.as_deref(),
            verb == "patch",
        ),
        "delete" => delete(shared, ctx, &rt, &ns_key, name.as_deref().unwrap_or_default()),
        _ => Err(ApiError::method_not_allowed()),
    };
    (Some(verb.into()), result)
}

fn selectors(
    ctx: &Ctx,
    rt: &ResourceType,
    name: Option<&str>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = LabelSelector::parse(ctx.q("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut fs = FieldSelector::parse(ctx.q("fieldSelector").unwrap_or_default(), &rt.field_selectors())
        .map_err(ApiError::bad_request)?;
    if let Some(n) = name {
        fs.terms.push(("metadata.name".into(), n.into(), false));
    }
    Ok((ls, fs))
}

fn list_kind(rt: &ResourceType) -> String {
    format!("{}List", rt.kind)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
}

fn list(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    accept: &str,
    rt: &ResourceType,
    version: &str,
    ns: Option<&str>,
) -> Result<Reply, ApiError> {
    let (ls, fs) = selectors(ctx, rt, None)?;
    let limit: Option<usize> = match ctx.q("limit") {
        Some(l) if !l.is_empty() => match l.parse::<i64>() {
            Ok(n) if n > 0 => usize::try_from(n).ok(),
            Ok(_) => None,
            Err(_) => return Err(ApiError::bad_request(format!("invalid limit: {l:?}"))),
        },
        _ => None,
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (after, token_rv) = match ctx.q("continue") {
        Some(c) if !c.is_empty() => {
            let bad = || {
                ApiError::bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                )
            };
            let raw = b64.decode(c).map_err(|_| bad())?;
            let tok: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
            let (tns, tname) = tok.start.split_once('\u{0}').ok_or_else(bad)?;
            (Some((tns.to_string(), tname.to_string())), Some(tok.rv))
        }
        _ => (None, None),
    };
    let st = shared.lock();
    let rv = token_rv.unwrap_or_else(|| st.store.rv());
    let filter = |o: &&Value| fs.matches(o) && ls.matches_object(o);
    let mut iter = st.store.list_shared(&rt.key(), ns, after).filter(|o| filter(&&***o));
    let mut page: Vec<&Arc<Value>> = Vec::new();
    let mut more = false;
    for o in iter.by_ref() {
        if limit.is_some_and(|l| page.len() >= l) {
            more = true;
            break;
        }
        page.push(o);
    }
    // As kube-apiserver: the count of what is left only for an unselected list (with a selector the
    // server would have to match the rest to know it, and leaves the field out).
    let unselected = ls.is_empty() && fs.is_empty();
    let remaining = if more && unselected {
        Some(1 + iter.count())
    } else {
        drop(iter);
        None
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if more && let Some(lastobj) = page.last() {
        let tok = ContinueToken {
            v: "meta.k8s.io/v1".into(),
            rv,
            start: format!("{}\u{0}{}", meta_str(lastobj, "namespace"), meta_str(lastobj, "name")),
        };
        meta["continue"] = json!(b64.encode(serde_json::to_vec(&tok).unwrap_or_default()));
        if let Some(remaining) = remaining {
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    if wants_table(accept) {
        let objs: Vec<Value> = page.iter().map(|o| to_version(rt, version, o).into_owned()).collect();
        let crd = crd_for(&st.store, rt);
        return Ok(Reply::Json(200, table::table(rt, crd, &objs, &rv.to_string(), meta.get("continue"))));
    }
    // Items of a built-in type's list carry no apiVersion/kind on the wire (custom resources'
    // do): the list's own apiVersion/kind say what they are (as kube-apiserver encodes them).
    let strip = crd_for(&st.store, rt).is_none();
    // Encoded without holding the store, so that lists are answered in parallel, as a
    // kube-apiserver answers them.
    let page: Vec<Arc<Value>> = page.into_iter().cloned().collect();
    drop(st);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024 + page.len() * 4096);
    out.extend_from_slice(b"{\"kind\":");
    out.extend_from_slice(json!(list_kind(rt)).to_string().as_bytes());
    out.extend_from_slice(b",\"apiVersion\":");
    out.extend_from_slice(json!(rt.api_version(version)).to_string().as_bytes());
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(meta.to_string().as_bytes());
    out.extend_from_slice(b",\"items\":[");
    for (i, o) in page.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let o = to_version(rt, version, o);
        // `Display` for `Value` is compiled inside serde_json (optimised even in dev builds),
        // unlike a generic `to_writer` instantiated here.
        let written = match o.as_ref() {
            Value::Object(m) if strip => {
                out.push(b'{');
                let mut first = true;
                let mut ok = true;
                for (k, v) in m.iter().filter(|(k, _)| *k != "apiVersion" && *k != "kind") {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    ok &= write!(out, "{}:{}", Value::from(k.as_str()), v).is_ok();
                }
                out.push(b'}');
                ok
            }
            other => write!(out, "{other}").is_ok(),
        };
        if !written {
            return Err(ApiError::new(500, "Internal error occurred: failed to encode object"));
        }
    }
    out.extend_from_slice(b"]}");
    Ok(Reply::Raw(200, out))
}

fn wants_table(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
}

fn crd_for<'a>(store: &'a crate::store::Store, rt: &ResourceType) -> Option<&'a Value> {
    let k = ResKey::new("apiextensions.k8s.io", "customresourcedefinitions");
    store.list(&k, None, None).find(|c| {
        c.pointer("/spec/group").and_then(Value::as_str) == Some(rt.group.as_str())
            && c.pointer("/spec/names/plural").and_then(Value::as_str) == Some(rt.plural.as_str())
    })
}

fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let selector = obj.pointer("/spec/selector").map(selector::from_label_selector_json).unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta_str(obj, "name"), "namespace": meta_str(obj, "namespace"), "uid": meta_str(obj, "uid"),
            "resourceVersion": meta_str(obj, "resourceVersion"), "creationTimestamp": meta_str(obj, "creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(if rt.plural == "deployments" { 1 } else { 0 })},
        "status": {"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0), "selector": selector.to_string()},
    })
}

#[allow(clippy::too_many_arguments)]
fn get(
    shared: &Arc<Shared>,
    accept: &str,
    rt: &ResourceType,
    version: &str,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<Reply, ApiError> {
    let st = shared.lock();
    let obj = st.store.get(&rt.key(), ns, name).ok_or_else(|| ApiError::not_found(rt, name))?;
    let v = match sub {
        Some("scale") => scale_of(rt, obj),
        _ if wants_table(accept) => {
            let o = to_version(rt, version, obj).into_owned();
            table::table(rt, crd_for(&st.store, rt), &[o], meta_str(obj, "resourceVersion"), None)
        }
        _ => to_version(rt, version, obj).into_owned(),
    };
    Ok(Reply::Json(200, v))
}

fn parse_body(ctx: &Ctx) -> Result<Value, ApiError> {
    if ctx.body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    serde_json::from_slice(&ctx.body)
        .or_else(|_| {
            std::str::from_utf8(&ctx.body).ok().and_then(|s| serde_yaml::from_str::<Value>(s).ok()).ok_or(())
        })
        .map_err(|_| ApiError::bad_request("the object provided is unrecognized (could not decode the body)"))
}

fn validate(rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments" | "statefulsets" | "replicasets") => {
            if let Some(r) = obj.pointer("/spec/replicas") {
                match r.as_i64() {
                    Some(n) if n < 0 => {
                        return Err(ApiError::invalid(
                            &rt.qualified_kind(),
                            &rt.group,
                            name,
                            "spec.replicas",
                            &format!("Invalid value: {n}: must be greater than or equal to 0"),
                        ));
                    }
                    None if !r.is_null() => {
                        return Err(ApiError::bad_request(format!(
                            "{} in version \"v1\" cannot be handled as a {}: json: cannot unmarshal {} into Go struct field {}Spec.spec.replicas of type int32",
                            rt.kind,
                            rt.kind,
                            json_type(r),
                            rt.kind
                        )));
                    }
                    _ => {}
                }
            }
        }
        ("milvus.io", "milvuses") => {
            if let Some(comps) = obj.pointer("/spec/components").and_then(Value::as_object) {
                for (k, v) in comps {
                    if let Some(n) = v.get("replicas").and_then(Value::as_i64)
                        && n < -1
                    {
                        let field = format!("spec.components.{k}.replicas");
                        return Err(ApiError::invalid(
                            &rt.qualified_kind(),
                            &rt.group,
                            name,
                            &field,
                            &format!(
                                "Invalid value: {n}: {field} in body should be greater than or equal to -1"
                            ),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        _ => "number",
    }
}

fn create(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rt: &ResourceType,
    version: &str,
    ns: &str,
) -> Result<Reply, ApiError> {
    let body = from_version(rt, version, parse_body(ctx)?);
    if !body.is_object() {
        return Err(ApiError::bad_request("the object provided is unrecognized"));
    }
    let mut obj = body;
    let body_ns = meta_str(&obj, "namespace").to_string();
    if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut st = shared.lock();
    let mut name = meta_str(&obj, "name").to_string();
    if name.is_empty() {
        let gen_name = meta_str(&obj, "generateName").to_string();
        if gen_name.is_empty() {
            return Err(ApiError::invalid(
                &rt.qualified_kind(),
                &rt.group,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
        name = format!("{gen_name}{}", util::suffix(&[&gen_name, &st.store.rv().to_string()], 5));
    }
    if rt.namespaced && st.store.get(&ResKey::new("", "namespaces"), "", ns).is_none() {
        let nsrt = all_types(&st.store).into_iter().find(|t| t.plural == "namespaces");
        if let Some(nsrt) = nsrt {
            return Err(ApiError::not_found(&nsrt, ns));
        }
    }
    if st.store.get(&rt.key(), ns, &name).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    validate(rt, &name, &obj)?;
    obj["apiVersion"] =
        json!(rt.api_version(if rt.plural == "horizontalpodautoscalers" { "v2" } else { version }));
    obj["kind"] = json!(rt.kind);
    {
        let m = util::meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        }
        m.insert("uid".into(), json!(util::uid(&[&rt.kind, ns, &name, &st.store.rv().to_string()])));
        m.insert("creationTimestamp".into(), json!(util::ts(util::now_ts())));
        m.insert("generation".into(), json!(1));
        m.remove("resourceVersion");
    }
    if rt.subresources.contains(&"status")
        && !rt.group.is_empty()
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    controller::apply_defaults(&rt.key(), &mut obj);
    if ctx.dry_run {
        return Ok(Reply::Json(201, to_version(rt, version, &obj).into_owned()));
    }
    let stored = st.store.put(&rt.key(), obj);
    let st_ref = &mut *st;
    controller::on_write(&mut st_ref.store, &mut st_ref.ctl, &rt.key(), ns, &name, Instant::now());
    let fresh = st_ref.store.get(&rt.key(), ns, &name).cloned().unwrap_or(stored);
    let rv = st_ref.store.rv();
    drop(st);
    shared.changed(rv);
    Ok(Reply::Json(201, to_version(rt, version, &fresh).into_owned()))
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn update(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rt: &ResourceType,
    version: &str,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    is_patch: bool,
) -> Result<Reply, ApiError> {
    let mut st = shared.lock();
    let existing = st.store.get(&rt.key(), ns, name).cloned().ok_or_else(|| ApiError::not_found(rt, name))?;
    let current_rv = meta_str(&existing, "resourceVersion").to_string();
    let scale_rt = ResourceType {
        group: "autoscaling".into(),
        versions: vec!["v1".into()],
        plural: "scale".into(),
        singular: "scale".into(),
        kind: "Scale".into(),
        namespaced: true,
        verbs: vec![],
        short_names: vec![],
        categories: vec![],
        subresources: vec![],
        extra_fields: vec![],
    };
    // The document the client sees and modifies.
    let base: Value = match sub {
        Some("scale") => scale_of(rt, &existing),
        _ => to_version(rt, version, &existing).into_owned(),
    };
    let body = parse_body(ctx)?;
    let modified = if is_patch {
        let ct = ctx.content_type.split(';').next().unwrap_or_default().trim();
        let mut doc = base.clone();
        match ct {
            "application/json-patch+json" => {
                util::json_patch(&mut doc, &body).map_err(|e| ApiError::new(422, e))?
            }
            "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/apply-patch+yaml" => {
                if !body.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: the patch must be a JSON object",
                    ));
                }
                util::merge_patch(&mut doc, &body);
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        doc
    } else {
        if meta_str(&body, "name") != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&body, "name")
            )));
        }
        body
    };
    let sent_rv = meta_str(&modified, "resourceVersion");
    if !sent_rv.is_empty() && sent_rv != current_rv {
        return Err(ApiError::conflict(rt, name));
    }
    if rt.namespaced && !meta_str(&modified, "namespace").is_empty() && meta_str(&modified, "namespace") != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    // Build the new stored object.
    let mut new_obj = match sub {
        Some("scale") => {
            let replicas = match modified.pointer("/spec/replicas") {
                Some(r) => r.as_i64().ok_or_else(|| ApiError::bad_request("Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal into Go struct field ScaleSpec.spec.replicas of type int32"))?,
                None => 0,
            };
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "Scale.autoscaling",
                    "autoscaling",
                    name,
                    "spec.replicas",
                    &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                ));
            }
            let _ = &scale_rt;
            let mut o = existing.clone();
            util::set_replicas(&mut o, replicas);
            o
        }
        Some("status") => {
            let mut o = existing.clone();
            o["status"] = from_version(rt, version, modified).get("status").cloned().unwrap_or(Value::Null);
            o
        }
        _ => {
            let mut o = from_version(rt, version, modified);
            if !o.is_object() {
                return Err(ApiError::bad_request("the object provided is unrecognized"));
            }
            // immutable / server-owned metadata
            for f in ["uid", "creationTimestamp", "generation", "name", "namespace"] {
                if let Some(v) = existing.pointer(&format!("/metadata/{f}")) {
                    util::meta_mut(&mut o).insert(f.into(), v.clone());
                }
            }
            o["apiVersion"] = existing.get("apiVersion").cloned().unwrap_or(Value::Null);
            o["kind"] = json!(rt.kind);
            if rt.subresources.contains(&"status") {
                match existing.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            o
        }
    };
    validate(rt, name, &new_obj)?;
    if new_obj.get("spec") != existing.get("spec") {
        let g =
            existing.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1).saturating_add(1);
        util::meta_mut(&mut new_obj).insert("generation".into(), json!(g));
    }
    util::meta_mut(&mut new_obj).insert("resourceVersion".into(), json!(current_rv));
    let respond = |o: &Value| match sub {
        Some("scale") => scale_of(rt, o),
        _ => to_version(rt, version, o).into_owned(),
    };
    if ctx.dry_run {
        return Ok(Reply::Json(200, respond(&new_obj)));
    }
    if new_obj == existing {
        return Ok(Reply::Json(200, respond(&existing)));
    }
    st.store.put(&rt.key(), new_obj);
    let st_ref = &mut *st;
    controller::on_write(&mut st_ref.store, &mut st_ref.ctl, &rt.key(), ns, name, Instant::now());
    let fresh = st_ref.store.get(&rt.key(), ns, name).cloned().unwrap_or(Value::Null);
    let rv = st_ref.store.rv();
    drop(st);
    shared.changed(rv);
    Ok(Reply::Json(200, respond(&fresh)))
}

fn delete(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Reply, ApiError> {
    let mut st = shared.lock();
    let existing = st.store.get(&rt.key(), ns, name).cloned().ok_or_else(|| ApiError::not_found(rt, name))?;
    if let Ok(opts) = parse_body(ctx)
        && let Some(want) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str)
        && want != meta_str(&existing, "resourceVersion")
    {
        return Err(ApiError::conflict(rt, name));
    }
    let success = |uid: &str| {
        let mut d = json!({"name": name, "kind": rt.plural, "uid": uid});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
    };
    if ctx.dry_run {
        return Ok(Reply::Json(
            200,
            if rt.plural == "pods" { existing.clone() } else { success(meta_str(&existing, "uid")) },
        ));
    }
    let gone = st.store.delete(&rt.key(), ns, name).unwrap_or(existing);
    let st_ref = &mut *st;
    controller::on_delete(&mut st_ref.store, &mut st_ref.ctl, &rt.key(), &gone, Instant::now());
    let rv = st_ref.store.rv();
    drop(st);
    shared.changed(rv);
    Ok(Reply::Json(
        200,
        if rt.plural == "pods" || rt.plural == "namespaces" { gone } else { success(meta_str(&gone, "uid")) },
    ))
}

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// A validated watch request.
struct WatchParams {
    rt: ResourceType,
    version: String,
    ns: Option<String>,
    ls: LabelSelector,
    fs: FieldSelector,
    start_rv: Option<u64>,
    timeout: Option<Duration>,
    initial_events: bool,
    bookmarks: bool,
    /// Send each object as a one-row Table (kubectl get -w), with the CRD for printer columns.
    table: Option<Option<Value>>,
}

fn watch_params(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    accept: &str,
    rt: &ResourceType,
    version: &str,
    ns: Option<&str>,
    name: Option<&str>,
) -> Result<WatchParams, ApiError> {
    let (ls, fs) = selectors(ctx, rt, name)?;
    let start_rv = match ctx.q("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    let timeout = match ctx.q("timeoutSeconds") {
        Some(t) if !t.is_empty() => Some(Duration::from_secs(
            t.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        )),
        _ => None,
    };
    let send_initial = ctx.q("sendInitialEvents") == Some("true");
    Ok(WatchParams {
        rt: rt.clone(),
        version: version.to_string(),
        ns: ns.map(str::to_string),
        ls,
        fs,
        start_rv: if send_initial { None } else { start_rv },
        timeout,
        initial_events: send_initial,
        bookmarks: ctx.q("allowWatchBookmarks") == Some("true"),
        table: wants_table(accept).then(|| crd_for(&shared.lock().store, rt).cloned()),
    })
}

fn watch_line(kind: &str, obj: &Value) -> Vec<u8> {
    format!("{{\"type\":\"{kind}\",\"object\":{obj}}}\n").into_bytes()
}

fn start_watch(shared: Arc<Shared>, p: WatchParams) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let mut rv_rx = shared.rv_watch.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    tokio::spawn(async move {
        // A timeoutSeconds beyond what the clock can represent is no deadline.
        let deadline = p.timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
        let key = p.rt.key();
        let render = |o: &Value| -> Value {
            let v = to_version(&p.rt, &p.version, o).into_owned();
            match &p.table {
                Some(crd) => table::table(
                    &p.rt,
                    crd.as_ref(),
                    std::slice::from_ref(&v),
                    meta_str(&v, "resourceVersion"),
                    None,
                ),
                None => v,
            }
        };
        let matches = |o: &Value| {
            p.ns.as_deref().is_none_or(|n| meta_str(o, "namespace") == n)
                && p.fs.matches(o)
                && p.ls.matches_object(o)
        };
        let initial = || {
            let st = shared.lock();
            let mut buf = Vec::new();
            let last = match p.start_rv {
                Some(rv) => rv,
                None => {
                    for o in st.store.list(&key, p.ns.as_deref(), None).filter(|o| matches(o)) {
                        buf.extend(watch_line("ADDED", &render(o)));
                    }
                    st.store.rv()
                }
            };
            if p.initial_events && p.bookmarks {
                let bm = json!({"kind": p.rt.kind, "apiVersion": p.rt.api_version(&p.version), "metadata": {"resourceVersion": last.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                buf.extend(watch_line("BOOKMARK", &bm));
            }
            (buf, last)
        };
        // A watch from before the compacted history: the one ERROR event a kube-apiserver sends.
        let compacted = shared.lock().store.compacted();
        if let Some(rv) = p.start_rv.filter(|rv| *rv < compacted) {
            let query = [("resourceVersion".to_string(), rv.to_string())];
            let event = json!({"type": "ERROR", "object": crate::proxy::watch_expired_status(&query)});
            let _ = tx.send(Ok(Bytes::from(format!("{event}\n")))).await;
            return;
        }
        let (buf, mut last) = initial();
        if !buf.is_empty() && tx.send(Ok(Bytes::from(buf))).await.is_err() {
            return;
        }
        // With allowWatchBookmarks, a BOOKMARK with the resourceVersion the watch is up to date with,
        // every BOOKMARK_EVERY (a kube-apiserver sends them about once a minute, and before a
        // timeoutSeconds ends the watch).
        let mut bookmarks =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let collect = |last: &mut u64| {
                let st = shared.lock();
                let mut buf = Vec::new();
                for e in st.store.events_since(*last) {
                    *last = e.rv;
                    if e.key != key {
                        continue;
                    }
                    let now_match = matches(&e.obj);
                    let was_match = e.old.as_ref().is_some_and(|o| matches(o));
                    let kind = match e.kind {
                        crate::store::EventKind::Modified if now_match && !was_match => "ADDED",
                        crate::store::EventKind::Modified if !now_match && was_match => "DELETED",
                        crate::store::EventKind::Modified if now_match => "MODIFIED",
                        crate::store::EventKind::Added if now_match => "ADDED",
                        crate::store::EventKind::Deleted if now_match => "DELETED",
                        _ => continue,
                    };
                    buf.extend(watch_line(kind, &render(&e.obj)));
                }
                buf
            };
            let buf = collect(&mut last);
            if !buf.is_empty() && tx.send(Ok(Bytes::from(buf))).await.is_err() {
                return;
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let bookmark = tokio::select! {
                r = rv_rx.changed() => if r.is_err() { return; } else { false },
                _ = bookmarks.tick(), if p.bookmarks => true,
                _ = sleep => return,
                _ = tx.closed() => return,
                _ = shutdown.wait_for(|v| *v) => return,
            };
            if bookmark {
                let bm = json!({"kind": p.rt.kind, "apiVersion": p.rt.api_version(&p.version), "metadata": {"resourceVersion": last.to_string(), "creationTimestamp": null}});
                if tx.send(Ok(Bytes::from(watch_line("BOOKMARK", &bm)))).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, private"));
    r
}
