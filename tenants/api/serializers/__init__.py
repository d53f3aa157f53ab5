"""Serializers translate JSON to service calls and rows to JSON; rules live in `tenants.services`.

One module per aggregate; `base` holds what they share. Every serializer is re-exported here
(`from tenants.api import serializers as s; s.TenantSerializer`).
"""

from tenants.api.serializers.allocations import (
    AllocationGrantSerializer,
    AllocationSerializer,
)
from tenants.api.serializers.amounts import (
    AllocationInputSerializer,
    AmountsSerializer,
    StorageInputSerializer,
)
from tenants.api.serializers.audit import (
    AuditEventSerializer,
)
from tenants.api.serializers.base import (
    FixedAfterCreateMixin,
    RestrictedRelatedField,
)
from tenants.api.serializers.memberships import (
    MembershipSerializer,
)
from tenants.api.serializers.nfs_shares import (
    NfsShareGrantSerializer,
    NfsShareSerializer,
)
from tenants.api.serializers.plans import (
    PlanAllocationSerializer,
    PlanSerializer,
    PlanStorageSerializer,
)
from tenants.api.serializers.pools import (
    ClusterSerializer,
    PoolFreeSerializer,
    PoolSerializer,
)
from tenants.api.serializers.storage import (
    StorageSerializer,
)
from tenants.api.serializers.tenant_services import (
    TenantServiceSerializer,
)
from tenants.api.serializers.tenants import (
    DeletionImpactSerializer,
    FiguresSerializer,
    NamespaceImpactSerializer,
    TenantAllocationSerializer,
    TenantCreateSerializer,
    TenantMoveSerializer,
    TenantPlanSerializer,
    TenantSerializer,
    UnlimitedCountsSerializer,
)
from tenants.api.serializers.users import (
    UserMembershipSerializer,
    UserSerializer,
)
from tenants.api.serializers.volumes import (
    VolumeAttachmentSerializer,
    VolumeSerializer,
)

__all__ = [
    "AllocationInputSerializer",
    "AllocationGrantSerializer",
    "AllocationSerializer",
    "AmountsSerializer",
    "AuditEventSerializer",
    "ClusterSerializer",
    "DeletionImpactSerializer",
    "FiguresSerializer",
    "FixedAfterCreateMixin",
    "MembershipSerializer",
    "NamespaceImpactSerializer",
    "NfsShareGrantSerializer",
    "NfsShareSerializer",
    "PlanAllocationSerializer",
    "PlanSerializer",
    "PlanStorageSerializer",
    "PoolFreeSerializer",
    "PoolSerializer",
    "RestrictedRelatedField",
    "StorageInputSerializer",
    "StorageSerializer",
    "TenantAllocationSerializer",
    "TenantCreateSerializer",
    "TenantMoveSerializer",
    "TenantPlanSerializer",
    "TenantSerializer",
    "TenantServiceSerializer",
    "UnlimitedCountsSerializer",
    "UserMembershipSerializer",
    "UserSerializer",
    "VolumeAttachmentSerializer",
    "VolumeSerializer",
]
