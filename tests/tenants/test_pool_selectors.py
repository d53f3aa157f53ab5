"""A pool's node selector is what the product can render (issue 15, point 10): on Kubernetes an
equality-based selector (key=value pairs, a pod's nodeSelector map), with apimachinery's key and value
rules; on YARN a node label as YARN's NodeLabelUtil checks it. Refused in pool_create/pool_update with
a field error naming the rule; the API and the Django admin show it. The real kube-apiserver accepts
every selector we accept, and refuses the malformed keys and values we refuse."""

from __future__ import annotations

import pytest
from django.test import Client
from kubernetes import client as k8s
from kubernetes.client import ApiException

from tenants import labels
from tenants.models import ResourcePool

LONG_PREFIX = ".".join(["a" * 63] * 4)[:253]  # 253 characters: the longest DNS subdomain

ACCEPTED = [
    "gpu=a100",
    "gpu=a100,topology.kubernetes.io/zone=eu-1",
    "node-role.kubernetes.io/worker=",
    "example.com/GPU.Model_2=A-100.x",
    f"{'k' * 63}={'v' * 63}",
    f"{LONG_PREFIX}/{'k' * 63}=v",
]
# Refused by us and by the API server alike: malformed keys and values.
MALFORMED = [
    ("-gpu=a100", "label key"),
    ("gpu-=a100", "label key"),
    (f"{'k' * 64}=v", "label key"),
    (f"{LONG_PREFIX}a/k=v", "label key"),
    ("Example.com/gpu=a100", "label key"),
    ("a/b/c=d", "label key"),
    ("/gpu=a100", "label key"),
    ("gpu=-a100", "label value"),
    (f"gpu={'v' * 64}", "label value"),
    ("gpu=a100/x", "label value"),
    ("gpü=a100", "label key"),
]
# Valid Kubernetes selectors that no nodeSelector map can hold: refused by us, by design.
NOT_A_MAP = [
    "gpu",
    "!gpu",
    "gpu!=a100",
    "gpu==a100",
    "gpu in (a100,h100)",
    "gpu notin (t4)",
    "gpu=a100, zone=eu-1",
    "gpu=a100,gpu=h100",
    "gpu=a100,",
]
YARN_ACCEPTED = ["HighMEM", "gpu_a100", "0-label", "x" * 255]
YARN_REFUSED = ["-label", "_label", "high mem", "a.b", "x" * 256, "label*", "*", "a,b", "héllo", " HighMEM"]


@pytest.mark.parametrize("selector", ACCEPTED)
def test_equality_selectors_with_valid_keys_and_values_are_accepted(selector):
    assert labels.node_selector_errors(selector) == []


@pytest.mark.parametrize(("selector", "rule"), MALFORMED)
def test_malformed_keys_and_values_are_refused_naming_the_rule(selector, rule):
    [message] = labels.node_selector_errors(selector)
    assert message.startswith(labels.SELECTOR_RULE) and f"a {rule} is" in message


@pytest.mark.parametrize("selector", NOT_A_MAP)
def test_selectors_a_node_selector_map_cannot_hold_are_refused(selector):
    assert labels.node_selector_errors(selector), selector


@pytest.mark.parametrize("label", YARN_ACCEPTED)
def test_yarn_node_labels_follow_yarns_rule(label):
    assert labels.yarn_node_label_errors(label) == []


@pytest.mark.parametrize("label", YARN_REFUSED)
def test_what_yarn_refuses_as_a_node_label_is_refused(label):
    [message] = labels.yarn_node_label_errors(label)
    assert message.startswith(labels.YARN_RULE)


@pytest.mark.django_db
@pytest.mark.parametrize("selector", ["gpu in (a100)", "-gpu=a100", "gpu=a100,gpu=h100"])
def test_the_api_refuses_a_bad_selector_on_create_and_update(api, k8s_world, selector):
    w = k8s_world
    admin = api.as_user(w.admin)
    response = admin.post(
        "/api/v1/pools/", {"cluster": w.cluster.pk, "name": "a100", "node_selector": selector}, format="json"
    )
    assert response.status_code == 400, response.content
    [message] = response.json()["node_selector"]
    assert message.startswith(labels.SELECTOR_RULE)
    assert not ResourcePool.objects.filter(name="a100").exists()

    response = admin.patch(f"/api/v1/pools/{w.pool.pk}/", {"node_selector": selector}, format="json")
    assert response.status_code == 400 and response.json()["node_selector"][0].startswith(
        labels.SELECTOR_RULE
    )
    assert ResourcePool.objects.get(pk=w.pool.pk).node_selector == ""

    response = admin.post(
        "/api/v1/pools/",
        {"cluster": w.cluster.pk, "name": "a100", "node_selector": "gpu=a100"},
        format="json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_the_api_refuses_a_yarn_label_yarn_would_refuse(api, yarn_world):
    w = yarn_world
    response = api.as_user(w.admin).post(
        "/api/v1/pools/",
        {"cluster": w.cluster.pk, "name": "spaced", "node_selector": "high mem"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["node_selector"] == [f"{labels.YARN_RULE}; 'high mem' is not one."]


@pytest.mark.django_db
def test_the_django_admin_shows_the_rule_on_the_field(k8s_world):
    w = k8s_world
    browser = Client()
    browser.force_login(w.admin)
    response = browser.post(
        "/admin/tenants/resourcepool/add/",
        {
            "cluster": w.cluster.pk,
            "name": "a100",
            "node_selector": "gpu in (a100)",
            "gpu_capacity": "0",
            "cpu_capacity_millicores": "0",
            "memory_capacity_bytes": "0",
        },
    )
    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["node_selector"]
    assert message.startswith(labels.SELECTOR_RULE)
    assert not ResourcePool.objects.filter(name="a100").exists()


# ---------------------------------------------------------------------------------------------
# Against the real kube-apiserver


@pytest.mark.kubernetes
def test_the_api_server_accepts_every_selector_we_accept_as_a_node_selector(kube_cluster):
    with kube_cluster.admin_client() as api:
        core = k8s.CoreV1Api(api)
        for selector in ACCEPTED:
            core.list_node(label_selector=selector)  # a label selector the server parses
            pod = k8s.V1Pod(
                metadata=k8s.V1ObjectMeta(generate_name="selector-check-"),
                spec=k8s.V1PodSpec(
                    containers=[k8s.V1Container(name="c", image="registry.invalid/pause")],
                    node_selector=labels.node_selector_labels(selector),
                ),
            )
            created = core.create_namespaced_pod("default", pod, dry_run="All")
            assert created.spec.node_selector == labels.node_selector_labels(selector)


@pytest.mark.kubernetes
def test_the_api_server_refuses_the_malformed_keys_and_values_we_refuse(kube_cluster):
    with kube_cluster.admin_client() as api:
        core = k8s.CoreV1Api(api)
        for selector, _ in MALFORMED:
            with pytest.raises(ApiException) as refused:
                core.list_node(label_selector=selector)
            assert refused.value.status == 400, selector
