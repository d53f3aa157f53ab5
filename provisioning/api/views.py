"""Provisioning endpoints: thin views over `provisioning.services` and the selectors.

Tenants are found with `tenants.selectors.tenant_get` (a tenant the caller cannot see is a 404),
and each service checks the action it needs (`use` for a kubeconfig, `administer` for previews,
pushes and exports) through `tenants.permissions`.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import django_filters
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import selectors, services
from provisioning.api import serializers as s
from provisioning.backends.export import HADOOP_FILES
from provisioning.desired.yarn import RuleViolation
from provisioning.models import ClusterSyncStatus
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.addresses import client_address
from tenants.api.filters import FilterSet, IdFilter
from tenants.api.schema import error_response
from tenants.api.serializers import AllocationInputSerializer
from tenants.models import Cluster, Tenant
from tenants.permissions import Action, is_platform_admin, require

CLUSTER_PARAMETER = OpenApiParameter("cluster", int, description="A Kubernetes cluster's id.")


class NotOnCluster(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "not_provisioned"


def _tenant(request: Request, pk: int) -> Tenant:
    return tenant_selectors.tenant_get(user=request.user, pk=pk)


def _cluster(request: Request, required: bool = False) -> Cluster | None:
    raw = request.query_params.get("cluster")
    if not raw:
        if required:
            raise ValidationError({"cluster": ["Name the cluster: ?cluster=<id>."]})
        return None
    # isdecimal, not isdigit: "²" is a digit that int() refuses (a 500 otherwise).
    cluster = (
        tenant_selectors.cluster_list(user=request.user).filter(pk=raw if raw.isdecimal() else 0).first()
    )
    if cluster is None:
        raise ValidationError({"cluster": [f"No cluster with id {raw}."]})
    return cluster


@extend_schema(responses=s.SyncStatusSerializer(many=True))
class TenantStatusView(APIView):
    """How the tenant stands on each Kubernetes cluster: pending, applying, synced, failed (with the
    API server's message) or drifted, and when it last synced."""

    def get(self, request: Request, pk: int) -> Response:
        tenant = _tenant(request, pk)
        rows = selectors.status_list(user=request.user).filter(sync__tenant_id=tenant.pk)
        return Response(s.SyncStatusSerializer(rows, many=True).data)


@extend_schema(request=None, responses={202: s.PushSerializer})
class TenantPushView(APIView):
    """Push the tenant again now (e.g. after fixing what made a push fail). Tenant admins."""

    def post(self, request: Request, pk: int) -> Response:
        tenant = _tenant(request, pk)
        queued = services.tenant_push_request(acting_user=request.user, tenant=tenant)
        return Response({"tenants": queued}, status=status.HTTP_202_ACCEPTED)


class TenantPreviewView(APIView):
    """What a push would do on each cluster: objects to create, change (with the fields) and
    delete. GET: the tenant as it is now. POST an allocation: what setting it would do, before it
    is set (nothing is saved)."""

    @extend_schema(parameters=[CLUSTER_PARAMETER], responses=s.PreviewSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        tenant = _tenant(request, pk)
        previews = services.tenant_preview(acting_user=request.user, tenant=tenant, cluster=_cluster(request))
        return Response(s.PreviewSerializer(previews, many=True).data)

    @extend_schema(request=AllocationInputSerializer, responses=s.PreviewSerializer(many=True))
    def post(self, request: Request, pk: int) -> Response:
        tenant = _tenant(request, pk)
        body = AllocationInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        spec = tenant_services.AllocationSpec(**body.validated_data)
        previews = services.allocation_preview(acting_user=request.user, tenant=tenant, spec=spec)
        return Response(s.PreviewSerializer(previews, many=True).data)


@extend_schema(
    parameters=[CLUSTER_PARAMETER],
    responses={
        (200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR, description="A kubeconfig file."),
        409: error_response("The tenant is not (yet) on that cluster."),
    },
)
class KubeconfigView(APIView):
    """A kubeconfig for your ServiceAccount in the tenant's namespace, with a token minted now (it
    expires; download again then). On a cluster that authenticates people with OIDC, a kubeconfig
    that signs in through `kubectl oidc-login` instead. Members and admins of the tenant."""

    def get(self, request: Request, pk: int) -> HttpResponse:
        tenant = _tenant(request, pk)
        cluster = _cluster(request, required=True)
        assert cluster is not None  # nosec B101 # narrows the type; _cluster(required=True) raised already
        try:
            issued = services.kubeconfig_issue(
                acting_user=request.user, tenant=tenant, cluster=cluster, address=client_address(request)
            )
        except services.NotProvisioned as error:
            raise NotOnCluster(str(error)) from error
        return kubeconfig_response(issued)


def kubeconfig_response(issued: services.IssuedKubeconfig) -> HttpResponse:
    response = HttpResponse(issued.content, content_type="application/yaml")
    response["Content-Disposition"] = f'attachment; filename="{issued.filename}"'
    response["Cache-Control"] = "no-store"  # it holds a token (or an OIDC client secret)
    if issued.expires_at is not None:
        response["X-Token-Expires-At"] = issued.expires_at.isoformat()
    return response


class StatusFilter(FilterSet):
    tenant = IdFilter(field_name="sync__tenant_id")
    namespace = django_filters.CharFilter(field_name="sync__namespace")

    class Meta:
        model = ClusterSyncStatus
        fields = ["tenant", "cluster", "state", "namespace"]


class StatusListView(generics.ListAPIView):
    """Every tenant's state on every cluster, for the tenants you can see."""

    serializer_class = s.SyncStatusSerializer
    filterset_class = StatusFilter

    def get_queryset(self) -> Any:
        return selectors.status_list(user=self.request.user)


@extend_schema(
    parameters=[
        OpenApiParameter("tenant", int, description="One tenant; default: every tenant you administer."),
        CLUSTER_PARAMETER,
    ],
    responses={
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="A folder per tenant."),
        404: error_response("No such tenant, or not one you can see."),
    },
)
class ManifestExportView(APIView):
    """The desired manifests as YAML files in a zip: `<cluster>/<namespace>/NN-<kind>-<name>.yaml`,
    ready for a GitOps repository. Tenant admins get their subtrees, platform admins everything."""

    def get(self, request: Request) -> HttpResponse:
        raw = request.query_params.get("tenant")
        if raw:
            tenant = tenant_selectors.tenant_get(user=request.user, pk=raw)
            require(request.user, Action.ADMINISTER, tenant)
            tenants = [tenant]
        else:
            tenants = list(tenant_selectors.tenant_list(user=request.user, action=Action.ADMINISTER))
        files = services.manifests_render(
            tenants=tenants, cluster=_cluster(request), with_cluster_objects=is_platform_admin(request.user)
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, text in sorted(files.items()):
                archive.writestr(path, text)
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="canopy-manifests-{stamp}.zip"'
        return response


# What each Hadoop export is sent (and documented) as.
HADOOP_FILE_TYPES = {
    name: "application/xml" if name.endswith(".xml") else "text/x-shellscript" for name in HADOOP_FILES
}


class HadoopExportView(APIView):
    """`capacity-scheduler.xml` or `hdfs-setup.sh` of a Hadoop cluster (platform admins), for
    clusters without the scheduler-conf mutation API: `?cluster=<id>&file=capacity-scheduler.xml`."""

    @extend_schema(
        parameters=[
            OpenApiParameter("cluster", int, description="A Hadoop cluster's id.", required=True),
            OpenApiParameter("file", str, enum=list(HADOOP_FILES), required=True),
        ],
        responses={(200, kind): OpenApiTypes.BINARY for kind in sorted(set(HADOOP_FILE_TYPES.values()))},
    )
    def get(self, request: Request) -> HttpResponse:
        if not is_platform_admin(request.user):
            raise PermissionDenied("Only platform admins may export a Hadoop cluster's configuration.")
        cluster = _cluster(request, required=True)
        assert cluster is not None  # nosec B101 # narrows the type; _cluster(required=True) raised already
        if cluster.kind != Cluster.Kind.YARN:
            raise ValidationError({"cluster": [f"{cluster.name} is not a Hadoop cluster."]})
        name = request.query_params.get("file") or ""
        if name not in HADOOP_FILES:
            raise ValidationError({"file": [f"One of: {', '.join(HADOOP_FILES)}."]})
        try:
            files = services.hadoop_files_render(acting_user=request.user, cluster=cluster)
        except RuleViolation as error:
            raise ValidationError({"cluster": error.problems}) from error
        return hadoop_file_response(cluster, name, files[name])


def hadoop_file_response(cluster: Cluster, name: str, text: str) -> HttpResponse:
    """One of a Hadoop cluster's export files as a download (the API's and the Pools page's)."""
    response = HttpResponse(text, content_type=HADOOP_FILE_TYPES[name])
    response["Content-Disposition"] = f'attachment; filename="{cluster.name}-{name}"'
    return response


class IsPlatformAdmin(BasePermission):
    message = "Only platform admins may see or change cluster connections."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_platform_admin(request.user)


class ConnectionViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """How Canopy reaches each Kubernetes cluster (platform admins). Saving one pushes every tenant
    on the cluster; `test` asks the API server for its version."""

    serializer_class = s.ConnectionSerializer
    permission_classes = [IsPlatformAdmin]
    lookup_field = "cluster"
    lookup_value_converter = "id"  # tenants/converters.py: an id out of range is a 404, not a query

    def get_queryset(self) -> Any:
        return selectors.connection_list(user=self.request.user)

    def perform_destroy(self, instance: Any) -> None:
        services.connection_delete(acting_user=self.request.user, cluster=instance.cluster)

    @extend_schema(request=None, responses=s.ConnectionCheckSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request: Request, cluster: str | None = None) -> Response:
        connection = self.get_object()
        check = services.connection_test(acting_user=request.user, cluster=connection.cluster)
        return Response(s.ConnectionCheckSerializer(check).data)


class HadoopConnectionViewSet(ConnectionViewSet):
    """How Canopy reaches each Hadoop cluster (platform admins). Saving one pushes every tenant on
    the cluster; `test` reports the ResourceManager and NameNode versions or the exact error."""

    serializer_class = s.HadoopConnectionSerializer  # type: ignore[assignment]

    def get_queryset(self) -> Any:
        return selectors.hadoop_connection_list(user=self.request.user)
