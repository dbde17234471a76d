"""exception.values read back from real ``traceback.format_exception`` text."""

from __future__ import annotations

import builtins
import json
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version
from sentry_relay import StoreNormalizer

from otel_sentry_biz.sentry.stacktrace import MAX_EXCEPTIONS, MAX_FRAMES, exception_values
from tests.relay_oracle import meta_errors

EXCEPTION_GROUP = getattr(builtins, "ExceptionGroup", None)


def _text_of(function) -> tuple[str, str, str]:
    """(exception.type, exception.message, exception.stacktrace) as the OTel SDK records them."""
    try:
        function()
    except BaseException as exc:  # whatever the function raised is what OTel would record
        module = type(exc).__module__
        qualname = type(exc).__qualname__
        exc_type = qualname if module == "builtins" else f"{module}.{qualname}"
        text = traceback.format_exception(type(exc), exc, exc.__traceback__)  # 3.9 signature
        return exc_type, str(exc), "".join(text)
    raise AssertionError("expected an exception")


def _lookup():
    table = {"x": {}}
    return table["x"]["missing"]


def _raise_from():
    try:
        _lookup()
    except KeyError as exc:
        raise RuntimeError("lookup failed\nsecond line") from exc


def _raise_during_handling():
    try:
        _lookup()
    except KeyError:
        return 1 / 0


def _frames(value: dict) -> list[dict]:
    return value.get("stacktrace", {}).get("frames", [])


def test_explicit_cause_comes_first_and_raised_exception_last():
    values = exception_values(*_text_of(_raise_from))
    assert [v["type"] for v in values] == ["KeyError", "RuntimeError"]
    assert values[0]["value"] == "'missing'"
    assert values[1]["value"] == "lookup failed\nsecond line"


def test_frames_are_oldest_first_with_source_lines_not_carets():
    cause = exception_values(*_text_of(_raise_from))[0]
    frames = _frames(cause)
    assert [f["function"] for f in frames] == ["_raise_from", "_lookup"]
    assert frames[-1]["context_line"] == 'return table["x"]["missing"]'
    assert all(set(f["context_line"]) - set("~^ ") for f in frames)
    assert all(f["abs_path"] == __file__ and f["lineno"] > 0 for f in frames)


def test_implicit_context_is_chained_too():
    values = exception_values(*_text_of(_raise_during_handling))
    assert [v["type"] for v in values] == ["KeyError", "ZeroDivisionError"]
    assert _frames(values[1])[-1]["function"] == "_raise_during_handling"


def test_test_code_is_in_app_and_gets_a_module():
    frame = _frames(exception_values(*_text_of(_lookup))[0])[-1]
    assert frame["in_app"] is True
    assert frame["module"].endswith("test_stacktrace")
    assert frame["filename"].endswith("test_stacktrace.py")


def test_stdlib_and_site_packages_frames_are_not_in_app():
    values = exception_values(*_text_of(lambda: json.loads("{")))
    stdlib = [f for f in _frames(values[-1]) if f["abs_path"].endswith("decoder.py")]
    assert stdlib and not any(f["in_app"] for f in stdlib)
    assert stdlib[0]["module"] == "json.decoder"
    assert stdlib[0]["filename"] == "json/decoder.py"
    values = exception_values(*_text_of(lambda: Version("not a version")))
    third_party = [f for f in _frames(values[-1]) if "site-packages" in f["abs_path"]]
    assert third_party and not any(f["in_app"] for f in third_party)
    assert third_party[0]["module"].startswith("packaging.")


def test_dotted_type_gives_module_and_short_type():
    values = exception_values("requests.exceptions.ConnectionError", "refused", None)
    assert values == [
        {"type": "ConnectionError", "value": "refused", "module": "requests.exceptions"}
    ]


def test_unqualified_type_takes_the_module_from_the_traceback():
    _, message, text = _text_of(lambda: json.loads("{"))
    last = exception_values("JSONDecodeError", message, text)[-1]
    assert (last["module"], last["type"]) == ("json.decoder", "JSONDecodeError")


def test_frames_of_exec_strings_are_in_app_without_source():
    def run():
        exec(compile("def g():\n    raise ValueError('in string')\ng()", "<string>", "exec"))

    frames = _frames(exception_values(*_text_of(run))[-1])
    inner = [f for f in frames if f["abs_path"] == "<string>"]
    assert [f["function"] for f in inner] == ["<module>", "g"]
    assert all(f["in_app"] and f["filename"] == "<string>" for f in inner)
    assert all("context_line" not in f for f in inner)


def test_syntax_error_frame_without_function_is_kept():
    values = exception_values(*_text_of(lambda: compile("x = (1 +\n 2))", "bad.py", "exec")))
    frames = _frames(values[-1])
    assert frames[-1]["abs_path"] == "bad.py" and "function" not in frames[-1]
    assert values[-1]["type"] == "SyntaxError"


@pytest.mark.skipif(EXCEPTION_GROUP is None, reason="exception groups need Python 3.11")
def test_exception_group_keeps_the_group_and_skips_its_members():
    def run():
        try:
            raise EXCEPTION_GROUP("eg", [ValueError("a"), TypeError("b")])
        except Exception as group:
            raise KeyError("after") from group

    values = exception_values(*_text_of(run))
    assert [v["type"] for v in values] == ["ExceptionGroup", "KeyError"]
    assert values[0]["value"] == "eg (2 sub-exceptions)"
    assert _frames(values[0])[0]["function"] == "run"


def test_message_quoting_a_remote_traceback_is_not_split():
    message = 'worker failed\n"""\nTraceback (most recent call last):\n  File "w.py", line 1\n"""'
    values = exception_values(*_text_of(lambda: (_ for _ in ()).throw(RuntimeError(message))))
    assert len(values) == 1
    assert values[0]["value"] == message


def test_recursion_keeps_first_and_last_frames_within_relays_limit():
    lines = ["Traceback (most recent call last):"]
    for number in range(1000):
        lines += [f'  File "/app/deep.py", line {number + 1}, in f{number}', "    f()"]
    lines += ["  [Previous line repeated 996 more times]", "RecursionError: too deep"]
    frames = _frames(exception_values("RecursionError", "too deep", "\n".join(lines))[0])
    assert len(frames) == MAX_FRAMES
    assert frames[0]["function"] == "f0" and frames[-1]["function"] == "f999"
    assert frames[MAX_FRAMES // 2 - 1]["function"] == f"f{MAX_FRAMES // 2 - 1}"
    assert frames[MAX_FRAMES // 2]["function"] == f"f{1000 - MAX_FRAMES // 2}"


def test_long_chain_keeps_the_most_recent_exceptions():
    separator = "\nThe above exception was the direct cause of the following exception:\n\n"
    blocks = [
        f'Traceback (most recent call last):\n  File "/a.py", line {i + 1}, in f\nE{i}: m'
        for i in range(100)
    ]
    values = exception_values("E99", "m", separator.join(blocks))
    assert len(values) == MAX_EXCEPTIONS
    assert values[-1]["type"] == "E99" and values[0]["type"] == f"E{100 - MAX_EXCEPTIONS}"


def test_cause_printed_without_traceback_is_kept():
    text = (
        "ValueError: never raised\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/app/x.py", line 3, in <module>\n'
        "    raise RuntimeError('r') from ValueError('never raised')\n"
        "RuntimeError: r\n"
    )
    values = exception_values("RuntimeError", "r", text)
    assert [(v["type"], v["value"]) for v in values] == [
        ("ValueError", "never raised"),
        ("RuntimeError", "r"),
    ]
    assert "stacktrace" not in values[0]


@pytest.mark.parametrize(
    "text",
    ["", "segfault at 0x0", "java.lang.NullPointerException\n\tat Foo.bar(Foo.java:1)", "\x00\n"],
)
def test_text_that_is_not_a_python_traceback_gives_one_value_without_frames(text):
    values = exception_values("NullPointerException", "boom", text)
    assert len(values) == 1
    assert (values[0]["type"], values[0]["value"]) == ("NullPointerException", "boom")
    assert "stacktrace" not in values[0]


def test_missing_type_and_message_still_give_a_value():
    assert exception_values("", "", None) == [{"type": "Exception", "value": ""}]


TRACEBACK_PIECES = st.sampled_from(
    [
        "Traceback (most recent call last):",
        "  + Exception Group Traceback (most recent call last):",
        '  |   File "/a.py", line 3, in f',
        '  File "/a.py", line 1, in <module>',
        '  File "<frozen importlib._bootstrap>", line 99999999999, in x',
        "    ~~~^^^",
        "    return f()",
        "  [Previous line repeated 3 more times]",
        "The above exception was the direct cause of the following exception:",
        "During handling of the above exception, another exception occurred:",
        "ValueError: x",
        "a.b.<locals>.E: y",
        "  +-+---------------- 1 ----------------",
        "    | TypeError: b",
        "",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TRACEBACK_PIECES | st.text(max_size=40), max_size=40), st.text(max_size=20))
def test_arbitrary_text_never_raises(pieces, message):
    values = exception_values("pkg.Err", message, "\n".join(pieces))
    assert values and values[-1]["type"] == "Err" and values[-1]["module"] == "pkg"
    for value in values:
        assert isinstance(value["type"], str) and isinstance(value["value"], str)
        assert len(_frames(value)) <= MAX_FRAMES


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(), st.text())
def test_arbitrary_strings_never_raise(exc_type, message, text):
    assert exception_values(exc_type, message, text)


def test_relay_accepts_the_values_unchanged():
    values = exception_values(*_text_of(_raise_from))
    values[-1]["mechanism"] = {"type": "otel", "handled": False}
    event = {"event_id": "a" * 32, "platform": "python", "exception": {"values": values}}
    normalized = StoreNormalizer(enable_trimming=True).normalize_event(event)
    assert not meta_errors(normalized)
    frames = normalized["exception"]["values"][0]["stacktrace"]["frames"]
    assert [f["function"] for f in frames] == ["_raise_from", "_lookup"]
