"""The resources an allocation counts, in one table: the API's name, the column, how to show it.

Kubernetes pools count GPUs, CPU and memory (None = unlimited), each guaranteed and optionally a
burst: the most the tenant may use by borrowing what others leave idle (None = no burst: the
guaranteed amount is also the most). YARN pools give a capacity and a maximum capacity in percent
of the parent queue.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tenants import quantities


@dataclass(frozen=True)
class Resource:
    name: str  # as the API, forms and messages say it
    field: str  # the model column
    label: str
    parse: Callable[[object], int]
    format: Callable[[int | None], str | int | None]
    # Amounts are whole (int); a GPU figure of usage may be a fraction (shared GPUs), which only the
    # GPUs' function is given: so Any, not one parameter type for all three.
    human: Callable[[Any], str]
    # What refusals and "left" hints say: exact, or rounded down beside the exact figure.
    exact: Callable[[Any], str] | None = None

    def exactly(self, value: float | None) -> str:
        return (self.exact or self.human)(value)

    @property
    def burst_name(self) -> str:
        """The burst's name in the API, forms and refusals: gpu_burst, cpu_burst, memory_burst."""
        return f"{self.name}_burst"

    @property
    def burst_field(self) -> str:
        """The burst's model column: gpu_burst, cpu_millicores_burst, memory_bytes_burst."""
        return f"{self.field}_burst"


def _gpus_human(value: float | None) -> str:
    return "unlimited" if value is None else f"{value} GPU" + ("" if value == 1 else "s")


def _cpu_human(value: int | None) -> str:
    if value is None:
        return "unlimited"
    return f"{quantities.format_cpu(value)} CPU"


KUBERNETES_RESOURCES: tuple[Resource, ...] = (
    Resource("gpu", "gpu", "GPUs", quantities.parse_count, lambda v: v, _gpus_human),
    Resource(
        "cpu", "cpu_millicores", "CPU", quantities.parse_cpu_millicores, quantities.format_cpu, _cpu_human
    ),
    Resource(
        "memory",
        "memory_bytes",
        "Memory",
        quantities.parse_memory_bytes,
        quantities.format_memory,
        quantities.format_memory_human,
        quantities.format_memory_exact,
    ),
)
RESOURCE_BY_NAME = {resource.name: resource for resource in KUBERNETES_RESOURCES}

# HDFS namespace quotas: a count of files and directories, up to a 64-bit column.
FILES = Resource(
    "files",
    "file_quota",
    "Files",
    quantities.parse_file_count,
    lambda v: v,
    lambda v: "unlimited" if v is None else f"{v} files",
)

POOL_CAPACITY_FIELDS = {
    "gpu": "gpu_capacity",
    "cpu": "cpu_capacity_millicores",
    "memory": "memory_capacity_bytes",
}

YARN_FIELDS = ("capacity_percent", "max_capacity_percent")
HUNDRED = Decimal(100)


def percent_human(value: Decimal | int | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value).normalize():f} %"


BURST_NOT_UNLIMITED = (
    'A burst is a quantity such as 4, 500m or 60Gi, or empty (null) for no burst; "unlimited" is not one.'
)


def maximum_of(guaranteed: int | None, burst: int | None) -> int | None:
    """The most a tenant may use of one resource: its burst, or without one its guaranteed amount
    (None: unlimited)."""
    return guaranteed if burst is None else burst


def burst_phrase(resource: Resource, guaranteed: int | None, burst: int | None) -> str:
    """How pages say an amount: '2 GPUs' without a burst, 'guaranteed 2, may burst to 4 GPUs' with
    one (the unit once when both figures share it: 'guaranteed 1 GPU, may burst to 2 GPUs')."""
    if burst is None:
        return resource.human(guaranteed)
    low, high = resource.human(guaranteed), resource.human(burst)
    low_number, _, low_unit = low.partition(" ")
    if low_unit and high.endswith(f" {low_unit}"):
        low = low_number
    return f"guaranteed {low}, may burst to {high}"


def _no_burst_or(resource: Resource) -> Callable[[int | None], str]:
    return lambda value: "no burst" if value is None else resource.exactly(value)


def _percent(value: Any) -> str:
    return percent_human(None if value is None else Decimal(str(value)))


# Every stored amount a row (or an audit row's snapshot of one) may hold, by its column: how pages say
# it, exactly (an audit row must not round 4294967295 bytes to "4 GiB"). Allocations and plan rows,
# pools' capacities, HDFS quotas, volume capacities.
STORED_AMOUNTS: dict[str, Callable[[Any], str]] = {
    **{resource.field: resource.exactly for resource in KUBERNETES_RESOURCES},
    **{resource.burst_field: _no_burst_or(resource) for resource in KUBERNETES_RESOURCES},
    **{POOL_CAPACITY_FIELDS[resource.name]: resource.exactly for resource in KUBERNETES_RESOURCES},
    **{name: _percent for name in YARN_FIELDS},
    "space_quota_bytes": quantities.format_memory_exact,
    "capacity_bytes": quantities.format_memory_exact,
    FILES.field: FILES.human,
}


def stored_amount_human(column: str, value: Any) -> str | None:
    """`value` of the stored column `column` in units ("8 GiB", "4 CPU", "2 GPUs", "50 %"); None
    when the column holds no amount."""
    show = STORED_AMOUNTS.get(column)
    return show(value) if show is not None else None


# How a time-bound grant's amounts read, the guaranteed amount bare ("6 GPUs"), the others named.
_GRANT_PREFIX = {
    **{resource.burst_field: "may burst to " for resource in KUBERNETES_RESOURCES},
    "capacity_percent": "capacity ",
    "max_capacity_percent": "maximum ",
}


def grant_phrase(granted: dict[str, Any], back_to: dict[str, Any], until: str) -> str:
    """A time-bound grant as pages and the API say it, naming only what it changes: "6 GPUs until
    2026-12-20 18:00, then back to 4 GPUs"."""
    changed = [name for name in STORED_AMOUNTS if name in granted and granted.get(name) != back_to.get(name)]

    def amounts(row: dict[str, Any]) -> str:
        return ", ".join(
            f"{_GRANT_PREFIX.get(name, '')}{stored_amount_human(name, row.get(name))}" for name in changed
        )

    return f"{amounts(granted)} until {until}, then back to {amounts(back_to)}"
