"""A Hadoop cluster as a provisioning backend: Capacity Scheduler queues through the
ResourceManager's scheduler-conf mutation API, tenant directories through WebHDFS.

Same interface as the Kubernetes backend (`plan` / `execute` / `describe`), over objects rendered
by `provisioning.desired.yarn`. What differs, and why:

- The queue tree is planned as one: sibling capacities must add up per parent and partition, so a
  change to one tenant is a change to its siblings' remainder too. Every queue change of a plan goes
  in ONE batched PUT, after the RM's own `/scheduler-conf/validate` agreed.
- Removing a queue takes two PUTs (YARN cannot stop and remove in one): stop it, wait until it has
  no applications, then remove it with the rest of the change.
- A PUT that timed out may still have been applied. Nothing is sent again blindly: the live
  configuration is read again, and if the change is not there the push fails as transient, so the
  next attempt plans from what the RM really has.
- Queues Canopy does not own among the children it plans (made by hand under root) are read
  first (`foreign_queues`) and counted by the pure rendering; the plan then diffs against that
  same read, so a push reads the scheduler configuration once.
- Capacity keys of a partition a Canopy queue no longer has are unset (an empty value in the
  mutation removes the key), so a label taken away leaves nothing behind.
- Directories are never deleted (like a `Retain` volume): the data is the tenant's.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from provisioning.backends import kerberos
from provisioning.backends.base import (
    SIGN_IN,
    TLS,
    UNREACHABLE,
    Backend,
    BackendError,
    Change,
    FieldChange,
    NotSupported,
    ObjectRef,
    Plan,
    Scope,
    SyncResult,
    diff_object,
)
from provisioning.desired.yarn import (
    DIRECTORY_API,
    DIRECTORY_KIND,
    MANAGED_KEY,
    QUEUE_API,
    QUEUE_KIND,
    ROOT,
    ForeignQueue,
)

PREFIX = "yarn.scheduler.capacity."
JSON = {"Accept": "application/json"}
# The partition keys Canopy writes on its queues; present but not wanted, they are unset.
PARTITION_KEY = re.compile(r"^accessible-node-labels\.[^.]+\.(capacity|maximum-capacity)$")
UNSET = ""  # the mutation API removes a key given an empty value


def as_list(value: Any) -> list[Any]:
    """Jersey's JSON gives a one-element list as the bare element and an empty one as nothing."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class HadoopAccess:
    """How to reach one Hadoop cluster: every ResourceManager (HA: tried in turn) and NameNode."""

    rm_urls: list[str]
    webhdfs_urls: list[str]
    user: str
    auth: str = "simple"  # or "kerberos" (SPNEGO through requests-gssapi)
    kerberos_principal: str = ""
    kerberos_keytab: str = ""  # base64; empty: the worker's own ticket cache
    remainder_queue: str = "default"
    directory_permission: str = "750"
    timeout_seconds: float = 10.0
    drain_timeout_seconds: float = 120.0
    poll_seconds: float = 1.0


def _queues_from_conf(conf: dict[str, str]) -> dict[str, dict[str, str]]:
    """Flat scheduler-conf -> {queue path: {relative key: value}} for every queue in the tree."""
    paths = [ROOT]
    found: list[str] = []
    while paths:
        path = paths.pop()
        found.append(path)
        children = conf.get(f"{PREFIX}{path}.queues", "")
        paths.extend(f"{path}.{name.strip()}" for name in children.split(",") if name.strip())
    queues: dict[str, dict[str, str]] = {path: {} for path in found}
    for key, value in conf.items():
        if not key.startswith(PREFIX):
            continue
        rest = key[len(PREFIX) :]
        # The longest queue path the key starts with owns it (root.a.b.capacity -> root.a.b).
        owner = max((p for p in found if rest.startswith(p + ".")), key=len, default=None)
        if owner is not None:
            queues[owner][rest[len(owner) + 1 :]] = value
    return queues


@dataclass
class _Http:
    access: HadoopAccess
    session: requests.Session = field(default_factory=requests.Session)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.access.auth == "kerberos":
            self.session.auth = kerberos.KerberosAuth(
                principal=self.access.kerberos_principal, keytab_base64=self.access.kerberos_keytab
            )

    def close(self) -> None:
        self.session.close()
        if isinstance(self.session.auth, kerberos.KerberosAuth):
            self.session.auth.close()

    def _params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        extra = {"user.name": self.access.user} if self.access.auth == "simple" else {}
        return {**extra, **(params or {})}

    def _send(self, bases: list[str], method: str, path: str, **kwargs: Any) -> requests.Response:
        errors = []
        untrusted = 0  # how many of the bases failed their TLS handshake
        for base in bases:
            url = f"{base.rstrip('/')}{path}"
            self.calls.append((method, url))
            try:
                response = self.session.request(
                    method,
                    url,
                    params=self._params(kwargs.pop("params", None)),
                    timeout=self.access.timeout_seconds,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.Timeout:
                raise
            except kerberos.SPNEGO_ERRORS as error:
                # The KDC may be down for a moment, so transient; the message names the cause
                # (no keytab entry for the principal, clock skew, unknown server principal...).
                raise BackendError(
                    f"Kerberos sign-in to {base} failed: {error}", transient=True, reach=SIGN_IN
                ) from error
            except requests.ConnectionError as error:
                errors.append(f"{base}: {error}")
                untrusted += isinstance(error, requests.exceptions.SSLError)
                continue
            if isinstance(self.session.auth, kerberos.KerberosAuth) and (
                reason := self.session.auth.failure(response)
            ):
                raise BackendError(
                    f"Kerberos sign-in to {base} failed: {reason}", transient=True, reach=SIGN_IN
                )
            # A standby RM redirects to the active one or says so: try the next.
            if response.status_code in (307, 503) and len(bases) > 1:
                errors.append(f"{base}: HTTP {response.status_code} (standby?)")
                continue
            return response
        reach = TLS if untrusted and untrusted == len(errors) else UNREACHABLE
        raise BackendError("Could not reach " + "; ".join(errors), transient=True, reach=reach)

    def rm(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._send(self.access.rm_urls, method, f"/ws/v1/cluster{path}", **kwargs)

    def hdfs(self, method: str, path: str, op: str, **params: Any) -> requests.Response:
        # Quoted: a '?', '#' or '%' in a directory's name stays part of the name (issue 15), it never
        # ends the path or turns into another character on the server.
        url_path = f"/webhdfs/v1{quote(path, safe='/')}"
        return self._send(self.access.webhdfs_urls, method, url_path, params={"op": op, **params})


_NOT_AN_RM = "What answered is not a ResourceManager: check the ResourceManager URLs"


def _reach(error: requests.RequestException) -> str:
    """Why a request got no answer: a TLS handshake that failed, else nothing answering in time
    (an answer that is not JSON is no reach problem: "")."""
    if isinstance(error, requests.exceptions.SSLError):
        return TLS
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return UNREACHABLE
    return ""


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    remote = body.get("RemoteException") or {}
    if remote.get("message"):
        return remote["message"]
    if response.status_code == 401 and response.headers.get("WWW-Authenticate", "").startswith("Negotiate"):
        return "HTTP 401: the cluster asks for Kerberos (SPNEGO); set the connection's auth to kerberos."
    if body.get("message"):  # the web server's own error page, as JSON
        return f"HTTP {response.status_code}: {body['message']}"
    return response.text.strip() or f"HTTP {response.status_code}"


def _check(response: requests.Response, what: str) -> requests.Response:
    if response.status_code >= 400:
        raise BackendError(
            f"{what}: {_error_text(response)}",
            status=response.status_code,
            transient=response.status_code >= 500,
        )
    return response


def _entries(params: dict[str, Any]) -> dict[str, Any]:
    return {"entry": [{"key": key, "value": str(value)} for key, value in params.items()]}


class YarnBackend(Backend):
    name: ClassVar[str] = "yarn"

    def __init__(self, access: HadoopAccess, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.access = access
        self.http = _Http(access)
        self._sleep = sleep
        self._desired_queues: list[dict[str, Any]] = []
        # The configuration `foreign_queues` read, kept for the plan that follows it (one read).
        self._conf_read: dict[str, str] | None = None
        self._planning: dict[str, dict[str, str]] | None = None  # what `list_owned` gives `plan`

    def describe(self) -> str:
        return f"ResourceManager {self.access.rm_urls[0]} and WebHDFS {self.access.webhdfs_urls[0]}"

    def close(self) -> None:
        self.http.close()

    # Versions ----------------------------------------------------------------------------------

    def server_version(self) -> str:
        try:
            answer = self.http.rm("GET", "/info", headers=JSON)
            if answer.status_code == 404:  # a web server, but no ResourceManager's REST API there
                raise BackendError(f"{_NOT_AN_RM} (HTTP 404 for {answer.url.split('?')[0]}).")
            info = _check(answer, "ResourceManager").json()
            _check(self.http.hdfs("GET", "/", "GETHOMEDIRECTORY"), "NameNode")
            jmx = self.http._send(
                self.access.webhdfs_urls,
                "GET",
                "/jmx",
                params={"qry": "Hadoop:service=NameNode,name=NameNodeInfo"},
            )
        except requests.exceptions.JSONDecodeError as error:
            raise BackendError(f"{_NOT_AN_RM} (its /info is not JSON: {error})") from error
        except requests.RequestException as error:
            raise BackendError(
                f"Could not reach the cluster: {error}", transient=True, reach=_reach(error)
            ) from error
        cluster_info = info.get("clusterInfo") if isinstance(info, dict) else None
        if not isinstance(cluster_info, dict):
            raise BackendError(f"{_NOT_AN_RM} (its /info has no clusterInfo).")
        namenode = ""
        if jmx.status_code == 200:
            with contextlib.suppress(ValueError, AttributeError, IndexError, TypeError):
                beans = jmx.json().get("beans") or [{}]
                namenode = str(beans[0].get("SoftwareVersion") or beans[0].get("Version") or "")
        rm_version = str(cluster_info.get("resourceManagerVersion") or cluster_info.get("hadoopVersion"))
        state = cluster_info.get("haState", "ACTIVE")
        return f"ResourceManager {rm_version} ({state}), NameNode {namenode or 'reachable'}"

    # Reading -----------------------------------------------------------------------------------

    def scheduler_conf(self) -> dict[str, str]:
        response = _check(self.http.rm("GET", "/scheduler-conf", headers=JSON), "Reading scheduler-conf")
        return {p["name"]: p["value"] for p in as_list(response.json().get("property"))}

    def live_queues(self) -> dict[str, dict[str, str]]:
        return _queues_from_conf(self.scheduler_conf())

    def foreign_queues(self) -> list[ForeignQueue]:
        """Queues Canopy does not manage among the children of root and of Canopy's own queues,
        with their capacity per partition, for the rendering to count (root.default, the cluster's
        remainder leaf, is not one of them: Canopy sets its capacities). The configuration read
        here is the one the next `plan` diffs against, so planning costs a single read."""
        conf = self.scheduler_conf()
        self._conf_read = conf
        queues = _queues_from_conf(conf)
        ours = {path for path, params in queues.items() if params.get(MANAGED_KEY) == "true"}
        remainder = f"{ROOT}.{self.access.remainder_queue}"
        found = []
        for path, params in sorted(queues.items()):
            parent = path.rpartition(".")[0]
            if path in ours or path == remainder or parent not in ({ROOT} | ours):
                continue
            capacities = {"": params["capacity"]} if "capacity" in params else {}
            for key, value in params.items():
                if key.startswith("accessible-node-labels.") and key.endswith(".capacity"):
                    label = key.removeprefix("accessible-node-labels.").removesuffix(".capacity")
                    if "." not in label:
                        capacities[label] = value
            found.append(ForeignQueue(path, capacities))
        return found

    def _planned_queues(self) -> dict[str, dict[str, str]]:
        conf, self._conf_read = self._conf_read, None
        return _queues_from_conf(conf if conf is not None else self.scheduler_conf())

    def _queue_object(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": QUEUE_API, "kind": QUEUE_KIND, "metadata": {"name": path}, "spec": params}

    def _owned_queues(self, queues: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
        remainder = f"{ROOT}.{self.access.remainder_queue}"
        return [
            self._queue_object(path, params)
            for path, params in sorted(queues.items())
            if path in (ROOT, remainder) or params.get(MANAGED_KEY) == "true"
        ]

    def list_owned(self, scope: Scope) -> list[dict[str, Any]]:
        """Every queue Canopy manages (marked `canopy-managed`, plus root and root.default whose
        capacities it keeps). Directories are read one by one in `plan`: HDFS has no labels."""
        live = self._planning if self._planning is not None else self.live_queues()
        return self._owned_queues(live)

    def read_directory(self, path: str) -> dict[str, Any] | None:
        status = self.http.hdfs("GET", path, "GETFILESTATUS")
        if status.status_code == 404:
            return None
        file_status = _check(status, f"Reading {path}").json()["FileStatus"]
        acl = _check(self.http.hdfs("GET", path, "GETACLSTATUS"), f"Reading the ACL of {path}").json()[
            "AclStatus"
        ]
        summary = _check(
            self.http.hdfs("GET", path, "GETCONTENTSUMMARY"), f"Reading the quota of {path}"
        ).json()["ContentSummary"]
        permission = str(file_status["permission"])
        if file_status.get("aclBit"):
            # With an ACL the group digit is the mask, which follows the entries (compared as such).
            permission = permission[0] + self.access.directory_permission[1] + permission[2:]
        return {
            "apiVersion": DIRECTORY_API,
            "kind": DIRECTORY_KIND,
            "metadata": {"name": path},
            "spec": {
                "owner": file_status["owner"],
                "group": file_status["group"],
                "permission": permission,
                "acl": sorted(entry for entry in acl.get("entries") or [] if _named(entry)),
                "namespaceQuota": summary.get("quota", -1),
                "spaceQuota": summary.get("spaceQuota", -1),
            },
        }

    def read(self, ref: ObjectRef) -> dict[str, Any] | None:
        if ref.kind == DIRECTORY_KIND:
            return self.read_directory(ref.name)
        params = self.live_queues().get(ref.name)
        return None if params is None else self._queue_object(ref.name, params)

    # Planning ----------------------------------------------------------------------------------

    def plan(self, scope: Scope, desired: list[dict[str, Any]]) -> Plan:
        """Queues: the shared diff against what the RM has loaded. Directories: read each wanted one."""
        queues = [obj for obj in desired if obj["kind"] == QUEUE_KIND]
        directories = [obj for obj in desired if obj["kind"] == DIRECTORY_KIND]
        self._desired_queues = queues  # execute() re-plans from them after a timeout
        live = self._planned_queues()
        self._planning = live
        try:
            plan = Backend.plan(self, scope, queues)
        finally:
            self._planning = None
        # root and root.default are the cluster's: never removed by Canopy.
        keep = {ROOT, f"{ROOT}.{self.access.remainder_queue}"}
        plan.changes = [c for c in plan.changes if not (c.action == "delete" and c.ref.name in keep)]
        _unset_stale_partition_keys(plan, queues, live)
        creating = [c.ref.name for c in plan.changes if c.action == "create"]
        if creating:
            taken = [path for path in creating if path in live]
            if taken:
                raise BackendError(
                    f"Queue {', '.join(taken)} already exists on the cluster and is not Canopy's; "
                    "Canopy does not take it over. Remove or rename it there."
                )
        for obj in directories:
            ref = ObjectRef.of(obj)
            live = self.read_directory(ref.name)
            if live is None:
                plan.changes.append(Change("create", ref, [], obj))
                continue
            fields = diff_object(obj, live)
            if fields:
                plan.changes.append(Change("update", ref, fields, obj))
            else:
                plan.unchanged.append(ref)
        return plan

    # Applying ----------------------------------------------------------------------------------

    def _mutation(self, plan_changes: list[Change]) -> dict[str, Any]:
        add, update, remove = [], [], []
        for change in sorted(plan_changes, key=lambda c: (c.ref.name.count("."), c.ref.name)):
            if change.action == "create":
                assert change.desired is not None  # nosec B101 # narrows the type; creates always have a desired object
                add.append({"queue-name": change.ref.name, "params": _entries(change.desired["spec"])})
            elif change.action == "update":
                assert change.desired is not None  # nosec B101 # narrows the type; updates always have a desired object
                wanted = {
                    f.path[1]: UNSET if f.desired is None else change.desired["spec"][f.path[1]]
                    for f in change.fields
                    if f.path[0] == "spec" and len(f.path) == 2
                }
                if wanted:
                    update.append({"queue-name": change.ref.name, "params": _entries(wanted)})
        going = sorted(
            (c.ref.name for c in plan_changes if c.action == "delete"), key=lambda p: -p.count(".")
        )
        # Removing a parent removes its subtree: name only the topmost queues that go.
        remove = [p for p in going if not any(p.startswith(q + ".") for q in going)]
        body: dict[str, Any] = {}
        if add:
            body["add-queue"] = add
        if update:
            body["update-queue"] = update
        if remove:
            body["remove-queue"] = remove if len(remove) > 1 else remove[0]
        return body

    def _put(self, body: dict[str, Any], what: str) -> None:
        """Validate with the RM, then PUT. A refusal carries the RM's own message."""
        validated = self.http.rm("POST", "/scheduler-conf/validate", json=body, headers=JSON)
        if validated.status_code == 404:
            pass  # an RM without the validate endpoint: the PUT validates too
        else:
            _check(validated, f"The ResourceManager refused {what}")
        _check(
            self.http.rm("PUT", "/scheduler-conf", json=body, headers=JSON),
            f"The ResourceManager refused {what}",
        )

    def _wait_drained(self, paths: list[str]) -> None:
        deadline = time.monotonic() + self.access.drain_timeout_seconds
        while True:
            response = _check(self.http.rm("GET", "/scheduler", headers=JSON), "Reading the queues")
            running = {
                path: count
                for path, count in _application_counts(response.json()).items()
                if path in paths and count
            }
            if not running:
                return
            if time.monotonic() >= deadline:
                busy = ", ".join(f"{p} ({n} applications)" for p, n in sorted(running.items()))
                raise BackendError(f"Stopped, waiting for applications to finish: {busy}.", transient=True)
            self._sleep(self.access.poll_seconds)

    def _apply_queues(self, changes: list[Change], scope: Scope, desired: list[dict[str, Any]]) -> int:
        writes = 0
        going = [c.ref.name for c in changes if c.action == "delete"]
        if going:
            stop = {
                "update-queue": [
                    {"queue-name": p, "params": _entries({"state": "STOPPED"})} for p in sorted(going)
                ]
            }
            self._put(stop, "stopping " + ", ".join(sorted(going)))
            writes += 1
            self._wait_drained(going)
        body = self._mutation(changes)
        if body:
            try:
                self._put(body, "the queue change")
            except BackendError:
                # Refused: unless another worker pushing the same tree got there first (then the
                # live configuration already is what we want), the RM's message stands.
                if any(c.ref.kind == QUEUE_KIND for c in self.plan(scope, desired).changes):
                    raise
                return writes
            except requests.Timeout as error:
                # It may have been applied all the same: look before sending anything again.
                again = self.plan(scope, desired)
                if any(c.ref.kind == QUEUE_KIND for c in again.changes):
                    raise BackendError(
                        "The ResourceManager did not answer in time; the change is not (yet) in its "
                        "configuration, so it is planned again from what it has at the next attempt.",
                        transient=True,
                    ) from error
            writes += 1
        return writes

    def _apply_directory(self, change: Change) -> int:
        assert change.desired is not None  # nosec B101 # narrows the type; only deletes have no desired object
        path, spec = change.ref.name, change.desired["spec"]
        fields = {f.path[1] for f in change.fields if len(f.path) > 1}
        everything = change.action == "create"
        writes = 0

        def put(op: str, **params: Any) -> None:
            nonlocal writes
            _check(self.http.hdfs("PUT", path, op, **params), f"{op} on {path}")
            writes += 1

        if everything:
            put("MKDIRS", permission=spec["permission"])
        if everything or fields & {"owner", "group"}:
            put("SETOWNER", owner=spec["owner"], group=spec["group"])
        if everything or fields & {"permission", "acl"}:
            put("SETPERMISSION", permission=spec["permission"])
            if not everything:
                put("REMOVEACL")
            if spec["acl"]:
                put("MODIFYACLENTRIES", aclspec=",".join(spec["acl"]))
        if everything or fields & {"namespaceQuota", "spaceQuota"}:
            put("SETQUOTA", namespacequota=spec["namespaceQuota"], storagespacequota=spec["spaceQuota"])
        return writes

    def execute(self, plan: Plan, desired: list[dict[str, Any]] | None = None) -> SyncResult:
        result = SyncResult(plan=plan)
        queue_changes = [c for c in plan.changes if c.ref.kind == QUEUE_KIND]
        try:
            if queue_changes:
                wanted = desired if desired is not None else self._desired_queues
                result.writes += self._apply_queues(
                    queue_changes, plan.scope, [o for o in wanted if o["kind"] == QUEUE_KIND]
                )
            for change in plan.changes:
                if change.ref.kind == DIRECTORY_KIND:
                    result.writes += self._apply_directory(change)
        except requests.RequestException as error:
            raise BackendError(f"The cluster did not answer: {error}", transient=True) from error
        return result

    def sync(self, scope: Scope, desired: list[dict[str, Any]]) -> SyncResult:
        return self.execute(self.plan(scope, desired), desired)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise NotSupported("YARN queues are applied as one batched change: use execute().")

    def delete(self, ref: ObjectRef) -> None:
        raise NotSupported("YARN queues are removed as one batched change: use execute().")


def _stale_partition_keys(spec: dict[str, Any], live: dict[str, str] | None) -> list[FieldChange]:
    """Partition capacity keys a Canopy queue has on the RM but is no longer meant to have (its
    tenant lost the pool). Only on queues marked as Canopy's: root's and root.default's partition
    keys may be what other queues on the cluster rely on."""
    if not live or live.get(MANAGED_KEY) != "true":
        return []
    return [
        FieldChange(("spec", key), value, None)
        for key, value in sorted(live.items())
        if PARTITION_KEY.match(key) and key not in spec
    ]


def _unset_stale_partition_keys(
    plan: Plan, desired: list[dict[str, Any]], live: dict[str, dict[str, str]]
) -> None:
    """The shared diff compares only the keys that are wanted; add the removal of stale partition
    keys, so a label taken away is unset and their absence afterwards is no difference."""
    by_name = {obj["metadata"]["name"]: obj for obj in desired}
    for change in plan.changes:
        if change.action == "update" and change.desired is not None:
            change.fields += _stale_partition_keys(change.desired["spec"], live.get(change.ref.name))
    unchanged = []
    for ref in plan.unchanged:
        stale = _stale_partition_keys(by_name[ref.name]["spec"], live.get(ref.name))
        if stale:
            plan.changes.append(Change("update", ref, stale, by_name[ref.name]))
        else:
            unchanged.append(ref)
    plan.unchanged = unchanged


def _named(entry: str) -> bool:
    """'user:alice:rwx' and 'default:group:t1:rwx' are ours; HDFS adds the unnamed base entries
    (default:user::rwx, default:mask::rwx, ...) itself."""
    parts = entry.removeprefix("default:").split(":")
    return len(parts) == 3 and parts[0] in ("user", "group") and bool(parts[1])


def _application_counts(scheduler: dict[str, Any]) -> dict[str, int]:
    info = scheduler["scheduler"]["schedulerInfo"]
    counts: dict[str, int] = {}
    pending = as_list((info.get("queues") or {}).get("queue"))
    while pending:
        queue = pending.pop()
        counts[queue["queuePath"]] = int(queue.get("numApplications") or 0)
        pending.extend(as_list((queue.get("queues") or {}).get("queue")))
    return counts
