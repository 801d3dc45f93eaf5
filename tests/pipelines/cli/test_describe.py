"""``describe`` shows long property values in brief unless asked (``--full``)."""

from __future__ import annotations

from pipelines.cli.commands.executions import LONG_LIST, brief


def test_brief_cuts_long_lists_rounds_floats_and_keeps_strings_and_short_lists_whole():
    curve = [i / 3 for i in range(400)]
    shown = brief({"roc": {"false_positive_rates": curve}, "auc": 0.8207518108824627, "name": "x" * 500,
                   "deciles": [1, 2, 3]})
    assert shown["roc"]["false_positive_rates"][:LONG_LIST] == [float(f"{v:.6g}") for v in curve[:LONG_LIST]]
    assert shown["roc"]["false_positive_rates"][LONG_LIST:] == [f"... {400 - LONG_LIST} more (--full shows them)"]
    assert shown["auc"] == 0.820752 and shown["name"] == "x" * 500 and shown["deciles"] == [1, 2, 3]
