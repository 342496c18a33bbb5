"""Deterministic canned answers for the fake OpenAI-compatible server, keyed by the request.

Each chain step is recognised by its JSON Schema's properties; the answer is built from the request text
(same prompt → same answer), in plain English so the language filter accepts it, and within the schema's
enums and bounds. `variant` changes one word per answer (near-duplicate tests); `demographic_variant` makes
one CLASH category use a gendered pronoun (demographics filter test).
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

NOUNS = ["project", "budget", "meeting", "neighbour", "garden", "report", "deadline", "promise", "letter",
         "contract", "festival", "team", "library", "recipe", "journey", "market", "ticket", "lesson",
         "painting", "bicycle", "kitchen", "schedule", "message", "account", "harvest", "concert"]
VERBS = ["finish", "share", "cancel", "protect", "explain", "repair", "review", "support", "question",
         "organise", "postpone", "announce", "borrow", "return", "change", "visit"]
ADJ = ["careful", "quiet", "urgent", "honest", "costly", "shared", "private", "public", "fragile", "late"]


def _rng(*parts: Any) -> random.Random:
    return random.Random(int(hashlib.sha256(repr(parts).encode()).hexdigest()[:16], 16))


def sentence(rng: random.Random) -> str:
    return (f"The {rng.choice(ADJ)} {rng.choice(NOUNS)} is why you want to {rng.choice(VERBS)} "
            f"the {rng.choice(NOUNS)} with your {rng.choice(NOUNS)} before the {rng.choice(NOUNS)}.")


def fit(value: Any, schema: dict[str, Any]) -> Any:
    """Cut strings to the schema's maxLength at a word boundary, as a constrained decoder stops there."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: fit(v, props.get(k) or {}) for k, v in value.items()}
    if isinstance(value, list):
        return [fit(v, schema.get("items") or {}) for v in value]
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        cut = value[: schema["maxLength"]]
        return cut.rsplit(" ", 1)[0] if " " in cut else cut
    return value


def _field(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    return m.group(1).strip() if m else ""


class Responder:
    def __init__(self, variant: str = "", demographic_variant: str | None = None) -> None:
        self.variant = variant
        self.demographic_variant = demographic_variant
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> Any:
        self.calls += 1
        answer = self.answer(request)
        return None if answer is None else fit(answer, request["schema"] or {})

    def answer(self, request: dict[str, Any]) -> Any:
        schema = request["schema"] or {}
        props = set((schema.get("properties") or {}).keys())
        user = request["last_user"]
        if {"background", "conflict", "question"} <= props:
            return self.situation(user)
        if props == {"story"}:
            rng = _rng("story", user)
            return {"story": " ".join(sentence(rng) for _ in range(2))}
        if props == {"direct", "indirect"}:
            rng = _rng("parties", user)
            return {"direct": ["You"], "indirect": [f"The {rng.choice(NOUNS)} owner"]}
        if props == {"values"}:
            item = schema["properties"]["values"]["items"]["properties"]
            parties, values = item["party"]["enum"], item["value"]["enum"]
            rng = _rng("values", user)
            return {"values": [{"party": parties[0], "value": rng.choice(values)},
                               {"party": parties[-1], "value": rng.choice(values)}]}
        if props == {"reasons"}:
            n = schema["properties"]["reasons"]["minItems"]
            rng = _rng("reasons", user)
            return {"reasons": [sentence(rng) for _ in range(n)]}
        if props == {"situation"}:
            rng = _rng("case", user)
            return {"situation": " ".join(sentence(rng) for _ in range(3))}
        if props == {"action", "acceptable", "unacceptable"}:
            rng = _rng("action", user)
            return {"action": f"Reporting the {rng.choice(NOUNS)} problem",
                    "acceptable": f"Protecting the {rng.choice(ADJ)} {rng.choice(NOUNS)}",
                    "unacceptable": f"Keeping the {rng.choice(NOUNS)} private"}
        if props == {"description"}:
            return self.description(user)
        if props == {"ready", "message"}:  # moral-graph interviewer: ready once two answers are in
            answers = user.count("Participant: ")
            rng = _rng("interviewer", user)
            if answers >= 2:
                return {"ready": True, "message": f"You find meaning in {rng.choice(VERBS)}ing the "
                                                  f"{rng.choice(NOUNS)} together."}
            return {"ready": False, "message": f"What matters to you about the {rng.choice(NOUNS)} here?"}
        if props == {"reply"}:
            rng = _rng("reply", [m.get("content") for m in request["messages"]])  # the persona is the system
            return {"reply": f"{sentence(rng)} {sentence(rng)}"}
        if props == {"title", "description", "policies"}:
            rng = _rng("card", user)
            return {"title": f"{rng.choice(ADJ).capitalize()} {rng.choice(NOUNS)}",
                    "description": f"Helping a friend {rng.choice(VERBS)} the {rng.choice(NOUNS)}.",
                    "policies": [f"MOMENTS when the {rng.choice(NOUNS)} needs care",
                                 f"OPPORTUNITIES to {rng.choice(VERBS)} the {rng.choice(NOUNS)} together",
                                 f"SIGNS that the {rng.choice(NOUNS)} is {rng.choice(ADJ)}"]}
        if props == {"contexts"}:
            rng = _rng("contexts", user)
            return {"contexts": [f"When the {rng.choice(NOUNS)} is at stake", "When a choice affects others"]}
        if props == {"verdict", "reason"}:
            return {"verdict": _rng("same", user).choice(["same", "different"]), "reason": "Judged by a fixed rule."}
        if props == {"relationship", "comment"}:
            rng = _rng("vote", user, (request.get("body") or {}).get("seed"))
            return {"relationship": rng.choice(["upgrade", "upgrade", "no_upgrade", "not_sure"]),
                    "comment": f"The {rng.choice(NOUNS)} decides it."}
        if props == {"score", "reason"}:  # the judge: a score fixed by the judged text
            return {"score": _rng("judge", user).choice([3, 9]), "reason": "Judged by a fixed rule."}
        return None  # the server's generated answer

    def situation(self, user: str) -> dict[str, str]:
        topic = _field(r'new dilemma for the topic "([^"]+)"', user)
        seed = _field(r'and the seed action "([^"]+)"', user)
        rng = _rng("situation", topic, seed)
        words = [sentence(rng) for _ in range(2)]
        if self.variant:  # one word changes: a near-duplicate of the same prompt's answer
            words[1] = words[1].replace(" the ", f" the {self.variant} ", 1)
        return {
            "background": f"You are planning {seed} at the {rng.choice(NOUNS)}. {words[0]}".split(". ")[0],
            "conflict": words[1],
            "question": f"Should you go ahead with {seed}",
            "action": f"Go ahead with {seed}"[:55],
            "alternative": f"Do not go ahead with {seed}"[:55],
        }

    def description(self, user: str) -> dict[str, str]:
        rng = _rng("description", user)
        pronoun = "they"
        if self.demographic_variant and self.demographic_variant in user:
            pronoun = "she"
        first, second, third = (sentence(rng) for _ in range(3))
        text = (f"Character A believes that {first[0].lower()}{first[1:]} {second} "
                f"When the {rng.choice(NOUNS)} is at stake, {pronoun} feel it. "
                f"Character A feels that {third[0].lower()}{third[1:]}")
        return {"description": text}
