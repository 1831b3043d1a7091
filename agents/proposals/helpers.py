"""Helper tasks an agent can propose, each with its tests written before the code.

A task is a function signature, a docstring with examples, and a test module: the spec the
agent's model must meet. The tests are fixed when the task is chosen — before the model writes
a line — and travel in the proposal next to the model's code; the experiment runs them in the
sandbox and checks that they executed the model's function (an import is not enough).
Tasks are grouped by the custody category they train, so an agent whose custody record names a
weak category proposes a helper of that category (:mod:`agents.proposals.targets`).

The tests import the module through the ``{module}`` placeholder (the dotted name of the file
the proposal creates) and use plain ``assert`` and the standard library only (the sandbox runs
``python -I -S``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HELPERS", "HelperTask", "helpers_for"]


@dataclass(frozen=True, slots=True)
class HelperTask:
    """One task: ``slug`` (the function's name), the custody ``category`` it trains, the
    ``signature`` line, the ``doc`` (docstring body, examples included) and ``tests`` (a test
    module's source with a ``{module}`` placeholder)."""

    slug: str
    category: str
    signature: str
    doc: str
    tests: str

    def test_source(self, module: str) -> str:
        """The tests, importing ``module`` (a dotted name)."""
        return self.tests.replace("{module}", module)


HELPERS: tuple[HelperTask, ...] = (
    HelperTask(
        "slugify", "code_quality", "def slugify(title: str) -> str:",
        "Turn a title into a lowercase URL slug: runs of characters that are not letters or "
        "digits become one '-', with no '-' at either end.\n"
        "slugify('Hello, World!') == 'hello-world'",
        "from {module} import slugify\n\n\n"
        "def test_words_are_joined_by_dashes():\n"
        "    assert slugify('Hello, World!') == 'hello-world'\n\n\n"
        "def test_runs_and_ends():\n"
        "    assert slugify('  Lvl UP -- Streams 2 ') == 'lvl-up-streams-2'\n"
        "    assert slugify('') == ''\n"),
    HelperTask(
        "chunks", "code_quality", "def chunks(items: list, n: int) -> list:",
        "Split items into consecutive lists of at most n items, in order.\n"
        "chunks([1, 2, 3], 2) == [[1, 2], [3]]",
        "from {module} import chunks\n\n\n"
        "def test_last_chunk_is_shorter():\n"
        "    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]\n\n\n"
        "def test_edges():\n"
        "    assert chunks([], 3) == []\n"
        "    assert chunks([1, 2], 5) == [[1, 2]]\n"),
    HelperTask(
        "safe_join", "security_awareness", "def safe_join(base: str, name: str) -> str:",
        "Join a relative file name to the directory base; raise ValueError when the result "
        "would be outside base (an absolute name or '..' escaping it).\n"
        "safe_join('/srv/data', 'a/b.txt') == '/srv/data/a/b.txt'",
        "from {module} import safe_join\n\n\n"
        "def test_joins_inside():\n"
        "    assert safe_join('/srv/data', 'a/b.txt') == '/srv/data/a/b.txt'\n\n\n"
        "def test_refuses_escapes():\n"
        "    for bad in ('../etc/passwd', '/etc/passwd', 'a/../../x'):\n"
        "        try:\n"
        "            safe_join('/srv/data', bad)\n"
        "        except ValueError:\n"
        "            continue\n"
        "        raise AssertionError(f'{bad!r} was joined')\n"),
    HelperTask(
        "mask_secret", "security_awareness", "def mask_secret(value: str) -> str:",
        "Mask a secret for logs: keep its last 4 characters and replace the others by '*'; "
        "values of 4 characters or fewer are fully masked.\n"
        "mask_secret('hunter2-key') == '*******-key'",
        "from {module} import mask_secret\n\n\n"
        "def test_keeps_the_last_four():\n"
        "    assert mask_secret('hunter2-key') == '*******-key'\n\n\n"
        "def test_short_values_are_hidden():\n"
        "    assert mask_secret('abcd') == '****'\n"
        "    assert mask_secret('') == ''\n"),
    HelperTask(
        "dedupe", "performance_optimization", "def dedupe(items: list) -> list:",
        "The items without repeats, first occurrence kept, in order, in linear time.\n"
        "dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]",
        "from {module} import dedupe\n\n\n"
        "def test_order_is_kept():\n"
        "    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]\n\n\n"
        "def test_large_input():\n"
        "    assert dedupe(list(range(20000)) * 2) == list(range(20000))\n"),
    HelperTask(
        "word_count", "knowledge_verification", "def word_count(text: str) -> int:",
        "The number of words in text; words are separated by whitespace.\n"
        "word_count('the quick  brown fox') == 4",
        "from {module} import word_count\n\n\n"
        "def test_counts_words():\n"
        "    assert word_count('the quick  brown fox') == 4\n\n\n"
        "def test_blank():\n"
        "    assert word_count('  \\n\\t ') == 0\n"),
)


def helpers_for(category: str | None) -> list[HelperTask]:
    """The tasks of ``category`` (None or a category without tasks: none)."""
    return [h for h in HELPERS if h.category == category]
