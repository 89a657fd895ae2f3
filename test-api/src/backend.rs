//! The interface both backends implement: [`crate::loopback::Loopback`] (the in-process server,
//! store and controller) and [`crate::real::Real`] (a real control plane). [`crate::TestApi`]'s
//! methods dispatch through it. Fault injection is not a backend's business: [`crate::proxy`] sits in
//! front of either.

use crate::controller::{PodBehaviour, Target};
use crate::{Backend, LabelSelector, RequestRecord, StateView, Timeout};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where a started backend is reached: what the kubeconfig says, and where it lives.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    /// PEM of the CA that signed the serving certificate.
    pub ca_pem: String,
    /// The generated kubeconfig.
    pub kubeconfig: PathBuf,
    /// The directory for further kubeconfigs ([`crate::TestApi::kubeconfig_for`]).
    pub dir: PathBuf,
}

/// A running API server with the builder's objects loaded. Dropping it stops the server and
/// removes what it wrote.
pub(crate) trait ApiBackend: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> Backend;

    /// `gitVersion` served at `/version`.
    fn server_version(&self) -> String;

    /// The kubeconfig's users as `(name, token)`, in kubeconfig order (`admin` first).
    fn users(&self) -> Vec<(String, String)>;

    /// Every request of the kubeconfig's users so far.
    fn requests(&self) -> Vec<RequestRecord>;

    /// Forget the recorded requests.
    fn clear_requests(&self);

    /// Add a pod-behaviour rule at run time (it wins over earlier ones) and let pods follow it.
    fn set_pod_behaviour(&self, target: Target, behaviour: PodBehaviour);

    /// The pod HTTP rules changed: make the pods' listeners follow them.
    fn pod_http_changed(&self) {}

    /// The pods' network namespace, if the backend has one.
    fn pod_netns(&self) -> Option<String> {
        None
    }

    /// Turn the stand-in Milvus Operator on or off.
    fn set_operator_reconciler(&self, on: bool);

    /// An object as served in `version`, or None.
    fn get_json(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value>;

    /// Objects of a type (one namespace, or all) matching `selector`, ordered by namespace and name.
    fn list_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Value>, String>;

    /// Create or replace an object; returns it as stored once the controllers have reacted.
    fn apply_json(&self, object: Value) -> Result<Value, String>;

    /// Apply a JSON merge patch; returns the result once the controllers have reacted.
    fn patch_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, String>;

    /// Delete an object; returns it as it was.
    fn delete_json(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value>;

    /// The current global resourceVersion.
    fn resource_version(&self) -> u64;

    /// Compact the history: a watch from a resourceVersion before now is answered `410 Expired`.
    /// Only the loopback can do it on demand.
    fn compact(&self) -> Result<(), String> {
        Err("this backend cannot compact its history on demand".into())
    }

    /// Call `f` once with a consistent view of the state.
    fn with_view(&self, f: &mut dyn FnMut(&StateView<'_>));

    /// Wait until the controllers and stand-ins have converged.
    fn settle(&self) -> Result<(), String>;

    /// Block until `cond` holds on a view of the state, or fail after `timeout`.
    fn wait_until(
        &self,
        cond: &mut dyn FnMut(&StateView<'_>) -> bool,
        timeout: Duration,
    ) -> Result<(), Timeout>;
}

/// What a [`StateView`] answers, per backend.
pub(crate) trait ViewSource {
    /// One object (in the server's preferred version: HPAs as `autoscaling/v2` on both backends).
    fn get(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value>;
    /// Objects of a type (one namespace, or all), ordered by namespace and name.
    fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value>;
    /// Number of objects of a type.
    fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        self.list(group, plural, namespace).len()
    }
    /// The request log.
    fn requests(&self) -> &[RequestRecord];
    /// The global resourceVersion.
    fn resource_version(&self) -> u64;
}
