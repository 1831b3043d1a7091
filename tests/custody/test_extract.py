"""Pulling code, JSON, option letters, numbers and CWE ids out of free-text answers."""

from __future__ import annotations

import ast

from hypothesis import given
from hypothesis import strategies as st

from agents.custody.extract import (
    extract_choice,
    extract_code,
    extract_cwes,
    extract_json,
    extract_number,
    final_answer_candidates,
)

FUNC = "def add(a, b):\n    return a + b"


def test_code_from_python_fence_with_prose_around():
    answer = f"Sure! Here it is:\n\n```python\n{FUNC}\n```\n\nThis adds two numbers."
    assert extract_code(answer) == FUNC


def test_code_longest_of_several_fences_and_untagged_fence():
    usage = "print(add(1, 2))"
    answer = f"```python\n{usage}\n```\nand\n```\n{FUNC}\n```"
    assert extract_code(answer) == FUNC


def test_code_ignores_non_python_fences():
    answer = f"```bash\npip install x\n```\n```py\n{FUNC}\n```"
    assert extract_code(answer) == FUNC


def test_code_unterminated_fence_runs_to_the_end():
    assert extract_code(f"```python\n{FUNC}\n") == FUNC


def test_code_raw_with_leading_and_trailing_prose():
    answer = f"Here is my solution.\n{FUNC}\nIt runs in O(1)."
    assert extract_code(answer) == FUNC


def test_code_raw_indented_after_prose_is_dedented():
    answer = "Fixed version:\n\n    def add(a, b):\n        return a + b\n"
    assert ast.parse(extract_code(answer))


def test_code_plain_code_is_returned_unchanged():
    assert extract_code(FUNC) == FUNC
    assert extract_code("") == ""


def test_json_from_fence_and_from_prose():
    assert extract_json('```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}
    assert extract_json('The answer is {"ok": true} as requested.') == {"ok": True}
    assert extract_json("list: [1, 2, 3] done") == [1, 2, 3]
    assert extract_json('{not json} but then {"x": 1}') == {"x": 1}
    assert extract_json("no json here") is None


def test_choice_letter_forms():
    assert extract_choice("Answer: C", "ABCD") == "C"
    assert extract_choice("The answer is (b).", "ABCD") == "B"
    assert extract_choice("B) Read committed", "ABCD") == "B"
    assert extract_choice("**D**", "ABCD") == "D"
    assert extract_choice("I think it is D because ...", "ABCD") == "D"


def test_choice_ambiguous_or_missing_is_none():
    assert extract_choice("either A or B", "ABCD") is None
    assert extract_choice("no idea", "ABCD") is None
    assert extract_choice("E", "ABCD") is None


def test_number_after_answer_mark_or_last():
    assert extract_number("Answer: 43.2 minutes") == 43.2
    assert extract_number("First 10 then 20, so 30") == 30
    assert extract_number("Answer: 1,000 users, not 5") == 1000
    assert extract_number("about 6.4e1%") == 64.0
    assert extract_number("-3.5") == -3.5
    assert extract_number("none") is None


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).map(lambda x: round(x, 4)))
def test_number_round_trips_any_printed_float(value):
    assert extract_number(f"The result is {value!r}.") == value


def test_cwe_ids_in_order_of_first_mention():
    assert extract_cwes("CWE-89, also cwe 20 and CWE-89 again; CWE_79") == [89, 20, 79]
    assert extract_cwes("SQL injection") == []


def test_final_answer_candidates():
    cands = final_answer_candidates("Let me think.\nAnswer: **PUT**\n")
    assert "PUT" in cands
    assert final_answer_candidates("x\n`len`")[0] == "len"
