"""Plain records returned by the repository (no ORM objects escape the store)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    name: str
    timezone: str
    lines: int
    max_tasks: int
    balance: int
    gift: int
    credit: int
    currency: str
    created_at: int
    sip_trunk: str | None = None


@dataclass(frozen=True, slots=True)
class TrunkRecord:
    id: int
    name: str
    host: str
    port: int
    transport: str
    username: str | None
    password: str | None
    domain: str | None
    caller_id: str | None
    dial_prefix: str
    max_cps: float | None
    max_calls: int | None
    created_at: int
    register: bool = False
    register_expires: int = 300
    registration: str | None = None  # registering | registered | failed | unregistered
    registration_code: int | None = None
    registration_at: int | None = None  # epoch ms of that state
    next_dial_at: int | None = None  # the next free dialing slot under max_cps (epoch ms)
    transfer: str = "refer"  # refer (blind, REFER) | bridge (a second leg, media relayed)


@dataclass(frozen=True, slots=True)
class AppRecord:
    id: int
    account_id: int
    app_id: str
    push_url: str | None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    account_id: int
    api_key: str
    api_secret: str
    ip_allow: tuple[str, ...]
    disabled: bool


@dataclass(frozen=True, slots=True)
class ScriptRecord:
    id: int
    account_id: int
    name: str
    language: str | None
    source: str
    definition: str
    created_at: int


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    account_id: int
    app_id: str
    task_name: str
    task_type: int
    status: int
    status_reason: str | None
    paused_from: int | None
    script_id: int
    display_num: str
    send_at: int | None
    allow_send_time: str
    timezone: str
    window_zone: str
    max_calls: int
    max_ringing_time: int
    enable_recording: int
    callout_rate: int
    num_cnt: int
    submitted_cnt: int
    blocked_cnt: int
    call_num: int
    success: int
    fail: int
    call_duration: int
    cost: int
    created_at: int
    updated_at: int
    started_at: int | None
    finished_at: int | None


@dataclass(frozen=True, slots=True)
class NewTask:
    """What the submission writes for a task (counters start at zero)."""

    account_id: int
    app_pk: int
    task_name: str
    status: int
    script_id: int
    display_num: str
    send_at: int | None
    allow_send_time: str
    timezone: str
    max_calls: int
    max_ringing_time: int
    enable_recording: int
    callout_rate: int
    num_cnt: int
    submitted_cnt: int
    created_at: int
    window_zone: str = "task"


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Filters of the task list (group/call/query)."""

    account_id: int
    created_from: int | None = None
    created_to: int | None = None
    statuses: tuple[int, ...] = ()
    app_id: str | None = None
    search: str | None = None
    task_type: int | None = None


@dataclass(frozen=True, slots=True)
class SimClockRecord:
    """The shared simulated timeline: ``speed`` times real time from ``real_epoch_ms``, when
    simulated time read ``sim_epoch_ms``."""

    speed: float
    real_epoch_ms: int
    sim_epoch_ms: int
