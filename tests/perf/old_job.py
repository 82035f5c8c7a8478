"""The benchmark's baseline: what the replaced orchestrator did, one repository after another.

    python -m tests.perf.old_job --feed FILE --sink DIR

For every feed entry, in order: ``git clone --depth 1`` (what gitingest's own clone runs),
stock ``gitingest.ingest`` on the checkout, and only then compare ``pushedAt`` with the stored
metadata, writing the digest when it differs. The output layout is the job's directory sink
(``DIR/owner/name.md`` + ``.meta.json``) so both see the same state. Prints one JSON line of
counts. The old job also downloaded tiktoken's encoding and counted tokens; run offline it
skips that (faster than the real old job, so the comparison favours the baseline).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_FILE_SIZE = 524288


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feed", type=Path, required=True)
    parser.add_argument("--sink", type=Path, required=True)
    args = parser.parse_args(argv)

    import gitingest  # the stock library, as the old job used it

    counts = {"written": 0, "unchanged": 0, "failed": 0}
    started = time.monotonic()
    for entry in json.loads(args.feed.read_text()):
        owner, name, pushed_at = entry["owner"], entry["name"], entry.get("pushedAt", "")
        work = Path(tempfile.mkdtemp(prefix="old-job-"))
        try:
            checkout = work / "repo"
            subprocess.run(
                ["git", "clone", "--quiet", "--depth", "1", "--single-branch", entry["url"],
                 str(checkout)],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
            summary, tree, content = gitingest.ingest(str(checkout), max_file_size=MAX_FILE_SIZE)
            meta_path = args.sink / owner / f"{name}.md.meta.json"
            stored = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            if stored.get("pushedAt") == pushed_at:
                counts["unchanged"] += 1
                continue
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            text = f"{summary}\n\n{tree}\n\n{content}"
            (args.sink / owner / f"{name}.md").write_text(text, encoding="utf-8")
            meta_path.write_text(json.dumps({"pushedAt": pushed_at, "url": entry["url"]}))
            counts["written"] += 1
        except Exception as exc:
            counts["failed"] += 1
            print(f"{owner}/{name}: {exc}", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({**counts, "seconds": round(time.monotonic() - started, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
