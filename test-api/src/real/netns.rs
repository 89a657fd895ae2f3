//! The pod network of one kube-apiserver backend: a network namespace `kmt-<pid>-<n>` joined to the
//! root namespace (where the API server runs) by a veth pair, the root end `kmt<pid>n<n>` holding
//! the gateway address of a /21 (2,045 pod IPs) out of 10.200.0.0/14 that no route of the machine
//! overlaps, and the pods' IPs (one /32 each on the namespace end, assigned by the kubelet
//! stand-in). A responder thread inside the namespace serves [`PodHttp`] on each pod IP and port
//! the pod listens on; a port without a listener refuses connections, as a pod whose container
//! does not listen does.
//!
//! Everything is made with `ip` (iproute2). [`PodNetwork::teardown`] (also on drop) deletes the
//! namespace, which takes the veth pair with it; namespaces of test processes that are gone (a
//! SIGKILLed test) are deleted when the next network is created.

use crate::pod_http::{HttpReply, PodHttp, PodInfo, PodRequest, PodSeen};
use axum::body::Body;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// First address of the range the networks' /21s are taken from (10.200.0.0/14: 128 of them).
const RANGE_BASE: u32 = u32::from_be_bytes([10, 200, 0, 0]);
const RANGE_CHUNKS: u32 = 128;
const CHUNK_BITS: u32 = 11; // a /21
const PREFIX_LEN: u32 = 32 - CHUNK_BITS;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Run `ip ARGS`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `(pid, n)` of a namespace name this module made.
fn parse_name(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix("kmt-")?;
    let (pid, n) = rest.split_once('-')?;
    Some((pid.parse().ok()?, n.parse().ok()?))
}

/// Network namespaces (`ip netns list`).
fn netns_names() -> Result<Vec<String>, String> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Delete the namespaces of test processes that no longer run (each takes its veth pair along).
fn remove_stale() -> Result<(), String> {
    for name in netns_names()? {
        if let Some((pid, _)) = parse_name(&name)
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            ip(&["netns", "delete", &name])?;
        }
    }
    Ok(())
}

/// `a.b.c.d/len` (or a bare address) as `(network, prefix length)`.
fn parse_prefix(s: &str) -> Option<(u32, u32)> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(addr) & mask, len))
}

fn overlaps((a, alen): (u32, u32), (b, blen): (u32, u32)) -> bool {
    let len = alen.min(blen);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == b & mask
}

/// The root namespace's IPv4 routes and addresses, as prefixes (`default` skipped).
fn used_prefixes() -> Result<Vec<(u32, u32)>, String> {
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    let addrs = ip(&["-4", "-o", "addr", "show"])?;
    let mut out: Vec<(u32, u32)> =
        routes.lines().filter_map(|l| l.split_whitespace().find_map(parse_prefix)).collect();
    for l in addrs.lines() {
        let mut words = l.split_whitespace();
        if words.any(|w| w == "inet")
            && let Some(p) = words.next().and_then(parse_prefix)
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// Serialises choosing a range and claiming it (by adding its gateway address) between processes.
fn range_lock() -> Result<std::fs::File, String> {
    let path = std::env::temp_dir().join("milvus-test-kube-netns.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.lock().map_err(|e| format!("lock {}: {e}", path.display()))?;
    Ok(f)
}

#[derive(Default)]
struct Alloc {
    by_uid: HashMap<String, Ipv4Addr>,
    /// What the responder needs: pod IP → pod.
    pods: BTreeMap<Ipv4Addr, PodInfo>,
    /// Host numbers given back, reused first.
    free: BTreeSet<u32>,
    next: u32,
}

enum Cmd {
    /// Listen on exactly these addresses; acknowledged once they are bound.
    Listen(BTreeSet<SocketAddrV4>, std::sync::mpsc::Sender<Result<(), String>>),
}

/// One backend's pod network.
pub(crate) struct PodNetwork {
    pub(crate) name: String,
    host_if: String,
    base: u32,
    gateway: Ipv4Addr,
    http: Arc<PodHttp>,
    alloc: Arc<Mutex<Alloc>>,
    cmds: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Cmd>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    torn_down: Mutex<bool>,
}

impl std::fmt::Debug for PodNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodNetwork").field("name", &self.name).field("gateway", &self.gateway).finish()
    }
}

impl PodNetwork {
    /// Create the namespace, the veth pair and the responder.
    pub(crate) fn create(http: Arc<PodHttp>) -> Result<PodNetwork, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("kmt-{pid}-{n}");
        let host_if = format!("kmt{pid}n{n}");
        if host_if.len() > 15 {
            return Err(format!("interface name {host_if} is longer than 15 characters"));
        }
        remove_stale()?;
        let _guard = range_lock()?;
        let used = used_prefixes()?;
        let start = (pid.wrapping_mul(31).wrapping_add(u32::try_from(n % 256).unwrap_or(0))) % RANGE_CHUNKS;
        let base = (0..RANGE_CHUNKS)
            .map(|k| RANGE_BASE + (((start + k) % RANGE_CHUNKS) << CHUNK_BITS))
            .find(|b| !used.iter().any(|u| overlaps(*u, (*b, PREFIX_LEN))))
            .ok_or_else(|| "no free /21 left in 10.200.0.0/14 for a pod network".to_string())?;
        let gateway = Ipv4Addr::from(base + 1);
        let net = PodNetwork {
            name: name.clone(),
            host_if: host_if.clone(),
            base,
            gateway,
            http,
            alloc: Arc::new(Mutex::new(Alloc { next: 2, ..Alloc::default() })),
            cmds: Mutex::new(None),
            thread: Mutex::new(None),
            torn_down: Mutex::new(false),
        };
        // From here on, a failure tears down what was made (drop).
        let cidr = format!("{gateway}/{PREFIX_LEN}");
        let subnet = format!("{}/{PREFIX_LEN}", Ipv4Addr::from(base));
        ip(&["netns", "add", &name])?;
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &name])?;
        ip(&["addr", "add", &cidr, "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        ip(&["-n", &name, "link", "set", "eth0", "up"])?;
        ip(&["-n", &name, "route", "add", &subnet, "dev", "eth0"])?;
        drop(_guard);
        net.start_responder()?;
        Ok(net)
    }

    /// The root end's address: the pods' `hostIP`.
    pub(crate) fn host_ip(&self) -> Ipv4Addr {
        self.gateway
    }

    fn start_responder(&self) -> Result<(), String> {
        let path = format!("/run/netns/{}", self.name);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let alloc = self.alloc.clone();
        let http = self.http.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-http", self.name))
            .spawn(move || {
                if let Err(e) = enter_netns(&path) {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("responder runtime: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                rt.block_on(responder(rx, alloc, http));
            })
            .map_err(|e| format!("responder thread: {e}"))?;
        *lock(&self.thread) = Some(thread);
        ready_rx.recv().map_err(|e| format!("responder thread: {e}"))??;
        *lock(&self.cmds) = Some(tx);
        Ok(())
    }

    /// Give the pod `uid` an IP (its first, or the one it has) and record what it is; the
    /// responder listens on the ports it answers on before this returns.
    pub(crate) fn assign(&self, uid: &str, pod: PodInfo) -> Result<Ipv4Addr, String> {
        let (addr, fresh, changed) = {
            let mut a = lock(&self.alloc);
            let (addr, fresh) = match a.by_uid.get(uid) {
                Some(addr) => (*addr, false),
                None => {
                    let host = match a.free.pop_first() {
                        Some(h) => h,
                        None => {
                            let h = a.next;
                            if h >= (1 << CHUNK_BITS) - 1 {
                                return Err(format!("pod network {} is full", self.name));
                            }
                            a.next = h + 1;
                            h
                        }
                    };
                    let addr = Ipv4Addr::from(self.base + host);
                    a.by_uid.insert(uid.to_string(), addr);
                    (addr, true)
                }
            };
            let changed = a.pods.get(&addr) != Some(&pod);
            a.pods.insert(addr, pod);
            (addr, fresh, changed)
        };
        if fresh {
            ip(&["-n", &self.name, "addr", "add", &format!("{addr}/32"), "dev", "eth0"])?;
        }
        if changed {
            self.sync()?;
        }
        Ok(addr)
    }

    /// Give back the IP of a pod that is gone.
    pub(crate) fn release(&self, uid: &str) {
        let addr = {
            let mut a = lock(&self.alloc);
            let Some(addr) = a.by_uid.remove(uid) else {
                return;
            };
            a.pods.remove(&addr);
            a.free.insert(u32::from(addr) - self.base);
            addr
        };
        let _ = ip(&["-n", &self.name, "addr", "del", &format!("{addr}/32"), "dev", "eth0"]);
        let _ = self.sync();
    }

    /// Make the responder listen where the pods and the rules say (after a rule changed).
    pub(crate) fn sync(&self) -> Result<(), String> {
        let wanted: BTreeSet<SocketAddrV4> = {
            let a = lock(&self.alloc);
            a.pods
                .iter()
                .flat_map(|(ip, pod)| self.http.ports(pod).into_iter().map(|p| SocketAddrV4::new(*ip, p)))
                .collect()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = lock(&self.cmds).as_ref().is_some_and(|c| c.send(Cmd::Listen(wanted, tx)).is_ok());
        if !sent {
            return Err(format!("the responder of {} has stopped", self.name));
        }
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|e| format!("the responder of {} did not answer: {e}", self.name))?
    }

    /// Stop the responder and delete the namespace (and with it the veth pair). Idempotent.
    pub(crate) fn teardown(&self) -> Result<(), String> {
        let mut done = lock(&self.torn_down);
        if *done {
            return Ok(());
        }
        *done = true;
        drop(lock(&self.cmds).take()); // the responder's loop ends when the channel closes
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        let r = ip(&["netns", "delete", &self.name]);
        // The veth pair goes with the namespace; make sure of it.
        if ip(&["link", "show", &self.host_if]).is_ok() {
            let _ = ip(&["link", "delete", &self.host_if]);
        }
        r.map(|_| ())
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// Move this thread into the network namespace at `path` (`/run/netns/NAME`).
fn enter_netns(path: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: `setns` only changes this thread's network namespace; the descriptor is valid (it
    // is open until the end of this function) and refers to a network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns({path}): {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The responder's loop (on its thread, inside the namespace): one task per listening address,
/// each owning its connections, so closing a port also drops the connections made to it.
async fn responder(
    mut cmds: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
    alloc: Arc<Mutex<Alloc>>,
    http: Arc<PodHttp>,
) {
    let mut listening: HashMap<SocketAddrV4, tokio::task::JoinHandle<()>> = HashMap::new();
    while let Some(Cmd::Listen(wanted, ack)) = cmds.recv().await {
        // Closed before the acknowledgement: once it is sent, connecting there is refused.
        let closing: Vec<SocketAddrV4> = listening.keys().filter(|a| !wanted.contains(a)).copied().collect();
        for addr in closing {
            if let Some(task) = listening.remove(&addr) {
                task.abort();
                let _ = task.await; // the listener and its connections are dropped by now
            }
        }
        let mut result = Ok(());
        for addr in wanted {
            if listening.contains_key(&addr) {
                continue;
            }
            // Bound synchronously on this thread: the socket is made in the namespace.
            let bound = std::net::TcpListener::bind(SocketAddr::V4(addr))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std);
            match bound {
                Ok(l) => {
                    let task = tokio::spawn(serve(l, alloc.clone(), http.clone()));
                    listening.insert(addr, task);
                }
                Err(e) => result = Err(format!("listen on {addr}: {e}")),
            }
        }
        let _ = ack.send(result);
    }
    for (_, task) in listening {
        task.abort();
    }
}

async fn serve(l: tokio::net::TcpListener, alloc: Arc<Mutex<Alloc>>, http: Arc<PodHttp>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = l.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // The pod is the one whose IP the connection reached.
                let local = stream.local_addr().ok();
                let (alloc, http) = (alloc.clone(), http.clone());
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (alloc, http) = (alloc.clone(), http.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = http_body_util::BodyExt::collect(body)
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let reply = match local {
                                Some(SocketAddr::V4(a)) => answer_on(&alloc, &http, a, &parts, &body),
                                _ => HttpReply::not_found(),
                            };
                            to_response(reply)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// The answer of the pod at `addr` to a request.
fn answer_on(
    alloc: &Mutex<Alloc>,
    http: &PodHttp,
    addr: SocketAddrV4,
    parts: &http::request::Parts,
    body: &[u8],
) -> HttpReply {
    let pod = lock(alloc).pods.get(addr.ip()).cloned();
    let Some(pod) = pod else {
        return HttpReply::not_found();
    };
    let query = crate::util::parse_query(parts.uri.query());
    let content_type =
        parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let req = PodRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        content_type,
        body,
    };
    let seen = || {
        lock(alloc)
            .pods
            .iter()
            .filter(|(_, p)| p.namespace == pod.namespace)
            .map(|(ip, p)| PodSeen { info: p.clone(), ip: ip.to_string() })
            .collect()
    };
    http.answer(&pod, &addr.ip().to_string(), addr.port(), &req, seen)
}

fn to_response(reply: HttpReply) -> Result<hyper::Response<Body>, std::convert::Infallible> {
    let mut r = hyper::Response::new(Body::from(reply.body));
    *r.status_mut() =
        http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(&reply.content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_parse() {
        assert_eq!(parse_name("kmt-123-4"), Some((123, 4)));
        assert_eq!(parse_name("kmt-x-4"), None);
        assert_eq!(parse_name("other"), None);
        let p = parse_prefix("10.200.4.0/22").expect("prefix");
        assert!(overlaps(p, parse_prefix("10.200.5.7").expect("addr")));
        assert!(!overlaps(p, parse_prefix("10.200.8.0/22").expect("prefix")));
        assert!(overlaps(p, parse_prefix("10.0.0.0/8").expect("prefix")));
        assert_eq!(parse_prefix("default"), None);
    }

    fn http_get(addr: SocketAddrV4, path: &str) -> std::io::Result<String> {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(5))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// Needs root and iproute2: run with the kube-apiserver backend selected.
    #[test]
    fn a_network_serves_its_pods_and_is_removed() {
        if std::env::var("MILVUS_TEST_BACKEND").as_deref() != Ok("kube-apiserver") {
            return;
        }
        let t = std::time::Instant::now();
        let http = Arc::new(PodHttp::default());
        let net = PodNetwork::create(http.clone()).expect("pod network");
        let created = t.elapsed();
        let pod = |name: &str, ready| PodInfo {
            namespace: "default".into(),
            name: name.into(),
            workload: "w".into(),
            ready,
        };
        let a = net.assign("uid-a", pod("a", true)).expect("ip");
        let b = net.assign("uid-b", pod("b", false)).expect("ip");
        assert_eq!(net.assign("uid-a", pod("a", true)).expect("ip"), a, "an IP per pod, kept");
        http.reply("b", crate::pod_http::DEFAULT_PORT, "/who", HttpReply::text(200, "b"));
        net.sync().expect("sync");
        let port = crate::pod_http::DEFAULT_PORT;
        let r = http_get(SocketAddrV4::new(a, port), "/healthz").expect("a answers");
        assert!(r.starts_with("HTTP/1.1 200 OK") && r.ends_with("\r\n\r\nOK"), "{r}");
        let r = http_get(SocketAddrV4::new(b, port), "/who").expect("b answers");
        assert!(r.ends_with("\r\n\r\nb"), "{r}");
        let r = http_get(SocketAddrV4::new(b, port), "/healthz").expect("b answers");
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        http.refuse("a", port);
        net.sync().expect("sync");
        let e = http_get(SocketAddrV4::new(a, port), "/healthz").expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        net.release("uid-b");
        let t = std::time::Instant::now();
        for i in 0..100 {
            net.assign(&format!("uid-{i}"), pod(&format!("p{i}"), true)).expect("ip");
        }
        let per_pod = t.elapsed() / 100;
        let t = std::time::Instant::now();
        net.teardown().expect("teardown");
        let removed = t.elapsed();
        eprintln!("pod network: created in {created:?}, {per_pod:?} per pod IP, removed in {removed:?}");
        assert!(!netns_names().expect("netns list").contains(&net.name));
        assert!(ip(&["link", "show", &net.host_if]).is_err(), "{} left behind", net.host_if);
    }
}
