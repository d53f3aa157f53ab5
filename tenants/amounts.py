"""The resources an allocation counts, in one table: the API's name, the column, how to show it.

Kubernetes pools count GPUs, CPU and memory (None = unlimited); YARN pools give a capacity and a
maximum capacity in percent of the parent queue.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from tenants import quantities


@dataclass(frozen=True)
class Resource:
    name: str  # as the API, forms and messages say it
    field: str  # the model column
    label: str
    parse: Callable[[object], int]
    format: Callable[[int | None], str | int | None]
    human: Callable[[int | None], str]
    # What refusals and "left" hints say: exact, or rounded down beside the exact figure.
    exact: Callable[[int | None], str] | None = None

    def exactly(self, value: int | None) -> str:
        return (self.exact or self.human)(value)


def _gpus_human(value: int | None) -> str:
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
