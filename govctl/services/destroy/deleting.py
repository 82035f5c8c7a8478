"""Deleting what the plan holds, in its order: one gone already is said, one that fails is
kept for the report while the rest are still attempted."""

from __future__ import annotations

from collections.abc import Callable

from govctl.errors import CloudError, GovctlError, NotFound
from govctl.gcp import (
    artifacts,
    buckets,
    executions,
    iam,
    index,
    jobs,
    monitoring,
    scheduler,
    secrets,
)
from govctl.gcp import summary as gsummary
from govctl.services import retention
from govctl.services.destroy.model import Deletion, Destroyed, DestroyPlan, Failure, Holder, Kind
from govctl.services.index_plan import INDEX_PREFIX


def _cancel(p: DestroyPlan, d: Deletion) -> str:
    try:
        executions.cancel(d.target)
    except CloudError as err:
        if err.reason != "FAILED_PRECONDITION":  # it ended meanwhile: nothing to stop
            raise
        return f"execution {d.line.name} had ended"
    return f"cancelled execution {d.line.name}"


def _grant(p: DestroyPlan, d: Deletion) -> str:
    if d.holder is Holder.BUCKET:
        if buckets.remove_member(d.target, d.role, d.member, p.project) is None:
            return f"{d.line.name}: not removed: the storage server has no bucket IAM"
    elif d.holder is Holder.SECRET:
        secrets.revoke_access(p.project, d.target, d.member)
    elif d.holder is Holder.REPOSITORY:
        artifacts.revoke_on_repository(d.target, d.role, d.member)
    else:
        iam.revoke_on_project(p.project, d.role, d.member)
    return f"removed {d.line.name}"


def _data_store_gone(p: DestroyPlan, d: Deletion) -> str:
    if index.delete_data_store(d.target):
        return f"deleted data store {d.line.name}"
    return f"deleting data store {d.line.name}: Google finishes it in the background"


def _index_record_gone(p: DestroyPlan, d: Deletion) -> str:
    """The record of what the data store held: the summary's section about it (only that:
    the job's own sections stay, and a summary that says nothing of it is not written), then
    the ``_index/`` objects (a full sync writes them again)."""
    summary = gsummary.read(p.project, p.bucket)
    if summary is not None and summary.index.get("data_store") == d.target:
        gsummary.update_index(
            p.project, p.bucket, lambda now: {} if now.get("data_store") == d.target else now
        )
    count = buckets.delete_objects(p.bucket, p.project, INDEX_PREFIX + "/")
    where = f"{count} object(s) of gs://{p.bucket}/{INDEX_PREFIX}/"
    return f"forgot what data store {d.line.name} held (its summary section, {where})"


def _rule_gone(p: DestroyPlan, d: Deletion) -> str:
    if not retention.remove_rule(p.project, d.target):
        return f"{d.label}: already gone"
    return f"removed {d.label}"


def _policies_gone(p: DestroyPlan, d: Deletion) -> str:
    removed = retention.remove_policies(artifacts.parse_image(d.target))
    if not removed:
        return f"{d.label}: already gone"
    return f"removed cleanup policies {', '.join(removed)} of {d.line.name}"


def _bucket_gone(p: DestroyPlan, d: Deletion) -> str:
    count = buckets.delete(d.target, p.project)
    return f"deleted gs://{d.target} and its {count} object(s)"


def _channel_gone(p: DestroyPlan, d: Deletion) -> str:
    # Not forced: a policy that took the channel up since the plan keeps it (and the
    # deletion fails, said), rather than losing its notifications without a word.
    monitoring.delete_channel(d.target, force=False)
    return f"deleted e-mail {d.label}"


def _secret_gone(p: DestroyPlan, d: Deletion) -> str:
    secrets.delete(p.project, d.target)
    return f"deleted {d.label} (every version)"


def _account_gone(p: DestroyPlan, d: Deletion) -> str:
    iam.delete_service_account(p.project, d.target)
    return f"deleted {d.label}"


def _simple(verb: str, delete: Callable[[str], object]) -> Callable[[DestroyPlan, Deletion], str]:
    """A deletion by the resource's name alone."""

    def run(p: DestroyPlan, d: Deletion) -> str:
        delete(d.target)
        return f"{verb} {d.label}"

    return run


DELETE: dict[Kind, Callable[[DestroyPlan, Deletion], str]] = {
    Kind.SCHEDULER: _simple("deleted", scheduler.delete),
    Kind.EXECUTION: _cancel,
    Kind.JOB: _simple("deleted", jobs.delete_job),
    Kind.POLICY: _simple("deleted alert", monitoring.delete_policy),
    Kind.CHANNEL: _channel_gone,
    Kind.DATA_STORE: _data_store_gone,
    Kind.INDEX_RECORD: _index_record_gone,
    Kind.LIFECYCLE: _rule_gone,
    Kind.IMAGE: _simple("deleted", artifacts.delete_package),
    Kind.CLEANUP: _policies_gone,
    Kind.REPOSITORY: _simple("deleted", artifacts.delete_repository),
    Kind.GRANT: _grant,
    Kind.SECRET: _secret_gone,
    Kind.BUCKET: _bucket_gone,
    Kind.ACCOUNT: _account_gone,
}


def apply(p: DestroyPlan) -> Destroyed:
    """Each deletion in order; one gone already is said, one that fails is kept for the
    report while the rest are still attempted."""
    done: list[str] = []
    failed: list[Failure] = []
    for d in p.deletions:
        try:
            done.append(DELETE[d.kind](p, d))
        except NotFound:
            done.append(f"{d.label}: already gone")
        except GovctlError as err:
            failed.append(Failure(d.label, str(err)))
    return Destroyed(tuple(done), (), tuple(failed))
