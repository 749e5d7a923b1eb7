"""PATCHGATE_TRACE: one JSON line per DIMSE operation of a Modality or Session, for scripts/bare_dimse.py."""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from pydicom.dataset import Dataset

from simulators._net import status_hex
from simulators.endpoint import JSON, Endpoint

__all__ = [
    "TRACE_VAR",
    "commit_fields",
    "get_fields",
    "n_fields",
    "query_fields",
    "store_fields",
    "trace_caller",
    "trace_line",
    "trace_peer",
    "traced",
]

TRACE_VAR = "PATCHGATE_TRACE"
_F = TypeVar("_F", bound=Callable[..., Any])
_Fields = Callable[[tuple[Any, ...], dict[str, Any], Any], dict[str, JSON]]


def _status_of(result: Any) -> dict[str, JSON]:
    """What a result says happened: accepted, status (or each item's), error."""
    out: dict[str, JSON] = {"accepted": getattr(result, "accepted", None), "error": getattr(result, "error", "")}
    for name in ("status", "action_status"):
        if hasattr(result, name):
            out["status"] = status_hex(getattr(result, name))
    return out


def trace_line(path: str, line: dict[str, JSON]) -> None:
    """Append `line` to the trace file (one write of a whole line, so processes and threads do not interleave).

    `case` is the pytest case running (PYTEST_CURRENT_TEST, set by pytest), so a benchmark can tell
    which suite spent the time; None outside pytest.
    """
    head: dict[str, JSON] = {"pid": os.getpid(), "case": os.environ.get("PYTEST_CURRENT_TEST")}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(head | line, separators=(",", ":")) + "\n")


def trace_caller(modality: Any) -> dict[str, JSON]:
    """Our AE title and the user identity item we send (PS3.7 D.3.3.7.1), its fields base64."""
    item = modality.identity
    identity: JSON = None
    if item is not None:
        identity = {
            "type": int(item.user_identity_type),
            "primary": base64.b64encode(item.primary_field or b"").decode(),
            "secondary": base64.b64encode(item.secondary_field or b"").decode(),
            "response": bool(item.positive_response_requested),
        }
    return {"calling": modality.ae_title, "identity": identity}


def trace_peer(peer: Endpoint) -> dict[str, JSON]:
    return {"ae": peer.ae_title, "host": peer.host, "port": peer.port, "tls": peer.tls}


def traced(op: str, fields: _Fields | None = None, *, session: bool = False) -> Callable[[_F], _F]:
    """Trace calls of a `Modality` method `(self, peer, ...)`, or with `session` of a Session's `(self, ...)`.

    Unset PATCHGATE_TRACE costs a `Modality` operation (an association each) one environment lookup,
    and a Session's operation one attribute read (the session looked the variable up when it opened).
    Set, the line has the operation, the peer, its data sets (SOP instance UIDs, replayable from the
    corpus) and identifiers as DICOM JSON, the outcome, and the wall-clock start and duration.
    """

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            path = self.trace_path if session else os.environ.get(TRACE_VAR)
            if not path:
                return method(self, *args, **kwargs)
            start, t0 = time.time(), time.perf_counter()
            result = method(self, *args, **kwargs)
            duration = time.perf_counter() - t0
            rest, peer, owner = (args, self.peer, self.modality) if session else (args[1:], args[0], self)
            line: dict[str, JSON] = {
                "op": op,
                "session": self.trace_id if session else None,
                **trace_caller(owner),
                "peer": trace_peer(peer),
            }
            line |= fields(rest, kwargs, result) if fields is not None else {}
            line |= {"outcome": _status_of(result), "t": round(start, 6), "dur": round(duration, 6)}
            trace_line(path, line)
            return result

        return cast(_F, call)

    return wrap


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], n: int, name: str, default: Any = None) -> Any:
    return args[n] if len(args) > n else kwargs.get(name, default)


def _ds_json(ds: Any) -> JSON:
    return cast(JSON, ds.to_json_dict()) if isinstance(ds, Dataset) else None


def query_fields(names: Sequence[str]) -> _Fields:
    """Fields for an operation whose first argument is an identifier and the rest plain values named `names`."""

    def fields(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> dict[str, JSON]:
        out: dict[str, JSON] = {"query": _ds_json(_arg(args, kwargs, 0, "query"))}
        for n, name in enumerate(names, start=1):
            out[name] = _arg(args, kwargs, n, name)
        return out

    return fields


def store_fields(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> dict[str, JSON]:
    outcomes = getattr(result, "instances", result)  # a StoreResult, or a Session's list of outcomes
    return {
        "instances": [
            {"sop_class": o.sop_class_uid, "sop_instance": o.sop_instance_uid, "syntax": o.transfer_syntax_uid}
            for o in outcomes
        ],
        "statuses": [status_hex(o.status) for o in outcomes],
    }


def get_fields(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> dict[str, JSON]:
    pairs = kwargs.get("sop_classes", ())
    return {
        **query_fields(["model"])(args, kwargs, result),
        # A generator was consumed by the call: the pairs are unknown then.
        "pairs": [[str(a), str(t)] for a, t in pairs] if isinstance(pairs, (list, tuple)) else None,
    }


def n_fields(key: str) -> _Fields:
    def fields(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> dict[str, JSON]:
        return {"uid": _arg(args, kwargs, 0, "uid"), key: _ds_json(_arg(args, kwargs, 1, key))}

    return fields


def commit_fields(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> dict[str, JSON]:
    refs = _arg(args, kwargs, 1, "refs", ())
    return {
        "transaction_uid": _arg(args, kwargs, 0, "transaction_uid"),
        "refs": [[str(a), str(b)] for a, b in refs],
        "keep_open": kwargs.get("keep_open", 5.0),
    }
