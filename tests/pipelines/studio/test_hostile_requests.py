"""Requests written by an attacker who has the token: every malformed body, path or query value is a 400 (or a
413, or a 404 naming what is missing) that names the field, never a 500, and nothing is started or changed."""

from __future__ import annotations

import html
import http.client
import json
import urllib.parse
import urllib.request

import pytest

from pipelines.local import executions
from pipelines.local.registry import Registry
from tests.pipelines.studio import demo
from tests.pipelines.studio.conftest import TOKEN, post, run_demo, wait_until_ended

START = f"/api/pipelines/{demo.NAME}/start"
HEADERS = {"Cookie": f"studio_token={TOKEN}", "X-Studio-Token": TOKEN, "Content-Type": "application/json"}


def with_note() -> dict:
    """The demo with a free String parameter, as pipelines written elsewhere declare them."""
    definition = demo.definition()
    definition["Parameters"].append({"Name": "Note", "Type": "String", "DefaultValue": "none"})
    return definition


@pytest.fixture
def noted(tmp_path, start_studio, demo_lambdas):
    """A studio over a store holding one execution of the demo with a free String parameter."""
    store = tmp_path / "store"
    run_demo(store, demo_lambdas, definition=with_note())
    return start_studio(store, local_lambdas=demo_lambdas)


def started(studio) -> int:
    return len(list(executions.all_records(studio.store)))


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"parameters": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
])
def test_a_body_nested_100000_levels_deep_is_a_400_naming_the_body(noted, body):
    status, answer = post(noted, START, body)
    assert status == 400 and answer["error"].startswith("the request body"), answer
    assert started(noted) == 1


def test_a_body_larger_than_the_cap_is_a_413_whether_its_length_is_told_or_not(noted):
    from pipelines.studio.security import MAX_BODY_BYTES

    told = http.client.HTTPConnection(noted.url.removeprefix("http://"), timeout=60)
    told.putrequest("POST", START)
    for name, value in {**HEADERS, "Content-Length": str(MAX_BODY_BYTES + 1)}.items():
        told.putheader(name, value)
    told.endheaders(b'{"parameters": {"Note": "')  # the studio answers before the rest would arrive
    response = told.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    untold = http.client.HTTPConnection(noted.url.removeprefix("http://"), timeout=60)
    untold.putrequest("POST", START)
    for name, value in {**HEADERS, "Transfer-Encoding": "chunked"}.items():
        untold.putheader(name, value)
    untold.endheaders()
    for size in (MAX_BODY_BYTES, 1):  # no length told: the studio counts as it reads, and stops past its cap
        untold.send(f"{size:x}\r\n".encode() + b"x" * size + b"\r\n")
    response = untold.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    assert started(noted) == 1


@pytest.mark.parametrize("parameters, field", [
    ({" Rows": "5"}, " Rows"),  # read as Rows by the Name=Value form
    ({"Note=x": "y"}, "Note=x"),  # read as Note = "x=y"
    ({"Note": {"a": 1}}, "parameters.Note"),
    ({"Note": ["x"]}, "parameters.Note"),
])
def test_a_parameter_name_or_value_of_the_wrong_shape_is_a_400_naming_it(noted, parameters, field):
    status, answer = post(noted, START, {"parameters": parameters})
    assert status == 400, answer
    named = answer["errors"] if "errors" in answer else {answer["error"].split(": ")[0]: answer["error"]}
    assert field in named, answer
    assert started(noted) == 1


@pytest.mark.parametrize("body", [b'{"parameters": {"Note": NaN}}', b'{"parameters": {"Note": Infinity}}',
                                  b'{"x": -Infinity}', b'{"parameters": {"Note": "\\ud800"}}'])
def test_json_that_is_not_json_is_refused(noted, body):
    status, answer = post(noted, START, body)
    assert status == 400 and answer["error"].startswith("the request body"), answer
    assert started(noted) == 1


def test_a_credential_in_a_string_parameter_is_refused_by_its_field_as_the_cli_refuses_it(noted):
    from pipelines.credentials import refuse_credentials
    from pipelines.errors import CredentialInConfigError

    for value in ("AKIAIOSFODNN7EXAMPLE", "note wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"):
        with pytest.raises(CredentialInConfigError):  # the CLI's --parameter rule refuses it
            refuse_credentials({"Note": value}, "--parameter", check_names=False)
        status, answer = post(noted, START, {"parameters": {"Note": value, "Rows": "50"}})
        assert status == 400, answer
        assert set(answer["errors"]) == {"Note"} and "looks like an AWS" in answer["errors"]["Note"]
        assert value not in json.dumps(answer)  # never echoed back
    assert started(noted) == 1


@pytest.fixture
def registered(ran):
    studio = ran[0]
    registry = Registry(studio.store / "registry.sqlite")
    for _ in range(2):
        registry.register("Leads", "PendingManualApproval", {"Containers": [{"Image": "img",
                                                                             "ModelDataUrl": "s3://b/m"}]})
    return studio


@pytest.mark.parametrize("path, shown", [
    ("/registry/Leads/%C2%B2", "'²'"),  # a superscript two: str.isdigit() says yes, int() says no
    ("/registry/Leads/%D9%A1", "'١'"),  # an Arabic-Indic one: int() reads it as 1
    ("/registry/Leads/-1", "'-1'"),
    ("/registry/Leads/0", "0"),
    ("/registry/Leads/1_0", "1_0"),  # int() reads it as 10
    ("/registry/Leads/" + "9" * 5000, "'" + "9" * 40),  # int() refuses more than 4300 digits
    ("/registry/Leads/99999999999999999999", "99999999999999999999"),
    ("/registry/Leads/compare?v=%C2%B2&v=1", "'²'"),
    ("/registry/Leads/compare?v=%D9%A1&v=2", "'١'"),
    ("/registry/Leads/compare?v=-1&v=1&v=2", "'-1'"),
    ("/registry/Leads/compare?v=1&v=" + "1" * 5000, "'" + "1" * 40),
    ("/registry/Leads/compare?v=1&v=%201", "' 1'"),
])
def test_a_version_that_is_not_a_plain_number_is_a_400_naming_it(registered, path, shown):
    status, body = registered.get(path)
    body = html.unescape(body)
    assert status == 400 and "must be a whole number from 1 to" in body and shown in body, (path, status, body[:300])


@pytest.mark.parametrize("path", ["/api/registry/Leads/%C2%B2/decision", "/api/registry/Leads/-2/deploy",
                                  "/api/registry/Leads/" + "7" * 5000 + "/decision"])
def test_an_action_on_a_version_that_is_not_a_plain_number_is_a_400(registered, path):
    status, answer = post(registered, path, {"decision": "approve", "comment": "ok", "endpoint": "e"})
    assert status == 400 and "must be a whole number from 1 to" in answer["error"], answer
    assert Registry(registered.store / "registry.sqlite").describe("Leads", 1)["ModelApprovalStatus"] == \
        "PendingManualApproval"


def test_a_decision_of_another_type_names_the_field(registered):
    status, answer = post(registered, "/api/registry/Leads/1/decision",
                          json.dumps({"decision": [[[["approve"]]]] , "comment": "ok"}).encode())
    assert status == 400 and answer["error"] == "decision: must be a string; got list"


@pytest.mark.parametrize("name", ["Модель-β", 'lead "scoring"\\ 2026', "リード"])
def test_a_pipeline_whose_name_is_not_latin_1_downloads_its_definition_with_an_rfc_6266_filename(
        tmp_path, start_studio, demo_lambdas, name):
    store = tmp_path / "store"
    run_demo(store, demo_lambdas, name=name)
    studio = start_studio(store, local_lambdas=demo_lambdas)
    request = urllib.request.Request(f"{studio.url}/pipelines/{urllib.parse.quote(name)}/definition.json",
                                     headers={"Cookie": f"studio_token={TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and json.loads(response.read())["Parameters"][0]["Name"] == "Rows"
        disposition = response.headers["Content-Disposition"]
    kind, fallback, extended = [part.strip() for part in disposition.split(";")]
    assert kind == "attachment"
    assert fallback.startswith('filename="') and fallback.endswith('.json"') and fallback.isascii()
    assert '"' not in fallback[len('filename="'):-1] and "\\" not in fallback
    assert extended.startswith("filename*=UTF-8''") and extended.isascii()
    assert urllib.parse.unquote(extended.removeprefix("filename*=UTF-8''")) == f"{name}.json"


def test_too_many_steps_to_run_again_are_refused_by_the_field(ran):
    studio, succeeded, _ = ran
    status, answer = post(studio, f"/api/executions/{succeeded}/rerun", {"steps": [f"S{i}" for i in range(51)]})
    assert status == 400 and answer["error"].startswith("steps: choose 1 to 50 steps"), answer
    status, answer = post(studio, f"/api/executions/{succeeded}/rerun", {"steps": ["Score"] * 10})
    assert status == 200, answer
    assert wait_until_ended(studio, answer["execution_id"]).selected_steps == ["Score"]


def test_a_number_too_large_for_a_float_is_refused_by_its_field(noted):
    status, answer = post(noted, START, b'{"parameters": {"Note": 1e999}}')  # read as an infinite float
    assert status == 400 and answer["error"] == "parameters.Note: must be a string, a number or a boolean; got float"
    assert started(noted) == 1
