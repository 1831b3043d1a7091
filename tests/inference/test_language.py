"""The answer-language check: lingua's verdicts (the real detector), and the service's
retry-once-then-fail with a scripted engine."""

from __future__ import annotations

import pytest

from inference.budget import BudgetLedger, BudgetPolicy
from inference.dispatch import Dispatcher
from inference.language import LanguageCheck
from inference.pricing import PriceTable
from inference.router import RouterSettings, build_router_plan
from inference.safety import SafetyFilter
from inference.service import InferenceService
from inference.types import Message
from tests.inference.conftest import FakeEngine, make_request

ENGLISH = "The weather is lovely today and we are going for a long walk in the park."
FRENCH = "Il fait très beau aujourd'hui et nous allons faire une longue promenade au parc."


@pytest.fixture(scope="module")
def check() -> LanguageCheck:
    return LanguageCheck()


def test_verdicts(check):
    assert check.verdict(FRENCH, "fr").ok and check.verdict(FRENCH, "fr-CA").ok
    wrong = check.verdict(ENGLISH, "fr")
    assert not wrong.ok and wrong.detected == "en" and wrong.confidence < 0.3
    assert check.verdict("42", "fr").ok  # too short to judge
    assert check.verdict(ENGLISH, "sw").ok  # not one of the twelve: not checked


def _service(engine, check) -> InferenceService:
    plan = build_router_plan(RouterSettings(), {})
    return InferenceService(dispatcher=Dispatcher(plan=plan, engine=engine, cloud=None),
                            prices=PriceTable(), ledger=BudgetLedger(BudgetPolicy()),
                            safety=SafetyFilter(), cache=None, language=check)


def _instructed(request) -> bool:
    return any(m.role == "system" and "French" in m.content for m in request.messages)


async def test_a_wrong_language_is_retried_once_with_an_instruction(check):
    engine = FakeEngine(lambda request, _g: (FRENCH if _instructed(request) else ENGLISH,
                                             "stop"))
    response = await _service(engine, check).handle(
        make_request("Décris la météo.", language="fr", check_language=True))
    assert response.error is None and response.text == FRENCH
    assert len(engine.calls) == 2 and not _instructed(engine.calls[0])
    assert engine.calls[1].messages[0] == Message(role="system",
                                                  content="Answer only in French.")
    one = len(ENGLISH.split()) + len(FRENCH.split())
    assert response.completion_tokens == len(FRENCH.split())  # the answer's own tokens
    assert one > response.completion_tokens


async def test_still_wrong_after_the_retry_fails_with_language_mismatch(check):
    engine = FakeEngine(lambda _r, _g: (ENGLISH, "stop"))
    response = await _service(engine, check).handle(
        make_request("Décris la météo.", language="fr", check_language=True))
    assert response.error is not None and response.error.code == "language_mismatch"
    assert response.text is None and len(engine.calls) == 2


async def test_unchecked_and_streamed_requests_are_not_retried(check):
    engine = FakeEngine(lambda _r, _g: (ENGLISH, "stop"))
    service = _service(engine, check)
    plain = await service.handle(make_request("x", language="fr"))  # check_language off
    assert plain.error is None and len(engine.calls) == 1
    streamed = await service.handle(
        make_request("x", request_id="r-2", language="fr", check_language=True, stream=True),
        on_token=lambda _t: None)
    assert streamed.error.code == "language_mismatch" and len(engine.calls) == 2
