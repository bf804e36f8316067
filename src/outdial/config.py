"""Typed settings, read once at the edges (CLI and server start).

Precedence: environment (``OUTDIAL_*``) -> ``.env`` file in the working directory -> default.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from outdial.speech.registry import ASR_ENGINES, DEFAULT_ASR


class Settings(BaseSettings):
    """outdial's configuration; every field is documented in the README table."""

    model_config = SettingsConfigDict(
        env_prefix="OUTDIAL_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///./outdial.db"
    host: str = "127.0.0.1"
    port: int = 8080
    default_timezone: str = "UTC"
    timestamp_skew_seconds: int = Field(300, ge=1)
    auth_fail_key_limit: int = Field(20, ge=0)
    auth_fail_ip_limit: int = Field(100, ge=0)
    auth_fail_window_seconds: float = Field(60.0, gt=0)
    auth_cache_seconds: float = Field(5.0, ge=0)
    api_threads: int = Field(8, ge=1)
    api_nice: int = Field(5, ge=0, le=19)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    min_balance: str = "0"
    default_lines: int = Field(10, ge=1)
    default_max_tasks: int = Field(20, ge=1)
    tts_engine: str = Field("flite", pattern="^(flite|espeak-ng)$")
    tts_voice: str | None = None
    tts_languages: Annotated[list[str], NoDecode] = Field(default_factory=list)
    asr_engine: str = DEFAULT_ASR
    asr_model: str | None = None
    asr_workers: int | None = Field(None, ge=1)
    asr_timeout_seconds: float = Field(5.0, gt=0)
    # rules: the phrase/language-rule matcher; semantic (default: more accurate on every set
    # measured, no opt-out errors, encoding off the call loop): rules, then MiniLM embeddings
    # when the rules hear nothing (the `semantic` extra and its model package).
    intent_matcher: str = Field("semantic", pattern="^(rules|semantic)$")
    long_tts_chars: int = Field(200, ge=1)
    long_tts_daily_quota: int = Field(5, ge=0)
    auto_migrate: bool = True
    recordings_dir: str = "./recordings"
    worker_id: str | None = None
    carrier: str = Field("sim", pattern="^(sim|sip)$")
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(5060, ge=0, le=65535)
    sip_media_host: str | None = None
    sip_trunk: str = "default"
    sip_stereo_recordings: bool = False
    sip_barge_in: bool = True
    sip_symmetric_rtp: bool = True
    sip_rtp_timeout: float = Field(30.0, ge=0)  # seconds without RTP that end a call; 0: off
    sip_keepalive: float = Field(60.0, ge=0)  # in-dialog OPTIONS interval; 0: off
    # Answering machine detection (telephony/amd.py), for templates with a voicemail section.
    amd_machine_speech_seconds: float = Field(2.6, gt=0.5)
    amd_end_silence_seconds: float = Field(0.8, gt=0.1)
    amd_max_seconds: float = Field(5.0, gt=1.0, le=15.0)
    sim_speed: float | None = Field(1.0, gt=0)
    sim_seed: int = 0
    sim_instant: bool = False
    sim_profile: str | None = None
    sim_max_cps: float | None = Field(None, gt=0)
    lease_seconds: float = Field(300.0, ge=1)
    worker_dead_seconds: float = Field(30.0, ge=1)
    drain_seconds: float = Field(25.0, ge=0)
    console_tally_seconds: float = Field(60.0, ge=0)
    dialer_batch: int = Field(500, ge=1)
    dialer_flush: int = Field(1000, ge=1)
    push_enabled: bool = True
    push_allow_private: bool = False
    secret_keys: SecretStr | None = None
    push_first_backoff_seconds: float = Field(10.0, gt=0)
    push_max_backoff_seconds: float = Field(3600.0, gt=0)
    sms_sender: str = "file"
    sms_file: str = "./sms-outbox.jsonl"
    sms_http_url: str | None = None
    sms_http_token: SecretStr | None = None
    log_level: str = "INFO"
    log_format: str = Field("text", pattern="^(text|json)$")
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(None, ge=0, le=65535)

    @field_validator("trusted_proxies", "tts_languages", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("asr_engine", mode="after")
    @classmethod
    def _check_asr(cls, value: str) -> str:
        if value not in ASR_ENGINES:
            raise ValueError(f"unknown ASR engine {value!r}; choose {', '.join(ASR_ENGINES)}")
        return value

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ip_network(cidr, strict=False)
        return value

    @model_validator(mode="after")
    def _check_amd(self) -> Settings:
        # The detector's own rules (telephony/amd.py AmdSettings), said here as a setting error.
        if self.amd_machine_speech_seconds >= self.amd_max_seconds:
            raise ValueError(
                "OUTDIAL_AMD_MACHINE_SPEECH_SECONDS must be under OUTDIAL_AMD_MAX_SECONDS"
            )
        if self.amd_end_silence_seconds >= min(3.5, self.amd_max_seconds):
            raise ValueError("OUTDIAL_AMD_END_SILENCE_SECONDS must be under 3.5 s and the maximum")
        return self

    def secret_key_list(self) -> list[str]:
        """OUTDIAL_SECRET_KEYS split at commas: the first encrypts, every one decrypts."""
        if self.secret_keys is None:
            return []
        return [k.strip() for k in self.secret_keys.get_secret_value().split(",") if k.strip()]

    def trusted_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(c, strict=False) for c in self.trusted_proxies]
