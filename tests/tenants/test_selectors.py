"""Reads: one query for a subtree or the ancestors, filters of the tenant list."""

from decimal import Decimal

from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning import selectors as provisioning_selectors
from tenants import selectors, services
from tenants.models import Tenant
from tenants.permissions import Action, can, grants_memoized, is_platform_admin
from tests.factories import UserFactory
from tests.tenants.builders import TokenClient, spec
from usage import selectors as usage_selectors


def test_subtree_and_ancestors_are_one_query_each(k8s_world):
    w = k8s_world
    team = services.tenant_create(acting_user=w.admin, parent=w.dev1, name="team")
    with CaptureQueriesContext(connection) as queries:
        subtree = [t.name_path for t in selectors.tenant_subtree(user=w.admin, tenant=w.department1)]
    assert len(queries) == 1
    assert subtree == ["department1", "department1/dev1", "department1/dev1/team", "department1/dev2"]
    with CaptureQueriesContext(connection) as queries:
        ancestors = [t.name_path for t in selectors.tenant_ancestors(user=w.admin, tenant=team)]
    assert len(queries) == 1
    assert ancestors == ["department1", "department1/dev1"]


def test_a_member_sees_no_ancestor_rows_only_their_names(k8s_world):
    w = k8s_world
    assert list(selectors.tenant_ancestors(user=w.bob, tenant=w.dev1)) == []
    assert selectors.tenant_get(user=w.bob, pk=w.dev1.pk).name_path == "department1/dev1"


def test_tenant_list_filters(k8s_world):
    w = k8s_world
    client = TokenClient().as_user(w.admin)

    def paths(query: str) -> list[str]:
        response = client.get(f"/api/v1/tenants/?{query}")
        assert response.status_code == 200, response.content
        return [row["path"] for row in response.json()["results"]]

    assert paths(f"parent={w.department1.pk}") == ["department1/dev1", "department1/dev2"]
    assert paths("path=department1/dev2") == ["department1/dev2"]
    assert paths("path_prefix=department1") == ["department1", "department1/dev1", "department1/dev2"]
    assert paths("level=1") == ["default", "department1"]
    assert paths("top_level=true") == ["default", "department1"]
    assert paths("name=dev") == ["department1/dev1", "department1/dev2"]
    assert paths("parent=999999") == []
    row = client.get(f"/api/v1/tenants/{w.dev2.pk}/").json()
    assert row["parent"] == w.department1.pk and row["level"] == 2


def test_department_figures_show_what_children_hold_and_what_remains(k8s_world):
    w = k8s_world
    row = TokenClient().as_user(w.people.dept_admin).get(f"/api/v1/tenants/{w.department1.pk}/").json()
    (pool,) = row["allocations"]
    assert (pool["gpu"], pool["cpu"], pool["memory"]) == (3, None, None)
    assert pool["children"]["gpu"] == 3 and pool["remaining"]["gpu"] == 0
    assert pool["children"]["cpu"] == "8" and pool["remaining"]["cpu"] is None
    assert pool["children_unlimited"] == {"gpu": 0, "cpu": 1, "memory": 1}


def _people_with_every_kind_of_grant(w):
    """The world's people, plus one with a role inside a subtree they administer, one with a role
    on two siblings and one holding a role only through a group."""
    team = services.tenant_create(acting_user=w.admin, parent=w.dev1, name="team")
    nested = UserFactory(username="nested")
    services.membership_grant(acting_user=w.admin, tenant=w.dev1, user=nested, role="admin")
    services.membership_grant(acting_user=w.admin, tenant=team, user=nested, role="member")
    siblings = UserFactory(username="siblings")
    services.membership_grant(acting_user=w.admin, tenant=w.dev1, user=siblings, role="viewer")
    services.membership_grant(acting_user=w.admin, tenant=w.dev2, user=siblings, role="member")
    grouped = UserFactory(username="grouped")
    grouped.groups.add(Group.objects.create(name="ml-team"))
    services.membership_grant(acting_user=w.admin, tenant=team, group="ml-team", role="viewer")
    people = [w.admin, w.bob, w.tom, nested, siblings, grouped, *vars(w.people).values()]
    return people, list(Tenant.objects.all())


def test_tree_roots_are_the_visible_tenants_whose_parent_is_hidden(k8s_world):
    people, tenants = _people_with_every_kind_of_grant(k8s_world)
    for person in people:
        visible = {t.path for t in selectors.tenant_list(user=person)}
        expected = {path for path in visible if path[: -Tenant.steplen] not in visible}
        assert {t.path for t in selectors.tenant_tree_roots(user=person)} == expected, person
        with grants_memoized(), CaptureQueriesContext(connection) as queries:  # as in a page request
            roots = {t.path for t in selectors.tenant_tree_roots(user=person)}
        assert roots == expected, person
        # The grants, then the tops (nothing to ask for someone without a role).
        assert len(queries) == (1 if is_platform_admin(person) or not expected else 2)


def test_can_answers_the_same_from_the_grants_of_a_read_only_request(k8s_world):
    people, tenants = _people_with_every_kind_of_grant(k8s_world)
    for person in people:
        from_database = {(t.pk, a): can(person, a, t) for t in tenants for a in Action}
        with grants_memoized(), CaptureQueriesContext(connection) as queries:
            from_grants = {(t.pk, a): can(person, a, t) for t in tenants for a in Action}
        assert from_grants == from_database, person
        assert len(queries) == (0 if is_platform_admin(person) else 1)


# Every selector a view or the API calls takes the user (tests/test_reads_through_selectors.py);
# these show each one reads only on the user's behalf.


def test_summaries_cover_only_the_tenants_the_user_sees(k8s_world):
    w = k8s_world
    tenants = [w.department1, w.dev1, w.dev2]
    selectors.tenant_summaries(tenants, user=w.bob)
    assert [len(t.pool_summaries) for t in tenants] == [0, 1, 0]
    selectors.tenant_summaries(tenants, user=w.people.dept_admin)
    (department,) = w.department1.pool_summaries
    # What the sub-tenants hold is summed for whoever sees the department, not row by row.
    assert (department.resources["gpu"].children, department.resources["gpu"].remaining) == (3, 0)
    assert [len(t.pool_summaries) for t in tenants] == [1, 1, 1]


def test_a_yarn_share_reads_the_ancestors_only_for_a_tenant_the_user_sees(yarn_world):
    w = yarn_world
    team = services.tenant_create(
        acting_user=w.admin,
        parent=w.t1,
        name="team",
        allocations=[spec(w.pool, capacity_percent=Decimal(50))],
    )
    selectors.tenant_summaries([team], user=w.a)
    assert selectors.yarn_guaranteed_shares([team], user=w.a) == {(team.pk, w.pool.pk): Decimal("0.2")}
    # The same summaries asked for by someone who cannot see the team: no ancestor is read for it.
    assert selectors.yarn_guaranteed_shares([team], user=w.b) == {(team.pk, w.pool.pk): None}


def test_kubernetes_clusters_are_listed_for_the_tenants_the_user_sees(k8s_world):
    w = k8s_world
    ids = [w.dev1.pk, w.dev2.pk]
    assert set(provisioning_selectors.kubernetes_clusters_by_tenant(ids, user=w.admin)) == set(ids)
    assert set(provisioning_selectors.kubernetes_clusters_by_tenant(ids, user=w.bob)) == {w.dev1.pk}
    assert provisioning_selectors.kubernetes_clusters_by_tenant(ids, user=w.people.outsider) == {}


def test_cluster_names_are_read_for_signed_in_users_only(k8s_world):
    w = k8s_world
    ids = {w.pool.cluster_id}
    assert dict(usage_selectors.cluster_names(user=w.bob, ids=ids)) == {w.pool.cluster_id: "gpu-cluster"}
    assert dict(usage_selectors.cluster_names(user=None, ids=ids)) == {}
