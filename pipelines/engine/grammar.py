"""The llama.cpp grammar of a JSON Schema, and the longest output that grammar admits.

llama-cpp-python's own converter (`llama_grammar.json_schema_to_gbnf`, what `response_format` uses) lets a
string character be any code point (up to 4 UTF-8 bytes) or an escape such as `\\u00e9` (6 bytes), and puts an
optional space after every token of punctuation. No `maxLength` bounds either, so a schema's characters say
nothing about the tokens an answer may take. The grammar built here is what the local and llama.cpp-server
backends are sent instead:

- a string character is one unescaped character of the Basic Multilingual Plane, no `"`, `\\` or control
  character: at most 3 UTF-8 bytes (CJK text is exactly 3);
- no whitespace between tokens: the JSON is compact;
- every property is written, in the schema's order; arrays hold minItems..maxItems items; enums and consts are
  their JSON literals; integers and numbers have at most 16 digits before and 15 after the point.

`worst_case_bytes` walks the same rules and returns the byte length of the longest text the grammar accepts, or
None when the schema has no bound (a string without maxLength, an array without maxItems). llama.cpp's grammar
sampler refuses any token whose text is empty, so every token adds at least one byte: a request whose
`max_tokens` is the worst case in bytes plus one (the end token) always closes, whatever the model, tokenizer or
CPU. A schema this builder does not cover (pattern, format, free objects) returns None for the grammar; the
backend then takes the library's converter and no bound is claimed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# one character of the Basic Multilingual Plane that JSON needs no escape for
CHAR = r'[^"\\\x00-\x1F\x7F\U00010000-\U0010FFFF]'
MAX_CHAR_BYTES = 3
INT_DIGITS = 16
FRACTION_DIGITS = 15
END_TOKENS = 1  # room for the end-of-generation token after the closing brace


class Unsupported(ValueError):
    """A schema construct this grammar does not cover (the library's converter is used instead)."""


def literal(text: str) -> str:
    """A GBNF string literal for `text`."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _repeat(item: str, lo: int, hi: int, sep: str | None = None) -> str:
    """lo..hi repetitions of `item` (separated by `sep`), as the nested optionals llama.cpp's parser takes."""
    if hi < lo:
        raise Unsupported(f"maximum {hi} below minimum {lo}")
    unit = f"{sep} {item}" if sep else item
    head = (f" {sep} " if sep else " ").join([item] * lo)

    def nested(first: str, count: int) -> str:  # (first (unit (unit)?)?)? with count groups in all
        inner = ""
        for _ in range(count - 1):
            inner = f"({unit} {inner})?" if inner else f"({unit})?"
        return f"({first} {inner})?" if inner else f"({first})?"

    tail = "" if hi == lo else nested(unit if lo else item, hi - lo)
    return " ".join(p for p in (head, tail) if p) or '""'


@dataclass
class _Builder:
    rules: dict[str, str] = field(default_factory=dict)

    def rule(self, name: str, body: str) -> str:
        self.rules.setdefault(name, body)
        return name

    def visit(self, node: Any) -> tuple[str, int | None]:
        """(GBNF expression, longest output in bytes or None when unbounded)."""
        if not isinstance(node, dict):
            raise Unsupported(f"not a schema: {node!r}")
        if "$ref" in node or "allOf" in node or "not" in node or "if" in node:
            raise Unsupported("references and combinators other than anyOf/oneOf")
        alts = node.get("anyOf") or node.get("oneOf")
        if alts:
            return self._union([self.visit(a) for a in alts])
        if "const" in node:
            text = _json_literal(node["const"])
            return literal(text), len(text.encode())
        if "enum" in node:
            texts = [_json_literal(v) for v in node["enum"]]
            if not texts:
                raise Unsupported("an empty enum")
            return "(" + " | ".join(literal(t) for t in texts) + ")", max(len(t.encode()) for t in texts)
        kind = node.get("type")
        if isinstance(kind, list):
            return self._union([self.visit({**node, "type": k}) for k in kind])
        if kind == "string":
            return self._string(node)
        if kind == "object":
            return self._object(node)
        if kind == "array":
            return self._array(node)
        if kind == "integer":
            return self._integer(node)
        if kind == "number":
            digits = self.rule("digit", "[0-9]")
            whole = f'("0" | [1-9] {_repeat(digits, 0, INT_DIGITS - 1)})'
            return (f'"-"? {whole} ("." {_repeat(digits, 1, FRACTION_DIGITS)})?',
                    1 + INT_DIGITS + 1 + FRACTION_DIGITS)
        if kind == "boolean":
            return '("true" | "false")', 5
        if kind == "null":
            return '"null"', 4
        raise Unsupported(f"schema without a type: {sorted(node)}")

    def _union(self, parts: list[tuple[str, int | None]]) -> tuple[str, int | None]:
        sizes = [n for _, n in parts]
        worst = None if any(n is None for n in sizes) else max(n for n in sizes if n is not None)
        return "(" + " | ".join(expr for expr, _ in parts) + ")", worst

    def _string(self, node: dict[str, Any]) -> tuple[str, int | None]:
        if "pattern" in node or "format" in node:
            raise Unsupported("string pattern or format")
        lo = int(node.get("minLength", 0))
        hi = node.get("maxLength")
        char = self.rule("char", CHAR)
        if hi is None:
            head = f"{_repeat(char, lo, lo)} " if lo else ""
            return self.rule(f"str-{lo}", f'"\\"" {head}{char}* "\\""'), None
        name = self.rule(f"str-{lo}-{hi}", f'"\\"" {_repeat(char, lo, int(hi))} "\\""')
        return name, 2 + MAX_CHAR_BYTES * int(hi)

    def _object(self, node: dict[str, Any]) -> tuple[str, int | None]:
        props = node.get("properties") or {}
        extra = node.get("additionalProperties", True)
        if not props and extra is not False:
            raise Unsupported("an object without properties")
        parts, worst = [], 2 + max(0, len(props) - 1)  # braces and commas
        bounded = True
        for name, sub in props.items():
            key = _json_literal(name) + ":"
            expr, size = self.visit(sub)
            parts.append(f"{literal(key)} {expr}")
            if size is None:
                bounded = False
            else:
                worst += len(key.encode()) + size
        body = ' "," '.join(parts)
        return f'"{{" {body} "}}"' if body else '"{}"', worst if bounded else None

    def _array(self, node: dict[str, Any]) -> tuple[str, int | None]:
        items = node.get("items")
        if not isinstance(items, dict) or "prefixItems" in node:
            raise Unsupported("arrays without one items schema")
        expr, size = self.visit(items)
        lo, hi = int(node.get("minItems", 0)), node.get("maxItems")
        sep = '","'
        if hi is None:
            body = f"({expr} ({sep} {expr})*)?" if lo == 0 else f"{_repeat(expr, lo, lo, sep)} ({sep} {expr})*"
            return f'"[" {body} "]"', None
        body = _repeat(expr, lo, int(hi), sep)
        worst = None if size is None else 2 + int(hi) * size + max(0, int(hi) - 1)
        return f'"[" {body} "]"', worst

    def _integer(self, node: dict[str, Any]) -> tuple[str, int | None]:
        lo, hi = node.get("minimum"), node.get("maximum")
        digits = INT_DIGITS
        if lo is not None and hi is not None:
            digits = max(len(str(abs(int(lo)))), len(str(abs(int(hi)))))
        negative = lo is None or lo < 0
        d = self.rule("digit", "[0-9]")
        whole = f"([0-9] | [1-9] {_repeat(d, 0, digits - 1)})" if digits > 1 else "[0-9]"
        return (f'"-"? {whole}' if negative else whole), digits + (1 if negative else 0)


# llama-cpp-python's converter (what a llama.cpp server builds from `response_format`): a character is a code
# point or an escape (`\uXXXX`, 6 bytes); `space` ('" "?') follows punctuation and every value but enum/const
SERVER_CHAR_BYTES = 6


def _sum(sizes: list[int | None]) -> int | None:
    return None if any(n is None for n in sizes) else sum(n for n in sizes if n is not None)


def server_worst_case_bytes(node: dict[str, Any]) -> int | None:
    """The longest output llama-cpp-python's `json_schema_to_gbnf` grammar admits for `node` (None: unbounded)."""
    alts = node.get("anyOf") or node.get("oneOf")
    if alts:
        sizes = [server_worst_case_bytes(a) for a in alts]
        return None if None in sizes else max(n for n in sizes if n is not None)
    if "const" in node:
        return len(json.dumps(node["const"]))
    if "enum" in node:
        return max(len(json.dumps(v)) for v in node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        sizes = [server_worst_case_bytes({**node, "type": k}) for k in kind]
        return None if None in sizes else max(n for n in sizes if n is not None)
    if kind == "string":
        hi = node.get("maxLength")
        return None if hi is None else 2 + SERVER_CHAR_BYTES * int(hi) + 1
    if kind == "object":
        props = node.get("properties") or {}
        kvs = [_sum([len(json.dumps(k)) + 3, server_worst_case_bytes(v)]) for k, v in props.items()]
        return _sum([4 + 2 * max(0, len(props) - 1), *kvs])  # "{" space … "}" space; "," space between
    if kind == "array":
        hi, item = node.get("maxItems"), server_worst_case_bytes(node["items"])
        if hi is None or item is None:
            return None
        return 4 + int(hi) * item + 2 * max(0, int(hi) - 1)
    return {"integer": 18, "number": 53, "boolean": 6, "null": 5}.get(str(kind))


@dataclass(frozen=True)
class SchemaGrammar:
    text: str  # GBNF, root rule `root`
    worst_case_bytes: int | None
    server_worst_case_bytes: int | None = None

    @property
    def max_tokens(self) -> int | None:
        """The completion tokens that always hold an answer of this grammar (None: no bound)."""
        return None if self.worst_case_bytes is None else self.worst_case_bytes + END_TOKENS

    @property
    def server_max_tokens(self) -> int | None:
        """The same under llama-cpp-python's own converter (a llama.cpp server given `response_format`)."""
        n = self.server_worst_case_bytes
        return None if n is None else n + END_TOKENS


def schema_grammar(schema: dict[str, Any]) -> SchemaGrammar | None:
    """The grammar of `schema` and its worst case; None when the schema uses what this builder does not cover."""
    builder = _Builder()
    try:
        expr, worst = builder.visit(schema)
    except Unsupported:
        return None
    lines = [f"root ::= {expr}"] + [f"{name} ::= {body}" for name, body in sorted(builder.rules.items())]
    return SchemaGrammar("\n".join(lines) + "\n", worst, server_worst_case_bytes(schema))


def worst_case_tokens(schema: dict[str, Any]) -> int | None:
    """Completion tokens that always hold an answer to `schema` under its grammar (None: unbounded/uncovered)."""
    grammar = schema_grammar(schema)
    return None if grammar is None else grammar.max_tokens
