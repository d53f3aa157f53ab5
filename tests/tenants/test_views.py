"""Console pages and fragments go through the same permission helper as the API: someone else's
tenant is a 404, a refused write changes nothing."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from provisioning.models import KubernetesConnection
from tenants import selectors, services
from tenants.models import Allocation, AuditEvent, Membership, QuotaPlan, Tenant
from tests.tenants.builders import GI, spec
from tests.tenants.test_api_permissions import person, state_of_the_world

PEOPLE = ["outsider", "dev2_admin", "dev1_viewer", "bob", "dev1_admin", "dept_admin", "platform"]
SEES_DEV1 = {"dev1_viewer", "bob", "dev1_admin", "dept_admin", "platform"}
MANAGES_DEV1 = {"dept_admin", "platform"}

READ_PAGES = [
    "/tenants/{dev1}/",
    "/tenants/{dev1}/?tab=summary",
    "/tenants/{dev1}/?tab=resources",
    "/tenants/{dev1}/?tab=storage",
    "/tenants/{dev1}/?tab=subtenants",
    "/tenants/{dev1}/?tab=members",
    "/tenants/{dev1}/?tab=audit",
    "/tenants/{dev1}/?tab=clusters",
    "/tenants/{dev1}/?tab=clusters&preview=1",
    "/tenants/{dev1}/?tab=monitoring",
    "/tenants/{dev1}/?fragment=tree&q=dev",
    "/tenants/{dev1}/children/",
]
MANAGE_PAGES = ["/tenants/{dev1}/allocations/", "/tenants/{dev1}/plan/", "/tenants/{dev1}/delete/"]


def client_as(world, who: str) -> Client:
    client = Client()
    client.force_login(person(world, who))
    return client


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("url", READ_PAGES + MANAGE_PAGES)
def test_pages_and_fragments_follow_the_permission_helper(k8s_world, who, url):
    w = k8s_world
    response = client_as(w, who).get(
        url.format(dev1=w.dev1.pk), HTTP_HX_REQUEST="true" if "tab=" in url else None
    )
    allowed = who in (MANAGES_DEV1 if url in MANAGE_PAGES else SEES_DEV1)
    assert response.status_code == (200 if allowed else 404), response.content[:300]
    if not allowed:
        assert b"department1/dev1" not in response.content


def test_anonymous_visitors_are_sent_to_sign_in(client, k8s_world):
    for url in ("/", "/tenants/", f"/tenants/{k8s_world.dev1.pk}/", "/me/", "/pools/", "/audit/", "/users/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_a_tab_request_from_htmx_returns_only_the_fragment(k8s_world):
    w = k8s_world
    client = client_as(w, "dept_admin")
    fragment = client.get(f"/tenants/{w.dev2.pk}/?tab=resources", HTTP_HX_REQUEST="true").content.decode()
    page = client.get(f"/tenants/{w.dev2.pk}/?tab=resources").content.decode()
    assert "<html" not in fragment and "2 GPUs allocated" in fragment
    assert "<html" in page and "2 GPUs allocated" in page


def test_search_opens_the_path_to_each_match(k8s_world):
    w = k8s_world
    team = services.tenant_create(acting_user=w.admin, parent=w.dev1, name="team-x")
    html = (
        client_as(w, "platform")
        .get("/tenants/?fragment=tree&q=team", HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "1 match for" in html
    assert 'data-tenant="department1/dev1/team-x"' in html  # rendered, so every ancestor is open
    assert f'href="/tenants/{team.pk}/"' in html


@pytest.mark.parametrize("who", ["bob", "dev1_viewer", "dev1_admin"])
def test_refused_writes_from_pages_change_nothing(k8s_world, who):
    w = k8s_world
    client = client_as(w, who)
    before = state_of_the_world()
    responses = [
        client.post(f"/tenants/{w.dev1.pk}/state/", {"state": "suspended"}),
        client.post(
            f"/tenants/{w.dev1.pk}/allocations/", {f"pool_{w.pool.pk}_on": "on", f"pool_{w.pool.pk}_gpu": "3"}
        ),
        client.post(f"/tenants/{w.dev1.pk}/delete/", {"confirm": "yes"}),
    ]
    if who != "dev1_admin":
        responses.append(
            client.post(f"/tenants/{w.dev1.pk}/members/", {"member": "user:outsider", "role": "admin"})
        )
    assert all(r.status_code in (403, 404) for r in responses), [r.status_code for r in responses]
    assert state_of_the_world() == before


def test_the_storage_tab_names_only_the_sharing_tenants_one_can_see(k8s_world):
    """Found by the permission property test: a shared volume's "with ..." line named every tenant it
    is attached to, also those the reader cannot see (the API only counts them)."""
    w = k8s_world
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share,
            sub_path="public",
            name="public",
            capacity_bytes=GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    tab = f"/tenants/{w.dev1.pk}/?tab=storage"
    bob_sees = client_as(w, "bob").get(tab, HTTP_HX_REQUEST="true").content.decode()
    assert "department1/dev1" in bob_sees and "department1/dev2" not in bob_sees
    assert "tenants you cannot see" in bob_sees
    dept_admin_sees = client_as(w, "dept_admin").get(tab, HTTP_HX_REQUEST="true").content.decode()
    assert "department1/dev2" in dept_admin_sees and "tenants you cannot see" not in dept_admin_sees


def test_creating_a_tenant_in_the_page_goes_through_the_service(k8s_world):
    w = k8s_world
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(w.pool, gpu=1, cpu_millicores=8000, memory_bytes=60 * GI),
    )
    client = client_as(w, "dept_admin")
    form = {
        "parent": w.department1.pk,
        "name": "dev3",
        "is_leaf": "true",
        f"pool_{w.pool.pk}_on": "on",
        f"pool_{w.pool.pk}_gpu": "2",
        f"pool_{w.pool.pk}_cpu": "2",
        f"pool_{w.pool.pk}_memory": "8Gi",
    }
    refused = client.post("/tenants/new/", form)
    assert refused.status_code == 200
    assert "its sub-tenants hold 2 GPUs, so 1 GPU is left." in refused.content.decode()
    assert not Tenant.objects.filter(name="dev3").exists()

    checked = client.post(
        "/tenants/new/", {**form, f"pool_{w.pool.pk}_gpu": "1", "validate": "1"}, HTTP_HX_REQUEST="true"
    )
    assert checked.status_code == 200 and 'hx-swap-oob="true"' in checked.content.decode()
    assert not Tenant.objects.filter(name="dev3").exists(), "validating must not create anything"

    created = client.post("/tenants/new/", {**form, f"pool_{w.pool.pk}_gpu": "1"})
    tenant = Tenant.objects.get(name_path="department1/dev3")
    assert created.status_code == 302 and created["Location"] == f"/tenants/{tenant.pk}/"
    allocation = Allocation.objects.get(tenant=tenant)
    assert (allocation.gpu, allocation.cpu_millicores, allocation.memory_bytes) == (1, 2000, 8 * GI)
    assert tenant.leaf and AuditEvent.objects.filter(action="TENANT_CREATED", tenant=tenant).exists()


def test_an_htmx_submit_gets_the_errors_in_place_or_where_to_go(k8s_world):
    """The forms checked as you type submit with htmx, queued behind the running check (issue 15,
    point 4): a refusal comes back as the field errors (the form stays as filled), a success as
    HX-Redirect; without JavaScript the same POST gets the page or a redirect."""
    w = k8s_world
    client = client_as(w, "dept_admin")
    form = {
        "parent": w.department1.pk,
        "name": "dev3",
        "is_leaf": "true",
        f"pool_{w.pool.pk}_on": "on",
        f"pool_{w.pool.pk}_cpu": "1",
        f"pool_{w.pool.pk}_memory": "1Gi",
    }
    refused = client.post("/tenants/new/", {**form, f"pool_{w.pool.pk}_gpu": "99"}, HTTP_HX_REQUEST="true")
    body = refused.content.decode()
    assert refused.status_code == 200 and f'id="err-pool_{w.pool.pk}_gpu" hx-swap-oob="true"' in body
    assert "GPU" in body and "<form" not in body
    assert not Tenant.objects.filter(name="dev3").exists()

    created = client.post("/tenants/new/", {**form, f"pool_{w.pool.pk}_gpu": "0"}, HTTP_HX_REQUEST="true")
    assert created.status_code == 200, created.content.decode()
    tenant = Tenant.objects.get(name_path="department1/dev3")
    assert created.status_code == 200 and created["HX-Redirect"] == f"/tenants/{tenant.pk}/"

    saved = client.post(
        f"/tenants/{tenant.pk}/allocations/",
        {**form, f"pool_{w.pool.pk}_gpu": "0", f"pool_{w.pool.pk}_cpu": "500m"},
        HTTP_HX_REQUEST="true",
    )
    assert saved["HX-Redirect"] == f"/tenants/{tenant.pk}/?tab=resources"
    assert Allocation.objects.get(tenant=tenant).cpu_millicores == 500


def test_deleting_from_the_page_asks_for_confirmation(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    page = client.get(f"/tenants/{w.department1.pk}/delete/").content.decode()
    assert "department1/dev1" in page and "membership" in page
    refused = client.post(f"/tenants/{w.department1.pk}/delete/")
    assert refused.status_code == 200 and Tenant.objects.filter(pk=w.department1.pk).exists()
    done = client.post(f"/tenants/{w.department1.pk}/delete/", {"confirm": "yes"})
    assert done.status_code == 302 and not Tenant.objects.filter(name_path__startswith="department1").exists()


def test_members_tab_adds_changes_and_removes(k8s_world):
    w = k8s_world
    client = client_as(w, "dev1_admin")
    client.post(f"/tenants/{w.dev1.pk}/members/", {"member": "user:outsider", "role": "viewer"})
    membership = Membership.objects.get(tenant=w.dev1, user=w.people.outsider)
    assert membership.role == "viewer"
    client.post(f"/memberships/{membership.pk}/role/", {"role": "member"})
    assert Membership.objects.get(pk=membership.pk).role == "member"
    client.post(f"/memberships/{membership.pk}/remove/")
    assert not Membership.objects.filter(pk=membership.pk).exists()


def _bulk_children(parent: Tenant, count: int) -> None:
    rows = [
        Tenant(
            name=f"c{i}",
            name_path=f"{parent.name_path}/c{i}",
            depth=parent.depth + 1,
            path=Tenant._get_path(parent.path, parent.depth + 1, i),
        )
        for i in range(1, count + 1)
    ]
    Tenant.objects.bulk_create(rows)
    Tenant.objects.filter(pk=parent.pk).update(numchild=count)


@pytest.mark.parametrize("tab", ["summary", "resources", "subtenants", "monitoring"])
def test_the_tenant_page_costs_the_same_queries_for_10_as_for_1000_sub_tenants(platform_admin, tab):
    small = services.tenant_create(acting_user=platform_admin, parent=None, name="small")
    large = services.tenant_create(acting_user=platform_admin, parent=None, name="large")
    _bulk_children(small, 10)
    _bulk_children(large, 1000)
    client = Client()
    client.force_login(platform_admin)
    counts = []
    for tenant in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/tenants/{tenant.pk}/?tab={tab}")
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 15, counts


def test_platform_admins_write_plans_in_the_console_and_tenants_keep_their_copy(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    response = client.post(
        "/plans/new/",
        {
            "name": "gpu-small",
            "description": "1 GPU",
            f"pool_{w.pool.pk}_on": "on",
            f"pool_{w.pool.pk}_gpu": "1",
        },
    )
    assert response.status_code == 302
    plan = QuotaPlan.objects.get(name="gpu-small")
    assert plan.allocations.get().gpu == 1 and plan.allocations.get().cpu_millicores is None
    services.tenant_delete(acting_user=w.admin, tenant=w.dev2, confirm=True)
    tenant = services.tenant_create(acting_user=w.admin, parent=w.department1, name="dev3", plan=plan)

    bad = client.post(
        f"/plans/{plan.pk}/",
        {"description": "x", f"pool_{w.pool.pk}_on": "on", f"pool_{w.pool.pk}_gpu": "1.5"},
    )
    assert bad.status_code == 200 and "GPUs are counted in whole units" in bad.content.decode()
    client.post(
        f"/plans/{plan.pk}/",
        {"description": "2 GPUs now", f"pool_{w.pool.pk}_on": "on", f"pool_{w.pool.pk}_gpu": "2"},
    )
    assert QuotaPlan.objects.get(pk=plan.pk).allocations.get().gpu == 2
    assert Allocation.objects.get(tenant=tenant).gpu == 1

    assert client_as(w, "dept_admin").get("/plans/new/").status_code == 403


def test_roles_are_granted_from_the_users_page_within_what_one_administers(k8s_world):
    w = k8s_world
    dept = client_as(w, "dept_admin")
    assert 'id="grant-role"' in dept.get("/users/").content.decode()
    dept.post("/users/grant/", {"username": "outsider", "tenant": "department1/dev2", "role": "viewer"})
    assert Membership.objects.filter(user=w.people.outsider, tenant=w.dev2, role="viewer").exists()

    before = state_of_the_world()
    refused = client_as(w, "dev1_admin").post(
        "/users/grant/", {"username": "outsider", "tenant": "department1/dev2", "role": "admin"}
    )
    # Refused on the field it is about, with everything typed still in the form.
    assert refused.status_code == 200
    form = refused.context["grant_form"]
    assert form.errors == {"tenant": ["You administer no tenant with the path department1/dev2."]}
    page = refused.content.decode()
    assert 'value="department1/dev2"' in page and 'value="outsider"' in page
    assert '<option value="admin" selected>' in page
    assert state_of_the_world() == before

    nobody = client_as(w, "dept_admin").post(
        "/users/grant/", {"username": "nobody-here", "tenant": "department1/dev1", "role": "member"}
    )
    assert nobody.context["grant_form"].errors == {"username": ["There is no active user named nobody-here."]}
    assert 'value="department1/dev1"' in nobody.content.decode()
    # The tenants one administers are suggested as the path is typed.
    assert '<option value="department1/dev2">' in nobody.content.decode()
    assert state_of_the_world() == before
    assert 'id="grant-role"' not in client_as(w, "bob").get("/users/").content.decode()


def test_my_access_offers_a_kubeconfig_per_connected_cluster_to_members_not_viewers(k8s_world):
    w = k8s_world
    link = f'href="/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/"'
    unconnected = client_as(w, "bob").get("/me/").content.decode()
    assert link not in unconnected and "gpu-cluster is not connected to Canopy" in unconnected
    KubernetesConnection.objects.create(
        cluster=w.cluster, mode=KubernetesConnection.Mode.TOKEN, server="https://127.0.0.1:6443"
    )
    assert link in client_as(w, "bob").get("/me/").content.decode()
    viewer = client_as(w, "dev1_viewer").get("/me/").content.decode()
    assert link not in viewer and f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/help/" not in viewer


def _my_access_article(html: str, tenant) -> str:
    """The part of My access about one tenant (each tenant is one top-level <article>)."""
    found = [part for part in html.split("<article>\n")[1:] if f'href="/tenants/{tenant.pk}/"' in part]
    assert len(found) == 1, f"{tenant.name_path} is listed {len(found)} times"
    return found[0]


def test_my_access_gives_an_admin_above_a_tenant_the_admin_role_there_beside_a_viewer_role(k8s_world):
    """dept-admin administers department1 and so dev1; a viewer role of their own on dev1 does not
    lower that (the strongest role wins, as the permission helper and the clusters already say): My
    access shows dev1 as Admin, says where the role comes from, lists their jobs and offers the
    kubeconfig."""
    w = k8s_world
    dept_admin = w.people.dept_admin
    services.membership_grant(acting_user=w.admin, tenant=w.dev1, user=dept_admin, role="viewer")
    KubernetesConnection.objects.create(
        cluster=w.cluster, mode=KubernetesConnection.Mode.TOKEN, server="https://127.0.0.1:6443"
    )

    roles = {r.tenant.name_path: r for r in selectors.effective_roles(user=dept_admin, person=dept_admin)}
    assert roles["department1/dev1"].role == "admin"

    dev1 = _my_access_article(client_as(w, "dept_admin").get("/me/").content.decode(), w.dev1)
    assert "· Tenant admin</span>" in dev1
    assert "(viewer, direct; tenant admin of department1)" in dev1
    assert "My jobs" in dev1
    assert f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/" in dev1
    # A viewer and nothing more stays a viewer.
    viewer = _my_access_article(client_as(w, "dev1_viewer").get("/me/").content.decode(), w.dev1)
    assert "· Viewer</span>" in viewer and "My jobs" not in viewer


def test_the_clusters_tab_previews_a_push_for_admins(k8s_world):
    w = k8s_world
    html = client_as(w, "dept_admin").get(f"/tenants/{w.dev2.pk}/?tab=clusters&preview=1").content.decode()
    assert "Preview" in html and "ResourceQuota" in html and "canopy-quota" in html
    member_html = client_as(w, "bob").get(f"/tenants/{w.dev1.pk}/?tab=clusters&preview=1").content.decode()
    assert "Push now" not in member_html and "canopy-quota" not in member_html


def test_platform_admins_test_a_connection_from_the_pools_page(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    assert "Test connection" in client.get("/pools/").content.decode()
    answer = client.post(f"/clusters/{w.cluster.pk}/test/").content.decode()  # without JavaScript: the page
    assert "Not connected" in answer and "Cluster gpu-cluster has no connection." in answer
    # A connection nobody listens on: the exact error, not a guess, and what to do about it (htmx: in place).
    KubernetesConnection.objects.create(
        cluster=w.cluster, mode=KubernetesConnection.Mode.TOKEN, server="https://127.0.0.1:9", ca_data=""
    )
    failed = client.post(f"/clusters/{w.cluster.pk}/test/", HTTP_HX_REQUEST="true").content.decode()
    assert failed.startswith(f'<div id="check-{w.cluster.pk}" class="connection-check check-unreachable"')
    assert "Cannot reach the API server at https://127.0.0.1:9" in failed and "Connection refused" in failed
    assert "Nothing answered: check the API server URL and port" in failed
    assert client_as(w, "dept_admin").post(f"/clusters/{w.cluster.pk}/test/").status_code == 403
    assert "Test connection" not in client_as(w, "dept_admin").get("/pools/").content.decode()


def test_a_bad_name_does_not_hide_an_allocation_refusal(k8s_world):
    w = k8s_world
    form = {
        "parent": w.department1.pk,
        "name": "Bad_Name",
        "is_leaf": "true",
        f"pool_{w.pool.pk}_on": "on",
        f"pool_{w.pool.pk}_gpu": "1",
        "validate": "1",
    }
    html = client_as(w, "dept_admin").post("/tenants/new/", form, HTTP_HX_REQUEST="true").content.decode()
    assert "DNS-1123 label" in html and "so 0 GPUs is left." in html
    assert not Tenant.objects.filter(name__startswith="name-check").exists()


def test_the_summary_names_the_tenant_type(k8s_world):
    w = k8s_world
    leaf = services.tenant_create(acting_user=w.admin, parent=w.department1, name="leafy", is_leaf=True)
    client = client_as(w, "platform")
    assert (
        "Non-leaf: may have sub-tenants"
        in client.get(f"/tenants/{w.department1.pk}/?tab=summary").content.decode()
    )
    assert (
        "Leaf: uses resources and has no sub-tenants"
        in client.get(f"/tenants/{leaf.pk}/?tab=summary").content.decode()
    )


def test_the_pools_page_offers_the_hadoop_files_and_tests_hadoop_connections(platform_admin):
    cluster = services.cluster_create(acting_user=platform_admin, name="bigdata", kind="yarn")
    client = Client()
    client.force_login(platform_admin)
    page = client.get("/pools/").content.decode()
    link = f"/clusters/{cluster.pk}/hadoop-files/capacity-scheduler.xml"
    assert link in page and f"/clusters/{cluster.pk}/hadoop-files/hdfs-setup.sh" in page
    download = client.get(link)
    assert download.status_code == 200 and b"<configuration>" in download.content
    assert download["Content-Disposition"] == 'attachment; filename="bigdata-capacity-scheduler.xml"'
    assert client.get(f"/clusters/{cluster.pk}/hadoop-files/core-site.xml").status_code == 404
    answer = client.post(f"/clusters/{cluster.pk}/test/", HTTP_HX_REQUEST="true").content.decode()
    assert "Not connected" in answer and "Cluster bigdata has no connection." in answer
    assert "connect it with its ResourceManager and WebHDFS URLs" in answer
