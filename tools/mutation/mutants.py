"""Mutant generation: token-level operators for Python and for Lua.

Python is tokenised with :mod:`tokenize` (comments, docstrings and f-string text are
never touched); a string token holding Lua (it calls ``redis.call``) is mutated with the
Lua operators. Lua files are tokenised by a small scanner that skips comments and
string literals. Each mutant changes one token.
"""

from __future__ import annotations

import dataclasses
import io
import re
import token
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

# operator → its replacements (each one mutant)
PY_OPS: dict[str, tuple[str, ...]] = {
    "<": ("<=",),
    "<=": ("<",),
    ">": (">=",),
    ">=": (">",),
    "==": ("!=",),
    "!=": ("==",),
    "+": ("-",),
    "-": ("+",),
    "*": ("/",),
    "/": ("*",),
    "//": ("/",),
    "and": ("or",),
    "or": ("and",),
    "True": ("False",),
    "False": ("True",),
    "is": ("is not",),
    "in": ("not in",),
    "not": ("",),
    "min": ("max",),
    "max": ("min",),
    "break": ("continue",),
    "continue": ("break",),
}
LUA_OPS: dict[str, tuple[str, ...]] = {
    "<": ("<=",),
    "<=": ("<",),
    ">": (">=",),
    ">=": (">",),
    "==": ("~=",),
    "~=": ("==",),
    "+": ("-",),
    "-": ("+",),
    "*": ("/",),
    "and": ("or",),
    "or": ("and",),
    "not": ("",),
    "true": ("false",),
    "false": ("true",),
    "math.max": ("math.min",),
    "math.min": ("math.max",),
}
_LUA_TOKEN = re.compile(
    r"--[^\n]*"  # comment
    r"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\""  # string literal
    r"|math\.max|math\.min"
    r"|[A-Za-z_][A-Za-z_0-9]*"  # name or keyword
    r"|\d+(?:\.\d+)?"  # number
    r"|~=|==|<=|>=|\.\.|[<>+\-*/]"
)


@dataclass(frozen=True)
class Mutant:
    """One change: ``start``..``end`` (offsets in the file's text) becomes ``new``."""

    path: str
    line: int
    start: int
    end: int
    old: str
    new: str
    lua: bool
    context: str = ""
    ordinal: int = 1  # the n-th mutant with this old→new on its line

    def key(self) -> str:
        """Its name in reports: ``path:line old→new``."""
        return f"{self.path}:{self.line} {self.old}→{self.new}"

    def code_key(self) -> str:
        """A name that survives edits elsewhere in the file (how equivalent mutants are
        listed): ``path `the line's code` old→new``."""
        suffix = f" #{self.ordinal}" if self.ordinal > 1 else ""
        return f"{self.path} `{self.context}` {self.old}→{self.new}{suffix}"

    def apply(self, text: str) -> str:
        """``text`` with this mutant applied."""
        return text[: self.start] + self.new + text[self.end :]


def _number_mutants(value: str) -> tuple[str, ...]:
    try:
        number = int(value)
    except ValueError:
        return ()
    return ("1",) if number == 0 else (str(number + 1),)


def lua_mutants(path: str, text: str, offset: int = 0, base_line: int = 1) -> Iterator[Mutant]:
    """Mutants of Lua source ``text`` found at ``offset`` in the file (line ``base_line``)."""
    for match in _LUA_TOKEN.finditer(text):
        word = match.group(0)
        if word.startswith(("--", "'", '"')):
            continue
        line = base_line + text.count("\n", 0, match.start())
        if word[0].isdigit() and _indexing(text, match.start(), match.end()):
            continue  # KEYS[1], ARGV[3], t[2]: wiring any test breaks, not a decision
        replacements = LUA_OPS.get(word, ()) or (_number_mutants(word) if word[0].isdigit() else ())
        # the unary minus of a negative number literal is a number mutant, not an operator
        if word == "-" and text[match.end() : match.end() + 1].isdigit():
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.start())
        context = text[line_start : line_end if line_end >= 0 else len(text)].strip()
        for new in replacements:
            yield Mutant(
                path, line, offset + match.start(), offset + match.end(), word, new, True, context
            )


def _indexing(text: str, start: int, end: int) -> bool:
    """Whether the number at ``start``..``end`` is a table index like ``ARGV[3]``."""
    return text[start - 1 : start] == "[" and text[end : end + 1] == "]"


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def python_mutants(path: str, text: str) -> Iterator[Mutant]:
    """Mutants of a Python module, including the Lua in its string constants."""
    offsets = _line_offsets(text)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    previous_significant = token.INDENT
    for index, tok in enumerate(tokens):
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        if tok.type == token.STRING:
            if "redis.call" in tok.string:
                body = tok.string.lstrip("rRbBuUfF")
                quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
                skip = len(tok.string) - len(body) + len(quote)
                inner = tok.string[skip : len(tok.string) - len(quote)]
                yield from lua_mutants(path, inner, start + skip, tok.start[0])
        elif tok.type == token.NUMBER:
            if _py_indexing(tokens, index):
                continue
            for new in _number_mutants(tok.string):
                context = tok.line.strip()
                yield Mutant(path, tok.start[0], start, end, tok.string, new, False, context)
        elif tok.type in (token.OP, token.NAME) and tok.string in PY_OPS:
            following = tokens[index + 1].string if index + 1 < len(tokens) else ""
            if tok.string == "not" and following == "in":
                continue
            if tok.string == "is" and following == "not":
                continue
            if (
                tok.string == "in"
                and previous_significant == token.NAME
                and _after_for(tokens, index)
            ):
                continue  # ``for x in`` is syntax, not a test
            if tok.string in ("-", "+") and _unary(tokens, index):
                continue
            if tok.string == "*" and _unary(tokens, index):
                continue  # *args, keyword-only marker
            for new in PY_OPS[tok.string]:
                context = tok.line.strip()
                yield Mutant(path, tok.start[0], start, end, tok.string, new, False, context)
        if tok.type not in (token.NL, token.NEWLINE, token.COMMENT):
            previous_significant = tok.type


def _py_indexing(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    """Whether the number at ``index`` is a plain subscript like ``reply[2]``."""
    before = tokens[index - 1].string if index else ""
    after = tokens[index + 1].string if index + 1 < len(tokens) else ""
    return before == "[" and after == "]"


def _after_for(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    """Whether the ``in`` at ``index`` belongs to a ``for`` (statement or comprehension)."""
    depth = 0
    for back in range(index - 1, -1, -1):
        text = tokens[back].string
        if text in (")", "]", "}"):
            depth += 1
        elif text in ("(", "[", "{"):
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and text == "for":
            return True
        elif depth == 0 and (tokens[back].type == token.NEWLINE or text in (":", "if")):
            return False
    return False


def _unary(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    for back in range(index - 1, -1, -1):
        kind = tokens[back].type
        if kind in (token.NL, token.NEWLINE, token.COMMENT, token.INDENT, token.DEDENT):
            continue
        text = tokens[back].string
        return kind == token.OP and text not in (")", "]", "}")
    return True


def mutants_of(path: str, text: str) -> list[Mutant]:
    """Every mutant of one file (``.py`` or ``.lua``), in file order; two identical
    changes on one line are told apart by their ordinal (``#2``)."""
    found = list(lua_mutants(path, text) if path.endswith(".lua") else python_mutants(path, text))
    seen: dict[tuple[int, str, str], int] = {}
    numbered = []
    for mutant in found:
        index = (mutant.line, mutant.old, mutant.new)
        seen[index] = seen.get(index, 0) + 1
        numbered.append(dataclasses.replace(mutant, ordinal=seen[index]))
    return numbered
