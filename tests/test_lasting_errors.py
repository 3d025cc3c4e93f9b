"""A refused check's message, kept for its browser session until the page shows it in the report area."""

from types import SimpleNamespace

import pytest

from demos.errors import InvalidInput
from demos.lasting_errors import NOT_CHECKED, LastingErrors


def request(session: str):
    return SimpleNamespace(session_hash=session)


def refuse(errors: LastingErrors, session: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message), errors.kept_for(request(session)):
        raise InvalidInput(message)  # still raised: the API client gets it


def test_the_message_is_shown_once_to_its_own_session():
    errors = LastingErrors()
    refuse(errors, "a", "garbage.pt is not a PyTorch checkpoint")
    assert errors.shown(request("b")) == NOT_CHECKED
    assert errors.shown(request("a")) == f"{NOT_CHECKED}\n\ngarbage.pt is not a PyTorch checkpoint"
    assert errors.shown(request("a")) == NOT_CHECKED  # forgotten once shown


def test_sessions_that_never_show_their_message_leave_a_bounded_number():
    errors = LastingErrors(remembered=3)
    for k in range(10):
        refuse(errors, f"client-{k}", f"message {k}")
    assert errors.shown(request("client-0")) == NOT_CHECKED
    assert errors.shown(request("client-9")).endswith("message 9")


def test_other_errors_pass_untouched():
    errors = LastingErrors()
    with pytest.raises(KeyError), errors.kept_for(request("a")):
        raise KeyError("a bug, not a refusal")
    assert errors.shown(request("a")) == NOT_CHECKED
