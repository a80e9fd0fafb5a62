"""Name mangling rules, each with its edge cases (StableToolBench `standardize` / `change_name`)."""

from __future__ import annotations

import pytest

from toolbench_eval.benchmark.naming import (
    MAX_FUNCTION_NAME_LENGTH,
    RESERVED_NAMES,
    change_name,
    function_name,
    parameter_name,
    standardize,
    standardize_category,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Random Word API", "random_word_api"),
        (
            "Get Word by Length & Start",
            "get_word_by_length_start",
        ),  # runs of replaced chars collapse to one `_`
        ("__Weather  API (v2)__", "weather_api_v2"),  # leading/trailing `_` stripped
        ("UPPER lower", "upper_lower"),  # lowercased
        ("a^b", "a^b"),  # upstream quirk: `^` sits inside the character class and survives
        ("^^x^^", "^^x^^"),
        ("2 Factor Auth", "get_2_factor_auth"),  # digit start -> get_ prefix
        ("  9gag  ", "get_9gag"),  # prefix applied after stripping
        ("_1st", "get_1st"),
        ("天气 API", "天气_api"),  # CJK ideographs (U+4E00..U+9FA5) kept
        ("東京Weather", "東京weather"),
        ("café", "caf"),  # other non-ASCII letters become `_` (then stripped)
        ("naïve name", "na_ve_name"),
        ("", ""),
        ("!!!", ""),  # everything replaced, then stripped to nothing
        ("a--b__c", "a_b_c"),
        ("x.y/z", "x_y_z"),
    ],
)
def test_standardize(raw, expected):
    assert standardize(raw) == expected


def test_standardize_is_idempotent_on_its_output():
    for raw in ["Get Word by Length & Start", "2 Factor Auth", "天气 API", "a^b"]:
        once = standardize(raw)
        assert standardize(once) == once


@pytest.mark.parametrize("word", sorted(RESERVED_NAMES))
def test_change_name_prefixes_reserved_words(word):
    assert change_name(word) == f"is_{word}"


@pytest.mark.parametrize("word", ["ids", "From", "identity", "classes", "is_id", ""])
def test_change_name_leaves_other_names(word):
    assert change_name(word) == word


def test_reserved_words_are_exactly_upstreams():
    assert RESERVED_NAMES == {"from", "class", "return", "false", "true", "id", "and"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ID", "is_id"),
        ("From", "is_from"),
        ("Start Date", "start_date"),
        ("return", "is_return"),
        ("1x", "get_1x"),
    ],
)
def test_parameter_name_standardizes_then_renames(raw, expected):
    assert parameter_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Artificial Intelligence/Machine Learning", "Artificial_Intelligence_Machine_Learning"),
        ("Data, Video", "Data_Video"),  # ", " -> "__" -> "_"
        ("Data", "Data"),  # case kept
        ("a , b", "a__b"),  # upstream replaces "__" once, non-overlapping: "___" -> "__"
    ],
)
def test_standardize_category(raw, expected):
    assert standardize_category(raw) == expected


def test_function_name_joins_with_for():
    assert function_name("Songkick concert", "theclique") == "songkick_concert_for_theclique"


def test_function_name_applies_change_name_to_the_api_part():
    assert function_name("id", "users") == "is_id_for_users"
    assert function_name("From", "x") == "is_from_for_x"


def test_function_name_at_64_is_kept_whole():
    name = function_name("a" * (64 - len("_for_tool")), "tool")
    assert len(name) == 64
    assert name.startswith("aaa")


def test_function_name_keeps_the_last_64_characters():
    api = "popular sites for query with a really long descriptive api name here"
    full = f"{standardize(api)}_for_keyword_analysis"
    name = function_name(api, "keyword_analysis")
    assert len(full) > MAX_FUNCTION_NAME_LENGTH
    assert name == full[-64:]
    assert name.endswith("_for_keyword_analysis")  # the tool suffix survives, the API prefix is lost
    assert not name.startswith("popular")


def test_function_name_of_unnameable_api():
    assert function_name("!!!", "tool") == "_for_tool"


def test_docstring_examples():
    import doctest

    from toolbench_eval.benchmark import naming

    result = doctest.testmod(naming)
    assert result.attempted > 0 and result.failed == 0
