"""`govctl doctor`: what is wrong with a deployment, each finding with its evidence and fix.

The facts (project, billing, APIs, policies, the job, the scheduler, executions, the bucket)
are read concurrently; each check then judges one thing from them: ``ok``, ``warn``, ``fail``
or ``skip`` (could not be judged, e.g. no job yet), one line of evidence, and for every
non-ok the command that fixes it. Some fixes are :class:`Action`s that ``--fix`` applies:
granting a missing role, enabling APIs, resuming the scheduler.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from govctl import config, validate
from govctl.errors import CloudError, GovctlError, NotFound, UsageError
from govctl.gcp import artifacts, billing_info, executions, iam, inspect, jobs, scheduler, services

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

AGENT_ROLE = "roles/cloudscheduler.serviceAgent"
INVOKER = "roles/run.invoker"
WITH_OVERRIDES = "roles/run.jobsExecutorWithOverrides"
BUCKET_ROLE = "roles/storage.objectUser"  # create, overwrite (delete), read, list: this bucket
# What deploying needs on the project (run jobs, scheduler jobs) and the role that grants it.
DEPLOY_PERMISSIONS = {
    "run.jobs.create": "roles/run.developer",
    "run.jobs.update": "roles/run.developer",
    "run.jobs.setIamPolicy": "roles/run.admin",
    "cloudscheduler.jobs.create": "roles/cloudscheduler.admin",
    "cloudscheduler.jobs.update": "roles/cloudscheduler.admin",
}
ACT_AS = "iam.serviceAccounts.actAs"
RUN_TIME_WARN = 0.8  # of the task timeout
RECENT_EXECUTIONS = 20
PREFLIGHT_TIMEOUT = 10.0  # seconds for the first call, retries included


@dataclass(frozen=True)
class Action:
    """A fix ``--fix`` can apply."""

    kind: str  # grant_job, grant_project, enable, resume
    target: str  # job path, project id, or scheduler path
    role: str = ""
    member: str = ""
    apis: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "grant_job":
            return f"grant {self.role} to {self.member} on job {self.target.rsplit('/', 1)[-1]}"
        if self.kind == "grant_project":
            return f"grant {self.role} to {self.member} on project {self.target}"
        if self.kind == "enable":
            return f"enable {', '.join(self.apis)} in project {self.target}"
        return f"resume scheduler job {self.target.rsplit('/', 1)[-1]}"

    def apply(self) -> None:
        if self.kind == "grant_job":
            jobs.add_member(self.target, self.role, self.member, None)
        elif self.kind == "grant_project":
            iam.grant_on_project(self.target, self.role, self.member)
        elif self.kind == "enable":
            services.enable(self.target, self.apis)
        else:
            scheduler.resume(self.target)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    evidence: str
    fix: str | None = None
    actions: tuple[Action, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "evidence": self.evidence,
            "fix": self.fix,
            "fixable": [a.describe() for a in self.actions],
        }


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def failing(self) -> int:
        return sum(c.status == FAIL for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.status == WARN for c in self.checks)

    @property
    def actions(self) -> list[Action]:
        seen: list[Action] = []
        for c in self.checks:
            for a in c.actions:
                if a not in seen:
                    seen.append(a)
        return seen


class Facts:
    """Every read doctor makes, started at once on a thread pool; ``get`` waits for one and
    re-raises its :class:`GovctlError`, so a check can report it as its evidence."""

    def __init__(self, cfg: config.Config, pool: ThreadPoolExecutor, project: Any = None) -> None:
        p = cfg.require_project()
        sa = cfg.job.service_account
        readers: dict[str, Callable[[], Any]] = {
            "caller": iam.caller,
            "project": (lambda: project) if project is not None else lambda: inspect.project(p),
            "billing": lambda: billing_info.project_billing(p),
            "apis": lambda: services.enabled(p),
            "deploy_permissions": lambda: iam.test_project(p, DEPLOY_PERMISSIONS),
            "service_account": lambda: iam.service_account(p, sa),
            "project_policy": lambda: iam.project_policy(p),
            "job": lambda: jobs.get_job(cfg.job_path),
            "job_policy": lambda: iam.job_policy(cfg.job_path),
            "scheduler": lambda: inspect.scheduler(cfg.schedule_path),
            "executions": lambda: executions.list_for_job(cfg.job_path, RECENT_EXECUTIONS),
            "bucket": lambda: inspect.bucket(cfg.bucket, p),
        }
        self._futures: dict[str, Future[Any]] = {k: pool.submit(f) for k, f in readers.items()}

    def get(self, key: str) -> Any:
        return self._futures[key].result()


def _failed(name: str, err: GovctlError) -> Check:
    return Check(name, FAIL, str(err).split(" — ")[0], err.fix)


def _short(api: str) -> str:
    return api.removesuffix(".googleapis.com")


def _ago(when: datetime, now: datetime) -> str:
    return _span((now - when).total_seconds()) + " ago"


def _span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


class Doctor:
    def __init__(self, cfg: config.Config, now: Callable[[], datetime] | None = None) -> None:
        self.cfg = cfg
        self.project = cfg.require_project()
        self.now = now or (lambda: datetime.now(UTC))

    # -- the checks, in the order they are shown -------------------------------------------
    def checks(self) -> list[tuple[str, Callable[[Facts], Check]]]:
        """(name, check) in the order they are shown; the name labels a check that errs."""
        return [
            ("credentials", self.credentials),
            ("project", self.project_check),
            ("billing", self.billing),
            ("apis", self.apis),
            ("deploy rights", self.deploy_permissions),
            ("service account", self.service_account),
            ("bucket access", self.bucket_write),
            ("job", self.job),
            ("job access", self.invoker),
            ("scheduler agent", self.scheduler_agent),
            ("scheduler", self.scheduler_target),
            ("last attempt", self.scheduler_last_attempt),
            ("image", self.image),
            ("last run", self.last_execution),
            ("run time", self.run_time),
            ("bucket", self.bucket),
            ("digests", self.digests),
        ]

    def run(self) -> Report:
        # One quick call first: against an API that does not answer, every other read would
        # wait out its own retries (minutes), so say so at once instead.
        try:
            first = inspect.project(self.project, timeout=PREFLIGHT_TIMEOUT)
        except CloudError as err:
            if not any(s in str(err) for s in ("did not answer", "credentials")):
                first = None  # e.g. permission denied: the checks will each say what they can
            else:
                return Report(
                    [
                        _failed(name, err)
                        if name == "project"
                        else Check(name, SKIP, "not checked: Google Cloud could not be reached")
                        for name, _ in self.checks()
                    ]
                )
        except GovctlError:
            first = None
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="doctor") as pool:
            facts = Facts(self.cfg, pool, project=first)
            futures = [
                pool.submit(self._guarded, name, check, facts) for name, check in self.checks()
            ]
            return Report([f.result() for f in futures])

    @staticmethod
    def _guarded(name: str, check: Callable[[Facts], Check], facts: Facts) -> Check:
        try:
            return check(facts)
        except GovctlError as err:
            return _failed(name, err)

    # -- identity, project, billing, APIs ---------------------------------------------------
    def credentials(self, facts: Facts) -> Check:
        who = facts.get("caller")
        from govctl.gcp import clients

        host = clients.emulator_host()
        where = f"govctl emulator at {host}" if host else "Application Default Credentials"
        return Check("credentials", OK, f"{who} ({where})")

    def project_check(self, facts: Facts) -> Check:
        proj = facts.get("project")
        status = OK if proj.state == "ACTIVE" else FAIL
        fix = None if status == OK else f"gcloud projects undelete {self.project}"
        return Check(
            "project", status, f"{proj.project_id} (number {proj.number}, {proj.state})", fix
        )

    def billing(self, facts: Facts) -> Check:
        info = facts.get("billing")
        if info.enabled:
            return Check("billing", OK, f"enabled ({info.account})")
        return Check(
            "billing",
            FAIL,
            f"billing is disabled for {self.project}: Cloud Run jobs will not run",
            f"gcloud billing projects link {self.project} --billing-account=ACCOUNT_ID "
            "(list accounts: gcloud billing accounts list)",
        )

    def apis(self, facts: Facts) -> Check:
        state: dict[str, bool] = facts.get("apis")
        off = [n for n, on in state.items() if not on]
        if not off:
            return Check("apis", OK, ", ".join(_short(n) for n in state))
        return Check(
            "apis",
            FAIL,
            "disabled: " + ", ".join(_short(n) for n in off),
            f"govctl doctor --fix (or: gcloud services enable {' '.join(off)} "
            f"--project {self.project})",
            (Action("enable", self.project, apis=tuple(off)),),
        )

    # -- who may do what -----------------------------------------------------------------------
    def deploy_permissions(self, facts: Facts) -> Check:
        held: set[str] = facts.get("deploy_permissions")
        caller = facts.get("caller")
        missing = [p for p in DEPLOY_PERMISSIONS if p not in held]
        sa = self.cfg.job.service_account
        exists = facts.get("service_account") is not None
        if exists and ACT_AS not in iam.test_service_account(self.project, sa, [ACT_AS]):
            missing.append(ACT_AS)
        if not missing:
            return Check(
                "deploy rights", OK, f"{caller} may deploy jobs and schedules and act as {sa}"
            )
        fixes = []
        for role in sorted({DEPLOY_PERMISSIONS[p] for p in missing if p in DEPLOY_PERMISSIONS}):
            fixes.append(
                f"gcloud projects add-iam-policy-binding {self.project} --member={caller} "
                f"--role={role}"
            )
        if ACT_AS in missing:
            fixes.append(
                f"gcloud iam service-accounts add-iam-policy-binding {sa} --member={caller} "
                "--role=roles/iam.serviceAccountUser"
            )
        return Check(
            "deploy rights",
            FAIL,
            f"{caller} lacks {', '.join(missing)}",
            "ask a project owner: " + "; ".join(fixes),
        )

    def service_account(self, facts: Facts) -> Check:
        sa = facts.get("service_account")
        email = self.cfg.job.service_account
        if sa is None:
            account_id = email.split("@")[0]
            return Check(
                "service account",
                FAIL,
                f"{email} does not exist",
                f"govctl setup (or: gcloud iam service-accounts create {account_id} "
                f"--project {self.project})",
            )
        if sa.disabled:
            return Check(
                "service account",
                FAIL,
                f"{email} is disabled",
                f"gcloud iam service-accounts enable {email} --project {self.project}",
            )
        return Check("service account", OK, f"{email} exists and is enabled")

    def bucket_write(self, facts: Facts) -> Check:
        member = f"serviceAccount:{self.cfg.job.service_account}"
        bucket = self.cfg.bucket
        fix = (
            f"gcloud storage buckets add-iam-policy-binding gs://{bucket} --member={member} "
            f"--role={BUCKET_ROLE}"
        )
        held = inspect.bucket_policy(bucket, self.project)
        if held is not None and held.grants(member, "storage.objects.create"):
            return Check("bucket access", OK, f"{member} may write objects in gs://{bucket}")
        project_policy = facts.get("project_policy")
        if project_policy.grants(member, "storage.objects.create"):
            roles = ", ".join(sorted(project_policy.roles_of(member)))
            return Check(
                "bucket access",
                WARN,
                f"{member} writes through project-wide {roles}: every bucket of the project",
                f"grant on this bucket only: {fix}, then remove the project-wide role",
            )
        where = "" if held is not None else " (bucket IAM not readable; project policy checked)"
        return Check(
            "bucket access", FAIL, f"{member} may not write objects in gs://{bucket}{where}", fix
        )

    def job(self, facts: Facts) -> Check:
        job = facts.get("job")
        name = self.cfg.job.name
        if job is None:
            return Check(
                "job", FAIL, f"Cloud Run job {name} not found in {self.cfg.region}", "govctl deploy"
            )
        evidence = (
            f"{name}: {job.tasks} task(s), {job.cpu} CPU, {_memory(job)}, "
            f"timeout {_span(_timeout_s(job))}, as "
            f"{job.service_account or 'the default account'}"
        )
        if job.service_account != self.cfg.job.service_account:
            return Check(
                "job",
                WARN,
                evidence + f" (settings say {self.cfg.job.service_account})",
                "govctl deploy",
            )
        return Check("job", OK, evidence)

    def _scheduler_member(self, facts: Facts) -> str:
        sched = facts.get("scheduler")
        email = sched.service_account if sched and sched.service_account else None
        return f"serviceAccount:{email or self.cfg.job.service_account}"

    def _missing_run_roles(self, facts: Facts) -> list[tuple[str, str]]:
        """(permission, role to grant) the scheduler's identity lacks on the job."""
        member = self._scheduler_member(facts)
        policies = [facts.get("project_policy"), facts.get("job_policy")]
        sched = facts.get("scheduler")
        needed = [("run.jobs.run", INVOKER)]
        if sched is not None and sched.overrides:
            needed.append(("run.jobs.runWithOverrides", WITH_OVERRIDES))
        return [(p, r) for p, r in needed if not any(pol.grants(member, p) for pol in policies)]

    def invoker(self, facts: Facts) -> Check:
        if facts.get("job") is None:
            return Check("job access", SKIP, "no job to check (see job)")
        member = self._scheduler_member(facts)
        missing = self._missing_run_roles(facts)
        if not missing:
            return Check("job access", OK, f"{member} may run {self.cfg.job.name}")
        roles = [r for _, r in missing]
        job, region = self.cfg.job.name, self.cfg.region
        gcloud = "; ".join(
            f"gcloud run jobs add-iam-policy-binding {job} --region {region} "
            f"--member={member} --role={r}"
            for r in roles
        )
        why = " (the scheduler's body carries overrides)" if WITH_OVERRIDES in roles else ""
        return Check(
            "job access",
            FAIL,
            f"{member} lacks {' and '.join(roles)} on job {job}{why}",
            f"govctl doctor --fix (or: {gcloud})",
            tuple(Action("grant_job", self.cfg.job_path, r, member) for r in roles),
        )

    def _agent(self, facts: Facts) -> str:
        number = facts.get("project").number
        return f"serviceAccount:service-{number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"

    def scheduler_agent(self, facts: Facts) -> Check:
        agent = self._agent(facts)
        if facts.get("project_policy").holds(agent, AGENT_ROLE):
            return Check("scheduler agent", OK, f"{agent.partition(':')[2]} holds {AGENT_ROLE}")
        return Check(
            "scheduler agent",
            FAIL,
            f"Cloud Scheduler's service agent lacks {AGENT_ROLE}: it cannot mint tokens",
            f"govctl doctor --fix (or: gcloud projects add-iam-policy-binding {self.project} "
            f"--member={agent} --role={AGENT_ROLE})",
            (Action("grant_project", self.project, AGENT_ROLE, agent),),
        )

    # -- the scheduler -------------------------------------------------------------------------
    def scheduler_target(self, facts: Facts) -> Check:
        sched = facts.get("scheduler")
        name, region = self.cfg.schedule.name, self.cfg.region
        if sched is None:
            return Check("scheduler", FAIL, f"scheduler job {name} not found", "govctl deploy")
        update = f"gcloud scheduler jobs update http {name} --location {region}"
        want = self.cfg.run_uri
        if sched.uri != want:
            return Check(
                "scheduler",
                FAIL,
                f"targets {sched.uri}, not this job's v2 :run URI {want}",
                f"govctl deploy (or: {update} --uri={want})",
            )
        if sched.http_method != "POST":
            return Check(
                "scheduler",
                FAIL,
                f"sends {sched.http_method}; RunJob takes POST",
                f"govctl deploy (or: {update} --http-method=POST)",
            )
        if sched.token != "oauth":
            what = "an OIDC token, which Google APIs refuse" if sched.token else "no token"
            email = sched.service_account or self.cfg.job.service_account
            return Check(
                "scheduler",
                FAIL,
                f"authenticates with {what}; Run's API needs an OAuth token",
                f"govctl deploy (or: {update} --oauth-service-account-email={email} "
                "--oauth-token-scope=https://www.googleapis.com/auth/cloud-platform)",
            )
        if sched.state != "ENABLED":
            return Check(
                "scheduler",
                WARN if sched.state == "PAUSED" else FAIL,
                f"{name} is {sched.state}: the job is not run on schedule ({sched.schedule})",
                f"govctl doctor --fix (or: gcloud scheduler jobs resume {name} "
                f"--location {region})",
                (Action("resume", self.cfg.schedule_path),),
            )
        return Check(
            "scheduler",
            OK,
            f"{name} ({sched.schedule} {sched.time_zone}) POSTs to the job's :run with an "
            f"OAuth token of {sched.service_account}",
        )

    def scheduler_last_attempt(self, facts: Facts) -> Check:
        sched = facts.get("scheduler")
        if sched is None:
            return Check("last attempt", SKIP, "no scheduler job (see scheduler)")
        if sched.last_status is None:
            return Check("last attempt", OK, "no attempt yet")
        when = sched.last_attempt.astimezone() if sched.last_attempt else None
        stamp = when.strftime("%Y-%m-%d %H:%M %z") if when else "?"
        if sched.last_status == "OK":
            return Check("last attempt", OK, f"{stamp} OK")
        cause, fix, still = self._attempt_cause(sched, facts)
        evidence = f"{stamp} {sched.last_status}: {cause}"
        if not still:
            return Check(
                "last attempt",
                WARN,
                evidence + " — fixed since; the next attempt will tell",
                f"gcloud scheduler jobs run {self.cfg.schedule.name} --location {self.cfg.region}",
            )
        return Check("last attempt", FAIL, evidence, fix)

    def _attempt_cause(self, sched: inspect.SchedulerFacts, facts: Facts) -> tuple[str, str, bool]:
        """What a failed attempt means, its fix, and whether the cause is still there."""
        message = sched.last_message
        member = sched.service_account or self.cfg.job.service_account
        if sched.last_status == "PERMISSION_DENIED":
            if "service agent" in message or "serviceAgent" in message:
                still = not facts.get("project_policy").holds(self._agent(facts), AGENT_ROLE)
                return (
                    f"Cloud Scheduler's service agent lacks {AGENT_ROLE}",
                    "govctl doctor --fix",
                    still,
                )
            missing = self._missing_run_roles(facts) if facts.get("job") else []
            role = WITH_OVERRIDES if "runWithOverrides" in message else INVOKER
            still = any(r == role for _, r in missing) or facts.get("job") is None
            return f"{member} lacks {role} on the job", "govctl doctor --fix", still
        if sched.last_status == "NOT_FOUND":
            target = re.search(r"/jobs/([^/:]+):run", sched.uri)
            job = target.group(1) if target else sched.uri
            still = sched.uri != self.cfg.run_uri or facts.get("job") is None
            return (
                f"the target job {job} does not exist",
                f"govctl deploy (the scheduler must target {self.cfg.job.name})",
                still,
            )
        if sched.last_status == "UNAUTHENTICATED":
            account = facts.get("service_account")
            still = sched.token != "oauth" or account is None or account.disabled
            return (
                f"no OAuth token could be sent ({message})",
                "govctl deploy (OAuth token of an existing service account)",
                still,
            )
        return message or "the attempt failed", "govctl logs --scheduler", True

    # -- the image -----------------------------------------------------------------------------
    def image(self, facts: Facts) -> Check:
        job = facts.get("job")
        image = job.image if job is not None else self.cfg.job.image
        host = image.split("/", 1)[0]
        if host == "gcr.io" or host.endswith(".gcr.io"):
            return Check(
                "image",
                FAIL,
                f"{image} is on Container Registry, which is shut down",
                "push to Artifact Registry: govctl deploy (image "
                f"{self.cfg.region}-docker.pkg.dev/{self.project}/REPOSITORY/IMAGE)",
            )
        try:
            ref = artifacts.parse_image(image)
        except UsageError:
            return Check("image", WARN, f"{image} is not in Artifact Registry", "govctl deploy")
        if job is None:
            return Check("image", SKIP, f"no job yet; the settings name {image} (see job)")
        try:
            digest = artifacts.resolve_digest(ref)
        except NotFound as err:
            return Check("image", FAIL, str(err).split(" — ")[0], err.fix)
        if ref.digest is None:
            return Check(
                "image",
                WARN,
                f"{image} exists ({digest[:19]}…) but the job follows a tag, not a digest: a "
                "push changes what runs",
                "govctl deploy (it pins the digest)",
            )
        return Check("image", OK, f"{ref.path}@{digest[:19]}… exists in Artifact Registry")

    # -- executions ----------------------------------------------------------------------------
    def last_execution(self, facts: Facts) -> Check:
        if facts.get("job") is None:
            return Check("last run", SKIP, "no job (see job)")
        done = [e for e in facts.get("executions") if e.done]
        if not done:
            return Check("last run", OK, "no finished execution yet")
        newest = done[0]
        if newest.status == "succeeded":
            return Check("last run", OK, f"{newest.name} succeeded")
        if newest.status == "cancelled":
            return Check(
                "last run",
                WARN,
                f"{newest.name} was cancelled",
                f"govctl run (or: gcloud run jobs execute {self.cfg.job.name} "
                f"--region {self.cfg.region})",
            )
        return self._classify(newest, facts.get("job"))

    def _classify(self, ex: executions.Execution, job: jobs.JobSpec) -> Check:
        tasks = [t for t in executions.tasks(ex.full) if t.status == "failed"]
        name, region = self.cfg.job.name, self.cfg.region
        labels = f'labels."run.googleapis.com/execution_name"="{ex.name}"'
        if any(t.exit_code == 137 or t.term_signal == 9 for t in tasks):
            system = inspect.log_texts(
                self.project,
                f'logName="projects/{self.project}/logs/run.googleapis.com%2Fvarlog%2Fsystem" '
                f"AND {labels}",
            )
            oom = [line for line in system if line.startswith("Memory limit of")]
            if oom:
                bigger = _double(job.memory_mib)
                return Check(
                    "last run",
                    FAIL,
                    f"{ex.name} ran out of memory: {oom[-1].split('. Consider')[0]}",
                    f'raise memory: set [job] memory = "{bigger}" in govctl.toml, then govctl '
                    f"deploy (or: gcloud run jobs update {name} --region {region} "
                    f"--memory {bigger})",
                )
        timed_out = [t for t in tasks if t.timed_out]
        if timed_out:
            return Check(
                "last run",
                FAIL,
                f"{ex.name}: task {timed_out[0].index} reached its task timeout "
                f"({_span(_timeout_s(job))})",
                "raise [job] task_timeout or add tasks ([job] tasks) in govctl.toml, then "
                f"govctl deploy (or: gcloud run jobs update {name} --region {region} "
                f"--task-timeout {_span(_timeout_s(job) * 2)})",
            )
        errors = inspect.log_texts(self.project, f"{labels} AND severity>=ERROR", limit=3)
        task = tasks[0] if tasks else None
        exit_text = f"task {task.index} exited with {task.exit_code}" if task else ex.message
        last = f": {errors[-1]}" if errors else " (no ERROR lines logged)"
        return Check(
            "last run",
            FAIL,
            f"{ex.name}: {exit_text}{last}",
            f"govctl logs --execution {ex.name} --errors (or: gcloud logging read "
            f"'resource.type=\"cloud_run_job\" AND {labels} AND severity>=ERROR' "
            f"--project {self.project})",
        )

    def _interval(self, facts: Facts) -> timedelta:
        from zoneinfo import ZoneInfo

        from croniter import croniter

        sched = facts.get("scheduler")
        cron = sched.schedule if sched is not None else self.cfg.schedule.cron
        tz = sched.time_zone if sched is not None else self.cfg.schedule.time_zone
        it = croniter(cron, self.now().astimezone(ZoneInfo(tz)))
        first: datetime = it.get_next(datetime)
        second: datetime = it.get_next(datetime)
        return second - first

    def run_time(self, facts: Facts) -> Check:
        job = facts.get("job")
        if job is None:
            return Check("run time", SKIP, "no job (see job)")
        times = [
            d
            for e in facts.get("executions")
            if e.status == "succeeded" and (d := e.duration_s()) is not None
        ]
        if not times:
            return Check("run time", OK, "no successful execution to measure yet")
        median = statistics.median(times)
        timeout = _timeout_s(job)
        share = median / timeout
        interval = self._interval(facts).total_seconds()
        evidence = (
            f"median {_span(median)} of {len(times)} run(s): {share:.0%} of the "
            f"{_span(timeout)} task timeout; the schedule runs every {_span(interval)}"
        )
        if median > interval:
            return Check(
                "run time",
                WARN,
                evidence + " — runs would overlap",
                "add tasks ([job] tasks) or run less often ([schedule] cron), then govctl deploy",
            )
        if share > RUN_TIME_WARN:
            return Check(
                "run time",
                WARN,
                evidence,
                "raise [job] task_timeout or [job] tasks in govctl.toml, then govctl deploy",
            )
        return Check("run time", OK, evidence)

    # -- the bucket ----------------------------------------------------------------------------
    def bucket(self, facts: Facts) -> Check:
        b = facts.get("bucket")
        name, region = self.cfg.bucket, self.cfg.region
        if b is None:
            return Check(
                "bucket",
                FAIL,
                f"gs://{name} does not exist",
                f"govctl setup (or: gcloud storage buckets create gs://{name} --project "
                f"{self.project} --location {region} --uniform-bucket-level-access "
                "--public-access-prevention)",
            )
        if b.location != region.upper():
            return Check(
                "bucket",
                WARN,
                f"gs://{name} is in {b.location}, the job in {region.upper()}: every digest "
                "crosses regions",
                f"use a bucket in {region} ([bucket] name), created by govctl setup",
            )
        return Check("bucket", OK, f"gs://{name} in {b.location}")

    def digests(self, facts: Facts) -> Check:
        b = facts.get("bucket")
        if b is None:
            return Check("digests", SKIP, "no bucket (see bucket)")
        if b.newest_processed_at is None:
            return Check(
                "digests", WARN, f"no digests in gs://{b.name} yet", "govctl run --limit 10"
            )
        interval = self._interval(facts)
        age = self.now() - b.newest_processed_at
        evidence = (
            f"{b.digests} digest(s); newest written {_ago(b.newest_processed_at, self.now())}"
        )
        if age > 2 * interval:
            return Check(
                "digests",
                WARN,
                evidence
                + f", older than two schedule intervals ({_span(2 * interval.total_seconds())})",
                "see why runs stop writing: govctl executions list",
            )
        return Check("digests", OK, evidence)


def _double(memory_mib: int | str) -> str:
    """Twice the job's memory, as govctl writes it ("512Mi" -> "1Gi")."""
    if isinstance(memory_mib, int):
        return validate.format_memory(memory_mib * 2)
    return f"more than {memory_mib}"


def _memory(job: jobs.JobSpec) -> str:
    mib = job.memory_mib
    return validate.format_memory(mib) if isinstance(mib, int) else mib or "512Mi"


def _timeout_s(job: jobs.JobSpec) -> float:
    # Unset means Cloud Run's default of 10 minutes.
    return job.task_timeout.total_seconds() or 600.0


def diagnose(cfg: config.Config) -> Report:
    return Doctor(cfg).run()


def repair(actions: list[Action]) -> list[tuple[Action, GovctlError | None]]:
    """Apply each action; one failing does not stop the others."""
    results: list[tuple[Action, GovctlError | None]] = []
    for action in actions:
        try:
            action.apply()
        except GovctlError as err:
            results.append((action, err))
        else:
            results.append((action, None))
    return results
