"""Which relevance model and embedder the settings choose: resolved here, built once by the providers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.config import Settings
from digest.errors import ConfigError, ModelError
from digest.llm.client import openai_client
from digest.relevance.embed import Embedder, OnnxEncoder, OpenAIEmbedder, encoder_files
from digest.relevance.model import PACKAGED_MODEL, RelevanceModel


def model_path(settings: Settings) -> Path:
    """``DIGEST_RELEVANCE_MODEL``, else the reader's retrained model in ``DIGEST_DATA_DIR``, else the packaged one."""
    if settings.relevance_model is not None:
        return settings.relevance_model
    mine = settings.data_dir / "relevance-model.npz"
    return mine if mine.is_file() else PACKAGED_MODEL


def check_embedder_settings(settings: Settings, model: RelevanceModel) -> None:
    """Fail before any work when the embedder settings cannot produce the model's embeddings."""
    if settings.embedder == "openai":
        if not settings.embed_base_url:
            raise ConfigError("DIGEST_EMBEDDER=openai needs DIGEST_EMBED_BASE_URL (an OpenAI-compatible /v1 URL)")
        want = f"openai:{settings.embed_model}"
        if model.embedder != want:
            raise ConfigError(
                f"DIGEST_EMBEDDER=openai gives {want!r} embeddings but the relevance model was trained on "
                f"{model.embedder!r}: retrain with `digest train` under these settings, or unset DIGEST_EMBEDDER"
            )
        return
    try:
        encoder_files(model.embedder, model_path(settings))
    except ModelError as exc:
        raise ConfigError(str(exc)) from None


def build_embedder(settings: Settings, model: RelevanceModel) -> Embedder:
    if settings.embedder == "openai":
        client: Any = openai_client(settings, settings.embed_base_url, settings.embed_api_key or settings.llm_api_key)
        return OpenAIEmbedder(client, settings.embed_model)
    return OnnxEncoder(encoder_files(model.embedder, model_path(settings)))
