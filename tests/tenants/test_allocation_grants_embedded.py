"""Time-bound grants in the embedded default (`scripts/console.sh`: SQLite, no Celery beat): the
demo's grant shows on dev2's Resources tab, and the runner console.sh starts
(`manage.py allocation_grants_end`) ends a grant whose time has come."""

from __future__ import annotations

import datetime
import re
import time

import requests

from tests.embedded import embedded_console, embedded_env, manage


def test_the_demo_shows_its_grant_and_the_embedded_default_ends_a_due_one(tmp_path):
    with embedded_console(tmp_path) as console:
        env = embedded_env(tmp_path)
        password = re.search(r"Platform admin:\s+admin / (\S+)", manage(env, "load_demo")).group(1)
        [(dev1, allocation)] = console.query(
            "select t.id, a.id from tenants_tenant t join tenants_allocation a on a.tenant_id = t.id "
            "where t.name_path = 'department1/dev1'"
        )
        [(dev2,)] = console.query("select id from tenants_tenant where name_path = 'department1/dev2'")
        page = console.signed_in("admin", password).get(f"{console.url}/tenants/{dev2}/?tab=resources").text
        assert re.search(r"12 CPU until \d{4}-\d\d-\d\d \d\d:\d\d, then back to 8 CPU", page)

        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
        answer = requests.patch(
            f"{console.url}/api/v1/allocations/{allocation}/",
            json={"gpu": 0, "ends_at": soon.isoformat()},
            headers={"Authorization": f"Token {console.api_token('admin', password)}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["grant"]["summary"].endswith("then back to 1 GPU")
        time.sleep(max(0.0, (soon - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.2)
        assert "ended" in manage(env, "allocation_grants_end")
        assert console.query("select gpu from tenants_allocation where id = ?", allocation) == [(1,)]
        assert console.query(
            "select action from tenants_auditevent where tenant_id = ? order by id desc limit 2", dev1
        ) == [("ALLOCATION_GRANT_ENDED",), ("ALLOCATION_UPDATED",)]
