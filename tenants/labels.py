"""What a pool's `node_selector` may hold: on a Kubernetes cluster, the node labels its pods are
pinned to; on a YARN cluster, the node label (partition) its queues use.

Kubernetes: the pool's selector is meant for a pod's `spec.nodeSelector` (and Kueue's
ResourceFlavor `spec.nodeLabels`), both a map of label key to value. So a pool holds an
equality-based selector only: `key=value` pairs joined by commas, each key once, no spaces
(`gpu=a100,topology.kubernetes.io/zone=eu-1`; a value may be empty: `node-role.kubernetes.io/worker=`).
Set-based requirements (`in`, `notin`, `!key`, a bare `key`) and `!=` have no map form, so they are
refused rather than silently dropped. Keys and values follow apimachinery's validation
(IsQualifiedName, IsValidLabelValue): an optional DNS-1123 subdomain prefix of at most 253
characters and '/', then a name of at most 63; values at most 63.

YARN: NodeLabelUtil.checkAndThrowLabelName (hadoop-yarn-common, org.apache.hadoop.yarn.nodelabels):
at most 255 characters matching ^[0-9a-zA-Z][0-9a-zA-Z-_]* ("label name should only contains
{0-9, a-z, A-Z, -, _} and should not started with {-,_}").
"""

from __future__ import annotations

import re

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_SUBDOMAIN_MAX = 253
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
NAME_MAX = 63
YARN_LABEL = re.compile(r"[0-9a-zA-Z][0-9a-zA-Z_-]*")
YARN_LABEL_MAX = 255

SELECTOR_RULE = (
    "A Kubernetes pool's node selector is key=value pairs joined by commas, each key once, no spaces "
    "(e.g. gpu=a100,topology.kubernetes.io/zone=eu-1), as a pod's nodeSelector holds them"
)
KEY_RULE = (
    "a label key is an optional prefix (a DNS subdomain: lower-case letters, digits, '-' and '.', at most "
    "253 characters) and '/', then a name of 1 to 63 letters, digits, '-', '_' or '.', starting and "
    "ending with a letter or digit"
)
VALUE_RULE = (
    "a label value is empty or 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a "
    "letter or digit"
)
YARN_RULE = (
    "A YARN pool's node selector is its node label (partition): 1 to 255 letters, digits, '-' or '_', "
    "starting with a letter or digit (YARN's own rule)"
)


def label_key_valid(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= DNS_SUBDOMAIN_MAX and DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= NAME_MAX and bool(QUALIFIED_NAME.fullmatch(name))


def label_value_valid(value: str) -> bool:
    return len(value) <= NAME_MAX and bool(LABEL_VALUE.fullmatch(value))


def node_selector_errors(text: str) -> list[str]:
    """Why `text` is not an equality-based node selector Canopy can render (empty: all nodes)."""
    if text == "":
        return []
    errors = []
    seen: set[str] = set()
    for item in text.split(","):
        if "=" not in item or "!=" in item or "==" in item or any(c.isspace() for c in item):
            errors.append(
                f"{SELECTOR_RULE}; {item!r} is not a key=value pair (set-based and != cannot be rendered)."
            )
            continue
        key, _, value = item.partition("=")
        if not label_key_valid(key):
            errors.append(f"{SELECTOR_RULE}; in {item!r}, {KEY_RULE}.")
        elif not label_value_valid(value):
            errors.append(f"{SELECTOR_RULE}; in {item!r}, {VALUE_RULE}.")
        elif key in seen:
            errors.append(f"{SELECTOR_RULE}; the key {key} is given twice.")
        seen.add(key)
    return errors


def node_selector_labels(text: str) -> dict[str, str]:
    """A valid selector as the map a nodeSelector (or a ResourceFlavor's nodeLabels) holds."""
    return dict(item.partition("=")[::2] for item in text.split(",")) if text else {}


def yarn_node_label_errors(text: str) -> list[str]:
    """Why `text` is not a YARN node label (empty: the default partition)."""
    if text == "" or (len(text) <= YARN_LABEL_MAX and YARN_LABEL.fullmatch(text)):
        return []
    return [f"{YARN_RULE}; {text!r} is not one."]
