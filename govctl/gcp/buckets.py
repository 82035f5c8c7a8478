"""Cloud Storage buckets as `govctl setup` makes them: in the job's region, uniform
bucket-level access on, public access prevention enforced; and IAM on one bucket.

Settings a server does not report are ``None`` ("unknown"), never guessed: fake-gcs-server
(the loopback cloud's storage) keeps neither the access settings nor a location, and has no
bucket IAM at all (404), which :func:`get_policy` reports as :data:`UNSUPPORTED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from govctl.errors import CloudError
from govctl.gcp import clients
from govctl.gcp.errors import translate
from govctl.gcp.iam import Policy

ENFORCED = "enforced"
# What the job's service account gets on its bucket, and only there: objects read, written,
# overwritten, listed (the old runbook granted it on every bucket of the project).
JOB_ROLE = "roles/storage.objectAdmin"
# A service account just created can take a minute to be known everywhere; IAM policies
# naming it are refused meanwhile with 400 "Service account … does not exist." (the message
# Resource Manager gives, seen in public reports; assumed the same for Cloud Storage).
NEW_ACCOUNT_WAIT = 90.0
UNSUPPORTED = "unsupported"  # get_policy: the server has no bucket IAM (fake-gcs-server)
ADMIN_FIX = "creating and securing buckets needs roles/storage.admin on the project"


@dataclass(frozen=True)
class Bucket:
    name: str
    location: str  # upper case, as Cloud Storage reports it ("EUROPE-WEST2")
    uniform_access: bool | None  # None: the server did not report iamConfiguration
    public_access_prevention: str | None  # "enforced", "inherited", or None (not reported)
    metageneration: int | None


@dataclass(frozen=True)
class BucketPolicy:
    policy: Policy
    etag: str | None


def _bucket(b: Any) -> Bucket:
    # The library fills in defaults for a missing iamConfiguration (uniform access "off"),
    # so whether the server said anything is read from the resource as it came back.
    raw = b._properties.get("iamConfiguration")
    uniform = pap = None
    if raw is not None:
        uniform = bool((raw.get("uniformBucketLevelAccess") or {}).get("enabled"))
        pap = raw.get("publicAccessPrevention") or "inherited"
    return Bucket(
        name=b.name,
        location=(b.location or "").upper(),
        uniform_access=uniform,
        public_access_prevention=pap,
        metageneration=b.metageneration,
    )


def get(name: str, project: str | None = None) -> Bucket | None:
    """The bucket, or None when it does not exist."""
    with translate(f"read bucket gs://{name}"):
        found = clients.storage_client(project).lookup_bucket(name)
    return _bucket(found) if found is not None else None


def create(name: str, project: str, location: str) -> Bucket:
    """A bucket in ``location`` with uniform bucket-level access and public access prevention."""
    from google.api_core import exceptions

    client = clients.storage_client(project)
    bucket = client.bucket(name)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = ENFORCED
    with translate(f"create bucket gs://{name} in {location}", denied=ADMIN_FIX):
        try:
            bucket.create(project=project, location=location)
        except exceptions.Conflict:
            # Bucket names are global: the name is taken, by this project or another one.
            raise CloudError(
                f"bucket name gs://{name} is taken (bucket names are global)",
                fix="choose another [bucket] name in govctl.toml (or GOVCTL_BUCKET_NAME)",
            ) from None
    return _bucket(bucket)


def secure(name: str, project: str, metageneration: int | None) -> Bucket:
    """Turn uniform bucket-level access on and enforce public access prevention; refused
    when the bucket changed since ``metageneration`` was read."""
    client = clients.storage_client(project)
    bucket = client.bucket(name)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = ENFORCED
    with translate(f"update bucket gs://{name}", denied=ADMIN_FIX):
        bucket.patch(if_metageneration_match=metageneration)
    return _bucket(bucket)


def get_policy(name: str, project: str | None = None) -> BucketPolicy | str:
    """The bucket's IAM policy, or :data:`UNSUPPORTED` when the server has none to give for a
    bucket that exists (fake-gcs-server answers 404)."""
    from google.api_core import exceptions

    bucket = clients.storage_client(project).bucket(name)
    with translate(
        f"read the IAM policy of gs://{name}",
        denied=f"reading it needs storage.buckets.getIamPolicy (roles/storage.admin) on "
        f"gs://{name}",
    ):
        try:
            pol = bucket.get_iam_policy(requested_policy_version=3)
        except exceptions.NotFound:
            return UNSUPPORTED
    plain: dict[str, set[str]] = {}
    conditional: dict[str, set[str]] = {}
    for binding in pol.bindings:
        target = conditional if binding.get("condition") else plain
        target.setdefault(binding["role"], set()).update(binding["members"])
    return BucketPolicy(
        Policy(
            {r: frozenset(m) for r, m in plain.items()},
            {r: frozenset(m) for r, m in conditional.items()},
        ),
        pol.etag,
    )


def _unknown_member(err: BaseException) -> bool:
    from google.api_core import exceptions

    return isinstance(err, exceptions.BadRequest) and "does not exist" in str(err)


def add_member(name: str, role: str, member: str, etag: str | None, project: str) -> bool | None:
    """Grant ``role`` to ``member`` on this bucket only, read-modify-write; refused when the
    policy changed since ``etag`` was read. False when already held; None when the server
    has no bucket IAM (fake-gcs-server)."""
    from google.api_core import exceptions
    from google.api_core import retry as retries

    changed = CloudError(
        f"the IAM policy of gs://{name} changed since the plan was made",
        fix="rerun `govctl setup` to see the new state",
    )
    bucket = clients.storage_client(project).bucket(name)
    with translate(
        f"grant {role} to {member} on gs://{name}",
        denied=f"granting it needs storage.buckets.setIamPolicy (roles/storage.admin) on "
        f"gs://{name}",
    ):
        try:
            pol = bucket.get_iam_policy(requested_policy_version=3)
        except exceptions.NotFound:
            return None
        if etag is not None and pol.etag != etag:
            raise changed
        for binding in pol.bindings:
            if binding["role"] == role and not binding.get("condition"):
                if member in binding["members"]:
                    return False
                binding["members"] = set(binding["members"]) | {member}
                break
        else:
            pol.bindings.append({"role": role, "members": {member}})
        wait = retries.Retry(
            predicate=_unknown_member, initial=2.0, maximum=15.0, timeout=NEW_ACCOUNT_WAIT
        )
        try:
            bucket.set_iam_policy(pol, retry=wait)
        except exceptions.PreconditionFailed:
            raise changed from None
    return True


def remove_member(name: str, role: str, member: str, project: str) -> bool | None:
    """Take ``member`` (or it, deleted since) out of ``role`` on this bucket, read-modify-write
    with the etag just read (a change in between is refused, never overwritten). False when
    it held no such grant; None when the server has no bucket IAM (fake-gcs-server)."""
    from google.api_core import exceptions

    from govctl.gcp.iam import is_member

    bucket = clients.storage_client(project).bucket(name)
    with translate(
        f"remove {role} from {member} on gs://{name}",
        denied=f"removing it needs storage.buckets.setIamPolicy (roles/storage.admin) on "
        f"gs://{name}",
    ):
        try:
            pol = bucket.get_iam_policy(requested_policy_version=3)
        except exceptions.NotFound:
            if bucket.exists():
                return None
            raise
        removed = False
        for binding in list(pol.bindings):
            if binding["role"] != role or binding.get("condition"):
                continue
            kept = {m for m in binding["members"] if not is_member(m, member)}
            if len(kept) == len(binding["members"]):
                continue
            removed = True
            if kept:
                binding["members"] = kept
            else:  # Cloud Storage refuses a binding without members
                pol.bindings.remove(binding)
        if removed:
            try:
                bucket.set_iam_policy(pol)
            except exceptions.PreconditionFailed:
                raise CloudError(
                    f"the IAM policy of gs://{name} changed while govctl removed a grant",
                    fix="rerun `govctl destroy` to see the new state",
                ) from None
    return removed


def count_objects(name: str, project: str, prefix: str = "") -> int:
    """How many objects the bucket holds (under ``prefix``): one listing of names."""
    with translate(f"list gs://{name}/{prefix}"):
        blobs = clients.storage_client(project).list_blobs(
            name, prefix=prefix or None, fields="items(name),nextPageToken"
        )
        return sum(1 for _ in blobs)


# Objects are deleted one request each (fake-gcs-server cannot answer a batch, and JSON API
# batches hold 100 calls at most), this many at once.
DELETE_WORKERS = 16


def delete_objects(name: str, project: str, prefix: str = "") -> int:
    """Delete every object of the bucket under ``prefix`` (each generation, should versioning
    be on), 16 at a time; one gone meanwhile is fine. Returns how many were listed; NotFound
    when the bucket is gone."""
    import contextlib
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from google.api_core import exceptions

    local = threading.local()

    def gone(blob_name: str, generation: int | None) -> None:
        if not hasattr(local, "bucket"):  # a client per thread: requests sessions are not shared
            local.bucket = clients.storage_client(project).bucket(name)
        with contextlib.suppress(exceptions.NotFound):  # deleted meanwhile: as wanted
            local.bucket.blob(blob_name, generation=generation).delete()

    with translate(f"delete gs://{name}/{prefix}", denied=ADMIN_FIX):
        listed = [
            (b.name, b.generation)
            for b in clients.storage_client(project).list_blobs(
                name,
                prefix=prefix or None,
                versions=True,
                fields="items(name,generation),nextPageToken",
            )
        ]
        with ThreadPoolExecutor(DELETE_WORKERS, thread_name_prefix="rm") as pool:
            for _ in pool.map(lambda item: gone(*item), listed):
                pass
    return len(listed)


def delete(name: str, project: str) -> int:
    """Delete every object of the bucket, then the bucket, as `gcloud storage rm --recursive
    gs://BUCKET` does: Cloud Storage deletes only an empty bucket (409 BucketNotEmpty
    otherwise). Returns how many objects went; NotFound when the bucket is gone already."""
    count = delete_objects(name, project)
    with translate(f"delete gs://{name}", denied=ADMIN_FIX):
        clients.storage_client(project).bucket(name).delete()
    return count
