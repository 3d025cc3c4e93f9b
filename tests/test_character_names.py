"""Characters named in messages: visible ones quoted, those that draw nothing by code point and name."""

import pytest

from demos.character_names import character_name, character_names


@pytest.mark.parametrize(("char", "name"), [
    ("é", "'é'"), ("☃", "'☃'"),
    ("\ufe0f", "U+FE0F VARIATION SELECTOR-16"),  # after an emoji
    ("\u0301", "U+0301 COMBINING ACUTE ACCENT"),
    ("\u200b", "U+200B ZERO WIDTH SPACE"),
    ("\u00a0", "U+00A0 NO-BREAK SPACE"),
    ("\x07", "U+0007"),  # a control character has no Unicode name
])
def test_each_character_is_named_so_that_it_can_be_seen(char, name):
    assert character_name(char) == name


def test_a_long_list_is_cut_with_how_many_more():
    assert character_names(list("abcdefghijkl")) == "'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j' and 2 more"
