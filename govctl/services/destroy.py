"""What `govctl destroy` means: every resource govctl made for this configuration, planned as
deletions (the plan model of deploy and setup, every line a ``-``) and deleted in dependency
order; what it keeps unless asked, it says.

Deleted, in this order (each only when it is govctl's: named by the settings, and where the
resource carries labels, labelled ``managed-by: govctl``):

1. the scheduler job (``[schedule] name``) — first, so it cannot start a run meanwhile;
2. the job's running executions — cancelled, so no task runs (and is billed) on: whether
   DeleteJob stops them no Google source says (docs/cli.md, "destroy");
3. the Cloud Run job (``[job] name``) — its executions and its IAM policy (the
   ``roles/run.invoker`` deploy granted) go with it;
4. the job's alert policies (labels ``managed-by: govctl``, ``job: [job] name``), then
5. govctl's e-mail channels that no other policy uses (a channel another job's policy uses
   stays; deleting it would silence that policy);
6. the search data store (``[index] data_store``), then what `index sync` recorded about it
   in the bucket (``_index/`` and the summary's ``index`` section), and setup's lifecycle rule
   on ``_runs/`` (:mod:`govctl.services.retention`), when the bucket stays;
7. the image: the whole Artifact Registry repository when govctl created it (its label) and
   it holds no other image, else ``[job] image``'s package (every digest and tag) and
   govctl's cleanup policies for it (left behind, they would thin out a later image of that
   name);
8. the grants setup made that would outlive it: the job's service account's object rights on
   the bucket and its read access to each ``[job] secrets`` secret, when those stay; the build
   account's log writing on the project, source reading on the staging bucket (which stays,
   gcloud's too) and pushing on the repository, when it stays
   (:mod:`govctl.services.build_account`);
9. only when asked, each with its own flag: the secrets, the bucket with every object in it,
   and last both service accounts (after every grant naming them, so none is left dangling as
   ``deleted:serviceAccount:…``).

A deletion that finds its resource gone is not an error ("already gone"); one that fails is
reported and the rest are still attempted. An API that is off is not read (Google refuses the
read; nothing could be deleted through it either), as in setup. APIs stay enabled, logs stay
until their retention ends, and the Cloud Build staging bucket (shared with gcloud) stays: the
plan's notes say so.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from govctl import validate
from govctl.config import Config
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
    services,
)
from govctl.gcp import summary as gsummary
from govctl.gcp.build import staging_bucket
from govctl.services import retention
from govctl.services.build_account import LOG_WRITER, PUSHER, SOURCE_READER
from govctl.services.index_plan import INDEX_PREFIX
from govctl.services.plan import Applied, Plan, ResourcePlan, deleted

MANAGED_BY = "govctl"
INVOKER = "roles/run.invoker"


@dataclass(frozen=True)
class Scope:
    """What goes besides what destroy always deletes: each needs its own flag."""

    bucket: bool = False
    service_account: bool = False
    secrets: bool = False


class Kind(enum.Enum):
    """What a deletion deletes; its value is the plan line's kind. Declared in the order
    deletions are made: each after whatever uses it, and the service account last."""

    SCHEDULER = "scheduler"
    EXECUTION = "execution"
    JOB = "run job"
    POLICY = "policy"
    CHANNEL = "channel"
    DATA_STORE = "data store"
    INDEX_RECORD = "index record"
    LIFECYCLE = retention.LIFECYCLE
    IMAGE = "image"
    CLEANUP = retention.CLEANUP
    REPOSITORY = "repository"
    GRANT = "iam"
    SECRET = "secret"
    BUCKET = "bucket"
    ACCOUNT = "service account"


class Holder(enum.Enum):
    """Where a grant to remove is held."""

    BUCKET = "bucket"
    SECRET = "secret"
    PROJECT = "project"
    REPOSITORY = "repository"


@dataclass(frozen=True)
class Deletion:
    """One line of the plan and what apply needs to delete it."""

    kind: Kind
    target: str  # the resource's name as its API knows it (a grant: the holder's)
    line: ResourcePlan
    role: str = ""  # a grant's role and member
    member: str = ""
    holder: Holder | None = None
    count: int | None = None  # a bucket's objects

    @property
    def label(self) -> str:
        return f"{self.kind.value} {self.line.name}"


@dataclass(frozen=True)
class DestroyPlan:
    plan: Plan
    deletions: tuple[Deletion, ...]
    bucket: str

    @property
    def project(self) -> str:
        return self.plan.project

    @property
    def deletes_bucket(self) -> bool:
        return any(d.kind is Kind.BUCKET for d in self.deletions)

    @property
    def objects(self) -> int | None:
        """How many objects go with the bucket (None: it stays)."""
        return next((d.count for d in self.deletions if d.kind is Kind.BUCKET), None)


@dataclass(frozen=True)
class Failure:
    label: str  # "channel ops@example.org": what is left
    reason: str  # the error, with its fix


@dataclass(frozen=True)
class Destroyed(Applied):
    """What apply did, and each deletion that failed with its reason."""

    failed: tuple[Failure, ...] = ()


def _line(kind: Kind, name: str, fields: Mapping[str, object] | None = None) -> ResourcePlan:
    return deleted(kind.value, name, fields)


def _member(cfg: Config) -> str:
    return f"serviceAccount:{cfg.job.service_account}"


# Reading: what is there to delete ---------------------------------------------------------


# What a reader finds: deletions, and notes (what stays, and why).
Found = tuple[list[Deletion], list[str]]


def _scheduler(cfg: Config, scope: Scope) -> Found:
    found = scheduler.get(cfg.schedule_path)
    if found is None:
        return [], []
    fields = {"cron": f"{found.cron} ({found.time_zone})", "state": found.state}
    line = _line(Kind.SCHEDULER, cfg.schedule.name, fields)
    return [Deletion(Kind.SCHEDULER, cfg.schedule_path, line)], []


# Executions read to find the running ones: Cloud Run lists the newest first, and a running
# one is among the newest (a job keeps up to 1,000 finished ones, GCP-FACTS.md).
EXECUTIONS = 100


def _job(cfg: Config, scope: Scope) -> Found:
    """The job, after its running executions (each cancelled first)."""
    found = jobs.get_job(cfg.job_path)
    if found is None:
        return [], []
    listed = executions.list_for_job(cfg.job_path, limit=EXECUTIONS)
    out = [
        Deletion(
            Kind.EXECUTION,
            e.full,
            _line(Kind.EXECUTION, e.name, {"status": f"{e.status}: cancelled first"}),
        )
        for e in listed
        if not e.done
    ]
    count = f"{len(listed)}{'+' if len(listed) == EXECUTIONS else ''}"
    fields: dict[str, object] = {
        "image": found.image,
        "executions": f"{count}, deleted with it",
        "iam policy": f"deleted with it ({INVOKER} for {found.service_account})",
    }
    if not _mine(found.labels):
        fields["labels"] = "no managed-by=govctl: named by [job] name, made outside govctl?"
    out.append(Deletion(Kind.JOB, cfg.job_path, _line(Kind.JOB, cfg.job.name, fields)))
    return out, []


def _mine(labels: dict[str, str]) -> bool:
    return labels.get("managed-by") == MANAGED_BY


def _alerts(cfg: Config, scope: Scope) -> Found:
    """This job's policies; govctl's channels no other policy uses, and a note for the rest."""
    project = cfg.require_project()
    policies = monitoring.list_policies(project)
    channels = monitoring.list_channels(project)
    ours = [
        p for p in policies if _mine(p.user_labels) and p.user_labels.get("job") == cfg.job.name
    ]
    others = [p for p in policies if p not in ours]
    out = [
        Deletion(
            Kind.POLICY,
            p.name,
            _line(
                Kind.POLICY,
                p.display_name,
                {"labels": f"govctl-alert={p.user_labels.get('govctl-alert', '?')}"},
            ),
        )
        for p in sorted(ours, key=lambda p: p.display_name)
    ]
    notes = []
    for c in sorted((c for c in channels if _mine(c.user_labels)), key=lambda c: c.email):
        users = [p.display_name for p in others if c.name in p.channels]
        if users:
            notes.append(
                f"e-mail channel {c.email or c.name} stays: alert policy {users[0]!r}, not this "
                "job's, notifies it"
            )
            continue
        name = c.email or c.display_name
        out.append(Deletion(Kind.CHANNEL, c.name, _line(Kind.CHANNEL, name, {"type": c.type})))
    return out, notes


def _data_store(cfg: Config, scope: Scope) -> Found:
    path = index.store_path(cfg.require_project(), cfg.index.location, cfg.index.data_store)
    if index.get_data_store(path) is None:
        return [], []
    name = f"{cfg.index.data_store} ({cfg.index.location})"
    fields = {"indexes": f"gs://{cfg.bucket}"}
    return [Deletion(Kind.DATA_STORE, path, _line(Kind.DATA_STORE, name, fields))], []


def _images(cfg: Config, scope: Scope) -> Found:
    """The repository when govctl made it and it holds only this image; else the image, and
    the push right setup gave the build account on the repository that stays."""
    ref = artifacts.parse_image(cfg.job.image)
    repo = artifacts.get_repository(ref.project, ref.location, ref.repository)
    if repo is None:
        return [], []
    images = artifacts.list_images(ref.project, ref.location, ref.repository)
    ours = [i for i in images if i.image == ref.image]
    others = sorted({i.image for i in images} - {ref.image})
    label = f"{ref.repository} ({ref.location}-docker.pkg.dev/{ref.project})"
    if _mine(repo.labels) and not others:
        held = {
            "images": f"{len(ours)} digest(s) of {ref.image}" if ours else "none",
            "iam policy": f"deleted with it ({PUSHER} for the build account)",
        }
        return [Deletion(Kind.REPOSITORY, repo.name, _line(Kind.REPOSITORY, label, held))], []
    notes = [
        f"repository {label} stays: "
        + (f"it holds other images ({', '.join(others)})" if others else "govctl did not create it")
    ]
    found = _repository_grant(cfg, ref)
    policies = retention.ours_in_repository(ref)
    if policies:
        line = _line(Kind.CLEANUP, retention.policies_label(ref), {"ids": policies})
        found.insert(0, Deletion(Kind.CLEANUP, cfg.job.image, line))
    if ours:
        tags = sorted({t for i in ours for t in i.tags})
        line = _line(Kind.IMAGE, ref.path, {"digests": len(ours), "tags": tags})
        found.insert(0, Deletion(Kind.IMAGE, ref.package_name, line))
    return found, notes


def _repository_grant(cfg: Config, ref: artifacts.ImageRef) -> list[Deletion]:
    """The build account's push right on the repository, which setup granted."""
    member = f"serviceAccount:{cfg.build.service_account}"
    policy = artifacts.repository_policy(ref)
    if policy is None or not policy.policy.names(member, PUSHER):
        return []
    name = f"{PUSHER} for {cfg.build.service_account} on repository {ref.repository}"
    line = _line(Kind.GRANT, name, {"member": member})
    return [Deletion(Kind.GRANT, ref.repository_name, line, PUSHER, member, Holder.REPOSITORY)]


def _builds(cfg: Config, scope: Scope) -> Found:
    """The grants setup gave the build account outside the repository: writing logs on the
    project, reading sources on the staging bucket (which stays: gcloud's sources are there
    too)."""
    project, email = cfg.require_project(), cfg.build.service_account
    member = f"serviceAccount:{email}"
    found = []
    if iam.project_policy(project).names(member, LOG_WRITER):
        name = f"{LOG_WRITER} for {email} on project {project}"
        line = _line(Kind.GRANT, name, {"member": member})
        found.append(Deletion(Kind.GRANT, project, line, LOG_WRITER, member, Holder.PROJECT))
    staging = staging_bucket(project)
    if buckets.get(staging, project) is None:
        return found, []
    policy = buckets.get_policy(staging, project)
    if not isinstance(policy, buckets.BucketPolicy):
        return found, [f"{SOURCE_READER} for {email} on gs://{staging}: not checked: the "
                       "storage server has no bucket IAM (fake-gcs-server)"]  # fmt: skip
    if policy.policy.names(member, SOURCE_READER):
        name = f"{SOURCE_READER} for {email} on gs://{staging}"
        line = _line(Kind.GRANT, name, {"member": member})
        found.append(Deletion(Kind.GRANT, staging, line, SOURCE_READER, member, Holder.BUCKET))
    return found, []


def _index_record(cfg: Config) -> list[Deletion]:
    """What `index sync` keeps in the bucket about the data store: the record of what it holds
    (``_index/``) and the summary's ``index`` section. With the data store gone they would
    tell the next sync, into a data store made again, that everything is indexed already."""
    project = cfg.require_project()
    path = index.store_path(project, cfg.index.location, cfg.index.data_store)
    summary = gsummary.read(project, cfg.bucket)
    about = summary is not None and summary.index.get("data_store") == path
    objects = buckets.count_objects(cfg.bucket, project, INDEX_PREFIX + "/")
    if not about and not objects:
        return []
    fields: dict[str, object] = {"objects": f"{objects} under gs://{cfg.bucket}/{INDEX_PREFIX}/"}
    if about:
        fields["summary"] = f"the index section of gs://{cfg.bucket}/{gsummary.SUMMARY_PATH}"
    line = _line(Kind.INDEX_RECORD, f"{cfg.index.data_store} ({cfg.index.location})", fields)
    return [Deletion(Kind.INDEX_RECORD, path, line, count=objects)]


def _bucket_grant(cfg: Config) -> Found:
    """The service account's object rights on the bucket that stays (setup granted them)."""
    policy = buckets.get_policy(cfg.bucket, cfg.require_project())
    role, member = buckets.JOB_ROLE, _member(cfg)
    if not isinstance(policy, buckets.BucketPolicy):
        return [], [
            f"{role} for {cfg.job.service_account} on gs://{cfg.bucket}: not checked: the "
            "storage server has no bucket IAM (fake-gcs-server)"
        ]
    if not policy.policy.names(member, role):
        return [], []
    name = f"{role} for {cfg.job.service_account} on gs://{cfg.bucket}"
    line = _line(Kind.GRANT, name, {"member": member})
    return [Deletion(Kind.GRANT, cfg.bucket, line, role, member, Holder.BUCKET)], []


def _bucket(cfg: Config, scope: Scope) -> Found:
    """The bucket with every object (--delete-bucket), else the grant on it that setup made."""
    project = cfg.require_project()
    if buckets.get(cfg.bucket, project) is None:
        return [], []
    if not scope.bucket:
        grants, notes = _bucket_grant(cfg)
        kept = (
            f"gs://{cfg.bucket} stays, with its digests: `--delete-bucket` deletes it too "
            "(you type its name)"
        )
        rule = []
        if retention.ours_in_bucket(project, cfg.bucket):
            line = _line(Kind.LIFECYCLE, retention.rule_label(cfg.bucket), {"rule": "setup's"})
            rule = [Deletion(Kind.LIFECYCLE, cfg.bucket, line)]
        return [*_index_record(cfg), *rule, *grants], [*notes, kept]
    count = buckets.count_objects(cfg.bucket, project)
    fields = {"objects": count, "with it": "every object in it, digests and the job's own"}
    line = _line(Kind.BUCKET, f"gs://{cfg.bucket}", fields)
    return [Deletion(Kind.BUCKET, cfg.bucket, line, count=count)], []


def _secret_ids(cfg: Config) -> list[str]:
    ids = (
        validate.secret_ref(ref, f"[job] secrets entry {n}")[0]
        for n, ref in cfg.job.secrets.items()
    )
    return sorted(set(ids))


def _secrets(cfg: Config, scope: Scope) -> Found:
    """Each ``[job] secrets`` secret (--delete-secrets), else the job's access to it."""
    project, member = cfg.require_project(), _member(cfg)
    out, kept = [], []
    for secret in _secret_ids(cfg):
        versions = secrets.versions(project, secret)
        if versions is None:
            continue
        if scope.secrets:
            fields = {"versions": len(versions)}
            out.append(Deletion(Kind.SECRET, secret, _line(Kind.SECRET, secret, fields)))
            continue
        kept.append(secret)
        if secrets.granted_on_secret(project, secret, member):
            name = f"{secrets.ACCESSOR} for {cfg.job.service_account} on secret {secret}"
            line = _line(Kind.GRANT, name, {"member": member})
            out.append(Deletion(Kind.GRANT, secret, line, secrets.ACCESSOR, member, Holder.SECRET))
    notes = [f"secret(s) {', '.join(kept)} stay: `--delete-secrets` deletes them"] if kept else []
    return out, notes


def _account(cfg: Config, scope: Scope) -> Found:
    """The job's and the build's service accounts (--delete-service-account), last of all."""
    project = cfg.require_project()
    found, kept = [], []
    for email in dict.fromkeys((cfg.job.service_account, cfg.build.service_account)):
        account = iam.service_account(project, email)
        if account is None:
            continue
        if not scope.service_account:
            kept.append(email)
            continue
        line = _line(Kind.ACCOUNT, email, {"display_name": account.display_name or "-"})
        found.append(Deletion(Kind.ACCOUNT, email, line))
    notes = [f"service account(s) {', '.join(kept)} stay: `--delete-service-account` deletes them"]
    return found, notes if kept else []


def _always_kept(project: str) -> str:
    return (
        "APIs stay enabled, log entries stay until Cloud Logging's retention ends, and the "
        f"Cloud Build staging bucket gs://{project}_cloudbuild (gcloud's too) stays"
    )


# Each reader and the API it reads; an API that is off is not read (Google refuses the read,
# and nothing can be deleted through it either), and the plan says so.
READERS: tuple[tuple[str, str, Callable[[Config, Scope], Found]], ...] = (
    ("cloudscheduler.googleapis.com", "the scheduler job", _scheduler),
    ("run.googleapis.com", "the job", _job),
    ("monitoring.googleapis.com", "alert policies and channels", _alerts),
    ("discoveryengine.googleapis.com", "the data store", _data_store),
    ("artifactregistry.googleapis.com", "the image", _images),
    ("secretmanager.googleapis.com", "the secrets", _secrets),
    ("storage.googleapis.com", "the bucket", _bucket),
    ("storage.googleapis.com", "the build account's grants", _builds),
    ("iam.googleapis.com", "the service account", _account),
)
ORDER = {kind: i for i, kind in enumerate(Kind)}


def _off_note(off: list[tuple[str, str]]) -> str:
    names = ", ".join(f"{api.split('.')[0]} ({what})" for api, what in off)
    return (
        f"not read, their APIs being off: {names}; what govctl made there, if anything, can "
        "be deleted once they are on again"
    )


def plan(cfg: Config, scope: Scope = Scope()) -> DestroyPlan:
    """Every deletion, in the order apply makes them; reads only."""
    project = cfg.require_project()
    readers = [r for r in READERS if r[0] != "secretmanager.googleapis.com" or cfg.job.secrets]
    on = services.enabled(project, tuple(dict.fromkeys(api for api, _, _ in readers)))
    found: list[Deletion] = []
    notes: list[str] = []
    for api, _, read in readers:
        if on[api]:
            lines, more = read(cfg, scope)
            found += lines
            notes += more
    off = [(api, what) for api, what, _ in readers if not on[api]]
    notes += [_off_note(off)] if off else []
    notes.append(_always_kept(project))
    # Stable: each reader's own order (executions before their job) within a kind's rank.
    deletions = tuple(sorted(found, key=lambda d: ORDER[d.kind]))
    shown = Plan(project, cfg.region, tuple(d.line for d in deletions), notes=tuple(notes))
    return DestroyPlan(shown, deletions, cfg.bucket)


# Apply ------------------------------------------------------------------------------------


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
