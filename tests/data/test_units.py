"""JSONL parsing and trajectory handling (extraction rules, canonical form)."""
from __future__ import annotations

import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.data.jsonl import parse_jsonl
from trainhouse.data.trajectories import canonical, content_hash, extract_examples
from trainhouse.v1 import trajectory_pb2


def test_jsonl_reports_every_bad_line_by_number():
    content = b'{"input": "a", "expected_output": "x"}\n\n{"input": "b"}\nnot json\n' \
              b'{"input": "c", "expectedOutput": "y", "weight": 0}\n{"input": "d", "expected_output": "z"}\n'
    with pytest.raises(InvalidArgument) as err:
        parse_jsonl(content)
    assert err.value.field == "line 3"
    assert err.value.metadata == {"lines": "3,4,5", "error_count": "3"}
    assert "line 3: expected_output" in err.value.message and "line 4: not valid JSON" in err.value.message
    assert "line 5: weight" in err.value.message


def test_jsonl_accepts_both_spellings_and_skips_blank_lines():
    examples, lines = parse_jsonl('\ufeff{"input": "a", "expected_output": "x", "level": 2}\n\n'
                                  '{"input": "b", "expectedOutput": "y", "difficulty": 3, "metadata": {"k": 1}}\r\n'
                                  .encode())
    assert lines == 2 and [(e.input, e.expected_output, e.level) for e in examples] == [("a", "x", 2), ("b", "y", 3)]
    with pytest.raises(InvalidArgument) as err:
        parse_jsonl(b"\n \n")
    assert err.value.field == "content"
    with pytest.raises(InvalidArgument) as err:
        parse_jsonl(b"\xff\xfe")
    assert err.value.field == "content"


def runtime_trajectory(**fields) -> trajectory_pb2.Trajectory:
    t = trajectory_pb2.Trajectory(**{"agent_id": "agent-1", "source": "chat",
                                     "status": trajectory_pb2.TRAJECTORY_STATUS_COMPLETED, **fields})
    t.llm_calls.add(model="m", prompt="What's the weather in Paris?", response="", tool_name="weather_lookup")
    call = t.llm_calls.add(model="m", response="It is sunny in Paris.")
    call.messages.add(role="system", content="be brief")
    call.messages.add(role="user", content="what's the weather like?")
    call.messages.add(role="assistant", content="checking")
    t.llm_calls.add(model="m", prompt="no answer recorded")   # nothing to learn
    return t


def test_examples_from_llm_calls():
    examples = extract_examples(runtime_trajectory(trajectory_id="t1"))
    assert [(e["input"], e["expected_output"]) for e in examples] == [
        ("What's the weather in Paris?", "weather_lookup"), ("what's the weather like?", "It is sunny in Paris.")]
    assert examples[1]["metadata"] == {"trajectory_id": "t1", "agent_id": "agent-1", "source": "chat",
                                       "llm_call": 1, "model": "m"}
    failed = runtime_trajectory(status=trajectory_pb2.TRAJECTORY_STATUS_FAILED)
    assert extract_examples(failed) == []


def grpo_trajectory(success: bool) -> trajectory_pb2.Trajectory:
    t = trajectory_pb2.Trajectory(trajectory_id="g1", job_id="job-1", query="sort a list", success=success,
                                  reward=1.0 if success else 0.0)
    for tool in ("search_docs", "code_generator", "finish"):
        t.steps.add().action.update({"tool": tool, "params": {"q": 1}})
    t.steps.add().action.update({"params": "no tool"})
    return t


def test_examples_from_grpo_steps_of_successful_trajectories():
    examples = extract_examples(grpo_trajectory(True))
    assert [(e["input"], e["expected_output"]) for e in examples] == [
        ("sort a list", "search_docs"), ("sort a list\nprevious: search_docs", "code_generator"),
        ("sort a list\nprevious: search_docs, code_generator", "finish")]
    assert extract_examples(grpo_trajectory(False)) == []


def test_canonical_form_fills_ids_clears_output_only_fields_and_validates():
    t = runtime_trajectory(llm_call_count=99)
    c = canonical(t, "trajectories[0]")
    assert c.trajectory_id and c.llm_call_count == 0 and not t.trajectory_id
    assert content_hash(canonical(runtime_trajectory(trajectory_id="x", step_count=5), "t")) == \
        content_hash(canonical(runtime_trajectory(trajectory_id="x"), "t"))
    bad = runtime_trajectory(trajectory_id="bad id!")
    with pytest.raises(InvalidArgument) as err:
        canonical(bad, "trajectories[3]")
    assert err.value.field == "trajectories[3].trajectory_id"
    bad = runtime_trajectory()
    bad.llm_calls[1].prompt_tokens = -1
    with pytest.raises(InvalidArgument) as err:
        canonical(bad, "trajectories[0]")
    assert err.value.field == "trajectories[0].llm_calls[1].prompt_tokens"
    bad = grpo_trajectory(True)
    bad.steps[0].action.update({"tool": 3})
    with pytest.raises(InvalidArgument) as err:
        canonical(bad, "trajectories[0]")
    assert err.value.field == "trajectories[0].steps[0].action.tool"
    bad = grpo_trajectory(True)
    bad.start_time.FromSeconds(100)
    bad.end_time.FromSeconds(50)
    with pytest.raises(InvalidArgument) as err:
        canonical(bad, "t")
    assert err.value.field == "t.end_time"
