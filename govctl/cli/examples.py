"""The examples at the end of every command's ``--help``, as gcloud's and kubectl's end.

Written once, here; docs/cli.md shows the same lines in each command's "Examples" block
(a test compares them: ``python -m govctl.cli.examples GROUP`` prints a group's block).
Keys are command paths as typed after ``govctl`` (``""`` is ``govctl`` itself). Every
example is a line an operator can paste: a test checks that its flags exist.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import NamedTuple


class Example(NamedTuple):
    says: str  # what it does, as a comment line above it
    line: str  # the shell line, as typed


_ = Example
EXAMPLES: dict[str, tuple[Example, ...]] = {
    "": (
        _("write govctl.toml for a project, then check what it resolves to",
          "govctl init --project demo-project && govctl config show"),
        _("make what the job stands on, deploy it, run it on 10 repositories",
          "govctl setup -y && govctl deploy -y && govctl run --limit 10"),
        _("the morning screen, then a check of everything a scheduled run needs",
          "govctl status && govctl doctor"),
    ),
    "init": (
        _("a commented govctl.toml with every setting, for one project and region",
          "govctl init --project demo-project --region europe-west2"),
        _("write it elsewhere, replacing the file that is there",
          "govctl init --path ops/govctl.toml --force"),
    ),
    "config": (
        _("every setting with its value and where it came from",
          "govctl config show"),
        _("the settings of another file, as JSON",
          "GOVCTL_CONFIG=ops/govctl.toml govctl config show --json"),
    ),
    "config show": (
        _("every setting with its value and where it came from",
          "govctl config show"),
        _("one value, for a script",
          "govctl config show --json | jq '.settings[] | select(.key == \"job.image\")'"),
    ),
    "setup": (
        _("see what would be enabled, created and granted; change nothing",
          "govctl setup --dry-run"),
        _("apply it without asking, then set e-mail alerts",
          "govctl setup -y --alert-email ops@example.org"),
        _("also create the Vertex AI Search data store over the bucket",
          "govctl setup --with-index"),
    ),
    "secrets": (
        _("store a GitHub token for the job (from stdin, never an argument)",
          "gh auth token | govctl secrets set GITHUB_TOKEN"),
        _("which of the job's secrets it can read",
          "govctl secrets list"),
    ),
    "secrets set": (
        _("store a GitHub token for the job (from stdin, never an argument)",
          "gh auth token | govctl secrets set GITHUB_TOKEN"),
        _("under another secret id; with no stdin it asks, hiding what you type",
          "govctl secrets set GITHUB_TOKEN --secret github-token-ci"),
    ),
    "secrets list": (
        _("each [job] secrets entry: its newest version, can the job read it",
          "govctl secrets list"),
        _("the same as JSON",
          "govctl secrets list --json"),
    ),
    "deploy": (
        _("the plan only: what would change; exit 3 if anything would (CI)",
          "govctl deploy --dry-run --exit-code"),
        _("build the job with Cloud Build, deploy it by digest, no question",
          "govctl deploy -y"),
        _("build with podman or docker on this machine instead",
          "govctl deploy --build local"),
    ),
    "run": (
        _("run the job now on the first 10 feed entries and watch it",
          "govctl run --limit 10"),
        _("redo every repository with 4 tasks, streaming the log lines",
          "govctl run --tasks 4 --force -f"),
        _("start it and return at once with the execution's name",
          "govctl run --no-wait"),
    ),
    "executions": (
        _("the newest executions",
          "govctl executions list"),
        _("the newest one: tasks, repositories, failures and its log filter",
          "govctl executions show --latest"),
        _("cancel a running execution without a question",
          "govctl executions cancel --latest -y"),
    ),
    "executions list": (
        _("the newest 20 executions",
          "govctl executions list"),
        _("the newest 5 as JSON",
          "govctl executions list -n 5 --json"),
    ),
    "executions show": (
        _("the newest execution",
          "govctl executions show --latest"),
        _("one by name (press TAB after show for the names)",
          "govctl executions show govreposcrape-ingestion-x7k2p"),
    ),
    "executions cancel": (
        _("cancel the newest execution (asks first)",
          "govctl executions cancel --latest"),
        _("cancel one by name without a question",
          "govctl executions cancel govreposcrape-ingestion-x7k2p -y"),
    ),
    "logs": (
        _("what went wrong in the newest execution",
          "govctl logs --errors --latest"),
        _("follow the newest execution until it ends",
          "govctl logs -f --latest"),
        _("the scheduler's attempts: when it fired and what it started",
          "govctl logs --scheduler"),
    ),
    "schedule": (
        _("the schedule, its state and next 2 fire times",
          "govctl schedule show --next 2"),
        _("run at 02:00 and 14:00 (UTC)",
          'govctl schedule set "0 2,14 * * *" -y'),
        _("fire it now through Cloud Scheduler",
          "govctl schedule trigger"),
    ),
    "schedule show": (
        _("the schedule, its state and next 2 fire times",
          "govctl schedule show --next 2"),
        _("as JSON",
          "govctl schedule show --json"),
    ),
    "schedule set": (
        _("run at 02:00 and 14:00, without a question",
          'govctl schedule set "0 2,14 * * *" -y'),
        _("Sundays at 02:00 London time",
          'govctl schedule set "0 2 * * 0" --time-zone Europe/London'),
    ),
    "schedule pause": (
        _("stop the schedule from firing",
          "govctl schedule pause"),
        _("in another project than the settings say",
          "govctl schedule pause --project demo-project"),
    ),
    "schedule resume": (
        _("let the schedule fire again; says when it next runs",
          "govctl schedule resume"),
        _("in another project than the settings say",
          "govctl schedule resume --project demo-project"),
    ),
    "schedule trigger": (
        _("fire the scheduler job now and print the execution it started",
          "govctl schedule trigger"),
        _("then watch that execution",
          "govctl logs -f --execution $(govctl schedule trigger)"),
    ),
    "status": (
        _("the job, schedule, bucket, cost and last executions on one screen",
          "govctl status"),
        _("the same as JSON",
          "govctl status --json"),
    ),
    "doctor": (
        _("check everything a scheduled run depends on",
          "govctl doctor"),
        _("apply the fixes it can, without a question, then check again",
          "govctl doctor --fix -y"),
        _("as JSON, for a CI gate",
          "govctl doctor --json"),
    ),
    "alerts": (
        _("e-mail ops@example.org when a run fails or none succeeds",
          "govctl alerts set --email ops@example.org"),
        _("the channels and policies of the project",
          "govctl alerts show"),
    ),
    "alerts set": (
        _("e-mail ops@example.org when a run fails or none succeeds",
          "govctl alerts set --email ops@example.org"),
        _("see the plan of a shorter no-success window; change nothing",
          "govctl alerts set --stale-after 20h --dry-run"),
    ),
    "alerts show": (
        _("the channels and policies of the project",
          "govctl alerts show"),
        _("as JSON",
          "govctl alerts show --json"),
    ),
    "index": (
        _("what the data store holds and what is not indexed yet",
          "govctl index status"),
        _("import the new and changed digests, and wait",
          "govctl index sync"),
        _("prove a repository is findable",
          "govctl index search public"),
    ),
    "index status": (
        _("the data store, its documents and the digests not indexed yet",
          "govctl index status"),
        _("as JSON",
          "govctl index status --json"),
    ),
    "index sync": (
        _("import the new and changed digests, and wait",
          "govctl index sync"),
        _("start the import and return",
          "govctl index sync --no-wait"),
    ),
    "index search": (
        _("the top 5 results for a word",
          "govctl index search public"),
        _("the top 20, as JSON",
          'govctl index search "tax calculator" -n 20 --json'),
    ),
    "index create": (
        _("create the data store over the bucket (as setup --with-index)",
          "govctl index create"),
        _("in another project than the settings say",
          "govctl index create --project demo-project"),
    ),
    "cost": (
        _("what the job costs a run, a day and a month",
          "govctl cost"),
        _("what the last 5 days of executions cost",
          "govctl cost --history --days 5"),
        _("the price of a bigger shape, before changing it",
          "govctl cost --cpu 4 --memory 8Gi --tasks 2"),
    ),
    "local": (
        _("run the job on 2 repositories with this interpreter",
          "govctl local run --no-container --limit 2"),
        _("print what would run, run nothing",
          "govctl local run --dry-run"),
    ),
    "local run": (
        _("run the job on 2 repositories with this interpreter",
          "govctl local run --no-container --limit 2"),
        _("build the image and run it, writing to the settings' bucket",
          "govctl local run --limit 5 --sink gs://govreposcrape-summaries"),
        _("print what would run, run nothing",
          "govctl local run --dry-run"),
    ),
    "emulator": (
        _("start the loopback cloud in the background and point this shell at it",
          'eval "$(govctl emulator start --detach)"'),
        _("is it running, and where",
          "govctl emulator status"),
        _("stop it",
          "govctl emulator stop"),
    ),
    "emulator start": (
        _("start it in the background and point this shell at it",
          'eval "$(govctl emulator start --detach)"'),
        _("in the foreground on a free port, with its own state directory",
          "govctl emulator start --port 0 --state-dir /tmp/emulator"),
    ),
    "destroy": (
        _("see what would be deleted, in order; delete nothing",
          "govctl destroy --dry-run"),
        _("delete what govctl made, without asking; the bucket and the accounts stay",
          "govctl destroy -y"),
        _("the bucket and its digests too, its name typed out (a script has no terminal)",
          "govctl destroy -y --delete-bucket --confirm-bucket govreposcrape-summaries"),
    ),
    "emulator env": (
        _("point this shell at the running emulator",
          'eval "$(govctl emulator env)"'),
        _("and gcloud too",
          'eval "$(govctl emulator env --gcloud)"'),
    ),
    "emulator status": (
        _("is it running, and where",
          "govctl emulator status"),
        _("as JSON",
          "govctl emulator status --json"),
    ),
    "emulator stop": (
        _("stop the emulator of the default state directory",
          "govctl emulator stop"),
        _("stop the one started with --state-dir",
          "govctl emulator stop --state-dir /tmp/emulator"),
    ),
}  # fmt: skip


def block(examples: Iterable[Example]) -> str:
    """Examples as a fenced block: a comment line, then the line to type."""
    lines = [f"# {e.says}\n{e.line}" for e in examples]
    return "```\n" + "\n\n".join(lines) + "\n```" if lines else ""


def epilog(path: str) -> str | None:
    """The end of ``govctl PATH --help`` (markdown, as the commands' help is)."""
    shown = block(EXAMPLES.get(path, ()))
    return f"**Examples**\n\n{shown}" if shown else None


def docs_block(group: str) -> str:
    """What docs/cli.md shows under "Examples" in the section of ``group``: every example of
    the group and of its commands, each line once."""
    paths = [p for p in EXAMPLES if p == group or (group and p.startswith(group + " "))]
    unique = {e.line: e for p in paths for e in EXAMPLES[p]}
    command = f"govctl {group}".strip()
    return f"Examples (`{command} --help` shows them):\n\n{block(unique.values())}"


if __name__ == "__main__":
    print(docs_block(" ".join(sys.argv[1:])))
