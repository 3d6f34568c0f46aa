"""Golden-response comparison used by test_contract_examples.py.

Rules (see the module docstring of test_contract_examples.py for the why):

* shape: every key of the example response must be present in the actual response with the same JSON
  type, recursively (int and float are both "number"); list elements are compared against the merged
  shape of the example's elements (keys present in every element; a key that is null in any element
  may be null).
* null: an actual null is accepted where the example shows null, and for a client-writable field of a
  resource that the client did not set (AMS itself returns null or omits such fields). Server-filled
  fields (ids, timestamps, states, generated tokens, ...) must never be null where the example has a value.
* echo: every value the client sent (the example's request body, or the body the test used to create
  the prerequisite resource) must come back equal. Timestamps compare as instants, durations by value.
* format: server-generated strings are compared by format: GUID, ISO-8601 timestamp, ISO-8601
  duration, absolute URL, absolute path, ARM id (case-insensitive, with the appliance's identity).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from _api import DURATION_RE, GUID_RE, TIMESTAMP_RE, URL_RE

# ---------------------------------------------------------------------------------------------
# Which fields of each resource kind the server fills in (dotted paths relative to the resource).
# SERVER_ONLY: read-only in the spec, never sent by a client.
# SERVER_FILLED: writable, but the server generates a value when the client gives none.
# Both must be non-null in a response wherever the example shows a value.
# Everything else under a resource is client-writable.
COMMON_SERVER_ONLY = {"id", "name", "type", "systemData"}
SERVER_ONLY = {
    "liveEvent": {"properties.provisioningState", "properties.resourceState", "properties.created",
                  "properties.lastModified", "properties.input.endpoints",
                  "properties.input.timedMetadataEndpoints", "properties.preview.endpoints"},
    "liveOutput": {"properties.created", "properties.lastModified", "properties.provisioningState",
                   "properties.resourceState"},
    "asset": {"properties.assetId", "properties.created", "properties.lastModified",
              "properties.storageEncryptionFormat"},
    "locator": {"properties.created", "properties.contentKeys"},
    "policy": {"properties.created"},
    "streamingEndpoint": {"properties.hostName", "properties.provisioningState", "properties.resourceState",
                          "properties.freeTrialEndTime", "properties.created", "properties.lastModified",
                          "sku.name"},
    "accountFilter": set(),
    "assetFilter": set(),
}
SERVER_FILLED = {
    "liveEvent": {"properties.input.accessToken"},
    "liveOutput": {"properties.manifestName"},
    "asset": {"properties.container"},
    "locator": {"properties.streamingLocatorId", "properties.endTime"},
    "policy": set(),
    "streamingEndpoint": {"properties.scaleUnits"},
    "accountFilter": set(),
    "assetFilter": set(),
}


# Server-generated values whose format legitimately differs from the example's:
# - a live output's default manifestName: AMS generates a GUID, RMS names it "manifest" (the quickstart's
#   listPaths example shows /<locatorId>/manifest.ism/...), and the appliance follows RMS.
FORMAT_EXEMPT = {("liveOutput", "properties.manifestName")}

# Telemetry values that only exist once something happened: the appliance reports null until
# then (an event that never ingested has no ingestion begin or end), where the example, taken
# from a live system, shows a value.
NULL_UNTIL_IT_HAPPENS = (".ingestion.begin", ".ingestion.end")


def is_server_key(kind: str, rel: str) -> bool:
    keys = COMMON_SERVER_ONLY | SERVER_ONLY[kind] | SERVER_FILLED[kind]
    return any(rel == k or rel.startswith(k + ".") for k in keys)


def is_server_only(kind: str, rel: str) -> bool:
    keys = COMMON_SERVER_ONLY | SERVER_ONLY[kind]
    return any(rel == k or rel.startswith(k + ".") for k in keys)


# ---------------------------------------------------------------------------------------------
class Nullable:
    """Merged-shape marker: some example element had null here."""

    def __init__(self, v):
        self.v = v

    def __repr__(self) -> str:
        return f"{self.v!r:.60} or null"


ANY = object()


def jtype(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def merge_shapes(values: list):
    """Merged shape of list elements: keys present in all elements, nullable where any is null."""
    nonnull = [v for v in values if v is not None]
    if not nonnull:
        return None
    types = {jtype(v) for v in nonnull}
    if len(types) > 1:
        return ANY
    first = nonnull[0]
    if isinstance(first, dict):
        keys = set(first)
        for v in nonnull[1:]:
            keys &= set(v)
        out = {}
        for k in first:
            if k not in keys:
                continue
            sub = [v[k] for v in nonnull]
            m = merge_shapes(sub)
            out[k] = Nullable(m) if any(s is None for s in sub) and m is not None else m
        return out
    if isinstance(first, list):
        return [merge_shapes([x for v in nonnull for x in v])] if any(nonnull) else []
    return first


# ---------------------------------------------------------------------------------------------
def parse_ts(s: str):
    """(UTC datetime to the second, fractional seconds as Decimal) or None. Naive = UTC."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", s)
    if not m:
        return None
    base, frac, tz = m.groups()
    fmt = "%Y-%m-%dT%H:%M:%S" if base.count(":") == 2 else "%Y-%m-%dT%H:%M"
    try:
        dt = datetime.strptime(base, fmt)
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            dt = dt - sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    except (ValueError, OverflowError):
        return None
    return dt.replace(tzinfo=timezone.utc), (Decimal(frac) if frac else Decimal(0))


def parse_duration_seconds(s: str):
    m = re.match(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$", s)
    if not m or s in ("P", "PT"):
        return None
    d, h, mi, se = (Decimal(x) if x else Decimal(0) for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + se


def values_equal(sent, got) -> bool:
    if isinstance(sent, bool) or isinstance(got, bool):
        return sent is got
    if isinstance(sent, (int, float)) and isinstance(got, (int, float)):
        return Decimal(str(sent)) == Decimal(str(got))
    if isinstance(sent, str) and isinstance(got, str):
        if sent == got:
            return True
        if TIMESTAMP_RE.match(sent) and TIMESTAMP_RE.match(got):
            a, b = parse_ts(sent), parse_ts(got)
            if a and b:
                # instant equality; a naive timestamp is taken as UTC
                return a[0] == b[0] and a[1] == b[1]
        if sent.startswith("P") and got.startswith("P"):
            a, b = parse_duration_seconds(sent), parse_duration_seconds(got)
            return a is not None and a == b
        return False
    return sent == got


def check_echo(sent, got, path: str, errs: list, *, case_insensitive_keys: bool = False) -> None:
    """Every value the client sent must come back equal (null values in the request are ignored)."""
    if sent is None:
        return
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            errs.append(f"{path}: sent an object, got {jtype(got)} {got!r:.80}")
            return
        if path.endswith(".tags") and set(got) != {k for k, v in sent.items() if v is not None}:
            errs.append(f"{path}: sent tags {sorted(sent)}, got {sorted(got)}")
        for k, v in sent.items():
            if v is None:
                continue
            if k not in got:
                errs.append(f"{path}.{k}: sent {v!r:.80} but the response has no such key")
                continue
            check_echo(v, got[k], f"{path}.{k}", errs)
        return
    if isinstance(sent, list):
        if not isinstance(got, list):
            errs.append(f"{path}: sent an array, got {jtype(got)} {got!r:.80}")
            return
        if len(sent) != len(got):
            errs.append(f"{path}: sent {len(sent)} elements, got {len(got)}: {got!r:.160}")
            return
        for i, (a, b) in enumerate(zip(sent, got)):
            check_echo(a, b, f"{path}[{i}]", errs)
        return
    if not values_equal(sent, got):
        errs.append(f"{path}: sent {sent!r}, got {got!r}")


def check_format(ex: str, got: str, path: str, errs: list) -> None:
    if GUID_RE.match(ex):
        if not GUID_RE.match(got):
            errs.append(f"{path}: expected a GUID like {ex!r}, got {got!r}")
    elif TIMESTAMP_RE.match(ex):
        if not (TIMESTAMP_RE.match(got) and parse_ts(got)):
            errs.append(f"{path}: expected an ISO-8601 timestamp like {ex!r}, got {got!r}")
    elif re.match(r"^P(?:\d|T\d)", ex) and DURATION_RE.match(ex):
        if not DURATION_RE.match(got):
            errs.append(f"{path}: expected an ISO-8601 duration like {ex!r}, got {got!r}")
    elif URL_RE.match(ex):
        if not URL_RE.match(got):
            errs.append(f"{path}: expected an absolute URL like {ex!r:.60}, got {got!r}")
    elif ex.startswith("/"):
        if not got.startswith("/"):
            errs.append(f"{path}: expected an absolute path like {ex!r:.60}, got {got!r}")


class Shape:
    """Shape comparison of one response document against the example's."""

    def __init__(self, errs: list, identity: dict, *, optional_key=None):
        self.errs = errs
        self.identity = identity  # example subscription/rg/account -> appliance's
        self.optional_key = optional_key or (lambda path, key, parent: False)

    def expected_id(self, ex_id: str) -> str:
        out = ex_id
        for a, b in self.identity.items():
            out = re.sub(re.escape(a), b, out, flags=re.I)
        return out

    def check_id(self, ex_id: str, got_id: str, got_name, path: str) -> None:
        """ARM id: the example's id with the appliance's identity, compared case-insensitively; its last
        segment must be the resource's own name (list elements share the first element's shape)."""
        want = self.expected_id(ex_id)
        if want.endswith("/"):  # liveoutput-list-all.json's id ends in "liveoutputs/"
            want_prefix = want.rstrip("/")
        else:
            want_prefix = want.rsplit("/", 1)[0]
        got_prefix, _, got_last = got_id.rpartition("/")
        if got_prefix.lower() != want_prefix.lower():
            self.errs.append(f"{path}: ARM id {got_id!r} is not under {want_prefix!r} (case-insensitive)")
        elif got_name is not None and got_last.lower() != str(got_name).lower():
            self.errs.append(f"{path}: ARM id {got_id!r} does not end with the resource name {got_name!r}")

    def compare(self, ex, got, path: str, *, kind: str | None = None, rel: str = "",
                echo=None, echo_known: bool = False) -> None:
        """kind/rel: resource kind and dotted path inside the resource (None outside resources).
        echo: the client's body for this resource at `rel` (for the null rule); echo_known: whether
        the resource was created/updated by this test with a known body."""
        errs = self.errs
        if ex is ANY:
            return
        nullable = False
        if isinstance(ex, Nullable):
            nullable, ex = True, ex.v
        if ex is None:
            return
        if got is None:
            if nullable or path.endswith(NULL_UNTIL_IT_HAPPENS):
                return
            if kind and echo_known and not is_server_key(kind, rel) and echo is None:
                return  # client-writable and not set by the client
            if kind and not echo_known and not is_server_key(kind, rel):
                return  # resource not created by this test (e.g. `default`): unknown client values
            errs.append(f"{path}: null, but the example has {jtype(ex)} {ex!r:.60}")
            return
        if jtype(ex) != jtype(got):
            errs.append(f"{path}: expected {jtype(ex)} (example {ex!r:.60}), got {jtype(got)} {got!r:.80}")
            return
        if isinstance(ex, dict):
            if rel == "tags" or path.endswith(".tags"):
                return  # a map: its keys are data, not schema (echo checks the values)
            for k, v in ex.items():
                sub_rel = f"{rel}.{k}" if rel else k
                if k not in got:
                    if self.optional_key(path, k, got):
                        continue
                    errs.append(f"{path}.{k}: missing (example: {v!r:.80})")
                    continue
                if k == "id" and isinstance(v, str) and v.startswith("/subscriptions/") and isinstance(got[k], str):
                    self.check_id(v, got[k], got.get("name"), f"{path}.{k}")
                    continue
                sub_echo = echo.get(k) if isinstance(echo, dict) else None
                self.compare(v, got[k], f"{path}.{k}", kind=kind, rel=sub_rel, echo=sub_echo,
                             echo_known=echo_known)
            return
        if isinstance(ex, list):
            if not ex or not got:
                return
            shape = merge_shapes(ex)
            for i, g in enumerate(got):
                self.compare(shape, g, f"{path}[{i}]", kind=kind, rel=rel,
                             echo=None, echo_known=echo_known and isinstance(echo, list))
            return
        if isinstance(ex, str):
            key = path.rsplit(".", 1)[-1]
            if key == "type" and ex.startswith("Microsoft.Media/"):
                if got.lower() != ex.lower():
                    errs.append(f"{path}: type {got!r} != {ex!r} (case-insensitive)")
                return
            if echo is None and not (kind and (kind, rel) in FORMAT_EXEMPT):
                check_format(ex, got, path, errs)
