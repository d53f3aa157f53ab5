"""Shared fixtures: people and the two source documents' worlds, built through the services."""

import os

import pytest
from hypothesis import settings
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.tenants import builders

# Hypothesis (the permission property test): a short run by default, many more examples with
# CANOPY_LONG_FUZZ=1 (docs/testing.md). Examples build real worlds on PostgreSQL: no deadline.
# The short run draws the same examples every time (a red CI run is the code's, and repeats); the
# long run draws new ones each time, to find what the short one cannot.
settings.register_profile("ci", max_examples=6, deadline=None, print_blob=True, derandomize=True)
settings.register_profile("long", max_examples=300, deadline=None, print_blob=True)
settings.load_profile("long" if os.environ.get("CANOPY_LONG_FUZZ") == "1" else "ci")


@pytest.fixture
def platform_admin(db):
    return UserFactory(username="root-admin", is_staff=True, is_superuser=True)


@pytest.fixture
def make_user(db):
    def make(username: str, **kwargs):
        return UserFactory(username=username, **kwargs)

    return make


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` authenticates with a real token."""
    return builders.TokenClient()


@pytest.fixture
def anonymous_api():
    return APIClient()


@pytest.fixture
def k8s_world(platform_admin):
    return builders.build_k8s_world(platform_admin)


@pytest.fixture
def yarn_world(platform_admin):
    return builders.build_yarn_world(platform_admin)


# The real test clusters (session-scoped fixtures `kube_cluster`, `kueue_cluster` and `hadoop_cluster`).
pytest_plugins = [
    "tests.clusters.kube_fixtures",
    "tests.clusters.kueue_fixtures",  # kube-scheduler + Kueue + KWOK nodes (kueue_cluster)
    "tests.clusters.hadoop_fixtures",
    "tests.clusters.ldap_fixtures",  # slapd for the sign-in tests (ldap_server)
    "tests.clusters.oidc_fixtures",  # an OpenID provider for the sign-in tests (oidc_provider)
]
