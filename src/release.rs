//! Finding one named release, shared by the commands that act on a release (`status`, `scale`).

use jiff::Timestamp;

use crate::client::Kube;
use crate::client::follow::{Query, Seed};
use crate::client::read::{self, Kinds, Note, NoteKind, Pods, Scope};
use crate::error::Error;
use crate::gitops::{self, GitOpsError};
use crate::helm::HelmRelease;
use crate::milvus::owners::{self, Details, HelmRecord, OwnerChain, Tracker};
use crate::milvus::{self, DiscoveryOptions, Inventory, Milvus, Release};

/// Which release, and how to recognise its workloads.
pub struct Lookup<'a> {
    pub name: &'a str,
    pub all_namespaces: bool,
    /// The value of `app.kubernetes.io/name` (`--name-override`).
    pub name_label: &'a str,
}

/// The release, what could not be read, and the objects it was discovered from.
pub struct Found {
    pub release: Release,
    pub notes: Vec<Note>,
    pub inventory: Inventory,
    /// Where the objects were read, and the `resourceVersion` of each list ([`read::Reading::listed`]):
    /// watches can start from this reading rather than list again ([`Found::seed`]).
    pub scope: Scope,
    pub listed: Vec<(Query, String)>,
    /// The Argo CD Application or Flux HelmRelease the release's objects name, as read concurrently
    /// with the release (`None`: none named, or not read).
    pub gitops: Option<GitOpsRead>,
}

/// A tracker, and its object as read.
pub type GitOpsRead = (Tracker, Result<Details, GitOpsError>);

/// What a Helm record read says for the owner chain.
pub fn helm_record(read: &Result<Option<HelmRelease>, String>) -> HelmRecord {
    match read {
        Ok(Some(release)) => HelmRecord::Recorded { revision: release.revision },
        Ok(None) => HelmRecord::None,
        Err(_) => HelmRecord::Unreadable,
    }
}

impl Found {
    /// The `Milvus` object of an operator release.
    pub fn milvus_object(&self) -> Option<&Milvus> {
        self.inventory
            .milvuses
            .iter()
            .find(|m| m.name() == self.release.name && m.namespace() == self.release.namespace)
    }

    /// The release's tracker, from its objects' labels and annotations.
    pub fn tracker(&self, name_label: &str) -> Option<Tracker> {
        let metas = owners::release_metas(
            &self.inventory,
            Some(&self.release.namespace),
            &self.release.name,
            name_label,
        );
        owners::tracker(&metas)
    }

    /// Who applies the release: Helm (with what its record said) or the operator, then GitOps with
    /// what its object said (read by [`find`]; `gitops` gives it when read apart, as `status -w` does).
    pub fn owner_chain(
        &self,
        name_label: &str,
        helm: Option<HelmRecord>,
        gitops: Option<&GitOpsRead>,
    ) -> OwnerChain {
        let metas = owners::release_metas(
            &self.inventory,
            Some(&self.release.namespace),
            &self.release.name,
            name_label,
        );
        let tracker = owners::tracker(&metas);
        let read = gitops
            .or(self.gitops.as_ref())
            .filter(|(read_for, _)| Some(read_for) == tracker.as_ref())
            .map(|(_, read)| read.clone().map_err(|e| e.to_string()));
        owners::OwnerChain::new(&self.release, &metas, self.milvus_object(), helm, read)
    }

    /// The reading the release was found in, to start watches from: its objects (taken: the inventory
    /// is left empty) and the `resourceVersion`s of its lists.
    pub fn seed(&mut self) -> Seed {
        Seed {
            scope: self.scope.clone(),
            inventory: std::mem::take(&mut self.inventory),
            listed: std::mem::take(&mut self.listed),
        }
    }
}

/// Where `lookup` looks: the namespace, or the cluster with -A.
pub fn scope(kube: &Kube, lookup: &Lookup<'_>) -> Scope {
    if lookup.all_namespaces { Scope::AllNamespaces } else { Scope::Namespace(kube.namespace.clone()) }
}

/// What a release is discovered from.
pub const KINDS: Kinds = Kinds { pods: true, hpas: true, milvuses: true, whole_owners: false };

/// What `scale` reads: [`KINDS`], with the Deployments whole (a dry run's diff is of the object as read).
pub const SCALE_KINDS: Kinds = Kinds { whole_owners: true, ..KINDS };

/// Reads the namespace (or the cluster with -A) once, one concurrent list per kind (the pods by the
/// release's labels), and picks the release.
pub async fn find(kube: &Kube, lookup: &Lookup<'_>) -> Result<Found, Error> {
    find_with(kube, lookup, KINDS).await
}

/// As [`find`], reading `kinds`.
pub async fn find_with(kube: &Kube, lookup: &Lookup<'_>, kinds: Kinds) -> Result<Found, Error> {
    let scope = scope(kube, lookup);
    let release = [lookup.name.to_string()];
    let namespace = match &scope {
        Scope::Namespace(ns) => Some(ns.as_str()),
        Scope::AllNamespaces => None,
    };
    // The release's GitOps object is read as soon as its workloads name it, beside the pods.
    let then = |so_far: &Inventory| {
        let metas = owners::release_metas(so_far, namespace, lookup.name, lookup.name_label);
        owners::tracker(&metas).map(|tracker| async move {
            let read = gitops::read(kube, &tracker).await;
            (tracker, read)
        })
    };
    let (reading, gitops) = read::read_with_then(kube, &scope, kinds, Pods::OfReleases(&release), then).await;
    let mut found = pick(kube, lookup, &scope, reading?).await?;
    found.gitops = gitops;
    Ok(found)
}

/// Picks the release from `reading` (of [`KINDS`] in `scope`); when it is not there, says where it is.
pub async fn pick(
    kube: &Kube,
    lookup: &Lookup<'_>,
    scope: &Scope,
    reading: read::Reading,
) -> Result<Found, Error> {
    let options = DiscoveryOptions { name_label: lookup.name_label.to_string(), now: Timestamp::now() };
    let releases = milvus::discover(&reading.inventory, &options);
    // A missing Milvus CRD only matters to `list`: this release was found (or not) either way.
    let notes: Vec<Note> = reading.notes.into_iter().filter(|n| n.kind != NoteKind::NoMilvusCrd).collect();
    let mut matching: Vec<Release> = releases.iter().filter(|r| r.name == lookup.name).cloned().collect();
    match matching.len() {
        1 => Ok(Found {
            release: matching.remove(0),
            notes,
            inventory: reading.inventory,
            scope: scope.clone(),
            listed: reading.listed,
            gitops: None,
        }),
        0 => Err(not_found(kube, lookup, scope, &releases).await),
        _ => {
            let namespaces: Vec<&str> = matching.iter().map(|r| r.namespace.as_str()).collect();
            Err(Error::Usage(format!(
                "release \"{}\" exists in several namespaces ({}): choose one with -n NAMESPACE",
                lookup.name,
                namespaces.join(", ")
            )))
        }
    }
}

/// Says where a release of that name does exist, or which releases the namespace has.
async fn not_found(kube: &Kube, lookup: &Lookup<'_>, scope: &Scope, here: &[Release]) -> Error {
    let name = lookup.name;
    let Scope::Namespace(namespace) = scope else {
        return Error::ReleaseNotFound(format!("Milvus release \"{name}\" not found in any namespace"));
    };
    let elsewhere: Vec<String> =
        match read::read(kube, &Scope::AllNamespaces, Kinds { milvuses: true, ..Kinds::default() }).await {
            Ok(reading) => {
                let options =
                    DiscoveryOptions { name_label: lookup.name_label.to_string(), now: Timestamp::now() };
                milvus::discover(&reading.inventory, &options)
                    .into_iter()
                    .filter(|r| r.name == name)
                    .map(|r| r.namespace)
                    .collect()
            }
            // Not allowed to look cluster-wide: say only what we know.
            Err(_) => Vec::new(),
        };
    let base = format!("Milvus release \"{name}\" not found in namespace \"{namespace}\"");
    let hint = match elsewhere.as_slice() {
        [one] => format!(": found in namespace {one}, use -n {one}"),
        [] if here.is_empty() => {
            ": there are no Milvus releases in this namespace (kubectl milvus list -A shows all)".into()
        }
        [] => {
            let names: Vec<&str> = here.iter().map(|r| r.name.as_str()).collect();
            format!(": releases in this namespace: {}", names.join(", "))
        }
        many => format!(": found in namespaces {}, use -n NAMESPACE", many.join(", ")),
    };
    Error::ReleaseNotFound(base + &hint)
}
