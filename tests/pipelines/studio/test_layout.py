"""The studio's graph: edges of three kinds from a definition, steps in topological layers, no overlaps."""

from __future__ import annotations

import pytest

from pipelines.studio.layout import LAYER_GAP, NODE_HEIGHT, NODE_WIDTH, edges_of, layout
from pipelines.studio.views import mlflow_link
from tests.pipelines.studio.demo import definition


def kinds(found) -> set[tuple[str, str, str, str]]:
    return {(e.source, e.target, e.kind, e.label) for e in found}


def test_data_edges_condition_branches_and_depends_on_are_told_apart():
    document = definition()
    document["Steps"].append({"Name": "Notify", "Type": "Fail", "DependsOn": ["Prepare"], "Arguments": {}})
    assert kinds(edges_of(document)) == {
        ("Prepare", "EnoughRows", "data", ""),
        ("EnoughRows", "Score", "branch", "true"), ("EnoughRows", "TooFew", "branch", "false"),
        ("Prepare", "Score", "data", ""), ("Prepare", "TooFew", "data", ""),
        ("Prepare", "Notify", "depends", ""),
    }


def test_a_data_reference_and_depends_on_between_the_same_steps_is_one_edge():
    document = {"Steps": [{"Name": "A", "Type": "Fail", "Arguments": {}},
                          {"Name": "B", "Type": "Fail", "DependsOn": ["A"],
                           "Arguments": {"X": {"Get": "Steps.A.Properties.Y"}}}]}
    assert kinds(edges_of(document)) == {("A", "B", "data", "")}


def test_steps_sit_in_topological_layers_top_down_and_never_overlap():
    placed = layout(definition())
    rows = {step.name: step.y for step in placed.steps}
    assert rows["Prepare"] < rows["EnoughRows"] < rows["Score"] == rows["TooFew"]
    assert rows["EnoughRows"] - rows["Prepare"] == NODE_HEIGHT + LAYER_GAP
    score, too_few = (next(s for s in placed.steps if s.name == n) for n in ("Score", "TooFew"))
    assert abs(score.x - too_few.x) >= NODE_WIDTH  # side by side, not on top of each other
    for step in placed.steps:
        assert 0 <= step.x and step.x + NODE_WIDTH <= placed.width and step.y + NODE_HEIGHT <= placed.height
    assert {s.name: s.branch for s in placed.steps}["TooFew"] == ("EnoughRows", False)
    for edge in placed.edges:
        assert edge.path.startswith("M") and " C" in edge.path


def test_a_wide_layer_keeps_its_steps_near_the_step_they_follow():
    steps = [{"Name": "Root", "Type": "Fail", "Arguments": {}}]
    steps += [{"Name": f"S{i}", "Type": "Fail", "DependsOn": ["Root"], "Arguments": {}} for i in range(4)]
    steps += [{"Name": "After0", "Type": "Fail", "DependsOn": ["S0"], "Arguments": {}},
              {"Name": "After3", "Type": "Fail", "DependsOn": ["S3"], "Arguments": {}}]
    placed = {s.name: s for s in layout({"Steps": steps}).steps}
    assert placed["After0"].x < placed["After3"].x  # no crossing: each under its own parent's side
    assert placed["S0"].x < placed["S1"].x < placed["S2"].x < placed["S3"].x


@pytest.mark.parametrize("run, ui, expected", [
    ({"run_id": "r1", "experiment_id": "7", "tracking_uri": "sqlite:////s/mlflow.db"}, None, None),
    ({"run_id": "r1", "experiment_id": "7", "tracking_uri": "sqlite:////s/mlflow.db"}, "http://127.0.0.1:5000/",
     "http://127.0.0.1:5000/#/experiments/7/runs/r1"),
    ({"run_id": "r1", "experiment_id": "7", "tracking_uri": "http://127.0.0.1:5005"}, None,
     "http://127.0.0.1:5005/#/experiments/7/runs/r1"),
    ({"run_id": "r1", "tracking_uri": "http://127.0.0.1:5005"}, None, None),  # recorded before experiment ids were
    (None, "http://127.0.0.1:5000", None),
])
def test_an_mlflow_run_links_to_the_ui_that_shows_it(run, ui, expected):
    assert mlflow_link(run, ui) == expected
