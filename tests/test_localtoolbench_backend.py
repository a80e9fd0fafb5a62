"""LocalBackend behaviour: real execution, argument errors as observations, unreliable and dead APIs."""

from __future__ import annotations

import asyncio
import json

import pytest

from toolbench_eval.errors import UserError
from toolbench_eval.localtoolbench.backend import LocalBackend
from toolbench_eval.localtoolbench.database import build_database, connect
from toolbench_eval.localtoolbench.domains import CATALOG
from toolbench_eval.tools.base import (
    MAX_OBSERVATION_LENGTH,
    Status,
    ToolBackend,
    ToolCall,
    render_observation,
)


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    path = build_database(tmp_path_factory.mktemp("db") / "world.sqlite", seed=7, scale=0.3)
    connection = connect(path)
    yield connection
    connection.close()


@pytest.fixture()
def backend(conn):
    return LocalBackend(connection=conn, seed=7)


def call(backend, tool, api, **arguments):
    category = CATALOG.tool_category[tool]
    return backend.call_sync(ToolCall(category, tool, api, arguments))


def test_backend_satisfies_protocol_and_executes_over_the_database(backend, conn):
    assert isinstance(backend, ToolBackend)
    city = conn.execute("SELECT city, temp_c FROM weather ORDER BY city LIMIT 1").fetchone()
    obs = asyncio.run(backend.call(ToolCall("Weather", "WeatherNow", "Current Weather", {"city": city[0]})))
    assert obs.status == Status.OK and obs.error == ""
    assert obs.response["temp_c"] == city[1]
    # Case-insensitive lookup, renamed parameter (ClimaCast calls it `location`).
    obs = call(backend, "ClimaCast", "realtime", location=city[0].upper())
    assert obs.response["city"] == city[0]


@pytest.mark.parametrize("arguments, expected", [
    ({}, "Missing required parameter: city"),
    ({"city": "  "}, "Missing required parameter: city"),
    ({"city": "Paris", "units": "metric"}, "got an unexpected keyword argument 'units'"),
    ({"city": "Paris", "days": "three"}, "Invalid value for 'days': expected a number"),
    ({"city": "Paris", "days": 99}, "must be an integer between 1 and 7"),
    ({"city": ["Paris"]}, "Invalid value for 'city': expected a string"),
])
def test_bad_arguments_give_400_style_observations(backend, arguments, expected):
    obs = call(backend, "WeatherNow", "Daily Forecast", **arguments)
    assert obs.status == Status.BAD_INPUT
    assert expected in obs.response["message"]


def test_every_api_answers_bad_input_without_raising(backend):
    for api in CATALOG.apis.values():
        for arguments in ({}, {"no_such_argument": 1}, {p.name: {"nested": True} for p in api.params}):
            obs = backend.call_sync(ToolCall(api.category, api.tool, api.name, arguments))
            expected = Status.NOT_WORKING if api.binding.dead else Status.BAD_INPUT
            if api.binding.unreliable and obs.status != Status.BAD_INPUT:
                obs = backend.call_sync(ToolCall(api.category, api.tool, api.name, arguments))
            assert obs.status == expected, (api.key, arguments, obs)
            json.dumps(obs.as_dict())  # always serialisable


def test_numeric_strings_are_accepted_like_query_strings(backend):
    assert len(call(backend, "WeatherNow", "Daily Forecast", city="Paris", days="2").response["results"]) == 2


def test_not_found_and_injection_attempts_are_plain_answers(backend, conn):
    obs = call(backend, "GeoAtlas", "Country Details", country="Atlantis")
    assert obs.status == Status.OK and "Country not found" in obs.response["message"]
    before = conn.execute("SELECT COUNT(*) FROM countries").fetchone()[0]
    obs = call(backend, "GeoAtlas", "Country Details", country="x' OR '1'='1")
    assert "Country not found" in obs.response["message"]
    obs = call(backend, "FilmDB", "Search Movies", title="%' ; DROP TABLE movies; --")
    assert obs.response["total"] == 0
    assert conn.execute("SELECT COUNT(*) FROM countries").fetchone()[0] == before


def test_unknown_api_is_an_observation(backend):
    obs = backend.call_sync(ToolCall("Weather", "WeatherNow", "Hourly Forecast", {"city": "Paris"}))
    assert obs.status == Status.NO_SUCH_FUNCTION


def test_pagination_and_long_responses_are_not_truncated_by_the_backend(backend, conn):
    movie = conn.execute("SELECT movie_id FROM movies ORDER BY movie_id LIMIT 1").fetchone()[0]
    page1 = call(backend, "MovieReviewsHub", "Get Reviews", movie_id=movie, limit=2, page=1).response
    page2 = call(backend, "MovieReviewsHub", "Get Reviews", movie_id=movie, limit=2, page=2).response
    assert page1["total"] == page2["total"] == 5
    assert page1["page"] == 1 and page2["page"] == 2 and page1["results"] != page2["results"]
    full = call(backend, "MovieReviewsHub", "Get Reviews", movie_id=movie)
    text = json.dumps(full.as_dict(), ensure_ascii=False)
    assert len(text) > MAX_OBSERVATION_LENGTH  # the backend returns it whole ...
    assert render_observation(full).endswith("...")  # ... and rendering applies the cut


def unreliable_calls():
    for api in CATALOG.apis.values():
        if api.binding.unreliable:
            yield api


def test_unreliable_apis_fail_deterministically_and_recover_on_retry(conn):
    first, second = LocalBackend(connection=conn, seed=7), LocalBackend(connection=conn, seed=7)
    failures = 0
    for api in unreliable_calls():
        for value in ("Paris", "Tokyo", "Lima", "Oslo", "Rome", "Cairo"):
            arguments = {p.name: (value if p.param.type == "STRING" else 1) for p in api.params if p.param.required}
            call_ = ToolCall(api.category, api.tool, api.name, arguments)
            a, b = first.call_sync(call_), second.call_sync(call_)
            assert (a.status, a.error, a.response) == (b.status, b.error, b.response)
            if a.status in (Status.TOO_MANY_REQUESTS, Status.NOT_WORKING, Status.TIMEOUT):
                failures += 1
                assert a.error in ("Too many requests error...", "API not working error...", "Timeout error...")
                retry = first.call_sync(call_)
                assert retry.status not in (Status.TOO_MANY_REQUESTS, Status.NOT_WORKING, Status.TIMEOUT)
    assert failures > 5
    first.reset_attempts()  # a fresh run fails the same calls again


def test_dead_apis_always_fail(backend):
    for _ in range(3):
        obs = call(backend, "ClimaCast", "alerts", location="Paris")
        assert obs.status == Status.NOT_WORKING and obs.error == "API not working error..."


def test_missing_world_directory_names_the_build_command(tmp_path):
    with pytest.raises(UserError, match="toolbench-eval localtoolbench generate"):
        LocalBackend(tmp_path / "nowhere")



def test_trajectory_views_do_not_share_attempts(conn):
    """Concurrent trajectories making the same flaky call each see its first-attempt failure."""
    shared = LocalBackend(connection=conn, seed=7)
    failures = 0
    for api in unreliable_calls():
        for value in ("Paris", "Tokyo", "Lima", "Oslo", "Rome", "Cairo"):
            arguments = {p.name: (value if p.param.type == "STRING" else 1) for p in api.params if p.param.required}
            call_ = ToolCall(api.category, api.tool, api.name, arguments)
            one, two = shared.for_trajectory(), shared.for_trajectory()
            a = one.call_sync(call_)
            assert two.call_sync(call_).status == a.status  # the other trajectory's attempt does not count
            if a.status in (Status.TOO_MANY_REQUESTS, Status.NOT_WORKING, Status.TIMEOUT):
                failures += 1
                assert one.call_sync(call_).status not in (Status.TOO_MANY_REQUESTS, Status.NOT_WORKING, Status.TIMEOUT)
    assert failures > 5
