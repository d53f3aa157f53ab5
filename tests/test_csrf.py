"""CSRF: every console URL (from the URL resolver: tenants, provisioning, sign-in and sign-out)
refuses a POST without the token, and the same POST with the token, as a form field or as the
X-CSRFToken header htmx sends from the base template, works. The API is CSRF-free only for token
authentication; a session-authenticated API call needs the token. No view is csrf_exempt except
DRF's, which check CSRF themselves for session users."""

from __future__ import annotations

import datetime
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from provisioning import services as provisioning_services
from provisioning.models import KubernetesConnection
from quotas import services as quota_services
from quotas.models import Notification, QuotaRequest
from tenants import services
from tenants.models import (
    AllocationGrant,
    AuditEvent,
    Cluster,
    Membership,
    QuotaPlan,
    ResourcePool,
    Tenant,
    TenantService,
)
from tests.factories import PASSWORD
from tests.tenants.builders import TokenClient
from usage.models import PoolPrice

pytestmark = pytest.mark.django_db

User = get_user_model()


def url_patterns(patterns=None, prefix: str = "", namespace: str | None = None):
    """(route, name, callback) of every URL the resolver knows."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield prefix + str(pattern.pattern), name, pattern.callback


def console_url_names() -> set[str]:
    """Every URL except the Django admin's (CSRF-protected by Django) and the API's (below)."""
    return {name for route, name, _ in url_patterns() if not route.startswith(("admin/", "api/"))}


@dataclass
class Post:
    url: Callable[[Any], str]
    data: Callable[[Any], dict[str, str]]
    status: int  # with the token
    done: Callable[[Any], bool] = lambda w: True  # and what the POST did
    htmx: bool = False  # sent as htmx sends it: token in the X-CSRFToken header


def _plan(w) -> QuotaPlan:
    return QuotaPlan.objects.get(name="gpu-small")


def _hadoop(w) -> Cluster:
    """A Hadoop cluster for the Hive database forms (made once per test)."""
    found = Cluster.objects.filter(name="bigdata").first()
    return found or services.cluster_create(acting_user=w.admin, name="bigdata", kind=Cluster.Kind.YARN)


def _hive_database(w) -> TenantService:
    found = TenantService.objects.filter(name="sales").first()
    return found or services.tenant_service_create(
        acting_user=w.admin, tenant=w.dev2, cluster=_hadoop(w), kind="hive_database", name="sales"
    )


def _grant(w) -> AllocationGrant:
    """dev2's time-bound grant (1 of its 2 GPUs until tomorrow), made once per test."""
    found = AllocationGrant.objects.filter(tenant=w.dev2, state="active").first()
    if found:
        return found
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=services.AllocationSpec(pool=w.pool, gpu=1),
        ends_at=timezone.now() + datetime.timedelta(days=1),
    )
    return AllocationGrant.objects.get(tenant=w.dev2, state="active")


def _connected_cluster_url(w) -> str:
    """The quota engine form's URL, for a cluster with a connection (export: nothing is called)."""
    if not KubernetesConnection.objects.filter(cluster=w.cluster).exists():
        provisioning_services.connection_set(
            acting_user=w.admin, cluster=w.cluster, spec=provisioning_services.ConnectionSpec(mode="export")
        )
    return f"/clusters/{w.cluster.pk}/quota-engine/"


def _quota_request(w, requester=None) -> QuotaRequest:
    """An open quota request for dev1 (Bob's, unless another requester is named)."""
    return quota_services.quota_request_create(
        acting_user=requester or w.bob, tenant=w.dev1, pool=w.pool, asked={"gpu": 2}, reason="Training."
    )


def _bob(w) -> Membership:
    return Membership.objects.get(user=w.bob, tenant=w.dev1)


POSTS: dict[str, Post] = {
    "login": Post(
        lambda w: "/accounts/login/",
        lambda w: {"username": "bob", "password": PASSWORD},
        302,
    ),
    "logout": Post(lambda w: "/accounts/logout/", lambda w: {}, 302),
    "console:tenant_create": Post(
        lambda w: "/tenants/new/",
        lambda w: {"parent": str(w.department1.pk), "name": "dev3", "is_leaf": "true"},
        302,
        lambda w: Tenant.objects.filter(name_path="department1/dev3").exists(),
    ),
    "console:tenant_allocations": Post(
        lambda w: f"/tenants/{w.dev2.pk}/allocations/",
        lambda w: {
            "validate": "1",
            f"pool_{w.pool.pk}_on": "on",
            f"pool_{w.pool.pk}_gpu": "1",
            f"pool_{w.pool.pk}_cpu": "8",
            f"pool_{w.pool.pk}_memory": "60Gi",
        },
        200,
        htmx=True,
    ),
    "console:tenant_plan": Post(
        lambda w: f"/tenants/{w.dev2.pk}/plan/",
        lambda w: {"plan": str(_plan(w).pk)},
        302,
    ),
    "console:tenant_state": Post(
        lambda w: f"/tenants/{w.dev2.pk}/state/",
        lambda w: {"state": "suspended"},
        302,
        lambda w: Tenant.objects.get(pk=w.dev2.pk).state == "suspended",
    ),
    "provisioning:tenant_push": Post(lambda w: f"/tenants/{w.dev2.pk}/push/", lambda w: {}, 302),
    # The move's first POST is its dry run: the answer asks to confirm (or says why not), 200.
    "console:tenant_move": Post(
        lambda w: f"/tenants/{w.dev2.pk}/move/", lambda w: {"parent": str(w.dev1.pk)}, 200
    ),
    "console:tenant_service_add": Post(
        lambda w: f"/tenants/{w.dev2.pk}/services/",
        lambda w: {"cluster": str(_hadoop(w).pk), "kind": "hive_database", "name": "marts"},
        302,
        lambda w: TenantService.objects.filter(tenant=w.dev2, name="marts").exists(),
    ),
    "console:tenant_service_remove": Post(
        lambda w: f"/tenant-services/{_hive_database(w).pk}/remove/",
        lambda w: {},
        302,
        lambda w: not TenantService.objects.filter(name="sales").exists(),
    ),
    "console:tenant_delete": Post(
        lambda w: f"/tenants/{w.dev2.pk}/delete/",
        lambda w: {"confirm": "yes"},
        302,
        lambda w: not Tenant.objects.filter(pk=w.dev2.pk).exists(),
    ),
    "console:membership_add": Post(
        lambda w: f"/tenants/{w.dev2.pk}/members/",
        lambda w: {"member": "user:bob", "role": "viewer"},
        302,
        lambda w: Membership.objects.filter(user=w.bob, tenant=w.dev2, role="viewer").exists(),
    ),
    "console:membership_change": Post(
        lambda w: f"/memberships/{_bob(w).pk}/role/",
        lambda w: {"role": "admin"},
        302,
        lambda w: _bob(w).role == "admin",
    ),
    "console:allocation_grant_end": Post(
        lambda w: f"/allocation-grants/{_grant(w).pk}/end/",
        lambda w: {},
        302,
        lambda w: AllocationGrant.objects.filter(tenant=w.dev2, state="ended").exists(),
    ),
    "console:allocation_grant_cancel": Post(
        lambda w: f"/allocation-grants/{_grant(w).pk}/cancel/",
        lambda w: {},
        302,
        lambda w: AllocationGrant.objects.filter(tenant=w.dev2, state="cancelled").exists(),
    ),
    "console:membership_remove": Post(
        lambda w: f"/memberships/{_bob(w).pk}/remove/",
        lambda w: {},
        302,
        lambda w: not Membership.objects.filter(user=w.bob, tenant=w.dev1).exists(),
    ),
    "provisioning:cluster_test": Post(lambda w: f"/clusters/{w.cluster.pk}/test/", lambda w: {}, 200),
    "console:cluster_create": Post(
        lambda w: "/clusters/new/",
        lambda w: {"name": "gpu2", "kind": "kubernetes"},
        302,
        lambda w: Cluster.objects.filter(name="gpu2").exists(),
    ),
    "console:cluster_edit": Post(
        lambda w: f"/clusters/{w.cluster.pk}/",
        lambda w: {"description": "changed"},
        302,
        lambda w: Cluster.objects.get(pk=w.cluster.pk).description == "changed",
    ),
    "console:cluster_delete": Post(
        lambda w: (
            f"/clusters/{services.cluster_create(acting_user=w.admin, name='spare', kind='yarn').pk}/delete/"
        ),
        lambda w: {},
        302,
        lambda w: not Cluster.objects.filter(name="spare").exists(),
    ),
    "console:pool_create": Post(
        lambda w: f"/clusters/{w.cluster.pk}/pools/new/",
        lambda w: {"name": "a100", "gpu_capacity": "8", "cpu_capacity": "96", "memory_capacity": "60Gi"},
        302,
        lambda w: ResourcePool.objects.filter(name="a100", gpu_capacity=8).exists(),
    ),
    "console:pool_edit": Post(
        lambda w: f"/pools/{w.pool.pk}/",
        lambda w: {"gpu_capacity": "5", "cpu_capacity": "96", "memory_capacity": "1Ti", "node_selector": ""},
        302,
        lambda w: ResourcePool.objects.get(pk=w.pool.pk).gpu_capacity == 5,
    ),
    "console:pool_delete": Post(
        lambda w: (
            f"/pools/{services.pool_create(acting_user=w.admin, cluster=w.cluster, name='spare').pk}/delete/"
        ),
        lambda w: {},
        302,
        lambda w: not ResourcePool.objects.filter(name="spare").exists(),
    ),
    "provisioning:cluster_connection": Post(
        lambda w: f"/clusters/{w.cluster.pk}/connection/",
        lambda w: {"mode": "export", "quota_engine": "resourcequota"},
        302,
        lambda w: KubernetesConnection.objects.get(cluster=w.cluster).mode == "export",
    ),
    "provisioning:cluster_connection_delete": Post(
        lambda w: _connected_cluster_url(w).replace("quota-engine/", "connection/delete/"),
        lambda w: {},
        302,
        lambda w: not KubernetesConnection.objects.filter(cluster=w.cluster).exists(),
    ),
    "provisioning:cluster_quota_engine": Post(
        _connected_cluster_url,
        lambda w: {f"engine-{w.cluster.pk}-quota_engine": "kueue"},
        302,
        lambda w: KubernetesConnection.objects.get(cluster=w.cluster).quota_engine == "kueue",
    ),
    "usage:showback_prices": Post(
        lambda w: "/showback/prices/",
        lambda w: {"currency": "EUR", f"price_{w.pool.pk}_gpu": "2.5"},
        302,
        lambda w: PoolPrice.objects.filter(pool=w.pool, resource="gpu").exists(),
    ),
    "console:plan_create": Post(
        lambda w: "/plans/new/",
        lambda w: {"name": "cpu-only", "description": "CPU only"},
        302,
        lambda w: QuotaPlan.objects.filter(name="cpu-only").exists(),
    ),
    "console:plan_edit": Post(
        lambda w: f"/plans/{_plan(w).pk}/",
        lambda w: {"name": "gpu-small", "description": "changed"},
        302,
        lambda w: _plan(w).description == "changed",
    ),
    "console:user_create": Post(
        lambda w: "/users/new/",
        lambda w: {"username": "newcomer", "password": "A-long-enough-pass-42"},
        302,
        lambda w: User.objects.filter(username="newcomer").exists(),
    ),
    "console:user_password": Post(
        lambda w: f"/users/{w.tom.pk}/password/",
        lambda w: {"password": "A-long-enough-pass-42"},
        302,
        lambda w: User.objects.get(pk=w.tom.pk).check_password("A-long-enough-pass-42"),
    ),
    "console:user_revoke_tokens": Post(
        lambda w: f"/users/{w.tom.pk}/revoke-tokens/",
        lambda w: {},
        302,
        lambda w: AuditEvent.objects.filter(action="CREDENTIALS_REVOKED", target_repr="tom").exists(),
    ),
    "sign_out_everywhere": Post(
        lambda w: "/accounts/sign-out-everywhere/",
        lambda w: {},
        302,
        lambda w: AuditEvent.objects.filter(
            action="CREDENTIALS_REVOKED", target_repr=w.admin.username
        ).exists(),
    ),
    "quotas:request_create": Post(
        lambda w: f"/requests/new/?tenant={w.dev1.pk}",
        lambda w: {"pool": str(w.pool.pk), "resource": "gpu", "amount": "2", "reason": "Training runs."},
        302,
        lambda w: QuotaRequest.objects.filter(tenant=w.dev1, gpu=2).exists(),
    ),
    "quotas:request_decide": Post(
        lambda w: f"/requests/{_quota_request(w).pk}/decide/",
        lambda w: {"decision": "refuse", "comment": "Not now."},
        302,
        lambda w: QuotaRequest.objects.get(tenant=w.dev1).state == "refused",
    ),
    "quotas:request_withdraw": Post(
        lambda w: f"/requests/{_quota_request(w, w.admin).pk}/withdraw/",
        lambda w: {},
        302,
        lambda w: QuotaRequest.objects.get(tenant=w.dev1).state == "withdrawn",
    ),
    "quotas:inbox_read": Post(
        lambda w: "/inbox/read/",
        lambda w: {},
        302,
        lambda w: not Notification.objects.filter(recipient=w.admin, read_at__isnull=True).exists(),
    ),
    "console:user_grant": Post(
        lambda w: "/users/grant/",
        lambda w: {"username": "tom", "tenant": "department1/dev1", "role": "viewer"},
        302,
        lambda w: Membership.objects.filter(user=w.tom, tenant=w.dev1, role="viewer").exists(),
    ),
}
# Pages that only read: a POST is still refused without the token (the middleware guards them all).
READ_ONLY = {
    "console:home": "/",
    "console:tenants": "/tenants/",
    "console:tenant": "/tenants/{dev1}/",
    "console:tenant_tree_children": "/tenants/{dev1}/children/",
    "console:member_choices": "/tenants/{dev1}/members/choices/",
    "usage:tenant_usage_csv": "/tenants/{dev1}/usage.csv",
    "console:pools": "/pools/",
    "console:plans": "/plans/",
    "console:users": "/users/",
    "console:audit": "/audit/",
    "console:audit_csv": "/audit.csv",
    "console:my_access": "/me/",
    "usage:overview": "/overview/",
    "usage:showback": "/showback/",
    "usage:showback_csv": "/showback.csv",
    "usage:showback_pdf": "/showback.pdf",
    "usage:idle_quota": "/idle-quota/",
    "quotas:requests": "/requests/",
    "quotas:request": "/requests/{dev1}/",
    "quotas:inbox": "/inbox/",
    "quotas:inbox_badge": "/inbox/unread/",
    "provisioning:kubeconfig": "/tenants/{dev1}/kubeconfig/{cluster}/",
    "provisioning:kubeconfig_help": "/tenants/{dev1}/kubeconfig/{cluster}/help/",
    "provisioning:hadoop_file": "/clusters/{cluster}/hadoop-files/capacity-scheduler.xml",
    "oidc_authentication_init": "/oidc/authenticate/",
    "oidc_authentication_callback": "/oidc/callback/",
}


def test_every_console_url_is_covered_here():
    assert console_url_names() == set(POSTS) | set(READ_ONLY)


@pytest.fixture
def world(k8s_world):
    services.plan_create(acting_user=k8s_world.admin, name="gpu-small", description="1 GPU")
    return k8s_world


def browser_for(w, name: str) -> Client:
    browser = Client(enforce_csrf_checks=True)
    if name != "login":
        browser.force_login(w.admin)
    return browser


def tokens_of(browser: Client, page: str) -> tuple[str, str]:
    """The token in the page's forms and the one the base template gives htmx (hx-headers)."""
    content = browser.get(page).content.decode()
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', content).group(1)
    hx_headers = re.search(r"<body hx-headers='([^']+)'", content).group(1)
    return form_token, json.loads(html.unescape(hx_headers))["X-CSRFToken"]


def assert_csrf_refusal(response) -> None:
    assert response.status_code == 403
    assert "CSRF verification failed" in response.content.decode()


@pytest.mark.parametrize("name", sorted(POSTS))
def test_a_post_without_the_token_is_refused_and_with_it_works(world, name):
    w, post = world, POSTS[name]
    browser = browser_for(w, name)
    url, data = post.url(w), post.data(w)
    htmx = {"HTTP_HX_REQUEST": "true"} if post.htmx else {}

    assert_csrf_refusal(browser.post(url, data, **htmx))
    assert_csrf_refusal(browser.post(url, {**data, "csrfmiddlewaretoken": "x" * 64}, **htmx))

    form_token, htmx_token = tokens_of(browser, "/accounts/login/" if name == "login" else "/tenants/")
    if post.htmx:
        response = browser.post(url, data, HTTP_X_CSRFTOKEN=htmx_token, **htmx)
    else:
        response = browser.post(url, {**data, "csrfmiddlewaretoken": form_token})
    assert response.status_code == post.status, response.content[:500]
    assert post.done(w)


@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_a_post_to_a_read_only_page_without_the_token_is_refused(world, name):
    url = READ_ONLY[name].format(dev1=world.dev1.pk, cluster=world.cluster.pk)
    assert_csrf_refusal(browser_for(world, name).post(url, {}))


def test_the_htmx_validation_while_typing_passes_with_the_header_from_the_base_template(world):
    browser = browser_for(world, "console:tenant_create")
    _, htmx_token = tokens_of(browser, "/tenants/new/")
    data = {"parent": str(world.department1.pk), "name": "dev3", "is_leaf": "true", "validate": "1"}
    assert_csrf_refusal(browser.post("/tenants/new/", data, HTTP_HX_REQUEST="true"))
    response = browser.post("/tenants/new/", data, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=htmx_token)
    assert response.status_code == 200
    assert not Tenant.objects.filter(name="dev3").exists()  # a validation saves nothing


def test_the_api_needs_the_token_with_a_session_but_not_with_an_api_token(world):
    body = {"parent": world.department1.pk, "name": "dev3"}
    session = Client(enforce_csrf_checks=True)
    session.force_login(world.admin)
    refused = session.post("/api/v1/tenants/", body, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("CSRF Failed")
    assert not Tenant.objects.filter(name="dev3").exists()

    _, htmx_token = tokens_of(session, "/tenants/")
    created = session.post(
        "/api/v1/tenants/", body, content_type="application/json", HTTP_X_CSRFTOKEN=htmx_token
    )
    assert created.status_code == 201, created.content

    # An API token is never sent by a browser on its own: no CSRF token needed.
    with_token = TokenClient(enforce_csrf_checks=True).as_user(world.admin)
    assert with_token.post("/api/v1/tenants/", {**body, "name": "dev4"}, format="json").status_code == 201


def test_no_view_is_csrf_exempt_but_the_apis_which_check_it_for_sessions():
    exempt = [
        (route, callback) for route, _, callback in url_patterns() if getattr(callback, "csrf_exempt", False)
    ]
    assert exempt, "DRF's views are expected here"
    for route, callback in exempt:
        view = getattr(callback, "cls", None)
        assert view is not None and issubclass(view, APIView), route
        authenticators = callback.initkwargs.get("authentication_classes", view.authentication_classes)
        # Either a session is read, and DRF's SessionAuthentication enforces CSRF, or no session is
        # read at all (the token endpoint: user name and password in the body).
        assert not authenticators or any(issubclass(a, SessionAuthentication) for a in authenticators), route
        assert route.startswith("api/"), route
