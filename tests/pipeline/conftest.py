"""The face fixtures (``face_kit``) for the tests in this folder."""

from face_kit import _mtcnn_and_memo, detector, empty_store, kit, onnx_store, structure_store  # noqa: F401 - fixtures
