"""Reading what there is to delete, each reader behind the API it needs, into the plan."""

from __future__ import annotations

from collections.abc import Callable

from govctl import validate
from govctl.config import Config
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
from govctl.services.destroy.model import (
    Deletion,
    DestroyPlan,
    Found,
    Holder,
    Kind,
    Scope,
    job_member,
    plan_line,
)
from govctl.services.index_plan import INDEX_PREFIX
from govctl.services.plan import Plan

MANAGED_BY = "govctl"  # the label setup, deploy and alerts put on what they create
INVOKER = "roles/run.invoker"


def _scheduler(cfg: Config, scope: Scope) -> Found:
    found = scheduler.get(cfg.schedule_path)
    if found is None:
        return [], []
    fields = {"cron": f"{found.cron} ({found.time_zone})", "state": found.state}
    line = plan_line(Kind.SCHEDULER, cfg.schedule.name, fields)
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
            plan_line(Kind.EXECUTION, e.name, {"status": f"{e.status}: cancelled first"}),
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
    out.append(Deletion(Kind.JOB, cfg.job_path, plan_line(Kind.JOB, cfg.job.name, fields)))
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
            plan_line(
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
        out.append(Deletion(Kind.CHANNEL, c.name, plan_line(Kind.CHANNEL, name, {"type": c.type})))
    return out, notes


def _data_store(cfg: Config, scope: Scope) -> Found:
    path = index.store_path(cfg.require_project(), cfg.index.location, cfg.index.data_store)
    if index.get_data_store(path) is None:
        return [], []
    name = f"{cfg.index.data_store} ({cfg.index.location})"
    fields = {"indexes": f"gs://{cfg.bucket}"}
    return [Deletion(Kind.DATA_STORE, path, plan_line(Kind.DATA_STORE, name, fields))], []


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
        return [Deletion(Kind.REPOSITORY, repo.name, plan_line(Kind.REPOSITORY, label, held))], []
    notes = [
        f"repository {label} stays: "
        + (f"it holds other images ({', '.join(others)})" if others else "govctl did not create it")
    ]
    found = _repository_grant(cfg, ref)
    policies = retention.ours_in_repository(ref)
    if policies:
        line = plan_line(Kind.CLEANUP, retention.policies_label(ref), {"ids": policies})
        found.insert(0, Deletion(Kind.CLEANUP, cfg.job.image, line))
    if ours:
        tags = sorted({t for i in ours for t in i.tags})
        line = plan_line(Kind.IMAGE, ref.path, {"digests": len(ours), "tags": tags})
        found.insert(0, Deletion(Kind.IMAGE, ref.package_name, line))
    return found, notes


def _repository_grant(cfg: Config, ref: artifacts.ImageRef) -> list[Deletion]:
    """The build account's push right on the repository, which setup granted."""
    member = f"serviceAccount:{cfg.build.service_account}"
    policy = artifacts.repository_policy(ref)
    if policy is None or not policy.policy.names(member, PUSHER):
        return []
    name = f"{PUSHER} for {cfg.build.service_account} on repository {ref.repository}"
    line = plan_line(Kind.GRANT, name, {"member": member})
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
        line = plan_line(Kind.GRANT, name, {"member": member})
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
        line = plan_line(Kind.GRANT, name, {"member": member})
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
    line = plan_line(Kind.INDEX_RECORD, f"{cfg.index.data_store} ({cfg.index.location})", fields)
    return [Deletion(Kind.INDEX_RECORD, path, line, count=objects)]


def _bucket_grant(cfg: Config) -> Found:
    """The service account's object rights on the bucket that stays (setup granted them)."""
    policy = buckets.get_policy(cfg.bucket, cfg.require_project())
    role, member = buckets.JOB_ROLE, job_member(cfg)
    if not isinstance(policy, buckets.BucketPolicy):
        return [], [
            f"{role} for {cfg.job.service_account} on gs://{cfg.bucket}: not checked: the "
            "storage server has no bucket IAM (fake-gcs-server)"
        ]
    if not policy.policy.names(member, role):
        return [], []
    name = f"{role} for {cfg.job.service_account} on gs://{cfg.bucket}"
    line = plan_line(Kind.GRANT, name, {"member": member})
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
            line = plan_line(Kind.LIFECYCLE, retention.rule_label(cfg.bucket), {"rule": "setup's"})
            rule = [Deletion(Kind.LIFECYCLE, cfg.bucket, line)]
        return [*_index_record(cfg), *rule, *grants], [*notes, kept]
    count = buckets.count_objects(cfg.bucket, project)
    fields = {"objects": count, "with it": "every object in it, digests and the job's own"}
    line = plan_line(Kind.BUCKET, f"gs://{cfg.bucket}", fields)
    return [Deletion(Kind.BUCKET, cfg.bucket, line, count=count)], []


def _secret_ids(cfg: Config) -> list[str]:
    ids = (
        validate.secret_ref(ref, f"[job] secrets entry {n}")[0]
        for n, ref in cfg.job.secrets.items()
    )
    return sorted(set(ids))


def _secrets(cfg: Config, scope: Scope) -> Found:
    """Each ``[job] secrets`` secret (--delete-secrets), else the job's access to it."""
    project, member = cfg.require_project(), job_member(cfg)
    out, kept = [], []
    for secret in _secret_ids(cfg):
        versions = secrets.versions(project, secret)
        if versions is None:
            continue
        if scope.secrets:
            fields = {"versions": len(versions)}
            out.append(Deletion(Kind.SECRET, secret, plan_line(Kind.SECRET, secret, fields)))
            continue
        kept.append(secret)
        if secrets.granted_on_secret(project, secret, member):
            name = f"{secrets.ACCESSOR} for {cfg.job.service_account} on secret {secret}"
            line = plan_line(Kind.GRANT, name, {"member": member})
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
        line = plan_line(Kind.ACCOUNT, email, {"display_name": account.display_name or "-"})
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


def plan(cfg: Config, scope: Scope | None = None) -> DestroyPlan:
    """Every deletion, in the order apply makes them; reads only."""
    scope = scope or Scope()
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
