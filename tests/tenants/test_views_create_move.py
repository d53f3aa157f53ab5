"""The new tenant form's redraw for another parent and its checks as the user types (issue 18,
point 1), and the move page (point 9): what each answers, what it costs, and that asking changes
nothing."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import AuditEvent, Tenant
from tests.tenants.builders import spec
from tests.tenants.test_api_permissions import person, state_of_the_world


def client_as(world, who: str) -> Client:
    client = Client()
    client.force_login(person(world, who))
    return client


def posted(client: Client, url: str, data: dict) -> tuple[str, int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content[:300]
    return response.content.decode(), len(queries), response


def world_and_intents() -> tuple:
    return state_of_the_world(), ProvisioningIntent.objects.count()


# A tenant admin's count includes reading their grants once per restricted read: a form post is a
# write request, where grants are not kept for the request (docs/ARCHITECTURE.md).
@pytest.mark.parametrize("who, queries", [("platform", 46), ("dept_admin", 56)])
def test_another_parent_redraws_its_parts_of_the_form_and_checks_what_was_typed(k8s_world, who, queries):
    w = k8s_world
    client = client_as(w, who)
    before = world_and_intents()
    body, count, response = posted(
        client,
        "/tenants/new/",
        {
            "parent": w.dev2.pk,
            "name": "",
            "display_name": "Research",
            "is_leaf": "false",
            "validate": "1",
            "redraw": "1",
            f"pool_{w.pool.pk}_on": "on",
            f"pool_{w.pool.pk}_gpu": "3",
        },
    )
    assert response["HX-Replace-Url"] == f"/tenants/new/?parent={w.dev2.pk}"
    assert "<title>New sub-tenant of department1/dev2 · Canopy</title>" in body
    assert '<h1 id="create-heading" hx-swap-oob="true">New sub-tenant of department1/dev2</h1>' in body
    assert '<nav class="breadcrumbs" id="create-breadcrumbs" hx-swap-oob="true">' in body
    assert '<section id="create-resources"' in body and "dev2 has 2 GPUs left" in body
    # What was typed stays; the amount is checked with no name yet, and nothing is "required" yet.
    assert f'name="pool_{w.pool.pk}_gpu" value="3"' in body
    assert "so 2 GPUs is left" in body
    assert "required" not in body
    assert "<form" not in body  # the form itself stays in the page, with its queue of requests
    assert world_and_intents() == before, "a redraw is a check: nothing is kept"
    # The same as a check while typing: the page's reads (session, user, the parent, its pools, the
    # Hadoop clusters, what its sub-tenants hold, the form's choices) and a whole tenant_create with
    # its allocation, in savepoints rolled back; a tenant admin's POST reads their grants afresh for
    # each permission check (writes never reuse them).
    assert count == queries


def test_a_check_while_typing_says_nothing_is_required_but_the_submit_does(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    form = {"parent": w.department1.pk, "name": "", "is_leaf": "false"}
    checked, _, _ = posted(client, "/tenants/new/", {**form, "validate": "1"})
    assert 'id="err-name" hx-swap-oob="true" aria-live="polite"></ul>' in checked
    submitted, _, _ = posted(client, "/tenants/new/", form)
    assert "This field is required." in submitted


def test_a_tenant_admin_starts_at_the_first_tenant_they_administer(k8s_world):
    w = k8s_world
    page = client_as(w, "dept_admin").get("/tenants/new/").content.decode()
    assert '<h1 id="create-heading">New sub-tenant of department1</h1>' in page
    assert f'<option value="{w.department1.pk}" selected>department1</option>' in page
    assert "level-1 tenant" not in page
    assert "department1 has 0 GPUs left" in page


def test_the_tree_offers_a_new_tenant_to_those_who_may_make_one(k8s_world):
    w = k8s_world
    labels = {
        "platform": "New level-1 tenant",
        "dept_admin": "New sub-tenant",
        "dev1_admin": "New sub-tenant",
        "bob": None,
        "dev1_viewer": None,
    }
    for who, label in labels.items():
        page = client_as(w, who).get("/tenants/").content.decode()
        offered = [text for text in ("New level-1 tenant", "New sub-tenant") if text in page]
        assert offered == ([label] if label else []), who


def test_the_move_page_offers_only_valid_parents_and_asks_before_moving(k8s_world):
    w = k8s_world
    interns = services.tenant_create(acting_user=w.admin, parent=w.dev1, name="interns")
    services.tenant_create(acting_user=w.admin, parent=w.dev2, name="leafy", is_leaf=True)
    client = client_as(w, "dept_admin")
    page = client.get(f"/tenants/{w.dev1.pk}/move/").content.decode()
    assert "department1/dev1 and its 1 sub-tenant" in page
    options = [line.split(">")[1].split("<")[0] for line in page.split("<option")[1:]]
    # Not itself or below it, not its parent, not a leaf, not what they do not administer.
    assert options == ["— choose where it goes —", "department1/dev2"]

    before = world_and_intents()
    # Somewhere not offered (its own sub-tenant): the picker says so; nothing moves.
    refused = client.post(f"/tenants/{w.dev1.pk}/move/", {"parent": interns.pk, "confirm": "yes"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    # dev2 is limited where dev1 is not: the service's refusal is on the picker, dev2 still chosen.
    refused = client.post(f"/tenants/{w.dev1.pk}/move/", {"parent": w.dev2.pk})
    body = refused.content.decode()
    assert "cannot be unlimited" in body and 'id="move-dialog"' not in body
    assert f'<option value="{w.dev2.pk}" selected>department1/dev2</option>' in body
    assert world_and_intents() == before

    # Room for it under dev2: the question first, nothing moved, nothing pushed.
    services.allocation_set(
        acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=0, cpu_millicores=1000, memory_bytes=2**30)
    )
    before = world_and_intents()
    with CaptureQueriesContext(connection) as queries:
        asked = client.post(f"/tenants/{w.dev1.pk}/move/", {"parent": w.dev2.pk})
    body = asked.content.decode()
    assert '<dialog id="move-dialog" data-open-on-load' in body
    assert "Move department1/dev1 and its 1 sub-tenant to department1/dev2?" in body
    assert "department1/dev1 becomes <code>department1/dev2/dev1</code>" in body
    assert "Canopy pushes the 2 tenants to every cluster again." in body
    assert f'<input type="hidden" name="parent" value="{w.dev2.pk}">' in body
    assert world_and_intents() == before
    assert Tenant.objects.get(pk=w.dev1.pk).name_path == "department1/dev1"
    # The page's reads and a whole tenant_move, rolled back: what a move costs, asked once.
    assert len(queries.captured_queries) == 54

    moved = client.post(f"/tenants/{w.dev1.pk}/move/", {"parent": w.dev2.pk, "confirm": "yes"})
    assert moved.status_code == 302 and moved["Location"] == f"/tenants/{w.dev1.pk}/"
    assert Tenant.objects.get(pk=interns.pk).name_path == "department1/dev2/dev1/interns"
    assert AuditEvent.objects.filter(action="TENANT_MOVED", tenant_id=w.dev1.pk).count() == 1
    assert ProvisioningIntent.objects.filter(reason="TENANT_MOVED", tenant_id=interns.pk).exists()


@pytest.mark.parametrize("who", ["outsider", "bob", "dev1_viewer", "dev1_admin", "dev2_admin"])
def test_those_who_may_not_move_a_tenant_get_a_404_and_nothing_moves(k8s_world, who):
    w = k8s_world
    client = client_as(w, who)
    before = world_and_intents()
    assert client.get(f"/tenants/{w.dev1.pk}/move/").status_code == 404
    response = client.post(f"/tenants/{w.dev1.pk}/move/", {"parent": w.dev2.pk, "confirm": "yes"})
    assert response.status_code == 404 and b"department1" not in response.content
    assert world_and_intents() == before


def test_the_default_tenant_offers_no_move(k8s_world):
    w = k8s_world
    default = Tenant.objects.get(depth=1, name=Tenant.DEFAULT_NAME)
    client = client_as(w, "platform")
    page = client.get(f"/tenants/{default.pk}/").content.decode()
    assert "Delete…" in page and "Move…" not in page
    assert "Move…" in client.get(f"/tenants/{w.dev1.pk}/").content.decode()
    # The page says why when asked anyway (the service refuses it).
    refused = client.post(f"/tenants/{default.pk}/move/", {"parent": w.department1.pk})
    assert "The default tenant stays where it is." in refused.content.decode()


@pytest.mark.parametrize("who", ["bob", "dev1_viewer", "outsider"])
def test_no_tenant_form_for_someone_who_may_create_none(k8s_world, who):
    """A member, a viewer and someone with no role may create no tenant: the form is refused with
    the reason, rather than shown only to be refused on submit, and nothing changes."""
    w = k8s_world
    client = client_as(w, who)
    before = world_and_intents()
    refused = client.get("/tenants/new/")
    assert refused.status_code == 403
    assert "you administer none (a leaf tenant has no sub-tenants)" in refused.content.decode()
    assert client.post("/tenants/new/", {"name": "kid", "is_leaf": "true"}).status_code == 403
    assert world_and_intents() == before


def test_the_form_starts_at_a_tenant_admins_first_parent(k8s_world):
    page = client_as(k8s_world, "dept_admin").get("/tenants/new/")
    assert page.status_code == 200
    assert page.context["parent"].name_path == "department1"
