"""The trainer SDK: what training code calls inside a TrainingRun's pod (or on a laptop).

    from cairn import training

    data = training.load_dataset()                      # CAIRN_DATASET_URI
    model = RandomForestClassifier(n_estimators=training.param("n_estimators", 100))
    model.fit(data.X, data.y)
    training.log_metric("accuracy", 0.97)
    training.save_model(model)                          # into CAIRN_OUTPUT_DIR (and uploaded
                                                        # to CAIRN_OUTPUT_URI when it is s3://)

Under a Model with a promotion policy, score the new model and the current champion on the same
held-out data, so that promotion compares like with like:

    training.evaluate(model, X_test, y_test, {"f1_macro": macro_f1})
    training.champion()                                 # the champion itself, or None

Under a Model with fairness gates, measure group fairness on the same rows (fairlearn):

    training.log_fairness(y_test, model.predict(X_test), {"sex": sex_of_test_rows})

At a successful exit the run summary (metrics, artifact digest and size, dataset digest) is
written to the container's termination message, where the operator reads it; `finish()` does
it earlier. Environment variables: see cairn.training.env.
"""

from cairn.training.datasets import Dataset, DatasetError, data_digest
from cairn.training.fairness import FairnessError
from cairn.training.metrics import MetricError
from cairn.training.model_dir import (
    FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    ModelMetadata,
    SavedModel,
    load_model,
    read_metadata,
)
from cairn.training.params import ParamError
from cairn.training.session import ArtifactUploadFailed, TrainingSession, default_session
from cairn.training.signature import Signature, SignatureError, TensorSpec, infer_signature
from cairn.training.summary import TERMINATION_MESSAGE_LIMIT, SummaryTooLarge, encode_summary

params = default_session.params
param = default_session.param
dataset_uri = default_session.dataset_uri
load_dataset = default_session.load_dataset
log_metric = default_session.log_metric
log_metrics = default_session.log_metrics
champion = default_session.champion
evaluate = default_session.evaluate
log_champion_metrics = default_session.log_champion_metrics
log_fairness = default_session.log_fairness
save_model = default_session.save_model
finish = default_session.finish

__all__ = [
    "FORMAT",
    "METADATA_FILE",
    "MODEL_FILE",
    "TERMINATION_MESSAGE_LIMIT",
    "ArtifactUploadFailed",
    "Dataset",
    "DatasetError",
    "FairnessError",
    "MetricError",
    "ModelMetadata",
    "ParamError",
    "SavedModel",
    "Signature",
    "SignatureError",
    "SummaryTooLarge",
    "TensorSpec",
    "TrainingSession",
    "champion",
    "data_digest",
    "dataset_uri",
    "default_session",
    "encode_summary",
    "evaluate",
    "finish",
    "infer_signature",
    "load_dataset",
    "load_model",
    "log_champion_metrics",
    "log_fairness",
    "log_metric",
    "log_metrics",
    "param",
    "params",
    "read_metadata",
    "save_model",
]
