"""`cairn card MODEL VERSION [-o markdown|html]`: the model card of a version, generated from the
objects that record it, never typed by hand.

The sections follow "Model Cards for Model Reporting" (Mitchell et al., 2019) — model details,
intended use, factors, metrics, evaluation and training data, quantitative analyses, ethical
considerations, caveats and recommendations — with what SageMaker model cards add where Cairn
knows it: training details (image, parameters, lineage), the approval and where the model is or
was served. What a card cannot know (an intended use nobody wrote down) it says, with the field
that would hold it.
"""

import argparse
import datetime
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from cairn.api import Model, ModelDeployment, ModelVersion, TrainingRun
from cairn.api.fairness import FairnessMetric, FeatureFairness
from cairn.api.model import ModelReason
from cairn.api.modelversion import HistoryEntry
from cairn.cli import document, listing, output
from cairn.cli.approval import CommandError, parse_version
from cairn.cli.document import Document, Fields, Paragraph, Section, Table
from cairn.kube import objects

Body = dict[str, Any]
FORMATS = ("markdown", "html")
MEASURES = (
    ("Demographic parity difference", FairnessMetric.DEMOGRAPHIC_PARITY_DIFFERENCE),
    ("Disparate impact ratio", FairnessMetric.DISPARATE_IMPACT_RATIO),
    ("Equalized odds difference", FairnessMetric.EQUALIZED_ODDS_DIFFERENCE),
    ("Equal opportunity difference", FairnessMetric.EQUAL_OPPORTUNITY_DIFFERENCE),
    ("Accuracy difference", FairnessMetric.ACCURACY_DIFFERENCE),
)
DECISIONS = {"Approved", "Rejected", "AutoApproved", "PendingApproval", "ApprovalWithdrawn"}
SERVING = {"Serving", "CanaryRolledBack", "Promoted", "Superseded", "RolledBack", "NotBetter"}
SENSITIVE = " (sensitive)"


def num(value: float | None) -> str | None:
    return None if value is None else output.number(value)


def when(moment: datetime.datetime | str | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = output.parse_time(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else None


def missing(field: str, model: str, what: str) -> Paragraph:
    return Paragraph(
        f"Not documented: {what}. Set {field} on Model {model} "
        f"(kubectl edit model {model}) and generate the card again.",
        note=True,
    )


def details(model: Model | None, version: ModelVersion, aliases: list[str]) -> Section:
    spec, status = version.spec, version.status
    artifact = spec.artifact
    ready = next(
        (c for c in (status.conditions if status else None) or [] if c.type == "Ready"), None
    )
    blocks: list[document.Block] = [
        Fields(
            [
                ("Model", spec.model),
                ("Version", f"{spec.version} (ModelVersion {version.name})"),
                ("Description", model.spec.description if model else None),
                ("Owner", model.spec.owner if model else None),
                ("Registered", when(version.metadata.get("creationTimestamp"))),
                ("Status", status.phase if status else "not judged yet"),
                ("May be served", f"{ready.status} ({ready.message})" if ready else None),
                ("Aliases", ", ".join(aliases) or None),
                ("Format", artifact.format),
                ("Artifact", artifact.uri),
                ("Artifact digest", artifact.digest),
                ("Artifact size", f"{artifact.size} bytes" if artifact.size is not None else None),
            ]
        )
    ]
    if model is None:
        blocks.append(Paragraph(f"Model {spec.model} no longer exists.", note=True))
    return Section("Model details", blocks)


def text_section(title: str, field: str, value: str | None, model: str, what: str) -> Section:
    return Section(title, [Paragraph(value) if value else missing(field, model, what)])


def factors(model: Model | None, version: ModelVersion) -> Section:
    sensitive = (model.spec.sensitive_features if model else None) or []
    measured = [f.sensitive_feature for f in version.spec.fairness or []]
    blocks: list[document.Block] = [
        Fields(
            [
                ("Sensitive features", ", ".join(sensitive) or None),
                ("Fairness measured for", ", ".join(measured) or None),
            ]
        ),
        Paragraph(
            "Sensitive features are attributes of protected groups: they are marked "
            f"'{SENSITIVE.strip()}' in this card and are never to be written to prediction logs."
        ),
    ]
    if not sensitive:
        blocks.append(
            missing("spec.sensitiveFeatures", version.spec.model, "the model's sensitive features")
        )
    return Section("Factors", blocks)


def training_data(version: ModelVersion, sensitive: Sequence[str]) -> Section:
    dataset = version.spec.source.dataset if version.spec.source else None
    if dataset is None:
        return Section("Training data", [Paragraph("The run recorded no dataset.", note=True)])
    names = [n + (SENSITIVE if n in sensitive else "") for n in dataset.features or []]
    count = dataset.feature_count if dataset.feature_count is not None else len(names) or None
    return Section(
        "Training data",
        [
            Fields(
                [
                    ("Dataset", dataset.uri),
                    ("Digest", dataset.digest),
                    ("Rows", str(dataset.rows) if dataset.rows is not None else None),
                    ("Features", str(count) if count is not None else None),
                    ("Feature names", ", ".join(names) or None),
                ]
            )
        ],
    )


def parameters(version: ModelVersion) -> Section:
    params = (version.spec.source.params if version.spec.source else None) or {}
    if not params:
        return Section("Training parameters", [Paragraph("The run was given no parameters.")])
    rows = [(name, str(value)) for name, value in sorted(params.items())]
    return Section("Training parameters", [Table(("Parameter", "Value"), rows)])


def evaluation(model: Model | None, version: ModelVersion) -> Section:
    spec, status = version.spec, version.status
    metrics = spec.metrics or {}
    blocks: list[document.Block] = [
        Table(("Metric", "Value"), [(name, num(value)) for name, value in sorted(metrics.items())])
        if metrics
        else Paragraph("The run reported no metrics.", note=True)
    ]
    results = (status.gates if status else None) or []
    fair_results = (status.fairness_gates if status else None) or []
    gates = [
        (g.metric, f"{g.op.value} {g.threshold:g}", num(g.value), "pass" if g.passed else "FAIL")
        for g in results
    ]
    gates += [
        (
            f"{g.metric} for {g.sensitive_feature}{SENSITIVE}",
            f"<= {g.max:g}" if g.max is not None else f">= {g.min:g}",
            num(g.value),
            "pass" if g.passed else "FAIL",
        )
        for g in fair_results
    ]
    if gates:
        blocks.append(Table(("Gate", "Bound", "Value", "Result"), gates, caption="Gates"))
        failed = [g.message or "" for g in results if not g.passed]
        failed += [g.message or "" for g in fair_results if not g.passed]
        blocks.extend(Paragraph(message) for message in failed)
    elif model is not None:
        blocks.append(Paragraph("The Model's policy has no gates."))
    verdicts = [
        (when(e.time), str(e.action), e.reason)
        for e in _history(version)
        if e.action in ("GatesPassed", "GatesFailed", "ModelNotFound")
    ]
    if verdicts:
        blocks.append(Table(("When", "Verdict", "Detail"), verdicts, caption="Gate verdicts"))
    measured = spec.fairness or []
    if measured:
        evaluated = sum(g.count for g in measured[0].groups)
        blocks.append(
            Paragraph(
                f"Evaluation data: the training run's own held-out rows ({evaluated} rows), on "
                "which it measured the metrics and the fairness below."
            )
        )
    if spec.evaluation and spec.evaluation.champion_version:
        held = spec.evaluation.champion_metrics or {}
        rows = [(n, num(metrics.get(n)), num(v)) for n, v in sorted(held.items())]
        blocks.append(
            Table(
                ("Metric", "This version", f"v{spec.evaluation.champion_version}"),
                rows,
                caption="Against the version in production, on the same evaluation data",
            )
        )
    return Section("Evaluation: metrics and gates", blocks)


def fairness_tables(feature: FeatureFairness) -> list[document.Block]:
    name = feature.sensitive_feature + SENSITIVE
    summary = Table(
        ("Measure", "Value"),
        [(label, num(feature.value(metric))) for label, metric in MEASURES],
        caption=f"{name}: favourable outcome {feature.positive_label or '1'}",
    )
    groups = Table(
        (
            "Group",
            "Rows",
            "Selection rate",
            "Accuracy",
            "True positive rate",
            "False positive rate",
        ),
        [
            (
                g.group,
                str(g.count),
                num(g.selection_rate),
                num(g.accuracy),
                num(g.true_positive_rate),
                num(g.false_positive_rate),
            )
            for g in feature.groups
        ],
        caption=f"{name}: each group",
    )
    return [summary, groups]


def fairness(version: ModelVersion) -> Section:
    measured = version.spec.fairness or []
    if not measured:
        return Section(
            "Fairness (quantitative analysis)",
            [
                Paragraph(
                    "The training run measured no group fairness: call "
                    "training.log_fairness(y_test, model.predict(X_test), {'<feature>': ...}) "
                    "in the training code.",
                    note=True,
                )
            ],
        )
    blocks: list[document.Block] = [
        Paragraph(
            "Measured by the training run with fairlearn on its evaluation data; differences are "
            "0 and the ratio 1 at parity."
        )
    ]
    for feature in measured:
        blocks.extend(fairness_tables(feature))
    return Section("Fairness (quantitative analysis)", blocks)


def same_run(version: ModelVersion, run: Body | None) -> Body | None:
    source = version.spec.source
    if run is None or source is None or run["metadata"].get("uid") != source.run_uid:
        return None
    return run


def lineage(version: ModelVersion, run: Body | None) -> Section:
    source = version.spec.source
    if source is None:
        return Section("Lineage", [Paragraph("The version records no lineage.", note=True)])
    trigger = source.trigger
    config_map = (((run or {}).get("spec") or {}).get("code") or {}).get("configMap") or {}
    run_text = source.run or None
    if run_text:
        run_text += f" (uid {source.run_uid})" + ("" if run else ", since deleted")
    return Section(
        "Lineage",
        [
            Fields(
                [
                    ("Training run", run_text),
                    ("Image", source.image),
                    ("Image digest", source.image_id),
                    ("Code revision", source.code_revision),
                    ("Code", f"ConfigMap {config_map['name']}" if config_map.get("name") else None),
                    (
                        "Trigger",
                        f"{trigger.type}: {trigger.reason} at {when(trigger.time)}"
                        + (
                            f" (ContinuousTraining {trigger.continuous_training})"
                            if trigger.continuous_training
                            else ""
                        )
                        if trigger
                        else "started directly (no ContinuousTraining)",
                    ),
                    ("Run finished", when(listing.finished_at(run)) if run else None),
                ]
            )
        ],
    )


def _history(version: ModelVersion) -> list[HistoryEntry]:
    return (version.status.history if version.status else None) or []


def approvals(model: Model | None, version: ModelVersion) -> Section:
    approval = version.spec.approval
    required = model.spec.policy.require_approval if model else None
    policy = None
    if required is not None:
        policy = "yes" if required else "no: validated versions are approved automatically"
    decision = (
        f"{approval.state} by {approval.by}: {approval.reason}"
        if approval and approval.state != "Pending"
        else "none recorded"
    )
    blocks: list[document.Block] = [
        Fields(
            [
                ("Decision", decision),
                ("Approval required", policy),
            ]
        )
    ]
    rows = [
        (when(e.time), str(e.action), e.by, e.reason)
        for e in _history(version)
        if e.action in DECISIONS
    ]
    known = {(r[0], r[1]) for r in rows}
    for entry in (model.status.history if model and model.status else None) or []:
        copied = {
            ModelReason.VERSION_APPROVED: "Approved",
            ModelReason.VERSION_REJECTED: "Rejected",
        }
        if entry.version == version.spec.version and entry.action in copied:
            row = (when(entry.time), copied[entry.action], entry.by, entry.reason)
            if (row[0], row[1]) not in known:
                rows.append(row)
    if rows:
        blocks.append(Table(("When", "What", "Who", "Why"), sorted(rows, key=lambda r: r[0] or "")))
    return Section("Approvals", blocks)


def served(model: Model | None, version: ModelVersion, deployments: list[Body]) -> Section:
    number = version.spec.version
    now = []
    for mdep in deployments:
        status = mdep.get("status") or {}
        for track in ("stable", "canary"):
            if (status.get(track) or {}).get("version") == number:
                weight = (status.get("canary") or {}).get("weight") if track == "canary" else None
                said = f"{track}" + (f", {weight}% of requests" if weight is not None else "")
                now.append((str(mdep["metadata"]["name"]), said, status.get("url")))
    blocks: list[document.Block] = [
        Table(("ModelDeployment", "Track", "URL"), now, caption="Served now")
        if now
        else Paragraph("Not served now.")
    ]
    rows = [
        (when(e.time), str(e.action), e.by, e.reason)
        for e in _history(version)
        if e.action in SERVING
    ]
    for entry in (model.status.history if model and model.status else None) or []:
        if number in (entry.to_version, entry.from_version) and entry.alias:
            moved = f"{entry.alias}: {entry.from_version or '-'} → {entry.to_version or '-'}"
            rows.append((when(entry.time), f"{entry.action} ({moved})", entry.by, entry.reason))
    if rows:
        blocks.append(
            Table(
                ("When", "What", "By", "Detail"),
                sorted(rows, key=lambda r: r[0] or ""),
                caption="Rollouts, rollbacks and alias moves",
            )
        )
    return Section("Serving and rollout history", blocks)


def card(
    model: Model | None,
    version: ModelVersion,
    run: Body | None,
    deployments: list[Body],
    aliases: list[str],
    at: datetime.datetime,
) -> Document:
    name = version.spec.model
    sensitive = (model.spec.sensitive_features if model else None) or []
    spec = model.spec if model else None
    run = same_run(version, run)
    return Document(
        title=f"Model card: {name}, version {version.spec.version}",
        subtitle=f"Generated by cairn card from the cluster's objects on {when(at)}.",
        sections=[
            details(model, version, aliases),
            text_section(
                "Intended use",
                "spec.intendedUse",
                spec.intended_use if spec else None,
                name,
                "what the model is for, for whom, and what it is not for",
            ),
            factors(model, version),
            training_data(version, sensitive),
            parameters(version),
            evaluation(model, version),
            fairness(version),
            lineage(version, run),
            approvals(model, version),
            served(model, version, deployments),
            text_section(
                "Ethical considerations",
                "spec.ethicalConsiderations",
                spec.ethical_considerations if spec else None,
                name,
                "risks to people, the sensitive data used and the mitigations",
            ),
            text_section(
                "Caveats and recommendations",
                "spec.limitations",
                spec.limitations if spec else None,
                name,
                "known limitations and recommendations",
            ),
        ],
    )


def _parsed(kind: type[Model] | type[ModelVersion], body: Body) -> Any:
    try:
        return kind.model_validate(body)
    except ValidationError as error:
        name = body["metadata"]["name"]
        raise CommandError(f"{kind.kind_name()} {name} cannot be read: {error}") from None


def show(args: argparse.Namespace) -> str:
    number = parse_version(args.version, args.model)
    name = f"{args.model}-v{number}"
    body = objects.get(ModelVersion, args.namespace, name)
    if body is None:
        raise CommandError(
            f"ModelVersion {name} not found in namespace {args.namespace} "
            f"(list them with `cairn versions {args.model} -n {args.namespace}`)"
        )
    version: ModelVersion = _parsed(ModelVersion, body)
    model_body = objects.get(Model, args.namespace, args.model)
    model: Model | None = _parsed(Model, model_body) if model_body else None
    source = version.spec.source
    run = objects.get(TrainingRun, args.namespace, source.run) if source and source.run else None
    deployments = [
        m
        for m in objects.list_(ModelDeployment, args.namespace)
        if (m.get("spec") or {}).get("model") == args.model
    ]
    aliases = listing.aliases_by_version(model_body).get(number, [])
    found = card(model, version, run, deployments, aliases, listing.now())
    return document.html_page(found) if args.output == "html" else document.markdown(found)


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subcommands.add_parser(
        "card",
        help="the model card of a version: details, intended use, data, metrics and gates, "
        "fairness, lineage, approvals, serving",
    )
    parser.add_argument("model", help="the Model's name")
    parser.add_argument("version", help="the version: 3, v3 or <model>-v3")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default="markdown",
        help="markdown (default), or html: one self-contained page that prints well",
    )
    parser.set_defaults(run=show)
