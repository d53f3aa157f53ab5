"""API fuzzing: schemathesis reads our OpenAPI document and sends generated requests, valid and
invalid, to every operation of the API, in-process through the WSGI application. No answer may be a
5xx, and every answer must be one the document describes: a documented status code, its content
type, a body of its schema, its headers.

Requests are made as a platform admin and as a tenant admin with real tokens, against a seeded world
(both source documents' trees, an NFS share, volumes, HDFS directories, a plan, connections, usage
and workloads); path ids are drawn from that world's rows half of the time so requests reach real
objects. Bodies of the operations that place storage are also drawn aimed at it: HDFS paths, share
servers and base paths, volume sub-paths with dots, control characters and other tenants' names;
bodies of the writers of user and group names with names a cluster reads as syntax ("*", "a,b",
"x:rwx,default:other:", "system:authenticated"). Each request runs in a savepoint that is rolled
back, so every example starts from the same world, after checking that no directory and no volume
landed where the rules forbid and, for writes of roles, people and connections, that nothing Canopy
would send to a cluster widens an ACL (issue 15).

The default run is small (CI); `CANOPY_LONG_FUZZ=1` runs many more examples per operation.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from provisioning import services as provisioning_services
from quotas import services as quota_services
from quotas.models import Notification, QuotaRequest
from tenants import services
from tenants.models import AllocationGrant, AuditEvent, Membership
from tests.factories import PASSWORD, UserFactory
from tests.provisioning.cluster_acls import widenings
from tests.tenants import builders
from tests.tenants.storage_invariants import assert_storage_in_place
from usage import services as usage_services
from usage.measures import UsageReading, WorkloadReading
from usage.models import Workload

# Every test in a transaction (and the test database set up even when only this module runs).
pytestmark = pytest.mark.django_db

LONG = os.environ.get("CANOPY_LONG_FUZZ", "") not in ("", "0")
EXAMPLES = 100 if LONG else 3


def _closed_port() -> int:
    """A loopback port nothing listens on: connection tests are refused at once, never hang."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The collection in a path ("tenants" in /api/v1/tenants/{id}/...) -> ids of real rows of the world.
REAL_IDS: dict[str, list[int]] = {}


def build_fuzz_world(admin) -> builders.K8sWorld:
    """Both source documents' worlds plus one of everything else an endpoint can show."""
    k8s = builders.build_k8s_world(admin)
    yarn = builders.build_yarn_world(admin)
    gi = builders.GI
    volume = services.volume_create(
        acting_user=admin,
        spec=services.VolumeSpec(
            share=k8s.share,
            sub_path="d1",
            name="department1-public",
            capacity_bytes=100 * gi,
            scope="shared",
            tenants=[k8s.dev1, k8s.dev2],
        ),
    )
    directory = services.storage_create(
        acting_user=admin,
        tenant=yarn.t1,
        spec=services.StorageSpec(cluster=yarn.cluster, space_quota_bytes=10 * gi, file_quota=1000),
    )
    database = services.tenant_service_create(
        acting_user=admin, tenant=yarn.t1, cluster=yarn.cluster, kind="hive_database", name="sales"
    )
    plan = services.plan_create(
        acting_user=admin,
        name="small",
        description="One GPU",
        allocations=[builders.spec(k8s.pool, gpu=1, gpu_burst=2, cpu_millicores=4000, memory_bytes=16 * gi)],
    )
    # Bursts in the answers too: dev1 is guaranteed 1 GPU and may burst to 2.
    services.allocation_set(
        acting_user=admin, tenant=k8s.dev1, spec=builders.spec(k8s.pool, gpu=1, gpu_burst=2)
    )
    # A time-bound grant: dev2 with one GPU less until tomorrow.
    services.allocation_set(
        acting_user=admin,
        tenant=k8s.dev2,
        spec=builders.spec(k8s.pool, gpu=1, cpu_millicores=8000, memory_bytes=60 * gi),
        ends_at=timezone.now() + datetime.timedelta(days=1),
    )
    port = _closed_port()
    provisioning_services.connection_set(
        acting_user=admin,
        cluster=k8s.cluster,
        spec=provisioning_services.ConnectionSpec(
            mode="token", server=f"https://127.0.0.1:{port}", token="not-a-real-token"
        ),
    )
    provisioning_services.hadoop_connection_set(
        acting_user=admin,
        cluster=yarn.cluster,
        spec=provisioning_services.HadoopConnectionSpec(
            rm_urls=f"http://127.0.0.1:{port}", webhdfs_urls=f"http://127.0.0.1:{port}", user="canopy"
        ),
    )
    now = timezone.now()
    for minutes in (10, 5, 0):
        usage_services.usage_record(
            cluster=k8s.cluster,
            time=now - datetime.timedelta(minutes=minutes),
            readings=[
                UsageReading(k8s.dev1.pk, {"gpu_used": 0.5, "gpu_allocated": 1}),
                UsageReading(k8s.dev2.pk, {"gpu_used": 2, "gpu_allocated": 2, "cpu_used_millicores": 1500}),
            ],
            workloads=[
                WorkloadReading(k8s.dev1.pk, "Pod", "dev1", "train-a", "canopy-bob", "running", "bob", gpu=1),
                WorkloadReading(k8s.dev2.pk, "Pod", "dev2", "train-b", "canopy-tom", "pending", "tom", gpu=2),
            ],
        )
    # A quota request (Bob's, for the platform admins to decide) and the admin's notification of it.
    quota_services.quota_request_create(
        acting_user=k8s.bob, tenant=k8s.dev1, pool=k8s.pool, asked={"gpu": 2}, reason="Training runs."
    )
    tenants = [k8s.department1, k8s.dev1, k8s.dev2, yarn.t1, yarn.t2, yarn.t3]
    REAL_IDS.update(
        {
            "clusters": [k8s.cluster.pk, yarn.cluster.pk],
            "kubernetes-connections": [k8s.cluster.pk],
            "hadoop-connections": [yarn.cluster.pk],
            "pools": [k8s.pool.pk, yarn.pool.pk, yarn.highmem.pk],
            "tenants": [t.pk for t in tenants],
            "allocations": [a.pk for t in tenants for a in t.allocations.all()],
            "allocation-grants": list(AllocationGrant.objects.values_list("pk", flat=True)),
            "storage": [directory.pk],
            "tenant-services": [database.pk],
            "volumes": [volume.pk],
            "nfs-shares": [k8s.share.pk],
            "plans": [plan.pk],
            "memberships": list(Membership.objects.values_list("pk", flat=True)),
            "users": [admin.pk, k8s.bob.pk, k8s.people.dept_admin.pk, yarn.a.pk],
            "audit": list(AuditEvent.objects.values_list("pk", flat=True)),
            "workloads": list(Workload.objects.values_list("pk", flat=True)),
            "quota-requests": list(QuotaRequest.objects.values_list("pk", flat=True)),
            "notifications": list(Notification.objects.values_list("pk", flat=True)),
        }
    )
    return k8s


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker) -> builders.K8sWorld:
    """One world for the whole module, in a transaction rolled back at the end (as Django's
    TestCase.setUpTestData does), so the 188 tests do not each rebuild it."""
    with django_db_blocker.unblock(), transaction.atomic():
        admin = UserFactory(username="root-admin", is_staff=True, is_superuser=True)
        yield build_fuzz_world(admin)
        transaction.set_rollback(True)
        REAL_IDS.clear()


@pytest.fixture(scope="module", autouse=True)
def keep_the_connection_across_requests():
    """A server closes the database connection after each request; here that would end the
    module's transaction (Django's test client drops the same two receivers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CONFIG = schemathesis.Config.from_dict(
    {
        # CI always sends the same requests (a failure there is a regression, not luck); the long
        # run explores anew each time and prints the seed of what it finds.
        **({} if LONG else {"seed": 20261101}),
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        # The coverage phase (every boundary and every kind of wrong value of every field, hundreds of
        # requests per operation) only in the long run.
        "phases": {"coverage": {"enabled": LONG}, "stateful": {"enabled": False}},
    }
)
# No 5xx, and every answer as documented. Not schemathesis' positive_data_acceptance: a request the
# schema allows is still refused when the domain says no (an id that does not exist, a pool too
# small), with a documented 400.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
SCHEMA_URL = "/api/schema/?format=json"
APP = WSGIHandler()
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, APP, config=CONFIG)
DOCUMENTED = {
    f"{method.upper()} {path}"
    for path, methods in schema.raw_schema["paths"].items()
    for method in methods
    if method in {"get", "put", "post", "patch", "delete"}
}
FUZZED: dict[str, set[str]] = {"platform-admin": set(), "tenant-admin": set()}

PATH_COLLECTION = re.compile(r"^/api/v1/([^/]+)/\{(\w+)\}")
# A second parameter further down a path names a row of another collection (a share's grant to a tenant).
SECOND_PARAMETER = {"tenant": "tenants"}


@schema.hook
def before_generate_path_parameters(context, strategy):
    """About half of the ids name real rows, so requests reach real objects, not only 404s."""
    match = PATH_COLLECTION.match(context.operation.path)
    if match is None:
        return strategy
    collection, name = match.groups()
    real = {name: st.deferred(lambda: st.sampled_from(REAL_IDS[collection]))}
    for second in re.findall(r"\{(\w+)\}", context.operation.path)[1:]:
        real[second] = st.deferred(lambda second=second: st.sampled_from(REAL_IDS[SECOND_PARAMETER[second]]))
    return st.one_of(st.fixed_dictionaries(real), strategy)


# Issue 15: besides schemathesis' own bodies, bodies aimed at where storage lands: HDFS paths, NFS
# share servers and base paths and volume sub-paths near the world's roots, with the usual tricks
# (dots, doubled and trailing slashes, control characters, encodings, other tenants' names, length).
PATH_PARTS = ["tenant", "t1", "t2", "t3", "etl", "department1", "dev1", "data", "..", ".", ""]
PATH_PARTS += ["%2e%2e", "a#b", "q?op=DELETE", "a:b", "x\n", "a\u200bb", "\u202eb", "d" * 400]
SERVERS = ["nas", "10.0.0.7", "fd00::7", "nas.example.com\n", "nas;reboot", "-nas", "nas:/share", "n" * 254]


def _real(collection: str) -> st.SearchStrategy:
    return st.deferred(lambda: st.sampled_from(REAL_IDS[collection]))


def _paths(*, absolute: bool) -> st.SearchStrategy:
    joined = st.lists(st.sampled_from(PATH_PARTS), max_size=5).map("/".join)
    return joined.map(lambda path: "/" + path) if absolute else joined


def _aimed_bodies(method: str, path: str) -> st.SearchStrategy | None:
    hdfs, sub_paths, servers = _paths(absolute=True), _paths(absolute=False), st.sampled_from(SERVERS)
    volume = {
        "share": _real("nfs-shares"),
        "sub_path": sub_paths,
        "name": st.just("fz"),
        "capacity": st.just("1Gi"),
        "scope": st.just("private"),
        "attachments": st.lists(st.fixed_dictionaries({"tenant": _real("tenants")}), min_size=1, max_size=1),
    }
    share = {"server": servers, "base_path": hdfs}
    bodies = {
        ("POST", "/api/v1/storage/"): {
            "tenant": _real("tenants"),
            "cluster": _real("clusters"),
            "path": hdfs,
        },
        ("POST", "/api/v1/tenants/"): {
            "parent": _real("tenants"),
            "name": st.just("fz"),
            "storage": st.lists(
                st.fixed_dictionaries({"cluster": _real("clusters"), "path": hdfs}), max_size=1
            ),
        },
        ("POST", "/api/v1/volumes/"): volume,
        ("PUT", "/api/v1/volumes/{id}/"): volume,
        ("PATCH", "/api/v1/volumes/{id}/"): {"share": _real("nfs-shares"), "sub_path": sub_paths},
        ("POST", "/api/v1/nfs-shares/"): {"cluster": _real("clusters"), "name": st.just("fz"), **share},
        ("PUT", "/api/v1/nfs-shares/{id}/"): share,
        ("PATCH", "/api/v1/nfs-shares/{id}/"): share,
    }
    fields = bodies.get((method.upper(), path))
    return st.fixed_dictionaries(fields) if fields is not None else None


# Issue 15, point 3: names a cluster reads as syntax, mixed into the bodies of every operation that
# takes a user or group name (the schema says only "a string", so few would be drawn otherwise).
SYNTAX_NAMES = [
    "*",
    " *",
    "devs,default:other::rwx",
    "devs:rwx,default:other:",
    "system:authenticated",
    "a b",
    "x\ny",
]
HOSTILE_NAMES = st.one_of(st.sampled_from(SYNTAX_NAMES), st.sampled_from(SYNTAX_NAMES), st.text(max_size=16))
# Operations whose writes change who is named on a cluster: roles, people, connection settings.
ACL_WRITERS = re.compile(r"^/api/v1/(memberships|users|hadoop-connections|kubernetes-connections)/")


def _named_bodies(method: str, path: str) -> st.SearchStrategy | None:
    """Bodies of the writers of user and group names carrying a drawn name (and a real tenant)."""
    roles = st.sampled_from(["viewer", "member", "admin"])
    tenant = _real("tenants")
    person = {"username": HOSTILE_NAMES}
    bodies = {
        ("POST", "/api/v1/memberships/"): {"tenant": tenant, "group": HOSTILE_NAMES, "role": roles},
        ("POST", "/api/v1/users/"): {**person, "password": st.just(PASSWORD * 2)},
        ("PUT", "/api/v1/users/{id}/"): person,
        ("PATCH", "/api/v1/users/{id}/"): person,
    }
    fields = bodies.get((method.upper(), path))
    return st.fixed_dictionaries(fields) if fields is not None else None


@schema.hook
def before_generate_body(context, strategy):
    """Schemathesis' own bodies, and for the storage and name writers bodies aimed at their rules."""
    method, path = context.operation.method, context.operation.path
    aimed = _aimed_bodies(method, path)
    if aimed is None:
        aimed = _named_bodies(method, path)
    return strategy if aimed is None else st.one_of(strategy, aimed)


@dataclass
class Caller:
    role: str
    headers: dict[str, str]


@pytest.fixture(params=sorted(FUZZED))
def caller(request, fuzz_world: builders.K8sWorld) -> Caller:
    """A platform admin, or department1's admin (who sees only part of the world), with a real token."""
    user = fuzz_world.admin if request.param == "platform-admin" else fuzz_world.people.dept_admin
    # Signed in through the same application (Django's test client would put back the receivers
    # keep_the_connection_across_requests took away).
    signed_in = Client(APP).post(
        "/api/v1/auth/token/", json={"username": user.username, "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    return Caller(request.param, {"Authorization": f"Token {signed_in.json['token']}"})


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@schema.parametrize()
def test_no_operation_answers_a_5xx_or_outside_the_schema(case, caller: Caller):
    # Each request in its own savepoint, rolled back: every example starts from the same world.
    with transaction.atomic():
        response = case.call(headers=caller.headers)
        # Whatever was accepted, no directory or volume landed where it may not be (issue 15).
        assert_storage_in_place()
        # Whatever a write of names, roles or cluster settings accepted, what Canopy would send to
        # the clusters names no one the database gives no role there (issue 15, point 3).
        widened = (
            widenings() if case.method.upper() != "GET" and ACL_WRITERS.match(case.operation.path) else []
        )
        transaction.set_rollback(True)
    FUZZED[caller.role].add(case.operation.label)
    case.validate_response(response, headers=caller.headers, checks=CHECKS)
    assert widened == [], f"{case.method} {case.formatted_path}: {widened}"


@pytest.mark.parametrize("name", SYNTAX_NAMES)
def test_every_name_writer_refuses_cluster_syntax_as_documented_and_widens_nothing(name, fuzz_world):
    """The drawn examples above are few in CI: each of these names, to each writer of names, as the
    platform admin (who may grant on the Hadoop tenants, where a group "*" alone would be everyone)."""
    token = Client(APP).post("/api/v1/auth/token/", json={"username": "root-admin", "password": PASSWORD})
    headers = {"Authorization": f"Token {token.json['token']}"}
    hadoop_tenant, person = REAL_IDS["tenants"][-1], REAL_IDS["users"][1]
    calls = [
        ("POST", "/api/v1/memberships/", "/api/v1/memberships/", {"tenant": hadoop_tenant, "group": name}),
        ("POST", "/api/v1/users/", "/api/v1/users/", {"username": name, "password": PASSWORD * 2}),
        ("PATCH", "/api/v1/users/{id}/", f"/api/v1/users/{person}/", {"username": name}),
    ]
    for method, template, path, body in calls:
        with transaction.atomic():
            response = Client(APP).open(path, method=method, json=body, headers=headers)
            widened = widenings()
            transaction.set_rollback(True)
        assert response.status_code == 400, (method, path, response.text)
        operation = schema[template][method]
        operation.validate_response(response)
        assert widened == [], (method, path, widened)


def test_the_document_is_valid_openapi_and_every_operation_was_fuzzed_for_each_caller():
    """Runs after the fuzz tests above (pytest keeps the file's order)."""
    schema.validate()  # against the OpenAPI 3 meta-schema
    assert schema.raw_schema["openapi"].startswith("3.")
    operations = [result.ok().label for result in schema.get_all_operations()]
    # 100, and issue 19: the showback (GET, prices GET and PUT), the idle-quota hints (GET), quota
    # requests (list, ask, read, decide, withdraw), the inbox (list, read, mark read, mark all read)
    # and the time-bound grants (list, read, end, cancel).
    assert len(operations) == len(DOCUMENTED) == 117
    assert set(operations) == DOCUMENTED
    assert FUZZED == {"platform-admin": DOCUMENTED, "tenant-admin": DOCUMENTED}
