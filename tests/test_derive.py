"""Rubrics derived from a question and a reference answer: valid, cached, usable for grading."""

from __future__ import annotations

import yaml

from mlgrade.evaluation.derive import derive_offline, derive_rubric, rubric_yaml
from mlgrade.graders.offline import OfflineGrader
from mlgrade.grading import finalize
from mlgrade.rubrics import load_dir, parse_rubric

Q = "What is dropout in neural networks, and why does it help?"
REF = ("Dropout randomly sets unit activations to zero during training, which prevents units from co-adapting. "
       "It acts like averaging an ensemble of thinned networks, and at test time nothing is dropped.")


def test_offline_derivation_is_a_valid_rubric_with_claims_from_the_reference():
    r = derive_offline(Q, REF)
    assert r.id.startswith("d-") and len(r.id) == 10
    assert 2 <= len(r.key_points) <= 8
    assert sum(kp.essential for kp in r.key_points) == 1
    assert all(kp.point.lower().rstrip(".") in REF.lower() for kp in r.key_points)
    assert r.model_answer == REF and r.follow_ups
    # the YAML round-trips through the same validation as the built-in bank
    assert parse_rubric(yaml.safe_load(rubric_yaml(r)), "derived") == r


def test_derived_yaml_passes_rubrics_validate(tmp_path, cli):
    res = cli(["rubrics", "derive", "--question", Q, "--answer", REF, "--grader", "offline",
               "--out", tmp_path / "derived.yaml"])
    assert res.exit_code == 0, res.output
    rubrics, problems = load_dir(tmp_path)
    assert problems == [] and len(rubrics) == 1
    assert cli(["rubrics", "validate", tmp_path]).exit_code == 0


def test_derive_cli_prints_yaml_to_stdout(cli):
    res = cli(["rubrics", "derive", "-q", Q, "-a", REF, "--grader", "offline"])
    assert res.exit_code == 0
    assert yaml.safe_load(res.stdout)["key_points"]


def test_derive_cli_needs_an_answer(cli):
    res = cli(["rubrics", "derive", "-q", Q, "--grader", "offline"])
    assert res.exit_code == 2 and "error:" in res.output


def test_derived_rubrics_are_cached_by_input_hash(settings):
    from mlgrade.store import Store

    a = derive_rubric(Q, REF, settings=settings, grader_kind="offline")
    with Store.for_settings(settings) as store:
        rows = store.db.execute("SELECT key, rubric_yaml FROM derived_rubrics").fetchall()
        assert len(rows) == 1
        # a changed cache entry is what comes back: proof the second call reads the cache
        data = yaml.safe_load(rows[0][1])
        data["follow_ups"] = ["from the cache"]
        store.derived_put(rows[0][0], yaml.safe_dump(data))
    b = derive_rubric(Q, REF, settings=settings, grader_kind="offline")
    assert [f.question for f in b.follow_ups] == ["from the cache"] and b.id == a.id
    c = derive_rubric(Q, REF + " Typical rates are 0.1 to 0.5.", settings=settings, grader_kind="offline")
    assert c.id != a.id


def test_grading_against_a_derived_rubric_orders_answers_sensibly():
    r = derive_offline(Q, REF)
    g = OfflineGrader()

    def score(ans: str) -> float:
        return finalize(r, ans, g.judge(r, ans), grader="offline").score

    good = ("During training dropout randomly sets activations of units to zero, so units cannot co-adapt. "
            "It works like averaging an ensemble of thinned networks; nothing is dropped at test time.")
    half = "Dropout sets random unit activations to zero during training."
    bad = "It is a kind of learning rate schedule that makes the network train faster."
    assert score(good) > score(half) > score(bad)
    assert score(good) >= 80


def test_long_references_are_merged_to_at_most_eight_points():
    ref = ", ".join(f"point {w} matters" for w in "alpha beta gamma delta epsilon zeta eta theta iota kappa".split())
    r = derive_offline("Name the points.", ref)
    assert len(r.key_points) <= 8 and len({kp.id for kp in r.key_points}) == len(r.key_points)


def test_llm_derivation_uses_structured_output_and_is_cached(settings):
    """The LLM path over a respx-mocked endpoint: the reply becomes a valid rubric, ids are
    slugged, a missing essential is fixed, and a second call is served from the cache."""
    import respx

    from llm_helpers import BASE_URL, CHAT_URL, ok
    from mlgrade.config import load_settings

    llm_settings = load_settings(base_url=BASE_URL, model="gpt-4.1-mini", grader="llm")
    reply = {"key_points": [
        {"id": "Random Zeroing", "point": "Units are zeroed at random during training.", "weight": 3,
         "essential": False, "cues": ["randomly", "set to zero"]},
        {"id": "ensemble", "point": "It approximates an ensemble of thinned networks.", "weight": 2,
         "essential": False, "cues": ["ensemble"]}],
        "misconceptions": [{"id": "drop-at-test", "claim": "Units are also dropped at test time.", "penalty": 15}],
        "follow_ups": ["How does dropout interact with batch normalisation?"]}
    with respx.mock:
        route = respx.post(CHAT_URL).mock(return_value=ok(reply))
        r = derive_rubric(Q, REF, settings=llm_settings)
        again = derive_rubric(Q, REF, settings=llm_settings)
    assert route.call_count == 1 and again == r
    assert [kp.id for kp in r.key_points] == ["random-zeroing", "ensemble"]
    assert r.key_points[0].essential and r.misconceptions[0].penalty == 15
    assert parse_rubric(yaml.safe_load(rubric_yaml(r)), "derived") == r


def test_offline_claims_keep_the_references_brackets_and_punctuation():
    # issue 26: "scaled by 1/(1-p) during training" became "scaled by 1/, 1-p  during training"
    from mlgrade.evaluation.derive import derive_offline

    ref = ("Dropout zeroes a fraction p of the units during training, so no unit can be relied on "
           "(a form of regularisation). With inverted dropout the kept activations are scaled by 1/(1-p) during "
           "training, so nothing changes at test time. The cost grows as O(n) in the layer width.")
    points = [kp.point for kp in derive_offline("What is dropout?", ref).key_points]
    assert any("scaled by 1/(1-p) during training" in p for p in points), points
    assert any("O(n) in the layer width" in p for p in points), points
    assert any(p == "A form of regularisation" for p in points), points
    assert not any(", 1-p" in p or p.endswith((")", "(")) and "(" not in p for p in points), points
    # every point is the reference's own text, whitespace aside
    flat = " ".join(ref.split()).lower()
    assert all(p.lower() in flat for p in points), points
