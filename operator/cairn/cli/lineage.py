"""`cairn lineage MODEL VERSION`: where a version came from.

The ModelVersion's spec is the record (artifact, source: run, the trigger that started it, image,
code revision, params, dataset) and stays after the run is deleted; the TrainingRun, when it still
exists and is the same run (its uid matches source.runUid), adds what only it knows: the code's
ConfigMap and how the run went. The previous version of the model is shown with what changed
since, so a regression can be traced to a parameter or a dataset.
"""

import argparse
import datetime
from typing import Any

from cairn.api import Model, ModelVersion, TrainingRun
from cairn.cli import listing, output
from cairn.cli.approval import CommandError, parse_version
from cairn.kube import objects

Body = dict[str, Any]
KIB = 1024
CHANGED = ("dataset", "code", "image")


def same_run(source: Body, run: Body | None) -> Body | None:
    """The TrainingRun if it is the one that made the version, not a later run of that name."""
    if run is None or run["metadata"].get("uid") != source.get("runUid"):
        return None
    return run


def run_part(source: Body, run: Body | None, at: datetime.datetime) -> Body:
    """The run as the version records it, plus the live object (`run`, when it still exists)."""
    part: Body = {"name": source.get("run"), "uid": source.get("runUid"), "exists": False}
    if run is None:
        return part
    status, end = run.get("status") or {}, listing.finished_at(run)
    part.update(
        exists=True,
        phase=status.get("phase"),
        startTime=status.get("startTime"),
        completionTime=end,
        durationSeconds=output.between(status.get("startTime"), end, at),
        attempts=status.get("attempts"),
    )
    return part


def code_part(source: Body, run: Body | None) -> Body:
    """The code's revision is recorded on the version; its ConfigMap only on the run."""
    code = ((run or {}).get("spec") or {}).get("code") or {}
    config_map = code.get("configMap") or {}
    return {
        "revision": source.get("codeRevision"),
        "configMap": config_map.get("name"),
        "key": config_map.get("key"),
        "mountPath": code.get("mountPath"),
    }


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """{name: [before, after]} for every key whose value differs (None: absent on that side)."""
    return {
        key: [old.get(key), new.get(key)]
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }


def previous_part(version: Body, previous: Body | None) -> Body | None:
    if previous is None:
        return None
    spec, before = version["spec"], previous["spec"]
    source, old_source = spec.get("source") or {}, before.get("source") or {}
    old_dataset, dataset = old_source.get("dataset") or {}, source.get("dataset") or {}
    return {
        "name": previous["metadata"]["name"],
        "version": before["version"],
        "metrics": before.get("metrics") or {},
        "metricChanges": changes(before.get("metrics") or {}, spec.get("metrics") or {}),
        "paramChanges": changes(old_source.get("params") or {}, source.get("params") or {}),
        "datasetChanged": (old_dataset.get("uri"), old_dataset.get("digest"))
        != (dataset.get("uri"), dataset.get("digest")),
        "codeChanged": old_source.get("codeRevision") != source.get("codeRevision"),
        # The same tag built again is another image: its digest tells.
        "imageChanged": (old_source.get("image"), old_source.get("imageId"))
        != (source.get("image"), source.get("imageId")),
    }


def lineage(
    version: Body,
    run: Body | None,
    previous: Body | None,
    aliases: list[str],
    at: datetime.datetime,
) -> Body:
    spec, status = version["spec"], version.get("status") or {}
    source = spec.get("source") or {}
    run = same_run(source, run)
    return {
        "name": version["metadata"]["name"],
        "model": spec["model"],
        "version": spec["version"],
        "phase": status.get("phase"),
        "approval": spec.get("approval") or {},
        # No decision in the spec, yet approved: the Model's policy needs no approval.
        "autoApproved": output.condition(version, "Approved").get("reason") == "AutoApproved",
        "aliases": aliases,
        "artifact": spec["artifact"],
        "run": run_part(source, run, at),
        "trigger": source.get("trigger"),
        "image": source.get("image"),
        "imageId": source.get("imageId"),
        "code": code_part(source, run),
        "params": source.get("params") or {},
        "dataset": source.get("dataset") or {},
        "metrics": spec.get("metrics") or {},
        "previous": previous_part(version, previous),
    }


def size_text(size: int | None) -> str | None:
    if size is None:
        return None
    if size < KIB:
        return f"{size} B"
    if size < KIB * KIB:
        return f"{size / KIB:.1f} KiB"
    return f"{size / KIB / KIB:.1f} MiB"


def _run_text(run: Body) -> str:
    if not run["name"]:
        return "unknown (not recorded)"
    if not run["exists"]:
        return f"{run['name']} (deleted; uid {run['uid']})"
    took = output.duration(run["durationSeconds"])
    said = [run["phase"] or "Pending", *([f"took {took}"] if took else [])]
    if run.get("attempts") and run["attempts"] > 1:
        said.append(f"{run['attempts']} attempts")
    return f"{run['name']} ({', '.join(said)})"


def _trigger_text(trigger: Body | None) -> str:
    if not trigger:
        return "none recorded (created directly)"
    by = (
        f"ContinuousTraining {trigger['continuousTraining']}: "
        if trigger.get("continuousTraining")
        else ""
    )
    return f"{by}{trigger.get('type')} at {trigger.get('time')}: {trigger.get('reason')}"


def _code_text(code: Body) -> str | None:
    words = []
    if code["configMap"]:
        key = f" key {code['key']}" if code["key"] else ""
        words.append(f"ConfigMap {code['configMap']}{key}")
    if code["revision"]:
        words.append(f"revision {code['revision']}")
    return ", ".join(words) or None


def _approval_text(found: Body) -> str | None:
    approval = found["approval"]
    if found["autoApproved"]:
        return "automatically (the Model's policy does not require approval)"
    if not approval:
        return None
    text = str(approval.get("state", "Pending"))
    if approval.get("by"):
        text += f" by {approval['by']}"
    return text + (f": {approval['reason']}" if approval.get("reason") else "")


def _previous_text(previous: Body | None) -> str | None:
    if previous is None:
        return None
    said = []
    for kind in ("metric", "param"):
        moved = previous[f"{kind}Changes"]
        if moved:
            said.append(
                f"{kind}s: "
                + ", ".join(f"{k} {_value(a)} → {_value(b)}" for k, (a, b) in moved.items())
            )
    said += [f"{what} changed" for what in CHANGED if previous[f"{what}Changed"]]
    return f"{previous['name']}" + (f" ({'; '.join(said)})" if said else " (same inputs)")


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    return output.number(value) if isinstance(value, float) else str(value)


def lineage_text(found: Body) -> str:
    artifact, dataset = found["artifact"], found["dataset"]
    size = size_text(artifact.get("size"))
    return output.fields(
        [
            ("ModelVersion", found["name"]),
            ("Model", f"{found['model']}, version {found['version']}"),
            ("Phase", found["phase"]),
            ("Approval", _approval_text(found)),
            ("Aliases", ", ".join(found["aliases"])),
            ("Metrics", output.pairs(found["metrics"])),
            ("Artifact", artifact.get("uri")),
            ("Artifact digest", artifact.get("digest")),
            ("Artifact size", ", ".join(filter(None, [size, artifact.get("format")]))),
            ("Run", _run_text(found["run"])),
            ("Trigger", _trigger_text(found["trigger"])),
            ("Image", found["image"]),
            ("Image digest", found["imageId"]),
            ("Code", _code_text(found["code"])),
            ("Params", output.pairs(found["params"])),
            ("Dataset", dataset.get("uri")),
            ("Dataset digest", dataset.get("digest")),
            ("Previous", _previous_text(found["previous"]) or "none (first version)"),
        ]
    )


def show(args: argparse.Namespace) -> str:
    number = parse_version(args.version, args.model)
    name = f"{args.model}-v{number}"
    version = objects.get(ModelVersion, args.namespace, name)
    if version is None:
        raise CommandError(
            f"ModelVersion {name} not found in namespace {args.namespace} "
            f"(list them with `cairn versions {args.model} -n {args.namespace}`)"
        )
    source = version["spec"].get("source") or {}
    run = objects.get(TrainingRun, args.namespace, source["run"]) if source.get("run") else None
    earlier = [
        v
        for v in listing.versions_of(args.namespace, args.model)
        if int(v["spec"]["version"]) < number
    ]
    model = objects.get(Model, args.namespace, args.model)
    aliases = listing.aliases_by_version(model).get(number, [])
    found = lineage(version, run, earlier[-1] if earlier else None, aliases, listing.now())
    return output.render(found, args.output, lineage_text(found))


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subcommands.add_parser(
        "lineage", help="where a version came from: run, code, params, dataset, artifact"
    )
    parser.add_argument("model", help="the Model's name")
    parser.add_argument("version", help="the version: 3, v3 or <model>-v3")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    output.add_output_flag(parser)
    parser.set_defaults(run=show)
