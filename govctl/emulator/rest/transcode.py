"""HTTP/JSON ⇄ protobuf, by one ``google.api.http`` rule (googleapis ``google/api/http.proto``).

- Path variables set the fields they name (``{job.name=projects/*/locations/*/jobs/*}``).
- ``body: "*"`` fills the request from the JSON body, and then no field is left for query
  parameters; ``body: "job"`` fills that field; without ``body`` the body is ignored.
- Every other field may come as a query parameter: ``?pageSize=10&job.labels...`` by its JSON
  or proto name, repeated fields by repeating the parameter; message fields only when they
  are well-known types written as a string (Duration ``"3.5s"``, Timestamp, FieldMask
  ``"a,b"``, wrappers).
- JSON is the proto3 JSON mapping (https://protobuf.dev/programming-guides/json/):
  lowerCamelCase names, enum names (read case-insensitively, as Google does), int64 as
  strings, Duration/Timestamp/FieldMask strings — ``google.protobuf.json_format`` both ways;
  unknown names are refused, as Google does.
- ``response_body`` answers with that field of the response only.
"""

from __future__ import annotations

import json
from typing import Any

from google.api import http_pb2
from google.protobuf import descriptor, json_format, message

from govctl.emulator.rest.errors import bad_request

# System parameters every Google API accepts beside the method's own
# (https://cloud.google.com/apis/docs/system-parameters); they never bind to a field.
SYSTEM_PARAMETERS = frozenset(
    {
        "$.xgafv",
        "access_token",
        "alt",
        "callback",
        "fields",
        "key",
        "oauth_token",
        "prettyPrint",
        "quotaUser",
        "upload_protocol",
        "uploadType",
        "userIp",
    }
)
# Well-known types whose JSON form is a string (or a scalar): they may be query parameters.
_STRING_MESSAGES = frozenset(
    {
        "google.protobuf.Duration",
        "google.protobuf.Timestamp",
        "google.protobuf.FieldMask",
    }
)
_WRAPPERS = frozenset(
    f"google.protobuf.{n}Value"
    for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_OPAQUE = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Any"})
_FD = descriptor.FieldDescriptor


def is_system_parameter(name: str) -> bool:
    return name.lstrip("$") in SYSTEM_PARAMETERS or name in SYSTEM_PARAMETERS


def _field(desc: descriptor.Descriptor, name: str) -> descriptor.FieldDescriptor | None:
    fd: descriptor.FieldDescriptor | None = desc.fields_by_name.get(name)
    if fd is None:
        fd = next((f for f in desc.fields if f.json_name == name), None)
    return fd


def _scalar(fd: descriptor.FieldDescriptor, value: str, where: str) -> Any:
    """A query-string value as the JSON value json_format expects for ``fd``."""
    kind = fd.type
    if kind == _FD.TYPE_MESSAGE:
        full = fd.message_type.full_name
        if full in _STRING_MESSAGES:
            return value
        if full in _WRAPPERS:
            return _scalar(fd.message_type.fields_by_name["value"], value, where)
        raise bad_request(
            f'Invalid JSON payload received. Unknown name "{where}": Cannot bind query '
            f"parameter. Field '{where}' is a message type. Parameter can only be bound to "
            "primitive types.",
            where,
        )
    if kind == _FD.TYPE_BOOL:
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise bad_request(f"Invalid value at '{where}' (TYPE_BOOL), \"{value}\"", where)
    if kind == _FD.TYPE_ENUM and value.lstrip("-").isdigit():
        return int(value)
    return value


def _assign(
    target: dict[str, Any], desc: descriptor.Descriptor, path: str, value: str, *, query: bool
) -> None:
    """Set the field ``path`` (dotted, proto or JSON names) of the JSON object ``target``."""
    parts = path.split(".")
    node, current = target, desc
    for i, part in enumerate(parts):
        fd = _field(current, part)
        if fd is None:
            what = "Cannot bind query parameter" if query else "Cannot bind path variable"
            raise bad_request(
                f'Invalid JSON payload received. Unknown name "{path}": {what}. Field '
                f"'{part}' could not be found in request message.",
                path,
            )
        if fd.name != fd.json_name and fd.name in node:  # one spelling per field: JSON's
            node[fd.json_name] = node.pop(fd.name)
        if i == len(parts) - 1:
            converted = _scalar(fd, value, path)
            if fd.is_repeated:
                node.setdefault(fd.json_name, []).append(converted)
            else:
                node[fd.json_name] = converted
            return
        if fd.type != _FD.TYPE_MESSAGE or fd.is_repeated:
            raise bad_request(f"Invalid JSON payload received. Cannot bind '{path}'.", path)
        child = node.setdefault(fd.json_name, {})
        if not isinstance(child, dict):
            raise bad_request(f"Invalid JSON payload received. Cannot bind '{path}'.", path)
        node, current = child, fd.message_type


def _unknown_in_map(item: Any, fd: descriptor.FieldDescriptor, path: str) -> str | None:
    value_fd = fd.message_type.fields_by_name["value"]
    if value_fd.type != _FD.TYPE_MESSAGE or not isinstance(item, dict):
        return None
    for sub in item.values():
        found = unknown_name(sub, value_fd.message_type, f"{path}[...]")
        if found:
            return found
    return None


def _unknown_in_field(item: Any, fd: descriptor.FieldDescriptor, path: str) -> str | None:
    if fd.message_type.GetOptions().map_entry:
        return _unknown_in_map(item, fd, path)
    items = item if isinstance(item, list) and fd.is_repeated else [item]
    for i, sub in enumerate(items):
        suffix = f"[{i}]" if fd.is_repeated else ""
        found = unknown_name(sub, fd.message_type, path + suffix)
        if found:
            return found
    return None


def unknown_name(value: Any, desc: descriptor.Descriptor, where: str = "") -> str | None:
    """Google's message for the first JSON name ``desc`` does not have, if any."""
    if not isinstance(value, dict) or desc.full_name in _OPAQUE | _STRING_MESSAGES | _WRAPPERS:
        return None
    for key, item in value.items():
        fd = _field(desc, key)
        if fd is None:
            at = f" at '{where}'" if where else ""
            return f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
        if fd.type == _FD.TYPE_MESSAGE:
            found = _unknown_in_field(item, fd, f"{where}.{fd.name}" if where else fd.name)
            if found:
                return found
    return None


def _enum_name(enum: descriptor.EnumDescriptor, value: Any) -> Any:
    if isinstance(value, str) and value not in enum.values_by_name:
        upper = value.upper()
        if upper in enum.values_by_name:
            return upper
    return value


def _upper_values(item: Any, fd: descriptor.FieldDescriptor) -> Any:
    """``item`` (a field's JSON value) with its enum names upper-cased where that names one."""
    if fd.type == _FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
        value_fd = fd.message_type.fields_by_name["value"]
        if isinstance(item, dict):
            return {k: _upper_values(v, value_fd) for k, v in item.items()}
        return item
    if fd.is_repeated and isinstance(item, list):
        return [_upper_one(sub, fd) for sub in item]
    return _upper_one(item, fd)


def _upper_one(item: Any, fd: descriptor.FieldDescriptor) -> Any:
    if fd.type == _FD.TYPE_ENUM:
        return _enum_name(fd.enum_type, item)
    if fd.type == _FD.TYPE_MESSAGE:
        return upper_enums(item, fd.message_type)
    return item


def upper_enums(value: Any, desc: descriptor.Descriptor) -> Any:
    """``value`` with every enum name that is not one, but is once upper-cased, upper-cased.

    Google's HTTP front end reads an enum name case-insensitively: gcloud 528 sends a cleanup
    policy file's values as written (``"action": "Delete"``, ``"tagState": "any"``, as
    cloud.google.com/artifact-registry/docs/repositories/cleanup-policy writes them) and
    Google accepts them. Protobuf's JSON parser has this as ``case_insensitive_enum_parsing``
    ("when a lowercase enum value fails to parse, try convert it to UPPER_CASE",
    ``google/protobuf/util/json_util.h``), and Google's ESPv2 proxy offers it as
    ``--transcoding_case_insensitive_enum_parsing``. Python's ``json_format`` has no such
    option, hence this pass before it.
    """
    if not isinstance(value, dict) or desc.full_name in _OPAQUE | _STRING_MESSAGES | _WRAPPERS:
        return value
    out = {}
    for key, item in value.items():
        fd = _field(desc, key)
        out[key] = item if fd is None else _upper_values(item, fd)
    return out


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request(f"Invalid JSON payload received. {err}.") from None


def _body_field(desc: descriptor.Descriptor, name: str) -> descriptor.FieldDescriptor:
    fd = _field(desc, name)
    if fd is None:  # a rule naming a field its request lacks: the rules file is wrong
        raise RuntimeError(f"body field {name!r} is not in {desc.full_name}")
    return fd


def build_request(
    request_class: type[message.Message],
    rule: http_pb2.HttpRule,
    variables: dict[str, str],
    query: list[tuple[str, str]],
    body: bytes,
) -> message.Message:
    desc = request_class.DESCRIPTOR
    data: dict[str, Any] = {}
    if rule.body == "*":
        data = parse_body(body)
        if not isinstance(data, dict):
            raise bad_request("Invalid JSON payload received. Expected an object.")
        problem = unknown_name(data, desc)
    elif rule.body:
        fd = _body_field(desc, rule.body)
        value = parse_body(body)
        data[fd.json_name] = value
        problem = unknown_name(value, fd.message_type, "") if fd.message_type else None
    else:
        problem = None
    if problem:
        raise bad_request(problem)
    for name, value in query:
        if is_system_parameter(name):
            continue
        if rule.body == "*":
            raise bad_request(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                "parameter: every field of this request is in the body.",
                name,
            )
        _assign(data, desc, name, value, query=True)
    for path, value in variables.items():
        _assign(data, desc, path, value, query=False)
    request = request_class()
    try:
        json_format.ParseDict(upper_enums(data, desc), request)
    except json_format.ParseError as err:
        raise bad_request(f"Invalid JSON payload received. {err}") from None
    return request


def response_json(rule: http_pb2.HttpRule, response: message.Message) -> Any:
    """The response in proto3 JSON (only its ``response_body`` field when the rule says so)."""
    if rule.response_body:
        fd = response.DESCRIPTOR.fields_by_name[rule.response_body]
        whole = json_format.MessageToDict(response)
        return whole.get(fd.json_name, [] if fd.is_repeated else {})
    return json_format.MessageToDict(response)
