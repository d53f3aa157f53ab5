"""Issue 18, points 3 and 5, in Chromium over the demo as the embedded default shows it.

Point 3: a platform admin reads the same allocated and capacity figures for every pool on the
Resource pools page and in the usage overview (bigdata's default pool: 90 % of the root queue,
≈ 57.6 vCores at the current cluster size), each with what it is said beside it and in its tooltip.

Point 5: a member (Bob, department1/dev1) goes from My access to their kubeconfig's help: marked as
an example for the export backend (no cluster connected), with his namespace `department1-dev1`
(never `dev1`) in the file, the facts and the command, and the example to download as a file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from playwright.sync_api import expect

from tenants.demo import load_demo
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _figures(page, rows: str, pool_of) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(cluster/pool, resource) -> (capacity, allocated, the allocated figure's tooltip)."""
    found = {}
    for row in page.locator(rows).all():
        pool = pool_of(row)
        if pool is None:
            continue
        allocated = row.locator(".figure-allocated")
        found[(pool, row.get_attribute("data-resource"))] = (
            row.locator(".figure-capacity").inner_text(),
            allocated.inner_text(),
            allocated.get_attribute("title"),
        )
    return found


def _overview_pool(row) -> str | None:
    article = row.locator("xpath=ancestor::article[1]")
    pools = article.get_attribute("data-pools").split()
    if len(pools) != 1 or row.get_attribute("data-resource").startswith("hdfs_"):
        return None
    return f"{article.get_attribute('data-cluster')}/{pools[0]}"


def test_a_platform_admin_reads_the_same_figures_on_pools_and_the_overview(page, settings):
    credentials = load_demo()
    settings.CANOPY_DEMO_USAGE = True
    call_command("demo_usage")  # DEMO ONLY figures: what the overview shows as used
    sign_in(page, "admin", credentials.admin_password)

    page.goto("/pools/")
    on_pools = _figures(page, "table.pool-figures tr[data-pool]", lambda row: row.get_attribute("data-pool"))
    yarn_vcores = page.locator("tr[data-pool='bigdata/default'][data-resource='cpu']")
    expect(yarn_vcores.locator(".figure-allocated")).to_have_text("≈ 57.6 vCores")
    expect(yarn_vcores.locator(".figure-meaning")).to_have_text("≈ cores at current cluster size")
    queue = page.locator("tr[data-pool='bigdata/default'][data-resource='capacity']")
    expect(queue.locator(".figure-allocated")).to_have_text("90 %")
    expect(queue.locator(".figure-meaning")).to_have_text("guaranteed capacity, % of root queue")

    page.click("nav.sidenav a:has-text('Usage overview')")
    expect(page.locator("h1")).to_have_text("Usage overview")
    on_overview = _figures(page, "article.cluster-total tr[data-resource]", _overview_pool)

    assert len(on_pools) == 9 and on_pools == on_overview
    assert on_pools[("bigdata/default", "cpu")] == (
        "64 vCores",
        "≈ 57.6 vCores",
        "≈ cores at current cluster size",
    )
    assert on_pools[("gpu-cluster/default", "gpu")][:2] == ("3 GPUs", "3 GPUs")
    # The overview links back to where the same figures are explained.
    page.click("main a:has-text('Resource pools')")
    expect(page.locator("h1")).to_have_text("Resource pools")


def test_a_member_reads_how_to_use_their_kubeconfig_in_the_demo(page):
    credentials = load_demo()
    sign_in(page, "bob", credentials.user_password)
    page.goto("/me/")
    links = page.locator(".kubeconfig-links")
    expect(links.locator("code.namespace")).to_have_text("department1-dev1")
    links.locator("a:has-text('Your kubeconfig for gpu-cluster')").click()

    expect(page.locator("h1")).to_have_text("Your kubeconfig for department1/dev1 on gpu-cluster")
    expect(page.locator(".example-mark")).to_contain_text(
        "Example for the export backend — not a working kubeconfig."
    )
    expect(page.locator(".kubeconfig-facts code.namespace")).to_have_text("department1-dev1")
    document = yaml.safe_load(page.locator("pre.kubeconfig-document").inner_text())
    assert document["contexts"][0]["context"]["namespace"] == "department1-dev1"
    assert document["current-context"] == "gpu-cluster-department1-dev1"
    expect(page.locator("code.how-to")).to_have_text(
        "kubectl --kubeconfig ~/.kube/gpu-cluster-department1-dev1-bob.kubeconfig get pods -n department1-dev1"
    )
    # Nothing on the page calls the namespace `dev1`.
    assert "dev1" not in page.locator("main code").all_inner_texts()

    with page.expect_download() as download:
        page.click("a:has-text('Download this example')")
    assert download.value.suggested_filename == "gpu-cluster-department1-dev1-bob.kubeconfig.example"
    example = Path(download.value.path()).read_text(encoding="utf-8")
    assert example.startswith("# EXAMPLE, not a working kubeconfig") and yaml.safe_load(example) == document

    # The Clusters tab names the same namespace and leads to the same page.
    page.goto("/me/")
    page.click("main a:has-text('department1/dev1')")
    page.click("nav.tabs a:has-text('Clusters')")
    expect(page.locator("#tab-content code.namespace")).to_have_text("department1-dev1")
    page.click("#tab-content a:has-text('kubeconfig for gpu-cluster')")
    expect(page.locator("h1")).to_have_text("Your kubeconfig for department1/dev1 on gpu-cluster")
