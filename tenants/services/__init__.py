"""Every write to Canopy's domain. The API, the pages, the admin and management commands call these;
nothing else saves a domain row.

Each service takes keyword-only arguments with an explicit `acting_user`, checks permission through
`tenants.permissions`, runs in one transaction, enforces the allocation rules under a row lock on the
resource pool (so two admins racing for the last GPU cannot both win), and writes one audit row.
Rule violations raise `django.core.exceptions.ValidationError` with a dict keyed by the API's field
names; a tenant the user may not see raises `Http404`, one they may see but not change
`PermissionDenied`.

One module per aggregate (allocations and allocation_grants (time-bound changes), clusters, pools, tenants, moves, storage, nfs_shares,
volumes, plans, memberships, users, tenant_services; `_common` for the helpers they share); every
service is re-exported here, so callers write `from tenants import services; services.tenant_create(...)`.
"""

from tenants.services.allocation_grants import (
    allocation_grant_cancel,
    allocation_grant_end,
    allocation_grants_end_due,
)
from tenants.services.allocations import (
    ALLOCATION_FIELDS,
    AllocationSpec,
    allocation_delete,
    allocation_set,
    amounts_json,
)
from tenants.services.clusters import (
    ClusterDeletionImpact,
    cluster_create,
    cluster_delete,
    cluster_deletion_impact,
    cluster_update,
)
from tenants.services.memberships import (
    membership_change_role,
    membership_grant,
    membership_revoke,
    user_groups_mirror,
)
from tenants.services.moves import (
    tenant_move,
)
from tenants.services.nfs_shares import (
    NFS_SHARE_FIELDS,
    NfsShareSpec,
    nfs_share_create,
    nfs_share_delete,
    nfs_share_grant,
    nfs_share_revoke,
    nfs_share_update,
)
from tenants.services.plans import (
    plan_create,
    plan_delete,
    plan_update,
    tenant_apply_plan,
)
from tenants.services.pools import (
    POOL_API_NAMES,
    POOL_FIELDS,
    PoolDeletionImpact,
    pool_create,
    pool_delete,
    pool_deletion_impact,
    pool_update,
)
from tenants.services.storage import (
    STORAGE_FIELDS,
    StorageSpec,
    default_storage_path,
    hdfs_root,
    storage_create,
    storage_delete,
    storage_update,
)
from tenants.services.tenant_services import (
    TENANT_SERVICE_FIELDS,
    hive_warehouse_root,
    service_path,
    tenant_service_create,
    tenant_service_delete,
)
from tenants.services.tenants import (
    TENANT_FIELDS,
    DeletionImpact,
    tenant_create,
    tenant_delete,
    tenant_deletion_impact,
    tenant_set_state,
    tenant_update,
)
from tenants.services.users import (
    USER_FIELDS,
    user_create,
    user_update,
)
from tenants.services.volumes import (
    VOLUME_FIELDS,
    VOLUME_SETTINGS,
    VolumeSpec,
    volume_create,
    volume_delete,
    volume_update,
)

__all__ = [
    "ALLOCATION_FIELDS",
    "AllocationSpec",
    "ClusterDeletionImpact",
    "DeletionImpact",
    "NFS_SHARE_FIELDS",
    "NfsShareSpec",
    "POOL_API_NAMES",
    "POOL_FIELDS",
    "PoolDeletionImpact",
    "STORAGE_FIELDS",
    "StorageSpec",
    "TENANT_FIELDS",
    "TENANT_SERVICE_FIELDS",
    "USER_FIELDS",
    "VOLUME_FIELDS",
    "VOLUME_SETTINGS",
    "VolumeSpec",
    "allocation_delete",
    "allocation_grant_cancel",
    "allocation_grant_end",
    "allocation_grants_end_due",
    "allocation_set",
    "amounts_json",
    "cluster_create",
    "cluster_delete",
    "cluster_deletion_impact",
    "cluster_update",
    "default_storage_path",
    "hdfs_root",
    "hive_warehouse_root",
    "membership_change_role",
    "membership_grant",
    "membership_revoke",
    "nfs_share_create",
    "nfs_share_delete",
    "nfs_share_grant",
    "nfs_share_revoke",
    "nfs_share_update",
    "plan_create",
    "plan_delete",
    "plan_update",
    "pool_create",
    "pool_delete",
    "pool_deletion_impact",
    "pool_update",
    "service_path",
    "storage_create",
    "storage_delete",
    "storage_update",
    "tenant_apply_plan",
    "tenant_create",
    "tenant_delete",
    "tenant_deletion_impact",
    "tenant_move",
    "tenant_service_create",
    "tenant_service_delete",
    "tenant_set_state",
    "tenant_update",
    "user_create",
    "user_groups_mirror",
    "user_update",
    "volume_create",
    "volume_delete",
    "volume_update",
]
