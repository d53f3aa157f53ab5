"""Permission property test (issue 8, point 2): random trees, people, groups and roles; for every API
endpoint, every console page and every htmx fragment, access is granted exactly when the oracle of
the permission model (tests/tenants/permission_world.py) says so, and nothing of a tenant the
person may not see ever shows: not in a list, a fragment, a usage series, an export or a kubeconfig.

Each example builds its world through the services inside a savepoint and rolls it back at the end,
so every example starts from the same clean database; every probe that writes runs in its own
savepoint too, so the next probe sees the world as built. A refused write must leave every row as
it was; an allowed one must change something (or nothing, where the endpoint is a dry run).

The default run is short (`ci` profile); `CANOPY_LONG_FUZZ=1` selects the `long` profile with many
more examples (tests/conftest.py registers both; docs/testing.md).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from rest_framework.test import APIClient

from identity.backends import OIDCBackend
from provisioning import services as provisioning_services
from provisioning.models import ClusterSyncStatus, HadoopConnection, KubernetesConnection, TenantSync
from quotas import services as quota_services
from quotas.models import Notification, QuotaRequest
from tenants import services, views
from tenants.cluster_names import is_cluster_name
from tenants.models import (
    Allocation,
    AllocationGrant,
    AuditEvent,
    Cluster,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    ResourcePool,
    StorageDirectory,
    Tenant,
    TenantService,
    Volume,
    VolumeAttachment,
)
from tests.factories import PASSWORD, UserFactory
from tests.identity.helpers import configured as sign_in_configured
from tests.identity.test_oidc_groups import ENV as OIDC_ENV
from tests.identity.test_oidc_groups import claims as oidc_claims
from tests.provisioning.cluster_acls import widenings
from tests.provisioning.test_api_permissions import provisioning_state
from tests.tenants.builders import TokenClient
from tests.tenants.permission_world import (
    MAX_DEPTH,
    ROLES,
    TENANT_NAME,
    GrantSpec,
    Oracle,
    PersonSpec,
    World,
    WorldSpec,
    build_world,
    person_name,
    tenant_name,
    usage_marker,
    worlds,
)
from tests.tenants.storage_invariants import assert_directories_in_place, assert_volumes_in_place
from usage.models import PoolPrice, Workload

pytestmark = pytest.mark.django_db
User = get_user_model()

PERSON_NAME = re.compile(r"pp(\d+)x")
GROUP_NAME = re.compile(r"gg(\d+)x")
NEW_PASSWORD = "a-Long-enough-passw0rd"


# ---------------------------------------------------------------------------------------------
# One example's context: the world, who asks, about which tenants


@dataclass
class Ctx:
    world: World
    oracle: Oracle
    observer: int | None  # index into spec.people; None: anonymous
    t: int  # the target tenant
    d: int  # a second tenant (a move's destination)
    seed: int  # picks the allocation, membership, ... a probe is about

    @property
    def spec(self) -> WorldSpec:
        return self.world.spec

    @property
    def target(self) -> Tenant:
        return self.world.tenants[self.t]

    def index(self, tenant_id: int | None) -> int | None:
        return self.world.index_of.get(tenant_id) if tenant_id is not None else None

    def may(self, action: str, tenant_id: int | None) -> bool:
        """The oracle about a tenant given by id (None or the `default` tenant: platform only)."""
        if tenant_id is not None and tenant_id not in self.world.index_of:
            return self.oracle.platform
        return self.oracle.may(action, self.index(tenant_id))

    def gate(self, action: str, index: int, allowed: int) -> set[int]:
        """The convention of the API and the services: a tenant the person cannot see is a 404 (its
        name never told), one they see but may not act on a 403."""
        if not self.oracle.may("view", index):
            return {404}
        if not self.oracle.may(action, index):
            return {403}
        return {allowed}

    def platform_only(self, allowed: int) -> set[int]:
        return {allowed} if self.oracle.platform else {403}

    def pick(self, rows: list[Any]) -> Any:
        return rows[self.seed % len(rows)]

    def parent_allocated(self, index: int) -> bool:
        parent = self.spec.nodes[index].parent
        return parent is None or self.spec.nodes[parent].allocated

    def subtree(self, index: int) -> set[int]:
        return {i for i in range(len(self.spec.nodes)) if index in self.spec.ancestors(i, include_self=True)}

    def height(self, index: int) -> int:
        return max(self.spec.depth(i) for i in self.subtree(index)) - self.spec.depth(index)


@dataclass
class Probe:
    method: str
    url: str
    expect: set[int]
    body: dict[str, Any] | None = None
    # Writes: whether an allowed call changes rows (False for dry runs); refused ones never do.
    changes: bool = True
    htmx: bool = False
    # Extra checks of a response the oracle allows (lists compared with the oracle's sets).
    check: Callable[[Any], None] | None = None

    @property
    def writes(self) -> bool:
        return self.method not in ("get", "head")


def ids_of(response: Any) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def expect_ids(expected: set[int], key: Callable[[dict], Any] = lambda row: row["id"]) -> Callable:
    def check(response: Any) -> None:
        assert {key(row) for row in response.json()["results"]} == expected

    return check


def namespaces_in_zip(response: Any) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name.split("/")[1] for name in archive.namelist()}


def namespace_of(ctx: Ctx, index: int) -> str:
    return TenantSync.objects.get(tenant_id=ctx.world.tenants[index].pk).namespace


# ---------------------------------------------------------------------------------------------
# The API: one case per (method, path) of the OpenAPI document, plus the router's root view

API: dict[tuple[str, str], Callable[[Ctx], list[Probe]]] = {}


def api(method: str, path: str) -> Callable:
    def register(case: Callable[[Ctx], list[Probe]]) -> Callable[[Ctx], list[Probe]]:
        API[(method, path)] = case
        return case

    return register


def rows_by_view(ctx: Ctx, model: Any, tenant_field: str = "tenant_id", action: str = "view") -> set[int]:
    return {
        pk for pk, tenant_id in model.objects.values_list("pk", tenant_field) if ctx.may(action, tenant_id)
    }


V1 = "/api/v1"


@api("get", f"{V1}/")
def api_root(ctx: Ctx) -> list[Probe]:
    return [Probe("get", f"{V1}/", {200})]


@api("post", f"{V1}/auth/token/")
def api_token(ctx: Ctx) -> list[Probe]:
    # Public: a token for whoever gives their password (a deactivated account gets none). Issuing
    # one is audited (API_TOKEN_ISSUED), so an accepted sign-in changes the world; a refused one not.
    name = person_name(ctx.observer) if ctx.observer is not None else "nobody"
    return [
        Probe(
            "post",
            f"{V1}/auth/token/",
            {200} if ctx.oracle.signed_in else {400},
            {"username": name, "password": PASSWORD},
        )
    ]


# Tenants --------------------------------------------------------------------------------------


def tenant_ids_visible(ctx: Ctx) -> set[int]:
    return {pk for pk in Tenant.objects.values_list("pk", flat=True) if ctx.may("view", pk)}


@api("get", f"{V1}/tenants/")
def tenants_list(ctx: Ctx) -> list[Probe]:
    return [Probe("get", f"{V1}/tenants/?page_size=500", {200}, check=expect_ids(tenant_ids_visible(ctx)))]


@api("post", f"{V1}/tenants/")
def tenants_create(ctx: Ctx) -> list[Probe]:
    t, node = ctx.t, ctx.spec.nodes[ctx.t]
    if not ctx.oracle.may("view", t):
        under = {400}  # a parent the person cannot see does not exist for them
    elif not ctx.oracle.may("administer", t):
        under = {403}
    elif node.leaf or ctx.spec.depth(t) >= MAX_DEPTH:
        under = {400}  # allowed, and refused by the tree's rules
    else:
        under = {201}
    return [
        Probe("post", f"{V1}/tenants/", under, {"parent": ctx.target.pk, "name": "newkid"}),
        Probe("post", f"{V1}/tenants/", ctx.platform_only(201), {"name": "newtop"}),
    ]


def tenant_url(ctx: Ctx, suffix: str = "") -> str:
    return f"{V1}/tenants/{ctx.target.pk}/{suffix}"


@api("get", f"{V1}/tenants/{{id}}/")
def tenant_read(ctx: Ctx) -> list[Probe]:
    return [Probe("get", tenant_url(ctx), ctx.gate("view", ctx.t, 200))]


@api("put", f"{V1}/tenants/{{id}}/")
def tenant_put(ctx: Ctx) -> list[Probe]:
    body = {"display_name": "Renamed", "description": "changed"}
    return [Probe("put", tenant_url(ctx), ctx.gate("administer", ctx.t, 200), body)]


@api("patch", f"{V1}/tenants/{{id}}/")
def tenant_patch(ctx: Ctx) -> list[Probe]:
    return [Probe("patch", tenant_url(ctx), ctx.gate("administer", ctx.t, 200), {"description": "changed"})]


@api("delete", f"{V1}/tenants/{{id}}/")
def tenant_delete(ctx: Ctx) -> list[Probe]:
    return [Probe("delete", tenant_url(ctx) + "?confirm=true", ctx.gate("manage", ctx.t, 204))]


@api("post", f"{V1}/tenants/{{id}}/apply-plan/")
def tenant_apply_plan(ctx: Ctx) -> list[Probe]:
    body = {"plan": ctx.world.plan.pk}
    return [Probe("post", tenant_url(ctx, "apply-plan/"), ctx.gate("manage", ctx.t, 200), body)]


@api("get", f"{V1}/tenants/{{id}}/deletion-impact/")
def tenant_deletion_impact(ctx: Ctx) -> list[Probe]:
    # It names the whole subtree and counts its members: for those who may delete the tenant.
    return [Probe("get", tenant_url(ctx, "deletion-impact/"), ctx.gate("manage", ctx.t, 200))]


@api("get", f"{V1}/tenants/{{id}}/kubeconfig/")
def tenant_kubeconfig(ctx: Ctx) -> list[Probe]:
    # Allowed callers hear that the cluster exports manifests only (409): the gate before issuance.
    url = tenant_url(ctx, f"kubeconfig/?cluster={ctx.world.kubernetes.pk}")
    return [Probe("get", url, ctx.gate("use", ctx.t, 409))]


@api("post", f"{V1}/tenants/{{id}}/move/")
def tenant_move(ctx: Ctx) -> list[Probe]:
    t, d, spec = ctx.t, ctx.d, ctx.spec
    if not ctx.oracle.may("view", t):
        expected = {404}
    elif not ctx.oracle.may("view", d):
        expected = {400}  # the new parent does not exist for them
    elif not ctx.oracle.may("manage", t) or not ctx.oracle.may("administer", d):
        expected = {403}
    elif d in ctx.subtree(t) or spec.nodes[d].leaf:
        expected = {400}
    elif d == spec.nodes[t].parent:
        expected = {200}  # already there: nothing to do
    elif spec.depth(d) + 1 + ctx.height(t) > MAX_DEPTH:
        expected = {400}
    elif spec.nodes[t].allocated and not spec.nodes[d].allocated:
        expected = {400}  # its allocation would not fit under the new parent
    else:
        expected = {200}
    no_op = d == spec.nodes[t].parent
    body = {"parent": ctx.world.tenants[d].pk}
    return [Probe("post", tenant_url(ctx, "move/"), expected, body, changes=not no_op)]


@api("get", f"{V1}/tenants/{{id}}/provisioning/")
def tenant_provisioning(ctx: Ctx) -> list[Probe]:
    return [Probe("get", tenant_url(ctx, "provisioning/"), ctx.gate("view", ctx.t, 200))]


@api("get", f"{V1}/tenants/{{id}}/provisioning/preview/")
def tenant_preview(ctx: Ctx) -> list[Probe]:
    return [Probe("get", tenant_url(ctx, "provisioning/preview/"), ctx.gate("administer", ctx.t, 200))]


ZERO = {"gpu": 0, "cpu": "0", "memory": "0"}


@api("post", f"{V1}/tenants/{{id}}/provisioning/preview/")
def tenant_preview_allocation(ctx: Ctx) -> list[Probe]:
    expected = ctx.gate("manage", ctx.t, 200 if ctx.parent_allocated(ctx.t) else 400)
    body = {"pool": ctx.world.pool.pk, **ZERO}
    return [Probe("post", tenant_url(ctx, "provisioning/preview/"), expected, body, changes=False)]


@api("post", f"{V1}/tenants/{{id}}/provisioning/push/")
def tenant_push(ctx: Ctx) -> list[Probe]:
    return [Probe("post", tenant_url(ctx, "provisioning/push/"), ctx.gate("administer", ctx.t, 202))]


@api("post", f"{V1}/tenants/{{id}}/suspend/")
def tenant_suspend(ctx: Ctx) -> list[Probe]:
    return [Probe("post", tenant_url(ctx, "suspend/"), ctx.gate("manage", ctx.t, 200))]


@api("post", f"{V1}/tenants/{{id}}/resume/")
def tenant_resume(ctx: Ctx) -> list[Probe]:
    return [Probe("post", tenant_url(ctx, "resume/"), ctx.gate("manage", ctx.t, 200))]


@api("get", f"{V1}/tenants/{{id}}/usage/")
def tenant_usage(ctx: Ctx) -> list[Probe]:
    expected_values = {usage_marker(ctx.t)} if ctx.t in ctx.spec.usage else set()

    def only_its_own_figures(response: Any) -> None:
        body = response.json()
        assert body["tenant"] == ctx.target.pk
        values = {value for series in body["series"] for _, value in series["points"] if value is not None}
        gpu = {
            value
            for series in body["series"]
            if series["metric"] == "gpu_used"
            for _, value in series["points"]
        }
        assert gpu == expected_values and values <= expected_values

    # Viewers do not use a tenant: for them its usage does not exist.
    expected = {200} if ctx.oracle.may("use", ctx.t) else {404}
    return [Probe("get", tenant_url(ctx, "usage/?metric=gpu_used"), expected, check=only_its_own_figures)]


# Rows owned by a tenant -------------------------------------------------------------------------


def owned_collection(name: str, model: Any, action: str = "view") -> None:
    @api("get", f"{V1}/{name}/")
    def listing(ctx: Ctx) -> list[Probe]:
        expected = rows_by_view(ctx, model, action=action)
        return [Probe("get", f"{V1}/{name}/?page_size=500", {200}, check=expect_ids(expected))]


owned_collection("allocations", Allocation)
owned_collection("storage", StorageDirectory)
owned_collection("memberships", Membership)
owned_collection("workloads", Workload, action="use")


def picked(ctx: Ctx, model: Any) -> Any:
    return ctx.pick(list(model.objects.filter(tenant__in=ctx.world.tenants).order_by("pk")))


@api("post", f"{V1}/allocations/")
def allocation_create(ctx: Ctx) -> list[Probe]:
    if not ctx.oracle.may("view", ctx.t) or ctx.spec.nodes[ctx.t].allocated:
        # A tenant they cannot see does not exist for them; one allocation per pool is checked on
        # the input, before anyone's rights (they see the allocation that is already there).
        expected = {400}
    else:  # where the parent has no allocation in the pool, neither can the tenant
        expected = ctx.gate("manage", ctx.t, 201 if ctx.parent_allocated(ctx.t) else 400)
    body = {"tenant": ctx.target.pk, "pool": ctx.world.pool.pk, **ZERO}
    return [Probe("post", f"{V1}/allocations/", expected, body)]


def allocation_probe(method: str, ok: int, body: dict | None) -> Callable[[Ctx], list[Probe]]:
    def case(ctx: Ctx) -> list[Probe]:
        allocation = picked(ctx, Allocation)
        index = ctx.index(allocation.tenant_id)
        action = "view" if method == "get" else "manage"
        allowed = ok
        if method == "delete" and any(ctx.spec.nodes[c].allocated for c in ctx.spec.children(index)):
            allowed = 400  # sub-tenants still hold allocations in the pool
        return [Probe(method, f"{V1}/allocations/{allocation.pk}/", ctx.gate(action, index, allowed), body)]

    return case


api("get", f"{V1}/allocations/{{id}}/")(allocation_probe("get", 200, None))
api("put", f"{V1}/allocations/{{id}}/")(allocation_probe("put", 200, ZERO))
api("patch", f"{V1}/allocations/{{id}}/")(allocation_probe("patch", 200, {"gpu": 0}))
api("delete", f"{V1}/allocations/{{id}}/")(allocation_probe("delete", 204, None))


owned_collection("allocation-grants", AllocationGrant)


def allocation_grant_probe(suffix: str, action: str) -> Callable[[Ctx], list[Probe]]:
    """A time-bound grant is read by whoever reads its allocation, ended or kept by whoever may
    change it (the world's one grant: its first level-1 tenant's)."""

    def case(ctx: Ctx) -> list[Probe]:
        grant = picked(ctx, AllocationGrant)
        method = "get" if action == "view" else "post"
        expected = ctx.gate(action, ctx.index(grant.tenant_id), 200)
        return [Probe(method, f"{V1}/allocation-grants/{grant.pk}/{suffix}", expected)]

    return case


api("get", f"{V1}/allocation-grants/{{id}}/")(allocation_grant_probe("", "view"))
api("post", f"{V1}/allocation-grants/{{id}}/end/")(allocation_grant_probe("end/", "manage"))
api("post", f"{V1}/allocation-grants/{{id}}/cancel/")(allocation_grant_probe("cancel/", "manage"))


@api("post", f"{V1}/storage/")
def storage_create(ctx: Ctx) -> list[Probe]:
    if not ctx.oracle.may("view", ctx.t):
        expected = {400}
    else:  # a second directory at the default path is refused
        expected = ctx.gate("manage", ctx.t, 400 if ctx.t in ctx.spec.storage else 201)
    body = {"tenant": ctx.target.pk, "cluster": ctx.world.hadoop.pk}
    return [Probe("post", f"{V1}/storage/", expected, body)]


def tenant_row_probe(
    model: type, collection: str, write_action: str, method: str, ok: int, body: dict | None
) -> Callable[[Ctx], list[Probe]]:
    """One row of a tenant's (a directory, a membership): reading it needs `view` on its tenant,
    changing it `write_action`."""

    def case(ctx: Ctx) -> list[Probe]:
        row = picked(ctx, model)
        index = ctx.index(row.tenant_id)
        action = "view" if method == "get" else write_action
        return [Probe(method, f"{V1}/{collection}/{row.pk}/", ctx.gate(action, index, ok), body)]

    return case


def storage_probe(method: str, ok: int, body: dict | None) -> Callable[[Ctx], list[Probe]]:
    return tenant_row_probe(StorageDirectory, "storage", "manage", method, ok, body)


api("get", f"{V1}/storage/{{id}}/")(storage_probe("get", 200, None))
api("put", f"{V1}/storage/{{id}}/")(storage_probe("put", 200, {"space_quota": "1Gi"}))
api("patch", f"{V1}/storage/{{id}}/")(storage_probe("patch", 200, {"space_quota": "1Gi"}))
api("delete", f"{V1}/storage/{{id}}/")(storage_probe("delete", 204, None))


owned_collection("tenant-services", TenantService)


@api("post", f"{V1}/tenant-services/")
def tenant_service_create(ctx: Ctx) -> list[Probe]:
    expected = ctx.gate("manage", ctx.t, 201) if ctx.oracle.may("view", ctx.t) else {400}
    body = {"tenant": ctx.target.pk, "cluster": ctx.world.hadoop.pk, "name": f"new{ctx.t}"}
    return [Probe("post", f"{V1}/tenant-services/", expected, body)]


def tenant_service_probe(method: str, ok: int) -> Callable[[Ctx], list[Probe]]:
    return tenant_row_probe(TenantService, "tenant-services", "manage", method, ok, None)


api("get", f"{V1}/tenant-services/{{id}}/")(tenant_service_probe("get", 200))
api("delete", f"{V1}/tenant-services/{{id}}/")(tenant_service_probe("delete", 204))


def volume_tenants(ctx: Ctx) -> dict[int, set[int]]:
    attached: dict[int, set[int]] = {}
    for volume_id, tenant_id in VolumeAttachment.objects.values_list("volume_id", "tenant_id"):
        attached.setdefault(volume_id, set()).add(tenant_id)
    return attached


@api("get", f"{V1}/volumes/")
def volumes_list(ctx: Ctx) -> list[Probe]:
    attached = volume_tenants(ctx)
    visible = {v: {t for t in ts if ctx.may("view", t)} for v, ts in attached.items()}

    def check(response: Any) -> None:
        rows = response.json()["results"]
        assert {row["id"] for row in rows} == {v for v, ts in visible.items() if ts}
        for row in rows:  # only the claims of tenants they see; the others only counted
            assert {a["tenant"] for a in row["attachments"]} == visible[row["id"]]
            assert row["shared_with_others"] == len(attached[row["id"]]) - len(visible[row["id"]])

    return [Probe("get", f"{V1}/volumes/?page_size=500", {200}, check=check)]


@api("post", f"{V1}/volumes/")
def volume_create(ctx: Ctx) -> list[Probe]:
    probes = []
    for share in range(len(ctx.spec.shares)):
        if not ctx.oracle.sees_share(share) or not ctx.oracle.may("view", ctx.t):
            expected = {400}  # a share or a tenant they cannot see does not exist for them
        else:  # a volume is a directory of a share granted to its tenant (or above)
            expected = ctx.gate("manage", ctx.t, 201 if ctx.spec.share_reaches(share, ctx.t) else 400)
        body = {
            "share": ctx.world.shares[share].pk,
            "sub_path": "newvol",
            "name": "newvol",
            "capacity": "1Gi",
            "scope": "private",
            "attachments": [{"tenant": ctx.target.pk}],
        }
        probes.append(Probe("post", f"{V1}/volumes/", expected, body))
    return probes


def volume_probe(method: str, ok: int) -> Callable[[Ctx], list[Probe]]:
    def case(ctx: Ctx) -> list[Probe]:
        attached = volume_tenants(ctx)
        volume_id = ctx.pick(sorted(attached))
        tenants = attached[volume_id]
        if not any(ctx.may("view", t) for t in tenants):
            expected = {404}
        elif method == "get" or all(ctx.may("manage", t) for t in tenants):
            expected = {ok}
        elif method == "put" and not ctx.oracle.sees_share(0):
            expected = {400}  # the share in the body does not exist for them
        else:
            # Refused: 403 when the first tenant it stops at is one they see, else 404.
            expected = {403, 404}
        body = None
        if method == "patch":
            body = {"description": "changed"}
        elif method == "put":
            row = VolumeAttachment.objects.filter(volume_id=volume_id).select_related("volume").first()
            volume = row.volume
            body = {
                "share": volume.share_id,
                "sub_path": volume.sub_path,
                "name": volume.name,
                "capacity": str(volume.capacity_bytes),
                "scope": volume.scope,
                "description": "changed",
                "attachments": [{"tenant": t} for t in sorted(tenants) if ctx.may("view", t)],
            }
        return [Probe(method, f"{V1}/volumes/{volume_id}/", expected, body)]

    return case


api("get", f"{V1}/volumes/{{id}}/")(volume_probe("get", 200))
api("put", f"{V1}/volumes/{{id}}/")(volume_probe("put", 200))
api("patch", f"{V1}/volumes/{{id}}/")(volume_probe("patch", 200))
api("delete", f"{V1}/volumes/{{id}}/")(volume_probe("delete", 204))


# NFS shares: the platform's; tenant admins read those granted in or above what they administer ----


def share_of(ctx: Ctx) -> int:
    return ctx.seed % len(ctx.spec.shares)


def share_url(ctx: Ctx, suffix: str = "") -> str:
    return f"{V1}/nfs-shares/{ctx.world.shares[share_of(ctx)].pk}/{suffix}"


def share_gate(ctx: Ctx, allowed: int) -> set[int]:
    if not ctx.oracle.sees_share(share_of(ctx)):
        return {404}
    return ctx.platform_only(allowed)


@api("get", f"{V1}/nfs-shares/")
def shares_list(ctx: Ctx) -> list[Probe]:
    visible = {ctx.world.shares[k].pk for k in range(len(ctx.spec.shares)) if ctx.oracle.sees_share(k)}

    def check(response: Any) -> None:
        rows = response.json()["results"]
        assert {row["id"] for row in rows} == visible
        for row in rows:  # grants named only where the tenant is one they see
            k = next(k for k, share in enumerate(ctx.world.shares) if share.pk == row["id"])
            seen = {ctx.world.tenants[i].pk for i in ctx.spec.shares[k] if ctx.oracle.may("view", i)}
            assert {grant["tenant"] for grant in row["grants"]} == seen

    return [Probe("get", f"{V1}/nfs-shares/?page_size=500", {200}, check=check)]


@api("post", f"{V1}/nfs-shares/")
def share_create(ctx: Ctx) -> list[Probe]:
    body = {"cluster": ctx.world.kubernetes.pk, "name": "newshare", "server": "nas", "base_path": "/new"}
    return [Probe("post", f"{V1}/nfs-shares/", ctx.platform_only(201), body)]


@api("get", f"{V1}/nfs-shares/{{id}}/")
def share_read(ctx: Ctx) -> list[Probe]:
    return [Probe("get", share_url(ctx), {200} if ctx.oracle.sees_share(share_of(ctx)) else {404})]


@api("put", f"{V1}/nfs-shares/{{id}}/")
def share_put(ctx: Ctx) -> list[Probe]:
    body = {"server": "nas2", "base_path": "/moved", "description": "changed"}
    return [Probe("put", share_url(ctx), share_gate(ctx, 200), body)]


@api("patch", f"{V1}/nfs-shares/{{id}}/")
def share_patch(ctx: Ctx) -> list[Probe]:
    return [Probe("patch", share_url(ctx), share_gate(ctx, 200), {"description": "changed"})]


@api("delete", f"{V1}/nfs-shares/{{id}}/")
def share_delete(ctx: Ctx) -> list[Probe]:
    # Share 0 holds every volume: a share in use is not deleted.
    return [Probe("delete", share_url(ctx), share_gate(ctx, 400 if share_of(ctx) == 0 else 204))]


@api("post", f"{V1}/nfs-shares/{{id}}/grants/")
def share_grant(ctx: Ctx) -> list[Probe]:
    k = share_of(ctx)
    if not ctx.oracle.sees_share(k):
        expected = {404}
    elif not ctx.oracle.may("view", ctx.t):
        expected = {400}  # a tenant they cannot see does not exist for them
    elif not ctx.oracle.platform:
        expected = {403}
    else:
        expected = {400 if ctx.t in ctx.spec.shares[k] else 201}
    return [Probe("post", share_url(ctx, "grants/"), expected, {"tenant": ctx.target.pk})]


@api("delete", f"{V1}/nfs-shares/{{id}}/grants/{{tenant}}/")
def share_revoke(ctx: Ctx) -> list[Probe]:
    k, spec = share_of(ctx), ctx.spec
    if not ctx.oracle.sees_share(k) or ctx.t not in spec.shares[k] or not ctx.oracle.may("view", ctx.t):
        expected = {404}
    elif not ctx.oracle.platform:
        expected = {403}
    else:
        remaining = spec.shares[k] - {ctx.t}
        attached = {i for volume in spec.volumes for i in volume} if k == 0 else set()
        stranded = any(not remaining & set(spec.ancestors(i, include_self=True)) for i in attached)
        expected = {400 if stranded else 204}
    return [Probe("delete", share_url(ctx, f"grants/{ctx.target.pk}/"), expected)]


@api("post", f"{V1}/memberships/")
def membership_create(ctx: Ctx) -> list[Probe]:
    expected = {400} if not ctx.oracle.may("view", ctx.t) else ctx.gate("administer", ctx.t, 201)
    body = {"tenant": ctx.target.pk, "user": "newcomer", "role": "member"}
    return [Probe("post", f"{V1}/memberships/", expected, body)]


def membership_probe(method: str, ok: int, body: dict | None) -> Callable[[Ctx], list[Probe]]:
    return tenant_row_probe(Membership, "memberships", "administer", method, ok, body)


api("get", f"{V1}/memberships/{{id}}/")(membership_probe("get", 200, None))
api("put", f"{V1}/memberships/{{id}}/")(membership_probe("put", 200, {"role": "viewer"}))
api("patch", f"{V1}/memberships/{{id}}/")(membership_probe("patch", 200, {"role": "viewer"}))
api("delete", f"{V1}/memberships/{{id}}/")(membership_probe("delete", 204, None))


@api("get", f"{V1}/workloads/{{id}}/")
def workload_read(ctx: Ctx) -> list[Probe]:
    workload = picked(ctx, Workload)
    # Workloads are read by those who use the tenant; for anyone else, viewers too, they do not exist.
    expected = {200} if ctx.may("use", workload.tenant_id) else {404}
    return [Probe("get", f"{V1}/workloads/{workload.pk}/", expected)]


def audit_paths(event: AuditEvent) -> list[str]:
    """Every path of names an audit row holds: the tenant's when it was recorded, and those its
    details name (a tenant's own path, a move's two, a volume's tenants, a deleted tenant's
    sub-tenants), as docs/security.md lists them."""
    paths = [event.tenant_path]
    for side in (event.before or {}, event.after or {}):
        paths += [side["name_path"]] if "name_path" in side else []
        paths += [side["path"]] if event.action == "TENANT_MOVED" else []
        paths += list(side.get("tenants") or {}) + list(side.get("sub_tenants") or [])
    return paths


def audit_expected(ctx: Ctx) -> dict[int, bool]:
    """Audit row id -> whether the person reads its details, for every row the oracle lets them read."""
    expected = {}
    for event in AuditEvent.objects.all():
        if event.tenant_id is not None and event.tenant_id not in ctx.world.index_of:
            tenant: int | None = None  # the `default` tenant: nobody is granted a role there
            readable = ctx.oracle.platform
        else:
            tenant = ctx.index(event.tenant_id)
            about = (
                ctx.world.index_of.get(int(event.target_id), -1) if event.target_type == "tenant" else None
            )
            readable = ctx.oracle.reads_audit_row(tenant, about)
        if readable:
            expected[event.pk] = ctx.oracle.reads_audit_details(event.action, tenant, audit_paths(event))
    return expected


def audit_current_path(ctx: Ctx, tenant_id: int | None) -> str | None:
    index = ctx.index(tenant_id)
    return ctx.spec.name_path(index) if index is not None else None


def audit_rows_exactly(ctx: Ctx) -> Callable[[Any], None]:
    expected = audit_expected(ctx)

    def check(response: Any) -> None:
        rows = response.json()["results"]
        assert {row["id"] for row in rows} == set(expected)
        for row in rows:
            assert row["details_withheld"] is not expected[row["id"]], row
            if row["details_withheld"]:
                assert (row["before"], row["after"], row["changes"], row["target_repr"]) == (
                    None,
                    None,
                    None,
                    "",
                )
            if not ctx.oracle.platform:  # the tenant's path now, never one it had before a move
                assert row["tenant_path"] == audit_current_path(ctx, row["tenant"]), row

    return check


@api("get", f"{V1}/audit/")
def audit_list(ctx: Ctx) -> list[Probe]:
    return [Probe("get", f"{V1}/audit/?page_size=500", {200}, check=audit_rows_exactly(ctx))]


@api("get", f"{V1}/audit/{{id}}/")
def audit_read(ctx: Ctx) -> list[Probe]:
    event = picked(ctx, AuditEvent)
    details = audit_expected(ctx).get(event.pk)

    def check(response: Any) -> None:
        assert response.json()["details_withheld"] is not details

    return [Probe("get", f"{V1}/audit/{event.pk}/", {404} if details is None else {200}, check=check)]


# Platform rows: clusters, pools, plans, users, connections --------------------------------------


def shared_collection(name: str, model: Any) -> None:
    @api("get", f"{V1}/{name}/")
    def listing(ctx: Ctx) -> list[Probe]:
        expected = set(model.objects.values_list("pk", flat=True))
        return [Probe("get", f"{V1}/{name}/?page_size=500", {200}, check=expect_ids(expected))]


def platform_object(name: str, pick: Callable[[World], Any], put: dict, delete_ok: int = 204) -> None:
    def url(ctx: Ctx) -> str:
        return f"{V1}/{name}/{pick(ctx.world).pk}/"

    api("get", f"{V1}/{name}/{{id}}/")(lambda ctx: [Probe("get", url(ctx), {200})])
    api("put", f"{V1}/{name}/{{id}}/")(lambda ctx: [Probe("put", url(ctx), ctx.platform_only(200), put)])
    api("patch", f"{V1}/{name}/{{id}}/")(
        lambda ctx: [Probe("patch", url(ctx), ctx.platform_only(200), {"description": "changed"})]
    )
    api("delete", f"{V1}/{name}/{{id}}/")(
        lambda ctx: [Probe("delete", url(ctx), ctx.platform_only(delete_ok))]
    )


def platform_create(name: str, body: Callable[[World], dict]) -> None:
    api("post", f"{V1}/{name}/")(
        lambda ctx: [Probe("post", f"{V1}/{name}/", ctx.platform_only(201), body(ctx.world))]
    )


shared_collection("clusters", Cluster)
shared_collection("pools", ResourcePool)
shared_collection("plans", QuotaPlan)
platform_object("clusters", lambda w: w.spare_hadoop, {"description": "changed"})
platform_object("pools", lambda w: w.spare_pool, {"description": "changed"})
platform_object("plans", lambda w: w.plan, {"description": "changed"})
platform_create("clusters", lambda w: {"name": "newc", "kind": "yarn"})
platform_create("pools", lambda w: {"cluster": w.spare_kubernetes.pk, "name": "newpool"})
platform_create("plans", lambda w: {"name": "newplan"})
platform_create("users", lambda w: {"username": "newu", "password": NEW_PASSWORD})


@api("get", f"{V1}/users/")
def users_list(ctx: Ctx) -> list[Probe]:
    if ctx.oracle.platform:
        expected = set(User.objects.values_list("username", flat=True))
    else:
        expected = {person_name(i) for i in ctx.oracle.people_visible(ctx.observer)}
    check = expect_ids(expected, key=lambda row: row["username"])
    return [Probe("get", f"{V1}/users/?page_size=500", {200}, check=check)]


def user_probe(method: str, body: dict | None) -> Callable[[Ctx], list[Probe]]:
    def case(ctx: Ctx) -> list[Probe]:
        index = ctx.seed % len(ctx.world.people)
        person = ctx.world.people[index]
        if index not in ctx.oracle.people_visible(ctx.observer):
            expected = {404}
        elif method == "get":
            expected = {200}
        else:
            expected = ctx.platform_only(200)
        payload = {"username": person.username, **body} if method == "put" else body
        return [Probe(method, f"{V1}/users/{person.pk}/", expected, payload)]

    return case


@api("post", f"{V1}/users/{{id}}/revoke-tokens/")
def user_revoke_tokens(ctx: Ctx) -> list[Probe]:
    index = ctx.seed % len(ctx.world.people)
    expected = ctx.platform_only(200) if index in ctx.oracle.people_visible(ctx.observer) else {404}
    return [Probe("post", f"{V1}/users/{ctx.world.people[index].pk}/revoke-tokens/", expected)]


@api("post", f"{V1}/auth/sign-out-everywhere/")
def sign_out_everywhere(ctx: Ctx) -> list[Probe]:
    # Anyone signed in, for themself only (their own token goes; rolled back after the probe).
    return [Probe("post", f"{V1}/auth/sign-out-everywhere/", {200})]


api("get", f"{V1}/users/{{id}}/")(user_probe("get", None))
api("put", f"{V1}/users/{{id}}/")(user_probe("put", {"first_name": "Changed"}))
api("patch", f"{V1}/users/{{id}}/")(user_probe("patch", {"first_name": "Changed"}))


def connections(name: str, cluster: Callable[[World], Any], create: Callable[[World], dict]) -> None:
    base = f"{V1}/{name}/"

    def one(ctx: Ctx) -> str:
        return f"{base}{cluster(ctx.world).pk}/"

    def listing(ctx: Ctx) -> list[Probe]:
        return [
            Probe(
                "get",
                base,
                ctx.platform_only(200),
                check=expect_ids({cluster(ctx.world).pk}, key=lambda row: row["cluster"]),
            )
        ]

    api("get", base)(listing)
    api("post", base)(lambda ctx: [Probe("post", base, ctx.platform_only(201), create(ctx.world))])
    api("get", f"{base}{{cluster}}/")(lambda ctx: [Probe("get", one(ctx), ctx.platform_only(200))])
    api("put", f"{base}{{cluster}}/")(
        lambda ctx: [
            Probe(
                "put",
                one(ctx),
                ctx.platform_only(200),
                {**create(ctx.world), "cluster": cluster(ctx.world).pk},
            )
        ]
    )
    api("patch", f"{base}{{cluster}}/")(
        lambda ctx: (
            [Probe("patch", one(ctx), ctx.platform_only(200), {"network_policy": True})]
            if name == "kubernetes-connections"
            else [Probe("patch", one(ctx), ctx.platform_only(200), {"directory_permission": "770"})]
        )
    )
    api("delete", f"{base}{{cluster}}/")(lambda ctx: [Probe("delete", one(ctx), ctx.platform_only(204))])
    # Asks the cluster (nobody listens on port 9) and answers with the error: nothing is saved.
    api("post", f"{base}{{cluster}}/test/")(
        lambda ctx: [Probe("post", f"{one(ctx)}test/", ctx.platform_only(200), changes=False)]
    )


HADOOP = {"rm_urls": "http://127.0.0.1:9", "webhdfs_urls": "http://127.0.0.1:9", "user": "canopy"}
connections(
    "kubernetes-connections",
    lambda w: w.kubernetes,
    lambda w: {"cluster": w.spare_kubernetes.pk, "mode": "export"},
)
connections("hadoop-connections", lambda w: w.hadoop, lambda w: {"cluster": w.spare_hadoop.pk, **HADOOP})


# Provisioning reads and exports ------------------------------------------------------------------


@api("get", f"{V1}/provisioning/statuses/")
def statuses(ctx: Ctx) -> list[Probe]:
    expected = {
        (tenant_id, cluster_id)
        for tenant_id, cluster_id in ClusterSyncStatus.objects.values_list("sync__tenant_id", "cluster_id")
        if ctx.may("view", tenant_id)
    }
    check = expect_ids(expected, key=lambda row: (row["tenant"], row["cluster"]))
    return [Probe("get", f"{V1}/provisioning/statuses/?page_size=500", {200}, check=check)]


@api("get", f"{V1}/provisioning/manifests/")
def manifests(ctx: Ctx) -> list[Probe]:
    def on_kubernetes(indices: set[int]) -> set[str]:
        return {namespace_of(ctx, i) for i in indices if ctx.spec.nodes[i].allocated}

    mine = on_kubernetes(ctx.oracle.tenants("administer"))
    one = on_kubernetes({ctx.t})

    def exactly(expected: set[str]) -> Callable[[Any], None]:
        return lambda response: (
            None if namespaces_in_zip(response) == expected else pytest.fail(f"{namespaces_in_zip(response)}")
        )

    return [
        Probe("get", f"{V1}/provisioning/manifests/", {200}, check=exactly(mine)),
        Probe(
            "get",
            f"{V1}/provisioning/manifests/?tenant={ctx.target.pk}",
            ctx.gate("administer", ctx.t, 200),
            check=exactly(one),
        ),
    ]


@api("get", f"{V1}/provisioning/hadoop-export/")
def hadoop_export(ctx: Ctx) -> list[Probe]:
    url = f"{V1}/provisioning/hadoop-export/?cluster={ctx.world.hadoop.pk}&file=capacity-scheduler.xml"
    return [Probe("get", url, ctx.platform_only(200))]


# Showback, prices and idle-quota hints (issue 19) ------------------------------------------------


def showback_tops(ctx: Ctx) -> set[int]:
    """The tenants a showback without a tenant lists (README, *Showback*): platform admins the
    level-1 ones; anyone else each tenant they hold a role on (their own or a group's) and use, but
    not one below a tenant they hold an admin role on (it is that tenant's sub-tenant)."""
    if ctx.oracle.platform:
        return {i for i, node in enumerate(ctx.spec.nodes) if node.parent is None}
    held_admin = {i for i, roles in ctx.oracle.roles.items() if "admin" in roles}
    return {
        i
        for i in ctx.oracle.roles
        if ctx.oracle.may("use", i) and not held_admin & set(ctx.spec.ancestors(i, include_self=False))
    }


def showback_lines(ctx: Ctx, index: int) -> set[int]:
    """The rows under a tenant's total: for those who administer it, itself and each sub-tenant."""
    return {index, *ctx.spec.children(index)} if ctx.oracle.may("administer", index) else set()


def world_pks(ctx: Ctx, indices: set[int]) -> set[int]:
    return {ctx.world.tenants[i].pk for i in indices}


@api("get", f"{V1}/showback/")
def showback_read(ctx: Ctx) -> list[Probe]:
    """A tenant's showback is read by those who use it (members and admins of it or above); for
    anyone else, viewers included, it does not exist."""

    def rows_of(expected_tenant: int | None, expected_rows: set[int]) -> Callable[[Any], None]:
        def check(response: Any) -> None:
            body = response.json()
            assert body["tenant"] == expected_tenant
            listed = {row["tenant"] for row in body["rows"]}
            mine = set(ctx.world.index_of)
            assert listed & mine == expected_rows
            if not ctx.oracle.platform:  # nobody's tenants but the world's (not the `default` one)
                assert listed <= mine

        return check

    lines = world_pks(ctx, showback_lines(ctx, ctx.t))
    return [
        Probe(
            "get",
            f"{V1}/showback/?tenant={ctx.target.pk}",
            {200} if ctx.oracle.may("use", ctx.t) else {404},
            check=rows_of(ctx.target.pk, lines),
        ),
        Probe("get", f"{V1}/showback/", {200}, check=rows_of(None, world_pks(ctx, showback_tops(ctx)))),
    ]


def prices_body(ctx: Ctx) -> dict[str, Any]:
    return {"currency": "EUR", "prices": [{"pool": ctx.world.pool.pk, "resource": "gpu", "price": "1.5"}]}


@api("get", f"{V1}/showback/prices/")
def showback_prices_read(ctx: Ctx) -> list[Probe]:
    # The platform's prices, like its pools: everyone signed in reads them.
    return [Probe("get", f"{V1}/showback/prices/", {200})]


@api("put", f"{V1}/showback/prices/")
def showback_prices_put(ctx: Ctx) -> list[Probe]:
    return [Probe("put", f"{V1}/showback/prices/", ctx.platform_only(200), prices_body(ctx))]


def idle_tenants(ctx: Ctx) -> set[int]:
    """Idle-quota hints list the tenants the person manages that are guaranteed GPUs in a Kubernetes
    pool: in the world only the first level-1 tenant is (its time-bound GPU), managed by platform
    admins alone (nobody is above it)."""
    return {i for i in ctx.oracle.tenants("manage") if i == 0}


@api("get", f"{V1}/idle-quota/")
def idle_quota_read(ctx: Ctx) -> list[Probe]:
    expected = world_pks(ctx, idle_tenants(ctx))

    def check(response: Any) -> None:
        body = response.json()
        listed = {hint["guarantee"]["tenant"] for hint in body["idle"]}
        listed |= {guarantee["tenant"] for guarantee in body["without_figures"]}
        assert listed == expected

    # For anyone who manages nothing the list is empty: never a refusal.
    return [Probe("get", f"{V1}/idle-quota/?window=7&threshold=25", {200}, check=check)]


# Quota requests and the inbox (issue 19; docs/security.md, *Quota requests*) ----------------------


def observer_user(ctx: Ctx) -> Any:
    return ctx.world.people[ctx.observer] if ctx.observer is not None else None


def ask_for_target(ctx: Ctx) -> QuotaRequest:
    """A request for the target tenant, asked through the service by someone who may ask (member
    or admin of it, or an admin above): the observer when they may and the seed says so, else a
    person of the world who may, else the platform admin. What it asks (a GPU total other than what
    the tenant has) varies with the seed, and so does who would give it: the tenant's parent, an
    ancestor with room, or the platform."""
    askers = [p for p in range(len(ctx.spec.people)) if Oracle(ctx.spec, p).may("use", ctx.t)]
    if ctx.observer in askers and ctx.seed % 2 == 0:
        requester = ctx.world.people[ctx.observer]
    elif askers:
        requester = ctx.world.people[ctx.pick(askers)]
    else:
        requester = ctx.world.admin
    held = Allocation.objects.filter(tenant=ctx.target, pool=ctx.world.pool).values_list("gpu", flat=True)
    gpu = ctx.seed % 3
    if gpu in held:
        gpu += 1
    return quota_services.quota_request_create(
        acting_user=requester, tenant=ctx.target, pool=ctx.world.pool, asked={"gpu": gpu}, reason="to train"
    )


def is_requester(ctx: Ctx, quota_request: QuotaRequest) -> bool:
    user = observer_user(ctx)
    return user is not None and quota_request.requester_id == user.pk


def decides(ctx: Ctx, quota_request: QuotaRequest) -> bool:
    """Platform admins decide every request; tenant admins those of the tenant that would give it,
    theirs or through a group, and those above it (a request the platform gives: platform only)."""
    if ctx.oracle.platform:
        return True
    return quota_request.deciding_tenant_id is not None and ctx.may(
        "administer", quota_request.deciding_tenant_id
    )


def reads_request(ctx: Ctx, quota_request: QuotaRequest) -> bool:
    """The requester and the deciders; nobody else, the tenant's own admins and viewers included."""
    return ctx.oracle.signed_in and (is_requester(ctx, quota_request) or decides(ctx, quota_request))


def request_gate(ctx: Ctx, quota_request: QuotaRequest, allowed_to_act: bool, ok: int) -> set[int]:
    """A request one may not read is a 404; one read but not theirs to act on a 403."""
    if not reads_request(ctx, quota_request):
        return {404}
    return {ok} if allowed_to_act else {403}


@api("get", f"{V1}/quota-requests/")
def quota_requests_list(ctx: Ctx) -> list[Probe]:
    asked = ask_for_target(ctx)
    readable = {asked.pk} if reads_request(ctx, asked) else set()
    return [Probe("get", f"{V1}/quota-requests/?page_size=500", {200}, check=expect_ids(readable))]


@api("post", f"{V1}/quota-requests/")
def quota_request_ask(ctx: Ctx) -> list[Probe]:
    """Members and admins of the tenant and admins above ask; viewers are refused (403); for anyone
    else the tenant does not exist (the field's 400). Three GPUs: more than any tenant has."""
    if not ctx.oracle.may("view", ctx.t):
        expected = {400}
    elif not ctx.oracle.may("use", ctx.t):
        expected = {403}
    else:
        expected = {201}
    body = {"tenant": ctx.target.pk, "pool": ctx.world.pool.pk, "gpu": "3", "reason": "to train"}
    return [Probe("post", f"{V1}/quota-requests/", expected, body)]


@api("get", f"{V1}/quota-requests/{{id}}/")
def quota_request_read(ctx: Ctx) -> list[Probe]:
    asked = ask_for_target(ctx)
    return [Probe("get", f"{V1}/quota-requests/{asked.pk}/", request_gate(ctx, asked, True, 200))]


@api("post", f"{V1}/quota-requests/{{id}}/decide/")
def quota_request_decide_api(ctx: Ctx) -> list[Probe]:
    # Approved or, where the allocation rules refuse it now, refused with their reason: decided either way.
    asked = ask_for_target(ctx)
    url = f"{V1}/quota-requests/{asked.pk}/decide/"
    return [Probe("post", url, request_gate(ctx, asked, decides(ctx, asked), 200), {"decision": "approve"})]


@api("post", f"{V1}/quota-requests/{{id}}/withdraw/")
def quota_request_withdraw_api(ctx: Ctx) -> list[Probe]:
    asked = ask_for_target(ctx)
    url = f"{V1}/quota-requests/{asked.pk}/withdraw/"
    return [Probe("post", url, request_gate(ctx, asked, is_requester(ctx, asked), 200))]


def inbox_world(ctx: Ctx) -> list[Notification]:
    """Every inbox of the world after a request for the target (its deciders are told) and one
    message each to the observer, the platform admin and a person picked by the seed (its subject
    says whose: "nq<user id>q")."""
    ask_for_target(ctx)
    people = {ctx.world.admin, ctx.world.people[ctx.seed % len(ctx.world.people)]}
    if ctx.observer is not None:
        people.add(ctx.world.people[ctx.observer])
    for person in people:
        quota_services.notify(recipients=[person], subject=f"nq{person.pk}q", body="for you")
    return list(Notification.objects.order_by("pk"))


def own_notifications(ctx: Ctx, rows: list[Notification]) -> set[int]:
    user = observer_user(ctx)
    return {row.pk for row in rows if user is not None and row.recipient_id == user.pk}


@api("get", f"{V1}/notifications/")
def notifications_list(ctx: Ctx) -> list[Probe]:
    rows = inbox_world(ctx)
    return [
        Probe(
            "get", f"{V1}/notifications/?page_size=500", {200}, check=expect_ids(own_notifications(ctx, rows))
        )
    ]


@api("get", f"{V1}/notifications/{{id}}/")
def notification_read(ctx: Ctx) -> list[Probe]:
    rows = inbox_world(ctx)
    row = ctx.pick(rows)
    expected = {200} if row.pk in own_notifications(ctx, rows) else {404}
    return [Probe("get", f"{V1}/notifications/{row.pk}/", expected)]


@api("post", f"{V1}/notifications/{{id}}/read/")
def notification_mark_read(ctx: Ctx) -> list[Probe]:
    # Another's notification is a 404 and stays unread (every one is unread so far).
    rows = inbox_world(ctx)
    row = ctx.pick(rows)
    expected = {200} if row.pk in own_notifications(ctx, rows) else {404}
    return [Probe("post", f"{V1}/notifications/{row.pk}/read/", expected)]


@api("post", f"{V1}/notifications/read-all/")
def notifications_mark_all_read(ctx: Ctx) -> list[Probe]:
    rows = inbox_world(ctx)
    own = own_notifications(ctx, rows)
    return [Probe("post", f"{V1}/notifications/read-all/", {204}, changes=bool(own))]


# ---------------------------------------------------------------------------------------------
# The console: one case per URL name of the console's and provisioning's patterns

CONSOLE: dict[str, Callable[[Ctx], list[Probe]]] = {}


def console(name: str) -> Callable:
    def register(case: Callable[[Ctx], list[Probe]]) -> Callable[[Ctx], list[Probe]]:
        CONSOLE[name] = case
        return case

    return register


def console_gate(ctx: Ctx, action: str, index: int, allowed: int) -> set[int]:
    """Pages reached through `tenant_get(action=...)`: anything short of the action is a 404."""
    return {allowed} if ctx.oracle.may(action, index) else {404}


def page(ctx: Ctx, suffix: str = "") -> str:
    return f"/tenants/{ctx.target.pk}/{suffix}"


@console("console:home")
def home(ctx: Ctx) -> list[Probe]:
    where = "/tenants/" if ctx.oracle.administers_anything() else "/me/"

    def check(response: Any) -> None:
        assert response["Location"] == where

    return [Probe("get", "/", {302}, check=check)]


def names_exactly(expected: set[int]) -> Callable[[Any], None]:
    def check(response: Any) -> None:
        named = {int(i) for i in TENANT_NAME.findall(response.content.decode())}
        assert expected <= named, f"missing {expected - named}"

    return check


@console("console:tenants")
def tenants_page(ctx: Ctx) -> list[Probe]:
    tops = {
        i
        for i in ctx.oracle.tenants("view")
        if ctx.spec.nodes[i].parent is None or not ctx.oracle.may("view", ctx.spec.nodes[i].parent)
    }
    return [
        Probe("get", "/tenants/", {200}, check=names_exactly(tops)),
        Probe(
            "get",
            "/tenants/?fragment=tree&q=tn",
            {200},
            htmx=True,
            check=names_exactly(ctx.oracle.tenants("view")),
        ),
    ]


@console("console:tenant")
def tenant_page(ctx: Ctx) -> list[Probe]:
    expected = console_gate(ctx, "view", ctx.t, 200)
    probes = [
        Probe("get", page(ctx), expected),
        Probe("get", page(ctx, "?fragment=tree"), expected, htmx=True),
        Probe("get", page(ctx, "?tab=clusters&preview=1"), expected, htmx=True),
    ]
    # Every tab of the page, as the htmx fragment the page swaps in (a new tab cannot be forgotten).
    probes += [Probe("get", page(ctx, f"?tab={tab}"), expected, htmx=True) for tab, _ in views.tenant_tabs()]
    return probes


@console("console:tenant_tree_children")
def tree_children(ctx: Ctx) -> list[Probe]:
    children = {c for c in ctx.spec.children(ctx.t) if ctx.oracle.may("view", c)}
    return [
        Probe(
            "get",
            page(ctx, "children/"),
            console_gate(ctx, "view", ctx.t, 200),
            check=names_exactly(children),
        )
    ]


@console("console:tenant_create")
def tenant_create_page(ctx: Ctx) -> list[Probe]:
    node = ctx.spec.nodes[ctx.t]
    if not ctx.oracle.may("administer", ctx.t):
        created = {404}
    elif node.leaf or ctx.spec.depth(ctx.t) >= MAX_DEPTH:
        created = {200}  # the form again, with the refusal on its field
    else:
        created = {302}
    body = {"parent": ctx.target.pk, "name": "newkid", "is_leaf": "false"}
    redraw = {**body, "validate": "1", "redraw": "1"}  # another parent chosen: its parts of the form
    return [
        Probe("get", "/tenants/new/", {200} if ctx.oracle.creates_tenants() else {403}),
        Probe("get", f"/tenants/new/?parent={ctx.target.pk}", console_gate(ctx, "administer", ctx.t, 200)),
        Probe("post", "/tenants/new/", created, body, changes=created == {302}),
        Probe(
            "post",
            "/tenants/new/",
            console_gate(ctx, "administer", ctx.t, 200),
            redraw,
            changes=False,
            htmx=True,
        ),
    ]


@console("console:tenant_move")
def move_page(ctx: Ctx) -> list[Probe]:
    """As the API's move, but the picker offers only valid parents: anything else is the form again
    with an error on it, as is a refusal of the service; asking first (no confirm) never moves."""
    t, d, spec = ctx.t, ctx.d, ctx.spec
    offered = (
        ctx.oracle.may("administer", d)
        and not spec.nodes[d].leaf
        and d not in ctx.subtree(t)
        and d != spec.nodes[t].parent
        and spec.depth(d) + 1 + ctx.height(t) <= MAX_DEPTH
    )
    fits = not (spec.nodes[t].allocated and not spec.nodes[d].allocated)
    moved = console_gate(ctx, "manage", t, 302 if offered and fits else 200)
    body = {"parent": ctx.world.tenants[d].pk}
    return [
        Probe("get", page(ctx, "move/"), console_gate(ctx, "manage", t, 200)),
        Probe("post", page(ctx, "move/"), console_gate(ctx, "manage", t, 200), body, changes=False),
        Probe("post", page(ctx, "move/"), moved, {**body, "confirm": "yes"}, changes=moved == {302}),
    ]


@console("console:tenant_allocations")
def allocations_page(ctx: Ctx) -> list[Probe]:
    expected = console_gate(ctx, "manage", ctx.t, 200)
    return [
        Probe("get", page(ctx, "allocations/"), expected),
        Probe("post", page(ctx, "allocations/"), expected, {"validate": "1"}, changes=False, htmx=True),
    ]


@console("console:tenant_plan")
def plan_page(ctx: Ctx) -> list[Probe]:
    return [
        Probe("get", page(ctx, "plan/"), console_gate(ctx, "manage", ctx.t, 200)),
        Probe(
            "post", page(ctx, "plan/"), console_gate(ctx, "manage", ctx.t, 302), {"plan": ctx.world.plan.pk}
        ),
    ]


@console("console:tenant_state")
def state_page(ctx: Ctx) -> list[Probe]:
    return [Probe("post", page(ctx, "state/"), ctx.gate("manage", ctx.t, 302), {"state": "suspended"})]


@console("provisioning:tenant_push")
def push_page(ctx: Ctx) -> list[Probe]:
    return [Probe("post", page(ctx, "push/"), ctx.gate("administer", ctx.t, 302))]


@console("usage:tenant_usage_csv")
def usage_csv(ctx: Ctx) -> list[Probe]:
    expected_values = {f"{usage_marker(ctx.t):g}"} if ctx.t in ctx.spec.usage else set()

    def only_its_own_figures(response: Any) -> None:
        rows = [line.split(",") for line in response.content.decode().splitlines()[1:]]
        assert {row[4] for row in rows if row[3] == "gpu_used"} == expected_values

    return [
        Probe("get", page(ctx, "usage.csv"), console_gate(ctx, "use", ctx.t, 200), check=only_its_own_figures)
    ]


@console("console:tenant_delete")
def delete_page(ctx: Ctx) -> list[Probe]:
    return [
        Probe("get", page(ctx, "delete/"), console_gate(ctx, "manage", ctx.t, 200)),
        Probe("post", page(ctx, "delete/"), console_gate(ctx, "manage", ctx.t, 302), {"confirm": "yes"}),
    ]


@console("console:membership_add")
def membership_add(ctx: Ctx) -> list[Probe]:
    body = {"member": "user:newcomer", "role": "member"}
    return [Probe("post", page(ctx, "members/"), ctx.gate("administer", ctx.t, 302), body)]


@console("console:member_choices")
def member_choices(ctx: Ctx) -> list[Probe]:
    """The Members tab's picker names exactly the people (active) and groups the person may see
    that hold no role on the tenant yet: nobody else, whatever is searched for."""
    holders = {grant.subject for grant in ctx.spec.grants if grant.tenant == ctx.t}
    users = {
        i
        for i in ctx.oracle.people_visible(ctx.observer)
        if ctx.spec.people[i].active and ("user", i) not in holders
    }
    groups = {j for j in ctx.oracle.groups_visible(ctx.observer) if ("group", j) not in holders}
    searched = person_name(ctx.seed % len(ctx.spec.people))

    def offers(expected_users: set[int], expected_groups: set[int]) -> Callable[[Any], None]:
        def check(response: Any) -> None:
            rows = response.json()["results"]
            named = {(row["kind"], row["name"]) for row in rows}
            assert {int(i) for kind, name in named if kind == "user" for i in PERSON_NAME.findall(name)} == (
                expected_users
            )
            assert {int(i) for kind, name in named if kind == "group" for i in GROUP_NAME.findall(name)} == (
                expected_groups
            )
            if not ctx.oracle.platform:  # nobody else either (the platform admin, the newcomer)
                assert {kind for kind, name in named if not re.fullmatch(r"(pp|gg)\d+x", name)} == set()

        return check

    url = page(ctx, "members/choices/")
    expected = ctx.gate("administer", ctx.t, 200)
    return [
        Probe("get", url, expected, check=offers(users, groups)),
        Probe(
            "get",
            f"{url}?q={searched}",
            expected,
            check=offers({i for i in users if person_name(i) == searched}, set()),
        ),
    ]


def membership_page(suffix: str, body: dict) -> Callable[[Ctx], list[Probe]]:
    def case(ctx: Ctx) -> list[Probe]:
        membership = picked(ctx, Membership)
        expected = ctx.gate("administer", ctx.index(membership.tenant_id), 302)
        return [Probe("post", f"/memberships/{membership.pk}/{suffix}/", expected, body)]

    return case


console("console:membership_change")(membership_page("role", {"role": "viewer"}))
console("console:membership_remove")(membership_page("remove", {}))


def allocation_grant_page(suffix: str) -> Callable[[Ctx], list[Probe]]:
    def case(ctx: Ctx) -> list[Probe]:
        grant = picked(ctx, AllocationGrant)
        expected = ctx.gate("manage", ctx.index(grant.tenant_id), 302)
        return [Probe("post", f"/allocation-grants/{grant.pk}/{suffix}/", expected, {})]

    return case


console("console:allocation_grant_end")(allocation_grant_page("end"))
console("console:allocation_grant_cancel")(allocation_grant_page("cancel"))


@console("console:tenant_service_add")
def tenant_service_add(ctx: Ctx) -> list[Probe]:
    body = {"cluster": ctx.world.hadoop.pk, "kind": "hive_database", "name": f"new{ctx.t}"}
    return [Probe("post", page(ctx, "services/"), ctx.gate("manage", ctx.t, 302), body)]


@console("console:tenant_service_remove")
def tenant_service_remove(ctx: Ctx) -> list[Probe]:
    service = picked(ctx, TenantService)
    expected = ctx.gate("manage", ctx.index(service.tenant_id), 302)
    return [Probe("post", f"/tenant-services/{service.pk}/remove/", expected, {})]


@console("console:pools")
def pools_page(ctx: Ctx) -> list[Probe]:
    return [Probe("get", "/pools/", {200})]


@console("provisioning:cluster_test")
def cluster_test(ctx: Ctx) -> list[Probe]:
    # The answer in place (htmx) or on the Pools page; the world's connections call nothing.
    url = f"/clusters/{ctx.world.kubernetes.pk}/test/"
    return [
        Probe("post", url, ctx.platform_only(200), changes=False),
        Probe("post", url, ctx.platform_only(200), changes=False, htmx=True),
    ]


# Clusters, pools and connections in the console (issue 18, point 4): platform admins only, a 403
# for everyone else (clusters and pools are no secret: every signed-in user sees them listed).


@console("console:cluster_create")
def cluster_create_page(ctx: Ctx) -> list[Probe]:
    body = {"name": "newc", "kind": "yarn"}
    return [
        Probe("get", "/clusters/new/", ctx.platform_only(200)),
        Probe(
            "post",
            "/clusters/new/",
            ctx.platform_only(200),
            {**body, "validate": "1"},
            changes=False,
            htmx=True,
        ),
        Probe("post", "/clusters/new/", ctx.platform_only(302), body),
    ]


@console("console:cluster_edit")
def cluster_edit_page(ctx: Ctx) -> list[Probe]:
    url = f"/clusters/{ctx.world.spare_hadoop.pk}/"
    return [
        Probe("get", url, ctx.platform_only(200)),
        Probe("post", url, ctx.platform_only(302), {"description": "changed"}),
    ]


@console("console:cluster_delete")
def cluster_delete_page(ctx: Ctx) -> list[Probe]:
    empty = f"/clusters/{ctx.world.spare_hadoop.pk}/delete/"
    held = f"/clusters/{ctx.world.kubernetes.pk}/delete/"
    # Refused (said on the Pools page) while tenants hold allocations in its pool or shares are on it.
    in_use = any(node.allocated for node in ctx.spec.nodes) or bool(ctx.spec.shares)
    return [
        Probe("get", held, ctx.platform_only(200), htmx=True),
        Probe("get", held, ctx.platform_only(200)),
        Probe("post", held, ctx.platform_only(302), changes=not in_use),
        Probe("post", empty, ctx.platform_only(302)),
    ]


@console("console:pool_create")
def pool_create_page(ctx: Ctx) -> list[Probe]:
    url = f"/clusters/{ctx.world.spare_kubernetes.pk}/pools/new/"
    body = {"name": "newpool", "gpu_capacity": "1", "cpu_capacity": "500m", "memory_capacity": "1Gi"}
    return [Probe("get", url, ctx.platform_only(200)), Probe("post", url, ctx.platform_only(302), body)]


@console("console:pool_edit")
def pool_edit_page(ctx: Ctx) -> list[Probe]:
    url = f"/pools/{ctx.world.spare_pool.pk}/"
    body = {"gpu_capacity": "2", "cpu_capacity": "4", "memory_capacity": "8Gi", "description": "changed"}
    return [Probe("get", url, ctx.platform_only(200)), Probe("post", url, ctx.platform_only(302), body)]


@console("console:pool_delete")
def pool_delete_page(ctx: Ctx) -> list[Probe]:
    empty, held = f"/pools/{ctx.world.spare_pool.pk}/delete/", f"/pools/{ctx.world.pool.pk}/delete/"
    return [
        Probe("get", held, ctx.platform_only(200), htmx=True),
        Probe("post", held, ctx.platform_only(302), changes=False),  # the default pool stays
        Probe("post", empty, ctx.platform_only(302)),
    ]


@console("provisioning:cluster_connection")
def cluster_connection_page(ctx: Ctx) -> list[Probe]:
    url = f"/clusters/{ctx.world.spare_kubernetes.pk}/connection/"
    return [
        Probe("get", url, ctx.platform_only(200)),
        Probe("get", f"/clusters/{ctx.world.hadoop.pk}/connection/", ctx.platform_only(200)),
        Probe("post", url, ctx.platform_only(302), {"mode": "export", "quota_engine": "resourcequota"}),
    ]


@console("provisioning:cluster_connection_delete")
def cluster_connection_delete_page(ctx: Ctx) -> list[Probe]:
    url = f"/clusters/{ctx.world.kubernetes.pk}/connection/delete/"
    return [Probe("get", url, ctx.platform_only(200), htmx=True), Probe("post", url, ctx.platform_only(302))]


@console("provisioning:hadoop_file")
def hadoop_file_page(ctx: Ctx) -> list[Probe]:
    url = f"/clusters/{ctx.world.hadoop.pk}/hadoop-files/capacity-scheduler.xml"
    return [Probe("get", url, ctx.platform_only(200))]


@console("provisioning:cluster_quota_engine")
def cluster_quota_engine(ctx: Ctx) -> list[Probe]:
    # Platform admins switch a connected cluster's quota engine; choosing the one it has already
    # changes nothing (`connection_quota_engine_set`).
    url = f"/clusters/{ctx.world.kubernetes.pk}/quota-engine/"
    field = f"engine-{ctx.world.kubernetes.pk}-quota_engine"
    engines = KubernetesConnection.QuotaEngine
    current = KubernetesConnection.objects.get(cluster=ctx.world.kubernetes).quota_engine
    other = engines.KUEUE if current == engines.RESOURCE_QUOTA else engines.RESOURCE_QUOTA
    return [
        Probe("post", url, ctx.platform_only(302), {field: other}),
        Probe("post", url, ctx.platform_only(302), {field: current}, changes=False),
    ]


@console("console:plans")
def plans_page(ctx: Ctx) -> list[Probe]:
    return [Probe("get", "/plans/", {200})]


@console("console:plan_create")
def plan_create_page(ctx: Ctx) -> list[Probe]:
    return [
        Probe("get", "/plans/new/", ctx.platform_only(200)),
        Probe("post", "/plans/new/", ctx.platform_only(302), {"name": "newplan"}),
    ]


@console("console:plan_edit")
def plan_edit_page(ctx: Ctx) -> list[Probe]:
    url = f"/plans/{ctx.world.plan.pk}/"
    return [
        Probe("get", url, ctx.platform_only(200)),
        Probe("post", url, ctx.platform_only(302), {"name": "empty-plan", "description": "changed"}),
    ]


@console("console:users")
def users_page(ctx: Ctx) -> list[Probe]:
    visible = ctx.oracle.people_visible(ctx.observer)

    def check(response: Any) -> None:
        named = {int(i) for i in PERSON_NAME.findall(response.content.decode())}
        assert named == visible

    return [Probe("get", "/users/", {200}, check=check)]


@console("console:user_create")
def user_create_page(ctx: Ctx) -> list[Probe]:
    # Platform admins only: nobody else is shown a form they may not submit.
    return [
        Probe("get", "/users/new/", ctx.platform_only(200)),
        Probe("post", "/users/new/", ctx.platform_only(302), {"username": "newu", "password": NEW_PASSWORD}),
    ]


@console("console:user_grant")
def user_grant_page(ctx: Ctx) -> list[Probe]:
    # Granted: back to the Users page; refused: the page again with the reason on the field. Only an
    # admin of the tenant grants anything.
    body = {"username": "newcomer", "tenant": ctx.target.name_path, "role": "member"}
    granted = ctx.oracle.may("administer", ctx.t)
    return [Probe("post", "/users/grant/", {302} if granted else {200}, body, changes=granted)]


@console("console:user_password")
def user_password_page(ctx: Ctx) -> list[Probe]:
    index = ctx.seed % len(ctx.world.people)
    url = f"/users/{ctx.world.people[index].pk}/password/"
    # Platform admins only (who see everyone): refused before the person is even looked up.
    return [
        Probe("get", url, ctx.platform_only(200)),
        Probe("post", url, ctx.platform_only(302), {"password": NEW_PASSWORD}),
    ]


@console("console:user_revoke_tokens")
def user_revoke_tokens_page(ctx: Ctx) -> list[Probe]:
    index = ctx.seed % len(ctx.world.people)
    url = f"/users/{ctx.world.people[index].pk}/revoke-tokens/"
    visible = index in ctx.oracle.people_visible(ctx.observer)
    return [Probe("post", url, ctx.platform_only(302) if visible else {404})]


@console("console:audit")
def audit_page(ctx: Ctx) -> list[Probe]:
    probes = [
        Probe("get", "/audit/", {200}),
        Probe("get", "/audit/", {200}, htmx=True),
        Probe(
            "get", "/audit/?since=2026-02-30&action=NOPE", {200}, check=form_errors_on({"since", "action"})
        ),
    ]
    if ctx.oracle.may("view", ctx.t):  # a path the person can see (what they type is echoed back)
        path = ctx.spec.name_path(ctx.t)
        probes.append(Probe("get", f"/audit/?tenant={path}&subtree=on", {200}, htmx=True))
    return probes


def form_errors_on(fields: set[str]) -> Callable[[Any], None]:
    def check(response: Any) -> None:
        assert set(response.context["filters"].errors) == fields

    return check


@console("console:audit_csv")
def audit_csv(ctx: Ctx) -> list[Probe]:
    expected = audit_expected(ctx)

    def check(response: Any) -> None:
        rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
        assert {int(row["id"]) for row in rows} == set(expected)
        for row in rows:
            withheld = row["changes"] == "Details are shown to the tenant's admins."
            assert withheld is not expected[int(row["id"])], row

    return [Probe("get", "/audit.csv", {200}, check=check)]


@console("console:my_access")
def my_access_page(ctx: Ctx) -> list[Probe]:
    return [Probe("get", "/me/", {200}, check=names_exactly(set(ctx.oracle.roles)))]


@console("usage:overview")
def overview_page(ctx: Ctx) -> list[Probe]:
    return [Probe("get", "/overview/", {200} if ctx.oracle.platform else {404})]


@console("provisioning:kubeconfig")
def kubeconfig_page(ctx: Ctx) -> list[Probe]:
    url = page(ctx, f"kubeconfig/{ctx.world.kubernetes.pk}/")
    return [Probe("get", url, ctx.gate("use", ctx.t, 409))]


@console("provisioning:kubeconfig_help")
def kubeconfig_help_page(ctx: Ctx) -> list[Probe]:
    """The help shows an example on the world's export-only cluster; a tenant without a namespace
    there has no such page (404, as for a tenant the person cannot see)."""
    url = page(ctx, f"kubeconfig/{ctx.world.kubernetes.pk}/help/")
    has_namespace = Allocation.objects.filter(tenant=ctx.target, pool__cluster=ctx.world.kubernetes).exists()
    return [Probe("get", url, ctx.gate("use", ctx.t, 200) if has_namespace else {404})]


# Showback, prices and idle-quota hints (issue 19) ------------------------------------------------


@console("usage:showback")
def showback_page(ctx: Ctx) -> list[Probe]:
    """As the API's showback: a tenant's for those who use it, else a 404; without a tenant, the
    person's own tenants (names_exactly: each of them named)."""
    lines = showback_lines(ctx, ctx.t) | {ctx.t}
    return [
        Probe(
            "get",
            f"/showback/?tenant={ctx.target.pk}",
            console_gate(ctx, "use", ctx.t, 200),
            check=names_exactly(lines),
        ),
        Probe("get", "/showback/", {200}, check=names_exactly(showback_tops(ctx))),
    ]


def showback_export(extension: str) -> Callable[[Ctx], list[Probe]]:
    def case(ctx: Ctx) -> list[Probe]:
        return [
            Probe(
                "get", f"/showback.{extension}?tenant={ctx.target.pk}", console_gate(ctx, "use", ctx.t, 200)
            ),
            Probe("get", f"/showback.{extension}", {200}),
        ]

    return case


console("usage:showback_csv")(showback_export("csv"))
console("usage:showback_pdf")(showback_export("pdf"))


@console("usage:showback_prices")
def showback_prices_page(ctx: Ctx) -> list[Probe]:
    # Platform admins set the prices; for anyone else the page does not exist.
    expected = {200} if ctx.oracle.platform else {404}
    body = {"currency": "EUR", f"price_{ctx.world.pool.pk}_gpu": "1.5"}
    return [
        Probe("get", "/showback/prices/", expected),
        Probe("post", "/showback/prices/", {302} if ctx.oracle.platform else {404}, body),
    ]


@console("usage:idle_quota")
def idle_quota_page(ctx: Ctx) -> list[Probe]:
    """A page for people who administer something (platform admins: every tenant); for anyone else
    it does not exist. Its hints are an htmx fragment, with a form's errors in it too."""
    expected = {200} if ctx.oracle.administers_anything() else {404}
    hinted = idle_tenants(ctx)
    return [
        Probe("get", "/idle-quota/", expected, check=names_exactly(hinted)),
        Probe("get", "/idle-quota/?window=7&threshold=25", expected, htmx=True, check=names_exactly(hinted)),
        Probe("get", "/idle-quota/?window=5", expected, htmx=True),
    ]


# Quota requests and the inbox (issue 19) ----------------------------------------------------------


def request_link(quota_request: QuotaRequest) -> str:
    return f"/requests/{quota_request.pk}/"


@console("quotas:requests")
def quota_requests_page(ctx: Ctx) -> list[Probe]:
    """The requests to decide (open, the person a decider) and the person's own."""
    asked = ask_for_target(ctx)
    listed = is_requester(ctx, asked) or decides(ctx, asked)

    def check(response: Any) -> None:
        assert (request_link(asked) in response.content.decode()) is listed

    return [Probe("get", "/requests/", {200}, check=check)]


@console("quotas:request_create")
def quota_request_create_page(ctx: Ctx) -> list[Probe]:
    """Asking for a tenant: members and admins of it and above; anyone short of that (viewers too)
    finds no such tenant here. Three GPUs: more than any tenant has."""
    url = f"/requests/new/?tenant={ctx.target.pk}"
    body = {"pool": ctx.world.pool.pk, "resource": "gpu", "amount": "3", "reason": "to train"}
    return [
        Probe("get", url, console_gate(ctx, "use", ctx.t, 200)),
        Probe("post", url, console_gate(ctx, "use", ctx.t, 302), body),
    ]


@console("quotas:request")
def quota_request_page(ctx: Ctx) -> list[Probe]:
    asked = ask_for_target(ctx)
    return [Probe("get", request_link(asked), request_gate(ctx, asked, True, 200))]


@console("quotas:request_decide")
def quota_request_decide_page(ctx: Ctx) -> list[Probe]:
    """Deciders decide (back to the request); a refusal without a comment is the dialog's form again
    (the htmx fragment) and decides nothing; the requester who is no decider is refused (403)."""
    asked = ask_for_target(ctx)
    url = f"{request_link(asked)}decide/"
    may = decides(ctx, asked)
    return [
        Probe(
            "post", url, request_gate(ctx, asked, may, 200), {"decision": "refuse"}, changes=False, htmx=True
        ),
        Probe("post", url, request_gate(ctx, asked, may, 302), {"decision": "approve"}),
    ]


@console("quotas:request_withdraw")
def quota_request_withdraw_page(ctx: Ctx) -> list[Probe]:
    asked = ask_for_target(ctx)
    url = f"{request_link(asked)}withdraw/"
    return [Probe("post", url, request_gate(ctx, asked, is_requester(ctx, asked), 302))]


NOTE_SUBJECT = re.compile(r"nq(\d+)q")


@console("quotas:inbox")
def inbox_page(ctx: Ctx) -> list[Probe]:
    rows = inbox_world(ctx)
    user = observer_user(ctx)
    mine = {user.pk} if user is not None else set()

    def check(response: Any) -> None:
        assert {int(pk) for pk in NOTE_SUBJECT.findall(response.content.decode())} == mine

    assert {row.recipient_id for row in rows if NOTE_SUBJECT.fullmatch(row.subject)} >= mine
    return [Probe("get", "/inbox/", {200}, check=check)]


@console("quotas:inbox_read")
def inbox_read_page(ctx: Ctx) -> list[Probe]:
    """Marking read: one's own notification (another's is left as it is), or all of one's own."""
    rows = inbox_world(ctx)
    own = own_notifications(ctx, rows)
    row = ctx.pick(rows)
    return [
        Probe("post", "/inbox/read/", {302}, {"notification": str(row.pk)}, changes=row.pk in own),
        Probe("post", "/inbox/read/", {302}, {}, changes=bool(own)),
    ]


@console("quotas:inbox_badge")
def inbox_badge_page(ctx: Ctx) -> list[Probe]:
    unread = len(own_notifications(ctx, inbox_world(ctx)))

    def check(response: Any) -> None:
        text = response.content.decode()
        assert (
            (f'title="{unread} unread"' in text)
            if unread
            else ("unread" not in text.replace("inbox-unread", ""))
        )

    return [Probe("get", "/inbox/unread/", {200}, htmx=True, check=check)]


# ---------------------------------------------------------------------------------------------
# Running the probes


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a savepoint and always roll it back."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def world_state() -> tuple:
    """Every row a refused call must leave as it was."""
    return (
        provisioning_state(),
        list(StorageDirectory.objects.order_by("pk").values_list("pk", "tenant_id", "space_quota_bytes")),
        list(VolumeAttachment.objects.order_by("pk").values_list("pk", "volume_id", "tenant_id")),
        list(Volume.objects.order_by("pk").values_list("pk", "share_id", "sub_path", "description")),
        list(NfsShare.objects.order_by("pk").values_list("pk", "server", "base_path", "description")),
        list(NfsShareGrant.objects.order_by("pk").values_list("pk", "share_id", "tenant_id")),
        list(StorageDirectory.objects.order_by("pk").values_list("pk", "path")),
        list(TenantService.objects.order_by("pk").values_list("pk", "tenant_id", "cluster_id", "name")),
        list(Membership.objects.order_by("pk").values_list("pk", "role", "group_id")),
        list(AllocationGrant.objects.order_by("pk").values_list("pk", "state", "status", "ends_at")),
        list(Tenant.objects.order_by("pk").values_list("pk", "plan_id", "path")),
        list(HadoopConnection.objects.values_list("cluster_id", "directory_permission")),
        list(QuotaPlan.objects.order_by("pk").values_list("pk", "description")),
        list(Group.objects.order_by("pk").values_list("pk", "name")),
        sorted(AuthToken.objects.values_list("digest", flat=True)),
        AuditEvent.objects.filter(action="CREDENTIALS_REVOKED").count(),
        list(QuotaRequest.objects.order_by("pk").values_list("pk", "state", "decided_by_id")),
        list(Notification.objects.order_by("pk").values_list("pk", "recipient_id", "read_at")),
        list(PoolPrice.objects.order_by("pk").values_list("pk", "pool_id", "resource", "price", "currency")),
    )


def leaked_tenants(ctx: Ctx, response: Any, typed: object = None) -> set[int]:
    """Tenants named in a response that the person may not even read the name of; not those named
    in what they sent (`typed`): a refused form keeps what was typed, and says the same of a name
    that exists and one that does not."""
    if response.get("Content-Type", "").startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            text = "\n".join(archive.namelist() + [archive.read(n).decode() for n in archive.namelist()])
    else:
        text = response.content.decode(errors="replace")
    named = {int(i) for i in TENANT_NAME.findall(text)}
    echoed = {int(i) for i in TENANT_NAME.findall(str(typed))} if typed else set()
    return {i for i in named if i < len(ctx.spec.nodes)} - ctx.oracle.nameable - echoed


def run(ctx: Ctx, client: Any, probe: Probe, *, api_call: bool, before: tuple) -> None:
    signed_in = ctx.oracle.signed_in or probe.url == f"{V1}/auth/token/"
    headers = {"HTTP_HX_REQUEST": "true"} if probe.htmx else {}
    with rolled_back():
        if probe.url == f"{V1}/auth/token/":
            client = APIClient()  # signing in, with a password rather than a token
        if api_call:
            kwargs: dict[str, Any] = {"format": "json"}
            if probe.body is not None:
                kwargs["data"] = probe.body
            response = getattr(client, probe.method)(probe.url, **kwargs, **headers)
        else:
            response = getattr(client, probe.method)(probe.url, probe.body or {}, **headers)
        after = world_state() if probe.writes else before
    # A message a write left for the next page echoes what was typed (a path, a name): the next
    # probe starts without it, as if in a new tab.
    client.cookies.pop("messages", None)
    where = f"{probe.method.upper()} {probe.url} as {ctx.observer} on {tenant_name(ctx.t)}"
    if not signed_in:
        if api_call:
            assert response.status_code in (401, 403), where
        else:
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), where
        assert after == before, f"{where}: a refused call changed something"
        return
    assert response.status_code in probe.expect, (
        f"{where}: {response.status_code}, the oracle says {probe.expect}: {response.content[:300]!r}"
    )
    leaked = leaked_tenants(ctx, response, probe.body)
    assert not leaked, f"{where} names {leaked}"
    refused = response.status_code in (400, 403, 404, 409) or probe.expect & {403, 404}
    if probe.writes:
        if refused or not probe.changes:
            assert after == before, f"{where}: a refused call (or a dry run) changed something"
        else:
            assert after != before, f"{where}: an allowed call changed nothing"
    if probe.check is not None and not refused:
        probe.check(response)


# ---------------------------------------------------------------------------------------------
# The properties


@pytest.fixture
def configured(settings, tmp_path, platform_admin):
    settings.CANOPY_MAX_TENANT_DEPTH = MAX_DEPTH
    settings.CANOPY_EXPORT_DIR = str(tmp_path / "export")
    return platform_admin


def draw_ctx(data: Any, spec: WorldSpec, admin: Any) -> Ctx:
    world = build_world(spec, admin)
    observer = data.draw(st.sampled_from([None, *range(len(spec.people))]), label="observer")
    nodes = st.integers(0, len(spec.nodes) - 1)
    return Ctx(
        world=world,
        oracle=Oracle(spec, observer),
        observer=observer,
        t=data.draw(nodes, label="target"),
        d=data.draw(nodes, label="destination"),
        seed=data.draw(st.integers(0, 50), label="seed"),
    )


EXAMPLES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@EXAMPLES
@given(spec=worlds(), data=st.data())
def test_every_api_endpoint_grants_exactly_what_the_oracle_allows(configured, spec, data):
    with rolled_back():
        ctx = draw_ctx(data, spec, configured)
        client: Any = APIClient()
        if ctx.observer is not None:
            client = TokenClient().as_user(ctx.world.people[ctx.observer])
        for key in sorted(API):
            with rolled_back():  # what a case sets up (a quota request, an inbox) is its own
                probes = API[key](ctx)
                before = world_state()
                for probe in probes:
                    run(ctx, client, probe, api_call=True, before=before)


@EXAMPLES
@given(spec=worlds(), data=st.data())
def test_every_page_and_fragment_grants_exactly_what_the_oracle_allows(configured, spec, data):
    with rolled_back():
        ctx = draw_ctx(data, spec, configured)
        client = Client()
        if ctx.observer is not None:
            client.force_login(ctx.world.people[ctx.observer])
        for name in sorted(CONSOLE):
            with rolled_back():  # what a case sets up (a quota request, an inbox) is its own
                probes = CONSOLE[name](ctx)
                before = world_state()
                for probe in probes:
                    run(ctx, client, probe, api_call=False, before=before)


def move_targets(spec: WorldSpec, moved: int) -> list[int | None]:
    """Where the services let a platform admin move tenant `moved` (None: to level 1): not into its
    own subtree, under its parent again, under a leaf or deeper than allowed, nor with an
    allocation under a parent that has none in the pool."""
    node = spec.nodes[moved]
    inside = {i for i in range(len(spec.nodes)) if moved in spec.ancestors(i, include_self=True)}
    height = max(spec.depth(i) for i in inside) - spec.depth(moved)
    targets: list[int | None] = [None] if node.parent is not None else []
    for index, other in enumerate(spec.nodes):
        if index in inside or index == node.parent or other.leaf:
            continue
        if spec.depth(index) + 1 + height <= MAX_DEPTH and (other.allocated or not node.allocated):
            targets.append(index)
    return targets


@EXAMPLES
@given(spec=worlds(), data=st.data())
def test_audit_rows_after_a_move_are_read_exactly_as_the_oracle_says(configured, spec, data):
    """History outlives the tree it was written in: after a platform admin moves a subtree, its rows
    recorded before (under the old path) and the move itself (from a parent, to a parent) are read
    by each person exactly as the oracle says, and name nothing they may not know now."""
    with rolled_back():
        world = build_world(spec, configured)
        movable = [index for index in range(len(spec.nodes)) if move_targets(spec, index)]
        moved = data.draw(st.sampled_from(movable), label="moved") if movable else 0
        if movable:
            to = data.draw(st.sampled_from(move_targets(spec, moved)), label="to")
            services.tenant_move(
                acting_user=configured,
                tenant=world.tenants[moved],
                new_parent=world.tenants[to] if to is not None else None,
            )
            assert AuditEvent.objects.filter(action="TENANT_MOVED").exists()
            # Two more readers of the moved history: a member of the moved tenant, and an admin where
            # it went (or of the moved tenant itself, moved to level 1); both get their role after
            # the move, and neither could see where it came from.
            member, admin = person_name(len(spec.people)), person_name(len(spec.people) + 1)
            world.people += [UserFactory(username=member), UserFactory(username=admin)]
            above = to if to is not None else moved
            services.membership_grant(
                acting_user=configured, tenant=world.tenants[moved], user=world.people[-2], role="member"
            )
            services.membership_grant(
                acting_user=configured, tenant=world.tenants[above], user=world.people[-1], role="admin"
            )
            world.spec = replace(
                spec,
                nodes=tuple(
                    replace(node, parent=to) if index == moved else node
                    for index, node in enumerate(spec.nodes)
                ),
                people=(*spec.people, PersonSpec("plain", frozenset()), PersonSpec("plain", frozenset())),
                grants=(
                    *spec.grants,
                    GrantSpec(("user", len(spec.people)), moved, "member"),
                    GrantSpec(("user", len(spec.people) + 1), above, "admin"),
                ),
            )
        # And a childless tenant deleted: its parent's history records it (naming it), its own rows
        # lose their tenant (the platform's alone from then on), its roles go with it.
        childless = [i for i in range(len(spec.nodes)) if i != moved and not world.spec.children(i)]
        if childless:
            gone = data.draw(st.sampled_from(childless), label="deleted")
            services.tenant_delete(acting_user=configured, tenant=world.tenants[gone], confirm=True)
            world.spec = replace(world.spec, grants=tuple(g for g in world.spec.grants if g.tenant != gone))
        for observer in range(len(world.spec.people)):
            ctx = Ctx(
                world=world, oracle=Oracle(world.spec, observer), observer=observer, t=moved, d=0, seed=0
            )
            client = TokenClient().as_user(world.people[observer])
            browser = Client()
            browser.force_login(world.people[observer])
            before = world_state()
            probes = [(client, True, probe) for probe in audit_list(ctx)]
            probes += [(browser, False, probe) for probe in audit_page(ctx) + audit_csv(ctx)]
            tab = Probe("get", page(ctx, "?tab=audit"), console_gate(ctx, "view", moved, 200))
            probes.append((browser, False, tab))
            for each, api_call, probe in probes:
                run(ctx, each, probe, api_call=api_call, before=before)


# ---------------------------------------------------------------------------------------------
# Nothing is forgotten: every endpoint of the schema and every console URL has its case


def test_every_api_operation_has_a_case():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert operations - set(API) == set(), "endpoints without a permission case"
    assert set(API) - operations == {("get", f"{V1}/")}, "cases for endpoints that are gone"


def _console_names(patterns: list, prefix: str = "", namespace: str = "") -> Iterator[str]:
    """URL names of everything outside /admin/ and /api/ (Django's admin checks is_staff itself; the
    API is covered by the OpenAPI cases above)."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(("admin/", "api/")):
            continue
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _console_names(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}"


# Signing in and out is for everyone (signing out everywhere ends the probing client's session, as
# logging out does: tests/identity/test_token_revocation.py has its permission matrix).
SIGN_IN = {
    "login",
    "logout",
    "sign_out_everywhere",
    "oidc_authentication_init",
    "oidc_authentication_callback",
}


def test_every_console_page_has_a_case():
    names = set(_console_names(get_resolver().url_patterns)) - SIGN_IN
    assert names - set(CONSOLE) == set(), "pages without a permission case"
    assert set(CONSOLE) - names == set(), "cases for pages that are gone"


def test_every_htmx_fragment_has_a_case():
    """Fragments are the `{% partialdef %}`s of the page templates: the tree and the tab of the tenant
    page (each tab of views.tenant_tabs() is probed), the audit page's events, and the new tenant
    form's redraw for another parent (the parts it is made of are never served alone), a quota request's
    decision dialog given back with its errors, and the idle-quota page's hints."""
    templates = Path(__file__).resolve().parents[2] / "templates"
    found = {
        (path.name, name)
        for path in templates.rglob("*.html")
        for name in re.findall(r"{%\s*partialdef\s+(\w+)", path.read_text())
    }
    assert found == {
        ("tenant_resources.html", "tree"),
        ("tenant_resources.html", "tab"),
        ("audit.html", "events"),
        ("tenant_form.html", "redraw"),
        ("request_detail.html", "decide_form"),
        ("idle_quota.html", "hints"),
        *(("tenant_form.html", part) for part in ("title", "breadcrumbs", "heading", "resources")),
    }


# ---------------------------------------------------------------------------------------------
# Where a writer may put an HDFS directory or an NFS volume (issue 15). The oracle reads the rules
# from the spec alone: the tenants' roots are /tenant/<path of names>, the directories built are the
# roots of `spec.storage`, the volumes are share 0's sub-paths v<number>.

HDFS_ROOT = "/tenant"
PATH_MAX = 1024
# Path parts that matter: dots, empty parts (doubled or trailing '/'), control characters, a ':'
# (HDFS refuses it), and names of tenants (a sub-tenant's root, another tree's).
PARTS = ["data", "", ".", "..", "x\n", "a\tb", "a\u200bb", "a:b", "tn0z", "tn1z", "tn2z", "tn3z", "tn4z"]


def control_free(text: str) -> bool:
    return not any(unicodedata.category(character).startswith("C") for character in text)


def hdfs_root_of(spec: WorldSpec, index: int) -> str:
    return f"{HDFS_ROOT}/{spec.name_path(index)}"


def below_or_at(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def directory_allowed(spec: WorldSpec, index: int, path: str) -> bool:
    """Whether tenant `index` may have an HDFS directory at `path`, from the documented rules."""
    parts = path[1:].split("/")
    if not (path.startswith("/") and control_free(path) and len(path) <= PATH_MAX and ":" not in path):
        return False
    if any(part in ("", ".", "..") for part in parts):
        return False  # not in its plain form
    root = hdfs_root_of(spec, index)
    if not below_or_at(path, root):
        return False
    below = path[len(root) :].lstrip("/").split("/")[0]
    if below and any(tenant_name(child) == below for child in spec.children(index)):
        return False  # a sub-tenant's root
    for owner in spec.storage:  # each built directory is its owner's root
        taken = hdfs_root_of(spec, owner)
        if path == taken:
            return False
        if below_or_at(path, taken) and owner not in spec.ancestors(index, include_self=True):
            return False  # inside a directory of a tenant not above it
        if below_or_at(taken, path) and index not in spec.ancestors(owner, include_self=True):
            return False  # around a directory of a tenant not below it
    return True


@st.composite
def hdfs_paths(draw: Any, spec: WorldSpec) -> str:
    bases = [HDFS_ROOT, "/data", *(hdfs_root_of(spec, i) for i in range(len(spec.nodes)))]
    path = "/".join([draw(st.sampled_from(bases)), *draw(st.lists(st.sampled_from(PARTS), max_size=3))])
    if draw(st.integers(0, 9)) == 0:
        path += "/" + "d" * (PATH_MAX - len(path) + draw(st.integers(-1, 1)))  # about the limit
    return path


def denied_as(exc: Exception) -> int:
    return {Http404: 404, PermissionDenied: 403, ValidationError: 400}[type(exc)]


@EXAMPLES
@given(spec=worlds(), data=st.data())
def test_no_writer_puts_a_directory_outside_its_tenants_root_or_in_another_tenants(configured, spec, data):
    with rolled_back():
        world = build_world(spec, configured)
        for _ in range(8):
            observer = data.draw(st.sampled_from([*range(len(spec.people))]), label="writer")
            oracle = Oracle(spec, observer)
            index = data.draw(st.integers(0, len(spec.nodes) - 1), label="tenant")
            path = data.draw(hdfs_paths(spec), label="path")
            writer = data.draw(st.sampled_from(["api", "service"]), label="through")
            # The writer's token exists before the state is read: it is not the write's doing.
            api = TokenClient().as_user(world.people[observer]) if writer == "api" else None
            before = world_state()
            allowed = oracle.may("manage", index) and directory_allowed(spec, index, path)
            with rolled_back():
                person, tenant = world.people[observer], world.tenants[index]
                if writer == "api":
                    body = {"tenant": tenant.pk, "cluster": world.hadoop.pk, "path": path}
                    status = api.post(f"{V1}/storage/", body, format="json").status_code
                    if not oracle.signed_in:
                        assert status in (401, 403)  # a deactivated account's token is refused
                    elif not oracle.may("view", index):
                        assert status == 400  # the tenant does not exist for them
                    elif not oracle.may("manage", index):
                        assert status == 403
                else:
                    try:
                        services.storage_create(
                            acting_user=person,
                            tenant=tenant,
                            spec=services.StorageSpec(cluster=world.hadoop, path=path),
                        )
                        status = 201
                    except (Http404, PermissionDenied, ValidationError) as exc:
                        status = denied_as(exc)
                assert (status == 201) == allowed, (
                    f"{writer}: {person_name(observer)} on {spec.name_path(index)} at {path!r}: {status}"
                )
                assert_directories_in_place()
                after = world_state()
            if not allowed:
                assert after == before, f"a refused directory at {path!r} changed something"


def sub_path_allowed(spec: WorldSpec, oracle: Oracle, share: int, attached: list[int], sub_path: str) -> bool:
    """Whether `oracle`'s person may make a volume of share `share` at `sub_path` for `attached`."""
    if not all(oracle.may("manage", i) for i in attached):
        return False
    if not all(spec.share_reaches(share, i) for i in attached):
        return False  # the share is not granted to (a tenant above) every tenant of the volume
    if sub_path and (
        sub_path.startswith("/")
        or not control_free(sub_path)
        or any(part in ("", ".", "..") for part in sub_path.split("/"))
    ):
        return False
    if len(f"/share{share}/{sub_path}") > PATH_MAX:
        return False
    for number, tenants in enumerate(spec.volumes if share == 0 else ()):
        other = f"v{number}"
        overlaps = not sub_path or below_or_at(sub_path, other) or below_or_at(other, sub_path)
        if overlaps and not all(oracle.may("manage", i) for i in tenants):
            return False  # at, inside or around a volume serving tenants they do not manage
    return True


SUB_PATHS = ["", "new", "new/x", "v0", "v0/in", "v1", "v", "../v0", "new/../v0", "/share0/v0", "new/", "x\ny"]


@EXAMPLES
@given(spec=worlds(), data=st.data())
def test_no_one_but_the_share_grants_decides_where_a_volume_points(configured, spec, data):
    """No writer makes a volume of a share not granted to (above) every tenant it is attached to, at a
    sub-path out of its share, or over a volume of tenants they do not manage; platform admins are
    bound by the grants too (they make them)."""
    with rolled_back():
        world = build_world(spec, configured)
        for _ in range(8):
            observer = data.draw(st.sampled_from([*range(len(spec.people))]), label="writer")
            oracle = Oracle(spec, observer)
            nodes = st.integers(0, len(spec.nodes) - 1)
            attached = sorted(data.draw(st.frozensets(nodes, min_size=1, max_size=2), label="tenants"))
            share = data.draw(st.integers(0, len(spec.shares) - 1), label="share")
            sub_path = data.draw(st.sampled_from(SUB_PATHS), label="sub_path")
            writer = data.draw(st.sampled_from(["api", "service"]), label="through")
            allowed = sub_path_allowed(spec, oracle, share, attached, sub_path)
            # The writer's token exists before the state is read: it is not the write's doing.
            api = TokenClient().as_user(world.people[observer]) if writer == "api" else None
            before = world_state()
            with rolled_back():
                person = world.people[observer]
                tenants = [world.tenants[i] for i in attached]
                scope = "private" if len(attached) == 1 else "shared"
                if writer == "api":
                    body = {
                        "share": world.shares[share].pk,
                        "sub_path": sub_path,
                        "name": "newvol",
                        "capacity": "1Gi",
                        "scope": scope,
                        "attachments": [{"tenant": t.pk} for t in tenants],
                    }
                    status = api.post(f"{V1}/volumes/", body, format="json").status_code
                    if not oracle.signed_in:
                        assert status in (401, 403)  # a deactivated account's token is refused
                    elif not oracle.sees_share(share) or not all(oracle.may("view", i) for i in attached):
                        assert status == 400  # a share or tenant they cannot see does not exist for them
                else:
                    try:
                        services.volume_create(
                            acting_user=person,
                            spec=services.VolumeSpec(
                                share=world.shares[share],
                                sub_path=sub_path,
                                name="newvol",
                                capacity_bytes=2**30,
                                scope=scope,
                                tenants=tenants,
                            ),
                        )
                        status = 201
                    except (Http404, PermissionDenied, ValidationError) as exc:
                        status = denied_as(exc)
                assert (status == 201) == allowed, (
                    f"{writer}: {person_name(observer)} share {share} at {sub_path!r} for "
                    f"{[spec.name_path(i) for i in attached]}: {status}"
                )
                assert_volumes_in_place()
                after = world_state()
            if not allowed:
                assert after == before, f"a refused volume at {sub_path!r} changed something"


# ---------------------------------------------------------------------------------------------
# Names (issue 15, point 3): no user or group name any writer accepts widens a cluster's ACL

# The syntax of YARN queue ACLs, HDFS ACL specs, Kubernetes subjects, the shell and XML, and names
# that are fine, drawn in pieces and glued together.
SYNTAX = ["*", " ", ",", ":", "\t", "\n", "~", "@", "'", '"', "$(x)", "`", ";", "&", "<", "\x00", "é"]
SYNTAX += ["default:", "other::rwx", "mask::", "user:", "group:", "system:", "authenticated", "-", ".", "_"]
NAMES = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(SYNTAX), st.text("abcXYZ019", min_size=1, max_size=4)), max_size=5
    ).map("".join),
    st.text(max_size=12),
    st.sampled_from(
        ["*", " *", "devs,default:other::rwx", "devs:rwx,default:other:", "system:authenticated"]
    ),
)


@EXAMPLES
@given(spec=worlds(), data=st.data())
def test_no_name_any_writer_accepts_widens_a_yarn_hdfs_or_kubernetes_acl(configured, spec, data):
    """Random worlds on a Hadoop cluster (every tenant with a queue, directories) and an OIDC
    Kubernetes cluster without name prefixes (the riskiest naming: "system:authenticated" would be
    everyone); drawn names go through every writer that takes a user or group name: the API (group
    grant, user create and grant), the console's members form, and an OpenID Connect sign-in's
    group claim. Whatever they accept, what Canopy would then send to each cluster (queue ACLs,
    HDFS ACL specs, role bindings, capacity-scheduler.xml and hdfs-setup.sh as run by sh) names
    no one the database gives no role there, and never everyone."""
    with rolled_back():
        world = build_world(spec, configured)
        admin = world.admin
        hadoop_pool = ResourcePool.objects.get(cluster=world.hadoop)
        for tenant in sorted(world.tenants, key=lambda t: t.depth):
            services.allocation_set(
                acting_user=admin,
                tenant=tenant,
                spec=services.AllocationSpec(pool=hadoop_pool, capacity_percent=Decimal(0)),
            )
        provisioning_services.connection_set(
            acting_user=admin,
            cluster=world.kubernetes,
            spec=provisioning_services.ConnectionSpec(
                mode="export",
                oidc_issuer_url="https://sso.example.com/realms/corp",
                oidc_client_id="kubernetes",
                oidc_username_prefix="",
                oidc_groups_prefix="",
            ),
        )
        names = data.draw(st.lists(NAMES, min_size=1, max_size=5), label="names")
        tenant = world.tenants[data.draw(st.integers(0, len(spec.nodes) - 1), label="tenant")]
        role = data.draw(st.sampled_from(ROLES), label="role")
        api = TokenClient().as_user(admin)
        console = Client()
        console.force_login(admin)
        for name in names:
            granted = api.post(
                "/api/v1/memberships/", {"tenant": tenant.pk, "group": name, "role": role}, format="json"
            )
            assert granted.status_code in (201, 400), granted.content
            created = api.post("/api/v1/users/", {"username": name, "password": NEW_PASSWORD}, format="json")
            assert created.status_code in (201, 400), created.content
            if created.status_code == 201:
                granted = api.post(
                    "/api/v1/memberships/", {"tenant": tenant.pk, "user": name, "role": role}, format="json"
                )
                assert granted.status_code in (201, 400), granted.content
            console.post(f"/tenants/{tenant.pk}/members/", {"member": f"group:{name}", "role": role})
        with sign_in_configured(OIDC_ENV):
            person = User.objects.create_user("oidc-person")  # no password: an OIDC account
            services.membership_grant(acting_user=admin, tenant=tenant, user=person, role=role)
            OIDCBackend().update_user(person, oidc_claims(groups=names))
        for row in Membership.objects.select_related("user", "group"):
            assert is_cluster_name(row.group.name if row.group else row.user.get_username()), row
        assert all(is_cluster_name(group) for group in person.groups.values_list("name", flat=True))
        assert widenings() == []
