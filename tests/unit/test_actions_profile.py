"""Device actions before anything starts: the schema (file:line), placeholders, JSON bodies, applicability, deadlines."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.actions import ActionBroker, ActionClient, ActionError, ActionResult, check_actions
from harness.actions import client as client_module
from harness.actions.execute import render_request
from harness.context import SuiteContext
from harness.errors import ProfileError
from harness.model import Endpoint
from harness.plugin import _not_applicable
from harness.profile import ActionSpec, parse_profile, profile_json_schema
from harness.rundir import RunDir
from harness.runner import check_variant
from simulators._lifeline import HEARTBEAT_ENV

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
[device]
name = "dev"
ae_title = "DEV"

[variants.baseline]
command = ["dev", "--port", "{port}"]

[variants.candidate]
command = ["dev-patched", "--port", "{port}"]
"""


def _profile(actions: str, source: str = "/tmp/dev.toml", base: str = BASE) -> Any:
    return parse_profile(base.replace("[variants.baseline]", actions + "\n[variants.baseline]"), source)


def _problem(actions: str) -> str:
    with pytest.raises(ProfileError) as info:
        _profile(actions)
    return str(info.value.message) + " " + info.value.hint


def test_actions_parse_with_their_kind_and_defaults() -> None:
    profile = _profile(
        '[device.actions.acquire]\nkind = "command"\ncommand = ["{python}", "-c", "pass"]\n\n'
        '[device.actions.scenario]\nkind = "prompt"\ntext = "do the exam"\n\n'
        '[device.actions.reset]\nkind = "http"\nurl = "http://127.0.0.1:{http_port}/reset"\nbody = {all = true}\n'
    )
    acquire, scenario, reset = (profile.device.actions[n] for n in ("acquire", "scenario", "reset"))
    assert (acquire.kind, acquire.command, acquire.ok_exit, acquire.where) == (
        "command",
        ("{python}", "-c", "pass"),
        (0,),
        "host",
    )
    assert (acquire.timeout, scenario.timeout) == (60.0, 600.0)  # a person at a console gets longer
    assert (reset.method, reset.body, reset.ok_status) == ("POST", {"all": True}, (200, 201, 202, 204))
    assert ActionSpec.from_json(json.loads(json.dumps(reset.to_json()))) == reset  # through endpoints.json


@pytest.mark.parametrize(
    ("actions", "line_key", "says"),
    [
        (
            '[device.actions.acquire]\nkind = "command"\n',
            "5: device.actions.acquire.command",
            "a command needs command",
        ),
        (
            '[device.actions.acquire]\nkind = "command"\ncommand = ["x"]\nurl = "http://x/"\n',
            "8: device.actions.acquire.url",
            "only of 'http'",
        ),
        ('[device.actions.acquire]\nkind = "shell"\n', "6: device.actions.acquire.kind", "unknown value 'shell'"),
        (
            '[device.actions.aquire]\nkind = "prompt"\ntext = "x"\n',
            "5: device.actions.aquire",
            "did you mean 'acquire'",
        ),
        (
            '[device.actions.reset]\nkind = "http"\nurl = "ftp://x/"\n',
            "7: device.actions.reset.url",
            "not an http:// or https:// URL",
        ),
        (
            '[device.actions.reset]\nkind = "http"\nurl = "http://x/"\nbody = {when = 2024-01-01}\n',
            "8: device.actions.reset.body.when",
            "expected a JSON value",
        ),
        (
            '[device.actions.reset]\nkind = "dicom"\nmessage = "C-MOVE"\n',
            "7: device.actions.reset.message",
            "unknown value 'C-MOVE'",
        ),
        (
            '[device.actions.reset]\nkind = "command"\ncommand = ["x"]\nok_exit = [256]\n',
            "8: device.actions.reset.ok_exit[0]",
            "out of range",
        ),
    ],
)
def test_schema_errors_name_file_line_and_key(actions: str, line_key: str, says: str) -> None:
    problem = _problem(actions)
    assert f"/tmp/dev.toml:{line_key}" in problem and says in problem, problem


@pytest.mark.parametrize("deadline", ["0", "-1", "inf", "nan", "3601", "1e9"])
def test_every_deadline_is_finite_positive_and_bounded(deadline: str) -> None:
    problem = _problem(f'[device.actions.acquire]\nkind = "command"\ncommand = ["x"]\ndeadline = {deadline}\n')
    assert "/tmp/dev.toml:8: device.actions.acquire.deadline" in problem and "≤ 3600" in problem, problem
    if deadline != "0":  # a settle of 0 is fine: nothing to wait for
        problem = _problem(f'[device.actions.acquire]\nkind = "command"\ncommand = ["x"]\nsettle = {deadline}\n')
        assert "device.actions.acquire.settle" in problem and "≤ 600" in problem, problem


@pytest.mark.parametrize("ready", ["echo", "tcp", "none", "http:/", "http:/app/explorer.html", "log:listening on"])
def test_ready_takes_the_readiness_kinds(ready: str) -> None:
    assert (
        parse_profile(
            BASE.replace('ae_title = "DEV"', f'ae_title = "DEV"\nready = "{ready}"'), "/tmp/dev.toml"
        ).device.ready
        == ready
    )


@pytest.mark.parametrize("ready", ["c-echo", "http:", "http://x/", "log:", "log: ", "TCP"])
def test_ready_refuses_anything_else(ready: str) -> None:
    with pytest.raises(
        ProfileError, match=r"/tmp/dev\.toml:4: device\.ready: .* is not echo, tcp, none, http:/PATH or log:TEXT"
    ):
        parse_profile(BASE.replace('ae_title = "DEV"', f'ae_title = "DEV"\nready = "{ready}"'), "/tmp/dev.toml")


def test_ready_over_tcp_or_http_is_refused_where_the_host_cannot_reach_the_device() -> None:
    base = BASE.replace('ae_title = "DEV"', 'ae_title = "DEV"\nready = "tcp"').replace(
        'command = ["dev-patched", "--port", "{port}"]', 'image = "dev:patched"'
    )
    profile = parse_profile(base, "/tmp/dev.toml")
    check_variant(profile, "baseline")  # a local process: the host reaches it
    with pytest.raises(ProfileError, match=r"device\.ready = 'tcp' probes from patchgate's host") as info:
        check_variant(profile, "candidate")
    assert 'network = "host"' in info.value.hint
    check_variant(
        parse_profile(base.replace('ready = "tcp"', 'ready = "tcp"\nnetwork = "host"'), "/tmp/dev.toml"), "candidate"
    )


@pytest.mark.parametrize(("key", "value"), [("restart", '"on-failure"'), ("memory_limit", '"512m"')])
def test_container_only_device_keys_are_refused_for_a_local_variant(key: str, value: str) -> None:
    base = BASE.replace('ae_title = "DEV"', f'ae_title = "DEV"\n{key} = {value}').replace(
        'command = ["dev-patched", "--port", "{port}"]', 'image = "dev:patched"'
    )
    profile = parse_profile(base, "/tmp/dev.toml")
    check_variant(profile, "candidate")  # a container: the engine applies it
    with pytest.raises(ProfileError, match=rf"/tmp/dev\.toml: device\.{key} = .* variant 'baseline' runs as a local"):
        check_variant(profile, "baseline")
    with pytest.raises(ProfileError, match=r"device\.restart.*'sometimes'"):
        parse_profile(BASE.replace('ae_title = "DEV"', 'ae_title = "DEV"\nrestart = "sometimes"'), "/tmp/dev.toml")


def test_ris_placeholders_need_a_ris_the_run_starts() -> None:
    """{ris.*} has a value only when the run starts the RIS: refused before anything starts, never filled with ""."""
    uses = BASE.replace(
        '"{port}"]\n\n[variants.candidate]', '"{port}", "--ris", "{ris.host}:{ris.port}"]\n\n[variants.candidate]'
    )
    with pytest.raises(ProfileError, match=r"variants\.baseline\.command\[4\]: \{ris\.host\} names the RIS simulator"):
        check_variant(parse_profile(uses, "/tmp/dev.toml"), "baseline")
    check_variant(parse_profile("[simulators.ris]\n" + uses, "/tmp/dev.toml"), "baseline")
    action = '[device.actions.query_worklist]\nkind = "command"\ncommand = ["findscu", "{ris.ae_title}"]\n'
    with pytest.raises(ProfileError, match=r"query_worklist\.command\[1\]: \{ris\.ae_title\} names the RIS"):
        check_actions(_profile(action))
    initiator = BASE.replace('ae_title = "DEV"', 'ae_title = "DEV"\ninitiates = ["mwl"]')
    check_actions(_profile(action, base=initiator))  # a default RIS runs for a worklist querier


def test_the_schema_file_states_the_actions_and_is_current() -> None:
    schema = profile_json_schema()
    action = schema["$defs"]["ActionSpec"]
    assert action["properties"]["deadline"] == {
        "description": action["properties"]["deadline"]["description"],
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 3600,
    }
    prompt = next(rule for rule in action["allOf"] if rule["if"]["properties"]["kind"]["const"] == "prompt")
    assert prompt["then"]["required"] == ["text"]
    assert json.loads((ROOT / "docs" / "profile.schema.json").read_text(encoding="utf-8")) == schema


def test_an_unknown_placeholder_is_refused_before_anything_starts() -> None:
    profile = _profile(
        '[device.actions.acquire]\nkind = "command"\ncommand = ["ctl", "{item.sps_id}", "{itme.key}"]\n\n'
        '[device.actions.reset]\nkind = "http"\nurl = "http://127.0.0.1:{http_port}/"\nbody = {a = ["{nope}"]}\n'
    )
    with pytest.raises(ProfileError) as info:
        check_variant(profile, "baseline")  # what run_variant and run_validation call first
    message = info.value.message
    assert "/tmp/dev.toml: device.actions.acquire.command[2]: unknown placeholder {itme.key}" in message
    assert "device.actions.reset.body.a[0]: unknown placeholder {nope}" in message
    assert "{item.sps_id}" not in message  # an action value a suite passes is known
    assert "{item.key}" in info.value.hint


def test_an_unknown_corpus_item_is_refused_before_anything_starts() -> None:
    profile = _profile(
        '[device.actions.forward]\nkind = "dicom"\nmessage = "C-STORE"\nitems = ["CT-explicit", "CT-nope"]\n'
    )
    with pytest.raises(ProfileError, match=r"device\.actions\.forward\.items: no corpus item 'CT-nope'"):
        check_actions(profile)


def test_prompts_without_a_terminal_fail_before_anything_starts() -> None:
    profile = _profile('[device.actions.scenario]\nkind = "prompt"\ntext = "do it"\n')
    with pytest.raises(ActionError, match=r"operator actions \(scenario\) but patchgate has no terminal") as info:
        check_actions(profile, stdin=io.StringIO(""))
    assert "command/http actions for CI" in info.value.hint


def test_json_body_values_stay_inside_their_strings() -> None:
    spec = _profile(
        '[device.actions.commit]\nkind = "http"\nurl = "http://127.0.0.1:{http_port}/p/{item.sps_id}?x=1"\n'
        'body = {query = {PatientName = "{item.patient_name}", n = 3}, list = ["{item.sps_id}", true]}\n'
    ).device.actions["commit"]
    evil = '", "admin": true, "x": "\\ \n {python}'
    request = render_request(spec, {"http_port": "8042", "item.sps_id": "a/b c?d", "item.patient_name": evil})
    sent = json.loads(json.dumps(request["body"]))  # what the device receives
    assert sent == {"query": {"PatientName": evil, "n": 3}, "list": ["a/b c?d", True]}
    assert request["url"] == "http://127.0.0.1:8042/p/a%2Fb%20c%3Fd?x=1"  # a value cannot add path or query


def test_a_body_leaf_of_exactly_instances_becomes_the_json_array() -> None:
    spec = _profile(
        '[device.actions.commit]\nkind = "http"\nurl = "http://127.0.0.1:{http_port}/storage-commitment"\n'
        'body = {DicomInstances = "{instances}", note = "sent: {instances}"}\n'
    ).device.actions["commit"]
    instances = json.dumps([["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]])
    body = render_request(spec, {"http_port": "8042", "instances": instances})["body"]
    assert body == {"DicomInstances": [["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]], "note": f"sent: {instances}"}


def test_a_value_the_suite_did_not_pass_is_named() -> None:
    spec = _profile('[device.actions.acquire]\nkind = "command"\ncommand = ["ctl", "{item.sps_id}"]\n').device.actions[
        "acquire"
    ]
    with pytest.raises(ActionError, match=r"needs \{item.sps_id\}, which the suite did not pass"):
        render_request(spec, {})


def _item(**markers: tuple[str, ...]) -> Any:
    marks = [SimpleNamespace(name=name, args=args) for name, args in markers.items()]
    return SimpleNamespace(iter_markers=lambda name: [m for m in marks if m.name == name])


def _context(tmp_path: Path, actions: dict[str, Any], initiates: tuple[str, ...] = ()) -> SuiteContext:
    device = Endpoint("DEV", "127.0.0.1", 104)
    return SuiteContext(
        str(tmp_path), device, device, "", "PGMODALITY", ("echo",), 1, initiates=initiates, actions=actions
    )


def test_cases_for_undeclared_roles_and_actions_are_not_applicable(tmp_path: Path) -> None:
    """Like services (PS3.2 conformance statement): what the profile does not declare is not tested."""
    spec = ActionSpec("acquire", "command", command=("x",)).to_json()
    context = _context(tmp_path, {"acquire": spec}, initiates=("store",))
    assert _not_applicable(_item(initiates=("store",), action=("acquire",)), context) == ""
    assert (
        _not_applicable(_item(initiates=("mpps",)), context)
        == "the device's profile does not declare that it initiates 'mpps'"
    )
    assert (
        _not_applicable(_item(action=("acquire", "commit")), context)
        == "the device's profile declares no action 'commit'"
    )
    assert _not_applicable(_item(service=("find",)), context) == "the device's profile does not declare 'find'"


def test_the_suites_wait_for_the_harness_within_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ActionSpec("reset", "command", command=("x",), deadline=0.2)
    monkeypatch.setattr(client_module, "ANSWER_GRACE", 0.1)
    result = ActionClient(_context(tmp_path, {"reset": spec.to_json()}))("reset")  # no harness answers
    assert result.outcome == "error" and "the harness did not answer within 0.3 s" in str(result.detail["error"])
    (request,) = (tmp_path / "actions").glob("*.request.json")
    assert json.loads(request.read_text(encoding="utf-8"))["name"] == "reset"


def test_the_suites_stop_waiting_for_a_harness_that_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A harness killed with SIGKILL never answers: its heartbeat (here removed) ends the wait, not the deadline."""
    monkeypatch.setenv(HEARTBEAT_ENV, str(tmp_path / "heartbeat-of-a-killed-harness"))
    spec = ActionSpec("reset", "command", command=("x",), deadline=60)
    result = ActionClient(_context(tmp_path, {"reset": spec.to_json()}))("reset")
    assert result.outcome == "error" and result.duration < 30
    assert str(result.detail["error"]).startswith("the harness that started this run is gone"), result.detail


def test_the_suites_refuse_values_an_action_does_not_take(tmp_path: Path) -> None:
    client = ActionClient(_context(tmp_path, {"reset": ActionSpec("reset", "command", command=("x",)).to_json()}))
    with pytest.raises(ActionError, match="unknown value"):
        client("reset", {"port": "1"})  # a run value cannot be overridden by a suite


def test_the_summary_is_comparable_and_require_names_the_action() -> None:
    result = ActionResult(
        "acquire", "command", 1.234, "failed", {"exit_code": 3, "output": "12:00:01 boom", "request": {}}
    )
    assert result.summary() == {"outcome": "failed", "exit_code": 3}  # no output, no time, no settle
    with pytest.raises(AssertionError, match=r"device action 'acquire' \(command\) failed: \{'exit_code': 3"):
        result.require()
    assert ActionResult.from_json(json.loads(json.dumps(result.to_json()))) == ActionResult(
        "acquire", "command", 1.234, "failed", result.detail
    )


@pytest.mark.parametrize(
    ("request_text", "says"),
    [
        ('{"name": "start_procedure", "values": {}}', "no command/prompt action named 'start_procedure'"),
        ('{"name": "reset", "values": {"port": "1"}}', "values the harness does not take: port"),
        ('{"name": "reset", "values": ', "JSONDecodeError"),
    ],
)
def test_the_harness_answers_a_bad_request_with_an_error(tmp_path: Path, request_text: str, says: str) -> None:
    run = RunDir(tmp_path)
    run.actions.mkdir()
    run.action_request("1-0001-x").write_text(request_text, encoding="utf-8")
    actions = {
        "reset": ActionSpec("reset", "command", command=("true",)),
        "start_procedure": ActionSpec("start_procedure", "http", url="http://127.0.0.1:1/"),
    }
    broker = ActionBroker(run, actions, {}, (), label="baseline-1", device_workdir=tmp_path)
    broker.serve()
    broker.serve()  # a request is answered once
    broker.close()
    result = ActionResult.from_json(json.loads(run.action_result("1-0001-x").read_text(encoding="utf-8")))
    assert result.outcome == "error" and says in str(result.detail["error"]), result
    assert len(run.read_actions()) == 1


def test_max_rounds_below_min_rounds_and_warm_up_is_refused_before_anything_starts() -> None:
    """max_rounds would stop every metric before it had min_rounds kept rounds: the profile says so, with the key."""
    enabled = BASE + "\n[performance]\nenabled = true\nmin_rounds = 6\nwarmup_rounds = 1\n"
    check_variant(parse_profile(enabled + "max_rounds = 7\n", "/tmp/dev.toml"), "baseline")  # exactly enough
    with pytest.raises(ProfileError, match=r"performance\.max_rounds 6 is less than min_rounds 6 \+ warmup_rounds 1"):
        check_variant(parse_profile(enabled + "max_rounds = 6\n", "/tmp/dev.toml"), "baseline")
    # Off, the phase's keys are not judged: nothing of it runs
    check_variant(parse_profile(enabled.replace("true", "false") + "max_rounds = 6\n", "/tmp/dev.toml"), "baseline")
