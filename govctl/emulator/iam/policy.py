"""What every emulated resource with an IAM policy shares: etags, versions, the three RPCs.

Resource Manager projects (:mod:`govctl.emulator.iam.projects`) and Cloud Run jobs
(:mod:`govctl.emulator.run.jobs`) both serve ``google.iam.v1.IAMPolicy``'s
GetIamPolicy / SetIamPolicy / TestIamPermissions. What they validate in a binding differs
(see each module); the read-modify-write protocol below is IAM's own and is the same for both.
This is a plain helper module: services import it, as they import :mod:`govctl.emulator.rpc`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.iam.v1 import iam_policy_pb2, policy_pb2

from govctl.emulator.rpc import Method, aborted

# IAM's answer to a SetIamPolicy whose etag is not the stored one.
STALE_ETAG = (
    "There were concurrent policy changes. Please retry the whole read-modify-write "
    "with exponential backoff."
)


def copy(policy: policy_pb2.Policy) -> policy_pb2.Policy:
    """A copy to hand out, so callers never hold the stored message."""
    out = policy_pb2.Policy()
    out.CopyFrom(policy)
    return out


def check_etag(new: policy_pb2.Policy, current: policy_pb2.Policy) -> None:
    """A non-empty etag must be the stored one (stale -> ABORTED); no etag is a blind write."""
    if new.etag and new.etag != current.etag:
        raise aborted(STALE_ETAG)


def is_conditional(bindings: Iterable[policy_pb2.Binding]) -> bool:
    return any(b.HasField("condition") for b in bindings)


def stored_version(bindings: Iterable[policy_pb2.Binding]) -> int:
    """The version IAM stores: 3 when a binding has a condition, else 1."""
    return 3 if is_conditional(bindings) else 1


def methods(
    get: Callable[..., Any], set_: Callable[..., Any], test: Callable[..., Any]
) -> dict[str, Method]:
    """The ``google.iam.v1.IAMPolicy`` methods, to merge into a service's method table."""
    return {
        "GetIamPolicy": Method(get, iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
        "SetIamPolicy": Method(set_, iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
        "TestIamPermissions": Method(
            test,
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
        ),
    }
