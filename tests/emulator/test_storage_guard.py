"""No object name writes outside the emulator's state directory (issue 14, item 1: "no file
outside the emulator's state appears").

fake-gcs-server's filesystem backend joins the object name to its directory as a path, so an
object named ``../../../x`` was written three levels above the bucket — by an upload of any
kind, a copy, a rewrite or a compose — and could overwrite any file the emulator's user can
(``~/.bashrc``, a ``.pth`` file of the interpreter the tasks run). The emulator refuses such
names with 400, in Cloud Storage's error shape.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import storage

from govctl.emulator.server import Emulator
from govctl.gcp import clients

UP = "../../../"  # from state/storage/BUCKET to the test's directory


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "state") as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield emu


@pytest.fixture
def bucket(cloud: Emulator) -> storage.Bucket:
    b = clients.storage_client("demo-project").create_bucket("b1")
    b.blob("ok.txt").upload_from_string("fine")
    return b


def outside_state(tmp_path: Path) -> dict[Path, bytes]:
    return {
        p: p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.is_relative_to(tmp_path / "state")
    }


def _resumable(b: storage.Bucket, name: str) -> None:
    blob = b.blob(name, chunk_size=256 * 1024)  # several requests: a resumable upload
    blob.upload_from_string(b"y" * (600 * 1024))


ATTACKS: dict[str, Callable[[storage.Bucket], object]] = {
    "multipart upload": lambda b: b.blob(f"{UP}victim.txt").upload_from_string("pwned"),
    "nested name": lambda b: b.blob(f"a/{UP}../victim.txt").upload_from_string("pwned"),
    "resumable upload": lambda b: _resumable(b, f"{UP}victim.txt"),
    "copy": lambda b: b.copy_blob(b.blob("ok.txt"), b, f"{UP}victim.txt"),
    "rewrite": lambda b: b.blob(f"{UP}victim.txt").rewrite(b.blob("ok.txt")),
    "compose": lambda b: b.blob(f"{UP}victim.txt").compose([b.blob("ok.txt")]),
    "compose source": lambda b: b.blob("c.txt").compose([b.blob(f"{UP}victim.txt")]),
    "delete": lambda b: b.blob(f"{UP}victim.txt").delete(),
    "read": lambda b: b.blob(f"{UP}victim.txt").download_as_bytes(),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_object_name_never_leaves_the_state_directory(
    bucket: storage.Bucket, tmp_path: Path, attack: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("the operator's file")
    before = outside_state(tmp_path)
    with pytest.raises(exceptions.BadRequest, match="path segment"):
        ATTACKS[attack](bucket)
    assert outside_state(tmp_path) == before  # nothing written, overwritten or deleted


def test_raw_requests_are_refused_too(cloud: Emulator, tmp_path: Path) -> None:
    clients.storage_client("demo-project").create_bucket("b2")
    base = cloud.env()["STORAGE_EMULATOR_HOST"]
    before = outside_state(tmp_path)
    form = (
        b'--B\r\nContent-Disposition: form-data; name="key"\r\n\r\n../../../x.txt\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        b"Content-Type: text/plain\r\n\r\npwned\r\n--B--\r\n"
    )
    # A batch: fake-gcs-server runs each application/http part (google-cloud-storage's own
    # batch() cannot read its answer, but a raw request needs no client).
    inner = (
        b"POST /storage/v1/b/b2/o/ok.txt/copyTo/b/b2/o/..%2F..%2F..%2Fx.txt HTTP/1.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    batch = b"--A\r\nContent-Type: application/http\r\n\r\n" + inner + b"\r\n--A--\r\n"
    requests = [
        ("POST", "/batch/storage/v1", batch, "multipart/mixed; boundary=A"),
        ("POST", "/b2", form, "multipart/form-data; boundary=B"),  # an XML API form upload
        ("POST", f"/upload/storage/v1/b/b2/o?uploadType=media&name={UP}x.txt", b"x", "text/plain"),
        ("POST", "/upload/storage/v1/b/b2/o?uploadType=resumable", b'{"name": "../../../x"}',
         "application/json"),
        ("POST", "/upload/storage/v1/b/b2/o/../../../x.txt?uploadType=media", b"x", "text/plain"),
    ]  # fmt: skip
    for method, path, body, ctype in requests:
        req = urllib.request.Request(
            base + path, data=body, method=method, headers={"Content-Type": ctype}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400, path
        assert json.loads(err.value.read())["error"]["code"] == 400
    assert outside_state(tmp_path) == before


def test_names_with_dots_that_stay_inside_still_work(bucket: storage.Bucket) -> None:
    for name in ["a..b.txt", "..hidden/x.txt", "dir/...", "v1.2/notes"]:
        bucket.blob(name).upload_from_string(name)
        assert bucket.blob(name).download_as_text() == name
    _resumable(bucket, "big/blob.bin")
    assert bucket.blob("big/blob.bin").download_as_bytes() == b"y" * (600 * 1024)
