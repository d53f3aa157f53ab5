"""Issue 18, point 5: every page names a tenant's Kubernetes namespace the same way, through the one
function that names it (`provisioning.selectors.tenant_namespaces`, after `desired.kubernetes`'s
`namespace_name`): testers saw My jobs say `dev1` while the Clusters tab said `department1-dev1`.
Over the demo as the embedded default shows it (its invented jobs included), for Bob, a member of
department1/dev1, whose namespace is not his tenant's name."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provisioning.selectors import tenant_namespaces_for_system
from tenants.demo import load_demo
from tenants.models import Cluster, Tenant
from tests.tenants.builders import user
from usage import demo
from usage.models import Workload

pytestmark = pytest.mark.django_db


def _get(browser: Client, url: str) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = browser.get(url)
    assert response.status_code == 200, url
    return response.content.decode(), len(queries)


def _code(page: str) -> set[str]:
    """Everything the page shows as code."""
    return set(re.findall(r"<code[^>]*>([^<]*)</code>", page))


def test_my_access_my_jobs_the_clusters_tab_and_the_kubeconfig_help_name_the_same_namespace(settings):
    load_demo()
    settings.CANOPY_DEMO_USAGE = True
    call_command("demo_usage")  # DEMO ONLY: invented jobs, as the embedded default has them
    # The invented jobs follow a daily wave: at some hours dev1 has none. Invent passes an hour
    # apart until it has some, so the test does not depend on when it runs.
    moment = timezone.now()
    while not Workload.objects.filter(tenant__name_path="department1/dev1").exists():
        moment += datetime.timedelta(hours=1)
        assert moment < timezone.now() + datetime.timedelta(days=1), "the demo never gives dev1 a job"
        demo.demo_record(moment)
    dev1 = Tenant.objects.get(name_path="department1/dev1")
    cluster = Cluster.objects.get(name="gpu-cluster")
    namespace = tenant_namespaces_for_system([dev1])[dev1.pk]
    assert namespace == "department1-dev1" != dev1.name

    # The demo's jobs run where the real collectors would see them: in the tenants' namespaces.
    jobs = Workload.objects.filter(tenant=dev1)
    assert jobs.exists() and set(jobs.values_list("namespace", flat=True)) == {namespace}
    for tenant_id, job_namespace in Workload.objects.filter(cluster=cluster).values_list(
        "tenant_id", "namespace"
    ):
        assert job_namespace == tenant_namespaces_for_system([Tenant.objects.get(pk=tenant_id)])[tenant_id]

    browser = Client()
    browser.force_login(user("bob"))
    my_access, my_access_queries = _get(browser, "/me/")
    clusters_tab, clusters_queries = _get(browser, f"/tenants/{dev1.pk}/?tab=clusters")
    kubeconfig_help, _ = _get(browser, f"/tenants/{dev1.pk}/kubeconfig/{cluster.pk}/help/")

    # My access: the kubeconfig section and My jobs.
    kubeconfig_part = my_access.split('<div class="kubeconfig-links">')[1].split("</div>")[0]
    jobs_part = my_access.split("<h3>My jobs</h3>")[1].split("</table>")[0]
    assert f'<code class="namespace">{namespace}</code>' in kubeconfig_part
    assert f"<td><code>{namespace}</code></td>" in jobs_part
    # The Clusters tab: above the table and in it.
    assert f'<code class="namespace">{namespace}</code>' in clusters_tab
    assert f"<td><code>{namespace}</code></td>" in clusters_tab
    # The kubeconfig help: the facts, the file and the command.
    assert f'<code class="namespace">{namespace}</code>' in kubeconfig_help
    assert (
        f"namespace: {namespace}" in kubeconfig_help and f"get pods -n {namespace}</code>" in kubeconfig_help
    )
    # And no page calls it by the tenant's name alone.
    for page in (my_access, clusters_tab, kubeconfig_help):
        assert dev1.name not in _code(page)

    # Queries: My access reads the namespaces of all the person's tenants at once, their time-bound
    # grants and their own open quota requests (one each, for any number of tenants); the Clusters
    # tab its tenant's namespace.
    assert my_access_queries == 15
    assert clusters_queries == 10


def test_a_yarn_tenants_clusters_tab_names_its_queue(settings):
    load_demo()
    t1 = Tenant.objects.get(name_path="t1")
    browser = Client()
    browser.force_login(user("usera"))
    page, _ = _get(browser, f"/tenants/{t1.pk}/?tab=clusters")
    assert "<th>Namespace / queue</th>" in page
    assert "<tr><td>bigdata</td><td>queue <code>root.t1</code></td>" in page
    assert "Kubernetes namespace" not in page  # t1 has no Kubernetes allocation
