"""Cloud Run jobs, executions and tasks between the v2 messages the emulator keeps and the
Admin API v1 (Knative-style) objects ``gcloud run jobs`` reads and writes.

Both are views of the same resources. The v1 shapes are Google's REST reference
(https://cloud.google.com/run/docs/reference/rest/v1/namespaces.jobs, ``.executions``,
``.tasks``) and what gcloud 528 parses (``lib/googlecloudsdk/api_lib/run/job.py``,
``execution.py``, ``task.py``, ``condition.py`` and the apitools messages in
``generated_clients/apis/run/v1/run_v1_messages.py``): the labels ``run.googleapis.com/job``
(an execution's job), ``run.googleapis.com/execution`` and ``run.googleapis.com/runningState``
(a task's), conditions with ``status`` "True"/"False"/"Unknown" whose ``observedGeneration``
must equal ``metadata.generation`` before gcloud trusts them, ``timeoutSeconds`` as an int64
string. The system annotations of v1 are fields in v2 ("All system annotations in v1 now have
a corresponding field in v2 Job", v2 ``Job.annotations``): ``run.googleapis.com/client-name``
↔ ``client``, ``client-version`` ↔ ``clientVersion``, ``launch-stage`` ↔ ``launchStage``,
``creator``/``lastModifier`` ↔ ``creator``/``lastModifier``, the template's
``execution-environment`` ↔ ``executionEnvironment``. Everything works on proto3 JSON dicts.
"""

from __future__ import annotations

import re
from typing import Any

import grpc

from govctl.emulator.rest.errors import RestError, bad_request

API_VERSION = "run.googleapis.com/v1"
PREFIX = "/apis/run.googleapis.com/v1"
RUN = "run.googleapis.com"
JOB_LABEL = f"{RUN}/job"
EXECUTION_LABEL = f"{RUN}/execution"
STATE_LABEL = f"{RUN}/runningState"
LOCATION_LABEL = "cloud.googleapis.com/location"
# v1 annotation -> v2 Job field
_JOB_ANNOTATIONS = {
    f"{RUN}/client-name": "client",
    f"{RUN}/client-version": "clientVersion",
    f"{RUN}/launch-stage": "launchStage",
}
_OUTPUT_ANNOTATIONS = {f"{RUN}/creator", f"{RUN}/lastModifier", f"{RUN}/operation-id"}
_ENVIRONMENTS = {"gen1": "EXECUTION_ENVIRONMENT_GEN1", "gen2": "EXECUTION_ENVIRONMENT_GEN2"}
_STATUS = {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False"}
_SEVERITY = {"ERROR": "Error", "WARNING": "Warning", "INFO": "Info"}
_RESERVED = (RUN, "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")


def _camel(enum_name: str) -> str:
    return "".join(part.capitalize() for part in enum_name.lower().split("_"))


def _short(name: str) -> str:
    return name.rsplit("/", 1)[1]


def _seconds(duration: str | None) -> str | None:
    if not duration:
        return None
    return str(int(float(duration.rstrip("s"))))


# v2 -> v1 ---------------------------------------------------------------------------------------
def condition(c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": c.get("type", ""),
        "status": _STATUS.get(c.get("state", ""), "Unknown"),
    }
    for key in ("message", "lastTransitionTime"):
        if c.get(key):
            out[key] = c[key]
    reason = c.get("reason") or c.get("executionReason") or c.get("revisionReason")
    if reason and not reason.endswith("UNDEFINED"):
        out["reason"] = _camel(reason)
    if c.get("severity") in _SEVERITY:
        out["severity"] = _SEVERITY[c["severity"]]
    return out


def _metadata(resource: dict[str, Any], project: str, region: str, kind: str) -> dict[str, Any]:
    name = _short(resource["name"])
    meta: dict[str, Any] = {
        "name": name,
        "namespace": project,
        "selfLink": f"{PREFIX}/namespaces/{project}/{kind}/{name}",
        "uid": resource.get("uid", ""),
        "resourceVersion": resource.get("etag", ""),
        "generation": int(resource.get("generation", 0)),
        "creationTimestamp": resource.get("createTime", ""),
        "labels": {**resource.get("labels", {}), LOCATION_LABEL: region},
        "annotations": dict(resource.get("annotations", {})),
    }
    if resource.get("creator"):
        meta["annotations"][f"{RUN}/creator"] = resource["creator"]
    return meta


def _env_v1(var: dict[str, Any]) -> dict[str, Any]:
    ref = var.get("valueSource", {}).get("secretKeyRef")
    if ref is None:
        return {"name": var["name"], "value": var.get("value", "")}
    return {
        "name": var["name"],
        "valueFrom": {
            "secretKeyRef": {"name": ref.get("secret", ""), "key": ref.get("version", "latest")}
        },
    }


def _container_v1(c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: c[k] for k in ("name", "image", "command", "args", "workingDir") if c.get(k)
    }
    if c.get("env"):
        out["env"] = [_env_v1(v) for v in c["env"]]
    limits = c.get("resources", {}).get("limits")
    out["resources"] = {"limits": dict(limits)} if limits else {}
    if c.get("ports"):
        out["ports"] = [{k: p[k] for k in ("name", "containerPort") if k in p} for p in c["ports"]]
    return out


def task_spec(t: dict[str, Any]) -> dict[str, Any]:
    """A v2 TaskTemplate (or Task: the same fields) as a v1 TaskSpec."""
    out: dict[str, Any] = {"containers": [_container_v1(c) for c in t.get("containers", [])]}
    out["maxRetries"] = int(t.get("maxRetries", 0))
    if _seconds(t.get("timeout")):
        out["timeoutSeconds"] = _seconds(t.get("timeout"))
    if t.get("serviceAccount"):
        out["serviceAccountName"] = t["serviceAccount"]
    return out


def job(job: dict[str, Any], project: str, region: str) -> dict[str, Any]:
    meta = _metadata(job, project, region, "jobs")
    for annotation, field in _JOB_ANNOTATIONS.items():
        value = job.get(field)
        if value and value != "LAUNCH_STAGE_UNSPECIFIED":
            meta["annotations"][annotation] = value
    if job.get("lastModifier"):
        meta["annotations"][f"{RUN}/lastModifier"] = job["lastModifier"]
    if job.get("updateTime"):  # gcloud's Job.last_modified_timestamp reads this label
        meta["labels"][f"{RUN}/lastUpdatedTime"] = job["updateTime"]
    template = job.get("template", {})
    tmeta = {
        "labels": dict(template.get("labels", {})),
        "annotations": dict(template.get("annotations", {})),
    }
    env = template.get("template", {}).get("executionEnvironment", "")
    for short, full in _ENVIRONMENTS.items():
        if env == full:
            tmeta["annotations"][f"{RUN}/execution-environment"] = short
    status: dict[str, Any] = {
        "observedGeneration": int(job.get("observedGeneration", 0)),
        "conditions": [
            condition(c)
            for c in [job.get("terminalCondition", {}), *job.get("conditions", [])]
            if c
        ],
        "executionCount": job.get("executionCount", 0),
    }
    latest = job.get("latestCreatedExecution")
    if latest:
        ref = {"name": _short(latest["name"]), "creationTimestamp": latest.get("createTime")}
        if latest.get("completionTime"):
            ref["completionTimestamp"] = latest["completionTime"]
        if latest.get("completionStatus", "").startswith("EXECUTION_"):
            ref["completionStatus"] = latest["completionStatus"]
        status["latestCreatedExecution"] = {k: v for k, v in ref.items() if v}
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "template": {
                "metadata": tmeta,
                "spec": {
                    "parallelism": template.get("parallelism", 0),
                    "taskCount": template.get("taskCount", 0),
                    "template": {"spec": task_spec(template.get("template", {}))},
                },
            }
        },
        "status": status,
    }


def _counts(resource: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: resource[k] for k in keys if k in resource}


def execution(ex: dict[str, Any], project: str, region: str) -> dict[str, Any]:
    meta = _metadata(ex, project, region, "executions")
    meta["labels"][JOB_LABEL] = ex.get("job", "")
    meta["ownerReferences"] = [
        {
            "kind": "Job",
            "name": ex.get("job", ""),
            "apiVersion": API_VERSION,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    status = {
        "observedGeneration": int(ex.get("observedGeneration", 0)),
        "conditions": [condition(c) for c in ex.get("conditions", [])],
        **_counts(
            ex,
            (
                "startTime",
                "completionTime",
                "runningCount",
                "succeededCount",
                "failedCount",
                "cancelledCount",
                "retriedCount",
                "logUri",
            ),
        ),
    }
    spec = {
        "parallelism": ex.get("parallelism", 0),
        "taskCount": ex.get("taskCount", 0),
        "template": {"spec": task_spec(ex.get("template", {}))},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Execution",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def running_state(task: dict[str, Any]) -> str:
    """The ``run.googleapis.com/runningState`` label gcloud shows a task by."""
    conditions: list[dict[str, Any]] = task.get("conditions", [])
    completed: dict[str, Any] = next((c for c in conditions if c.get("type") == "Completed"), {})
    if completed.get("state") == "CONDITION_SUCCEEDED":
        return "Succeeded"
    if completed.get("state") == "CONDITION_FAILED":
        cancelled = (
            completed.get("executionReason") == "CANCELLED"
            or completed.get("reason") == "CANCELLED"
        )
        return "Cancelled" if cancelled else "Failed"
    return "Running" if task.get("startTime") else "Pending"


def task(t: dict[str, Any], project: str, region: str) -> dict[str, Any]:
    meta = _metadata(t, project, region, "tasks")
    meta["labels"] |= {
        JOB_LABEL: t.get("job", ""),
        EXECUTION_LABEL: t.get("execution", ""),
        STATE_LABEL: running_state(t),
    }
    status: dict[str, Any] = {
        "index": t.get("index", 0),
        "observedGeneration": int(t.get("observedGeneration", 0)),
        "conditions": [condition(c) for c in t.get("conditions", [])],
        **_counts(t, ("startTime", "completionTime", "retried", "logUri")),
    }
    last = t.get("lastAttemptResult")
    if last:
        status["lastAttemptResult"] = {
            "exitCode": last.get("exitCode", 0),
            "status": last.get("status", {}),
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": meta,
        "spec": task_spec(t),
        "status": status,
    }


# v1 -> v2 ---------------------------------------------------------------------------------------
def _unsupported(key: str, where: str) -> RestError:
    return bad_request(
        f"{where} {key!r} is not supported by the emulator (see docs/emulator/run.md)", where
    )


def _env_v2(var: dict[str, Any]) -> dict[str, Any]:
    ref = var.get("valueFrom", {}).get("secretKeyRef")
    if ref is None:
        return {"name": var.get("name", ""), "value": var.get("value", "")}
    return {
        "name": var.get("name", ""),
        "valueSource": {
            "secretKeyRef": {"secret": ref.get("name", ""), "version": ref.get("key") or "latest"}
        },
    }


def _container_v2(c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: c[k] for k in ("name", "image", "command", "args", "workingDir") if c.get(k)
    }
    if c.get("env"):
        out["env"] = [_env_v2(v) for v in c["env"]]
    limits = (c.get("resources") or {}).get("limits")
    if limits:
        out["resources"] = {"limits": dict(limits)}
    if c.get("ports"):
        out["ports"] = [{k: p[k] for k in ("name", "containerPort") if k in p} for p in c["ports"]]
    return out


def task_template(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("volumes") or spec.get("nodeSelector"):
        raise _unsupported("volumes" if spec.get("volumes") else "nodeSelector", "field")
    out: dict[str, Any] = {"containers": [_container_v2(c) for c in spec.get("containers", [])]}
    if "maxRetries" in spec:
        out["maxRetries"] = int(spec["maxRetries"])
    if spec.get("timeoutSeconds") not in (None, ""):
        out["timeout"] = f"{int(spec['timeoutSeconds'])}s"
    if spec.get("serviceAccountName"):
        out["serviceAccount"] = spec["serviceAccountName"]
    return out


def _split_annotations(
    annotations: dict[str, str], known: dict[str, str], where: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(v2 fields set by system annotations, the user's annotations)."""
    fields: dict[str, str] = {}
    user: dict[str, str] = {}
    for key, value in annotations.items():
        if key in known:
            fields[known[key]] = value
        elif key in _OUTPUT_ANNOTATIONS:
            continue
        elif key.split("/", 1)[0].endswith(_RESERVED):
            raise _unsupported(key, where)
        else:
            user[key] = value
    return fields, user


def job_v2(v1: dict[str, Any], project: str, region: str) -> dict[str, Any]:
    """A v1 Job body as a v2 Job (``name``, ``etag`` from ``resourceVersion``)."""
    meta = v1.get("metadata") or {}
    if not meta.get("name"):
        raise bad_request("metadata.name is required", "metadata.name")
    fields, annotations = _split_annotations(
        meta.get("annotations") or {}, _JOB_ANNOTATIONS, "annotation"
    )
    output_labels = (LOCATION_LABEL, f"{RUN}/lastUpdatedTime")
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in output_labels}
    tmpl = (v1.get("spec") or {}).get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    known = {
        f"{RUN}/execution-environment": "executionEnvironment",
        f"{RUN}/client-name": "",
        f"{RUN}/client-version": "",
    }
    tfields, tannotations = _split_annotations(
        tmeta.get("annotations") or {}, known, "template annotation"
    )
    espec = tmpl.get("spec") or {}
    task = task_template(((espec.get("template") or {}).get("spec")) or {})
    env = tfields.get("executionEnvironment")
    if env:
        if env not in _ENVIRONMENTS:
            raise bad_request(
                f"execution environment {env!r}: gen1 or gen2", "executionEnvironment"
            )
        task["executionEnvironment"] = _ENVIRONMENTS[env]
    template: dict[str, Any] = {"template": task}
    for key in ("parallelism", "taskCount"):
        if espec.get(key):
            template[key] = int(espec[key])
    if tmeta.get("labels"):
        template["labels"] = dict(tmeta["labels"])
    if tannotations:
        template["annotations"] = tannotations
    out: dict[str, Any] = {
        "name": f"projects/{project}/locations/{region}/jobs/{meta['name']}",
        "labels": labels,
        "annotations": annotations,
        "template": template,
        **fields,
    }
    if meta.get("resourceVersion"):
        out["etag"] = meta["resourceVersion"]
    return out


def overrides(body: dict[str, Any]) -> dict[str, Any]:
    """A v1 RunJobRequest's ``overrides`` as v2 ``RunJobRequest.Overrides``."""
    given = body.get("overrides") or {}
    out: dict[str, Any] = {}
    containers = []
    for co in given.get("containerOverrides") or []:
        item: dict[str, Any] = {k: co[k] for k in ("name", "args", "clearArgs") if co.get(k)}
        if co.get("env"):
            item["env"] = [_env_v2(v) for v in co["env"]]
        containers.append(item)
    if containers:
        out["containerOverrides"] = containers
    if given.get("taskCount"):
        out["taskCount"] = int(given["taskCount"])
    if given.get("timeoutSeconds"):
        out["timeout"] = f"{int(given['timeoutSeconds'])}s"
    return out


# label selectors (Kubernetes syntax, as gcloud writes them) -----------------------------------
_TERM = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w./-]*)|"
    r"(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?\s*"
)


def label_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """Terms of a Kubernetes label selector: ``key = v``, ``key != v``, ``key in (a,b)``,
    ``key notin (a)``, ``key``, ``!key``, joined by commas
    (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors)."""
    terms: list[tuple[str, str, set[str]]] = []
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise bad_request(f"invalid labelSelector {text!r}", "labelSelector")
        if m.group("op"):
            op = "!=" if m.group("op") == "!=" else "="
            terms.append((m.group("key"), op, {m.group("value")}))
        elif m.group("set"):
            values = {v.strip() for v in m.group("values").split(",") if v.strip()}
            terms.append((m.group("key"), m.group("set"), values))
        else:
            terms.append((m.group("key"), "!exists" if m.group("neg") else "exists", set()))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise bad_request(f"invalid labelSelector {text!r}", "labelSelector")
            pos += 1
    return terms


def selected(labels: dict[str, str], terms: list[tuple[str, str, set[str]]]) -> bool:
    for key, op, values in terms:
        present = key in labels
        value = labels.get(key)
        ok = {
            "=": present and value in values,
            "in": present and value in values,
            "!=": not present or value not in values,
            "notin": not present or value not in values,
            "exists": present,
            "!exists": not present,
        }[op]
        if not ok:
            return False
    return True


def status_ok(name: str, kind: str, uid: str) -> dict[str, Any]:
    """What v1 deletes answer: a Kubernetes ``Status``."""
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Success",
        "details": {"name": name, "group": RUN, "kind": kind, "uid": uid},
    }


def not_regional(host: str) -> RestError:
    return RestError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"The Cloud Run v1 namespaces API is served on regional endpoints "
        f"(REGION-run.googleapis.com); host {host!r} names no region.",
    )
