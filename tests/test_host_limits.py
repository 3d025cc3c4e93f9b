"""The limits a host sets from the environment: read at start-up, today's values by default, bad values refused."""

import pytest

import app
from demos.host_limits import HostLimitError, read_host_limits
from demos.uploads import UPLOADS
from tiny_data import python_env, run_module


def test_unset_or_blank_variables_keep_todays_limits():
    assert read_host_limits(app.DEFAULT_LIMITS, {}) == app.DEFAULT_LIMITS
    assert read_host_limits(app.DEFAULT_LIMITS, {"HW3_QUEUE_SIZE": " "}) == app.DEFAULT_LIMITS
    assert (app.DEFAULT_LIMITS.max_alexnets, app.DEFAULT_LIMITS.concurrency, app.DEFAULT_LIMITS.queue_size) == (2, 2, 32)


def test_each_variable_sets_its_limit():
    environ = {"HW3_MAX_ALEXNETS": "4", "HW3_MAX_TEXT_MODELS": "20", "HW3_CONCURRENCY_LIMIT": "6",
               "HW3_QUEUE_SIZE": "100"}
    limits = read_host_limits(app.DEFAULT_LIMITS, environ)
    assert (limits.max_alexnets, limits.max_text_models, limits.concurrency, limits.queue_size) == (4, 20, 6, 100)


@pytest.mark.parametrize("value", ["0", "-1", "two", "2.5", "1e3", "²"])
def test_a_value_that_is_not_a_whole_number_of_at_least_one_is_refused_by_name(value):
    with pytest.raises(HostLimitError, match=f"HW3_MAX_ALEXNETS={value!r}.*whole number of at least 1 \\(default 2\\)"):
        read_host_limits(app.DEFAULT_LIMITS, {"HW3_MAX_ALEXNETS": value})


def test_the_app_serves_under_the_hosts_limits(checkpoints, monkeypatch):
    monkeypatch.setenv("HW3_MAX_ALEXNETS", "3")
    monkeypatch.setenv("HW3_QUEUE_SIZE", "50")
    monkeypatch.setenv("HW3_CONCURRENCY_LIMIT", "4")
    try:
        demo = app.build_app(checkpoints)
        assert UPLOADS.limits == {True: 3, False: app.DEFAULT_LIMITS.max_text_models}
        assert (demo._queue.max_size, demo._queue.default_concurrency_limit) == (50, 4)
    finally:
        UPLOADS.resize(app.DEFAULT_LIMITS.max_alexnets, app.DEFAULT_LIMITS.max_text_models)


def test_a_bad_limit_stops_the_app_at_start_up_with_a_message():
    result = run_module("app", env=python_env(HW3_QUEUE_SIZE="lots"), timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip() == ("error: HW3_QUEUE_SIZE='lots' is not a limit: give a whole number of at least 1 "
                                     "(default 32), or unset it.")
