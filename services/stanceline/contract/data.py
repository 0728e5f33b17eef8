"""The `data` payloads of the v1 events.

Models are frozen and keep unknown fields (`extra="allow"`): the stored event
must carry everything the publisher sent, while projections read only the
fields named here (tolerant reader).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from stanceline.contract.fields import (
    Confidence,
    HttpUrlText,
    Identifier,
    Quote,
    Score,
    Timestamp,
)
from stanceline.domain.stance import Stance as StanceLabel
from stanceline.domain.stance import default_score

Stance = Literal["support", "oppose", "neutral"]
SpeechAct = Literal["assert", "deny", "investigate", "question", "decline_comment", "act"]
Certainty = Literal["certain", "probable", "possible", "uncommitted"]
ActorKind = Literal["state", "organisation", "person", "armed-group", "other"]
TopicKind = Literal["policy", "claim", "other"]

_SCORE_RULES: dict[str, str] = {"support": "> 0", "oppose": "< 0", "neutral": "= 0"}


class WireModel(BaseModel):
    """Base of every wire model: immutable, and tolerant of unknown fields."""

    model_config = ConfigDict(frozen=True, extra="allow")


class Speaker(WireModel):
    name: str
    role: str | None = None


class StatementData(WireModel):
    """One statement as published, or (in `corrected`) as it should read."""

    statement_id: Identifier
    actor_id: Identifier
    topic_id: Identifier
    stance: Stance
    said_at: Timestamp
    score: Score | None = None
    confidence: Confidence | None = None
    speaker: Speaker | None = None
    quote: Quote | None = None
    source_url: HttpUrlText | None = None
    published_at: Timestamp | None = None
    speech_act: SpeechAct | None = None
    certainty: Certainty | None = None

    # A field validator rather than a model validator so the error's location
    # is `score` itself: dead letters then name `data.score`. `stance` is
    # declared first, so it has been validated (or has failed) by now.
    @field_validator("score")
    @classmethod
    def _score_agrees_with_stance(cls, score: float | None, info: ValidationInfo) -> float | None:
        stance = info.data.get("stance")
        if score is None or stance is None or _agrees(stance, score):
            return score
        raise PydanticCustomError(
            "score_contradicts_stance",
            "score {score} contradicts stance '{stance}' ({stance} needs score {rule})",
            {"score": score, "stance": stance, "rule": _SCORE_RULES[stance]},
        )

    @property
    def effective_score(self) -> float:
        return self.score if self.score is not None else default_score(StanceLabel(self.stance))

    @property
    def effective_confidence(self) -> float:
        return self.confidence if self.confidence is not None else 1.0


def _agrees(stance: str, score: float) -> bool:
    if stance == "support":
        return score > 0
    if stance == "oppose":
        return score < 0
    return score == 0


class RetractionData(WireModel):
    statement_id: Identifier
    reason: str | None = None


class ActorData(WireModel):
    actor_id: Identifier
    name: str
    kind: ActorKind
    parent_id: Identifier | None = None
    aliases: tuple[str, ...] = ()


class TopicData(WireModel):
    topic_id: Identifier
    title: str
    kind: TopicKind
    description: str | None = None
