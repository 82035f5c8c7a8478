"""`govctl status`: the screen an operator opens each morning."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from govctl import render, validate
from govctl.cli.options import Json, Project, Region, settings

app = typer.Typer(add_completion=False, rich_markup_mode="markdown")


def _short_image(image: str) -> str:
    path, _, digest = image.partition("@")
    name = path.rsplit("/", 1)[-1]
    return f"…/{name}@{digest[:19]}" if digest else f"…/{path.rsplit('/', 1)[-1]}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def _lines(st: Any, now: datetime) -> list[tuple[str, str]]:
    when = render.when
    rows: list[tuple[str, str]] = []
    if st.job.error:
        rows.append(("Job", f"unreadable: {st.job.error}"))
    elif st.job.value is None:
        rows.append(("Job", f"{st.job_name} is not deployed — next: govctl deploy"))
    else:
        job = st.job.value
        commit = job.labels.get("commit-sha", "")
        image = _short_image(job.image) + (f" (commit {commit[:7]})" if commit else "")
        if job.update_time:
            image += f", deployed {when(job.update_time)}"
        rows.append(("Job", image))
        memory = job.memory_mib
        if isinstance(memory, int):
            memory = validate.format_memory(memory)
        timeout = validate.format_duration(job.task_timeout)
        rows.append(("", f"{job.cpu} vCPU · {memory} · {job.tasks} task(s) · timeout "
                     f"{timeout} · retries {job.max_retries}"))  # fmt: skip
    if st.schedule.error:
        rows.append(("Schedule", f"unreadable: {st.schedule.error}"))
    elif st.schedule.value[0] is None:
        rows.append(("Schedule", "none — `govctl deploy` creates it"))
    else:
        spec, words, upcoming = st.schedule.value
        rows.append(("Schedule", f"{spec.cron} — {words} ({spec.time_zone}) · {spec.state}"))
        last = "no attempt yet"
        if spec.last_attempt_time:
            status = spec.status_name or "OK"
            last = f"last attempt {when(spec.last_attempt_time)} {status}"
        nxt = f"next {when(upcoming)}" if upcoming and spec.state == "ENABLED" else "paused"
        rows.append(("", f"{nxt} · {last}"))
    if st.bucket.error:
        rows.append(("Bucket", f"unreadable: {st.bucket.error}"))
    elif st.bucket.value is None:
        rows.append(("Bucket", "missing — create it with `govctl setup`"))
    else:
        b = st.bucket.value
        rows.append(("Bucket", f"gs://{b.bucket} ({b.location}): {b.digests} digests, "
                     f"{_size(b.bytes)}"))  # fmt: skip
        if b.newest:
            rows.append(("", f"processedAt {when(b.oldest)} … {when(b.newest)}"))
    if st.failing.error:
        rows.append(("Failing", f"unreadable: {st.failing.error}"))
    elif st.failing.value:
        items = st.failing.value
        shown = ", ".join(f"{f['repo']} ({f.get('reason', '?')} since "
                          f"{f.get('first_failed', '?')[:10]})" for f in items[:3])  # fmt: skip
        more = f" and {len(items) - 3} more" if len(items) > 3 else ""
        count = "1 repository keeps" if len(items) == 1 else f"{len(items)} repositories keep"
        rows.append(("Failing", f"{count} failing: {shown}{more}"))
    if st.cost.error:
        rows.append(("Cost", f"unavailable: {st.cost.error}"))
    else:
        rows.append(("Cost", f"about ${st.cost.value:,.2f} a month — govctl cost for the "
                     "breakdown"))  # fmt: skip
    return rows


def _run_rows(st: Any, now: datetime) -> list[list[Any]]:
    rows = []
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


def _json(st: Any) -> dict[str, Any]:
    def part(p: Any, value: Any) -> Any:
        return {"error": p.error} if p.error else value

    spec, words, upcoming = st.schedule.value if st.schedule.value else (None, "", None)
    schedule = spec and {**render.plain(spec), "description": words, "next": upcoming}
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
    if json:
        render.json_out(_json(st))
        return
    render.out(f"{st.job_name} · {st.project} · {st.region}")
    render.out()
    width = max(len(k) for k, _ in _lines(st, now))
    for key, value in _lines(st, now):
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
