//! The plugin's client stack (kube-rs + rustls + k8s-openapi) works against the server.

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use milvus_test_api::{Rules, TestApi};
use std::time::Duration;

async fn client(api: &TestApi, context: &str) -> kube::Client {
    let kc = Kubeconfig::read_from(api.kubeconfig_path()).expect("kubeconfig");
    let opts = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await.expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[test]
fn kube_rs_list_patch_watch_and_errors() {
    let api = TestApi::builder().fixture("helm/default.yaml").user("viewer", Rules::read_only()).start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let c = client(&api, "admin").await;
        let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
        let l = pods
            .list(&ListParams::default().labels("app.kubernetes.io/instance=my-release,component=querynode"))
            .await
            .expect("list");
        assert_eq!(l.items.len(), 1);
        let all: Api<Pod> = Api::all(c.clone());
        let paged = all.list(&ListParams::default().limit(5)).await.expect("page");
        assert_eq!(paged.items.len(), 5);
        assert!(paged.metadata.continue_.is_some());

        let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
        let rv =
            deps.list(&ListParams::default()).await.expect("deps").metadata.resource_version.expect("rv");
        let mut stream = deps
            .watch(
                &WatchParams::default().fields("metadata.name=my-release-milvus-querynode").timeout(10),
                &rv,
            )
            .await
            .expect("watch")
            .boxed();
        let s = deps
            .patch_scale(
                "my-release-milvus-querynode",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
            )
            .await
            .expect("scale");
        assert_eq!(s.spec.and_then(|s| s.replicas), Some(2));
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("in time")
            .expect("ok")
            .expect("event");
        match ev {
            WatchEvent::Modified(d) => assert_eq!(d.spec.and_then(|s| s.replicas), Some(2)),
            other => panic!("unexpected {other:?}"),
        }

        let err = deps.get("nothere").await.expect_err("404");
        match err {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 404);
                assert_eq!(s.message, "deployments.apps \"nothere\" not found");
            }
            e => panic!("unexpected {e:?}"),
        }
        let viewer: Api<Deployment> = Api::namespaced(client(&api, "viewer").await, "default");
        let err = viewer
            .patch(
                "my-release-milvus-proxy",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
            )
            .await
            .expect_err("403");
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 403 && s.reason == "Forbidden"),
            "{err:?}"
        );
    });
    let reqs = api.requests();
    assert!(reqs.iter().any(|r| r.verb.as_deref() == Some("watch")));
    assert_eq!(reqs.iter().filter(|r| r.is_mutating()).count(), 2);
}
