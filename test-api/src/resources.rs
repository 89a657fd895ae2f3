//! The resource types the server knows: a static table of built-in types plus whatever
//! CustomResourceDefinitions are stored.

use serde_json::{Value, json};

/// Storage identity of a resource type: API group and plural (versions are views of it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResKey {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

impl ResKey {
    /// Build a key.
    pub fn new(group: &str, plural: &str) -> Self {
        ResKey { group: group.to_string(), plural: plural.to_string() }
    }
}

/// Description of one resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Subresource names (`status`, `scale`).
    pub subresources: Vec<&'static str>,
    /// Fields usable in a `fieldSelector` besides `metadata.name` / `metadata.namespace`.
    pub extra_fields: Vec<&'static str>,
}

const ALL_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

impl ResourceType {
    /// Storage key.
    pub fn key(&self) -> ResKey {
        ResKey::new(&self.group, &self.plural)
    }

    /// `plural` or `plural.group`, as in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `Kind` or `Kind.group`, as in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) }
    }

    /// `group/version` or `version` for core.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() { version.to_string() } else { format!("{}/{}", self.group, version) }
    }

    /// Fields supported in field selectors.
    pub fn field_selectors(&self) -> Vec<&'static str> {
        let mut v = vec!["metadata.name", "metadata.namespace"];
        v.extend(self.extra_fields.iter().copied());
        v
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    versions: &[&str],
    plural: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    cats: &[&str],
    subs: &[&'static str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: versions.iter().map(|s| s.to_string()).collect(),
        plural: plural.into(),
        singular: singular.into(),
        kind: kind.into(),
        namespaced,
        verbs: ALL_VERBS.to_vec(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: cats.iter().map(|s| s.to_string()).collect(),
        subresources: subs.to_vec(),
        extra_fields: vec![],
    }
}

/// The built-in resource types.
pub fn builtins() -> Vec<ResourceType> {
    let mut v = vec![
        builtin("", &["v1"], "pods", "pod", "Pod", true, &["po"], &["all"], &["status"]),
        builtin("", &["v1"], "namespaces", "namespace", "Namespace", false, &["ns"], &[], &["status"]),
        builtin("", &["v1"], "nodes", "node", "Node", false, &["no"], &[], &["status"]),
        builtin("", &["v1"], "events", "event", "Event", true, &["ev"], &[], &[]),
        builtin("", &["v1"], "secrets", "secret", "Secret", true, &[], &[], &[]),
        builtin("", &["v1"], "configmaps", "configmap", "ConfigMap", true, &["cm"], &[], &[]),
        builtin("", &["v1"], "services", "service", "Service", true, &["svc"], &["all"], &["status"]),
        builtin("", &["v1"], "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], &[], &[]),
        builtin(
            "",
            &["v1"],
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            &[],
            &["status"],
        ),
        builtin(
            "apps",
            &["v1"],
            "deployments",
            "deployment",
            "Deployment",
            true,
            &["deploy"],
            &["all"],
            &["scale", "status"],
        ),
        builtin(
            "apps",
            &["v1"],
            "statefulsets",
            "statefulset",
            "StatefulSet",
            true,
            &["sts"],
            &["all"],
            &["scale", "status"],
        ),
        builtin(
            "apps",
            &["v1"],
            "replicasets",
            "replicaset",
            "ReplicaSet",
            true,
            &["rs"],
            &["all"],
            &["scale", "status"],
        ),
        builtin(
            "apps",
            &["v1"],
            "daemonsets",
            "daemonset",
            "DaemonSet",
            true,
            &["ds"],
            &["all"],
            &["status"],
        ),
        builtin("batch", &["v1"], "jobs", "job", "Job", true, &[], &["all"], &["status"]),
        builtin(
            "autoscaling",
            &["v2", "v1"],
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            &["all"],
            &["status"],
        ),
        builtin(
            "policy",
            &["v1"],
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            &[],
            &["status"],
        ),
        builtin("rbac.authorization.k8s.io", &["v1"], "roles", "role", "Role", true, &[], &[], &[]),
        builtin(
            "rbac.authorization.k8s.io",
            &["v1"],
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            &["v1"],
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            false,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            &["v1"],
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            &["v1"],
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            &["status"],
        ),
    ];
    for r in &mut v {
        match r.plural.as_str() {
            "pods" => {
                r.extra_fields = vec![
                    "spec.nodeName",
                    "spec.restartPolicy",
                    "spec.schedulerName",
                    "spec.serviceAccountName",
                    "spec.hostNetwork",
                    "status.phase",
                    "status.podIP",
                    "status.nominatedNodeName",
                ]
            }
            "events" => {
                r.extra_fields = vec![
                    "involvedObject.kind",
                    "involvedObject.namespace",
                    "involvedObject.name",
                    "involvedObject.uid",
                    "involvedObject.apiVersion",
                    "involvedObject.resourceVersion",
                    "involvedObject.fieldPath",
                    "reason",
                    "reportingComponent",
                    "source",
                    "type",
                ]
            }
            "secrets" => r.extra_fields = vec!["type"],
            "namespaces" => {
                r.extra_fields = vec!["status.phase"];
                r.verbs = vec!["create", "delete", "get", "list", "patch", "update", "watch"];
            }
            "replicasets" => r.extra_fields = vec!["status.replicas"],
            "jobs" => r.extra_fields = vec!["status.successful"],
            _ => {}
        }
    }
    v
}

/// Resource types described by a stored CustomResourceDefinition.
pub fn from_crd(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let versions = spec.get("versions").and_then(Value::as_array)?;
    let mut served: Vec<String> = Vec::new();
    let mut storage = String::new();
    let mut subs: Vec<&'static str> = Vec::new();
    for v in versions {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            served.push(name.clone());
        }
        if v.get("storage").and_then(Value::as_bool).unwrap_or(false) {
            storage = name.clone();
            if let Some(s) = v.get("subresources") {
                if s.get("status").is_some() {
                    subs.push("status");
                }
                if s.get("scale").is_some() {
                    subs.push("scale");
                }
            }
        }
    }
    // preferred version: the storage version first, like the real discovery for most CRDs.
    served.sort_by_key(|v| if *v == storage { 0 } else { 1 });
    let plural = names.get("plural")?.as_str()?.to_string();
    Some(ResourceType {
        group: spec.get("group")?.as_str()?.to_string(),
        versions: served,
        singular: names.get("singular").and_then(Value::as_str).unwrap_or(&plural).to_string(),
        plural,
        kind: names.get("kind")?.as_str()?.to_string(),
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        verbs: ALL_VERBS.to_vec(),
        short_names: strs(names.get("shortNames")),
        categories: strs(names.get("categories")),
        subresources: subs,
        extra_fields: vec![],
    })
}

/// One entry of an `APIResourceList`.
pub fn api_resources(rt: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": rt.verbs,
    });
    if !rt.short_names.is_empty() {
        main["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        main["categories"] = json!(rt.categories);
    }
    let mut out = vec![main];
    for sub in &rt.subresources {
        let mut e = json!({
            "name": format!("{}/{}", rt.plural, sub),
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["get", "patch", "update"],
        });
        if *sub == "scale" {
            e["group"] = json!("autoscaling");
            e["version"] = json!("v1");
            e["kind"] = json!("Scale");
        }
        out.push(e);
    }
    out
}
