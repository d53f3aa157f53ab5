"""Every provisioning write, and the work the Celery tasks call; one module per concern, every name
importable from here (`from provisioning import services`).

- `recorder`: `ProvisioningRecorder` follows the tenants (`tenants.changes`; registered in
  `ProvisioningConfig.ready()`): `tenants.services` calls it inside each write's transaction, so
  the namespace name (`namespace_reserve`) and the change to push (`intent_record`) commit (or
  roll back) with the change; `namespace_impact` names what a deletion takes.
- `intents`: `intent_record` and the queueing after the commit; `intents_redrive` is what beat
  runs; a person's "Push now" (`tenant_push_request`).
- `reconcile`: `tenant_reconcile` is what `provisioning.apply_tenant` runs: load the tenant's truth,
  render it, plan against each cluster, apply, record the outcome; `reconcile_all` is what beat
  runs; `backend_for`, `cluster_lock`.
- `connections`, `kubeconfig`, `previews`: connections, the kubeconfig download, previews and
  exports, for people.
- `_common`: what several of them share (the open intents, the backoff, scoping and planning a push).
"""

from provisioning.services._common import CLUSTER_OBJECTS_PATH, CLUSTER_SCOPE, OPEN, State, tenant_scope
from provisioning.services._common import _backoff as _backoff
from provisioning.services.connections import (
    CHECK_STATES,
    QUOTA_ENGINE_HELP,
    ConnectionCheck,
    ConnectionSpec,
    HadoopConnectionSpec,
    connection_delete,
    connection_quota_engine_set,
    connection_set,
    connection_test,
    hadoop_connection_set,
)
from provisioning.services.intents import (
    DONE_KEPT,
    enqueue,
    intent_record,
    intents_redrive,
    tenant_push_request,
)
from provisioning.services.kubeconfig import (
    IssuedKubeconfig,
    NotProvisioned,
    kubeconfig_issue,
    oidc_login_exec,
)
from provisioning.services.previews import (
    Preview,
    allocation_preview,
    hadoop_files_render,
    manifests_export,
    manifests_render,
    tenant_preview,
)
from provisioning.services.reconcile import (
    CLUSTER_LOCK_CLASS,
    CLUSTER_OBJECTS_LOCK_CLASS,
    ClusterComparison,
    ClusterOutcome,
    ReconcileOutcome,
    RetryLater,
    backend_for,
    cluster_lock,
    reconcile_all,
    target_names_left_out,
    target_objects,
    tenant_reconcile,
)
from provisioning.services.recorder import ProvisioningRecorder, namespace_impact, namespace_reserve

__all__ = [
    "CHECK_STATES",
    "CLUSTER_LOCK_CLASS",
    "CLUSTER_OBJECTS_LOCK_CLASS",
    "CLUSTER_OBJECTS_PATH",
    "CLUSTER_SCOPE",
    "DONE_KEPT",
    "OPEN",
    "QUOTA_ENGINE_HELP",
    "ClusterComparison",
    "ClusterOutcome",
    "ConnectionCheck",
    "ConnectionSpec",
    "HadoopConnectionSpec",
    "IssuedKubeconfig",
    "NotProvisioned",
    "Preview",
    "ProvisioningRecorder",
    "ReconcileOutcome",
    "RetryLater",
    "State",
    "allocation_preview",
    "backend_for",
    "cluster_lock",
    "connection_delete",
    "connection_quota_engine_set",
    "connection_set",
    "connection_test",
    "enqueue",
    "hadoop_connection_set",
    "hadoop_files_render",
    "intent_record",
    "intents_redrive",
    "kubeconfig_issue",
    "manifests_export",
    "manifests_render",
    "namespace_impact",
    "namespace_reserve",
    "oidc_login_exec",
    "reconcile_all",
    "target_names_left_out",
    "target_objects",
    "tenant_preview",
    "tenant_push_request",
    "tenant_reconcile",
    "tenant_scope",
]
