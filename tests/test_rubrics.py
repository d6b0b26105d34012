"""The question bank: every shipped rubric validates, bad rubrics give clear errors, no copied prose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import SEED, SHARED
from mlgrade.errors import RubricError, UnknownQuestionError
from mlgrade.rubrics import builtin_rubrics_dir, load_rubrics, normalise_id, rubric_files, validate_dir

EXAMPLE = SHARED / "examples" / "rubric-example.yaml"


def test_builtin_bank_is_valid_and_complete(bank):
    assert validate_dir() == []
    assert bank.ids() == [f"q{n:02d}" for n in range(1, 26)]
    for rubric in bank:
        assert 4 <= len(rubric.key_points) <= 8, rubric.id
        assert 2 <= len(rubric.follow_ups) <= 3, rubric.id
        assert rubric.misconceptions, rubric.id
        assert len(rubric.model_answer.split()) >= 80, f"{rubric.id}: model answer too thin"


def test_files_are_named_after_their_ids():
    for path in rubric_files(builtin_rubrics_dir()):
        data = yaml.safe_load(path.read_text())
        assert path.name.startswith(f"{data['id']}-"), path.name


@pytest.mark.parametrize("qid", ["q15", "q18", "q21", "q22", "q24"])
def test_article_errata_are_handled(bank, qid):
    assert bank.get(qid).errata, f"{qid} must correct the article"


def test_errata_content(bank):
    q15 = bank.get("q15").model_answer.lower()
    assert "sarsa" in q15 and "q-learning" in q15 and "dynamic" in q15 and "planning" in q15
    q24 = bank.get("q24").model_answer
    assert "a + a" in q24 or "a+a" in q24
    assert "O(n" in q24
    q18 = " ".join(e.correction.lower() for e in bank.get("q18").errata)
    assert "classifier" in q18 or "qda" in q18


def test_coding_rubrics_have_tests(bank):
    for qid, fn in (("q21", "find_bigrams"), ("q24", "can_shift")):
        rubric = bank.get(qid)
        assert rubric.kind == "coding" and rubric.function == fn
        assert len(rubric.tests) >= 4 and rubric.correctness_points


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


RUN = 12  # words in a row shared with the article that count as a copied sentence


def _copied(source: str, texts: dict[str, str]) -> dict[str, str]:
    """name -> the first run of RUN words that the text shares with source."""
    seed = _words(source)
    grams = {tuple(seed[i:i + RUN]) for i in range(len(seed) - RUN + 1)}
    copied = {}
    for name, text in texts.items():
        w = _words(text)
        hits = [" ".join(w[i:i + RUN]) for i in range(len(w) - RUN + 1) if tuple(w[i:i + RUN]) in grams]
        if hits:
            copied[name] = hits[0]
    return copied


@pytest.mark.skipif(not SEED.exists(), reason="the source article is not beside the project")
def test_no_sentence_copied_from_the_article():
    root = Path(__file__).resolve().parents[1]
    files = [*rubric_files(root / "rubrics"), *(root / "prompts").glob("*.md"), root / "README.md"]
    assert _copied(SEED.read_text(errors="ignore"), {p.name: p.read_text() for p in files}) == {}


# A stand-in article (the real one is not in a public clone): the check itself must be able to fail.
STAND_IN = ("Gradient boosting builds an ensemble of shallow trees, where every new tree is fitted to the "
            "residual errors left by the trees before it, and a small learning rate keeps each step modest.")


def test_the_copy_check_can_fail():
    twelve = "new tree is fitted to the residual errors left by the trees"
    assert len(_words(twelve)) == RUN
    eleven = "tree is fitted to the residual errors left by the trees"
    found = _copied(STAND_IN, {"copied.yaml": f"point: In boosting, {twelve.upper()}; then it stops.",
                               "close.yaml": f"point: In boosting, the {eleven}, one by one.",
                               "own.yaml": "point: Boosting adds weak learners one after another."})
    assert found == {"copied.yaml": twelve}


@pytest.mark.parametrize("raw,expected", [("q3", "q03"), ("Q03", "q03"), ("3", "q03"), ("q25", "q25"), (" 7 ", "q07"), ("x01", "x01")])
def test_question_id_spellings(raw, expected):
    assert normalise_id(raw) == expected


def test_unknown_id_suggests_near_matches(bank):
    with pytest.raises(UnknownQuestionError) as info:
        bank.get("q99")
    assert "q99" in str(info.value) and info.value.suggestions


# ----------------------------------------------------------------- invalid rubrics


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text()) if EXAMPLE.exists() else {
        "id": "x01", "number": 0, "section": "technical", "kind": "concept", "difficulty": "medium",
        "question": "What is dropout?", "model_answer": "Random zeroing of units during training.",
        "key_points": [{"id": "random-zeroing", "point": "Units are zeroed at random.", "weight": 3, "essential": True, "cues": []},
                       {"id": "inference", "point": "Nothing is dropped at inference.", "weight": 1, "essential": False, "cues": []}],
        "misconceptions": [], "errata": [], "follow_ups": ["Why?"],
    }


def _write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_example_rubric_is_valid(tmp_path):
    _write(tmp_path / "r", "x01-dropout.yaml", _example())
    assert validate_dir(tmp_path / "r") == []


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(colour="red"), "colour: unknown field"),
    (lambda d: d["key_points"][0].update(extra_field=1), "key_points[random-zeroing].extra_field: unknown field"),
    (lambda d: d["key_points"][1].update(id=d["key_points"][0]["id"]), "duplicate key-point id"),
    (lambda d: d["key_points"][0].update(weight=0), "key_points[random-zeroing].weight"),
    (lambda d: d["key_points"][0].update(weight=-2), "greater than 0"),
    (lambda d: [kp.update(essential=False) for kp in d["key_points"]], "essential"),
    (lambda d: d.update(id="q05", number=6), "does not match number"),
    (lambda d: d.pop("model_answer"), "model_answer: Field required"),
    (lambda d: d.update(section="astrology"), "section"),
])
def test_invalid_rubric_errors_name_file_and_field(tmp_path, mutate, needle):
    data = _example()
    mutate(data)
    _write(tmp_path / "r", "bad.yaml", data)
    problems = validate_dir(tmp_path / "r")
    assert len(problems) >= 1
    assert all(p.startswith(str(tmp_path / "r" / "bad.yaml")) for p in problems), problems
    assert any(needle in p for p in problems), problems


def test_duplicate_question_id_across_files(tmp_path):
    _write(tmp_path / "r", "a.yaml", _example())
    _write(tmp_path / "r", "b.yaml", _example())
    problems = validate_dir(tmp_path / "r")
    assert len(problems) == 1 and "duplicate question id 'x01'" in problems[0] and "b.yaml" in problems[0]


def test_malformed_yaml_names_the_line(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "broken.yaml").write_text("id: x01\nkey_points: [\n  - oops: : :\n")
    problems = validate_dir(folder)
    assert len(problems) == 1 and "broken.yaml" in problems[0] and "malformed YAML" in problems[0]


def test_user_folder_extends_and_overrides_builtin(tmp_path, monkeypatch):
    custom = _example()
    _write(tmp_path / "mine", "x01.yaml", custom)
    override = dict(_example(), id="q05", number=5, question="My own scaling question?")
    _write(tmp_path / "mine", "q05.yaml", override)
    monkeypatch.setenv("MLGRADE_RUBRICS", str(tmp_path / "mine"))
    bank = load_rubrics()
    assert len(bank) == 26
    assert bank.get("x01").question == custom["question"]
    assert bank.get("5").question == "My own scaling question?"


def test_bad_user_folder_raises_rubric_error(tmp_path):
    data = _example()
    data["colour"] = "red"
    _write(tmp_path / "mine", "x01.yaml", data)
    with pytest.raises(RubricError) as info:
        load_rubrics(tmp_path / "mine")
    assert "colour: unknown field" in info.value.problems[0]
