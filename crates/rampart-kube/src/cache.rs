//! One kind, watched into memory: a kube-runtime reflector over
//! `DynamicObject`s, trimmed before they are stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

/// Annotations that can be large and that no rule reads.
const BULK_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// A cluster-wide cache of one kind. Cheap to clone; the watch runs on a
/// task of its own, re-listing with back-off after errors, and stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct ObjectCache {
    resource: ApiResource,
    store: Store<DynamicObject>,
    ready: Arc<AtomicBool>,
    changes: watch::Receiver<u64>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

type Events =
    futures::stream::BoxStream<'static, Result<watcher::Event<DynamicObject>, watcher::Error>>;

/// Every event of `events`, each delivered `lag` after it arrived (a task
/// takes them in as they come, so lags do not add up).
fn lagging(mut events: Events, lag: std::time::Duration) -> Events {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if tx.send((tokio::time::Instant::now(), event)).is_err() {
                return;
            }
        }
    });
    futures::stream::unfold(rx, move |mut rx| async move {
        let (arrived, event) = rx.recv().await?;
        tokio::time::sleep_until(arrived + lag).await;
        Some((event, rx))
    })
    .boxed()
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ObjectCache {
    /// Starts watching `resource` in every namespace. `trim` runs on each
    /// object before it is stored (after `managedFields` and bulky
    /// annotations are dropped), to keep only what readers need.
    pub fn start(
        client: kube::Client,
        resource: ApiResource,
        trim: impl Fn(&mut DynamicObject) + Send + Sync + 'static,
    ) -> Self {
        Self::start_lagging(client, resource, trim, None)
    }

    /// [`start`](Self::start), with every event applied `lag` late: a slow
    /// watch, for tests of what happens while the cache lags the API server.
    pub fn start_lagging(
        client: kube::Client,
        resource: ApiResource,
        trim: impl Fn(&mut DynamicObject) + Send + Sync + 'static,
        lag: Option<std::time::Duration>,
    ) -> Self {
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let (changes_tx, changes) = watch::channel(0u64);
        let ready = Arc::new(AtomicBool::new(false));
        let ar = resource.clone();
        let kind = resource.kind.clone();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(move |obj: &mut DynamicObject| {
                obj.metadata.managed_fields = None;
                if let Some(a) = obj.metadata.annotations.as_mut() {
                    for key in BULK_ANNOTATIONS {
                        a.remove(*key);
                    }
                }
                // Watch items come without apiVersion and kind.
                obj.types = Some(kube::api::TypeMeta {
                    api_version: ar.api_version.clone(),
                    kind: ar.kind.clone(),
                });
                trim(obj);
            })
            .boxed();
        let events = match lag {
            Some(lag) => lagging(events, lag),
            None => events,
        };
        let stream = events.reflect(writer);
        let ready_flag = ready.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        ready_flag.store(true, Ordering::Release);
                        changes_tx.send_modify(|n| *n += 1);
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => {
                        // After the store has it: what a reader now sees.
                        tracing::debug!(
                            kind = %kind,
                            namespace = obj.metadata.namespace.as_deref().unwrap_or(""),
                            name = obj.metadata.name.as_deref().unwrap_or(""),
                            "watch event applied"
                        );
                        changes_tx.send_modify(|n| *n += 1);
                    }
                    Err(e) => tracing::debug!(kind = %kind, error = %e, "watch error (retrying)"),
                }
            }
        });
        Self {
            resource,
            store,
            ready,
            changes,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    pub fn resource(&self) -> &ApiResource {
        &self.resource
    }

    /// Whether the first listing has completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Waits for the first listing.
    pub async fn wait_until_ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    /// The object `namespace/name` (`namespace` empty for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        let mut key = ObjectRef::<DynamicObject>::new_with(name, self.resource.clone());
        if !namespace.is_empty() {
            key = key.within(namespace);
        }
        self.store.get(&key)
    }

    /// Every object held now.
    pub fn state(&self) -> Vec<Arc<DynamicObject>> {
        self.store.state()
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// A receiver whose value changes after every event once listed (and
    /// at the end of each listing).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }
}
