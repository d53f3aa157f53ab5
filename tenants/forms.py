"""Console forms. They only parse input (quantities such as "60Gi") into service arguments; every rule
is checked by `tenants.services`, whose refusals the views put back on the matching fields."""

from __future__ import annotations

import datetime
import json
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants import labels, quantities, services
from tenants.amounts import BURST_NOT_UNLIMITED, KUBERNETES_RESOURCES, RESOURCE_BY_NAME, Resource
from tenants.models import Cluster, Membership, QuotaPlan, ResourcePool, Tenant


class AsciiDigitsMixin:
    """Django's number fields take digits of any script (int("١٢") is 12); Canopy's numbers, like
    Kubernetes quantities, are written with ASCII digits."""

    what = "a number"
    examples = "8, 40, 12.5"

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            refusal = quantities.non_ascii_refusal(value, self.what, self.examples)
            if refusal:
                raise ValidationError(refusal, code="non_ascii")
        return super().to_python(value)  # type: ignore[misc]


class AsciiIntegerField(AsciiDigitsMixin, forms.IntegerField):
    pass


class AsciiDecimalField(AsciiDigitsMixin, forms.DecimalField):
    pass


class PercentFormField(AsciiDecimalField):
    what = "a percentage"
    examples = "40, 12.5"


def _quantity_field(resource_name: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=32,
        # The quantity parser trims ASCII white space only; Django's strip would also drop a no-break
        # or ideographic space and let "\u30008" pass as "8".
        strip=False,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={"placeholder": "unlimited", "autocomplete": "off", "inputmode": "text"}
        ),
        label={"gpu": "GPUs", "cpu": "CPU", "memory": "Memory"}[resource_name],
    )


class PoolFieldsMixin:
    """One fieldset per pool: a checkbox to allocate there, then GPU/CPU/memory (Kubernetes; empty is
    unlimited) or capacity and maximum capacity in percent (YARN)."""

    pools: list[ResourcePool]
    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]

    def add_pool_fields(
        self,
        pools: list[ResourcePool],
        hints: dict[int, dict[str, str]],
        current: dict[int, Any] | None = None,
    ) -> None:
        self.pools = pools
        current = current or {}
        for pool in pools:
            allocation = current.get(pool.pk)
            hint = hints.get(pool.pk, {})
            self.fields[f"pool_{pool.pk}_on"] = forms.BooleanField(
                required=False, label=f"Allocate in {pool}", initial=allocation is not None
            )
            if pool.is_yarn:
                self.fields[f"pool_{pool.pk}_capacity"] = PercentFormField(
                    required=False,
                    min_value=0,
                    max_value=100,
                    decimal_places=2,
                    label="Capacity %",
                    help_text=hint.get("capacity", ""),
                    initial=allocation.capacity_percent if allocation else None,
                )
                self.fields[f"pool_{pool.pk}_max_capacity"] = PercentFormField(
                    required=False,
                    min_value=0,
                    max_value=100,
                    decimal_places=2,
                    label="Maximum capacity %",
                    help_text="Empty: 100 %",
                    initial=allocation.max_capacity_percent if allocation else None,
                )
                continue
            for resource in KUBERNETES_RESOURCES:
                field = _quantity_field(resource.name, hint.get(resource.name, ""))
                if allocation is not None:
                    field.initial = resource.format(getattr(allocation, resource.field)) or ""
                self.fields[f"pool_{pool.pk}_{resource.name}"] = field
                # Beside its guaranteed amount: the most it may use by borrowing (empty: no burst).
                burst = _quantity_field(resource.name, hint.get(resource.burst_name, ""))
                burst.label = f"{burst.label} may burst to"
                burst.widget.attrs["placeholder"] = "no burst"
                if allocation is not None:
                    burst.initial = resource.format(getattr(allocation, resource.burst_field)) or ""
                self.fields[f"pool_{pool.pk}_{resource.burst_name}"] = burst

    def pool_fieldsets(self) -> list[dict[str, Any]]:
        form: forms.Form = self  # type: ignore[assignment]
        out = []
        for pool in self.pools:
            names = [
                name
                for name in form.fields
                if name.startswith(f"pool_{pool.pk}_") and not name.endswith("_on")
            ]
            out.append(
                {"pool": pool, "toggle": form[f"pool_{pool.pk}_on"], "fields": [form[name] for name in names]}
            )
        return out

    def clean_pool_fields(self) -> list[services.AllocationSpec]:
        """Parse each chosen pool's amounts; a bad quantity is an error on its own field."""
        specs = []
        for pool in self.pools:
            if not self.cleaned_data.get(f"pool_{pool.pk}_on"):
                continue
            if pool.is_yarn:
                specs.append(
                    services.AllocationSpec(
                        pool=pool,
                        capacity_percent=self.cleaned_data.get(f"pool_{pool.pk}_capacity"),
                        max_capacity_percent=self.cleaned_data.get(f"pool_{pool.pk}_max_capacity"),
                    )
                )
                continue
            amounts: dict[str, Any] = {}  # columns: int or None
            for resource in KUBERNETES_RESOURCES:
                amounts[resource.field] = self._amount(pool, resource, burst=False)
                amounts[resource.burst_field] = self._amount(pool, resource, burst=True)
            specs.append(services.AllocationSpec(pool=pool, **amounts))
        return specs

    def _amount(self, pool: ResourcePool, resource: Resource, *, burst: bool) -> int | None:
        """One amount as entered: a guaranteed amount (empty or "unlimited": None, unlimited) or a
        burst (empty: None, no burst). A bad quantity is an error on its own field."""
        form: forms.Form = self  # type: ignore[assignment]
        name = f"pool_{pool.pk}_{resource.burst_name if burst else resource.name}"
        raw = self.cleaned_data.get(name) or ""
        if quantities.is_unlimited(raw):
            if burst and raw.strip(quantities.ASCII_SPACE):
                form.add_error(name, BURST_NOT_UNLIMITED)
            return None
        try:
            return resource.parse(raw)
        except quantities.QuantityError as exc:
            form.add_error(name, str(exc))
            return None

    def pool_error_field(self, pool: ResourcePool, key: str) -> str | None:
        """The form field for a service error key about `pool` ('gpu', 'capacity', ...)."""
        name = f"pool_{pool.pk}_{key}"
        form: forms.Form = self  # type: ignore[assignment]
        return name if name in form.fields else f"pool_{pool.pk}_on"


class StorageFieldsMixin:
    """One fieldset per Hadoop cluster: an HDFS directory with a space quota (quantity, e.g. 10Ti)
    and a file quota; empty means unlimited."""

    hadoop_clusters: list[Cluster]
    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]

    def add_storage_fields(self, clusters: list[Cluster], current: dict[int, Any] | None = None) -> None:
        self.hadoop_clusters = clusters
        current = current or {}
        for cluster in clusters:
            entry = current.get(cluster.pk)
            self.fields[f"hdfs_{cluster.pk}_on"] = forms.BooleanField(
                required=False, label=f"HDFS directory on {cluster}", initial=entry is not None
            )
            space = _quantity_field("memory", "e.g. 10Ti; empty: unlimited")
            space.label = "Space quota"
            space.initial = quantities.format_memory(entry.space_quota_bytes) if entry else None
            self.fields[f"hdfs_{cluster.pk}_space"] = space
            self.fields[f"hdfs_{cluster.pk}_files"] = AsciiIntegerField(
                required=False,
                min_value=0,
                max_value=quantities.MAX_BIGINT,
                label="File quota",
                help_text="Files and directories; empty: unlimited",
                initial=entry.file_quota if entry else None,
            )

    def storage_fieldsets(self) -> list[dict[str, Any]]:
        form: forms.Form = self  # type: ignore[assignment]
        return [
            {
                "cluster": c,
                "toggle": form[f"hdfs_{c.pk}_on"],
                "fields": [form[f"hdfs_{c.pk}_space"], form[f"hdfs_{c.pk}_files"]],
            }
            for c in self.hadoop_clusters
        ]

    def storage_specs(self) -> list[services.StorageSpec]:
        form: forms.Form = self  # type: ignore[assignment]
        specs = []
        for cluster in self.hadoop_clusters:
            if not self.cleaned_data.get(f"hdfs_{cluster.pk}_on"):
                continue
            raw = self.cleaned_data.get(f"hdfs_{cluster.pk}_space") or ""
            space = None
            if not quantities.is_unlimited(raw):
                try:
                    space = quantities.parse_memory_bytes(raw)
                except quantities.QuantityError as exc:
                    form.add_error(f"hdfs_{cluster.pk}_space", str(exc))
            specs.append(
                services.StorageSpec(
                    cluster=cluster,
                    space_quota_bytes=space,
                    file_quota=self.cleaned_data.get(f"hdfs_{cluster.pk}_files"),
                )
            )
        return specs


class TenantCreateForm(StorageFieldsMixin, PoolFieldsMixin, forms.Form):
    parent = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), required=False, empty_label="— level-1 tenant —"
    )
    name = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and '-'; names the namespace and the queue.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    display_name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    is_leaf = forms.TypedChoiceField(
        label="Type",
        choices=[
            ("false", "Non-leaf: may have sub-tenants"),
            ("true", "Leaf: uses resources, no sub-tenants"),
        ],
        coerce=lambda value: value == "true",
        initial="false",
        widget=forms.RadioSelect,
    )
    plan = forms.ModelChoiceField(
        queryset=QuotaPlan.objects.all(),
        required=False,
        empty_label="— none —",
        help_text="Copies the plan's allocations; amounts below override it.",
    )

    def __init__(
        self,
        *args: Any,
        parents: Any,
        pools: list[ResourcePool],
        hints: dict[int, dict[str, str]],
        hadoop_clusters: list[Cluster],
        level1_allowed: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        parent_field = cast(forms.ModelChoiceField, self.fields["parent"])
        parent_field.queryset = parents
        # Only platform admins create level-1 tenants; everyone else picks a parent they administer.
        self.fields["parent"].required = not level1_allowed
        if not level1_allowed:
            parent_field.empty_label = None
        self.add_pool_fields(pools, hints)
        self.add_storage_fields(hadoop_clusters)


class TenantMoveForm(forms.Form):
    """Where a tenant goes: one of `targets` (`selectors.tenant_move_targets`) or, for platform
    admins (`level1_allowed`), level 1. Nothing is chosen at first."""

    LEVEL_1 = "level-1"

    parent = forms.ChoiceField(label="New parent")

    def __init__(self, *args: Any, targets: list[Tenant], level1_allowed: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets = {str(tenant.pk): tenant for tenant in targets}
        choices = [("", "— choose where it goes —")]
        if level1_allowed:
            choices.append((self.LEVEL_1, "Level 1 (no parent)"))
        choices += [(pk, tenant.name_path) for pk, tenant in self.targets.items()]
        self.choices = choices
        cast(forms.ChoiceField, self.fields["parent"]).choices = choices

    def has_choices(self) -> bool:
        """Somewhere to go: a tenant, or level 1."""
        return len(self.choices) > 1

    def clean_parent(self) -> Tenant | None:
        value = self.cleaned_data["parent"]
        return None if value == self.LEVEL_1 else self.targets[value]


UNTIL_FORMAT = "%Y-%m-%dT%H:%M"


class AllocationsForm(PoolFieldsMixin, forms.Form):
    """A tenant's allocations; each pool's change may hold only *until* a time (a time-bound grant:
    then back to the amounts before). `grants`: each pool's open grant, whose end time shows."""

    def __init__(
        self,
        *args: Any,
        pools: list[ResourcePool],
        hints: dict[int, dict[str, str]],
        current: dict[int, Any],
        grants: dict[int, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.add_pool_fields(pools, hints, current)
        self.grants = {pool_id: grant for pool_id, grant in (grants or {}).items() if grant.is_open}
        for pool in pools:
            grant = self.grants.get(pool.pk)
            self.fields[f"pool_{pool.pk}_ends_at"] = forms.DateTimeField(
                required=False,
                label="Until",
                help_text="Optional: this change holds until then, then goes back to the amounts before.",
                input_formats=[UNTIL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=UNTIL_FORMAT),
                initial=timezone.localtime(grant.ends_at) if grant else None,
            )

    def ends_at_of(self, pool: ResourcePool) -> datetime.datetime | None:
        """The end time asked for `pool`'s change. The open grant's own end time, shown to the
        minute, stands for itself (saved unchanged, the grant goes on; once passed, it is no new one)."""
        ends_at = self.cleaned_data.get(f"pool_{pool.pk}_ends_at")
        grant = self.grants.get(pool.pk)
        if ends_at is not None and grant is not None:
            shown = timezone.localtime(grant.ends_at).replace(second=0, microsecond=0)
            if ends_at == shown:
                return grant.ends_at if grant.ends_at > timezone.now() else None
        return ends_at


class PlanForm(StorageFieldsMixin, PoolFieldsMixin, forms.Form):
    """A quota plan: the same per-pool amounts and HDFS quotas a tenant form takes."""

    name = forms.CharField(
        max_length=63, help_text="e.g. gpu-small", widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    description = forms.CharField(required=False, max_length=500)

    def __init__(
        self,
        *args: Any,
        pools: list[ResourcePool],
        hadoop_clusters: list[Cluster],
        plan: QuotaPlan | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        allocations = {row.pool_id: row for row in plan.allocations.all()} if plan else {}
        storage = {row.cluster_id: row for row in plan.storage.all()} if plan else {}
        self.add_pool_fields(pools, {}, allocations)
        self.add_storage_fields(hadoop_clusters, storage)
        if plan is not None:
            self.fields["name"].initial = plan.name
            self.fields["name"].disabled = True
            self.fields["description"].initial = plan.description


class PlanChoiceForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=QuotaPlan.objects.all(), empty_label=None)


MEMBER_KINDS = ("user", "group")


class MembershipForm(forms.Form):
    """A role for a user or a group, picked on the Members tab as "user:<name>" or "group:<name>"
    (the picker offers the people and groups the reader may see, and a name as typed: a directory
    group may be granted before anyone of it signs in). A refused name stays in the picker as typed."""

    member = forms.CharField(
        label="User or group",
        max_length=160,
        error_messages={"required": "Pick a user or a group."},
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def clean_member(self) -> tuple[str, str]:
        kind, separator, name = self.cleaned_data["member"].partition(":")
        if not separator or kind not in MEMBER_KINDS or not name.strip():
            raise ValidationError("Pick a user or a group (type a name, then pick “user” or “group”).")
        return kind, name.strip()

    def picked_option(self) -> dict[str, Any] | None:
        """What was sent, valid or not, as the picker shows an option (so a refused name stays in
        it as typed); None when nothing was."""
        raw = (self.data.get(self.add_prefix("member")) or "") if self.is_bound else ""
        if not raw:
            return None
        kind, separator, name = raw.partition(":")
        option = {
            "value": raw,
            "kind": kind if separator and kind in MEMBER_KINDS else "",
            "name": name if separator else raw,
            "full_name": "",
            "typed": True,
        }
        return {**option, "data": json.dumps(option)}


class MemberSearchForm(forms.Form):
    """The Members tab's picker asking for names: what was typed so far."""

    q = forms.CharField(required=False, max_length=150)


class GrantForm(forms.Form):
    username = forms.CharField(max_length=150)
    tenant = forms.CharField(max_length=Tenant.NAME_PATH_MAX, help_text="Its path, e.g. department1/dev1")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    is_staff = forms.BooleanField(required=False, label="Platform admin")


class PasswordResetForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), label="New password"
    )


class ClusterForm(forms.Form):
    """A new cluster (name and kind are fixed once it exists) or a cluster's description."""

    name = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and '-', e.g. gpu-cluster; fixed once created.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    kind = forms.ChoiceField(choices=Cluster.Kind.choices, widget=forms.RadioSelect, label="Kind")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, cluster: Cluster | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if cluster is not None:
            for name in ("name", "kind"):
                self.fields[name].disabled = True
                self.fields[name].initial = getattr(cluster, name)
            self.fields["name"].help_text = ""
            self.fields["description"].initial = cluster.description


# A pool's capacities: the form's field (the API's name), the service's argument, the resource.
POOL_CAPACITIES = (
    ("gpu_capacity", "gpu_capacity", "gpu"),
    ("cpu_capacity", "cpu_capacity_millicores", "cpu"),
    ("memory_capacity", "memory_capacity_bytes", "memory"),
)


class PoolForm(forms.Form):
    """A resource pool in real units: GPUs a count, CPU "8" or "500m" (a YARN pool's whole vCores),
    memory "60Gi". The name is fixed once the pool exists; the node selector is checked by the
    service (a Kubernetes label selector, or a YARN node label)."""

    name = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and '-', e.g. a100; fixed once created.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    node_selector = forms.CharField(
        required=False, max_length=253, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    gpu_capacity = forms.CharField(label="GPUs", max_length=32, strip=False, help_text="A count, e.g. 8")
    cpu_capacity = forms.CharField(
        label="CPU", max_length=32, strip=False, help_text='Cores: "96", or millicores: "500m"'
    )
    memory_capacity = forms.CharField(
        label="Memory", max_length=32, strip=False, help_text='e.g. "60Gi", "1.5Ti", "512Mi"'
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, cluster: Cluster, pool: ResourcePool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster, self.pool = cluster, pool
        for name, column, resource_name in POOL_CAPACITIES:
            resource = RESOURCE_BY_NAME[resource_name]
            self.fields[name].initial = str(resource.format(getattr(pool, column)) if pool else 0)
            self.fields[name].widget.attrs.update({"autocomplete": "off", "inputmode": "text"})
        if cluster.kind == Cluster.Kind.YARN:
            del self.fields["gpu_capacity"]  # YARN pools have no GPUs to allocate
            self.fields["cpu_capacity"].label = "vCores"
            self.fields["cpu_capacity"].help_text = "Whole vCores, e.g. 96"
            self.fields["node_selector"].label = "Node label (partition)"
            self.fields["node_selector"].help_text = f"{labels.YARN_RULE}; empty: the default partition."
        else:
            self.fields["node_selector"].label = "Node selector"
            self.fields[
                "node_selector"
            ].help_text = "key=value labels joined by commas, e.g. gpu=a100; empty: every node."
        if pool is not None:
            self.fields["name"].disabled = True
            self.fields["name"].initial = pool.name
            self.fields["name"].help_text = ""
            self.fields["node_selector"].initial = pool.node_selector
            self.fields["description"].initial = pool.description

    def values(self) -> dict[str, Any]:
        """The service's arguments as typed (a capacity in bytes, millicores or a count); a quantity
        that does not parse is an error on its own field and is left as it was (0 for a new pool),
        so the service still checks everything else."""
        values: dict[str, Any] = {
            name: self.cleaned_data[name]
            for name in ("node_selector", "description")
            if name in self.cleaned_data
        }
        for name, column, resource_name in POOL_CAPACITIES:
            if name not in self.fields or name not in self.cleaned_data:
                continue
            try:
                values[column] = RESOURCE_BY_NAME[resource_name].parse(self.cleaned_data[name])
            except quantities.QuantityError as exc:
                self.add_error(name, str(exc))
        return values


def apply_service_errors(
    form: forms.Form, exc: ValidationError, field_for: dict[str, str] | None = None
) -> None:
    """Put a service's refusal on the form: on the named field where the form has it, else on top."""
    field_for = field_for or {}
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    for key, messages in errors.items():
        name = field_for.get(key, key)
        form.add_error(name if name in form.fields else None, messages)
