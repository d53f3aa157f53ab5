"""The admin shows provisioning rows read-only and never a credential."""

from django.test import Client

from provisioning.models import KubernetesConnection
from tenants import services


def test_the_connection_page_shows_no_credential(platform_admin):
    cluster = services.cluster_create(acting_user=platform_admin, name="gpu-cluster", kind="kubernetes")
    KubernetesConnection.objects.create(
        cluster=cluster,
        mode=KubernetesConnection.Mode.TOKEN,
        server="https://10.0.0.91:6443",
        token="s3cret-token",
    )
    client = Client()
    client.force_login(platform_admin)
    page = client.get(f"/admin/provisioning/kubernetesconnection/{cluster.pk}/change/")
    assert page.status_code == 200 and "https://10.0.0.91:6443" in page.content.decode()
    assert "s3cret-token" not in page.content.decode()
    assert (
        client.post(f"/admin/provisioning/kubernetesconnection/{cluster.pk}/change/", {}).status_code == 403
    )
