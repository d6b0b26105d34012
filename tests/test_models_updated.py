"""models.updated: the same copy as pydantic's model_copy(update=...), field for field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from mlgrade.models import Grade, Judgment, MisconceptionFound, Review, updated


def _same_copy(model: BaseModel, **changes) -> BaseModel:
    ours, theirs = updated(model, **changes), model.model_copy(update=changes)
    assert type(ours) is type(theirs)
    assert ours == theirs
    assert ours.__pydantic_fields_set__ == theirs.__pydantic_fields_set__
    assert ours.model_dump(exclude_unset=True) == theirs.model_dump(exclude_unset=True)
    assert ours is not model and ours.__dict__ is not model.__dict__
    return ours


@pytest.mark.parametrize(("model", "changes"), [
    (Judgment(key_point="k1", status="covered", evidence="a quote"), {"status": "missing", "verified": False,
                                                                        "claimed_status": "covered"}),
    (Judgment(key_point="k2", status="partial"), {}),
    (MisconceptionFound(id="m1", evidence="x"), {"claim": "a claim", "penalty": 10.0}),
    (Grade(question_id="q01", outcome="graded", score=55.0, band="weak"), {"review": Review(needed=True)}),
])
def test_updated_is_model_copy(model, changes):
    before = model.model_dump()
    copy = _same_copy(model, **changes)
    assert model.model_dump() == before  # the original is untouched
    for name, value in changes.items():
        assert getattr(copy, name) is value


def test_a_copy_does_not_share_its_fields_set():
    j = Judgment(key_point="k1", status="covered")
    copy = updated(j, verified=False)
    assert "verified" in copy.__pydantic_fields_set__ and "verified" not in j.__pydantic_fields_set__


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int = 0


class _Private(BaseModel):
    a: int = 0
    _secret: str = PrivateAttr(default="kept")


def test_models_with_extra_or_private_data_take_pydantic_path():
    extra = _Extra(a=1, b=2)
    assert updated(extra, a=3).model_dump() == {"a": 3, "b": 2}
    private = _Private(a=1)
    copy = updated(private, a=2)
    assert copy.a == 2 and copy._secret == "kept"


@pytest.mark.parametrize(("cls", "values"), [
    (Judgment, {"key_point": "k1", "status": "covered", "evidence": "a quote", "comment": "c", "claimed_status": "covered"}),
    (Judgment, {"key_point": "k2", "status": "missing"}),
    (MisconceptionFound, {"id": "off-topic", "claim": "another question"}),
    (MisconceptionFound, {"id": "m1", "claim": "c", "evidence": "e"}),
])
def test_constructed_is_the_validated_model(cls, values):
    from mlgrade.models import constructed

    ours, theirs = constructed(cls, **values), cls(**values)
    assert type(ours) is cls and ours == theirs
    assert list(ours.__dict__) == list(theirs.__dict__)  # the fields in their order, defaults filled
    assert ours.__pydantic_fields_set__ == theirs.__pydantic_fields_set__
    assert ours.model_dump_json() == theirs.model_dump_json()


def test_constructed_assessment_gets_fresh_defaults():
    from mlgrade.models import Assessment, constructed

    a, b = constructed(Assessment, judgments=[]), constructed(Assessment, judgments=[])
    assert a == Assessment(judgments=[]) and a.usage is not b.usage and a.strengths is not b.strengths


def test_constructed_leaves_models_with_private_data_to_pydantic():
    from mlgrade.models import constructed

    class Private(BaseModel):
        x: int = 1
        _secret: str = PrivateAttr(default="s")

    made = constructed(Private, x=2)
    assert made.x == 2 and made._secret == "s"
