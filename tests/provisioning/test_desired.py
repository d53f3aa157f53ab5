"""The pure desired state: the Arena document's objects, names, quotas, defaults, volumes; every
rendered object valid for the pinned Kubernetes version."""

from __future__ import annotations

import kubernetes_validate
import pytest

from provisioning.desired.kubernetes import (
    ClusterSettings,
    Quota,
    Subject,
    TenantState,
    VolumeClaim,
    namespace_name,
    persistent_volume_name,
    role_rules,
    service_account_name,
    tenant_objects,
)
from tenants.quantities import parse_memory_bytes

GI = parse_memory_bytes("1Gi")
CLUSTER = ClusterSettings(name="gpu-cluster")
NAS = dict(share="department1-nas", server="nas.example", base_path="/share")
SHARED = dict(volume_name="department1-public", sub_path="department1", **NAS)


def private(name: str, sub_path: str) -> VolumeClaim:
    return VolumeClaim(
        claim_name=name,
        volume_name=name,
        sub_path=sub_path,
        capacity_bytes=10 * GI,
        access_mode="ReadWriteMany",
        shared=False,
        **NAS,
    )


def dev1(**overrides) -> TenantState:
    values = dict(
        tenant_id=11,
        path="dev1",
        level=1,
        namespace="dev1",
        quota=Quota(gpu=1),
        subjects=(Subject("bob", "member"),),
        claims=(
            private("dev1-public", "dev1"),
            VolumeClaim(
                "department1-public-dev1",
                capacity_bytes=10 * GI,
                access_mode="ReadWriteMany",
                shared=True,
                **SHARED,
            ),
        ),
    )
    return TenantState(**{**values, **overrides})


def dev2(**overrides) -> TenantState:
    values = dict(
        tenant_id=12,
        path="dev2",
        level=1,
        namespace="dev2",
        quota=Quota(gpu=2, cpu_millicores=8000, memory_bytes=60 * GI),
        subjects=(Subject("tom", "member"),),
        claims=(
            private("dev2-public", "dev2"),
            VolumeClaim(
                "department1-public-dev2",
                capacity_bytes=10 * GI,
                access_mode="ReadWriteMany",
                shared=True,
                **SHARED,
            ),
        ),
    )
    return TenantState(**{**values, **overrides})


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    [obj] = by_kind(objects, kind)
    return obj


def test_arena_dev1_gets_only_the_gpu_key_and_no_limit_range():
    objects = tenant_objects(CLUSTER, dev1())
    assert one(objects, "Namespace")["metadata"]["name"] == "dev1"
    assert [o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")] == ["bob"]
    assert one(objects, "ResourceQuota")["spec"]["hard"] == {"requests.nvidia.com/gpu": "1"}
    # CPU and memory are unlimited, so pods need not name them: no defaults are imposed.
    assert by_kind(objects, "LimitRange") == []


def test_arena_dev2_quota_and_defaults_inside_it():
    objects = tenant_objects(CLUSTER, dev2())
    assert one(objects, "ResourceQuota")["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "2",
        "requests.cpu": "8",
        "limits.cpu": "8",
        "requests.memory": "60Gi",
        "limits.memory": "60Gi",
    }
    assert one(objects, "LimitRange")["spec"]["limits"] == [
        {
            "type": "Container",
            "default": {"cpu": "1", "memory": "1Gi"},
            "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
        }
    ]


def test_defaults_never_exceed_a_small_quota():
    objects = tenant_objects(CLUSTER, dev2(quota=Quota(cpu_millicores=500, memory_bytes=512 * 2**20)))
    limits = one(objects, "LimitRange")["spec"]["limits"][0]
    assert limits["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert limits["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}


def test_shared_volume_is_one_pv_and_pvc_per_tenant_on_the_same_directory():
    pvs = by_kind(tenant_objects(CLUSTER, dev1()), "PersistentVolume") + by_kind(
        tenant_objects(CLUSTER, dev2()), "PersistentVolume"
    )
    assert sorted(pv["metadata"]["name"] for pv in pvs) == [
        "canopy-dev1-department1-public-dev1",
        "canopy-dev1-dev1-public",
        "canopy-dev2-department1-public-dev2",
        "canopy-dev2-dev2-public",
    ]
    shared = {pv["spec"]["nfs"]["path"] for pv in pvs if "department1" in pv["metadata"]["name"]}
    privates = {pv["spec"]["nfs"]["path"] for pv in pvs if "department1" not in pv["metadata"]["name"]}
    assert shared == {"/share/department1"} and privates == {"/share/dev1", "/share/dev2"}
    for pv in pvs:
        # The server and the base path are the share's, which names itself on the PV.
        assert pv["spec"]["nfs"]["server"] == "nas.example"
        assert pv["metadata"]["annotations"]["canopy.io/nfs-share"] == "department1-nas"
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["claimRef"]["namespace"] in ("dev1", "dev2")
    claims = by_kind(tenant_objects(CLUSTER, dev1()), "PersistentVolumeClaim")
    assert {c["metadata"]["name"]: c["spec"]["volumeName"] for c in claims} == {
        "department1-public-dev1": "canopy-dev1-department1-public-dev1",
        "dev1-public": "canopy-dev1-dev1-public",
    }


def test_roles_and_bindings_follow_memberships():
    state = dev1(
        subjects=(
            Subject("bob", "member"),
            Subject("dev1-viewer", "viewer"),
            Subject("dept-admin", "admin", inherited_from="department1"),
        )
    )
    objects = tenant_objects(CLUSTER, state)
    assert [r["metadata"]["name"] for r in by_kind(objects, "Role")] == [
        "canopy-admin",
        "canopy-member",
        "canopy-viewer",
    ]
    bindings = {
        b["metadata"]["name"]: [s["name"] for s in b["subjects"]] for b in by_kind(objects, "RoleBinding")
    }
    assert bindings == {
        "canopy-admin": ["dept-admin"],
        "canopy-member": ["bob"],
        "canopy-viewer": ["dev1-viewer"],
    }


def test_member_role_manages_workloads_and_kubeflow_jobs_viewer_only_reads():
    member = {
        (g, r): set(rule["verbs"])
        for rule in role_rules("member")
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    for resource in ("pods", "services", "configmaps", "secrets", "persistentvolumeclaims"):
        assert "create" in member[("", resource)]
    assert "create" in member[("", "pods/exec")] and member[("", "pods/log")] == {"get", "list", "watch"}
    assert "create" in member[("apps", "deployments")] and "create" in member[("batch", "jobs")]
    for job in ("tfjobs", "pytorchjobs", "mpijobs"):
        assert "delete" in member[("kubeflow.org", job)]
    assert ("rbac.authorization.k8s.io", "rolebindings") not in member
    admin = {(g, r) for rule in role_rules("admin") for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("rbac.authorization.k8s.io", "rolebindings") in admin
    viewer = [rule for rule in role_rules("viewer")]
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in viewer)
    assert not any("secrets" in rule["resources"] or "pods/exec" in rule["resources"] for rule in viewer)


def test_labels_say_path_level_parent_and_who_manages():
    namespace = one(tenant_objects(CLUSTER, dev1(path="department1/dev1", level=2)), "Namespace")
    assert namespace["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "canopy",
        "canopy.io/tenant-id": "11",
        "canopy.io/tenant": "department1.dev1",
        "canopy.io/tenant-level": "2",
        "canopy.io/parent": "department1",
    }
    assert namespace["metadata"]["annotations"]["canopy.io/tenant-path"] == "department1/dev1"
    for obj in tenant_objects(CLUSTER, dev1()):
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "canopy"
    assert "canopy.io/parent" not in one(tenant_objects(CLUSTER, dev1()), "Namespace")["metadata"]["labels"]


def test_network_policy_only_when_the_cluster_asks_and_suspension_admits_no_pods():
    assert by_kind(tenant_objects(CLUSTER, dev1()), "NetworkPolicy") == []
    isolated = tenant_objects(ClusterSettings(name="c", network_policy=True), dev1())
    policy = one(isolated, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress"]
    assert one(tenant_objects(CLUSTER, dev1(suspended=True)), "ResourceQuota")["spec"]["hard"]["pods"] == "0"
    # Unlimited everything and not suspended: no quota at all.
    assert by_kind(tenant_objects(CLUSTER, dev1(quota=Quota())), "ResourceQuota") == []


@pytest.mark.parametrize(
    "path,expected",
    [
        ("dev1", "dev1"),
        ("department1/dev1", "department1-dev1"),
        ("default", "canopy-default"),
        ("kube-system", "canopy-kube-system"),
    ],
)
def test_namespace_names_come_from_the_path(path, expected):
    assert namespace_name(path) == expected


def test_long_paths_keep_a_prefix_and_a_hash_and_stay_dns_labels():
    long_a = "/".join(["a" * 30] * 4)
    long_b = "/".join(["a" * 30] * 3 + ["b" * 30])
    name_a, name_b = namespace_name(long_a), namespace_name(long_b)
    assert len(name_a) <= 63 and len(name_b) <= 63 and name_a != name_b
    assert name_a == namespace_name(long_a)  # stable


@pytest.mark.parametrize(
    "username,expected",
    [("bob", "bob"), ("tom", "tom"), ("Bob", None), ("bob@example.com", None), ("default", None)],
)
def test_service_account_names_from_usernames(username, expected):
    name = service_account_name(username)
    if expected:
        assert name == expected
    else:
        assert name != username and len(name) <= 63
        assert name == name.lower() and name[0].isalnum() and name[-1].isalnum()
    assert service_account_name("Bob") != service_account_name("bob")


def test_pv_names_are_cluster_unique_per_namespace():
    assert persistent_volume_name("dev1", "data") != persistent_volume_name("dev2", "data")


@pytest.mark.parametrize(
    "state",
    [
        dev1(),
        dev2(),
        dev1(suspended=True, path="department1/dev1", level=2),
        dev2(subjects=(Subject("Bob@Example.com", "admin", "department1"), Subject("tom", "viewer"))),
    ],
)
@pytest.mark.parametrize("network_policy", [False, True])
def test_every_rendered_object_is_valid_for_kubernetes_1_37(state, network_policy):
    for obj in tenant_objects(ClusterSettings(name="c", network_policy=network_policy), state):
        kubernetes_validate.validate(obj, "1.37", strict=True)


def test_the_deploy_manifests_are_valid_for_kubernetes_1_37():
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "deploy" / "clusterrole.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    assert {d["kind"] for d in documents} == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    for document in documents:
        kubernetes_validate.validate(document, "1.37", strict=True)
