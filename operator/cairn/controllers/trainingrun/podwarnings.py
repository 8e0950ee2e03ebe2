"""What the kubelet says of a training pod that does not start, asked of the API server sparingly.

Events are found by a field selector, which the API server answers by reading every Event of the
namespace from etcd: in the scale benchmark, 2,000 pending pods asked on every reconcile of
their run and kept etcd saturated. A pod is asked about once it has waited ASK_AFTER_SECONDS
(most pods start sooner, and the kubelet's warnings take that long to appear anyway), then at
most every ASK_EVERY_SECONDS; in between, the last answer stands.
"""

import dataclasses
import threading
import time

from cairn.kube import workloads

ASK_AFTER_SECONDS = 10.0
ASK_EVERY_SECONDS = 30.0
# A pod not asked about for this long has started or is gone: its entry is dropped.
FORGET_SECONDS = 600.0

Key = tuple[str, str]


@dataclasses.dataclass
class _Waiting:
    since: float  # first seen waiting by this process
    used: float
    asked: float | None = None
    said: str | None = None


_waiting: dict[Key, _Waiting] = {}
_lock = threading.Lock()
_swept = 0.0


def latest(namespace: str, pod: str, now: float | None = None) -> str | None:
    """The pod's latest Warning Event as `Reason: message`, or None (none yet, or not asked
    yet)."""
    moment = time.monotonic() if now is None else now
    with _lock:
        _sweep(moment)
        waiting = _waiting.setdefault((namespace, pod), _Waiting(since=moment, used=moment))
        waiting.used = moment
        due = moment - waiting.since >= ASK_AFTER_SECONDS and (
            waiting.asked is None or moment - waiting.asked >= ASK_EVERY_SECONDS
        )
        if not due:
            return waiting.said
        waiting.asked = moment
    said = workloads.pod_warning(namespace, pod)
    with _lock:
        waiting.said = said
    return said


def _sweep(moment: float) -> None:
    """Drop pods not asked about for FORGET_SECONDS (at most once a minute: the walk is over
    every waiting pod)."""
    global _swept
    if moment - _swept < 60:
        return
    _swept = moment
    for key in [k for k, w in _waiting.items() if moment - w.used >= FORGET_SECONDS]:
        del _waiting[key]
