//! A minimal blocking HTTPS/1.1 client that verifies the server against the generated CA.

#![allow(dead_code)]

use milvus_test_api::TestApi;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(api: &TestApi) -> std::io::Result<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(api.ca_pem().as_bytes()).map_err(std::io::Error::other)?;
    roots.add(ca).map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(("127.0.0.1", api.port()))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn send(
    s: &mut Tls,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> std::io::Result<()> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: test-client\r\n"
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.map(<[u8]>::len).unwrap_or(0)));
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    s.flush()
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// Reads a (possibly chunked) body incrementally.
pub struct BodyReader {
    r: BufReader<Tls>,
    chunked: bool,
    left: usize,
    done: bool,
}

impl BodyReader {
    fn read_some(&mut self) -> std::io::Result<Vec<u8>> {
        if self.done {
            return Ok(vec![]);
        }
        if !self.chunked {
            let mut v = Vec::new();
            self.r.read_to_end(&mut v)?;
            self.done = true;
            return Ok(v);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.r.read_line(&mut line)?;
            if line.trim().is_empty() {
                line.clear();
                self.r.read_line(&mut line)?;
            }
            let n = usize::from_str_radix(line.trim(), 16)
                .map_err(|e| std::io::Error::other(format!("chunk size {line:?}: {e}")))?;
            if n == 0 {
                self.done = true;
                return Ok(vec![]);
            }
            self.left = n;
        }
        let mut buf = vec![0u8; self.left];
        self.r.read_exact(&mut buf)?;
        self.left = 0;
        Ok(buf)
    }

    fn read_all(mut self) -> std::io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while !self.done {
            all.extend(self.read_some()?);
        }
        Ok(all)
    }
}

pub fn request(
    api: &TestApi,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> std::io::Result<Resp> {
    let mut s = connect(api)?;
    send(&mut s, method, path, token, content_type, body)?;
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = BodyReader { r, chunked, left: 0, done: false }.read_all()?;
    Ok(Resp { status, headers, body })
}

/// GET as admin, expecting 200, returning JSON.
pub fn get(api: &TestApi, path: &str) -> Value {
    let tok = api.token("admin").expect("admin token");
    let r = request(api, "GET", path, Some(&tok), None, None).expect("request");
    assert_eq!(r.status, 200, "GET {path}: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

pub fn as_user(
    api: &TestApi,
    user: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let tok = api.token(user).expect("token");
    let b = body.map(|b| serde_json::to_vec(b).expect("json"));
    request(api, method, path, Some(&tok), content_type, b.as_deref()).expect("request")
}

/// A streaming watch.
pub struct Watch {
    body: BodyReader,
    pending: Vec<u8>,
}

impl Watch {
    pub fn start(api: &TestApi, path: &str) -> Watch {
        let tok = api.token("admin").expect("admin token");
        let mut s = connect(api).expect("connect");
        send(&mut s, "GET", path, Some(&tok), None, None).expect("send");
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r).expect("head");
        assert_eq!(status, 200);
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        Watch { body: BodyReader { r, chunked, left: 0, done: false }, pending: Vec::new() }
    }

    /// Next event, or None when the server ended the stream.
    pub fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("event JSON"));
            }
            let more = self.body.read_some().ok()?;
            if more.is_empty() && self.body.done {
                return None;
            }
            self.pending.extend(more);
        }
    }
}
