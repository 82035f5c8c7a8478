"""One resource store for every emulated API: storage by name, copies out, masks, etags.

:class:`Store` keeps the resources of one kind (a service has one per collection: jobs,
secrets, repositories, …) in memory, keyed by resource name (google.aip.dev/122), and gives
the standard methods their common parts: Get (:meth:`Store.require`, NOT_FOUND in the API's own
words), Create (:meth:`Store.add`, ALREADY_EXISTS), List (:meth:`Store.under` then
:func:`govctl.emulator.rpc.paged`, google.aip.dev/158), Update (:func:`masked_update`,
google.aip.dev/134; :func:`check_etag`, google.aip.dev/154), Delete (:meth:`Store.remove`) and
the state file (:meth:`Store.dump` / :meth:`Store.load`, one JSON object per resource in the
protobuf JSON mapping with proto field names, so older state files keep loading).

What a resource *is* (validation, output-only fields, defaults, side effects) stays with each
service; the store never validates. Callers hold the owning service's lock. The store hands
out copies (:meth:`Store.out`), never the stored message.

Extending: a service that needs more per collection subclasses :class:`Store` (or wraps it)
and keeps the same dump format; a new collection is one more :class:`Store` attribute and one
more key in the service's ``dump`` / ``load``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any, Generic, Literal, TypeVar, cast

import proto
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message as PbMessage

from govctl.emulator.rpc import RpcError, aborted, already_exists, invalid_argument, not_found
from govctl.emulator.state import from_jsonable, to_jsonable

M = TypeVar("M")  # the stored message (raw protobuf, or proto-plus when raw=False)
W = TypeVar("W")  # its proto-plus class, which handlers answer with
P = TypeVar("P", bound=PbMessage)
T = TypeVar("T")


def copy(msg: P) -> P:
    """A copy of a raw protobuf message."""
    out: P = type(msg)()
    out.CopyFrom(msg)
    return out


def clone(msg: T) -> T:
    """A copy of a proto-plus or raw protobuf message."""
    given: Any = msg
    if isinstance(given, proto.Message):
        return cast(T, type(given).wrap(copy(type(given).pb(given))))
    return cast(T, copy(given))


def wrap(cls: type[T], pb: Any) -> T:
    """``pb`` in its proto-plus class ``cls`` (no copy)."""
    wrapper: Any = cls
    return cast(T, wrapper.wrap(pb))


def _by_name(msg: Any) -> str:
    return str(msg.name)


def _error(
    how: str | Callable[[str], RpcError], status: Callable[[str], RpcError]
) -> Callable[[str], RpcError]:
    if isinstance(how, str):
        return lambda name: status(how.format(name=name))
    return how


class Store(Generic[M, W]):
    """Resources of one kind by key (the resource name unless ``key`` says otherwise).

    ``message`` is the proto-plus class of the resource; ``raw=True`` (the default) stores the
    raw protobuf (``message.pb()``) — cheaper to copy and mask — and ``False`` the proto-plus
    message itself. ``missing`` and ``exists`` are the NOT_FOUND and ALREADY_EXISTS messages
    in the API's own words: a template with ``{name}``, or a function of the name that makes
    the error.
    """

    def __init__(
        self,
        message: type[W],
        *,
        raw: bool = True,
        missing: str | Callable[[str], RpcError] = "{name} not found.",
        exists: str | Callable[[str], RpcError] = "{name} already exists.",
        key: Callable[[M], str] = _by_name,
    ) -> None:
        self.message: Any = message
        self.raw = raw
        self.items: dict[str, M] = {}
        self._missing = _error(missing, not_found)
        self._exists = _error(exists, already_exists)
        self._key = key

    def __contains__(self, name: object) -> bool:
        return name in self.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[M]:
        return iter(self.items.values())

    def get(self, name: str, default: M | None = None) -> M | None:
        """The stored resource (not a copy), or ``default``."""
        return self.items.get(name, default)

    def require(self, name: str) -> M:
        """The stored resource (not a copy), or the API's NOT_FOUND."""
        found = self.items.get(name)
        if found is None:
            raise self._missing(name)
        return found

    def check_absent(self, name: str) -> None:
        """The API's ALREADY_EXISTS when ``name`` is taken (``validate_only`` creates)."""
        if name in self.items:
            raise self._exists(name)

    def add(self, resource: M) -> M:
        """Store a new resource; the API's ALREADY_EXISTS when its key is taken."""
        self.check_absent(self._key(resource))
        self.items[self._key(resource)] = resource
        return resource

    def put(self, resource: M) -> M:
        """Store ``resource``, replacing any under its key (an update)."""
        self.items[self._key(resource)] = resource
        return resource

    def remove(self, name: str) -> M:
        """Take the resource out; the API's NOT_FOUND when there is none."""
        self.require(name)
        return self.items.pop(name)

    def discard(self, name: str) -> None:
        self.items.pop(name, None)

    def under(self, prefix: str) -> list[M]:
        """The resources whose key starts with ``prefix``, by key (not copies)."""
        return [r for k, r in sorted(self.items.items()) if k.startswith(prefix)]

    def copies(self, prefix: str) -> list[W]:
        """Copies (:meth:`out`) of the resources under ``prefix``, by key: a List's items."""
        return [self.out(r) for r in self.under(prefix)]

    def out(self, resource: M) -> W:
        """A proto-plus copy of a stored resource, to answer with."""
        stored: Any = resource
        return cast(W, self.message.wrap(copy(stored)) if self.raw else clone(stored))

    def new(self) -> Any:
        """An empty message of the stored kind."""
        return self.message.pb()() if self.raw else self.message()

    def stored(self, resource: Any) -> Any:
        """A copy of ``resource`` (proto-plus or raw, e.g. a request's field) in stored form."""
        if self.raw and isinstance(resource, proto.Message):
            return copy(self.message.pb(resource))
        if not self.raw and not isinstance(resource, proto.Message):
            return self.message.wrap(copy(resource))
        return clone(resource)

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> list[dict[str, Any]]:
        return [to_jsonable(r) for r in self.items.values()]

    def load(self, records: Collection[dict[str, Any]]) -> None:
        for record in records:
            msg = from_jsonable(self.message, record)
            self.put(self.message.pb(msg) if self.raw else msg)


# Update (google.aip.dev/134) --------------------------------------------------------------------


def is_set(msg: PbMessage, name: str) -> bool:
    """Whether a field of a raw message is populated (presence, or a non-default value)."""
    field = msg.DESCRIPTOR.fields_by_name[name]
    if field.message_type is not None and not field.is_repeated:
        return bool(msg.HasField(name))
    return bool(getattr(msg, name))


def masked_update(
    current: P,
    patch: P,
    mask: field_mask_pb2.FieldMask,
    updatable: Collection[str],
    *,
    empty: Literal["populated", "replace"] = "populated",
) -> P:
    """``current`` updated from ``patch`` as ``mask`` says (a new message; both are raw).

    Per google.aip.dev/134: a path must name a field of the resource (else INVALID_ARGUMENT)
    that may be updated (``updatable``: the top-level fields a caller may set); an empty mask
    means the fields populated in ``patch`` (``empty="populated"``, AIP-134's rule) or, for
    APIs that document it (Monitoring's UpdateAlertPolicy), the whole ``patch``
    (``empty="replace"``). Message and repeated fields are replaced, not merged.
    """
    if not mask.paths and empty == "replace":
        return copy(patch)
    paths = field_mask_pb2.FieldMask()
    paths.CopyFrom(mask)
    if not paths.paths:
        paths.paths.extend(f for f in updatable if is_set(patch, f))
    if not paths.IsValidForDescriptor(current.DESCRIPTOR):
        raise invalid_argument(f"update_mask has an unknown field: {list(paths.paths)}")
    wrong = {p.split(".")[0] for p in paths.paths} - set(updatable)
    if wrong:
        raise invalid_argument(f"update_mask names fields that cannot be updated: {sorted(wrong)}")
    out = copy(current)
    paths.MergeMessage(patch, out, replace_message_field=True, replace_repeated_field=True)
    return out


def check_etag(
    given: str | bytes,
    current: str | bytes,
    message: str,
    error: Callable[[str], RpcError] = aborted,
) -> None:
    """A request's etag against the stored one (google.aip.dev/154): none is a blind write; a
    stale one fails, ABORTED unless the API answers otherwise (Secret Manager:
    FAILED_PRECONDITION)."""
    if given and given != current:
        raise error(message)
