"""Importing AI speech templates into an account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outdial.clock import Clock, epoch_ms
from outdial.errors import NotFound
from outdial.script.template import TemplateProblem, facts, parse, to_json
from outdial.speech.languages import detect
from outdial.store.repo import Store


def _prompts(data: dict[str, Any]) -> list[str]:
    nodes = data.get("nodes") or {}
    return [
        n["say"] for n in nodes.values() if isinstance(n, dict) and isinstance(n.get("say"), str)
    ]


def _listening(data: dict[str, Any]) -> list[str]:
    nodes = data.get("nodes") or {}
    return [k for k, n in nodes.items() if isinstance(n, dict) and n.get("listen") is not None]


class ScriptService:
    """``asr_languages``: what the configured recogniser handles (None: not known, so not
    checked); a template whose nodes listen for speech in another language is refused."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        tts_languages: Sequence[str],
        long_chars: int,
        asr_languages: frozenset[str] | None = None,
        asr_engine: str = "",
    ) -> None:
        self.store = store
        self.clock = clock
        self.tts_languages = tts_languages
        self.long_chars = long_chars
        self.asr_languages = asr_languages
        self.asr_engine = asr_engine

    def import_script(self, account_id: int, source: str) -> dict[str, Any]:
        """Validate and store a template; raise TemplateProblem listing every problem."""
        data = parse(source)
        info = facts(data, self.long_chars)
        warnings = []
        language, detected = info.language, False
        if info.has_prompts and not language:
            language = detect(_prompts(data))
            detected = language is not None
        if info.has_prompts and not language:
            warnings.append(
                "no language given and none detected: tasks using this template are refused "
                "with -38 (add `language:`)"
            )
        elif language and language.split("-")[0] not in self.tts_languages:
            warnings.append(
                f"language {language!r} is not spoken by the configured TTS "
                f"({', '.join(self.tts_languages)}): tasks are refused with -39"
            )
        listening = _listening(data)
        if (
            language
            and listening
            and self.asr_languages is not None
            and language.split("-")[0].lower() not in self.asr_languages
        ):
            raise TemplateProblem(
                [
                    (
                        f"nodes.{listening[0]}.listen",
                        f"the template listens for speech in {language!r}, but the configured "
                        f"recogniser ({self.asr_engine or 'ASR'}) understands only "
                        f"{', '.join(sorted(self.asr_languages))}: its calls could never be "
                        "understood (set OUTDIAL_ASR_ENGINE/OUTDIAL_ASR_MODEL to a recogniser "
                        "of that language, or listen for keys only)",
                    )
                ]
            )
        if info.sms_enabled and not info.sms_has_trigger:
            warnings.append("hang-up SMS enabled without triggers: tasks are refused with -53")
        with self.store.write() as tx:
            if tx.account(account_id) is None:
                raise NotFound(f"account {account_id} does not exist")
            script_id = tx.insert_script(
                account_id=account_id,
                name=info.name,
                language=language,
                source=source,
                definition=to_json(data),
                created_at=epoch_ms(self.clock.now()),
            )
        out: dict[str, Any] = {
            "scriptId": script_id,
            "name": info.name,
            "variables": [f"text{n}" for n in info.variables],
            "language": language,
        }
        if detected:
            out["languageDetected"] = True
        if warnings:
            out["warnings"] = warnings
        return out
