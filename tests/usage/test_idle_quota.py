"""Idle-quota hints (issue 19, point 4): figures from the hourly rollups the collectors' services
write, exact; the threshold at its boundary; tenants without figures apart; who sees which hints
(page and API); bad input; a query count that does not grow with the tenants; the proposal hook."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quotas.models import QuotaRequest
from tenants import services
from tenants.models import Membership
from tests.tenants.builders import TokenClient, spec
from usage import idle
from usage import selectors as usage_selectors
from usage import services as usage_services
from usage.measures import UsageReading

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)


def this_hour() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)


def collect(world, time: datetime.datetime, dev1_gpu: float, dev2_gpu: float) -> None:
    """One Kubernetes collection pass as the collectors store it: each namespace's own use."""
    usage_services.usage_record(
        cluster=world.cluster,
        time=time,
        readings=[
            UsageReading(world.dev1.pk, {"gpu_used": dev1_gpu, "gpu_allocated": 1}),
            UsageReading(world.dev2.pk, {"gpu_used": dev2_gpu, "gpu_allocated": 2}),
            UsageReading(world.department1.pk, {"gpu_used": 0, "gpu_allocated": 3}),
        ],
    )


def two_hours_of_figures(world, first_hour: datetime.datetime) -> datetime.datetime:
    """dev1 (guaranteed 1) uses its GPU throughout; dev2 (guaranteed 2) uses 0 and 1 in the first
    hour, 0 and 0 in the second: hourly averages 0.5 and 0, a mean of 0.25. department1 (3, all
    held by dev1 and dev2) sums them: 1.5 and 1. Rolled up by the beat's own service."""
    collect(world, first_hour + 10 * MINUTE, 1, 0)
    collect(world, first_hour + 40 * MINUTE, 1, 1)
    collect(world, first_hour + HOUR + 10 * MINUTE, 1, 0)
    collect(world, first_hour + HOUR + 40 * MINUTE, 1, 0)
    usage_services.usage_rollup(resolution="hour", start=first_hour, end=first_hour + 2 * HOUR)
    return first_hour + HOUR + 50 * MINUTE


def report(user, now, threshold, window=7):
    return usage_selectors.idle_quota_report(
        user=user, now=now, window_days=window, threshold_percent=threshold
    )


def idle_rows(result) -> dict[str, tuple]:
    return {
        hint.guarantee.tenant_path: (
            hint.guarantee.amount,
            hint.used.peak,
            hint.used.mean,
            hint.used.hours,
            hint.suggested,
        )
        for hint in result.idle
    }


T0 = datetime.datetime(2026, 11, 2, 8, tzinfo=datetime.UTC)


def test_the_figures_are_exact_and_the_threshold_is_strict(k8s_world) -> None:
    w = k8s_world
    now = two_hours_of_figures(w, T0)
    # dev2's peak, 0.5 of 2 GPUs, is exactly 25 %: not under 25 %, under 26 %.
    at_25 = report(w.admin, now, 25)
    assert idle_rows(at_25) == {}
    assert at_25.busy == 3
    at_26 = report(w.admin, now, 26)
    assert idle_rows(at_26) == {"department1/dev2": (2, 0.5, 0.25, 2, 1)}
    (hint,) = at_26.idle
    assert (hint.peak_percent, hint.mean_percent, hint.window_hours) == (25.0, 12.5, 168)
    assert hint.proposal.query() and (hint.proposal.pool_id, hint.proposal.current, hint.proposal.amount) == (
        w.pool.pk,
        2,
        1,
    )
    # department1's peak is 1.5 of 3 (50 %): idle under 51 %, but its sub-tenants hold all 3 GPUs,
    # so no lower amount is suggested (it would be refused).
    at_51 = report(w.admin, now, 51)
    assert idle_rows(at_51) == {
        "department1/dev2": (2, 0.5, 0.25, 2, 1),
        "department1": (3, 1.5, 1.25, 2, None),
    }
    assert [h.guarantee.tenant_path for h in at_51.idle] == ["department1/dev2", "department1"]
    assert at_51.idle[1].proposal is None
    # dev1 used all it has: never idle, not even at 100 %; at 0 % nobody is.
    assert "department1/dev1" not in idle_rows(report(w.admin, now, 100))
    assert idle_rows(report(w.admin, now, 0)) == {}


def test_only_the_window_counts(k8s_world) -> None:
    w = k8s_world
    two_hours_of_figures(w, T0)
    # Two days later the 1-day window holds none of those hours, the 7-day window both.
    later = T0 + datetime.timedelta(days=2)
    one_day = report(w.admin, later, 26, window=1)
    assert idle_rows(one_day) == {}
    assert sorted(g.tenant_path for g in one_day.without_figures) == [
        "department1",
        "department1/dev1",
        "department1/dev2",
    ]
    assert idle_rows(report(w.admin, later, 26, window=7)) == {"department1/dev2": (2, 0.5, 0.25, 2, 1)}
    # The window's first bucket is the hour `days` before the current one, plus one.
    assert idle.window_start(later, 1) == later - datetime.timedelta(hours=23)


def test_a_tenant_without_figures_is_listed_apart_never_idle(k8s_world) -> None:
    w = k8s_world
    services.pool_update(acting_user=w.admin, pool=w.pool, gpu_capacity=5)
    research = services.tenant_create(
        acting_user=w.admin, parent=None, name="research", allocations=[spec(w.pool, gpu=2)]
    )
    now = two_hours_of_figures(w, T0)
    result = report(w.admin, now, 100)
    assert "research" not in idle_rows(result)
    assert [(g.tenant_id, g.amount) for g in result.without_figures] == [(research.pk, 2)]
    # Tenants with unlimited or no GPUs are guaranteed nothing: not listed at all.
    services.tenant_create(
        acting_user=w.admin, parent=None, name="cpu-only", allocations=[spec(w.pool, cpu_millicores=1000)]
    )
    assert [g.tenant_path for g in report(w.admin, now, 100).without_figures] == ["research"]


def test_admins_above_see_the_hints_members_and_siblings_do_not(k8s_world) -> None:
    w = k8s_world
    now = two_hours_of_figures(w, T0)
    people = w.people
    # The platform admin: level-1 tenants too. department1's admin: its sub-tenants, not itself.
    assert set(idle_rows(report(w.admin, now, 51))) == {"department1", "department1/dev2"}
    assert set(idle_rows(report(people.dept_admin, now, 51))) == {"department1/dev2"}
    # dev1's and dev2's admins manage nothing below them; members, viewers and outsiders nothing.
    for user in (people.dev1_admin, people.dev2_admin, people.dev1_viewer, people.outsider, w.bob, w.tom):
        result = report(user, now, 100)
        assert (result.idle, result.without_figures) == ([], []), user


def test_the_query_count_does_not_grow_with_the_tenants(k8s_world) -> None:
    w = k8s_world

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            result = report(w.people.dept_admin, T0 + 2 * HOUR, 100)
        assert result.idle or result.without_figures
        return len(captured)

    page, api = browser(w.people.dept_admin), TokenClient().as_user(w.people.dept_admin)

    def requests() -> tuple[int, int]:
        counts = []
        for client, url in ((page, "/idle-quota/"), (api, "/api/v1/idle-quota/")):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url, {"threshold": 100}).status_code == 200
            counts.append(len(captured))
        return counts[0], counts[1]

    two_hours_of_figures(w, T0)
    before = count()
    requests_before = requests()
    services.pool_update(acting_user=w.admin, pool=w.pool, gpu_capacity=30)
    services.allocation_set(acting_user=w.admin, tenant=w.department1, spec=spec(w.pool, gpu=30))
    for index in range(10):
        services.tenant_create(
            acting_user=w.admin, parent=w.department1, name=f"team{index}", allocations=[spec(w.pool, gpu=2)]
        )
    assert len(report(w.people.dept_admin, T0 + 2 * HOUR, 100).without_figures) == 10
    # The grants (read twice outside a request: each restrict reads them; a request reads them
    # once), the allocations, what their sub-tenants hold, the figures.
    assert count() == before == 5
    assert requests() == requests_before


# ---------------------------------------------------------------------------------------------
# The page and the API


@pytest.fixture
def recent(k8s_world):
    two_hours_of_figures(k8s_world, this_hour() - HOUR)
    return k8s_world


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_lists_the_hints_for_admins_above_and_says_nothing_is_stopped(recent) -> None:
    w = recent
    page = browser(w.people.dept_admin).get("/idle-quota/", {"threshold": 26})
    assert page.status_code == 200
    text = page.content.decode()
    assert "nothing here stops or kills a job" in text
    assert 'data-tenant="department1/dev2"' in text and 'data-tenant="department1/dev1"' not in text
    assert '<td class="num figure-peak">0.5</td>' in text
    assert '<td class="num figure-mean">0.2</td>' in text or '<td class="num figure-mean">0.3</td>' in text
    assert '<td class="num figure-suggested">1 GPU</td>' in text
    assert '<td class="num figure-peak-percent">25 %</td>' in text
    # Admins find it on the Monitoring tab of what they administer; platform admins in the side menu.
    tab = browser(w.people.dept_admin).get(f"/tenants/{w.department1.pk}/", {"tab": "monitoring"})
    assert 'class="idle-quota-link"><a href="/idle-quota/"' in tab.content.decode()
    assert '<a href="/idle-quota/" ' in browser(w.admin).get("/me/").content.decode()
    assert 'href="/idle-quota/"' not in browser(w.people.dept_admin).get("/me/").content.decode()
    # The hint offers to propose the suggested amount (followed in the test below).
    assert ">Propose 1 GPU</a>" in text
    # The htmx request gets the hints alone.
    fragment = browser(w.people.dept_admin).get("/idle-quota/", {"threshold": 26}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert 'data-tenant="department1/dev2"' in fragment.content.decode()


def test_the_page_is_for_people_who_administer_something(recent) -> None:
    w = recent
    assert browser(w.people.dev1_admin).get("/idle-quota/").status_code == 200
    for user in (w.bob, w.people.dev1_viewer, w.people.outsider):
        answer = browser(user).get("/idle-quota/")
        assert answer.status_code == 404, user
        tab = browser(user).get(f"/tenants/{w.dev1.pk}/", {"tab": "monitoring"}).content.decode()
        assert 'href="/idle-quota/"' not in tab
    assert Client().get("/idle-quota/").status_code == 302  # to the sign-in page


@pytest.mark.parametrize(
    "query, field",
    [
        ({"threshold": "abc"}, "threshold"),
        ({"threshold": "101"}, "threshold"),
        ({"threshold": "-1"}, "threshold"),
        ({"threshold": "2.5"}, "threshold"),
        ({"window": "3"}, "window"),
        ({"window": ""}, "window"),
    ],
)
def test_bad_input_is_a_field_error_on_the_page_and_in_the_api(recent, query, field) -> None:
    w = recent
    page = browser(w.admin).get("/idle-quota/", query)
    assert page.status_code == 400
    text = page.content.decode()
    assert 'id="err-' + field + '" aria-live="polite"><li>' in text
    assert "Fix the window or the threshold" in text
    fragment = browser(w.admin).get("/idle-quota/", query, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and f'id="err-{field}" hx-swap-oob="true"' in fragment.content.decode()
    answer = TokenClient().as_user(w.admin).get("/api/v1/idle-quota/", query)
    if query == {"window": ""}:  # DRF reads an empty query parameter that is not required as absent
        assert (answer.status_code, answer.json()["window"]) == (200, 7)
        return
    assert answer.status_code == 400
    assert list(answer.json()) == [field]


def test_the_api_gives_the_figures_to_admins_above_and_nothing_to_others(recent) -> None:
    w = recent
    body = TokenClient().as_user(w.people.dept_admin).get("/api/v1/idle-quota/", {"threshold": 26}).json()
    assert (body["resource"], body["window"], body["threshold"]) == ("gpu", 7, 26)
    (hint,) = body["idle"]
    assert hint["guarantee"] == {
        "tenant": w.dev2.pk,
        "tenant_path": "department1/dev2",
        "cluster": w.cluster.pk,
        "cluster_name": "gpu-cluster",
        "guaranteed": 2,
        "pools": [{"pool": w.pool.pk, "pool_name": "default", "guaranteed": 2, "held_by_subtenants": 0}],
    }
    assert (hint["peak_used"], hint["mean_used"], hint["peak_percent"], hint["suggested"]) == (
        0.5,
        0.25,
        25.0,
        1,
    )
    assert hint["proposal"]["tenant"] == w.dev2.pk and hint["proposal"]["amount"] == 1
    assert body["without_figures"] == []
    for user in (w.bob, w.tom, w.people.dev1_admin, w.people.outsider):
        body = TokenClient().as_user(user).get("/api/v1/idle-quota/", {"threshold": 100}).json()
        assert (body["idle"], body["without_figures"]) == ([], []), user
    assert Client().get("/api/v1/idle-quota/").status_code in (401, 403)


def test_reading_hints_changes_nothing(recent) -> None:
    w = recent
    before = (
        list(Membership.objects.values_list("pk", flat=True)),
        list(w.dev2.allocations.values_list("gpu", flat=True)),
    )
    browser(w.admin).get("/idle-quota/", {"threshold": 100})
    TokenClient().as_user(w.admin).get("/api/v1/idle-quota/", {"threshold": 100})
    after = (
        list(Membership.objects.values_list("pk", flat=True)),
        list(w.dev2.allocations.values_list("gpu", flat=True)),
    )
    assert before == after == (before[0], [2])


def test_a_hint_becomes_a_proposed_change_the_parents_admins_decide(recent) -> None:
    """The hint's link opens the quotas app's ask form with the proposal filled in; sent, it is a
    quota request lowering dev2's guarantee, which the admins of department1 decide. Nothing is
    lowered until they approve it."""
    w = recent
    dept_admin = browser(w.people.dept_admin)
    text = dept_admin.get("/idle-quota/", {"threshold": 26}).content.decode()
    links = [
        part.split('"', 1)[0] for part in text.split('class="secondary outline propose-change" href="')[1:]
    ]
    assert len(links) == 1
    link = links[0].replace("&amp;", "&")
    url = urlsplit(link)
    assert url.path == "/requests/new/"
    query = parse_qs(url.query)
    assert {key: query[key] for key in ("tenant", "pool", "resource", "current", "amount")} == {
        "tenant": [str(w.dev2.pk)],
        "pool": [str(w.pool.pk)],
        "resource": ["gpu"],
        "current": ["2"],
        "amount": ["1"],
    }
    assert "department1/dev2 used at most 0.5" in query["reason"][0]

    form = dept_admin.get(link)
    assert form.status_code == 200
    assert {key: form.context["form"].initial[key] for key in ("pool", "resource", "amount")} == {
        "pool": str(w.pool.pk),
        "resource": "gpu",
        "amount": "1",
    }
    sent = dept_admin.post(
        link,
        {
            "pool": w.pool.pk,
            "resource": "gpu",
            "amount": "1",
            "reason": form.context["form"].initial["reason"],
        },
    )
    assert sent.status_code == 302
    proposal = QuotaRequest.objects.get(tenant=w.dev2)
    assert proposal.state == QuotaRequest.State.OPEN
    assert proposal.gpu == 1 and proposal.deciding_tenant == w.department1
    assert list(w.dev2.allocations.values_list("gpu", flat=True)) == [2]


def test_the_demo_has_an_idle_tenant_to_show(settings) -> None:
    from tenants.demo import load_demo
    from usage import demo as demo_usage

    settings.CANOPY_DEMO_USAGE = True
    load_demo()
    now = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.UTC)
    demo_usage.demo_backfill(now, days=2)
    admin = get_user_model().objects.get(username="admin")
    result = report(admin, now, idle.DEFAULT_THRESHOLD_PERCENT)
    # dev2 trains on CPU: its 2 GPUs sit idle. dev1 uses its one GPU at the top of its daily wave,
    # and department1 (3 GPUs) as much: neither is idle at 25 %.
    assert idle_rows(result) == {"department1/dev2": (2, 0.0, 0.0, 48, 0)}
    assert result.without_figures == []
