"""Training exports from preference pairs: `dpo` in TRL's conversational preference format (prompt / chosen /
rejected as lists of role-content messages) and `sft` as conversational language modelling (`messages`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from valuecorpus.warehouse.exports.base import MESSAGES, ExportFormat, ExportInput, message

DPO_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES),
    ("chosen_value", pa.string()), ("rejected_value", pa.string()), ("topic", pa.string()),
])
SFT_SCHEMA = pa.schema([("id", pa.string()), ("messages", MESSAGES), ("value", pa.string()), ("topic", pa.string())])


def dpo_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    for pair in source.rows("preference_pair"):
        yield {"id": pair["id"], "prompt": [message("user", pair["prompt"])],
               "chosen": [message("assistant", pair["chosen"])],
               "rejected": [message("assistant", pair["rejected"])], "chosen_value": pair["chosen_value"],
               "rejected_value": pair["rejected_value"], "topic": pair["topic"]}


def sft_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    # The chosen side only: supervised fine-tuning imitates the stance the pair prefers.
    for pair in source.rows("preference_pair"):
        yield {"id": pair["id"], "messages": [message("user", pair["prompt"]), message("assistant", pair["chosen"])],
               "value": pair["chosen_value"], "topic": pair["topic"]}


FORMATS = [
    ExportFormat("dpo", "training", "preference_pair",
                 "TRL DPOTrainer, conversational preference: prompt / chosen / rejected message lists",
                 DPO_SCHEMA, dpo_rows),
    ExportFormat("sft", "training", "preference_pair",
                 "TRL SFTTrainer, conversational language modelling: messages (user prompt, chosen answer)",
                 SFT_SCHEMA, sft_rows),
]
