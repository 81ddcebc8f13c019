"""Pure face utilities: judges (detector + identity embedder), identity metrics and typed errors.

Heavy optional libraries (dlib, insightface, onnxruntime) are imported inside the backends, so importing
this package stays light.
"""

from .errors import FaceError, FaceModelMissingError, JudgeUnavailableError, NoFaceError, find_nested_model_dir
from .judge import (
    ARCFACE_TEMPLATE_112,
    FACE_ORDERS,
    DlibJudge,
    FaceJudge,
    FaceRecord,
    InsightFaceJudge,
    check_insightface_folder,
    get_judge,
    judge_names,
    select_faces,
    sort_faces,
    to_rgb_uint8,
)
from .metrics import (
    METRICS,
    DistanceResult,
    delta_id,
    embedding_distance,
    face_embed_distance,
    identity_similarity,
    reference_embedding,
)

__all__ = [
    # errors
    "FaceError",
    "FaceModelMissingError",
    "JudgeUnavailableError",
    "NoFaceError",
    "find_nested_model_dir",
    # judge
    "ARCFACE_TEMPLATE_112",
    "FACE_ORDERS",
    "DlibJudge",
    "FaceJudge",
    "FaceRecord",
    "InsightFaceJudge",
    "check_insightface_folder",
    "get_judge",
    "judge_names",
    "select_faces",
    "sort_faces",
    "to_rgb_uint8",
    # metrics
    "METRICS",
    "DistanceResult",
    "delta_id",
    "embedding_distance",
    "face_embed_distance",
    "identity_similarity",
    "reference_embedding",
]
