"""The echo filter on canned answers that copy the prompt: a consequence that is the template's own example,
a consequence repeated across samples, and to-do / not-to-do actions with the same text. Each is filtered as
`echo` with its reason; the other samples are not touched. The prompts rotate their examples by the plan."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Any

from canned import Responder
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.planner import read_plan
from valuecorpus.pipelines.prompts import load_template
from valuecorpus.schemas.arrow import read_records
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.run_tables import FilteredSample

EXAMPLES = [e["story"] for e in load_template("dilemmas/consequence").examples]
REPEATED = "A storm floods the cellar and every box of old family letters is ruined."
COPY, REPEAT, SAME_ACTIONS, CLEAN = range(4)


def mode(seed: str) -> int:
    return int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 4


class Copying(Responder):
    """Canned answers (canned.py) where a quarter of the samples copy the example, a quarter repeat one
    consequence, and a quarter give both actions the same text, chosen by the sample's seed action."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: Counter[str] = Counter()

    def answer(self, request: dict[str, Any]) -> Any:
        props = set((request["schema"] or {}).get("properties") or {})
        user = request["last_user"]
        out = super().answer(request)
        if {"background", "conflict", "question"} <= props:
            seed = re.search(r'and the seed action "([^"]+)"', user).group(1)
            if mode(seed) == SAME_ACTIONS:
                out["alternative"] = out["action"]
        elif props == {"story"}:
            self.shown[re.search(r"another dilemma[^:]*: (\{.*\})", user).group(1)] += 1
            seed = re.search(r"Should you go ahead with (.+?)\?", user).group(1)
            to_do = "You decide: Go ahead" in user
            if mode(seed) == COPY:
                out = {"story": EXAMPLES[len(seed) % len(EXAMPLES)]}
            elif mode(seed) == REPEAT and to_do:
                out = {"story": REPEATED}
        return out


def test_echo_filter_on_answers_that_copy_the_prompt(cli, home: Path) -> None:
    responder = Copying()
    with FakeServer(FakeServerConfig(responder=responder, latency=0)) as server:
        res = cli("generate", "dilemmas", "--n", "24", "--run-id", "echo", "--executor", "loop", "--base-url",
                  server.base_url, "--model", "fake-model", "--no-progress")
    assert res.code == 0, res.stderr[-3000:]
    layout = DataHome(home).run("echo")
    plan = {it["sample_id"]: it for it in read_plan(layout.plan)}
    modes = {sid: mode(it["seed_situation"]["text"]) for sid, it in plan.items()}
    filtered = {f.sample_id: f for f in read_records(layout.filtered, FilteredSample)}
    kept = {r.id for r in read_records(layout.records("dilemma"))}
    assert layout.read_manifest().dead_letters == 0 and set(kept) | set(filtered) == set(plan)
    assert Counter(modes.values())[REPEAT] >= 2  # the canned split puts several samples in each group

    for sid, m in modes.items():
        f = filtered.get(sid)
        if m == COPY:  # per-record: nothing earlier in the order drops these canned samples
            assert f is not None and f.filter == "echo", (sid, f)
            assert re.fullmatch(r"negative_consequence \((to_do|not_to_do)\) is the prompt's own text", f.reason)
        elif m == SAME_ACTIONS:
            assert f is not None and f.filter == "echo"
            assert f.reason == "action (to_do) and action (not_to_do) have the same text"
        elif m == CLEAN:
            assert f is None or f.filter != "echo", f  # no false alarm on text of its own
    repeated = sorted(sid for sid, m in modes.items() if m == REPEAT)
    survivors = [sid for sid in repeated if sid in kept or filtered[sid].filter == "echo"]
    # the first to reach the check keeps the text (the smallest id); every other sample repeating it is dropped
    assert [sid for sid in repeated if sid in kept] == survivors[:1]
    for sid in survivors[1:]:
        assert filtered[sid].reason == "negative_consequence (to_do) repeats the text of another sample"
        assert filtered[sid].matched_id == survivors[0]
    assert len(survivors) >= 2
    # the consequence prompts rotate their example by the plan item's seed
    assert len(responder.shown) >= 3
