"""`govctl status`: the screen an operator opens each morning."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import typer

from govctl import render, validate
from govctl.cli.options import Json, Project, Region, settings

if TYPE_CHECKING:
    from govctl.services.status import DigestStats, JobSpec, Part, Schedule, Status

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")


def _short_image(image: str) -> str:
    path, _, digest = image.partition("@")
    return f"…/{PurePosixPath(path).name}" + (f"@{digest[:19]}" if digest else "")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


Rows = list[tuple[str, str]]


def _job(part: Part[JobSpec | None], name: str) -> Rows:
    if part.error:
        return [("Job", f"unreadable: {part.error}")]
    job = part.value
    if job is None:
        return [("Job", f"{name} is not deployed — next: govctl deploy")]
    commit = job.labels.get("commit-sha", "")
    image = _short_image(job.image) + (f" (commit {commit[:7]})" if commit else "")
    if job.update_time:
        image += f", deployed {render.when(job.update_time)}"
    memory = job.memory_mib  # as Cloud Run has it when govctl cannot read it as MiB
    if isinstance(memory, int):
        memory = validate.format_memory(memory)
    timeout = validate.format_duration(job.task_timeout)
    return [("Job", image), ("", f"{job.cpu} vCPU · {memory} · {job.tasks} task(s) · timeout "
                             f"{timeout} · retries {job.max_retries}")]  # fmt: skip


def _schedule(part: Part[Schedule]) -> Rows:
    if part.error:
        return [("Schedule", f"unreadable: {part.error}")]
    if part.value is None or part.value.spec is None:
        return [("Schedule", "none — `govctl deploy` creates it")]
    spec, upcoming = part.value.spec, part.value.next
    last = "no attempt yet"
    if spec.last_attempt_time:
        last = f"last attempt {render.when(spec.last_attempt_time)} {spec.status_name or 'OK'}"
    running = upcoming and spec.state == "ENABLED"
    nxt = f"next {render.scheduled(upcoming, spec.time_zone)}" if running else "paused"
    return [
        ("Schedule", f"{spec.cron} — {part.value.description} ({spec.time_zone}) · {spec.state}"),
        ("", f"{nxt} · {last}"),
    ]


def _bucket(part: Part[DigestStats | None]) -> Rows:
    if part.error:
        return [("Bucket", f"unreadable: {part.error}")]
    b = part.value
    if b is None:
        return [("Bucket", "missing — create it with `govctl setup`")]
    rows = [("Bucket", f"gs://{b.bucket} ({b.location}): {b.digests} digests, {_size(b.bytes)}")]
    if b.newest:
        rows.append(("", f"processedAt {render.when(b.oldest)} … {render.when(b.newest)}"))
    return rows


def _failing(part: Part[list[dict[str, str]]]) -> Rows:
    if part.error:
        return [("Failing", f"unreadable: {part.error}")]
    items = part.value or []
    if not items:
        return []
    shown = ", ".join(f"{f['repo']} ({f.get('reason', '?')} since "
                      f"{f.get('first_failed', '?')[:10]})" for f in items[:3])  # fmt: skip
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    count = "1 repository keeps" if len(items) == 1 else f"{len(items)} repositories keep"
    return [("Failing", f"{count} failing: {shown}{more}")]


def _cost(part: Part[float]) -> Rows:
    if part.error or part.value is None:
        return [("Cost", f"unavailable: {part.error}")]
    return [("Cost", f"about ${part.value:,.2f} a month — govctl cost for the breakdown")]


def _lines(st: Status) -> Rows:
    return (_job(st.job, st.job_name) + _schedule(st.schedule) + _bucket(st.bucket)
            + _failing(st.failing) + _cost(st.cost))  # fmt: skip


def _run_rows(st: Status, now: datetime) -> list[list[object]]:
    rows: list[list[object]] = []
    for run in st.runs.value or []:
        ex, t = run.execution, run.totals
        duration = ex.duration_s(now)
        rows.append([
            ex.name, ex.status, render.when(ex.started or ex.created),
            validate.format_duration(duration) if duration is not None else "-",
            f"{ex.succeeded}/{ex.task_count}",
            t.processed if t else "-", t.unchanged if t else "-", t.failed if t else "-",
        ])  # fmt: skip
    return rows


def _json(st: Status) -> dict[str, object]:
    def part(p: Part[object], value: object) -> object:
        return {"error": p.error} if p.error else value

    sched = st.schedule.value
    schedule = None
    if sched is not None and sched.spec is not None:
        schedule = {**render.plain(sched.spec), "description": sched.description,
                    "next": sched.next}  # fmt: skip
    runs = [{**render.plain(r.execution), "reports": r.totals} for r in st.runs.value or []]
    return {
        "project": st.project,
        "region": st.region,
        "job": part(st.job, st.job.value),
        "schedule": part(st.schedule, schedule),
        "executions": part(st.runs, runs),
        "bucket": part(st.bucket, st.bucket.value),
        "persistent_failures": part(st.failing, st.failing.value),
        "cost_per_month_usd": part(st.cost, st.cost.value),
    }


def _show(st: Status, now: datetime) -> None:
    render.out(f"{st.job_name} · {st.project} · {st.region}")
    render.out()
    lines = _lines(st)
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        render.out(f"{key:<{width}}  {value}")
    render.out()
    if st.runs.error:
        render.out(f"Executions unreadable: {st.runs.error}")
    elif not st.runs.value:
        render.out("No executions yet — next: govctl run --limit 10")
    else:
        render.table(
            ["execution", "status", "started", "duration", "tasks ok", "processed",
             "unchanged", "failed"],
            _run_rows(st, now), title=None,
        )  # fmt: skip


@app.command()
def status(project: Project = None, region: Region = None, json: Json = False) -> None:
    """One screen: the job, the schedule, the last 5 executions, the bucket and the cost.

    Every part is read at once; a part that cannot be read says why without hiding the others.
    """
    cfg = settings(project, region)
    cfg.require_project()
    from govctl.services import status as service

    now = datetime.now(UTC)
    with render.progress("reading the job, schedule, executions, bucket and prices"):
        st = service.gather(cfg, now)
    render.display(st, as_json=json, human=lambda st: _show(st, now), to_json=_json)
