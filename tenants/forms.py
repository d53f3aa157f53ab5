"""Console forms. They only parse input (quantities such as "60Gi") into service arguments; every rule
is checked by `tenants.services`, whose refusals the views put back on the matching fields."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from tenants import quantities, services
from tenants.amounts import BURST_NOT_UNLIMITED, KUBERNETES_RESOURCES, Resource
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


class AllocationsForm(PoolFieldsMixin, forms.Form):
    def __init__(
        self,
        *args: Any,
        pools: list[ResourcePool],
        hints: dict[int, dict[str, str]],
        current: dict[int, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.add_pool_fields(pools, hints, current)


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


class MembershipForm(forms.Form):
    """A user or a group (by name: a directory group may be granted before anyone of it signs in)."""

    username = forms.CharField(max_length=150, required=False)
    group = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Membership.Role.choices)

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        if bool(data.get("username")) == bool(data.get("group")):
            raise forms.ValidationError("Give a user name or a group.")
        return data


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


def apply_service_errors(
    form: forms.Form, exc: ValidationError, field_for: dict[str, str] | None = None
) -> None:
    """Put a service's refusal on the form: on the named field where the form has it, else on top."""
    field_for = field_for or {}
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    for key, messages in errors.items():
        name = field_for.get(key, key)
        form.add_error(name if name in form.fields else None, messages)
