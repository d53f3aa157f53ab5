"""Django admin for every model. Writes go through `tenants.services` like every other writer, so the
admin cannot break a rule the API enforces: the form's clean() calls the service (inside the admin's
transaction) and shows its refusals as form errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from tenants import services
from tenants.converters import out_of_range
from tenants.forms import AsciiDecimalField, AsciiIntegerField
from tenants.models import (
    Allocation,
    AllocationGrant,
    AuditEvent,
    Cluster,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    QuotaPlanAllocation,
    QuotaPlanStorage,
    ResourcePool,
    StorageDirectory,
    Tenant,
    Volume,
    VolumeAttachment,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups

# Service errors are keyed by the API's field names; map those that differ from the admin form's.
FIELD_ALIASES: dict[str | None, str] = {
    "cpu": "cpu_millicores",
    "memory": "memory_bytes",
    "cpu_burst": "cpu_millicores_burst",
    "memory_burst": "memory_bytes_burst",
    "capacity": "capacity_percent",
    "max_capacity": "max_capacity_percent",
    "gpu_capacity": "gpu_capacity",
    "cpu_capacity": "cpu_capacity_millicores",
    "memory_capacity": "memory_capacity_bytes",
    "capacity_bytes": "capacity_bytes",
}


class IdsInRangeAdmin(admin.ModelAdmin):
    """An object id larger than any row's is a missing object, as the admin answers any, and never
    reaches a query: SQLite cannot compare it with a primary key that is a foreign key (a 500)."""

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        if out_of_range(object_id):
            return None
        return super().get_object(request, object_id, from_field)


class ServiceAdmin(IdsInRangeAdmin):
    """Subclasses implement `service_save(request, obj_or_None, cleaned_data)` and `service_delete`."""

    # Amounts take ASCII digits only, as the API and the console do.
    formfield_overrides = {
        models.IntegerField: {"form_class": AsciiIntegerField},
        models.BigIntegerField: {"form_class": AsciiIntegerField},
        models.PositiveIntegerField: {"form_class": AsciiIntegerField},
        models.DecimalField: {"form_class": AsciiDecimalField},
    }

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> Any:
        raise PermissionDenied("This object is changed through the API or the console.")

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        raise PermissionDenied("This object is deleted through the API or the console.")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        base = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceForm(base):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                try:
                    self.instance = model_admin.service_save(request, obj, cleaned)
                except ValidationError as exc:
                    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
                    for key, messages_ in errors.items():
                        field = FIELD_ALIASES.get(key, key)
                        self.add_error(field if field in self.fields else None, messages_)
                except (PermissionDenied, Http404) as exc:
                    self.add_error(None, str(exc) or "You may not do this.")
                return cleaned

            def _post_clean(self) -> None:
                # The service already validated and saved; Django's model validation would re-run
                # checks on fields the service fills in itself.
                pass

        return ServiceForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Saved by the service in the form's clean()."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Relations are written by the service too; the inlines are read-only. Django's change
        message still reads what each formset saved: nothing."""
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        try:
            self.service_delete(request, obj)
        except (ValidationError, PermissionDenied, Http404) as exc:
            request._canopy_delete_refused = True  # type: ignore[attr-defined]
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, f"Not deleted: {text}", level=messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in list(queryset):
            # Deleting a tenant takes its subtree: a selected descendant may be gone already.
            if type(obj)._default_manager.filter(pk=obj.pk).exists():
                self.delete_model(request, obj)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        if getattr(request, "_canopy_delete_refused", False):
            from django.shortcuts import redirect

            return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return super().response_delete(request, obj_display, obj_id)


@admin.register(Cluster)
class ClusterAdmin(ServiceAdmin):
    list_display = ["name", "kind", "created_at"]
    list_filter = ["kind"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name", "kind"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> Cluster:
        if obj is None:
            return services.cluster_create(
                acting_user=request.user,
                name=data["name"],
                kind=data["kind"],
                description=data.get("description", ""),
            )
        return services.cluster_update(
            acting_user=request.user, cluster=obj, description=data.get("description", "")
        )

    def service_delete(self, request: HttpRequest, obj: Cluster) -> None:
        services.cluster_delete(acting_user=request.user, cluster=obj)


@admin.register(ResourcePool)
class ResourcePoolAdmin(ServiceAdmin):
    list_display = [
        "name",
        "cluster",
        "node_selector",
        "gpu_capacity",
        "cpu_capacity_millicores",
        "memory_capacity_bytes",
    ]
    list_filter = ["cluster"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["cluster", "name"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> ResourcePool:
        fields = {k: data[k] for k in services.POOL_FIELDS if k in data}
        if obj is None:
            return services.pool_create(acting_user=request.user, cluster=data["cluster"], **fields)
        fields.pop("name", None)
        return services.pool_update(acting_user=request.user, pool=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: ResourcePool) -> None:
        services.pool_delete(acting_user=request.user, pool=obj)


class AllocationInline(admin.TabularInline):
    model = Allocation
    extra = 0
    can_delete = False
    fields = ["pool", *services.ALLOCATION_FIELDS]
    readonly_fields = ["pool", *services.ALLOCATION_FIELDS]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TenantAdminForm(forms.ModelForm):
    parent = forms.ModelChoiceField(
        queryset=Tenant.objects.all(), required=False, help_text="Empty for a level-1 tenant."
    )

    class Meta:
        model = Tenant
        fields = ["parent", "name", "display_name", "description", "leaf", "plan"]


@admin.register(Tenant)
class TenantAdmin(ServiceAdmin):
    form = TenantAdminForm
    list_display = ["name_path", "display_name", "depth", "leaf", "state", "created_at"]
    list_filter = ["state", "leaf", "depth"]
    search_fields = ["name_path", "display_name"]
    ordering = ["path"]
    inlines = [AllocationInline]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> _FieldGroups:
        if obj is None:
            return ["parent", "name", "display_name", "description", "leaf", "plan"]
        return ["name_path", "depth", "state", "plan", "display_name", "description", "leaf"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name_path", "depth", "state", "plan"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> Tenant:
        if obj is None:
            return services.tenant_create(
                acting_user=request.user,
                parent=data.get("parent"),
                name=data["name"],
                display_name=data.get("display_name", ""),
                description=data.get("description", ""),
                is_leaf=data.get("leaf", False),
                plan=data.get("plan"),
            )
        return services.tenant_update(
            acting_user=request.user,
            tenant=obj,
            display_name=data.get("display_name", ""),
            description=data.get("description", ""),
            is_leaf=data.get("leaf", False),
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """The confirmation page lists the whole subtree, which the service deletes with it."""
        subtree = Tenant.objects.none()
        for tenant in objs:
            subtree = subtree | Tenant.objects.filter(path__startswith=tenant.path)
        return super().get_deleted_objects(list(subtree.order_by("path")), request)

    def service_delete(self, request: HttpRequest, obj: Tenant) -> None:
        # get_deleted_objects has listed the subtree on the confirmation page.
        services.tenant_delete(acting_user=request.user, tenant=obj, confirm=True)


@admin.register(Allocation)
class AllocationAdmin(ServiceAdmin):
    list_display = ["tenant", "pool", *services.ALLOCATION_FIELDS]
    list_filter = ["pool"]
    search_fields = ["tenant__name_path"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant", "pool"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> Allocation:
        tenant = obj.tenant if obj else data["tenant"]
        pool = obj.pool if obj else data["pool"]
        amounts = {name: data.get(name) for name in services.ALLOCATION_FIELDS}
        return services.allocation_set(
            acting_user=request.user, tenant=tenant, spec=services.AllocationSpec(pool=pool, **amounts)
        )

    def service_delete(self, request: HttpRequest, obj: Allocation) -> None:
        services.allocation_delete(acting_user=request.user, allocation=obj)


@admin.register(StorageDirectory)
class StorageDirectoryAdmin(ServiceAdmin):
    list_display = ["path", "cluster", "tenant", "space_quota_bytes", "file_quota"]
    list_filter = ["cluster"]
    search_fields = ["path", "tenant__name_path"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant", "cluster", "path"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> StorageDirectory:
        if obj is None:
            spec = services.StorageSpec(
                cluster=data["cluster"],
                path=data.get("path") or None,
                space_quota_bytes=data.get("space_quota_bytes"),
                file_quota=data.get("file_quota"),
            )
            return services.storage_create(acting_user=request.user, tenant=data["tenant"], spec=spec)
        return services.storage_update(
            acting_user=request.user,
            directory=obj,
            space_quota_bytes=data.get("space_quota_bytes"),
            file_quota=data.get("file_quota"),
        )

    def service_delete(self, request: HttpRequest, obj: StorageDirectory) -> None:
        services.storage_delete(acting_user=request.user, directory=obj)


class VolumeAttachmentInline(admin.TabularInline):
    model = VolumeAttachment
    extra = 0
    can_delete = False
    readonly_fields = ["tenant", "claim_name"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VolumeAdminForm(forms.ModelForm):
    attached_tenants = forms.ModelMultipleChoiceField(
        queryset=Tenant.objects.all(),
        required=True,
        help_text="One tenant for a private volume; several for a shared one. Claim names follow the defaults. "
        "The share must be granted to each of them or to a tenant above.",
    )

    class Meta:
        model = Volume
        fields = ["name", "description", "share", "sub_path", "capacity_bytes", "access_mode", "scope"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["attached_tenants"].initial = list(self.instance.tenants.all())


@admin.register(Volume)
class VolumeAdmin(ServiceAdmin):
    form = VolumeAdminForm
    list_display = ["name", "cluster", "scope", "share", "sub_path", "capacity_bytes"]
    list_filter = ["cluster", "scope", "share"]
    search_fields = ["name", "sub_path", "share__name"]
    inlines = [VolumeAttachmentInline]

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> Volume:
        existing = {a.tenant_id: a.claim_name for a in obj.attachments.all()} if obj else {}
        tenants = list(data["attached_tenants"])
        spec = services.VolumeSpec(
            share=data["share"],
            sub_path=data.get("sub_path", ""),
            name=data["name"],
            capacity_bytes=data["capacity_bytes"],
            scope=data["scope"],
            access_mode=data["access_mode"],
            description=data.get("description", ""),
            tenants=tenants,
            claim_names={t.pk: existing[t.pk] for t in tenants if t.pk in existing},
        )
        if obj is None:
            return services.volume_create(acting_user=request.user, spec=spec)
        return services.volume_update(acting_user=request.user, volume=obj, spec=spec)

    def service_delete(self, request: HttpRequest, obj: Volume) -> None:
        services.volume_delete(acting_user=request.user, volume=obj)


class NfsShareGrantInline(admin.TabularInline):
    """Grants are added and removed on their own page (NFS share grants), through the services."""

    model = NfsShareGrant
    extra = 0
    can_delete = False
    readonly_fields = ["tenant", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NfsShare)
class NfsShareAdmin(ServiceAdmin):
    list_display = ["name", "cluster", "server", "base_path"]
    list_filter = ["cluster"]
    search_fields = ["name", "server", "base_path"]
    inlines = [NfsShareGrantInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["cluster", "name"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> NfsShare:
        if obj is None:
            spec = services.NfsShareSpec(
                cluster=data["cluster"],
                name=data["name"],
                server=data["server"],
                base_path=data["base_path"],
                description=data.get("description", ""),
            )
            return services.nfs_share_create(acting_user=request.user, spec=spec)
        return services.nfs_share_update(
            acting_user=request.user,
            share=obj,
            server=data["server"],
            base_path=data["base_path"],
            description=data.get("description", ""),
        )

    def service_delete(self, request: HttpRequest, obj: NfsShare) -> None:
        services.nfs_share_delete(acting_user=request.user, share=obj)


@admin.register(NfsShareGrant)
class NfsShareGrantAdmin(ServiceAdmin):
    """A grant is made or taken back, never changed."""

    list_display = ["share", "tenant", "created_at"]
    list_filter = ["share"]
    search_fields = ["share__name", "tenant__name_path"]
    autocomplete_fields = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["share", "tenant"] if obj else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> NfsShareGrant:
        return services.nfs_share_grant(acting_user=request.user, share=data["share"], tenant=data["tenant"])

    def service_delete(self, request: HttpRequest, obj: NfsShareGrant) -> None:
        services.nfs_share_revoke(acting_user=request.user, grant=obj)


class PlanAllocationInline(admin.TabularInline):
    model = QuotaPlanAllocation
    extra = 0
    can_delete = False
    readonly_fields = ["pool", *services.ALLOCATION_FIELDS]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlanStorageInline(admin.TabularInline):
    model = QuotaPlanStorage
    extra = 0
    can_delete = False
    readonly_fields = ["cluster", "space_quota_bytes", "file_quota"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuotaPlan)
class QuotaPlanAdmin(ServiceAdmin):
    """Plan entries are edited through the API (/api/v1/plans/); the admin shows them."""

    list_display = ["name", "description", "updated_at"]
    inlines = [PlanAllocationInline, PlanStorageInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> QuotaPlan:
        if obj is None:
            return services.plan_create(
                acting_user=request.user, name=data["name"], description=data.get("description", "")
            )
        return services.plan_update(
            acting_user=request.user, plan=obj, description=data.get("description", "")
        )

    def service_delete(self, request: HttpRequest, obj: QuotaPlan) -> None:
        services.plan_delete(acting_user=request.user, plan=obj)


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    list_display = ["user", "group", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "group__name", "tenant__name_path"]
    autocomplete_fields = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "group", "tenant"] if obj else []

    def service_save(self, request: HttpRequest, obj: Any, data: dict[str, Any]) -> Membership:
        if obj is None:
            return services.membership_grant(
                acting_user=request.user,
                tenant=data["tenant"],
                user=data.get("user"),
                group=data.get("group"),
                role=data["role"],
            )
        return services.membership_change_role(acting_user=request.user, membership=obj, role=data["role"])

    def service_delete(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_revoke(acting_user=request.user, membership=obj)


class ReadOnlyAdmin(IdsInRangeAdmin):
    """Rows shown for reference only: written by the services as part of something else."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "label", "action", "tenant_path", "target_repr"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_name", "tenant_path", "target_repr"]
    date_hierarchy = "created_at"


@admin.register(VolumeAttachment)
class VolumeAttachmentAdmin(ReadOnlyAdmin):
    """Attachments are part of their volume; change them on the volume."""

    list_display = ["claim_name", "volume", "tenant"]
    search_fields = ["claim_name", "tenant__name_path"]


@admin.register(QuotaPlanAllocation)
class QuotaPlanAllocationAdmin(ReadOnlyAdmin):
    """Part of a plan; edited through /api/v1/plans/."""

    list_display = ["plan", "pool", "gpu", "cpu_millicores", "memory_bytes", "capacity_percent"]
    search_fields = ["plan__name"]


@admin.register(QuotaPlanStorage)
class QuotaPlanStorageAdmin(ReadOnlyAdmin):
    """Part of a plan; edited through /api/v1/plans/."""

    list_display = ["plan", "cluster", "space_quota_bytes", "file_quota"]
    search_fields = ["plan__name"]


@admin.register(AllocationGrant)
class AllocationGrantAdmin(ReadOnlyAdmin):
    """Time-bound grants: made by an allocation change with an end time, ended by beat; ended now
    or kept on the tenant's Resources tab or through /api/v1/allocation-grants/."""

    list_display = ["allocation", "ends_at", "state", "granted_by_name", "status"]
    list_filter = ["state"]
    search_fields = ["tenant__name_path"]
