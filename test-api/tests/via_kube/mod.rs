//! A GET through a kube-rs client (kubeconfig loading, TLS and auth as the plugin does them),
//! answered as the server gave it: for the tests that compare the loopback with kube-apiserver.
#![allow(dead_code)] // each test binary uses its own part

use milvus_test_api::TestApi;
use serde_json::Value;

/// A server's answer: status code, content type, body.
pub struct Reply {
    pub code: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A GET as the admin user of the generated kubeconfig, without kube-rs's retries of a 503.
pub fn get(api: &TestApi, path: &str) -> Reply {
    send(api, "GET", path, None, Vec::new())
}

/// Any request as the admin user, with a `Content-Type` when given.
pub fn send(api: &TestApi, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(api.kubeconfig_path()).expect("kubeconfig");
        let mut cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
        cfg.default_retry = false;
        let client = kube::Client::try_from(cfg).expect("client");
        let mut req = http::Request::builder().method(method).uri(path).header("Accept", "application/json");
        if let Some(t) = content_type {
            req = req.header("Content-Type", t);
        }
        let req = req.body(kube::client::Body::from(body)).expect("request");
        let resp = client.send(req).await.expect("send");
        let code = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = resp.into_body().collect_bytes().await.expect("body");
        Reply { code, content_type, body: String::from_utf8_lossy(&body).into_owned() }
    })
}
