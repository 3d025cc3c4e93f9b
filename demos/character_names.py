"""Characters named in a message so that every one can be seen: a visible one as itself, quoted; one that draws
nothing on its own (a variation selector after an emoji, a combining accent, a space or control character) by its
code point and Unicode name, as 'U+FE0F VARIATION SELECTOR-16'."""

import unicodedata

# Marks, separators, controls and format characters: each draws nothing, or nothing readable, in quotes.
INVISIBLE_CATEGORIES = ("M", "Z", "C")
SHOWN = 10


def character_name(char: str) -> str:
    if unicodedata.category(char).startswith(INVISIBLE_CATEGORIES):
        name = unicodedata.name(char, "")
        return f"U+{ord(char):04X}" + (f" {name}" if name else "")
    return repr(char)


def character_names(chars: list[str], shown: int = SHOWN) -> str:
    """The first ``shown`` of ``chars``, named and joined, then how many more there are."""
    names = ", ".join(character_name(char) for char in chars[:shown])
    return names + (f" and {len(chars) - shown} more" if len(chars) > shown else "")
